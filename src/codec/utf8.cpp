// UTF-8 decoding (see utf8.hpp for the policy and its source).

#include "fsrv/codec/utf8.hpp"

namespace fsrv::codec {

namespace {

bool is_cont(unsigned char c) { return (c & 0xC0) == 0x80; }

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
    return {kReplacementChar, 1, false};  // continuation byte, C0, C1, F5..FF
  }
  for (size_t i = 1; i < need; ++i) {
    if (i >= avail) return {kReplacementChar, i, false};  // truncated
    const unsigned char b = p[i];
    const bool ok = (i == 1) ? (b >= lo && b <= hi) : is_cont(b);
    if (!ok) return {kReplacementChar, i, false};  // the maximal subpart ends before b
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, need, true};
}

bool valid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const Utf8Step step = utf8_next(text, i);
    if (!step.valid) return false;
    i += step.size;
  }
  return true;
}

}  // namespace fsrv::codec
