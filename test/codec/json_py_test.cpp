// The Python-json writer (src/codec/json_py.cpp) against outputs of
// CPython 3's json.dumps, written out by hand here.

#include "fsrv/codec/json_py.hpp"

#include <gtest/gtest.h>

#include <string>

#include "fsrv/codec/utf8.hpp"

namespace fsrv::codec {
namespace {

std::string dumps_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

TEST(PyJson, EnsureAsciiEscapesLikePython) {
  // json.dumps({"a": "é\n😀"})
  PyJsonWriter w;
  w.begin_object();
  w.field("a", "\xc3\xa9\n\xf0\x9f\x98\x80");
  w.end_object();
  EXPECT_EQ(w.str(), R"({"a": "\u00e9\n\ud83d\ude00"})");
}

TEST(PyJson, ControlCharactersQuotesAndBackslash) {
  // json.dumps("\x00\x1f\x7f\b\f\t\r\"\\/")
  EXPECT_EQ(dumps_string(std::string("\x00\x1f\x7f\b\f\t\r\"\\/", 10)),
            R"("\u0000\u001f\u007f\b\f\t\r\"\\/")");
  EXPECT_EQ(dumps_string("\x01\x0b\x1b"), R"("\u0001\u000b\u001b")");
  EXPECT_EQ(dumps_string(""), R"("")");
  EXPECT_EQ(dumps_string(" ~plain ASCII!"), R"(" ~plain ASCII!")");
}

TEST(PyJson, BmpEdgesAndSurrogatePairs) {
  // json.dumps("\uffff\U0010ffff\x80\u2028")
  EXPECT_EQ(dumps_string("\xef\xbf\xbf\xf4\x8f\xbf\xbf\xc2\x80\xe2\x80\xa8"),
            R"("\uffff\udbff\udfff\u0080\u2028")");
  // U+10000, the first astral code point.
  EXPECT_EQ(dumps_string("\xf0\x90\x80\x80"), R"("\ud800\udc00")");
}

TEST(PyJson, InvalidUtf8BecomesReplacementPerMaximalSubpart) {
  // json.dumps(b.decode("utf-8", "replace")) for each b.
  EXPECT_EQ(dumps_string("a\xff"
                         "b"),
            R"("a\ufffdb")");
  EXPECT_EQ(dumps_string("\xe0\x80\xed\xa0\x80\xf0\x9f\x98"),
            R"("\ufffd\ufffd\ufffd\ufffd\ufffd\ufffd")");
  EXPECT_EQ(dumps_string("\xc0\xaf"), R"("\ufffd\ufffd")");                      // overlong '/'
  EXPECT_EQ(dumps_string("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");            // UTF-8 surrogate
  EXPECT_EQ(dumps_string("\xf4\x90\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");  // > U+10FFFF
  EXPECT_EQ(dumps_string("x\xe2\x82"), R"("x\ufffd")");  // truncated at the end
  EXPECT_EQ(dumps_string("\xe2\x82x"), R"("\ufffdx")");  // truncated before ASCII
}

TEST(PyJson, NestedShapesWithPythonSeparators) {
  // json.dumps({"status": "OK", "messages": {"henderson": [{"msg_from":
  //   "Jordan Henderson", "msg_to": "Lionel Messi", "msg": "halo"}],
  //   "lineker": []}})
  PyJsonWriter w;
  w.begin_object();
  w.field("status", "OK");
  w.key("messages");
  w.begin_object();
  w.key("henderson");
  w.begin_array();
  w.begin_object();
  w.field("msg_from", "Jordan Henderson");
  w.field("msg_to", "Lionel Messi");
  w.field("msg", "halo");
  w.end_object();
  w.end_array();
  w.key("lineker");
  w.begin_array();
  w.end_array();
  w.end_object();
  w.end_object();
  EXPECT_EQ(w.str(),
            R"({"status": "OK", "messages": {"henderson": [{"msg_from": "Jordan Henderson", )"
            R"("msg_to": "Lionel Messi", "msg": "halo"}], "lineker": []}})");
}

TEST(PyJson, EmptyContainersAndArraysOfStrings) {
  PyJsonWriter w;
  w.begin_object();
  w.end_object();
  EXPECT_EQ(w.take(), "{}");
  w.begin_array();
  w.string("a");
  w.string("b");
  w.begin_array();
  w.end_array();
  w.end_array();
  EXPECT_EQ(w.take(), R"(["a", "b", []])");  // json.dumps(["a", "b", []])
  EXPECT_EQ(w.str(), "");
}

TEST(PyJson, KeysAreEscapedToo) {
  PyJsonWriter w;
  w.begin_object();
  w.field("k\xc3\xa9y\"", "v");
  w.end_object();
  EXPECT_EQ(w.str(), R"({"k\u00e9y\"": "v"})");  // json.dumps({'kéy"': "v"})
}

TEST(PyJson, Utf8NextDecodesAndMeasures) {
  EXPECT_EQ(utf8_next("A", 0).code_point, 0x41u);
  Utf8Step s = utf8_next("\xf0\x9f\x98\x80", 0);
  EXPECT_TRUE(s.valid);
  EXPECT_EQ(s.code_point, 0x1F600u);
  EXPECT_EQ(s.size, 4u);
  s = utf8_next("\xf0\x9f\x98", 0);
  EXPECT_FALSE(s.valid);
  EXPECT_EQ(s.code_point, 0xFFFDu);
  EXPECT_EQ(s.size, 3u);
}

// One policy for invalid bytes in every writer: one U+FFFD per maximal
// subpart (Python's bytes.decode("utf-8", "replace"), which gives one for
// b"\xe2\x82" and three for b"\xed\xa0\x80"). The file protocol's
// ascii_json wrote one per byte before the writers were made one.
TEST(PyJson, AsciiJsonAndWriterAgreeOnInvalidBytes) {
  const std::string cases[] = {"\xe2\x82",
                               "\xe2\x82"
                               "A",
                               "\xed\xa0\x80",
                               "\xf0\x9f\x98",
                               "\xc0\xaf",
                               "ok \xc3\xa9 \xff"};
  const std::string expected[] = {R"("\ufffd")", R"("\ufffdA")",      R"("\ufffd\ufffd\ufffd")",
                                  R"("\ufffd")", R"("\ufffd\ufffd")", R"("ok \u00e9 \ufffd")"};
  for (size_t i = 0; i < std::size(cases); ++i) {
    std::string lit;
    append_json_string(lit, cases[i]);
    EXPECT_EQ(lit, expected[i]) << i;
    EXPECT_EQ(ascii_json("\"" + cases[i] + "\""), expected[i]) << i;
  }
  EXPECT_EQ(ascii_json(R"({"a":"plain"})"), R"({"a":"plain"})");
}

TEST(Utf8, ValidUtf8AcceptsWellFormedOnly) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("caf\xc3\xa9 \xf0\x9f\x98\x80"));
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(valid_utf8("abc\xe2\x82"));       // truncated
}

}  // namespace
}  // namespace fsrv::codec
