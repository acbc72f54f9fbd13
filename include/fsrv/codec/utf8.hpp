#pragma once
// UTF-8 decoding, the one decoder of the project: storage's name check, the
// Python-style JSON writers (codec/json_py.hpp) and every service that
// escapes text call this. Pure; owns nothing.
//
// The invalid-byte policy, everywhere: an ill-formed sequence counts as
// its maximal subpart, one U+FFFD each (Unicode 15 section 3.9, "U+FFFD
// Substitution of Maximal Subparts"), which is what Python's
// bytes.decode("utf-8", "replace") does, so our replies match the course's
// Python servers byte for byte where those do not crash.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace fsrv::codec {

/// U+FFFD REPLACEMENT CHARACTER, written for each maximal invalid subpart.
inline constexpr uint32_t kReplacementChar = 0xFFFD;

/// One step of UTF-8 decoding: the code point at a position and how many
/// bytes it takes. An invalid sequence yields valid=false, code_point
/// U+FFFD and size = the length of its maximal invalid subpart (>= 1).
struct Utf8Step {
  uint32_t code_point = 0;
  size_t size = 0;
  bool valid = false;
};

/// Decodes the code point starting at text[pos] (pos < text.size()).
/// Accepts exactly the well-formed sequences of Unicode Table 3-7 (RFC 3629
/// section 4: no overlongs, no surrogates, nothing above U+10FFFF).
Utf8Step utf8_next(std::string_view text, size_t pos);

/// True if every byte of `text` belongs to a well-formed sequence.
bool valid_utf8(std::string_view text);

}  // namespace fsrv::codec
