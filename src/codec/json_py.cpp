// Python json.dumps-compatible writing (see json_py.hpp for the rules and
// where they come from).

#include "fsrv/codec/json_py.hpp"

#include <cassert>
#include <utility>

#include "fsrv/codec/utf8.hpp"

namespace fsrv::codec {

namespace {

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

/// One code point as "\\uXXXX", above U+FFFF as a UTF-16 surrogate pair
/// (RFC 8259 section 7).
void append_code_point(std::string& out, uint32_t cp) {
  if (cp >= 0x10000) {
    const uint32_t v = cp - 0x10000;
    append_u_escape(out, 0xD800 | (v >> 10));
    append_u_escape(out, 0xDC00 | (v & 0x3FF));
  } else {
    append_u_escape(out, cp);
  }
}

}  // namespace

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
    append_code_point(out, step.code_point);
  }
  out.push_back('"');
}

std::string ascii_json(std::string_view json) {
  std::string out;
  out.reserve(json.size());
  size_t i = 0;
  while (i < json.size()) {
    if (static_cast<unsigned char>(json[i]) < 0x80) {
      out += json[i++];
      continue;
    }
    const Utf8Step step = utf8_next(json, i);
    i += step.size;
    append_code_point(out, step.code_point);
  }
  return out;
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

}  // namespace fsrv::codec
