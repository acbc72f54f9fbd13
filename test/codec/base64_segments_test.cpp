// The segmented decoder (make_segmented_decoder): concatenated, separately
// padded base64 segments as seed 001's client sends them (each 1 MiB chunk
// encoded on its own), fed whole and cut at every position.

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "fsrv/codec/base64.hpp"

namespace fsrv::codec {
namespace {

std::string enc(const std::string& raw) {
  std::string out(encoded_size(raw.size()), '\0');
  encoder(Base64Kind::kFast)
      .encode({reinterpret_cast<const uint8_t*>(raw.data()), raw.size()}, out.data());
  return out;
}

/// Decodes `text` fed as pieces cut at `cuts` (ascending); returns ok/bytes.
std::pair<DecodeStatus, std::string> decode(Base64Kind kind, const std::string& text,
                                            std::vector<size_t> cuts) {
  auto d = make_segmented_decoder(kind);
  std::string out;
  std::vector<uint8_t> buf(decode_capacity(text.size()) + 8);
  size_t from = 0;
  cuts.push_back(text.size());
  for (size_t c : cuts) {
    DecodeStatus s = d->update({text.data() + from, c - from}, buf.data());
    if (!s.ok) return {s, out};
    out.append(reinterpret_cast<char*>(buf.data()), s.written);
    from = c;
  }
  DecodeStatus f = d->finish(buf.data());
  return {f, out};
}

class Segments : public ::testing::TestWithParam<Base64Kind> {};

TEST_P(Segments, SeparatelyPaddedSegmentsDecodeAtEveryCut) {
  std::mt19937_64 rng(1);
  // Segment sizes cover every padding: 0, 1 and 2 '='.
  for (std::vector<size_t> sizes : std::vector<std::vector<size_t>>{
           {1, 2}, {2, 1, 3}, {4, 5, 6}, {3, 3}, {7}, {1, 1, 1, 1}, {0, 2}, {10, 11, 0, 1}}) {
    std::string raw, text;
    for (size_t n : sizes) {
      std::string part(n, '\0');
      for (auto& c : part) c = static_cast<char>(rng());
      raw += part;
      text += enc(part);
    }
    SCOPED_TRACE(text);
    auto [st, got] = decode(GetParam(), text, {});
    EXPECT_TRUE(st.ok) << st.error;
    EXPECT_EQ(got, raw);
    for (size_t a = 0; a <= text.size(); ++a) {
      for (size_t b = a; b <= text.size(); ++b) {
        auto [s2, g2] = decode(GetParam(), text, {a, b});
        ASSERT_TRUE(s2.ok) << a << "," << b << ": " << s2.error;
        ASSERT_EQ(g2, raw) << a << "," << b;
      }
    }
  }
}

TEST_P(Segments, MiBChunksOfTheSeedClient) {
  std::string raw(3 * (1 << 20) + 12345, '\0');
  std::mt19937_64 rng(2);
  for (auto& c : raw) c = static_cast<char>(rng());
  std::string text;
  for (size_t off = 0; off < raw.size(); off += 1 << 20) text += enc(raw.substr(off, 1 << 20));
  ASSERT_NE(text.find('='), text.size() - 1);  // 1 MiB is not a multiple of 3: mid-stream '='
  auto [st, got] = decode(GetParam(), text, {1000, 1398101, 1398102, 2796203, 4000000});
  EXPECT_TRUE(st.ok) << st.error;
  EXPECT_EQ(got, raw);
}

TEST_P(Segments, ErrorsCarryTheWholeStreamOffset) {
  auto [s1, g1] = decode(GetParam(), "QQ==QU*D", {});
  EXPECT_FALSE(s1.ok);
  EXPECT_EQ(s1.error_offset, 6u);
  EXPECT_NE(s1.error.find("offset 6"), std::string::npos) << s1.error;
  auto [s2, g2] = decode(GetParam(), "QQ=x", {});  // '=' then data in one quantum
  EXPECT_FALSE(s2.ok);
  auto [s3, g3] = decode(GetParam(), "QQ==QUJ", {});  // truncated last segment
  EXPECT_FALSE(s3.ok);
  auto [s4, g4] = decode(GetParam(), "QQ==", {3});
  EXPECT_TRUE(s4.ok);
  EXPECT_EQ(g4, "A");
}

INSTANTIATE_TEST_SUITE_P(Kinds, Segments, ::testing::Values(Base64Kind::kFast, Base64Kind::kLibb64),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace fsrv::codec
