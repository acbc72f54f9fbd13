#pragma once
// Streaming multipart/form-data reader (RFC 7578; framing of RFC 2046
// section 5.1.1), protocol-pure: body bytes in, part events out, no IO.
// Used by POST /upload, whose file part goes to disk piece by piece: the
// reader keeps at most one fed slice, the delimiter's length and one
// part's header block, never a part's body.

#include <cstddef>
#include <string>
#include <string_view>

#include "fsrv/services/http/http_form.hpp"

namespace fsrv::services::http {

/// Largest header block of one part: 16 KiB, as for the request head (a
/// part's headers are a Content-Disposition and a Content-Type).
inline constexpr size_t kMaxPartHead = 16 * 1024;

/// Receives MultipartReader's events, in order per part: on_part,
/// on_part_data* (zero or more), on_part_end.
class MultipartHandler {
 public:
  virtual ~MultipartHandler() = default;
  /// A part's headers ended; `part.value` is empty (the body follows as
  /// on_part_data), is_file and filename are set for a file part.
  virtual void on_part(const FormField& part) = 0;
  /// A piece of the current part's body, never empty; valid during the call.
  virtual void on_part_data(std::string_view piece) = 0;
  /// The current part's body ended (the next delimiter arrived).
  virtual void on_part_end() = 0;
};

/// Incremental reader of one multipart/form-data body: feed it the
/// de-chunked body in slices split anywhere. Preamble and epilogue are
/// ignored; at most kMaxFormFields parts.
class MultipartReader {
 public:
  /// `boundary` as multipart_boundary() returns it (1-70 characters);
  /// `max_part_head`: the largest header block of one part, in bytes.
  explicit MultipartReader(std::string_view boundary, size_t max_part_head = kMaxPartHead);

  /// Reads `bytes`, calling `handler`. False once the body is malformed
  /// (error() says why; later calls do nothing and return false).
  bool feed(std::string_view bytes, MultipartHandler& handler);

  /// True once the close delimiter ("--boundary--") was read.
  bool done() const { return state_ == State::kEpilogue; }

  /// Why feed() returned false, e.g. "malformed part header".
  const std::string& error() const { return error_; }

 private:
  enum class State { kPreamble, kDelimLine, kPadding, kHeaders, kBody, kEpilogue, kFailed };
  bool fail(std::string why);
  /// One step over buf_ from pos_; false once it needs more bytes, the
  /// body closed or it failed.
  bool step(MultipartHandler& handler);

  std::string delim_;      ///< CR LF "--" boundary
  std::string buf_;        ///< unread bytes (starts with a CR LF: see the .cpp)
  size_t pos_ = 0;         ///< next unread byte of buf_
  size_t head_start_ = 0;  ///< kHeaders: where the part's header block starts
  size_t parts_ = 0;
  size_t max_part_head_;
  State state_ = State::kPreamble;
  std::string error_;
};

}  // namespace fsrv::services::http
