// RFC 4648 section 10 test vectors and the kind/ISA plumbing, for every
// implementation (libb64, fast-scalar, fast-avx2 where the CPU has it).

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fsrv/codec/base64.hpp"
#include "fsrv/codec/base64_fast.hpp"

namespace fsrv::codec {
namespace {

struct Vector {
  const char* plain;
  const char* encoded;
};

/// RFC 4648 s.10 "Test Vectors" (BASE64 part).
constexpr Vector kRfcVectors[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

std::string encode_with(const Encoder& enc, std::string_view plain) {
  std::string out(encoded_size(plain.size()), '?');
  const size_t n =
      enc.encode({reinterpret_cast<const uint8_t*>(plain.data()), plain.size()}, out.data());
  EXPECT_EQ(n, out.size());
  return out;
}

std::string decode_with(Decoder& dec, std::string_view text, DecodeStatus* st) {
  std::string out(decode_capacity(text.size()), '\0');
  *st = dec.update({text.data(), text.size()}, reinterpret_cast<uint8_t*>(out.data()));
  out.resize(st->written);
  if (st->ok) *st = dec.finish(nullptr);
  return out;
}

/// One implementation under test.
struct Impl {
  std::string label;
  const Encoder* enc;
  std::unique_ptr<Decoder> (*make)();
};

std::vector<Impl> impls() {
  std::vector<Impl> v = {
      {"libb64", &encoder(Base64Kind::kLibb64), [] { return make_decoder(Base64Kind::kLibb64); }},
      {"fast", &encoder(Base64Kind::kFast), [] { return make_decoder(Base64Kind::kFast); }},
      {"fast-scalar", &fast_encoder(Base64Isa::kScalar),
       [] { return make_fast_decoder(Base64Isa::kScalar); }},
  };
  if (cpu_has_avx2()) {
    v.push_back({"fast-avx2", &fast_encoder(Base64Isa::kAvx2),
                 [] { return make_fast_decoder(Base64Isa::kAvx2); }});
  }
  return v;
}

TEST(Base64Rfc, Section10VectorsEncode) {
  for (const Impl& impl : impls()) {
    for (const Vector& v : kRfcVectors) {
      EXPECT_EQ(encode_with(*impl.enc, v.plain), v.encoded) << impl.label << " " << v.plain;
    }
  }
}

TEST(Base64Rfc, Section10VectorsDecode) {
  for (const Impl& impl : impls()) {
    for (const Vector& v : kRfcVectors) {
      auto dec = impl.make();
      DecodeStatus st;
      EXPECT_EQ(decode_with(*dec, v.encoded, &st), v.plain) << impl.label << " " << v.encoded;
      EXPECT_TRUE(st.ok) << impl.label << " " << st.error;
      EXPECT_EQ(dec->consumed(), std::string_view(v.encoded).size());
    }
  }
}

TEST(Base64Kind, ParseAndName) {
  Base64Kind k = Base64Kind::kLibb64;
  EXPECT_TRUE(parse_base64_kind("fast", k));
  EXPECT_EQ(k, Base64Kind::kFast);
  EXPECT_TRUE(parse_base64_kind("libb64", k));
  EXPECT_EQ(k, Base64Kind::kLibb64);
  EXPECT_FALSE(parse_base64_kind("Fast", k));
  EXPECT_FALSE(parse_base64_kind("", k));
  EXPECT_EQ(k, Base64Kind::kLibb64);  // untouched on failure
  EXPECT_EQ(to_string(Base64Kind::kFast), "fast");
  EXPECT_EQ(to_string(Base64Kind::kLibb64), "libb64");
  EXPECT_EQ(encoder(Base64Kind::kLibb64).name(), "libb64");
  EXPECT_EQ(fast_encoder(Base64Isa::kScalar).name(), "fast-scalar");
  EXPECT_EQ(encoder(Base64Kind::kFast).name(), cpu_has_avx2() ? "fast-avx2" : "fast-scalar");
  EXPECT_EQ(to_string(Base64Isa::kAvx2), "avx2");
  EXPECT_EQ(to_string(Base64Isa::kScalar), "scalar");
}

TEST(Base64Sizes, EncodedSizeAndCapacity) {
  EXPECT_EQ(encoded_size(0), 0u);
  EXPECT_EQ(encoded_size(1), 4u);
  EXPECT_EQ(encoded_size(3), 4u);
  EXPECT_EQ(encoded_size(4), 8u);
  EXPECT_EQ(decode_capacity(0), 3u);
  EXPECT_EQ(decode_capacity(4), 6u);
}

}  // namespace
}  // namespace fsrv::codec
