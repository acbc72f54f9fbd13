// TFTP packet parsing, option negotiation and netascii
// (src/services/tftp/tftp_packet.cpp) against the RFCs' formats: RFC 1350
// section 5, RFC 2347 (OACK), RFC 2348/2349/7440 (option ranges).

#include "fsrv/services/tftp/tftp_packet.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace fsrv::services::tftp {
namespace {

using namespace std::string_literals;

std::optional<Request> parse(const std::string& bytes, RequestError& e) {
  return parse_request(std::span<const char>(bytes.data(), bytes.size()), e);
}

std::string encode(const std::string& plain) {
  std::string wire(2 * plain.size(), '\0');
  wire.resize(
      netascii_encode({reinterpret_cast<const uint8_t*>(plain.data()), plain.size()}, wire.data()));
  return wire;
}

TEST(TftpPacket, ParsesAReadRequestWithOptions) {
  RequestError e;
  auto r = parse("\0\1/dir-less.bin\0OcTeT\0BLKSIZE\0001468\0tsize\0000\0"s, e);
  ASSERT_TRUE(r) << e.message;
  EXPECT_EQ(r->op, Opcode::kRrq);
  EXPECT_EQ(r->filename, "/dir-less.bin");
  EXPECT_EQ(storage_name(r->filename), "dir-less.bin");
  EXPECT_EQ(r->mode, Mode::kOctet);
  ASSERT_EQ(r->options.size(), 2u);
  EXPECT_EQ(r->options[0].first, "blksize");  // lower-cased: RFC 2347 names are case-insensitive
  EXPECT_EQ(r->options[0].second, "1468");
  EXPECT_EQ(r->options[1].first, "tsize");
}

TEST(TftpPacket, RefusesMalformedRequestsWithTheRightError) {
  struct Case {
    std::string bytes;
    bool drop;
    std::string message_part;
  };
  const Case cases[] = {
      {"\0\1"s, true, "too short"},
      {"\0\1a"s, true, "too short"},
      {"\0\1name-without-nul"s, false, "filename not terminated"},
      {"\0\1\0octet\0"s, false, "empty filename"},
      {"\0\2name\0octet"s, false, "mode missing"},
      {"\0\1name\0mail\0"s, false, "mail"},
      {"\0\1name\0binary\0"s, false, "unknown transfer mode"},
      {"\0\1name\0octet\0blksize\0"s, false, "blksize has no value"},
      {"\0\1name\0octet\0blksize\0001024"s, false, "blksize has no value"},
      {"\0\3\0\1data"s, false, "opcode 3"},
      {"\0\11xxxx"s, false, "opcode 9"},
  };
  for (const Case& c : cases) {
    RequestError e;
    EXPECT_FALSE(parse(c.bytes, e)) << c.message_part;
    EXPECT_EQ(e.drop, c.drop) << c.message_part;
    if (!c.drop) {
      EXPECT_EQ(e.code, ErrorCode::kIllegal);
      EXPECT_NE(e.message.find(c.message_part), std::string::npos) << e.message;
    }
  }
}

TEST(TftpPacket, TrailingPaddingEndsTheOptionList) {
  RequestError e;
  auto r = parse("\0\2up.bin\0netascii\0timeout\0003\0\0\0"s, e);
  ASSERT_TRUE(r) << e.message;
  EXPECT_EQ(r->op, Opcode::kWrq);
  EXPECT_EQ(r->mode, Mode::kNetascii);
  ASSERT_EQ(r->options.size(), 1u);
}

Request request_with(Opcode op, std::vector<std::pair<std::string, std::string>> options) {
  Request r;
  r.op = op;
  r.filename = "x";
  r.options = std::move(options);
  return r;
}

TEST(TftpNegotiate, AcceptsClampsAndOmitsPerTheRfcs) {
  Negotiated n = negotiate(request_with(
      Opcode::kWrq,
      {{"blksize", "99999"}, {"timeout", "0"}, {"tsize", "123"}, {"windowsize", "8"}, {"x", "1"}}));
  EXPECT_EQ(n.blksize, kMaxBlockSize);  // RFC 2348: the server may answer a smaller size
  EXPECT_EQ(n.timeout_s, 0);            // RFC 2349: 1..255, else left out
  EXPECT_TRUE(n.tsize);
  EXPECT_EQ(n.tsize_value, 123u);
  EXPECT_EQ(n.windowsize, 8u);
  const std::vector<std::pair<std::string, std::string>> want = {
      {"blksize", "65464"}, {"tsize", "123"}, {"windowsize", "8"}};
  EXPECT_EQ(n.accepted, want);

  n = negotiate(request_with(
      Opcode::kRrq, {{"blksize", "7"}, {"timeout", "256"}, {"windowsize", "0"}, {"tsize", "-1"}}));
  EXPECT_EQ(n.blksize, kDefaultBlockSize);
  EXPECT_EQ(n.windowsize, 1u);
  EXPECT_FALSE(n.tsize);
  EXPECT_TRUE(n.accepted.empty());  // nothing accepted: no OACK, RFC 1350 flow

  n = negotiate(request_with(Opcode::kRrq, {{"blksize", "abc"}, {"blksize", "1024"}}));
  EXPECT_EQ(n.blksize, kDefaultBlockSize);  // the first of repeated options counts
}

TEST(TftpNegotiate, WindowIsLoweredToFitTheReceiver) {
  // RRQ: the client's default socket buffer holds ~160 KiB plus one block.
  Negotiated n =
      negotiate(request_with(Opcode::kRrq, {{"windowsize", "64"}, {"blksize", "65464"}}));
  EXPECT_EQ(n.windowsize, 3u);
  EXPECT_EQ(n.accepted[0], (std::pair<std::string, std::string>{"windowsize", "3"}));
  n = negotiate(request_with(Opcode::kRrq, {{"windowsize", "16"}, {"blksize", "1468"}}));
  EXPECT_EQ(n.windowsize, 16u);
  // WRQ: our own socket buffer takes up to 4 MiB.
  n = negotiate(request_with(Opcode::kWrq, {{"windowsize", "65535"}, {"blksize", "65464"}}));
  EXPECT_EQ(n.windowsize, kMaxWindowBytes / kMaxBlockSize);
}

TEST(TftpPacket, BuildsErrorOackAndAckBytes) {
  EXPECT_EQ(error_packet(ErrorCode::kNotFound, "file not found"), "\0\5\0\1file not found\0"s);
  EXPECT_EQ(error_packet(ErrorCode::kIllegal, "a\0b"s), "\0\5\0\4a b\0"s);
  EXPECT_EQ(error_packet(ErrorCode::kUndefined, std::string(500, 'x')).size(), 4u + 200u + 1u);
  EXPECT_EQ(oack_packet({{"blksize", "1468"}, {"tsize", "42"}}),
            "\0\6blksize\0001468\0tsize\00042\0"s);
  EXPECT_EQ(ack_packet(0xfffe), "\0\4\xff\xfe"s);
  char header[4];
  put_data_header(header, 0x1234);
  EXPECT_EQ(std::string(header, 4), "\0\3\x12\x34"s);
  EXPECT_EQ(read_u16("\xff\x01"), 0xff01);
}

// Encoding then decoding gives back the bytes, wherever the stream is cut
// into blocks (a CR LF or CR NUL pair may straddle two DATA packets).
TEST(TftpNetascii, RoundTripsAtEverySplitPoint) {
  const std::string plain = "a\nb\r\nc\rd\r\r\n\n\r\0e\r"s;
  std::string wire = encode(plain);
  EXPECT_EQ(wire, "a\r\nb\r\0\r\nc\r\0d\r\0\r\0\r\n\r\n\r\0\0e\r\0"s);
  for (size_t cut = 0; cut <= wire.size(); ++cut) {
    NetasciiDecoder d;
    std::string out;
    d.decode(std::span<const char>(wire.data(), cut), out);
    d.decode(std::span<const char>(wire.data() + cut, wire.size() - cut), out);
    d.finish(out);
    EXPECT_EQ(out, plain) << "cut at " << cut;
  }
  std::mt19937 rng(7);
  std::string random(4096, '\0');
  for (char& c : random) c = "\r\n\0ab"[rng() % 5];
  wire = encode(random);
  NetasciiDecoder d;
  std::string out;
  for (size_t at = 0; at < wire.size(); at += 7) {
    d.decode(std::span<const char>(wire.data() + at, std::min<size_t>(7, wire.size() - at)), out);
  }
  d.finish(out);
  EXPECT_EQ(out, random);
}

TEST(TftpNetascii, BareCrFromASloppySenderIsKept) {
  NetasciiDecoder d;
  std::string out;
  d.decode("x\ry\r"s, out);
  d.finish(out);
  EXPECT_EQ(out, "x\ry\r");
}

}  // namespace
}  // namespace fsrv::services::tftp
