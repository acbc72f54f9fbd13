// kit::InputBuffer: reads land after the unparsed bytes, consuming takes
// from the front, compacting keeps what is unparsed.

#include "fsrv/services/kit/input_buffer.hpp"

#include <gtest/gtest.h>

#include <cstring>

namespace fsrv::test {
namespace {

using services::kit::InputBuffer;

void put(InputBuffer& in, std::string_view bytes) {
  std::span<char> s = in.space(bytes.size());
  ASSERT_GE(s.size(), bytes.size());
  std::memcpy(s.data(), bytes.data(), bytes.size());
  in.produced(bytes.size());
}

TEST(InputBuffer, ReadsAppendAndConsumeTakesFromTheFront) {
  InputBuffer in;
  EXPECT_TRUE(in.empty());
  put(in, "LIST\r\nGET a");
  EXPECT_EQ(in.view(), "LIST\r\nGET a");
  in.consume(6);
  EXPECT_EQ(in.view(), "GET a");
  put(in, "\r\n");
  EXPECT_EQ(in.view(), "GET a\r\n");
  EXPECT_EQ(in.size(), 7u);
  in.clear();
  EXPECT_TRUE(in.empty());
}

TEST(InputBuffer, SpaceCompactsBeforeGrowing) {
  InputBuffer in;
  put(in, std::string(100, 'x'));
  in.consume(90);
  std::span<char> s = in.space(10);
  // The 10 unparsed bytes moved to the front: the room starts right after them.
  EXPECT_EQ(in.view(), std::string(10, 'x'));
  EXPECT_EQ(s.data(), in.view().data() + 10);
  EXPECT_GE(s.size(), 10u);
}

TEST(InputBuffer, AppendCopiesBytesReadElsewhere) {
  InputBuffer in;
  put(in, "ab");
  in.consume(1);
  in.append("cdef");
  EXPECT_EQ(in.view(), "bcdef");
}

TEST(InputBuffer, BlankMeansOnlySpacesAndLineEnds) {
  InputBuffer in;
  EXPECT_TRUE(in.blank());
  put(in, " \t\r\n");
  EXPECT_TRUE(in.blank());
  put(in, "x");
  EXPECT_FALSE(in.blank());
}

}  // namespace
}  // namespace fsrv::test
