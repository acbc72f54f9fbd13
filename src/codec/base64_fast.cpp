// kFast: table-driven scalar base64 (always available) plus dispatch to the
// AVX2 kernels of base64_fast_avx2.cpp when the CPU has them.
//
// Scalar encode: a 4096-entry table maps 12 input bits to their 2 output
// characters, so 3 bytes cost two loads and one 4-byte store, and the main
// loop turns 6 bytes (one 8-byte load) into 8 characters.
// Scalar decode: four 256-entry 32-bit tables (one per position in the
// quantum) hold each character's 6 bits already shifted into place in the
// little-endian output word, so a quantum is 4 loads, 3 ORs and one store;
// invalid characters set the top byte, so one test validates the quantum.

#include "fsrv/codec/base64_fast.hpp"

#include <bit>
#include <cstdlib>
#include <cstring>

#include "fsrv/codec/base64_detail.hpp"

namespace fsrv::codec {

static_assert(std::endian::native == std::endian::little,
              "the scalar tables assume little-endian stores");

namespace detail {
namespace {

/// Number of 12-bit values: one table entry per pair of output characters.
constexpr size_t kPairCount = 1 << 12;

/// kEncodePair[v] = the 2 characters of 12-bit value v, first character in
/// the low byte (so a little-endian 16-bit store writes them in order).
constexpr std::array<uint16_t, kPairCount> kEncodePair = [] {
  std::array<uint16_t, kPairCount> t{};
  for (size_t v = 0; v < kPairCount; ++v) {
    t[v] = static_cast<uint16_t>(static_cast<uint8_t>(kAlphabet[v >> 6]) |
                                 (static_cast<uint8_t>(kAlphabet[v & 63]) << 8));
  }
  return t;
}();

/// Marks a decode-table entry as "not an alphabet character": any bit of the
/// top byte, which valid entries (24 data bits) never set.
constexpr uint32_t kDecodeBadMask = 0xff000000u;

/// kDecode[k][c]: 6-bit value of character c at position k of a quantum,
/// shifted to where it lands in the 3 output bytes read as a little-endian
/// word (byte 0 = first output byte), or 0xffffffff if c is not in the
/// alphabet ('=' included).
using DecodeTable = std::array<std::array<uint32_t, 256>, kQuantumChars>;
constexpr DecodeTable kDecode = [] {
  DecodeTable t{};
  for (int c = 0; c < 256; ++c) {
    const uint32_t v = kCharValue[c];
    if (v >= 64) {
      for (auto& row : t) row[c] = 0xffffffffu;
      continue;
    }
    // Output bits: b0 = v0<<2 | v1>>4, b1 = (v1&15)<<4 | v2>>2, b2 = (v2&3)<<6 | v3.
    t[0][c] = v << 2;
    t[1][c] = (v >> 4) | ((v & 0x0f) << 12);
    t[2][c] = ((v >> 2) << 8) | ((v & 0x03) << 22);
    t[3][c] = v << 16;
  }
  return t;
}();

inline uint32_t decode_quantum(const char* p) {
  return kDecode[0][static_cast<uint8_t>(p[0])] | kDecode[1][static_cast<uint8_t>(p[1])] |
         kDecode[2][static_cast<uint8_t>(p[2])] | kDecode[3][static_cast<uint8_t>(p[3])];
}

/// Writes the 4 characters of the 24-bit group v (big-endian bits).
inline void encode_group(uint32_t v, char* out) {
  const uint32_t pair = kEncodePair[v >> 12] | (uint32_t{kEncodePair[v & 0xfff]} << 16);
  std::memcpy(out, &pair, sizeof pair);
}

}  // namespace

size_t encode_scalar(const uint8_t* in, size_t n, char* out) {
  char* o = out;
  size_t i = 0;
  // 8-byte load, 6 bytes used: only while 8 bytes are readable.
  for (; n - i >= 8; i += 6, o += 8) {
    uint64_t w;
    std::memcpy(&w, in + i, sizeof w);
    w = __builtin_bswap64(w);  // input bytes now in big-endian bit order
    const uint64_t chars = uint64_t{kEncodePair[(w >> 52) & 0xfff]} |
                           (uint64_t{kEncodePair[(w >> 40) & 0xfff]} << 16) |
                           (uint64_t{kEncodePair[(w >> 28) & 0xfff]} << 32) |
                           (uint64_t{kEncodePair[(w >> 16) & 0xfff]} << 48);
    std::memcpy(o, &chars, sizeof chars);
  }
  for (; n - i >= 3; i += 3, o += 4) {
    encode_group((uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8) | in[i + 2], o);
  }
  if (n - i == 1) {
    encode_group(uint32_t{in[i]} << 16, o);
    o[2] = o[3] = kPad;
    o += 4;
  } else if (n - i == 2) {
    encode_group((uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8), o);
    o[3] = kPad;
    o += 4;
  }
  return static_cast<size_t>(o - out);
}

size_t decode_scalar(const char* in, size_t quanta, uint8_t* out) {
  size_t q = 0;
  // Two quanta per step: one validity test and one 8-byte store of which 6
  // bytes count; the 2 extra bytes are only stored while another quantum
  // follows (so they stay inside out[0, 3 * quanta)).
  for (; q + 2 <= quanta; q += 2) {
    const uint32_t a = decode_quantum(in + 4 * q);
    const uint32_t b = decode_quantum(in + 4 * q + 4);
    if ((a | b) & kDecodeBadMask) break;
    const uint64_t w = a | (uint64_t{b} << 24);
    if (q + 3 <= quanta) {
      std::memcpy(out + 3 * q, &w, sizeof w);
    } else {
      std::memcpy(out + 3 * q, &w, 6);
    }
  }
  for (; q < quanta; ++q) {
    const uint32_t a = decode_quantum(in + 4 * q);
    if (a & kDecodeBadMask) return q;
    std::memcpy(out + 3 * q, &a, 3);
  }
  return quanta;
}

namespace {

class FastEncoder final : public Encoder {
 public:
  explicit FastEncoder(Base64Isa isa) : isa_(isa) {}
  size_t encode(std::span<const uint8_t> in, char* out) const override {
    size_t done = 0;
    size_t written = 0;
    if (isa_ == Base64Isa::kAvx2) {
      done = encode_avx2(in.data(), in.size(), out);
      written = done / kQuantumBytes * kQuantumChars;
    }
    return written + encode_scalar(in.data() + done, in.size() - done, out + written);
  }
  std::string_view name() const override {
    return isa_ == Base64Isa::kAvx2 ? "fast-avx2" : "fast-scalar";
  }

 private:
  Base64Isa isa_;
};

class FastDecoder final : public StreamDecoder {
 public:
  explicit FastDecoder(Base64Isa isa) : isa_(isa) {}

 protected:
  size_t decode_bulk(const char* in, size_t quanta, uint8_t* out) override {
    size_t done = 0;
    if (isa_ == Base64Isa::kAvx2) done = decode_avx2(in, quanta, out);
    return done +
           decode_scalar(in + done * kQuantumChars, quanta - done, out + done * kQuantumBytes);
  }

  size_t decode_padded(const char* quantum, uint8_t* out) override {
    const uint32_t v0 = kCharValue[static_cast<uint8_t>(quantum[0])];
    const uint32_t v1 = kCharValue[static_cast<uint8_t>(quantum[1])];
    out[0] = static_cast<uint8_t>((v0 << 2) | (v1 >> 4));
    if (quantum[2] == kPad) return 1;
    const uint32_t v2 = kCharValue[static_cast<uint8_t>(quantum[2])];
    out[1] = static_cast<uint8_t>((v1 << 4) | (v2 >> 2));
    return 2;
  }

 private:
  Base64Isa isa_;
};

}  // namespace
}  // namespace detail

std::string_view to_string(Base64Isa isa) { return isa == Base64Isa::kAvx2 ? "avx2" : "scalar"; }

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

Base64Isa best_isa() { return cpu_has_avx2() ? Base64Isa::kAvx2 : Base64Isa::kScalar; }

const Encoder& fast_encoder(Base64Isa isa) {
  static const detail::FastEncoder scalar(Base64Isa::kScalar);
  static const detail::FastEncoder avx2(Base64Isa::kAvx2);
  if (isa == Base64Isa::kScalar) return scalar;
  if (!cpu_has_avx2()) std::abort();
  return avx2;
}

std::unique_ptr<Decoder> make_fast_decoder(Base64Isa isa) {
  if (isa == Base64Isa::kAvx2 && !cpu_has_avx2()) std::abort();
  return std::make_unique<detail::FastDecoder>(isa);
}

}  // namespace fsrv::codec
