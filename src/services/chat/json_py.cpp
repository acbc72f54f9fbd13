// Python json.dumps-compatible writer (see json_py.hpp for the rules and
// where they come from).

#include "fsrv/services/chat/json_py.hpp"

#include <cassert>
#include <utility>

namespace fsrv::services::chat {

namespace {

constexpr uint32_t kReplacement = 0xFFFD;

bool is_cont(unsigned char c) { return (c & 0xC0) == 0x80; }

void append_u_escape(std::string& out, uint32_t unit) {
  // Python writes '\\u{0:04x}': lower-case hex, four digits.
  static constexpr char kHex[] = "0123456789abcdef";
  char buf[6] = {'\\',
                 'u',
                 kHex[(unit >> 12) & 0xF],
                 kHex[(unit >> 8) & 0xF],
                 kHex[(unit >> 4) & 0xF],
                 kHex[unit & 0xF]};
  out.append(buf, sizeof buf);
}

}  // namespace

Utf8Step utf8_next(std::string_view text, size_t pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data()) + pos;
  const size_t avail = text.size() - pos;
  const unsigned char b0 = p[0];
  if (b0 < 0x80) return {b0, 1, true};
  // Unicode Table 3-7: the lead byte fixes the length and the allowed range
  // of the second byte; later bytes are plain continuation bytes.
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;
  uint32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;  // no overlongs
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;  // no overlongs
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return {kReplacement, 1, false};  // continuation byte, C0, C1, F5..FF
  }
  for (size_t i = 1; i < need; ++i) {
    if (i >= avail) return {kReplacement, i, false};  // truncated
    const unsigned char b = p[i];
    const bool ok = (i == 1) ? (b >= lo && b <= hi) : is_cont(b);
    if (!ok) return {kReplacement, i, false};  // the maximal subpart ends before b
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, need, true};
}

void append_json_string(std::string& out, std::string_view text) {
  out.reserve(out.size() + text.size() + 2);
  out.push_back('"');
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7F) {
      // Printable ASCII: Python's ESCAPE_ASCII regex ([\\"]|[^\ -~]) leaves
      // it alone except for the quote and the backslash.
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    if (c < 0x80) {
      switch (c) {
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        default:
          append_u_escape(out, c);  // other controls and DEL
      }
      ++i;
      continue;
    }
    const Utf8Step step = utf8_next(text, i);
    i += step.size;
    if (step.code_point >= 0x10000) {
      const uint32_t v = step.code_point - 0x10000;
      append_u_escape(out, 0xD800 | (v >> 10));
      append_u_escape(out, 0xDC00 | (v & 0x3FF));
    } else {
      append_u_escape(out, step.code_point);
    }
  }
  out.push_back('"');
}

void PyJsonWriter::before_value() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_.empty()) {
    if (!first_.back()) out_ += ", ";
    first_.back() = false;
  }
}

void PyJsonWriter::begin_object() {
  before_value();
  out_.push_back('{');
  first_.push_back(true);
}

void PyJsonWriter::end_object() {
  assert(!first_.empty() && !after_key_);
  first_.pop_back();
  out_.push_back('}');
}

void PyJsonWriter::begin_array() {
  before_value();
  out_.push_back('[');
  first_.push_back(true);
}

void PyJsonWriter::end_array() {
  assert(!first_.empty() && !after_key_);
  first_.pop_back();
  out_.push_back(']');
}

void PyJsonWriter::key(std::string_view name) {
  assert(!first_.empty() && !after_key_);
  before_value();
  append_json_string(out_, name);
  out_ += ": ";
  after_key_ = true;
}

void PyJsonWriter::string(std::string_view value) {
  before_value();
  append_json_string(out_, value);
}

std::string PyJsonWriter::take() {
  std::string result = std::move(out_);
  out_.clear();
  first_.clear();
  after_key_ = false;
  return result;
}

}  // namespace fsrv::services::chat
