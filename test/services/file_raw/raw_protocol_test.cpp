// file-raw line framing (src/services/file_raw/raw_protocol.cpp): blank
// lines, the max_line bound, and independence from read boundaries; the
// AUTH line (our extension).

#include "fsrv/services/file_raw/raw_protocol.hpp"

#include <gtest/gtest.h>

#include <string>

namespace fsrv::services::file_raw {
namespace {

TEST(RawFraming, BlankLinesAreSkippedAndLinesCut) {
  RawLine l = next_raw_line("\r\n \t\r\nLIST\r\nrest", 64);
  ASSERT_EQ(l.kind, RawLine::kLine);
  EXPECT_EQ(l.line, "LIST");
  EXPECT_EQ(l.consumed, std::string("\r\n \t\r\nLIST\r\n").size());
  EXPECT_EQ(next_raw_line("LIS", 64).kind, RawLine::kNeedMore);
}

// Regression (fuzz-dialects, CI): 80 blanks and a newline were skipped as a
// blank line when read at once, but "too long" when the first read held
// more than 64 of the blanks and no newline yet.
TEST(RawFraming, LongBlankLineIsTooLongHoweverTheReadsSplitIt) {
  const std::string blanks(80, '\r');
  EXPECT_EQ(next_raw_line(blanks + "\n", 64).kind, RawLine::kTooLong);
  EXPECT_EQ(next_raw_line(blanks, 64).kind, RawLine::kTooLong);
  const std::string short_blanks(64, ' ');
  const std::string input = short_blanks + "\nLIST\n";  // l.line points into it
  RawLine l = next_raw_line(input, 64);
  ASSERT_EQ(l.kind, RawLine::kLine);
  EXPECT_EQ(l.line, "LIST");
  EXPECT_EQ(next_raw_line(short_blanks, 64).kind, RawLine::kNeedMore);
}

TEST(RawParse, AuthTakesExactlyAUserAndAPassword) {
  RawRequest r = parse_raw_line("auth alice s3cret");
  EXPECT_EQ(r.verb, RawCmd::kAuth);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.name, "alice");
  EXPECT_EQ(r.password, "s3cret");
  EXPECT_FALSE(r.fatal);
  for (const char* bad : {"AUTH", "AUTH alice", "AUTH alice pass word"}) {
    r = parse_raw_line(bad);
    EXPECT_EQ(r.verb, RawCmd::kAuth) << bad;
    EXPECT_EQ(r.error, "usage: AUTH user password") << bad;
    EXPECT_FALSE(r.fatal) << bad;  // no payload follows: the stream stays in step
  }
  EXPECT_EQ(kit::dialect_verb_name(RawCmd::kAuth), "AUTH");
}

}  // namespace
}  // namespace fsrv::services::file_raw
