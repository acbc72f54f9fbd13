#include "fsrv/services/file_raw/raw_protocol.hpp"

#include <vector>

namespace fsrv::services::file_raw {

namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/// Longest decimal size accepted: UINT64_MAX has 20 digits.
constexpr size_t kMaxSizeDigits = 20;

bool parse_size(std::string_view text, uint64_t* out) {
  if (text.empty() || text.size() > kMaxSizeDigits) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

}  // namespace

RawRequest parse_raw_line(std::string_view line) {
  RawRequest r;
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_blank(line[i])) ++i;
    size_t start = i;
    while (i < line.size() && !is_blank(line[i])) ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  if (words.empty()) {
    r.error = "empty request";
    return r;
  }
  r.verb = kit::verb_of<RawCmd>(words[0], kit::dialect_verb_name);
  if (r.verb == RawCmd::kList) {
    if (words.size() != 1) r.error = "LIST takes no argument";
  } else if (r.verb == RawCmd::kGet) {
    if (words.size() != 2) r.error = "usage: DOWNLOAD name";
  } else if (r.verb == RawCmd::kAuth) {
    if (words.size() != 3) r.error = "usage: AUTH user password";
  } else if (r.verb == RawCmd::kUpload) {
    if (words.size() != 3 || !parse_size(words[2], &r.size)) {
      r.error = "usage: UPLOAD name size (size in decimal bytes)";
      r.fatal = true;  // how many payload bytes follow is unknown
    }
  } else {
    r.error = "unknown command: " + std::string(words[0].substr(0, 64));
  }
  if (r.error.empty() && words.size() > 1) r.name = std::string(words[1]);
  if (r.error.empty() && r.verb == RawCmd::kAuth) r.password = std::string(words[2]);
  return r;
}

RawLine next_raw_line(std::string_view input, size_t max_line) {
  RawLine l;
  size_t start = 0;
  while (true) {
    size_t s = start;
    while (s < input.size() && is_blank(input[s])) ++s;
    if (s < input.size() && input[s] == '\n') {
      // A blank line is skipped, but it counts against max_line like any
      // other: the verdict must not depend on where reads split the input
      // (an unfinished run of blanks is already "too long" beyond it).
      if (s - start > max_line) {
        l.consumed = start;
        l.kind = RawLine::kTooLong;
        return l;
      }
      start = s + 1;
      continue;
    }
    break;
  }
  l.consumed = start;
  std::string_view rest = input.substr(start);
  size_t nl = rest.find('\n');
  if (nl == std::string_view::npos) {
    if (rest.size() > max_line) l.kind = RawLine::kTooLong;
    return l;
  }
  if (nl > max_line) {
    l.kind = RawLine::kTooLong;
    return l;
  }
  std::string_view line = rest.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  l.kind = RawLine::kLine;
  l.line = line;
  l.consumed = start + nl + 1;
  return l;
}

}  // namespace fsrv::services::file_raw
