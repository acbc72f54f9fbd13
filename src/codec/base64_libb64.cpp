// kLibb64: Debian's libb64 behind the Encoder/Decoder interface.
//
// libb64's encoder (cencode.c) breaks lines: it writes '\n' after every 72
// characters and another one in base64_encode_blockend(). We encode chunk
// by chunk into a stack buffer and copy everything but '\n' to the output.
//
// libb64's decoder (cdecode.c) skips every byte outside the alphabet
// without a word, '=' included. The shared StreamDecoder validates each
// character first, so libb64 only ever sees whole quanta of alphabet
// characters (or one padded quantum at the very end).

// The C headers lack extern "C" guards (libb64's C++ wrappers decode.h and
// encode.h add them the same way).
extern "C" {
#include <b64/cdecode.h>
#include <b64/cencode.h>
}

#include <algorithm>
#include <cstring>

#include "fsrv/codec/base64_detail.hpp"

namespace fsrv::codec::detail {

namespace {

/// Input bytes per libb64 call: a multiple of 3 so that every chunk but the
/// last ends on a quantum boundary and needs no padding; 3 KiB keeps the
/// stack buffer small and far below libb64's `int` length limit.
constexpr size_t kEncodeChunk = 3 * 1024;
/// Output of one chunk: 4/3 of the input, one '\n' per 72 characters
/// (libb64's CHARS_PER_LINE), plus blockend's padding and final '\n'. We
/// allow a '\n' every 4 characters so that any line length fits.
constexpr size_t kEncodeScratch = kEncodeChunk / 3 * 4 * 2 + 16;

/// Characters per libb64 decode call: a multiple of 4, far below INT_MAX.
constexpr size_t kDecodeChunk = size_t{1} << 20;

/// Copies [src, src + n) to dst without '\n'; returns the chars copied.
size_t copy_without_newlines(const char* src, size_t n, char* dst) {
  char* d = dst;
  const char* end = src + n;
  while (src < end) {
    const void* nl = std::memchr(src, '\n', static_cast<size_t>(end - src));
    const char* stop = nl ? static_cast<const char*>(nl) : end;
    std::memcpy(d, src, static_cast<size_t>(stop - src));
    d += stop - src;
    src = nl ? stop + 1 : end;
  }
  return static_cast<size_t>(d - dst);
}

class Libb64Encoder final : public Encoder {
 public:
  size_t encode(std::span<const uint8_t> in, char* out) const override {
    char scratch[kEncodeScratch];
    size_t written = 0;
    size_t pos = 0;
    do {
      const size_t len = std::min(kEncodeChunk, in.size() - pos);
      base64_encodestate state;
      base64_init_encodestate(&state);
      int n = base64_encode_block(reinterpret_cast<const char*>(in.data() + pos),
                                  static_cast<int>(len), scratch, &state);
      pos += len;
      if (pos == in.size()) n += base64_encode_blockend(scratch + n, &state);
      written += copy_without_newlines(scratch, static_cast<size_t>(n), out + written);
    } while (pos < in.size());
    return written;
  }
  std::string_view name() const override { return "libb64"; }
};

class Libb64Decoder final : public StreamDecoder {
 protected:
  size_t decode_bulk(const char* in, size_t quanta, uint8_t* out) override {
    // Find the first quantum holding a non-alphabet character.
    const size_t chars = quanta * kQuantumChars;
    size_t good = 0;
    while (good < chars && kCharValue[static_cast<uint8_t>(in[good])] < 64) ++good;
    const size_t ok_quanta = good / kQuantumChars;
    size_t pos = 0;
    const size_t end = ok_quanta * kQuantumChars;
    while (pos < end) {
      const size_t len = std::min(kDecodeChunk, end - pos);
      base64_decodestate state;
      base64_init_decodestate(&state);
      // libb64 stores its partial byte at out[result] (within the 3 bytes of
      // slack decode_capacity() grants) and reads it back; harmless here.
      const int n = base64_decode_block(in + pos, static_cast<int>(len),
                                        reinterpret_cast<char*>(out), &state);
      out += n;
      pos += len;
    }
    return ok_quanta;
  }

  size_t decode_padded(const char* quantum, uint8_t* out) override {
    // libb64 skips the '=' and returns the whole bytes only (1 or 2). Its
    // partial-byte store lands in a local, not in the caller's buffer.
    char tmp[kQuantumBytes + 1];
    base64_decodestate state;
    base64_init_decodestate(&state);
    const int n = base64_decode_block(quantum, static_cast<int>(kQuantumChars), tmp, &state);
    std::memcpy(out, tmp, static_cast<size_t>(n));
    return static_cast<size_t>(n);
  }
};

}  // namespace

const Encoder& libb64_encoder() {
  static const Libb64Encoder instance;
  return instance;
}

std::unique_ptr<Decoder> make_libb64_decoder() { return std::make_unique<Libb64Decoder>(); }

}  // namespace fsrv::codec::detail
