// Buffers past the streaming-store threshold of the AVX2 kernels (4 MiB):
// output at every alignment, and errors inside the aligned prologue, the
// streamed pairs and the tail. Runs for fast-scalar too as a cross-check.

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <random>
#include <string>
#include <vector>

#include "fsrv/codec/base64.hpp"
#include "fsrv/codec/base64_fast.hpp"

namespace fsrv::codec {
namespace {

/// Just past the 4 MiB streaming threshold, not a multiple of 3 or 48.
constexpr size_t kLargeLen = (size_t{4} << 20) + 1001;
/// Output misalignments tried (the kernels align to 16 and 32 bytes).
constexpr size_t kMaxShift = 33;

std::vector<Base64Isa> isas() {
  std::vector<Base64Isa> v = {Base64Isa::kScalar};
  if (cpu_has_avx2()) v.push_back(Base64Isa::kAvx2);
  return v;
}

class LargeBuffers : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::mt19937_64 rng(2024);
    plain_ = new std::vector<uint8_t>(kLargeLen);
    for (auto& b : *plain_) b = static_cast<uint8_t>(rng());
    text_ = new std::string(encoded_size(kLargeLen) + 1, '\0');
    text_->resize(
        static_cast<size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(text_->data()),
                                            plain_->data(), static_cast<int>(kLargeLen))));
  }
  static void TearDownTestSuite() {
    delete plain_;
    delete text_;
  }
  static std::vector<uint8_t>* plain_;
  static std::string* text_;
};
std::vector<uint8_t>* LargeBuffers::plain_ = nullptr;
std::string* LargeBuffers::text_ = nullptr;

TEST_F(LargeBuffers, EncodeAtEveryOutputAlignment) {
  std::vector<char> out(encoded_size(kLargeLen) + kMaxShift);
  for (Base64Isa isa : isas()) {
    for (size_t shift : {0, 1, 2, 3, 4, 8, 12, 16, 20, 28, 31}) {
      const size_t n = fast_encoder(isa).encode(*plain_, out.data() + shift);
      ASSERT_EQ(n, text_->size());
      ASSERT_EQ(std::string_view(out.data() + shift, n), *text_) << to_string(isa) << " " << shift;
    }
  }
}

TEST_F(LargeBuffers, DecodeAtEveryOutputAlignment) {
  std::vector<uint8_t> out(decode_capacity(text_->size()) + kMaxShift);
  for (Base64Isa isa : isas()) {
    for (size_t shift = 0; shift < 16; ++shift) {
      auto dec = make_fast_decoder(isa);
      const DecodeStatus st = dec->update(*text_, out.data() + shift);
      ASSERT_TRUE(st.ok) << st.error;
      ASSERT_EQ(st.written, kLargeLen);
      ASSERT_TRUE(std::equal(plain_->begin(), plain_->end(), out.begin() + shift))
          << to_string(isa) << " " << shift;
      ASSERT_TRUE(dec->finish(nullptr).ok);
    }
  }
}

TEST_F(LargeBuffers, DecodeErrorsAnywhere) {
  std::vector<uint8_t> out(decode_capacity(text_->size()) + kMaxShift);
  const size_t positions[] = {0,
                              5,
                              17,
                              40,
                              63,
                              64,
                              95,
                              96,
                              100,
                              1000,
                              65536 + 7,
                              text_->size() / 2,
                              text_->size() - 70,
                              text_->size() - 5,
                              text_->size() - 1};
  for (Base64Isa isa : isas()) {
    for (size_t shift : {0, 3, 8, 13}) {
      for (size_t pos : positions) {
        std::string t = *text_;
        t[pos] = '*';
        auto dec = make_fast_decoder(isa);
        const DecodeStatus st = dec->update(t, out.data() + shift);
        ASSERT_FALSE(st.ok);
        EXPECT_EQ(st.error_offset, pos);
        EXPECT_EQ(st.written, pos / 4 * 3);
        EXPECT_TRUE(std::equal(plain_->begin(), plain_->begin() + pos / 4 * 3, out.begin() + shift))
            << to_string(isa) << " shift " << shift << " pos " << pos;
      }
    }
  }
}

}  // namespace
}  // namespace fsrv::codec
