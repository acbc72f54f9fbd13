// Form bodies (src/services/http/http_form.cpp): pure functions, checked
// byte by byte.

#include "fsrv/services/http/http_form.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace fsrv::services::http {
namespace {

using namespace std::string_literals;

std::vector<FormField> fields(std::initializer_list<std::pair<std::string, std::string>> nv) {
  std::vector<FormField> out;
  for (const auto& [n, v] : nv) out.push_back(FormField{n, v, "", "", false});
  return out;
}

TEST(HttpForm, UrlEncoded) {
  EXPECT_EQ(parse_urlencoded("a=1&b=2"), fields({{"a", "1"}, {"b", "2"}}));
  EXPECT_EQ(parse_urlencoded("name=J%C3%B6rg+M&x=a%2Bb%26c%3Dd"),
            fields({{"name", "J\xC3\xB6rg M"}, {"x", "a+b&c=d"}}));
  EXPECT_EQ(parse_urlencoded("&&a&b=&=c&"), fields({{"a", ""}, {"b", ""}, {"", "c"}}));
  EXPECT_EQ(parse_urlencoded("a=1=2"), fields({{"a", "1=2"}}));
  EXPECT_EQ(parse_urlencoded("b=2&a=1&b=3"), fields({{"b", "2"}, {"a", "1"}, {"b", "3"}}));
  EXPECT_EQ(parse_urlencoded("p=%zz%4&q=%"), fields({{"p", "%zz%4"}, {"q", "%"}}));
  EXPECT_EQ(parse_urlencoded("n=%00"), fields({{"n", "\0"s}}));
  EXPECT_EQ(parse_urlencoded("k%20=v%252"), fields({{"k ", "v%2"}}));  // once
  EXPECT_TRUE(parse_urlencoded("").empty());
  std::string many;
  for (size_t i = 0; i < kMaxFormFields + 10; ++i) many += "a=1&";
  EXPECT_EQ(parse_urlencoded(many).size(), kMaxFormFields);
}

TEST(HttpForm, MultipartBoundary) {
  EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=abc123").value, "abc123");
  EXPECT_EQ(multipart_boundary("Multipart/Form-Data;boundary=\"a b:c\"").value, "a b:c");
  EXPECT_EQ(multipart_boundary("multipart/form-data; charset=utf-8; BOUNDARY=x").value, "x");
  EXPECT_EQ(
      multipart_boundary("multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxk").value,
      "----WebKitFormBoundary7MA4YWxk");
  EXPECT_FALSE(multipart_boundary("multipart/form-data").ok());
  EXPECT_FALSE(multipart_boundary("multipart/form-data; boundary=").ok());
  EXPECT_FALSE(multipart_boundary("multipart/form-data; boundary=\"\"").ok());
  EXPECT_FALSE(multipart_boundary("multipart/form-data; boundary=\"abc").ok());
  EXPECT_FALSE(multipart_boundary("multipart/mixed; boundary=x").ok());
  EXPECT_FALSE(multipart_boundary("text/plain").ok());
  EXPECT_FALSE(multipart_boundary("multipart/form-data; boundary=" + std::string(71, 'a')).ok());
  EXPECT_TRUE(multipart_boundary("multipart/form-data; boundary=" + std::string(70, 'a')).ok());
  EXPECT_FALSE(multipart_boundary("multipart/form-data; boundary=\"ab \"").ok());
}

TEST(HttpForm, MultipartFields) {
  const std::string body =
      "preamble\r\n"
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"title\"\r\n"
      "\r\n"
      "Hello\r\nWorld\r\n"
      "--XyZ  \r\n"
      "Content-Disposition: form-data; name=\"file\"; filename=\"a \\\"b\\\".bin\"\r\n"
      "Content-Type: application/octet-stream\r\n"
      "\r\n"
      "\x00\x01\r\n--X\xff"s
      "\r\n"
      "--XyZ\r\n"
      "content-disposition: form-data; name=empty\r\n"
      "\r\n"
      "\r\n"
      "--XyZ--\r\n"
      "epilogue";
  auto r = parse_multipart(body, "XyZ");
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.value.size(), 3u);
  EXPECT_EQ(r.value[0], (FormField{"title", "Hello\r\nWorld", "", "", false}));
  EXPECT_EQ(r.value[1], (FormField{"file", "\x00\x01\r\n--X\xff"s, "a \"b\".bin",
                                   "application/octet-stream", true}));
  EXPECT_EQ(r.value[2], (FormField{"empty", "", "", "", false}));
}

TEST(HttpForm, MultipartNoPreambleAndEmptyForm) {
  auto r = parse_multipart("--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b--", "b");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.value, (std::vector<FormField>{{"a", "1", "", "", false}}));
  r = parse_multipart("--b--\r\n", "b");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.value.empty());
  // An empty filename still marks a file part (a form submitted without a
  // file chosen).
  r = parse_multipart(
      "--b\r\nContent-Disposition: form-data; name=f; filename=\"\"\r\n\r\n\r\n--b--", "b");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_TRUE(r.value[0].is_file);
  EXPECT_EQ(r.value[0].filename, "");
}

TEST(HttpForm, MultipartErrors) {
  const char* bad[] = {
      "",                                                                 // no delimiter
      "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1",           // no close
      "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--c--",  // wrong close
      "--b\r\nContent-Disposition: form-data\r\n\r\n1\r\n--b--",          // no name
      "--b\r\nContent-Type: text/plain\r\n\r\n1\r\n--b--",                // no disposition
      "--b\r\nContent-Disposition: attachment; name=a\r\n\r\n1\r\n--b--",
      "--b\r\nContent-Disposition: form-data; name=\"a\r\n\r\n1\r\n--b--",
      "--b\r\nNoColonHere\r\n\r\n1\r\n--b--",
      "--b\r\nContent-Disposition: form-data; name=a",  // headers cut
      "--bx\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b--",
  };
  for (const char* b : bad) EXPECT_FALSE(parse_multipart(b, "b").ok()) << b;
  EXPECT_FALSE(parse_multipart("--\r\n\r\n", "").ok());
  std::string big = "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n" +
                    std::string(kMaxMultipartBody, 'x') + "\r\n--b--";
  EXPECT_FALSE(parse_multipart(big, "b").ok());
  std::string many;
  for (size_t i = 0; i <= kMaxFormFields; ++i) {
    many += "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n\r\n";
  }
  many += "--b--";
  EXPECT_FALSE(parse_multipart(many, "b").ok());
}

}  // namespace
}  // namespace fsrv::services::http
