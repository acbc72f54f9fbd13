// libFuzzer target for the chat protocol's pure parts (make fuzz-chat
// [FUZZ_SECONDS=60]): line framing, parse_line and the Python-json writer.
// No database: execute() is not called.
//
// For every input:
// 1. find_line_end on the input as a receive buffer, and on the input
//    after kMaxLineBytes - 4 filler bytes (so the limit's edge is reached): a line never exceeds
//    kMaxLineBytes, `consumed` ends right after a '\n' and covers the line
//    plus its "\n" or "\r\n"; kTooLong only when the limit is really passed.
// 2. parse_line on the input: the argument count fits the command; every
//    argument is already Python-stripped; the words before the message
//    contain no space.
// 3. The JSON writer on the input and on every argument: the output is
//    printable ASCII only, quoted, and decoding it with an independent JSON
//    string decoder (below) gives the input with each invalid UTF-8 subpart
//    replaced by U+FFFD. reply_error() frames it exactly.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fsrv/codec/json_py.hpp"
#include "fsrv/codec/utf8.hpp"
#include "fsrv/services/chat/chat_protocol.hpp"

using namespace fsrv::services::chat;
using fsrv::codec::append_json_string;
using fsrv::codec::utf8_next;
using fsrv::codec::Utf8Step;

namespace {

void check(bool ok) {
  if (!ok) abort();
}

void put_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

uint32_t hex4(std::string_view s, size_t pos) {
  check(pos + 4 <= s.size());
  uint32_t v = 0;
  for (size_t i = pos; i < pos + 4; ++i) {
    const char c = s[i];
    v <<= 4;
    if (c >= '0' && c <= '9') {
      v |= static_cast<uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v |= static_cast<uint32_t>(c - 'a' + 10);
    } else {
      abort();  // Python writes lower-case hex only
    }
  }
  return v;
}

// Decodes one JSON string literal written with ensure_ascii (RFC 8259 §7),
// independently of the writer; aborts on anything malformed.
std::string decode_json_string(std::string_view lit) {
  check(lit.size() >= 2 && lit.front() == '"' && lit.back() == '"');
  std::string out;
  for (size_t i = 1; i + 1 < lit.size(); ++i) {
    const char c = lit[i];
    check(c >= 0x20 && c <= 0x7E);
    if (c == '"') abort();  // unescaped quote inside
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    check(i + 2 < lit.size());
    const char e = lit[++i];
    switch (e) {
      case '"':
      case '\\':
        out.push_back(e);
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'u': {
        uint32_t u = hex4(lit, i + 1);
        i += 4;
        // Python escapes these characters in short form or not at all.
        check(!(u >= 0x20 && u < 0x7F));
        check(u != '\n' && u != '\r' && u != '\t' && u != '\b' && u != '\f');
        if (u >= 0xD800 && u <= 0xDBFF) {
          check(i + 6 < lit.size() && lit[i + 1] == '\\' && lit[i + 2] == 'u');
          const uint32_t lo = hex4(lit, i + 3);
          check(lo >= 0xDC00 && lo <= 0xDFFF);
          i += 6;
          u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
        } else {
          check(!(u >= 0xDC00 && u <= 0xDFFF));  // no lone low surrogate
        }
        put_utf8(out, u);
        break;
      }
      default:
        abort();
    }
  }
  return out;
}

// The input with every invalid subpart replaced by U+FFFD's UTF-8.
std::string sanitized(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const Utf8Step step = utf8_next(s, i);
    check(step.size >= 1 && i + step.size <= s.size());
    if (step.valid) {
      out.append(s.substr(i, step.size));
    } else {
      out += "\xEF\xBF\xBD";
    }
    i += step.size;
  }
  return out;
}

void check_string(std::string_view s) {
  std::string lit;
  append_json_string(lit, s);
  check(decode_json_string(lit) == sanitized(s));
  check(reply_error(s) == "{\"status\": \"ERROR\", \"message\": " + lit + "}\r\n\r\n");
}

bool is_stripped(std::string_view s) { return python_strip(s) == s; }

// Framing invariants of find_line_end on one receive buffer.
void check_framing(std::string_view in) {
  const LineEnd end = find_line_end(in);
  switch (end.kind) {
    case LineEnd::Kind::kLine:
      check(end.line_size <= kMaxLineBytes);
      check(end.consumed <= in.size() && in[end.consumed - 1] == '\n');
      check(end.consumed == end.line_size + 1 ||
            (end.consumed == end.line_size + 2 && in[end.line_size] == '\r'));
      check(in.substr(0, end.line_size).find('\n') == std::string_view::npos);
      break;
    case LineEnd::Kind::kNeedMore:
      check(in.find('\n') == std::string_view::npos && in.size() <= kMaxLineBytes + 1);
      break;
    case LineEnd::Kind::kTooLong:
      check(in.size() > kMaxLineBytes);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  check_framing(in);
  // The input again just below the line limit, so the fuzzer's short
  // inputs reach the limit's edge cases (a '\r' or '\n' at the boundary).
  static std::string padded;
  padded.assign(kMaxLineBytes - 4, 'x');
  padded.append(in);
  check_framing(padded);

  const Command cmd = parse_line(in);
  if (cmd.error == ParseError::kNone) {
    const size_t want = cmd.kind == CommandKind::kAuth ? 2 : cmd.kind == CommandKind::kSend ? 3 : 1;
    check(cmd.kind != CommandKind::kUnknown && cmd.args.size() == want);
    for (size_t i = 0; i < cmd.args.size(); ++i) {
      check(is_stripped(cmd.args[i]));
      if (!(cmd.kind == CommandKind::kSend && i == 2)) {
        check(cmd.args[i].find(' ') == std::string::npos);
      }
      check_string(cmd.args[i]);
    }
  } else {
    check(cmd.args.empty());
  }
  check(is_stripped(python_strip(in)));

  check_string(in);
  return 0;
}
