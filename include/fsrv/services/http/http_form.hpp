#pragma once
// HTML form bodies for the HTTP service, protocol-pure (no I/O): the
// application/x-www-form-urlencoded decoder, the multipart/form-data
// boundary, one part's head and a whole small multipart body (the form echo
// of tugas 8), read by the MultipartReader (multipart_reader.hpp) POST
// /upload streams its body through.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "fsrv/core/result.hpp"
#include "fsrv/services/http/http_util.hpp"

namespace fsrv::services::http {

/// One form field. For urlencoded bodies only name and value are set; for
/// multipart, a file part also sets filename (as sent, may be empty) and
/// content_type, and its value holds the raw file bytes.
struct FormField {
  std::string name;
  std::string value;
  std::string filename;
  std::string content_type;
  bool is_file = false;
  bool operator==(const FormField&) const = default;
};

/// Decodes an application/x-www-form-urlencoded body (WHATWG URL standard,
/// section 5.1): split on '&', empty pairs skipped, name/value split at the
/// first '=', '+' -> SP, %XX decoded once; a '%' not followed by two hex
/// digits is kept literally, as the standard says. Order is preserved.
std::vector<FormField> parse_urlencoded(std::string_view body);

/// Largest multipart/form-data body parse_multipart accepts: 1 MiB. The
/// parser holds the whole body; it is meant for small forms (names, short
/// texts, small uploads), large uploads stream through the PUT/raw path.
inline constexpr size_t kMaxMultipartBody = 1024 * 1024;

/// Most fields accepted in one form body (urlencoded or multipart): bounds
/// the vector a hostile body can make.
inline constexpr size_t kMaxFormFields = 1000;

/// The boundary parameter of a "multipart/form-data; boundary=..." value
/// (token or quoted-string, 1-70 characters, RFC 2046 section 5.1.1).
/// Errors: another media type or a missing/invalid boundary.
Result<std::string> multipart_boundary(std::string_view content_type);

/// Parses one multipart part's header lines (`lines`: CRLF-separated, no
/// final empty line): Content-Disposition: form-data with a name (and a
/// filename for a file part), Content-Type. `value` stays empty. Errors: a
/// malformed line, no Content-Disposition, not form-data, no name.
Result<FormField> parse_part_head(std::string_view lines);

/// Parses a complete multipart/form-data body (RFC 7578, framing of RFC
/// 2046 section 5.1.1) with the MultipartReader that POST /upload streams
/// through: preamble and epilogue ignored, each part needs a
/// Content-Disposition: form-data with a name. Errors: body over
/// kMaxMultipartBody, more than kMaxFormFields parts, missing delimiter or
/// close delimiter, malformed part headers.
Result<std::vector<FormField>> parse_multipart(std::string_view body, std::string_view boundary);

}  // namespace fsrv::services::http
