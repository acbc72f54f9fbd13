// The log's field escaping (src/core/log.cpp): json_escape for the JSON log
// formats and escape_quoted, which the access log's Combined Log Format
// fields use with "\x%02x" from 0x7f up.

#include <gtest/gtest.h>

#include "fsrv/core/log.hpp"

namespace fsrv::log {
namespace {

TEST(LogEscape, JsonEscapesQuoteBackslashAndControlBytesOnly) {
  EXPECT_EQ(json_escape("plain"), "plain");
  EXPECT_EQ(json_escape("a\"b\\c"), "a\\\"b\\\\c");
  EXPECT_EQ(json_escape(std::string_view("\x01\n\x1f", 3)), "\\u0001\\u000a\\u001f");
  // UTF-8 and DEL pass as they are (JSON allows them).
  EXPECT_EQ(json_escape("\x7f\xc3\xa9"), "\x7f\xc3\xa9");
}

TEST(LogEscape, ClfFormEscapesFromDelUp) {
  EXPECT_EQ(escape_quoted("GET /a\"b HTTP/1.1", "\\x%02x", 0x7f), "GET /a\\\"b HTTP/1.1");
  EXPECT_EQ(escape_quoted("\t\x7f\xc3\xa9", "\\x%02x", 0x7f), "\\x09\\x7f\\xc3\\xa9");
  EXPECT_EQ(escape_quoted(std::string_view("\0", 1), "\\x%02x", 0x7f), "\\x00");
}

}  // namespace
}  // namespace fsrv::log
