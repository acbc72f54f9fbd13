// Streaming decoder contract (base64.hpp, Decoder) for every implementation:
// libb64, fast-scalar and fast-avx2 (skipped without AVX2). Inputs are
// copied into exact-size heap buffers so ASan catches any read or write
// past them, SIMD tails included.

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fsrv/codec/base64.hpp"
#include "fsrv/codec/base64_fast.hpp"

namespace fsrv::codec {
namespace {

/// Every input length 0..kMaxLen is decoded whole and with random splits.
constexpr size_t kMaxLen = 4096;
/// Random multi-way splits tried per length.
constexpr int kRandomSplitsPerLength = 3;
/// Lengths 0..kAllSplitsDense and every kAllSplitsStride-th length above it
/// (plus kMaxLen) are also decoded with the input cut in two at every
/// possible point. Doing that for all 4097 lengths would be ~4e10 character
/// steps per implementation, far beyond the ~20 s budget of the suite.
constexpr size_t kAllSplitsDense = 200;
constexpr size_t kAllSplitsStride = 257;

enum class Impl { kLibb64, kScalar, kAvx2 };

std::string impl_name(const testing::TestParamInfo<Impl>& info) {
  switch (info.param) {
    case Impl::kLibb64:
      return "libb64";
    case Impl::kScalar:
      return "scalar";
    case Impl::kAvx2:
      return "avx2";
  }
  return "?";
}

/// Result of feeding a whole stream: concatenated output and last status.
struct Outcome {
  std::string bytes;
  DecodeStatus status;   // the failing call's status, or finish()'s
  int failed_call = -1;  // index of the failing update(), pieces.size() = finish
};

class DecoderTest : public testing::TestWithParam<Impl> {
 protected:
  void SetUp() override {
    if (GetParam() == Impl::kAvx2 && !cpu_has_avx2()) GTEST_SKIP() << "CPU lacks AVX2";
  }

  std::unique_ptr<Decoder> make() const {
    switch (GetParam()) {
      case Impl::kLibb64:
        return make_decoder(Base64Kind::kLibb64);
      case Impl::kScalar:
        return make_fast_decoder(Base64Isa::kScalar);
      case Impl::kAvx2:
        return make_fast_decoder(Base64Isa::kAvx2);
    }
    return nullptr;
  }

  /// Decodes `text` cut at the sorted positions `cuts`, each piece in its
  /// own exact-size buffer and each output buffer exactly decode_capacity().
  Outcome feed(std::string_view text, const std::vector<size_t>& cuts) const {
    auto dec = make();
    Outcome r;
    size_t begin = 0;
    for (size_t i = 0; i <= cuts.size(); ++i) {
      const size_t end = i < cuts.size() ? cuts[i] : text.size();
      const size_t n = end - begin;
      auto piece = std::make_unique<char[]>(n);
      std::copy(text.begin() + begin, text.begin() + end, piece.get());
      auto out = std::make_unique<uint8_t[]>(decode_capacity(n));
      r.status = dec->update({piece.get(), n}, out.get());
      EXPECT_LE(r.status.written, decode_capacity(n));
      r.bytes.append(reinterpret_cast<const char*>(out.get()), r.status.written);
      if (!r.status.ok) {
        r.failed_call = static_cast<int>(i);
        return r;
      }
      begin = end;
    }
    EXPECT_EQ(dec->consumed(), text.size());
    r.status = dec->finish(nullptr);
    if (!r.status.ok) r.failed_call = static_cast<int>(cuts.size()) + 1;
    return r;
  }

  Outcome feed(std::string_view text) const { return feed(text, {}); }

  void expect_error(const std::string& text, const std::string& want, int line) const {
    for (size_t cut = 0; cut <= text.size(); ++cut) {
      Outcome r = feed(text, {cut});
      EXPECT_FALSE(r.status.ok) << "line " << line << ": " << text << " cut " << cut;
      EXPECT_EQ(r.status.error, want) << "line " << line << ": " << text << " cut " << cut;
    }
  }
};

std::string random_bytes(size_t n, std::mt19937_64& rng) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

std::string openssl_encode(std::string_view in) {
  std::string out(encoded_size(in.size()) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::vector<size_t> random_cuts(size_t len, std::mt19937_64& rng) {
  std::vector<size_t> cuts;
  if (len == 0) return cuts;
  const int k = 1 + static_cast<int>(rng() % 3);
  for (int i = 0; i < k; ++i) cuts.push_back(rng() % (len + 1));
  std::sort(cuts.begin(), cuts.end());
  return cuts;
}

TEST_P(DecoderTest, EveryLengthWholeAndRandomSplits) {
  std::mt19937_64 rng(1234);
  for (size_t len = 0; len <= kMaxLen; ++len) {
    const std::string plain = random_bytes(len, rng);
    const std::string text = openssl_encode(plain);
    Outcome whole = feed(text);
    ASSERT_TRUE(whole.status.ok) << len << " " << whole.status.error;
    ASSERT_EQ(whole.bytes, plain) << "len " << len;
    for (int s = 0; s < kRandomSplitsPerLength; ++s) {
      Outcome r = feed(text, random_cuts(text.size(), rng));
      ASSERT_TRUE(r.status.ok) << len << " " << r.status.error;
      ASSERT_EQ(r.bytes, plain) << "len " << len;
    }
  }
}

TEST_P(DecoderTest, AllTwoWaySplitsForSampledLengths) {
  std::mt19937_64 rng(99);
  std::vector<size_t> lengths;
  for (size_t len = 0; len <= kAllSplitsDense; ++len) lengths.push_back(len);
  for (size_t len = kAllSplitsDense + kAllSplitsStride; len < kMaxLen; len += kAllSplitsStride) {
    lengths.push_back(len);
  }
  lengths.push_back(kMaxLen);
  for (size_t len : lengths) {
    const std::string plain = random_bytes(len, rng);
    const std::string text = openssl_encode(plain);
    for (size_t cut = 0; cut <= text.size(); ++cut) {
      Outcome r = feed(text, {cut});
      ASSERT_TRUE(r.status.ok) << len << " cut " << cut << " " << r.status.error;
      ASSERT_EQ(r.bytes, plain) << "len " << len << " cut " << cut;
    }
  }
}

TEST_P(DecoderTest, OneCharacterAtATime) {
  std::mt19937_64 rng(5);
  for (size_t len : {0, 1, 2, 3, 4, 5, 47, 48, 100, 301}) {
    const std::string plain = random_bytes(len, rng);
    const std::string text = openssl_encode(plain);
    std::vector<size_t> cuts;
    for (size_t i = 1; i < text.size(); ++i) cuts.push_back(i);
    Outcome r = feed(text, cuts);
    ASSERT_TRUE(r.status.ok) << r.status.error;
    EXPECT_EQ(r.bytes, plain);
  }
}

TEST_P(DecoderTest, BadCharacterAtEveryPosition) {
  // 192 bytes -> 256 characters, no padding: 8 AVX2 blocks, and the bad
  // character visits every lane position of each.
  std::mt19937_64 rng(77);
  const std::string plain = random_bytes(192, rng);
  const std::string text = openssl_encode(plain);
  const unsigned char bad_chars[] = {'*', ' ', '\n', '\r', '\t', '\0', '-',  '_',  '.', ':',
                                     '@', '[', '`',  '{',  0x7f, 0x80, 0xaf, 0xc1, 0xff};
  for (unsigned char bad : bad_chars) {
    for (size_t pos = 0; pos < text.size(); ++pos) {
      std::string t = text;
      t[pos] = static_cast<char>(bad);
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", bad);
      const std::string want =
          std::string("invalid base64 character ") + hex + " at offset " + std::to_string(pos);
      Outcome r = feed(t);
      ASSERT_FALSE(r.status.ok) << pos;
      EXPECT_EQ(r.failed_call, 0);
      EXPECT_EQ(r.status.error_offset, pos);
      EXPECT_EQ(r.status.error, want);
      // Every quantum before the bad one was decoded.
      EXPECT_EQ(r.bytes, plain.substr(0, pos / 4 * 3)) << pos;
      // Same offset, counted over the stream, when cut before it.
      const size_t cut = rng() % (pos + 1);
      Outcome s = feed(t, {cut});
      ASSERT_FALSE(s.status.ok);
      EXPECT_EQ(s.status.error, want) << "cut " << cut;
      EXPECT_EQ(s.bytes, plain.substr(0, pos / 4 * 3)) << pos << " cut " << cut;
    }
  }
}

/// Expects `text`, whole and cut in two at every point, to fail with `want`.
#define EXPECT_DECODE_ERROR(text, want) expect_error(text, want, __LINE__)

TEST_P(DecoderTest, PaddingRules) {
  EXPECT_DECODE_ERROR("A===", "misplaced padding at offset 1");
  EXPECT_DECODE_ERROR("====", "misplaced padding at offset 0");
  EXPECT_DECODE_ERROR("Zm9v=m9v", "misplaced padding at offset 4");
  EXPECT_DECODE_ERROR("Zm9vZ=9v", "misplaced padding at offset 5");
  EXPECT_DECODE_ERROR("Zm9vZm=v", "misplaced padding at offset 6");
  EXPECT_DECODE_ERROR("Zm9vZm9=Zm9v", "misplaced padding at offset 7");
  // '=' then data: the padded quantum is not the last one.
  EXPECT_DECODE_ERROR("Zg==Zg==", "misplaced padding at offset 2");
  EXPECT_DECODE_ERROR("Zm8=Zm9v", "misplaced padding at offset 3");
  EXPECT_DECODE_ERROR("Zg===", "misplaced padding at offset 2");
  EXPECT_DECODE_ERROR("Zm8==", "misplaced padding at offset 3");
  EXPECT_DECODE_ERROR("Zg=v", "misplaced padding at offset 2");
  // Lowest offset wins: the '=' at 2 is misplaced before the '*' at 3.
  EXPECT_DECODE_ERROR("Zg=*", "misplaced padding at offset 2");
  EXPECT_DECODE_ERROR("Zg==*", "misplaced padding at offset 2");
  EXPECT_DECODE_ERROR("Z*==", "invalid base64 character 0x2a at offset 1");
}

TEST_P(DecoderTest, PadAtEveryPositionOfALongStream) {
  std::mt19937_64 rng(8);
  const std::string text = openssl_encode(random_bytes(300, rng));  // 400 chars
  for (size_t pos = 0; pos < text.size(); ++pos) {
    std::string t = text;
    t[pos] = '=';
    Outcome r = feed(t);
    if (pos == text.size() - 1) {
      // "xxx=" at the very end is valid; its low 2 bits are dropped.
      EXPECT_TRUE(r.status.ok) << r.status.error;
      continue;
    }
    ASSERT_FALSE(r.status.ok) << pos;
    EXPECT_EQ(r.status.error, "misplaced padding at offset " + std::to_string(pos));
    EXPECT_EQ(r.status.error_offset, pos);
  }
}

TEST_P(DecoderTest, WhitespaceIsRejected) {
  EXPECT_DECODE_ERROR("Zm9v Zm9v", "invalid base64 character 0x20 at offset 4");
  EXPECT_DECODE_ERROR("Zm9v\nZm9v", "invalid base64 character 0x0a at offset 4");
  EXPECT_DECODE_ERROR("Zm9v\r\n", "invalid base64 character 0x0d at offset 4");
  EXPECT_DECODE_ERROR(" Zm9v", "invalid base64 character 0x20 at offset 0");
  EXPECT_DECODE_ERROR("Zm9vYg==\n", "misplaced padding at offset 6");
}

TEST_P(DecoderTest, FinishFailsOnTruncatedInput) {
  for (const char* t : {"Z", "Zm", "Zm9", "Zm9vY", "Zm9vYm", "Zm9vYmE", "Zg=", "Zm9vZg="}) {
    const std::string text = t;
    for (size_t cut = 0; cut <= text.size(); ++cut) {
      Outcome r = feed(text, {cut});
      EXPECT_FALSE(r.status.ok) << text;
      EXPECT_EQ(r.failed_call, 2) << text << " fails in finish()";
      EXPECT_EQ(r.status.error_offset, text.size());
      EXPECT_EQ(r.status.error,
                "truncated base64 (" + std::to_string(text.size()) + " characters)");
    }
  }
}

TEST_P(DecoderTest, FailureIsSticky) {
  auto dec = make();
  uint8_t out[decode_capacity(8)];
  DecodeStatus st = dec->update({"Zm*v", 4}, out);
  ASSERT_FALSE(st.ok);
  EXPECT_EQ(st.error_offset, 2u);
  st = dec->update({"Zm9v", 4}, out);
  EXPECT_FALSE(st.ok);
  EXPECT_EQ(st.written, 0u);
  EXPECT_EQ(st.error_offset, 2u);
  st = dec->finish(out);
  EXPECT_FALSE(st.ok);
  EXPECT_EQ(st.error, "invalid base64 character 0x2a at offset 2");
}

TEST_P(DecoderTest, EmptyUpdatesAndConsumed) {
  auto dec = make();
  uint8_t out[decode_capacity(8)];
  EXPECT_TRUE(dec->update({}, out).ok);
  EXPECT_EQ(dec->update({"Zm9", 3}, out).written, 0u);
  EXPECT_EQ(dec->consumed(), 3u);
  EXPECT_TRUE(dec->update({}, out).ok);
  DecodeStatus st = dec->update({"vYg", 3}, out);
  EXPECT_EQ(st.written, 3u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out), 3), "foo");
  st = dec->update({"==", 2}, out);
  EXPECT_EQ(st.written, 1u);
  EXPECT_EQ(out[0], 'b');
  EXPECT_EQ(dec->consumed(), 8u);
  EXPECT_TRUE(dec->finish(out).ok);
}

TEST_P(DecoderTest, NonCanonicalPadBitsAreAccepted) {
  // RFC 4648 s.3.5 lets decoders accept non-zero pad bits; OpenSSL and
  // libb64 do, and so do we (the bits are dropped).
  Outcome r = feed("Zh==");
  EXPECT_TRUE(r.status.ok);
  EXPECT_EQ(r.bytes, "f");
  r = feed("Zm9=");
  EXPECT_TRUE(r.status.ok);
  EXPECT_EQ(r.bytes, "fo");
}

TEST_P(DecoderTest, HandedBetweenThreads) {
  // Not thread-safe, but may move between threads between calls (TSan).
  std::mt19937_64 rng(11);
  const std::string plain = random_bytes(30000, rng);
  const std::string text = openssl_encode(plain);
  auto dec = make();
  std::string got;
  std::vector<uint8_t> out(decode_capacity(text.size()));
  const size_t chunk = 1001;
  for (size_t pos = 0; pos < text.size(); pos += chunk) {
    std::thread([&] {
      const size_t n = std::min(chunk, text.size() - pos);
      DecodeStatus st = dec->update({text.data() + pos, n}, out.data());
      ASSERT_TRUE(st.ok);
      got.append(reinterpret_cast<const char*>(out.data()), st.written);
    }).join();
  }
  EXPECT_TRUE(dec->finish(nullptr).ok);
  EXPECT_EQ(got, plain);
}

INSTANTIATE_TEST_SUITE_P(Base64, DecoderTest,
                         testing::Values(Impl::kLibb64, Impl::kScalar, Impl::kAvx2), impl_name);

}  // namespace
}  // namespace fsrv::codec
