// The streaming decoder at literally every split point: for every input
// length 0..4096, the base64 text is cut in two at every position and fed as
// two update() calls, for the scalar and the AVX2 path in turn; the result
// must equal the input. (~11 million decodes per path; sanitizer runs, which
// set FSRV_SMALL, take every 31st length: TSan is ~40x slower here.)

#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "fsrv/codec/base64.hpp"
#include "fsrv/codec/base64_fast.hpp"

namespace fsrv::codec {
namespace {

constexpr size_t kMaxLen = 4096;

class EverySplit : public ::testing::TestWithParam<Base64Isa> {};

TEST_P(EverySplit, TwoPieceDecodeAtEveryPositionOfEveryLength) {
  if (GetParam() == Base64Isa::kAvx2 && !cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
  const size_t stride = getenv("FSRV_SMALL") ? 31 : 1;
  std::mt19937_64 rng(4648);
  const Encoder& enc = fast_encoder(Base64Isa::kScalar);
  std::vector<uint8_t> out(decode_capacity(encoded_size(kMaxLen)) * 2);
  size_t failures = 0;
  for (size_t n = 0; n <= kMaxLen && failures < 5; n += stride) {
    std::vector<uint8_t> raw(n);
    for (auto& b : raw) b = static_cast<uint8_t>(rng());
    std::string text(encoded_size(n), '\0');
    enc.encode(raw, text.data());
    for (size_t cut = 0; cut <= text.size(); ++cut) {
      auto dec = make_fast_decoder(GetParam());
      DecodeStatus a = dec->update({text.data(), cut}, out.data());
      DecodeStatus b = dec->update({text.data() + cut, text.size() - cut}, out.data() + a.written);
      DecodeStatus c = dec->finish(out.data() + a.written + b.written);
      size_t got = a.written + b.written + c.written;
      if (!a.ok || !b.ok || !c.ok || got != n || !std::equal(raw.begin(), raw.end(), out.begin())) {
        ADD_FAILURE() << "length " << n << " cut at " << cut << ": " << a.error << b.error
                      << c.error << " (" << got << " bytes)";
        ++failures;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, EverySplit, ::testing::Values(Base64Isa::kScalar, Base64Isa::kAvx2),
                         [](const auto& info) {
                           return info.param == Base64Isa::kAvx2 ? "avx2" : "scalar";
                         });

}  // namespace
}  // namespace fsrv::codec
