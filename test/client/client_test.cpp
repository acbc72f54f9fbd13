// Unit tests of fsrv::client: quote_name, and reply parsing against a
// scripted socket peer that splits replies at awkward places.

#include "fsrv/client/client.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "peer_server.hpp"

namespace fsrv::client {
namespace {

using testing::PeerServer;
using testing::split_at;
using testing::split_every;
using testing::Step;

constexpr std::string_view kEnd = "\r\n\r\n";

std::unique_ptr<Client> connect_to(const PeerServer& peer,
                                   codec::Base64Kind kind = codec::Base64Kind::kFast,
                                   int timeout_ms = 5000) {
  Options o;
  o.port = peer.port();
  o.codec = kind;
  o.timeout_ms = timeout_ms;
  std::string error;
  auto c = Client::connect(o, &error);
  EXPECT_TRUE(c) << error;
  return c;
}

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

std::string b64(const std::string& raw) {
  std::string out(codec::encoded_size(raw.size()), '\0');
  size_t n = codec::encoder(codec::Base64Kind::kLibb64)
                 .encode(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(raw.data()),
                                                  raw.size()),
                         out.data());
  out.resize(n);
  return out;
}

std::string get_reply(const std::string& name, const std::string& base64) {
  return "{\"status\":\"OK\",\"data_namafile\":\"" + name + "\",\"data_file\":\"" + base64 + "\"}" +
         std::string(kEnd);
}

/// A sink that appends to a string.
struct Collect {
  std::string data;
  SinkFn fn() {
    return [this](std::span<const uint8_t> b) {
      data.append(reinterpret_cast<const char*>(b.data()), b.size());
      return true;
    };
  }
};

/// A source over a string that hands out at most `max_piece` bytes a call.
SourceFn string_source(const std::string& s, size_t max_piece) {
  auto pos = std::make_shared<size_t>(0);
  return [&s, pos, max_piece](std::span<uint8_t> buf) -> long {
    size_t n = std::min({buf.size(), s.size() - *pos, max_piece});
    std::memcpy(buf.data(), s.data() + *pos, n);
    *pos += n;
    return static_cast<long>(n);
  };
}

TEST(QuoteName, PlainNamesStayBare) {
  const struct {
    std::string in;
    std::string want;
  } cases[] = {
      {"a.jpg", "a.jpg"},
      {"dir-1_x+y=z@w%v,u:t.pdf", "dir-1_x+y=z@w%v,u:t.pdf"},
      {"caf\xc3\xa9.txt", "caf\xc3\xa9.txt"},  // UTF-8 is a word character to shlex
      {"$HOME*", "$HOME*"},                    // not special to shlex.split
  };
  for (const auto& c : cases) EXPECT_EQ(quote_name(c.in), c.want) << c.in;
}

TEST(QuoteName, SpacesAndQuotesAreQuoted) {
  const struct {
    std::string in;
    std::string want;
  } cases[] = {
      {"a b.txt", "\"a b.txt\""},
      {"tab\there", "\"tab\there\""},
      {"it's", "\"it's\""},
      {"say \"hi\"", "\"say \\\"hi\\\"\""},
      {"back\\slash", "\"back\\\\slash\""},
      {"", "\"\""},
  };
  for (const auto& c : cases) EXPECT_EQ(quote_name(c.in), c.want) << c.in;
}

TEST(ClientCommand, ReplySplitIntoSingleBytes) {
  std::string reply =
      std::string("{\"status\":\"OK\",\"data\":[\"a.jpg\",\"b c.pdf\"]}") + std::string(kEnd);
  PeerServer peer({Step{split_every(reply, 1)}});
  auto c = connect_to(peer);
  Result r = c->command("LIST");
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.json + std::string(kEnd), reply);
  c.reset();
  peer.join();
  EXPECT_EQ(peer.requests(), std::vector<std::string>{"LIST\r\n"});
}

TEST(ClientCommand, ErrorReplyIsServerKindAndConnectionStaysUsable) {
  std::string err =
      std::string("{\"status\":\"ERROR\",\"data\":\"file not found: x\"}") + std::string(kEnd);
  std::string pong = std::string("{\"status\":\"OK\",\"data\":\"connected\"}") + std::string(kEnd);
  PeerServer peer({Step{split_at(err, {err.size() - 3, err.size() - 1})}, Step{{pong}}});
  auto c = connect_to(peer);
  Result r = c->command("DELETE x");
  EXPECT_EQ(r.kind, ErrorKind::kServer);
  EXPECT_EQ(r.message, "file not found: x");
  Result p = c->command("PING");
  EXPECT_TRUE(p.ok()) << p.message;
}

TEST(ClientCommand, NonJsonReplyIsProtocolError) {
  PeerServer peer({Step{{std::string("hello there") + std::string(kEnd)}}});
  auto c = connect_to(peer);
  EXPECT_EQ(c->command("PING").kind, ErrorKind::kProtocol);
}

TEST(ClientCommand, UnknownStatusIsProtocolError) {
  PeerServer peer({Step{{std::string("{\"status\":\"MAYBE\"}") + std::string(kEnd)}}});
  auto c = connect_to(peer);
  EXPECT_EQ(c->command("PING").kind, ErrorKind::kProtocol);
}

TEST(ClientCommand, ReplyLargerThanTheReceiveBuffer) {
  // ~6 MB LIST: crosses the 4 MiB receive buffer.
  std::string json = "{\"status\":\"OK\",\"data\":[";
  for (int i = 0; i < 300000; ++i)
    json += (i ? ",\"" : "\"") + std::string("file-number-") + std::to_string(i) + "\"";
  json += "]}";
  PeerServer peer({Step{split_every(json + std::string(kEnd), 1 << 20)}});
  auto c = connect_to(peer);
  Result r = c->command("LIST");
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.json, json);
}

TEST(ClientCommand, TruncatedReplyIsConnectionErrorAndLaterCallsFail) {
  Step s{{"{\"status\":\"OK\",\"da"}};
  s.close_after = true;
  PeerServer peer({s});
  auto c = connect_to(peer);
  EXPECT_EQ(c->command("PING").kind, ErrorKind::kConnection);
  EXPECT_EQ(c->command("PING").kind, ErrorKind::kConnection);
}

TEST(ClientCommand, SilentServerTimesOut) {
  Step s;
  s.never_reply = true;
  PeerServer peer({s});
  auto c = connect_to(peer, codec::Base64Kind::kFast, 200);
  Result r = c->command("PING");
  EXPECT_EQ(r.kind, ErrorKind::kConnection);
  EXPECT_NE(r.message.find("timed out"), std::string::npos) << r.message;
}

TEST(ClientConnect, NothingListeningFails) {
  uint16_t port;
  {
    PeerServer peer({});  // grab a free port, then release it
    port = peer.port();
    std::string error;
    Options o;
    o.port = port;
    auto c = Client::connect(o, &error);  // lets the peer thread finish
  }
  Options o;
  o.port = port;
  std::string error;
  EXPECT_EQ(Client::connect(o, &error), nullptr);
  EXPECT_FALSE(error.empty());
}

class ClientGet : public ::testing::TestWithParam<codec::Base64Kind> {};

TEST_P(ClientGet, SplitAtAwkwardPlaces) {
  std::string raw = "hello world, this is a small file!";  // 34 bytes: ends in a partial quantum
  std::string reply = get_reply("a b.txt", b64(raw));
  size_t key = reply.find("\"data_file\":\"");
  size_t close = reply.rfind('"');
  // Inside the key, right after the opening quote, inside a quantum, at
  // the closing quote, between } and the terminator, inside the terminator.
  PeerServer peer({Step{split_at(
      reply, {key + 5, key + 13, key + 15, key + 18, close, close + 1, close + 2, close + 4})}});
  auto c = connect_to(peer, GetParam());
  Collect out;
  std::vector<uint64_t> seen;
  Result r = c->get("a b.txt", out.fn(), [&](uint64_t done, uint64_t) { seen.push_back(done); });
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(out.data, raw);
  EXPECT_EQ(r.bytes, raw.size());
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), raw.size());
  c.reset();
  peer.join();
  EXPECT_EQ(peer.requests(), std::vector<std::string>{"GET \"a b.txt\"\r\n"});
}

TEST_P(ClientGet, LargeFileInUnevenPieces) {
  std::string raw = random_bytes((3 << 20) + 1, 7);  // 3 MiB + 1: several receive-buffer fills
  std::string reply = get_reply("big.bin", b64(raw));
  std::vector<std::string> pieces = split_every(reply.substr(0, 40), 3);
  for (auto& p : split_every(reply.substr(40), 777777)) pieces.push_back(p);
  PeerServer peer({Step{pieces}, Step{{std::string("{\"status\":\"OK\",\"data\":\"connected\"}") +
                                       std::string(kEnd)}}});
  auto c = connect_to(peer, GetParam());
  Collect out;
  Result r = c->get("big.bin", out.fn());
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(out.data.size(), raw.size());
  EXPECT_TRUE(out.data == raw);
  EXPECT_TRUE(c->command("PING").ok());  // the stream ended exactly at the terminator
}

TEST_P(ClientGet, EmptyFile) {
  PeerServer peer({Step{{get_reply("empty", "")}}});
  auto c = connect_to(peer, GetParam());
  Collect out;
  Result r = c->get("empty", out.fn());
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.bytes, 0u);
  EXPECT_TRUE(out.data.empty());
}

TEST_P(ClientGet, ErrorReplyIsServerKind) {
  std::string err = std::string("{\"status\":\"ERROR\",\"data\":\"file not found: nope.txt\"}") +
                    std::string(kEnd);
  std::string pong = std::string("{\"status\":\"OK\",\"data\":\"connected\"}") + std::string(kEnd);
  PeerServer peer({Step{split_every(err, 5)}, Step{{pong}}});
  auto c = connect_to(peer, GetParam());
  Collect out;
  Result r = c->get("nope.txt", out.fn());
  EXPECT_EQ(r.kind, ErrorKind::kServer);
  EXPECT_EQ(r.message, "file not found: nope.txt");
  EXPECT_TRUE(out.data.empty());
  EXPECT_TRUE(c->command("PING").ok());
}

TEST_P(ClientGet, TruncatedStreamIsConnectionError) {
  std::string reply = get_reply("x", b64(random_bytes(3000, 1)));
  Step s{{reply.substr(0, reply.size() / 2)}};
  s.close_after = true;
  PeerServer peer({s});
  auto c = connect_to(peer, GetParam());
  Collect out;
  Result r = c->get("x", out.fn());
  EXPECT_EQ(r.kind, ErrorKind::kConnection) << r.message;
  EXPECT_EQ(c->command("PING").kind, ErrorKind::kConnection);  // no reuse after a half-read reply
}

TEST_P(ClientGet, TruncatedBeforeTheTerminatorIsConnectionError) {
  std::string reply = get_reply("x", b64("abcdef"));
  Step s{{reply.substr(0, reply.size() - 2)}};
  s.close_after = true;
  PeerServer peer({s});
  auto c = connect_to(peer, GetParam());
  Collect out;
  EXPECT_EQ(c->get("x", out.fn()).kind, ErrorKind::kConnection);
}

TEST_P(ClientGet, BadBase64IsProtocolError) {
  PeerServer peer({Step{{get_reply("x", "aGVs*G8=")}}});
  auto c = connect_to(peer, GetParam());
  Collect out;
  EXPECT_EQ(c->get("x", out.fn()).kind, ErrorKind::kProtocol);
}

TEST_P(ClientGet, IncompleteQuantumIsProtocolError) {
  PeerServer peer({Step{{get_reply("x", "aGVsbG8")}}});
  auto c = connect_to(peer, GetParam());
  Collect out;
  EXPECT_EQ(c->get("x", out.fn()).kind, ErrorKind::kProtocol);
}

TEST_P(ClientGet, WrongTailIsProtocolError) {
  std::string bad =
      "{\"status\":\"OK\",\"data_namafile\":\"x\",\"data_file\":\"aGVsbG8=\",\"extra\":1}\r\n\r\n";
  PeerServer peer({Step{{bad}}});
  auto c = connect_to(peer, GetParam());
  Collect out;
  EXPECT_EQ(c->get("x", out.fn()).kind, ErrorKind::kProtocol);
}

TEST_P(ClientGet, OkReplyWithoutDataFileIsProtocolError) {
  PeerServer peer(
      {Step{{std::string("{\"status\":\"OK\",\"data\":\"hmm\"}") + std::string(kEnd)}}});
  auto c = connect_to(peer, GetParam());
  Collect out;
  EXPECT_EQ(c->get("x", out.fn()).kind, ErrorKind::kProtocol);
}

TEST_P(ClientGet, OverlongPrefixIsProtocolError) {
  std::string prefix = "{\"status\":\"OK\",\"data_namafile\":\"" + std::string(100000, 'n');
  Step s{{prefix}};
  s.close_after = true;
  PeerServer peer({s});
  auto c = connect_to(peer, GetParam());
  Collect out;
  EXPECT_EQ(c->get("x", out.fn()).kind, ErrorKind::kProtocol);
}

TEST_P(ClientGet, SinkFailureIsLocalError) {
  PeerServer peer({Step{{get_reply("x", b64("some bytes"))}}});
  auto c = connect_to(peer, GetParam());
  Result r = c->get("x", [](std::span<const uint8_t>) { return false; });
  EXPECT_EQ(r.kind, ErrorKind::kLocal);
}

TEST_P(ClientGet, NameWithLineBreakIsRefused) {
  PeerServer peer({});
  auto c = connect_to(peer, GetParam());
  Collect out;
  EXPECT_EQ(c->get("a\r\nDELETE b", out.fn()).kind, ErrorKind::kLocal);
}

class ClientUpload : public ::testing::TestWithParam<codec::Base64Kind> {};

TEST_P(ClientUpload, SendsOneLineOfBase64) {
  std::string raw = random_bytes((2 << 20) + 2, 3);  // two chunks, the last with a partial quantum
  std::string ok = std::string("{\"status\":\"OK\",\"data\":\"x y uploaded (2097154 bytes)\"}") +
                   std::string(kEnd);
  PeerServer peer({Step{split_every(ok, 4)}});
  auto c = connect_to(peer, GetParam());
  std::vector<uint64_t> seen;
  Result r =
      c->upload("x y", raw.size(), string_source(raw, 100000), [&](uint64_t done, uint64_t total) {
        EXPECT_EQ(total, raw.size());
        seen.push_back(done);
      });
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.bytes, raw.size());
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), raw.size());
  c.reset();
  peer.join();
  auto reqs = peer.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_TRUE(reqs[0] == "UPLOAD \"x y\" " + b64(raw) + "\r\n");
}

TEST_P(ClientUpload, ShortSourceIsLocalError) {
  std::string raw = "only ten b";
  PeerServer peer({});
  auto c = connect_to(peer, GetParam());
  EXPECT_EQ(c->upload("x", 100, string_source(raw, 4)).kind, ErrorKind::kLocal);
}

TEST_P(ClientUpload, EarlyErrorReplyIsReported) {
  // The server refuses after the first bytes and hangs up; the client must
  // report its message, not a bare broken pipe.
  Step s{{std::string("{\"status\":\"ERROR\",\"data\":\"disk full\"}") + std::string(kEnd)}};
  s.reply_after_bytes = 20;
  s.close_after = true;
  PeerServer peer({s});
  auto c = connect_to(peer, GetParam());
  constexpr uint64_t kSize = 24u << 20;  // far more than the socket buffers hold
  auto zeros = [](std::span<uint8_t> buf) -> long {
    std::memset(buf.data(), 0, buf.size());
    return static_cast<long>(buf.size());
  };
  Result r = c->upload("x", kSize, zeros);
  EXPECT_EQ(r.kind, ErrorKind::kServer) << r.message;
  EXPECT_EQ(r.message, "disk full");
}

INSTANTIATE_TEST_SUITE_P(Codecs, ClientGet,
                         ::testing::Values(codec::Base64Kind::kFast, codec::Base64Kind::kLibb64),
                         [](const auto& info) {
                           return std::string(codec::to_string(info.param));
                         });
INSTANTIATE_TEST_SUITE_P(Codecs, ClientUpload,
                         ::testing::Values(codec::Base64Kind::kFast, codec::Base64Kind::kLibb64),
                         [](const auto& info) {
                           return std::string(codec::to_string(info.param));
                         });

}  // namespace
}  // namespace fsrv::client
