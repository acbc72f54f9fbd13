// The master -> worker channel message (process/channel.hpp): what a worker
// accepts beside a passed socket, and every way a message is refused.
#include "fsrv/process/channel.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace fsrv::process {
namespace {

std::string wire(const ChannelMsg& m) {
  std::string s(sizeof m, '\0');
  std::memcpy(s.data(), &m, sizeof m);
  return s;
}

ChannelMsg for_listener(int32_t index) {
  ChannelMsg m;
  m.listener = index;
  return m;
}

TEST(ChannelMsg, ValidMessageForEveryListenerIsAccepted) {
  for (int32_t i = 0; i < 4; ++i) {
    auto got = parse_channel_msg(wire(for_listener(i)), 4);
    ASSERT_TRUE(got.has_value()) << i;
    EXPECT_EQ(got->listener, i);
    EXPECT_EQ(got->command, ChannelMsg::kPassConnection);
  }
}

TEST(ChannelMsg, ListenerIndexOutOfRangeIsRefused) {
  EXPECT_FALSE(parse_channel_msg(wire(for_listener(-1)), 4));
  EXPECT_FALSE(parse_channel_msg(wire(for_listener(4)), 4));
  EXPECT_FALSE(parse_channel_msg(wire(for_listener(0)), 0));
}

TEST(ChannelMsg, ShortLongAndEmptyMessagesAreRefused) {
  std::string ok = wire(for_listener(0));
  ASSERT_TRUE(parse_channel_msg(ok, 1));
  EXPECT_FALSE(parse_channel_msg(ok.substr(0, ok.size() - 1), 1));
  EXPECT_FALSE(parse_channel_msg(ok + "x", 1));
  EXPECT_FALSE(parse_channel_msg("", 1));
}

TEST(ChannelMsg, WrongMagicVersionOrCommandIsRefused) {
  ChannelMsg m = for_listener(0);
  m.magic = 0x12345678;
  EXPECT_FALSE(parse_channel_msg(wire(m), 1));
  m = for_listener(0);
  m.version = ChannelMsg::kVersion + 1;
  EXPECT_FALSE(parse_channel_msg(wire(m), 1));
  m = for_listener(0);
  m.command = 0;
  EXPECT_FALSE(parse_channel_msg(wire(m), 1));
}

TEST(ChannelMsg, OnlyIpv4AndIpv6AddressLengthsAreAccepted) {
  ChannelMsg m = for_listener(0);
  for (uint8_t len : {0, 4, 16}) {
    m.peer_len = len;
    EXPECT_TRUE(parse_channel_msg(wire(m), 1)) << int(len);
  }
  for (uint8_t len : {1, 5, 17, 255}) {
    m.peer_len = len;
    EXPECT_FALSE(parse_channel_msg(wire(m), 1)) << int(len);
  }
}

}  // namespace
}  // namespace fsrv::process
