// Framing of the seed 003 session protocol (see session_framer.hpp).

#include "fsrv/services/session/session_framer.hpp"

#include <algorithm>
#include <cstdio>
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
    char hex[5];
    snprintf(hex, sizeof hex, "\\x%02x", c);
    out += c >= 0x20 && c < 0x7f && c != '\\' ? std::string(1, static_cast<char>(c)) : hex;
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
    const auto k = static_cast<size_t>(std::ranges::mismatch(w, rest).in1 - w.begin());
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

}  // namespace

std::string_view verb_name(Verb verb) { return kWords[static_cast<int>(verb)]; }

Frame next_frame(std::string_view in, Want want) {
  Frame f;
  switch (want) {
    case Want::kWord:
      return word(in);
    case Want::kName:
    case Want::kUploadHeader: {
      // `h` name length, the name, then an upload's `i` size.
      if (in.size() < 2) return f;
      const int len = static_cast<int16_t>(read_le(in, 0, 2));
      if (len < 1 || len > kMaxNameBytes) {
        return error("name length " + std::to_string(len) + " outside 1.." +
                     std::to_string(kMaxNameBytes));
      }
      const size_t size_at = 2 + static_cast<size_t>(len);
      const size_t end = size_at + (want == Want::kUploadHeader ? 4 : 0);
      if (in.size() < end) return f;
      f.name.assign(in.data() + 2, static_cast<size_t>(len));
      f.consumed = end;
      f.kind = Frame::Kind::kName;
      if (want == Want::kName) return f;
      f.size = static_cast<int32_t>(read_le(in, size_at, 4));
      if (f.size < 0) return error("negative upload size " + std::to_string(f.size));
      f.kind = Frame::Kind::kUploadHeader;
      return f;
    }
    case Want::kAck:
    case Want::kConfirm: {
      if (in.empty()) return f;
      const bool ack = want == Want::kAck;
      if (ack ? in[0] != '1' : std::string_view("YyNn").find(in[0]) == std::string_view::npos) {
        return error(std::string(ack ? "expected the ack '1'" : "expected Y or N") + ", got \"" +
                     shown(in.substr(0, 1)) + "\"");
      }
      f.kind = ack ? Frame::Kind::kAck : Frame::Kind::kConfirm;
      f.yes = in[0] == 'Y' || in[0] == 'y';
      f.consumed = 1;
      return f;
    }
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
