#pragma once
// HTTP helpers over bytes for the HTTP service, protocol-pure (no I/O):
// request-target splitting and percent-decoding, MIME types, HTTP dates,
// ETags, byte ranges, reason phrases, origins, HTML escaping,
// Content-Disposition and Basic credentials (form bodies are in
// http_form.hpp). Each function cites the RFC section it follows.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fsrv/codec/ascii.hpp"
#include "fsrv/core/result.hpp"

namespace fsrv::services::http {

/// ASCII lower-case of one byte; other bytes unchanged (header names and
/// tokens are case-insensitive ASCII, RFC 9110 section 5.1).
constexpr char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

/// ASCII case-insensitive equality of two byte strings (codec::iequals_ascii).
inline bool iequals(std::string_view a, std::string_view b) { return codec::iequals_ascii(a, b); }

/// True for an ASCII decimal digit.
constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }

/// `s` without leading and trailing optional white space (SP and HTAB, RFC
/// 9110 section 5.6.3).
std::string_view trim_ows(std::string_view s);

/// The first item of a list whose items are separated by `sep`: the text
/// before the first `sep` (all of `list` when there is none); `list` keeps
/// what follows that `sep` (empty after the last item).
std::string_view next_item(std::string_view& list, std::string_view sep);

/// The byte a %XX escape at s[i] stands for (s[i] == '%'), or -1 when not
/// followed by two hex digits (RFC 3986 section 2.1).
int percent_escape_at(std::string_view s, size_t i);

// ---- request target ----------------------------------------------------

/// A request-target in origin-form split at the first '?' (RFC 9112
/// section 3.2.1); a '#' fragment (never sent by clients, RFC 9110 section
/// 4.2.3) is dropped. Views into the target given to split_target.
struct Target {
  std::string_view path;   ///< before '?', still percent-encoded
  std::string_view query;  ///< after '?', without it; empty if none
  bool has_query = false;  ///< a '?' was present (even with empty query)
};

/// Splits a raw request-target into path and query (no decoding).
Target split_target(std::string_view target);

/// Decodes %XX escapes of a path exactly once (RFC 3986 section 2.1); '+'
/// stays '+'. Errors: a '%' not followed by two hex digits, "%00" or a raw
/// NUL byte (a NUL would cut the name at the syscall).
Result<std::string> percent_decode_path(std::string_view path);

// ---- content metadata --------------------------------------------------

/// MIME type for a file name by its extension (case-insensitive): pdf, jpg,
/// jpeg, png, gif, txt, html, htm, css, js, mjs, json, csv, mp4, zip, svg,
/// ico, webp, wasm, xml, mp3, wav, webm, tar, gz; text types carry
/// "; charset=utf-8". Anything else: application/octet-stream (RFC 9110
/// section 8.3 lets a sender use it for unknown data).
std::string_view mime_type_for(std::string_view filename);

/// IMF-fixdate of a Unix time in seconds, e.g. "Sun, 06 Nov 1994 08:49:37
/// GMT" (RFC 9110 section 5.6.7). Times before 1970 are clamped to 0.
std::string format_http_date(int64_t unix_seconds);

/// Parses an HTTP-date in any of the three forms a recipient must accept
/// (RFC 9110 section 5.6.7): IMF-fixdate, obsolete RFC 850 (two-digit year:
/// 70-99 -> 19xx, 00-69 -> 20xx) and asctime. Returns Unix seconds, or
/// nullopt for anything malformed (the caller then ignores the field, e.g.
/// If-Modified-Since per RFC 9110 section 13.1.3).
std::optional<int64_t> parse_http_date(std::string_view text);

/// Strong entity tag from a file's size in bytes and modification time in
/// nanoseconds since the epoch: "\"<size hex>-<mtime_ns hex>\"" with the
/// quotes (RFC 9110 section 8.8.3).
std::string make_etag(uint64_t size, int64_t mtime_ns);

// ---- byte ranges (RFC 9110 section 14) -----------------------------------

/// An inclusive byte range [first, last] of a representation.
struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;
  uint64_t length() const { return last - first + 1; }
  bool operator==(const ByteRange&) const = default;
};

/// What to do with a Range header field.
enum class RangeDecision {
  kIgnore,         ///< answer 200 with the whole file: field invalid, another
                   ///< unit, or several ranges (allowed, RFC 9110 section 14.2)
  kPartial,        ///< answer 206 with `range` (RFC 9110 section 15.3.7)
  kUnsatisfiable,  ///< answer 416 with "Content-Range: bytes */size"
};

struct RangeResult {
  RangeDecision decision = RangeDecision::kIgnore;
  ByteRange range;  ///< valid for kPartial; last clamped to size - 1
};

/// Evaluates one "bytes=" Range value against a file of `size` bytes:
/// "first-last", "first-" or "-suffix" (RFC 9110 section 14.1.2). The unit
/// is case-insensitive; a first-pos at or past the end, or a zero suffix,
/// is unsatisfiable; last-pos past the end is clamped.
RangeResult parse_range(std::string_view value, uint64_t size);

/// Content-Range value of a 206: "bytes first-last/size" (RFC 9110 section
/// 14.4).
std::string content_range(ByteRange range, uint64_t size);

/// Content-Range value of a 416: "bytes */size" (RFC 9110 section 14.4).
std::string content_range_unsatisfied(uint64_t size);

// ---- status line ---------------------------------------------------------

/// Reason phrase of a status code (RFC 9110 section 15, RFC 6585 for 428,
/// 429, 431), e.g. 404 -> "Not Found"; "" for codes we do not know (the
/// reason-phrase may be empty, RFC 9112 section 4).
std::string_view reason_phrase(int status);

// ---- origins -------------------------------------------------------------

/// True when an Origin field value (RFC 6454 section 7: "scheme://host[:port]",
/// or "null") names the authority in the request's Host field (RFC 9110
/// section 7.2): same host, case-insensitive, same port, a scheme's default
/// port (80 for http, 443 for https) written or not. "null" and anything
/// unparsable never match.
bool origin_matches_host(std::string_view origin, std::string_view host);

// ---- escaping ------------------------------------------------------------

/// `s` with every byte but ASCII letters, digits and the bytes of `keep`
/// written as %XX in upper-case hex (RFC 3986 section 2.1).
std::string percent_encode(std::string_view s, std::string_view keep);

/// Escapes & < > " ' for HTML text and attribute values (OWASP rule #1).
std::string html_escape(std::string_view text);

/// Content-Disposition value for a download: `attachment; filename="x";
/// filename*=UTF-8''x` (RFC 6266 section 4, RFC 8187). CR, LF and '"' are
/// stripped from the name first; the plain filename keeps printable ASCII
/// (others become '_', backslash too), filename* percent-encodes every
/// byte outside attr-char. `inline_disposition` selects "inline".
std::string content_disposition(std::string_view filename, bool inline_disposition = false);

/// Longest Authorization value decoded (user name + password + base64):
/// far above a real account, small enough to never be a memory lever.
inline constexpr size_t kMaxCredentials = 1024;

/// Splits an `Authorization: Basic BASE64(user:password)` value (RFC 7617
/// section 2: scheme case-insensitive, user-id without ':', the password is
/// the rest). False for another scheme, bad base64, no ':' or a value over
/// kMaxCredentials.
bool parse_basic_credentials(std::string_view value, std::string& user, std::string& password);

}  // namespace fsrv::services::http
