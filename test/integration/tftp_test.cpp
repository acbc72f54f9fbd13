// The tftp service over real UDP sockets, driven by a minimal client written
// from RFC 1350/2347/7440, in thread and process mode. These run under ASan
// and TSan too (make sanitize / make tsan), where the transfer lifetimes
// (socket, timer, executor tasks) are checked. Real clients (curl,
// tftp-hpa, atftp), loss and concurrency: test/python/test_tftp*.py.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include "../support/server_process.hpp"

namespace {

using namespace std::string_literals;
using fsrv::test::ServerProcess;
using fsrv::test::slurp;
using fsrv::test::spit;
using fsrv::test::TempDir;

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

uint16_t u16(const std::string& p, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(p[at]) << 8) |
                               static_cast<uint8_t>(p[at + 1]));
}

/// Asserts that `p` is an ERROR packet (opcode 5) with `code` and, when
/// given, a message containing `text`.
void expect_tftp_error(const std::optional<std::string>& p, uint16_t code,
                       std::string_view text = {}) {
  ASSERT_TRUE(p);
  EXPECT_EQ(u16(*p, 0), 5);
  EXPECT_EQ(u16(*p, 2), code);
  EXPECT_NE(p->find(text), std::string::npos) << p->substr(4);
}

std::string ack(uint16_t block) {
  return "\0\4"s + static_cast<char>(block >> 8) + static_cast<char>(block & 0xff);
}

std::string data_packet(uint16_t block, const std::string& payload) {
  return "\0\3"s + static_cast<char>(block >> 8) + static_cast<char>(block & 0xff) + payload;
}

/// A UDP socket on 127.0.0.1 talking to the server's request port, then
/// to whatever port the server answers from (the transfer ID).
class Client {
 public:
  explicit Client(int server_port) : server_port_(server_port) {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    int buf = 4 << 20;
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  }
  ~Client() { close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void send_request(const std::string& packet) { send_to(server_port_, packet); }
  /// Sends to the transfer's port (the source of the last reply).
  void send(const std::string& packet) { send_to(tid_, packet); }
  void send_to(int port, const std::string& packet) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    sendto(fd_, packet.data(), packet.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  /// The next datagram within `ms`, remembering its source port as the TID.
  std::optional<std::string> recv(int ms = 5000) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0) return std::nullopt;
    std::string buf(65536, '\0');
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) return std::nullopt;
    buf.resize(static_cast<size_t>(n));
    tid_ = ntohs(from.sin_port);
    return buf;
  }
  int tid() const { return tid_; }

 private:
  int fd_;
  int server_port_;
  int tid_ = 0;
};

/// Reads `name` with the given options; the client ACKs at each window's
/// end or at the last block, as RFC 7440 section 4 describes. Fails the
/// test on any ERROR or silence.
std::string read_file(int port, const std::string& name, size_t blksize, unsigned window) {
  Client c(port);
  std::string req = "\0\1"s + name + "\0octet\0"s;
  if (blksize != 512) req += "blksize\0"s + std::to_string(blksize) + "\0"s;
  if (window != 1) req += "windowsize\0"s + std::to_string(window) + "\0"s;
  c.send_request(req);
  std::string out;
  auto first = c.recv();
  EXPECT_TRUE(first);
  if (!first) return out;
  std::string p = *first;
  if (u16(p, 0) == 6) {  // OACK: accept with ACK 0
    c.send(ack(0));
    auto next = c.recv();
    EXPECT_TRUE(next);
    if (!next) return out;
    p = *next;
  }
  uint16_t expected = 1;
  unsigned in_window = 0;
  for (;;) {
    EXPECT_EQ(u16(p, 0), 3) << "ERROR " << u16(p, 2) << ": " << p.substr(4);
    if (u16(p, 0) != 3) return out;
    if (u16(p, 2) == expected) {
      const std::string payload = p.substr(4);
      out += payload;
      ++expected;  // wraps 65535 -> 0, as the server's numbering does
      if (payload.size() < blksize) {
        c.send(ack(static_cast<uint16_t>(expected - 1)));
        return out;
      }
      if (++in_window == window) {
        in_window = 0;
        c.send(ack(static_cast<uint16_t>(expected - 1)));
      }
    }
    auto next = c.recv();
    EXPECT_TRUE(next) << "silence after " << out.size() << " bytes";
    if (!next) return out;
    p = *next;
  }
}

class TftpModes : public ::testing::TestWithParam<const char*> {
 protected:
  std::vector<std::string> args(std::vector<std::string> extra) const {
    std::vector<std::string> a = {"--mode", GetParam(), "--workers", "2", "--listen", "tftp=0"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
};

TEST_P(TftpModes, WindowedReadsDeliverEveryByteAtEveryBlockSize) {
  TempDir root;
  const std::string content = random_bytes(300'000, 1);
  spit(root.file("data.bin"), content);
  spit(root.file("empty.bin"), "");
  spit(root.file("exact.bin"), random_bytes(4096, 2));  // a multiple of 512: empty last block
  ServerProcess server(args({}), root.path());
  const int port = server.ports()[0];
  EXPECT_EQ(read_file(port, "data.bin", 512, 1), content);
  EXPECT_EQ(read_file(port, "/data.bin", 1468, 16), content);  // leading '/' removed
  EXPECT_EQ(read_file(port, "data.bin", 65464, 3), content);
  EXPECT_EQ(read_file(port, "empty.bin", 512, 1), "");
  EXPECT_EQ(read_file(port, "exact.bin", 512, 4), slurp(root.file("exact.bin")));
}

TEST_P(TftpModes, OackCarriesTsizeAndTheLoweredWindow) {
  TempDir root;
  spit(root.file("f.bin"), random_bytes(1000, 3));
  ServerProcess server(args({}), root.path());
  Client c(server.ports()[0]);
  c.send_request("\0\1f.bin\0octet\0tsize\0000\0blksize\00065464\0windowsize\00064\0"s);
  auto p = c.recv();
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, "\0\6tsize\0001000\0blksize\00065464\0windowsize\0003\0"s);
  EXPECT_NE(c.tid(), server.ports()[0]);  // a transfer answers from its own port
  c.send(ack(0));
  p = c.recv();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->size(), 4u + 1000u);
  c.send(ack(1));
}

TEST_P(TftpModes, WriteIsCommittedOnlyBeforeTheFinalAck) {
  TempDir root;
  spit(root.file("w.bin"), "old content");
  ServerProcess server(args({}), root.path());
  const std::string content = random_bytes(512 * 6 + 100, 4);
  Client c(server.ports()[0]);
  c.send_request("\0\2w.bin\0octet\0"s);
  auto p = c.recv();
  ASSERT_TRUE(p);
  ASSERT_EQ(*p, ack(0));
  uint16_t block = 1;
  for (size_t at = 0; at + 512 <= content.size(); at += 512, ++block) {
    c.send(data_packet(block, content.substr(at, 512)));
    p = c.recv();
    ASSERT_TRUE(p);
    ASSERT_EQ(*p, ack(block));
    if (block == 3) {  // a retransmitted block is ACKed again, not written twice
      c.send(data_packet(block, content.substr(at, 512)));
      p = c.recv();
      ASSERT_TRUE(p);
      ASSERT_EQ(*p, ack(block));
    }
  }
  EXPECT_EQ(slurp(root.file("w.bin")), "old content");  // not yet: no last block
  c.send(data_packet(block, content.substr(512 * 6)));
  p = c.recv();
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, ack(block));
  EXPECT_EQ(slurp(root.file("w.bin")), content);  // in place when the final ACK came
  // One final ACK (the server once sent it twice), and a second one only
  // for a retransmitted last block: the dally of RFC 1350 section 6.
  EXPECT_FALSE(c.recv(300)) << "an unasked second final ACK";
  c.send(data_packet(block, content.substr(512 * 6)));
  p = c.recv();
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, ack(block));
}

/// No leftover upload temporaries (dot files) in `dir`.
bool no_temporaries(const std::string& dir) {
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename().string().front() == '.') return false;
  }
  return true;
}

/// Starts an octet write of `name` and sends block 1 (512 bytes of 'x'),
/// asserting ACK 0 and ACK 1: a transfer in progress, as a client leaves it.
/// A repeated ACK 0 before ACK 1 (the server's timeout ran out before block
/// 1 came, as on a loaded machine with a short --tftp-timeout) is skipped,
/// as a client ignores a duplicate (RFC 1350 section 2).
void begin_write(Client& c, const std::string& name) {
  c.send_request("\0\2"s + name + "\0octet\0"s);
  ASSERT_EQ(c.recv(), ack(0));
  c.send(data_packet(1, std::string(512, 'x')));
  auto p = c.recv();
  for (int i = 0; i < 4 && p == ack(0); ++i) p = c.recv();
  ASSERT_EQ(p, ack(1));
}

TEST_P(TftpModes, AbandonedWriteKeepsTheOldFileAndNoTemporary) {
  TempDir root;
  spit(root.file("keep.bin"), "old content");
  ServerProcess server(args({"--tftp-timeout", "0.05", "--tftp-retries", "2"}), root.path());
  Client c(server.ports()[0]);
  ASSERT_NO_FATAL_FAILURE(begin_write(c, "keep.bin"));
  // Silence: the server resends ACK 1 twice, then gives up with ERROR 0.
  std::optional<std::string> last;
  for (int i = 0; i < 4; ++i) {
    auto p = c.recv(3000);
    if (!p) break;
    last = p;
    if (u16(*p, 0) == 5) break;
  }
  expect_tftp_error(last, 0, "timed out");
  EXPECT_EQ(slurp(root.file("keep.bin")), "old content");
  for (int i = 0; i < 100 && !no_temporaries(root.path()); ++i) {  // it goes with the transfer
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (const auto& e : std::filesystem::directory_iterator(root.path())) {
    EXPECT_NE(e.path().filename().string().front(), '.') << e.path();
  }
}

TEST_P(TftpModes, ShutdownLetsATransferInProgressFinishWithinTheGrace) {
  TempDir root;
  spit(root.file("w.bin"), "old content");
  ServerProcess server(args({"--grace", "20", "--tftp-timeout", "2"}), root.path());
  const std::string content = random_bytes(512 * 6 + 7, 9);
  Client c(server.ports()[0]);
  c.send_request("\0\2w.bin\0octet\0"s);
  ASSERT_EQ(c.recv(), ack(0));
  uint16_t block = 1;
  size_t at = 0;
  for (; block <= 3; ++block, at += 512) {
    c.send(data_packet(block, content.substr(at, 512)));
    ASSERT_EQ(c.recv(), ack(block));
  }
  kill(server.pid(), SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // The request port is closed: a new request gets no transfer.
  Client late(server.ports()[0]);
  late.send_request("\0\1w.bin\0octet\0"s);
  EXPECT_FALSE(late.recv(500)) << "a new transfer began during shutdown";
  // The transfer in progress goes on to its commit and final ACK.
  for (; at + 512 <= content.size(); ++block, at += 512) {
    c.send(data_packet(block, content.substr(at, 512)));
    ASSERT_EQ(c.recv(), ack(block));
  }
  c.send(data_packet(block, content.substr(at)));
  ASSERT_EQ(c.recv(), ack(block));
  EXPECT_EQ(slurp(root.file("w.bin")), content);
  // Then the server exits by itself (after the final ACK's dally), long
  // before the 20 s grace.
  ASSERT_TRUE(server.wait_exit(std::chrono::seconds(10)));
  EXPECT_TRUE(WIFEXITED(server.exit_status()) && WEXITSTATUS(server.exit_status()) == 0)
      << server.exit_status();
}

TEST_P(TftpModes, ShutdownAfterTheGraceEndsATransferWithError0AndKeepsTheOldFile) {
  TempDir root;
  spit(root.file("w.bin"), "old content");
  ServerProcess server(args({"--grace", "0.5", "--tftp-timeout", "30"}), root.path());
  Client c(server.ports()[0]);
  ASSERT_NO_FATAL_FAILURE(begin_write(c, "w.bin"));
  const auto signalled = std::chrono::steady_clock::now();
  kill(server.pid(), SIGTERM);
  auto p = c.recv(5000);  // the client stalls: the grace ends it
  expect_tftp_error(p, 0, "shutting down");
  EXPECT_GE(std::chrono::steady_clock::now() - signalled, std::chrono::milliseconds(400));
  ASSERT_TRUE(server.wait_exit(std::chrono::seconds(10)));
  EXPECT_EQ(slurp(root.file("w.bin")), "old content");
  EXPECT_TRUE(no_temporaries(root.path()));
}

TEST_P(TftpModes, BadInputIsAnsweredOrDroppedAndServingGoesOn) {
  TempDir outside;
  TempDir root;
  spit(root.file("ok.bin"), random_bytes(2000, 5));
  // --grace 1: the transfers this test leaves unfinished would otherwise
  // hold the shutdown for the default 10 s.
  ServerProcess server(args({"--tftp-no-overwrite", "--grace", "1"}), root.path());
  const int port = server.ports()[0];
  // A name beside the root that nothing else creates (not "x": a checkout
  // cloned to /tmp/x once made that check fail without any escape).
  const auto escaped = std::filesystem::path(root.path()).parent_path() / "fsrv-tftp-escape-probe";
  ASSERT_FALSE(std::filesystem::exists(escaped)) << escaped << " exists before the test";
  auto error_of = [&](const std::string& request) -> int {
    Client c(port);
    c.send_request(request);
    auto p = c.recv(1500);
    if (!p) return -1;  // dropped
    return u16(*p, 0) == 5 ? u16(*p, 2) : 100 + u16(*p, 0);
  };
  EXPECT_EQ(error_of("\0\1"s), -1);                                   // truncated: dropped
  EXPECT_EQ(error_of("\0\11abcd"s), 4);                               // unknown opcode
  EXPECT_EQ(error_of("\0\1ok.bin"s), 4);                              // filename without its NUL
  EXPECT_EQ(error_of("\0\1ok.bin\0mail\0"s), 4);                      // obsolete mode
  EXPECT_EQ(error_of("\0\4\0\1"s), 4);                                // an ACK on the request port
  EXPECT_EQ(error_of("\0\5\0\1oops\0"s), -1);                         // an ERROR is never answered
  EXPECT_EQ(error_of("\0\2../fsrv-tftp-escape-probe\0octet\0"s), 2);  // outside the root
  EXPECT_EQ(error_of("\0\2.hidden\0octet\0"s), 2);                    // hidden/temporary names
  EXPECT_EQ(error_of("\0\1nope.bin\0octet\0"s), 1);                   // not found
  EXPECT_EQ(error_of("\0\2ok.bin\0octet\0"s), 6);                     // --tftp-no-overwrite
  EXPECT_EQ(error_of("\0\1ok.bin\0octet\0blksize\0001\0"s), 103);     // blksize 1: left out, DATA 1
  EXPECT_FALSE(std::filesystem::exists(escaped));

  // A transfer in progress: a stranger gets ERROR 5, an ACK for a block
  // never sent is ignored, and the transfer still completes.
  Client c(port);
  c.send_request("\0\1ok.bin\0octet\0"s);
  auto p = c.recv();
  ASSERT_TRUE(p);
  ASSERT_EQ(u16(*p, 0), 3);
  Client stranger(port);
  stranger.send_to(c.tid(), ack(1));
  auto e = stranger.recv(1500);
  expect_tftp_error(e, 5);
  c.send(ack(9));  // never sent: ignored
  std::string got = p->substr(4);
  c.send(ack(1));
  for (uint16_t b = 2;; ++b) {
    p = c.recv();
    ASSERT_TRUE(p);
    ASSERT_EQ(u16(*p, 0), 3);
    // A duplicate of the previous block (the server's early probe crossed
    // our ACK) is skipped, as RFC 1350 receivers do.
    while (u16(*p, 2) == b - 1) {
      p = c.recv();
      ASSERT_TRUE(p);
    }
    ASSERT_EQ(u16(*p, 2), b);
    got += p->substr(4);
    c.send(ack(b));
    if (p->size() < 4 + 512) break;
  }
  EXPECT_EQ(got, slurp(root.file("ok.bin")));
  EXPECT_EQ(read_file(port, "ok.bin", 512, 1), got);  // still serving
}

// Block numbers roll over 65535 -> 0: 70000 blocks of 8 bytes, windowed.
TEST_P(TftpModes, BlockNumbersRollOverInBothDirections) {
  TempDir root;
  const std::string content = random_bytes(8 * 70'000 + 3, 6);
  spit(root.file("roll.bin"), content);
  ServerProcess server(args({}), root.path());
  const int port = server.ports()[0];
  EXPECT_EQ(read_file(port, "roll.bin", 8, 64), content);

  Client c(port);
  c.send_request("\0\2up.bin\0octet\0blksize\0008\0windowsize\00064\0"s);
  auto p = c.recv();
  ASSERT_TRUE(p);
  ASSERT_EQ(u16(*p, 0), 6);
  uint16_t block = 1;
  size_t at = 0;
  unsigned in_window = 0;
  for (;;) {
    const std::string payload = content.substr(at, 8);
    c.send(data_packet(block, payload));
    at += payload.size();
    const bool last = payload.size() < 8;
    if (last || ++in_window == 64) {
      in_window = 0;
      p = c.recv();
      ASSERT_TRUE(p) << "no ACK at byte " << at;
      ASSERT_EQ(*p, ack(block));
    }
    if (last) break;
    ++block;
  }
  EXPECT_EQ(slurp(root.file("up.bin")), content);
}

INSTANTIATE_TEST_SUITE_P(Both, TftpModes, ::testing::Values("thread", "process"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
