// Unit tests of the file protocol's reply writer: every reply is pure ASCII,
// and its escapes decode back to the same text.

#include "fsrv/services/file/reply.hpp"

#include <gtest/gtest.h>

namespace fsrv::services::file {
namespace {

bool all_ascii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

TEST(AsciiJson, EscapesLikePythonJsonDumps) {
  // json.dumps("abcdefg\u00e9.txt") == '"abcdefg\\u00e9.txt"'
  EXPECT_EQ(ascii_json("\"abcdefg\xc3\xa9.txt\""), "\"abcdefg\\u00e9.txt\"");
  // CJK (3 bytes) and an emoji above U+FFFF (surrogate pair).
  EXPECT_EQ(ascii_json("\"\xe6\x96\x87\""), "\"\\u6587\"");
  EXPECT_EQ(ascii_json("\"\xf0\x9f\x98\x80\""), "\"\\ud83d\\ude00\"");
  EXPECT_EQ(ascii_json("{\"a\":[1,\"b\"]}"), "{\"a\":[1,\"b\"]}");
}

TEST(AsciiJson, InvalidUtf8BecomesReplacementCharacters) {
  EXPECT_EQ(ascii_json("\"\xff\""), "\"\\ufffd\"");
  EXPECT_EQ(ascii_json("\"\xc3\""), "\"\\ufffd\"");                        // truncated
  EXPECT_EQ(ascii_json("\"\xc0\xaf\""), "\"\\ufffd\\ufffd\"");             // overlong '/'
  EXPECT_EQ(ascii_json("\"\xed\xa0\x80\""), "\"\\ufffd\\ufffd\\ufffd\"");  // surrogate
  EXPECT_EQ(ascii_json("\"\xf4\x90\x80\x80\""), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // > U+10FFFF
}

TEST(AsciiJson, EveryReplyIsAscii) {
  std::string name = "caf\xc3\xa9 \xe6\x96\x87 \xf0\x9f\x98\x80.txt";
  EXPECT_TRUE(all_ascii(json_quoted(name)));  // a name of a streamed LIST
  EXPECT_TRUE(all_ascii(ok_text(name + " deleted")));
  EXPECT_TRUE(all_ascii(error_text("unknown command: \xe6\x96")));  // cut mid-character
  EXPECT_TRUE(all_ascii(ok_size(name, 5)));
  EXPECT_TRUE(all_ascii(get_prefix(name)));
  EXPECT_TRUE(all_ascii(ok_json("{\"n\":\"" + name + "\"}")));
  EXPECT_EQ(get_prefix(name),
            "{\"status\":\"OK\",\"data_namafile\":\"caf\\u00e9 \\u6587 \\ud83d\\ude00.txt\","
            "\"data_file\":\"");
}

}  // namespace
}  // namespace fsrv::services::file
