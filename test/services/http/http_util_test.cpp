// HTTP helpers (src/services/http/http_util.cpp): pure functions, checked
// byte by byte.

#include "fsrv/services/http/http_util.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace fsrv::services::http {
namespace {

using namespace std::string_literals;

TEST(HttpUtil, IEquals) {
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_FALSE(iequals("Content-Length", "content-lengt"));
  EXPECT_FALSE(iequals("a", "b"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("\xc3", "\xe3"));  // no case folding outside ASCII
}

TEST(HttpUtil, NextItem) {
  std::string_view list = "a, b,,c";
  EXPECT_EQ(next_item(list, ","), "a");
  EXPECT_EQ(list, " b,,c");
  EXPECT_EQ(next_item(list, ","), " b");
  EXPECT_EQ(next_item(list, ","), "");
  EXPECT_EQ(next_item(list, ","), "c");
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(next_item(list, ","), "");
  list = "x\r\ny\r\n";
  EXPECT_EQ(next_item(list, "\r\n"), "x");
  EXPECT_EQ(next_item(list, "\r\n"), "y");
  EXPECT_TRUE(list.empty());
  list = "a,";  // a trailing separator leaves an empty list, not an empty item
  EXPECT_EQ(next_item(list, ","), "a");
  EXPECT_TRUE(list.empty());
}

TEST(HttpUtil, SplitTarget) {
  Target t = split_target("/a/b?x=1&y=2");
  EXPECT_EQ(t.path, "/a/b");
  EXPECT_EQ(t.query, "x=1&y=2");
  EXPECT_TRUE(t.has_query);
  t = split_target("/a");
  EXPECT_EQ(t.path, "/a");
  EXPECT_EQ(t.query, "");
  EXPECT_FALSE(t.has_query);
  t = split_target("/a?");
  EXPECT_EQ(t.path, "/a");
  EXPECT_TRUE(t.has_query);
  t = split_target("/a?b?c#frag");
  EXPECT_EQ(t.path, "/a");
  EXPECT_EQ(t.query, "b?c");
  t = split_target("/x#y?z");
  EXPECT_EQ(t.path, "/x");
  EXPECT_FALSE(t.has_query);
  EXPECT_EQ(split_target("").path, "");
}

TEST(HttpUtil, PercentDecodePath) {
  EXPECT_EQ(percent_decode_path("/a%20b").value, "/a b");
  EXPECT_EQ(percent_decode_path("/a+b").value, "/a+b");
  EXPECT_EQ(percent_decode_path("/%41%4a%4A%7e").value, "/AJJ~");
  EXPECT_EQ(percent_decode_path("/%C3%A9").value, "/\xC3\xA9");
  EXPECT_EQ(percent_decode_path("").value, "");
  // Decoded once: %252e stays "%2e", so double encoding cannot smuggle "..".
  EXPECT_EQ(percent_decode_path("/%252e%252e/").value, "/%2e%2e/");
  EXPECT_EQ(percent_decode_path("/%2e%2e/").value, "/../");
  EXPECT_EQ(percent_decode_path("%FF").value, "\xFF");
}

TEST(HttpUtil, PercentDecodePathErrors) {
  for (const char* bad : {"%", "/%", "/%2", "/%zz", "/%2g", "/%g2", "a%%20"}) {
    EXPECT_FALSE(percent_decode_path(bad).ok()) << bad;
  }
  EXPECT_FALSE(percent_decode_path("/a%00b").ok());
  EXPECT_FALSE(percent_decode_path("/a\0b"s).ok());
}

TEST(HttpUtil, MimeTypes) {
  const struct {
    std::string_view in;
    std::string_view want;
  } cases[] = {
      {"a.pdf", "application/pdf"},
      {"a.JPG", "image/jpeg"},
      {"a.jpeg", "image/jpeg"},
      {"a.png", "image/png"},
      {"a.gif", "image/gif"},
      {"a.txt", "text/plain; charset=utf-8"},
      {"index.html", "text/html; charset=utf-8"},
      {"s.css", "text/css; charset=utf-8"},
      {"app.js", "text/javascript; charset=utf-8"},
      {"d.json", "application/json"},
      {"d.csv", "text/csv; charset=utf-8"},
      {"v.mp4", "video/mp4"},
      {"z.zip", "application/zip"},
      {"i.svg", "image/svg+xml"},
      {"favicon.ico", "image/vnd.microsoft.icon"},
      {"p.webp", "image/webp"},
      {"m.wasm", "application/wasm"},
      {"archive.tar.gz", "application/gzip"},
      {"noext", "application/octet-stream"},
      {"trailing.", "application/octet-stream"},
      {".pdf", "application/pdf"},
      {"dir.png/file", "application/octet-stream"},
      {"x.exe", "application/octet-stream"},
      {"", "application/octet-stream"},
  };
  for (const auto& c : cases) EXPECT_EQ(mime_type_for(c.in), c.want) << c.in;
}

TEST(HttpUtil, FormatHttpDate) {
  EXPECT_EQ(format_http_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");  // RFC 9110's example
  EXPECT_EQ(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(format_http_date(-5), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(format_http_date(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");
  EXPECT_EQ(format_http_date(4102444799), "Thu, 31 Dec 2099 23:59:59 GMT");
  EXPECT_EQ(format_http_date(1700000000), "Tue, 14 Nov 2023 22:13:20 GMT");
}

TEST(HttpUtil, ParseHttpDateThreeForms) {
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
  EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994"), 784111777);
  EXPECT_EQ(parse_http_date("Thu Nov 16 08:49:37 1994"), 784111777 + 10 * 86400);
  EXPECT_EQ(parse_http_date("Thursday, 01-Jan-04 00:00:00 GMT"), 1072915200);
}

TEST(HttpUtil, ParseHttpDateRoundTrip) {
  for (int64_t t : {int64_t{0}, int64_t{1}, int64_t{86399}, int64_t{951782400}, int64_t{1700000000},
                    int64_t{4102444799}}) {
    EXPECT_EQ(parse_http_date(format_http_date(t)), t);
  }
  for (int64_t t = 0; t < 4102444800; t += 9876543) {
    ASSERT_EQ(parse_http_date(format_http_date(t)), t);
  }
}

TEST(HttpUtil, ParseHttpDateRejectsMalformed) {
  for (const char* bad : {
           "",
           "Sun, 06 Nov 1994 08:49:37",
           "Sun, 06 Nov 1994 08:49:37 UTC",
           "Sun, 6 Nov 1994 08:49:37 GMT",
           "Sun, 06 Nov 94 08:49:37 GMT",
           "Sun, 06 Foo 1994 08:49:37 GMT",
           "Sun, 32 Nov 1994 08:49:37 GMT",
           "Sun, 29 Feb 1995 08:49:37 GMT",
           "Sun, 31 Apr 1994 08:49:37 GMT",
           "Sun, 06 Nov 1994 24:00:00 GMT",
           "Sun, 06 Nov 1994 08:60:00 GMT",
           "Sun, 06 Nov 1994 08:49:37 GMT ",
           " Sun, 06 Nov 1994 08:49:37 GMT",
           "sun, 06 Nov 1994 08:49:37 GMT",
           "Xyz, 06 Nov 1994 08:49:37 GMT",
           "Sun Nov 6 08:49:37 1994",
           "Sun, 06 Nov 1994 08:49:3x GMT",
           "garbage",
       }) {
    EXPECT_FALSE(parse_http_date(bad).has_value()) << bad;
  }
  EXPECT_EQ(parse_http_date("Sun, 29 Feb 1976 00:00:00 GMT"), 194400000);  // leap year
  EXPECT_FALSE(parse_http_date("Sun, 29 Feb 1900 00:00:00 GMT").has_value());
  EXPECT_TRUE(parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT").has_value());
}

TEST(HttpUtil, ETag) {
  EXPECT_EQ(make_etag(0, 0), "\"0-0\"");
  EXPECT_EQ(make_etag(255, 4096), "\"ff-1000\"");
  EXPECT_EQ(make_etag(1024, 1700000000123456789), "\"400-17979cfe3d85cd15\"");
  EXPECT_NE(make_etag(1, 2), make_etag(2, 1));
  EXPECT_NE(make_etag(10, 1), make_etag(10, 2));
}

RangeResult partial(uint64_t first, uint64_t last) {
  return {RangeDecision::kPartial, {first, last}};
}

void expect_range(std::string_view value, uint64_t size, RangeResult want) {
  RangeResult got = parse_range(value, size);
  EXPECT_EQ(got.decision, want.decision) << value << " size " << size;
  if (want.decision == RangeDecision::kPartial) {
    EXPECT_EQ(got.range, want.range) << value;
  }
}

TEST(HttpUtil, RangeSatisfiable) {
  expect_range("bytes=0-499", 10000, partial(0, 499));
  expect_range("bytes=500-999", 10000, partial(500, 999));
  expect_range("bytes=-500", 10000, partial(9500, 9999));
  expect_range("bytes=9500-", 10000, partial(9500, 9999));
  expect_range("bytes=0-0", 10000, partial(0, 0));
  expect_range("bytes=0-", 1, partial(0, 0));
  expect_range("bytes=5-5", 6, partial(5, 5));
  expect_range("bytes=0-99999", 100, partial(0, 99));  // last clamped
  expect_range("bytes=-99999", 100, partial(0, 99));   // suffix longer than file
  expect_range("Bytes=1-2", 10, partial(1, 2));        // unit case-insensitive
  expect_range(" bytes = 1-2 ", 10, partial(1, 2));
  expect_range("bytes=1-2,", 10, partial(1, 2));                       // empty list elements
  expect_range("bytes=0-99999999999999999999999", 10, partial(0, 9));  // saturates
  EXPECT_EQ(parse_range("bytes=1-2", 10).range.length(), 2u);
}

TEST(HttpUtil, RangeUnsatisfiable) {
  const RangeResult no{RangeDecision::kUnsatisfiable, {}};
  expect_range("bytes=10000-", 10000, no);
  expect_range("bytes=10000-20000", 10000, no);
  expect_range("bytes=-0", 10000, no);
  expect_range("bytes=0-", 0, no);
  expect_range("bytes=-5", 0, no);
  expect_range("bytes=99999999999999999999999-", 10, no);
}

TEST(HttpUtil, RangeIgnored) {
  const RangeResult ig{RangeDecision::kIgnore, {}};
  for (const char* v : {"", "bytes", "bytes=", "bytes=-", "bytes=5-2", "bytes=a-b", "bytes=1-2x",
                        "bytes=1", "items=0-1", "bytes=0-1,2-3", "bytes=0-1, -5", "bytes=+1-2",
                        "bytes=1 -2", "bytes=--1", "=0-1"}) {
    expect_range(v, 10000, ig);
  }
}

TEST(HttpUtil, ContentRange) {
  EXPECT_EQ(content_range({0, 499}, 1234), "bytes 0-499/1234");
  EXPECT_EQ(content_range({18446744073709551614u, 18446744073709551614u}, 18446744073709551615u),
            "bytes 18446744073709551614-18446744073709551614/18446744073709551615");
  EXPECT_EQ(content_range_unsatisfied(1234), "bytes */1234");
  EXPECT_EQ(content_range_unsatisfied(0), "bytes */0");
}

TEST(HttpUtil, ReasonPhrases) {
  const struct {
    int in;
    std::string_view want;
  } cases[] = {
      {200, "OK"},
      {100, "Continue"},
      {206, "Partial Content"},
      {304, "Not Modified"},
      {400, "Bad Request"},
      {404, "Not Found"},
      {413, "Content Too Large"},
      {414, "URI Too Long"},
      {416, "Range Not Satisfiable"},
      {431, "Request Header Fields Too Large"},
      {501, "Not Implemented"},
      {505, "HTTP Version Not Supported"},
      {507, "Insufficient Storage"},  // RFC 4918 section 11.5
      {299, ""},
      {-1, ""},
  };
  for (const auto& c : cases) EXPECT_EQ(reason_phrase(c.in), c.want) << c.in;
}

TEST(HttpUtil, HtmlEscape) {
  EXPECT_EQ(html_escape("<a href=\"x\">Tom & Jerry's</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;");
  EXPECT_EQ(html_escape("plain \xC3\xA9"), "plain \xC3\xA9");
  EXPECT_EQ(html_escape(""), "");
  EXPECT_EQ(html_escape("&amp;"), "&amp;amp;");
}

TEST(HttpUtil, PercentEncodeKeepsLettersDigitsAndTheGivenBytes) {
  EXPECT_EQ(percent_encode("a-b c~\xC3\xA9/%.Z9", "-._~"), "a-b%20c~%C3%A9%2F%25.Z9");
  EXPECT_EQ(percent_encode("x!y", ""), "x%21y");
  EXPECT_EQ(percent_encode(std::string_view("\0", 1), "-"), "%00");
  EXPECT_EQ(percent_encode("", "-"), "");
}

TEST(HttpUtil, ContentDisposition) {
  EXPECT_EQ(content_disposition("report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf");
  EXPECT_EQ(content_disposition("a b.txt", true),
            "inline; filename=\"a b.txt\"; filename*=UTF-8''a%20b.txt");
  EXPECT_EQ(content_disposition("caf\xC3\xA9.txt"),
            "attachment; filename=\"caf__.txt\"; filename*=UTF-8''caf%C3%A9.txt");
  // CR, LF and quotes cannot break out of the header or the quoted string.
  EXPECT_EQ(content_disposition("evil\r\nSet-Cookie: x=\"1\".txt"),
            "attachment; filename=\"evilSet-Cookie: x=1.txt\"; "
            "filename*=UTF-8''evilSet-Cookie%3A%20x%3D1.txt");
  EXPECT_EQ(content_disposition("a\\b;c%d"),
            "attachment; filename=\"a_b;c%d\"; filename*=UTF-8''a%5Cb%3Bc%25d");
  EXPECT_EQ(content_disposition(""), "attachment; filename=\"\"; filename*=UTF-8''");
  const std::string cd = content_disposition("x\ty\x7f");
  EXPECT_EQ(cd, "attachment; filename=\"x_y_\"; filename*=UTF-8''x%09y%7F");
}

}  // namespace
}  // namespace fsrv::services::http

namespace fsrv::services::http {
namespace {

TEST(HttpUtil, OriginMatchesHost) {
  struct Case {
    const char* origin;
    const char* host;
    bool match;
  };
  const Case cases[] = {
      {"http://127.0.0.1:8885", "127.0.0.1:8885", true},
      {"http://Example.com", "example.COM:80", true},
      {"https://h:443", "h", true},
      {"http://evil.example", "127.0.0.1:8885", false},
      {"http://127.0.0.1:8886", "127.0.0.1:8885", false},
      {"null", "h", false},
      {"http://h/path", "h", false},
      {"ftp://h", "h", false},
      {"http://h", "", false},
      {"https://h", "h:80", false},
      // A scheme with no authority matches no host, not even a bare port.
      {"http://", "h", false},
      {"http://", ":80", false},
      {"https://", ":443", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(origin_matches_host(c.origin, c.host), c.match) << c.origin << " against " << c.host;
  }
}

// RFC 7617 section 2 (its example: Aladdin / open sesame).
TEST(HttpUtil, BasicCredentials) {
  std::string user, password;
  ASSERT_TRUE(parse_basic_credentials("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", user, password));
  EXPECT_EQ(user, "Aladdin");
  EXPECT_EQ(password, "open sesame");
  ASSERT_TRUE(parse_basic_credentials("basic  dTpwOnE= ", user, password));  // scheme any case
  EXPECT_EQ(user, "u");
  EXPECT_EQ(password, "p:q");  // the password is everything after the first ':'
  EXPECT_FALSE(parse_basic_credentials("Bearer abc", user, password));
  EXPECT_FALSE(parse_basic_credentials("Basic !!!", user, password));
  EXPECT_FALSE(parse_basic_credentials("Basic dXNlcg==", user, password));  // "user": no ':'
  EXPECT_FALSE(parse_basic_credentials("Basic ", user, password));
  EXPECT_FALSE(
      parse_basic_credentials("Basic " + std::string(kMaxCredentials, 'A'), user, password));
}

}  // namespace
}  // namespace fsrv::services::http
