#pragma once
// Internals shared by the base64 implementations in src/codec (not for use
// outside the codec module): the RFC 4648 s.4 character table and the
// streaming-decoder skeleton that gives every kind the same validation,
// padding and error-offset behaviour (see Decoder in base64.hpp).

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "fsrv/codec/base64.hpp"

namespace fsrv::codec::detail {

/// The 64-character alphabet of RFC 4648 s.4 (Table 1), index = 6-bit value.
inline constexpr char kAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// The padding character (RFC 4648 s.4).
inline constexpr char kPad = '=';
/// Characters per quantum (4) and bytes per quantum (3), RFC 4648 s.4.
inline constexpr size_t kQuantumChars = 4;
inline constexpr size_t kQuantumBytes = 3;

/// kCharValue[c]: 0..63 for alphabet characters, kPadValue for '=',
/// kBadValue for anything else.
inline constexpr uint8_t kBadValue = 0xff;
inline constexpr uint8_t kPadValue = 0xfe;
inline constexpr std::array<uint8_t, 256> kCharValue = [] {
  std::array<uint8_t, 256> t{};
  t.fill(kBadValue);
  for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(kAlphabet[i])] = static_cast<uint8_t>(i);
  t[static_cast<uint8_t>(kPad)] = kPadValue;
  return t;
}();

/// Streaming decoder skeleton. Keeps at most 3 characters between calls,
/// validates character by character around the bulk path, and asks the
/// subclass only to decode runs of whole, unpadded quanta (decode_bulk) and
/// a final padded quantum (decode_padded).
///
/// Error rule (one offset per broken stream): the reported error is the one
/// at the lowest offset. A '=' is misplaced when it is the 1st or 2nd
/// character of a quantum, or when anything but '=' follows it; in the
/// latter case the offset is that of the first '=' of the quantum. Bytes
/// after a complete padded quantum make its first '=' misplaced.
class StreamDecoder : public Decoder {
 public:
  DecodeStatus update(std::span<const char> in, uint8_t* out) final;
  DecodeStatus finish(uint8_t* out) final;
  uint64_t consumed() const final { return consumed_; }

 protected:
  /// Decodes up to `quanta` whole quanta (4 chars -> 3 bytes each) from
  /// `in`, stopping before the first quantum holding a character outside
  /// the alphabet ('=' included). Returns the number of quanta decoded; it
  /// wrote 3 * that many bytes to out and may use out[0, 3 * quanta + 1) as
  /// scratch (decode_capacity() leaves room). Must not read in[4 * quanta]
  /// or beyond.
  virtual size_t decode_bulk(const char* in, size_t quanta, uint8_t* out) = 0;
  /// Decodes one validated padded quantum ("xx==" -> 1 byte, "xxx=" -> 2
  /// bytes) into out; returns the bytes written.
  virtual size_t decode_padded(const char* quantum, uint8_t* out) = 0;

 private:
  /// Feeds one character through the validating state machine; may emit a
  /// quantum to out + *written. Returns false on failure (status_ set).
  bool push_char(char c, uint8_t* out, size_t* written);
  DecodeStatus fail(uint64_t offset, std::string message);

  char carry_[kQuantumChars] = {};
  size_t carry_n_ = 0;        // characters in carry_
  bool pad_pending_ = false;  // carry_ holds "xx="
  bool done_ = false;         // a padded quantum ended the stream
  uint64_t pad_offset_ = 0;   // offset of the first '=' seen
  uint64_t consumed_ = 0;
  bool failed_ = false;
  DecodeStatus failure_;
};

/// libb64-backed implementations (src/codec/base64_libb64.cpp).
const Encoder& libb64_encoder();
std::unique_ptr<Decoder> make_libb64_decoder();

/// AVX2 kernels (src/codec/base64_fast_avx2.cpp); call only if
/// cpu_has_avx2(). encode_avx2 encodes the longest prefix of whole 24-byte
/// blocks it can do without reading past in + n, returning the bytes
/// consumed (a multiple of 3; 4/3 as many chars written). decode_avx2
/// decodes whole 32-char blocks, stopping before the first block with a
/// non-alphabet character, never reading past in + 4 * quanta; returns the
/// quanta decoded (3 bytes each), using out[0, 3 * quanta + 1) as scratch.
size_t encode_avx2(const uint8_t* in, size_t n, char* out);
size_t decode_avx2(const char* in, size_t quanta, uint8_t* out);

/// Scalar kernels (src/codec/base64_fast.cpp): same contracts; the encoder
/// handles the tail and padding, so it always consumes everything and
/// returns the chars written.
size_t encode_scalar(const uint8_t* in, size_t n, char* out);
size_t decode_scalar(const char* in, size_t quanta, uint8_t* out);

}  // namespace fsrv::codec::detail
