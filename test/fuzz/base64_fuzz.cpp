// libFuzzer target for the base64 codecs (make fuzz [FUZZ_SECONDS=60]).
//
// Input layout: byte 0 picks a split fraction, the rest is the payload.
// 1. Round trip: the payload, as binary, is encoded by fast-scalar,
//    fast-avx2 (if the CPU has it), libb64 and OpenSSL EVP_EncodeBlock; all
//    texts must be identical, and decoding it with every decoder, split in
//    two at the chosen point, must give the payload back.
// 2. Differential decode: the payload, as base64 text, goes through every
//    decoder (same split). They must agree exactly (ok, error message,
//    offset, output). Against OpenSSL EVP_DecodeBlock we compare only where
//    the two definitions agree:
//    - if we accept, EVP_DecodeBlock must accept too and produce our bytes
//      (it returns 3 bytes per quantum, padding bytes as zeros, so we
//      compare our output with its first `written` bytes);
//    - if the text is only alphabet characters with a length divisible by
//      4 (no '=', no whitespace), EVP accepts and so must we.
//    Not compared: EVP skips leading/trailing whitespace, accepts '=' in
//    any position (decoding it as zero bits) and rejects lengths that are
//    not a multiple of 4 only after trimming; we reject all of those.

#include <openssl/evp.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fsrv/codec/base64.hpp"
#include "fsrv/codec/base64_fast.hpp"

namespace {

using namespace fsrv::codec;

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

struct Result {
  bool ok = true;
  std::string error;
  uint64_t offset = 0;
  std::string bytes;
};

/// Decodes `text` split at `cut`, pieces and outputs in exact-size heap
/// buffers so ASan sees any overrun.
Result decode(Decoder& dec, const std::string& text, size_t cut) {
  Result r;
  const size_t bounds[3] = {0, cut, text.size()};
  for (int i = 0; i < 2; ++i) {
    const size_t n = bounds[i + 1] - bounds[i];
    std::unique_ptr<char[]> piece(new char[n]);
    if (n != 0) std::memcpy(piece.get(), text.data() + bounds[i], n);
    std::unique_ptr<uint8_t[]> out(new uint8_t[decode_capacity(n)]);
    const DecodeStatus st = dec.update({piece.get(), n}, out.get());
    r.bytes.append(reinterpret_cast<const char*>(out.get()), st.written);
    if (!st.ok) {
      r.ok = false;
      r.error = st.error;
      r.offset = st.error_offset;
      return r;
    }
  }
  const DecodeStatus st = dec.finish(nullptr);
  r.ok = st.ok;
  r.error = st.error;
  r.offset = st.error_offset;
  return r;
}

std::vector<std::unique_ptr<Decoder>> decoders() {
  std::vector<std::unique_ptr<Decoder>> v;
  v.push_back(make_fast_decoder(Base64Isa::kScalar));
  if (cpu_has_avx2()) v.push_back(make_fast_decoder(Base64Isa::kAvx2));
  v.push_back(make_decoder(Base64Kind::kLibb64));
  return v;
}

std::vector<const Encoder*> encoders() {
  std::vector<const Encoder*> v = {&fast_encoder(Base64Isa::kScalar)};
  if (cpu_has_avx2()) v.push_back(&fast_encoder(Base64Isa::kAvx2));
  v.push_back(&encoder(Base64Kind::kLibb64));
  return v;
}

/// Byte 0 / 255 of the way through the text.
size_t split_point(uint8_t selector, size_t len) { return len * selector / 255; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  const size_t n = size - 1;
  std::unique_ptr<uint8_t[]> payload(new uint8_t[n]);  // exact size for ASan
  if (n != 0) std::memcpy(payload.get(), data + 1, n);

  // 1. Round trip.
  std::string want(encoded_size(n) + 1, '\0');
  want.resize(static_cast<size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(want.data()),
                                                  payload.get(), static_cast<int>(n))));
  for (const Encoder* enc : encoders()) {
    std::unique_ptr<char[]> text(new char[encoded_size(n)]);
    FUZZ_CHECK(enc->encode({payload.get(), n}, text.get()) == want.size());
    FUZZ_CHECK(std::memcmp(text.get(), want.data(), want.size()) == 0);
  }
  const std::string plain(reinterpret_cast<const char*>(payload.get()), n);
  for (auto& dec : decoders()) {
    const Result r = decode(*dec, want, split_point(selector, want.size()));
    FUZZ_CHECK(r.ok);
    FUZZ_CHECK(r.bytes == plain);
  }

  // 2. Differential decode of the payload as text.
  const std::string text = plain;
  const size_t cut = split_point(selector, text.size());
  auto decs = decoders();
  const Result first = decode(*decs[0], text, cut);
  for (size_t i = 1; i < decs.size(); ++i) {
    const Result r = decode(*decs[i], text, cut);
    FUZZ_CHECK(r.ok == first.ok);
    FUZZ_CHECK(r.error == first.error);
    FUZZ_CHECK(r.offset == first.offset);
    FUZZ_CHECK(r.bytes == first.bytes);
  }
  if (!first.ok) FUZZ_CHECK(first.offset <= text.size());

  std::vector<unsigned char> evp_out(text.size() / 4 * 3 + 3);
  const int evp =
      EVP_DecodeBlock(evp_out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                      static_cast<int>(text.size()));
  if (first.ok) {
    FUZZ_CHECK(evp >= 0);
    FUZZ_CHECK(static_cast<size_t>(evp) >= first.bytes.size());
    FUZZ_CHECK(std::memcmp(evp_out.data(), first.bytes.data(), first.bytes.size()) == 0);
  }
  bool only_alphabet = text.size() % 4 == 0;
  for (char c : text) {
    const bool in_alphabet = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                             (c >= '0' && c <= '9') || c == '+' || c == '/';
    only_alphabet = only_alphabet && in_alphabet;
  }
  if (only_alphabet) {
    FUZZ_CHECK(evp >= 0);
    FUZZ_CHECK(first.ok);
  }
  return 0;
}
