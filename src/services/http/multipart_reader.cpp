// Streaming multipart/form-data reader (see multipart_reader.hpp).
//
// Every delimiter is CR LF "--" boundary (RFC 2046 section 5.1.1: the CR LF
// before it belongs to the delimiter, not to the part's body). The first
// one may open the body without a CR LF, so the buffer starts with one.
// A part's body is handed on up to the last delimiter-length - 1 bytes,
// which wait for the next slice: they may be the start of a delimiter.

#include "fsrv/services/http/multipart_reader.hpp"

#include <algorithm>
#include <utility>

namespace fsrv::services::http {

MultipartReader::MultipartReader(std::string_view boundary, size_t max_part_head)
    : delim_("\r\n--" + std::string(boundary)), buf_("\r\n"), max_part_head_(max_part_head) {}

bool MultipartReader::fail(std::string why) {
  state_ = State::kFailed;
  error_ = std::move(why);
  buf_.clear();
  pos_ = 0;
  return false;
}

bool MultipartReader::feed(std::string_view bytes, MultipartHandler& handler) {
  if (state_ == State::kFailed) return false;
  if (state_ == State::kEpilogue) return true;  // ignored (RFC 2046 section 5.1.1)
  buf_.append(bytes);
  while (step(handler)) {
  }
  if (state_ == State::kFailed) return false;
  // Drop what was read (a header block waiting for its end stays).
  size_t drop = state_ == State::kHeaders ? head_start_ : pos_;
  if (state_ == State::kEpilogue) drop = buf_.size();
  buf_.erase(0, drop);
  pos_ -= std::min(pos_, drop);
  if (state_ == State::kHeaders) head_start_ -= drop;
  return true;
}

bool MultipartReader::step(MultipartHandler& handler) {
  const std::string_view buf = buf_;
  switch (state_) {
    case State::kPreamble:
    case State::kBody: {
      // Up to the next delimiter, or all but what may start one: part
      // data in a body, dropped in the preamble.
      const bool body = state_ == State::kBody;
      const size_t keep = delim_.size() - 1;  // bytes that may start a delimiter
      const size_t d = buf.find(delim_, pos_);
      const size_t end = d != std::string_view::npos ? d
                         : buf.size() > pos_ + keep  ? buf.size() - keep
                                                     : pos_;
      if (body && end > pos_) handler.on_part_data(buf.substr(pos_, end - pos_));
      pos_ = end;
      if (d == std::string_view::npos) return false;
      pos_ = d + delim_.size();
      state_ = State::kDelimLine;
      if (body) handler.on_part_end();
      return true;
    }
    case State::kDelimLine:
      // "--" after the boundary closes the body; otherwise transport
      // padding (blanks), then CR LF, then the next part's headers.
      if (buf.size() - pos_ < 2) return false;
      state_ = buf.substr(pos_, 2) == "--" ? State::kEpilogue : State::kPadding;
      return true;
    case State::kPadding:
      while (pos_ < buf.size() && (buf[pos_] == ' ' || buf[pos_] == '\t')) ++pos_;
      if (buf.size() - pos_ < 2) return false;
      if (buf.substr(pos_, 2) != "\r\n") return fail("malformed multipart delimiter line");
      pos_ += 2;
      if (++parts_ > kMaxFormFields) return fail("too many multipart parts");
      head_start_ = pos_;
      state_ = State::kHeaders;
      return true;
    case State::kHeaders: {
      // pos_ is at the start of a header line; the block ends at an
      // empty one. Without a line end yet, wait (searched again from the
      // line's start: a CR may end this slice).
      size_t eol = buf.find("\r\n", pos_);
      const size_t line_end = eol == std::string_view::npos ? buf.size() : eol;
      if (line_end - head_start_ > max_part_head_) return fail("part headers too large");
      if (eol == std::string_view::npos) return false;
      if (eol > pos_) {
        pos_ = eol + 2;
        return true;
      }
      std::string_view block = buf.substr(head_start_, pos_ - head_start_);
      if (block.size() >= 2) block.remove_suffix(2);  // its last line's CR LF
      Result<FormField> part = parse_part_head(block);
      if (!part.ok()) return fail(part.error);
      pos_ = eol + 2;
      state_ = State::kBody;
      handler.on_part(part.value);
      return true;
    }
    case State::kEpilogue:
    case State::kFailed:
      break;
  }
  return false;
}

}  // namespace fsrv::services::http
