#pragma once
// ASCII text helpers the protocol parsers share (verbs are matched without
// regard to case; bytes outside A-Z/a-z compare as they are). Header-only,
// so each parser's fuzz target builds from its own source file.

#include <string_view>

namespace fsrv::codec {

/// True when `a` and `b` are equal ignoring ASCII case (RFC 9110 section
/// 5.1 style: only A-Z/a-z fold; UTF-8 bytes are compared exactly).
inline bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 32);
    if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 32);
    if (x != y) return false;
  }
  return true;
}

}  // namespace fsrv::codec
