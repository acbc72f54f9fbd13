// Every implementation produces the same text as OpenSSL's EVP_EncodeBlock
// and as libb64 with its line breaks removed, and decodes it back, for
// random inputs of every length 0..4096.

#include <gtest/gtest.h>
#include <openssl/evp.h>

extern "C" {
#include <b64/cencode.h>
}

#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fsrv/codec/base64.hpp"
#include "fsrv/codec/base64_fast.hpp"

namespace fsrv::codec {
namespace {

/// Largest input length tested exhaustively (every length 0..kMaxLen).
constexpr size_t kMaxLen = 4096;

std::vector<uint8_t> random_bytes(size_t n, std::mt19937_64& rng) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

std::string openssl_encode(const std::vector<uint8_t>& in) {
  std::string out(encoded_size(in.size()) + 1, '\0');  // EVP adds a NUL
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), in.data(),
                                static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

/// libb64 called directly (not through our wrapper), '\n' removed.
std::string raw_libb64_encode(const std::vector<uint8_t>& in) {
  std::string out(encoded_size(in.size()) * 2 + 8, '\0');  // room for its '\n's
  base64_encodestate state;
  base64_init_encodestate(&state);
  int n = base64_encode_block(reinterpret_cast<const char*>(in.data()), static_cast<int>(in.size()),
                              out.data(), &state);
  n += base64_encode_blockend(out.data() + n, &state);
  out.resize(static_cast<size_t>(n));
  std::erase(out, '\n');
  return out;
}

std::string encode(const Encoder& enc, const std::vector<uint8_t>& in) {
  // One guard byte past the end catches writes beyond encoded_size().
  std::string out(encoded_size(in.size()) + 1, '#');
  const size_t n = enc.encode(in, out.data());
  EXPECT_EQ(out.back(), '#') << enc.name() << " wrote past encoded_size";
  out.resize(n);
  return out;
}

std::vector<const Encoder*> encoders() {
  std::vector<const Encoder*> v = {&encoder(Base64Kind::kLibb64),
                                   &fast_encoder(Base64Isa::kScalar)};
  if (cpu_has_avx2()) v.push_back(&fast_encoder(Base64Isa::kAvx2));
  return v;
}

TEST(Base64Equivalence, EncodeMatchesOpenSslAndLibb64ForEveryLength) {
  std::mt19937_64 rng(42);
  const auto encs = encoders();
  for (size_t len = 0; len <= kMaxLen; ++len) {
    const auto in = random_bytes(len, rng);
    const std::string want = openssl_encode(in);
    ASSERT_EQ(want.size(), encoded_size(len));
    ASSERT_EQ(raw_libb64_encode(in), want) << "len " << len;
    for (const Encoder* enc : encs) {
      ASSERT_EQ(encode(*enc, in), want) << enc->name() << " len " << len;
    }
  }
}

TEST(Base64Equivalence, EncodeLargeBuffers) {
  // Past libb64's 3 KiB chunks and the SIMD block loops, odd sizes.
  std::mt19937_64 rng(7);
  for (size_t len : {size_t{100000}, size_t{1} << 20, (size_t{1} << 20) + 2}) {
    const auto in = random_bytes(len, rng);
    const std::string want = openssl_encode(in);
    for (const Encoder* enc : encoders()) {
      ASSERT_EQ(encode(*enc, in), want) << enc->name() << " len " << len;
    }
  }
}

TEST(Base64Equivalence, EncodeIsThreadSafe) {
  // One shared encoder used from several threads at once (TSan checks it).
  std::mt19937_64 rng(3);
  const auto in = random_bytes(10000, rng);
  const std::string want = openssl_encode(in);
  for (const Encoder* enc : encoders()) {
    std::vector<std::thread> threads;
    std::vector<int> ok(4, 0);
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        int good = 0;
        for (int i = 0; i < 20; ++i) good += encode(*enc, in) == want;
        ok[t] = good;
      });
    }
    for (auto& th : threads) th.join();
    for (int t = 0; t < 4; ++t) EXPECT_EQ(ok[t], 20) << enc->name();
  }
}

}  // namespace
}  // namespace fsrv::codec
