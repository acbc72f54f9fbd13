// Framing of the seed 003 session protocol (see session_framer.hpp).

#include "fsrv/services/session/session_framer.hpp"

#include <algorithm>
#include <cstring>

namespace fsrv::services::session {

namespace {

constexpr std::string_view kWords[] = {"connme",   "byebye", "upload", "ls",
                                       "download", "rm",     "size"};

// The little-endian value of the `bytes` (2 or 4) bytes at `at`.
uint32_t read_le(std::string_view in, size_t at, size_t bytes) {
  uint32_t u = 0;
  for (size_t i = bytes; i-- > 0;) u = (u << 8) | static_cast<unsigned char>(in[at + i]);
  return u;
}

Frame error(std::string why) {
  Frame f;
  f.kind = Frame::Kind::kError;
  f.error = std::move(why);
  return f;
}

// A printable rendering of up to 16 bytes for error messages.
std::string shown(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes.substr(0, 16)) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Frame word(std::string_view in) {
  size_t skip = 0;
  // A stray '1': the seed's client acks the end of `ls` once more in some
  // versions; '1' starts no word, so it cannot be confused with one.
  while (skip < in.size() && in[skip] == '1') ++skip;
  const std::string_view rest = in.substr(skip);
  Frame f;
  f.consumed = skip;
  size_t decided = 0;  // the longest start of a word that `rest` starts with
  for (size_t v = 0; v < std::size(kWords); ++v) {
    const std::string_view w = kWords[v];
    size_t k = 0;
    while (k < w.size() && k < rest.size() && w[k] == rest[k]) ++k;
    if (k == w.size()) {
      f.kind = Frame::Kind::kWord;
      f.verb = static_cast<Verb>(v);
      f.consumed = skip + k;
      return f;
    }
    decided = std::max(decided, k);
  }
  if (decided == rest.size()) return f;  // nothing yet, or the start of a word
  // Show the bytes that decided (the longest word prefix plus the byte
  // after it), so the message is the same however the input was split.
  return error("unknown command word: \"" + shown(rest.substr(0, decided + 1)) + "\"");
}

// `h` length + name starting at `at`; sets f.name and returns the end
// offset, or 0 when more bytes are needed (f.kind = kError if malformed).
size_t name_field(std::string_view in, size_t at, Frame& f) {
  if (in.size() < at + 2) return 0;
  const int len = static_cast<int16_t>(read_le(in, at, 2));
  if (len < 1 || len > kMaxNameBytes) {
    f = error("name length " + std::to_string(len) + " outside 1.." +
              std::to_string(kMaxNameBytes));
    return 0;
  }
  if (in.size() < at + 2 + static_cast<size_t>(len)) return 0;
  f.name.assign(in.data() + at + 2, static_cast<size_t>(len));
  return at + 2 + static_cast<size_t>(len);
}

}  // namespace

std::string_view verb_name(Verb verb) { return kWords[static_cast<int>(verb)]; }

Frame next_frame(std::string_view in, Want want) {
  Frame f;
  switch (want) {
    case Want::kWord:
      return word(in);
    case Want::kName:
    case Want::kUploadHeader: {
      const size_t end = name_field(in, 0, f);
      const size_t size_bytes = want == Want::kUploadHeader ? 4 : 0;  // `i` after the name
      if (f.kind == Frame::Kind::kError || end == 0 || in.size() < end + size_bytes) {
        f.name.clear();
        return f;
      }
      f.kind = Frame::Kind::kName;
      f.consumed = end + size_bytes;
      if (want == Want::kName) return f;
      f.size = static_cast<int32_t>(read_le(in, end, 4));
      if (f.size < 0) return error("negative upload size " + std::to_string(f.size));
      f.kind = Frame::Kind::kUploadHeader;
      return f;
    }
    case Want::kAck:
      if (in.empty()) return f;
      if (in[0] != '1')
        return error("expected the ack '1', got \"" + shown(in.substr(0, 1)) + "\"");
      f.kind = Frame::Kind::kAck;
      f.consumed = 1;
      return f;
    case Want::kConfirm:
      if (in.empty()) return f;
      if (in[0] != 'Y' && in[0] != 'y' && in[0] != 'N' && in[0] != 'n') {
        return error("expected Y or N, got \"" + shown(in.substr(0, 1)) + "\"");
      }
      f.kind = Frame::Kind::kConfirm;
      f.yes = in[0] == 'Y' || in[0] == 'y';
      f.consumed = 1;
      return f;
  }
  return error("bad state");
}

std::string pack_i32(int32_t v) {
  std::string out(4, '\0');
  for (size_t i = 0; i < 4; ++i) out[i] = static_cast<char>(static_cast<uint32_t>(v) >> (8 * i));
  return out;
}

std::string pack_f32(float v) {
  uint32_t u;
  static_assert(sizeof(u) == sizeof(v));
  std::memcpy(&u, &v, sizeof(u));
  return pack_i32(static_cast<int32_t>(u));
}

}  // namespace fsrv::services::session
