// The seed 003 session framer (session_framer.hpp): every frame kind, every
// malformed frame, and the same answers whatever the split of the input.

#include "fsrv/services/session/session_framer.hpp"

#include <gtest/gtest.h>

#include <string>

namespace fsrv::services::session {
namespace {

std::string h(int16_t v) {
  std::string s(2, '\0');
  s[0] = static_cast<char>(v & 0xff);
  s[1] = static_cast<char>((v >> 8) & 0xff);
  return s;
}

TEST(SessionFramer, EveryWord) {
  for (Verb v : {Verb::kConnme, Verb::kByebye, Verb::kUpload, Verb::kLs, Verb::kDownload, Verb::kRm,
                 Verb::kSize}) {
    std::string word(verb_name(v));
    Frame f = next_frame(word + "trailing", Want::kWord);
    ASSERT_EQ(f.kind, Frame::Kind::kWord) << word;
    EXPECT_EQ(f.verb, v);
    EXPECT_EQ(f.consumed, word.size());
    // Every proper prefix waits for more and consumes nothing.
    for (size_t k = 0; k < word.size(); ++k) {
      Frame p = next_frame(word.substr(0, k), Want::kWord);
      EXPECT_EQ(p.kind, Frame::Kind::kNeedMore) << word << " " << k;
      EXPECT_EQ(p.consumed, 0u);
    }
  }
}

TEST(SessionFramer, GluedWordsOneAfterAnother) {
  std::string in = "connmelsbyebye";
  std::vector<Verb> got;
  size_t pos = 0;
  while (true) {
    Frame f = next_frame(std::string_view(in).substr(pos), Want::kWord);
    if (f.kind != Frame::Kind::kWord) break;
    got.push_back(f.verb);
    pos += f.consumed;
  }
  EXPECT_EQ(got, (std::vector<Verb>{Verb::kConnme, Verb::kLs, Verb::kByebye}));
  EXPECT_EQ(pos, in.size());
}

TEST(SessionFramer, StrayAcksBeforeAWordAreSkipped) {
  Frame f = next_frame("11ls", Want::kWord);
  ASSERT_EQ(f.kind, Frame::Kind::kWord);
  EXPECT_EQ(f.verb, Verb::kLs);
  EXPECT_EQ(f.consumed, 4u);
  Frame only = next_frame("1", Want::kWord);
  EXPECT_EQ(only.kind, Frame::Kind::kNeedMore);
  EXPECT_EQ(only.consumed, 1u);
}

TEST(SessionFramer, UnknownWordsAreErrorsNamingTheDecidingBytes) {
  Frame f = next_frame("lsx", Want::kWord);  // "ls" is complete: a word, then "x" later
  EXPECT_EQ(f.kind, Frame::Kind::kWord);
  Frame bad = next_frame("siZe", Want::kWord);
  ASSERT_EQ(bad.kind, Frame::Kind::kError);
  EXPECT_EQ(bad.error, "unknown command word: \"siZ\"");
  EXPECT_EQ(next_frame("LS", Want::kWord).kind, Frame::Kind::kError);
  EXPECT_EQ(next_frame(std::string(1, '\0'), Want::kWord).error, "unknown command word: \"\\x00\"");
}

TEST(SessionFramer, NameFrames) {
  std::string in = h(5) + "a.txt" + "Y";
  Frame f = next_frame(in, Want::kName);
  ASSERT_EQ(f.kind, Frame::Kind::kName);
  EXPECT_EQ(f.name, "a.txt");
  EXPECT_EQ(f.consumed, 7u);
  for (size_t k = 0; k < 7; ++k) {
    EXPECT_EQ(next_frame(in.substr(0, k), Want::kName).kind, Frame::Kind::kNeedMore) << k;
  }
  EXPECT_EQ(next_frame(h(0), Want::kName).kind, Frame::Kind::kError);
  EXPECT_EQ(next_frame(h(-1), Want::kName).kind, Frame::Kind::kError);
  EXPECT_EQ(next_frame(h(256), Want::kName).error, "name length 256 outside 1..255");
  std::string longest = h(255) + std::string(255, 'n');
  EXPECT_EQ(next_frame(longest, Want::kName).name.size(), 255u);
}

TEST(SessionFramer, UploadHeaderLittleEndianSize) {
  std::string in = h(3) + "abc" + pack_i32(0x01020304) + "payload";
  Frame f = next_frame(in, Want::kUploadHeader);
  ASSERT_EQ(f.kind, Frame::Kind::kUploadHeader);
  EXPECT_EQ(f.name, "abc");
  EXPECT_EQ(f.size, 0x01020304);
  EXPECT_EQ(f.consumed, 9u);
  EXPECT_EQ(in.substr(5, 4), std::string("\x04\x03\x02\x01", 4));
  for (size_t k = 0; k < 9; ++k) {
    EXPECT_EQ(next_frame(in.substr(0, k), Want::kUploadHeader).kind, Frame::Kind::kNeedMore);
  }
  Frame neg = next_frame(h(3) + "abc" + pack_i32(-1), Want::kUploadHeader);
  EXPECT_EQ(neg.kind, Frame::Kind::kError);
  EXPECT_EQ(neg.error, "negative upload size -1");
  Frame zero = next_frame(h(1) + "z" + pack_i32(0), Want::kUploadHeader);
  EXPECT_EQ(zero.kind, Frame::Kind::kUploadHeader);
  EXPECT_EQ(zero.size, 0);
}

TEST(SessionFramer, AckAndConfirm) {
  EXPECT_EQ(next_frame("", Want::kAck).kind, Frame::Kind::kNeedMore);
  EXPECT_EQ(next_frame("1ls", Want::kAck).consumed, 1u);
  EXPECT_EQ(next_frame("2", Want::kAck).kind, Frame::Kind::kError);
  Frame n = next_frame("Nls", Want::kConfirm);  // "N" then "ls" in one read
  ASSERT_EQ(n.kind, Frame::Kind::kConfirm);
  EXPECT_FALSE(n.yes);
  EXPECT_EQ(n.consumed, 1u);
  EXPECT_TRUE(next_frame("y", Want::kConfirm).yes);
  EXPECT_TRUE(next_frame("Y", Want::kConfirm).yes);
  EXPECT_FALSE(next_frame("n", Want::kConfirm).yes);
  EXPECT_EQ(next_frame("?", Want::kConfirm).kind, Frame::Kind::kError);
}

TEST(SessionFramer, PackedFieldsAreLittleEndian) {
  EXPECT_EQ(pack_i32(1), std::string("\x01\x00\x00\x00", 4));
  EXPECT_EQ(pack_i32(-1), std::string("\xff\xff\xff\xff", 4));
  EXPECT_EQ(pack_f32(1.0f), std::string("\x00\x00\x80\x3f", 4));  // struct.pack("<f", 1.0)
}

}  // namespace
}  // namespace fsrv::services::session
