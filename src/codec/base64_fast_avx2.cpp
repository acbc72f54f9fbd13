// AVX2 kernels of the kFast codec, after Wojciech Mula and Daniel Lemire,
// "Faster Base64 Encoding and Decoding Using AVX2 Instructions" (ACM TOW
// 2018). Compiled with __attribute__((target("avx2"))) so the rest of the
// program needs no -mavx2; callers check cpu_has_avx2() first.
//
// Encode, 24 bytes -> 32 chars per block: each 128-bit lane gets 12 input
// bytes; a byte shuffle spreads every 3 bytes over a 32-bit word, two 16-bit
// multiplies move the four 6-bit fields to the bottom of their bytes, and a
// 16-entry pshufb table adds the ASCII offset of each value range.
// Decode, 32 chars -> 24 bytes per block: two pshufb lookups on the low and
// high nibble classify every byte (their AND is non-zero exactly for bytes
// outside the alphabet, '=' included), a third lookup gives the offset that
// turns ASCII into 6-bit values, and maddubs/madd + shuffles pack the bits.

#include <immintrin.h>

#include "fsrv/codec/base64_detail.hpp"

namespace fsrv::codec::detail {
namespace {

#define FSRV_AVX2 __attribute__((target("avx2")))

/// Encode block: 24 input bytes, 32 output characters.
constexpr size_t kEncBlockIn = 24;
constexpr size_t kEncBlockOut = 32;
/// The two 16-byte lane loads read in[0, 28): 4 bytes past the block.
constexpr size_t kEncReadSpan = 12 + 16;
/// Decode block: 32 characters (8 quanta), 24 output bytes.
constexpr size_t kDecBlockQuanta = 8;
constexpr size_t kDecBlockChars = 32;
constexpr size_t kDecBlockOut = 24;
static_assert(kDecBlockChars == kDecBlockQuanta * 4 && kDecBlockOut == kDecBlockQuanta * 3);
/// A full 32-byte store of a decoded block writes 8 bytes past its 24; it is
/// only used while 3 more quanta (>= 8 bytes) follow in the same call.
constexpr size_t kDecFullStoreSlackQuanta = 3;

/// Outputs of at least this many bytes (encode: input bytes, decode: output
/// bytes) are written with non-temporal (streaming) stores: they would not
/// stay in the 2 MiB per-core L2 anyway, and bypassing the cache saves the
/// read-for-ownership of every output line, about a third of the memory
/// traffic. Smaller (server-chunk sized) outputs stay cached for the
/// socket write that follows.
constexpr size_t kStreamingThreshold = size_t{4} << 20;
/// Streaming stores need 32-byte aligned destinations.
constexpr uintptr_t kAvxAlign = 32;
/// Decoded blocks are streamed with 16-byte stores, which need 16-byte
/// alignment; 11 is the inverse of 3 (bytes per quantum) modulo 16.
constexpr uintptr_t kStreamAlign16 = 16;
constexpr uintptr_t kInverse3Mod16 = 11;
/// Groups of 3 bytes -> 4 chars the scalar prologue may need to align the
/// output (only possible when it is 4-byte aligned).
constexpr uintptr_t kCharsPerGroup = 4;

/// 12 input bytes per lane -> 4 bytes per 3 input bytes: the 16 output
/// positions as (1,0,2,1) of each triple so that the multiplies below can
/// extract the fields (Mula/Lemire "enc_reshuffle").
FSRV_AVX2 inline __m256i enc_reshuffle(__m256i in) {
  const __m256i shuf = _mm256_setr_epi8(1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10,  //
                                        1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10);
  in = _mm256_shuffle_epi8(in, shuf);
  // Fields a (bits 10..15 of word 0 -> byte 0) and c (bits 6..11 of word 1
  // -> byte 2): mulhi by 2^6 and 2^10.
  const __m256i t0 = _mm256_and_si256(in, _mm256_set1_epi32(0x0fc0fc00));
  const __m256i t1 = _mm256_mulhi_epu16(t0, _mm256_set1_epi32(0x04000040));
  // Fields b and d: mullo by 2^4 and 2^8.
  const __m256i t2 = _mm256_and_si256(in, _mm256_set1_epi32(0x003f03f0));
  const __m256i t3 = _mm256_mullo_epi16(t2, _mm256_set1_epi32(0x01000010));
  return _mm256_or_si256(t1, t3);
}

/// 6-bit values -> ASCII: value ranges 0..25 'A', 26..51 'a', 52..61 '0',
/// 62 '+', 63 '/'. saturating-subtract 51 maps 52..63 to 1..12 and the rest
/// to 0; values < 26 are then bumped to 13; pshufb picks the offset.
FSRV_AVX2 inline __m256i enc_translate(__m256i v) {
  const __m256i offsets =
      _mm256_setr_epi8('a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
                       '0' - 52, '0' - 52, '0' - 52, '0' - 52, '+' - 62, '/' - 63, 'A', 0, 0,  //
                       'a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
                       '0' - 52, '0' - 52, '0' - 52, '0' - 52, '+' - 62, '/' - 63, 'A', 0, 0);
  __m256i idx = _mm256_subs_epu8(v, _mm256_set1_epi8(51));
  const __m256i less = _mm256_cmpgt_epi8(_mm256_set1_epi8(26), v);
  idx = _mm256_or_si256(idx, _mm256_and_si256(less, _mm256_set1_epi8(13)));
  return _mm256_add_epi8(_mm256_shuffle_epi8(offsets, idx), v);
}

template <bool kStream>
FSRV_AVX2 inline void encode_block(const uint8_t* in, char* out) {
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in));
  const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 12));
  const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
  const __m256i chars = enc_translate(enc_reshuffle(v));
  if constexpr (kStream) {
    _mm256_stream_si256(reinterpret_cast<__m256i*>(out), chars);
  } else {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), chars);
  }
}

/// Block loops of encode_avx2 from in[i]/o; returns the new i.
template <bool kStream>
FSRV_AVX2 inline size_t encode_blocks(const uint8_t* in, size_t n, size_t i, char* o) {
  for (; n - i >= kEncBlockIn + kEncReadSpan; i += 2 * kEncBlockIn, o += 2 * kEncBlockOut) {
    encode_block<kStream>(in + i, o);
    encode_block<kStream>(in + i + kEncBlockIn, o + kEncBlockOut);
  }
  for (; n - i >= kEncReadSpan; i += kEncBlockIn, o += kEncBlockOut)
    encode_block<kStream>(in + i, o);
  return i;
}

/// Classifies 32 characters; returns their 6-bit values, and sets *bad if
/// any is outside the alphabet.
FSRV_AVX2 inline __m256i dec_translate(__m256i str, bool* bad) {
  // lut_lo[low nibble] & lut_hi[high nibble] != 0  <=>  not in the alphabet.
  const __m256i lut_lo =
      _mm256_setr_epi8(0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1a, 0x1b,
                       0x1b, 0x1b, 0x1a, 0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                       0x13, 0x1a, 0x1b, 0x1b, 0x1b, 0x1a);
  const __m256i lut_hi =
      _mm256_setr_epi8(0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10, 0x10,
                       0x10, 0x10, 0x10, 0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10,
                       0x10, 0x10, 0x10, 0x10, 0x10, 0x10);
  // Offset to add per high nibble ('/' gets its own slot via eq_2f).
  const __m256i lut_roll =
      _mm256_setr_epi8(0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 19, 4, -65,
                       -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m256i mask_2f = _mm256_set1_epi8(0x2f);
  const __m256i hi_nibbles = _mm256_and_si256(_mm256_srli_epi32(str, 4), mask_2f);
  const __m256i lo_nibbles = _mm256_and_si256(str, mask_2f);
  const __m256i hi = _mm256_shuffle_epi8(lut_hi, hi_nibbles);
  const __m256i lo = _mm256_shuffle_epi8(lut_lo, lo_nibbles);
  const __m256i eq_2f = _mm256_cmpeq_epi8(str, mask_2f);
  const __m256i roll = _mm256_shuffle_epi8(lut_roll, _mm256_add_epi8(eq_2f, hi_nibbles));
  *bad = !_mm256_testz_si256(lo, hi);
  return _mm256_add_epi8(str, roll);
}

/// 32 6-bit values -> 24 bytes in the low 24 bytes of the result.
FSRV_AVX2 inline __m256i dec_pack(__m256i v) {
  // Merge pairs: [00aaaaaa 00bbbbbb] -> 12 bits, then pairs of those -> 24.
  const __m256i ab = _mm256_maddubs_epi16(v, _mm256_set1_epi32(0x01400140));
  const __m256i abcd = _mm256_madd_epi16(ab, _mm256_set1_epi32(0x00011000));
  const __m256i bytes = _mm256_shuffle_epi8(
      abcd, _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1,  //
                             2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1));
  return _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 3));
}

}  // namespace

FSRV_AVX2 size_t encode_avx2(const uint8_t* in, size_t n, char* out) {
  const uintptr_t addr = reinterpret_cast<uintptr_t>(out);
  if (n < kStreamingThreshold || addr % kCharsPerGroup != 0) {
    return encode_blocks<false>(in, n, 0, out);
  }
  // Scalar prologue up to a 32-byte aligned output, then streaming stores.
  const size_t groups = (kAvxAlign - addr % kAvxAlign) % kAvxAlign / kCharsPerGroup;
  const size_t head = groups * kQuantumBytes;
  encode_scalar(in, head, out);
  const size_t i = encode_blocks<true>(in, n, head, out + groups * kCharsPerGroup);
  _mm_sfence();  // order the streaming stores before anything that follows
  return i;
}

/// Streaming decode: two blocks (48 bytes = three 16-byte lines) per step,
/// stored with non-temporal 16-byte stores; `out` must be 16-byte aligned.
/// Stops before a pair with a bad character, or when fewer than 2 blocks
/// remain; returns the quanta decoded.
FSRV_AVX2 size_t decode_pairs_streaming(const char* in, size_t quanta, uint8_t* out) {
  size_t q = 0;
  for (; quanta - q >= 2 * kDecBlockQuanta; q += 2 * kDecBlockQuanta) {
    const char* p = in + q * kQuantumChars;
    bool bad0, bad1;
    const __m256i b0 =
        dec_pack(dec_translate(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), &bad0));
    const __m256i b1 = dec_pack(dec_translate(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kDecBlockChars)), &bad1));
    if (bad0 || bad1) break;
    __m128i* o = reinterpret_cast<__m128i*>(out + q * kQuantumBytes);
    const __m128i lo1 = _mm256_castsi256_si128(b1);
    _mm_stream_si128(o, _mm256_castsi256_si128(b0));                                    // 0..15
    _mm_stream_si128(o + 1, _mm_unpacklo_epi64(_mm256_extracti128_si256(b0, 1), lo1));  // 16..31
    _mm_stream_si128(o + 2, _mm_alignr_epi8(_mm256_extracti128_si256(b1, 1), lo1, 8));  // 32..47
  }
  _mm_sfence();  // order the streaming stores before anything that follows
  return q;
}

FSRV_AVX2 size_t decode_avx2(const char* in, size_t quanta, uint8_t* out) {
  size_t q = 0;
  if (quanta * kQuantumBytes >= kStreamingThreshold) {
    // Scalar prologue of k quanta so that out + 3k is 16-byte aligned
    // (3 * 11 = 33 = 1 mod 16, so k = 11 * misalignment mod 16).
    const size_t mis =
        (kStreamAlign16 - reinterpret_cast<uintptr_t>(out) % kStreamAlign16) % kStreamAlign16;
    const size_t head = mis * kInverse3Mod16 % kStreamAlign16;
    q = decode_scalar(in, head, out);
    if (q < head) return q;
    q += decode_pairs_streaming(in + q * kQuantumChars, quanta - q, out + q * kQuantumBytes);
  }
  for (; quanta - q >= kDecBlockQuanta; q += kDecBlockQuanta) {
    const __m256i str =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + q * kQuantumChars));
    bool bad;
    const __m256i bytes = dec_pack(dec_translate(str, &bad));
    if (bad) break;
    uint8_t* o = out + q * kQuantumBytes;
    if (quanta - q >= kDecBlockQuanta + kDecFullStoreSlackQuanta) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), bytes);
    } else {
      const __m128i lo = _mm256_castsi256_si128(bytes);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o), lo);
      _mm_storel_epi64(reinterpret_cast<__m128i*>(o + 16), _mm256_extracti128_si256(bytes, 1));
    }
  }
  return q;
}

#undef FSRV_AVX2

}  // namespace fsrv::codec::detail
