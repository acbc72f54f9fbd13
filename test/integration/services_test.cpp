// The services design end to end: one server with several listeners of
// different services (two `file`, three `echo`), in thread mode and in
// process mode with 1 and 5 workers; echo content checks; start-up errors.

#include <gtest/gtest.h>
#include <xxhash.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include "../support/server_process.hpp"

namespace fsrv::test {
namespace {

/// Sends `data` on one thread while reading the echo on this one, in
/// recv(16)-sized pieces when `small_reads`; returns what came back.
std::string echo_round_trip(int port, const std::string& data, bool small_reads) {
  int fd = connect_to(port);
  if (fd < 0) return "<connect failed>";
  std::thread sender([&] {
    send_all(fd, data);
    shutdown(fd, SHUT_WR);
  });
  std::string got;
  std::vector<char> buf(small_reads ? 16 : 1 << 16);
  for (ssize_t n; (n = recv(fd, buf.data(), buf.size(), 0)) > 0;) {
    got.append(buf.data(), static_cast<size_t>(n));
  }
  sender.join();
  close(fd);
  return got;
}

class Services : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    std::vector<std::string> args = GetParam().args;
    for (const char* l : {"file=0", "echo=0", "file=0", "echo=0", "echo=0"}) {
      args.push_back("--listen");
      args.push_back(l);
    }
    server = std::make_unique<ServerProcess>(args, root.path());
    ASSERT_EQ(server->ports().size(), 5u);
  }
  int file_port(int i) const { return server->ports()[i == 0 ? 0 : 2]; }
  int echo_port(int i) const { return server->ports()[i == 0 ? 1 : i == 1 ? 3 : 4]; }

  TempDir root;
  std::unique_ptr<ServerProcess> server;
};

TEST_P(Services, EveryListenerSpeaksItsOwnProtocol) {
  const std::string ping = "{\"status\":\"OK\",\"data\":\"connected\"}\r\n\r\n";
  EXPECT_EQ(request(file_port(0), "PING"), ping);
  EXPECT_EQ(request(file_port(1), "PING"), ping);
  // The echo listeners answer the same bytes with themselves.
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(echo_round_trip(echo_port(i), "PING\r\n", true), "PING\r\n");
  // Both file listeners share one storage root.
  EXPECT_EQ(request(file_port(0), "UPLOAD a.txt aGVsbG8="),
            "{\"status\":\"OK\",\"data\":\"a.txt uploaded (5 bytes)\"}\r\n\r\n");
  EXPECT_EQ(request(file_port(1), "GET a.txt"),
            "{\"status\":\"OK\",\"data_namafile\":\"a.txt\",\"data_file\":\"aGVsbG8=\"}\r\n\r\n");
}

TEST_P(Services, EchoOfZeroAndSixteenBytesAndTheCourseSentence) {
  EXPECT_EQ(echo_round_trip(echo_port(0), "", true), "");
  EXPECT_EQ(echo_round_trip(echo_port(1), "0123456789abcdef", true), "0123456789abcdef");
  // Tugas 1's client sends this and reads it back in recv(16) pieces.
  const std::string course = "PEMROGRAMAN JARINGAN TEKNIK INFORMATIKA";
  EXPECT_EQ(echo_round_trip(echo_port(2), course, true), course);
}

TEST_P(Services, EchoOfOneHundredMegabytesComesBackExactly) {
  const size_t size = small_mode() ? (8u << 20) : (100u << 20);
  std::string data(size, '\0');
  std::mt19937_64 rng(42);
  for (size_t i = 0; i + 8 <= size; i += 8) {
    uint64_t v = rng();
    std::memcpy(data.data() + i, &v, 8);
  }
  std::string back = echo_round_trip(echo_port(0), data, false);
  ASSERT_EQ(back.size(), data.size());
  EXPECT_EQ(XXH3_64bits(back.data(), back.size()), XXH3_64bits(data.data(), data.size()));
}

// A client that sends and never reads: the echo's writes back stall, the
// server stops reading it (at most two read buffers in flight), so its
// memory stays bounded and every other echo client is still served.
TEST_P(Services, EchoClientThatNeverReadsIsPausedAndOthersAreServed) {
  int fd = connect_to(echo_port(0), 16 * 1024);
  ASSERT_GE(fd, 0);
  std::string block(1 << 20, 'x');
  size_t sent = 0;
  // Send until the server has stopped taking bytes for half a second (its
  // pause plus both socket buffers full), or 256 MB at most.
  auto last_progress = std::chrono::steady_clock::now();
  while (sent < (256u << 20) &&
         std::chrono::steady_clock::now() - last_progress < std::chrono::milliseconds(500)) {
    ssize_t n = send(fd, block.data(), block.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      last_progress = std::chrono::steady_clock::now();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  EXPECT_LT(sent, 256u << 20) << "the server kept reading a client that never reads";
  EXPECT_EQ(echo_round_trip(echo_port(1), "still served\n", true), "still served\n");
  if (!small_mode()) {
    for (long kib : server_status_kib(server->pid(), "VmRSS")) EXPECT_LT(kib, 48 * 1024);
  }
  close(fd);
}

TEST_P(Services, FiftyConcurrentEchoClientsOverThreePorts) {
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 50; ++i) {
    clients.emplace_back([&, i] {
      std::string msg = "client " + std::to_string(i) + " " + std::string(1000 + i * 37, 'x');
      if (echo_round_trip(echo_port(i % 3), msg, i % 2 == 0) == msg) ++ok;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 50);
}

TEST_P(Services, StatsCountEveryService) {
  EXPECT_EQ(echo_round_trip(echo_port(0), "12345", true), "12345");
  EXPECT_EQ(request(file_port(0), "PING"), "{\"status\":\"OK\",\"data\":\"connected\"}\r\n\r\n");
  std::string stats = request(file_port(1), "STATS");
  // (The echo connection's close may still be in flight: "active" is not
  // asserted.)
  EXPECT_NE(stats.find("\"echo\":{\"connections\":{\"total\":1,"), std::string::npos)
      << stats.substr(0, 600);
  EXPECT_NE(stats.find("},\"bytes\":5}"), std::string::npos) << stats.substr(0, 600);
  EXPECT_NE(stats.find("\"PING\":{\"ok\":1,\"failed\":0}"), std::string::npos) << stats;
}

const Mode kModes[] = {
    {"thread", {"--mode", "thread", "--log-level", "warn"}},
    {"process1", {"--mode", "process", "--workers", "1", "--log-level", "warn"}},
    {"process5", {"--mode", "process", "--workers", "5", "--log-level", "warn"}},
};

INSTANTIATE_TEST_SUITE_P(Modes, Services, ::testing::ValuesIn(kModes), mode_label);

/// Runs bin/fileserver with `args` and returns {exit status, what it wrote
/// on `stream`} (2: stderr, 1: stdout; the other one goes to /dev/null).
std::pair<int, std::string> run_fileserver(const std::vector<std::string>& args, int stream = 2) {
  int err[2];
  if (pipe(err) != 0) return {-1, ""};
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, stream == 2 ? 1 : 2);
    dup2(err[1], stream);
    close(err[0]);
    std::vector<std::string> argv = {bin_dir() + "/fileserver"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> c;
    for (auto& a : argv) c.push_back(a.data());
    c.push_back(nullptr);
    execv(c[0], c.data());
    _exit(127);
  }
  close(err[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(err[0], buf, sizeof buf)) > 0;)
    text.append(buf, static_cast<size_t>(n));
  close(err[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, text};
}

TEST(ServicesStartup, ConfigurationErrorsExitTwoWithAClearMessage) {
  TempDir root;
  for (const char* mode : {"thread", "process"}) {
    SCOPED_TRACE(mode);
    std::vector<std::string> base = {"--root", root.path(), "--host", "127.0.0.1", "--mode", mode};
    auto with = [&](std::vector<std::string> extra) {
      std::vector<std::string> a = base;
      a.insert(a.end(), extra.begin(), extra.end());
      return run_fileserver(a);
    };
    auto [rc1, err1] = with({"--listen", "gopher=0"});
    EXPECT_EQ(rc1, 2);
    EXPECT_NE(err1.find("unknown service 'gopher'"), std::string::npos) << err1;

    auto [rc2, err2] = with({"--listen", "file=127.0.0.1:45999", "--listen", "echo=45999"});
    EXPECT_EQ(rc2, 2);
    EXPECT_NE(err2.find("duplicate address 127.0.0.1:45999"), std::string::npos) << err2;

    // A port already in use by another process.
    ServerProcess other({"--log-level", "warn"}, root.path());
    auto [rc3, err3] =
        with({"--listen", "echo=0", "--listen", "file=127.0.0.1:" + std::to_string(other.port())});
    EXPECT_EQ(rc3, 2);
    EXPECT_NE(err3.find("cannot listen file on 127.0.0.1:" + std::to_string(other.port())),
              std::string::npos)
        << err3;
    EXPECT_NE(err3.find("address already in use"), std::string::npos) << err3;

    auto [rc4, err4] = with({"--listen", "echo"});
    EXPECT_EQ(rc4, 2);
    EXPECT_NE(err4.find("expected SERVICE=[HOST:]PORT"), std::string::npos) << err4;
  }
}

TEST(ServicesStartup, ServicesFlagListsEveryRegisteredService) {
  auto [rc, text] = run_fileserver({"--services"}, 1);
  EXPECT_EQ(rc, 0);
  EXPECT_NE(text.find("file "), std::string::npos) << text;
  EXPECT_NE(text.find("echo "), std::string::npos) << text;
  EXPECT_NE(text.find("31000"), std::string::npos) << text;
}

TEST(ServicesStartup, IPv6ListenerInBrackets) {
  TempDir root;
  ServerProcess s({"--listen", "echo=[::1]:0", "--log-level", "warn"}, root.path());
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(static_cast<uint16_t>(s.port()));
  a.sin6_addr = in6addr_loopback;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    GTEST_SKIP() << "no IPv6 loopback here";
  }
  send_all(fd, "v6");
  shutdown(fd, SHUT_WR);
  char buf[8];
  ssize_t n = recv(fd, buf, sizeof buf, MSG_WAITALL);
  close(fd);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(std::max<ssize_t>(n, 0))), "v6");
}

}  // namespace
}  // namespace fsrv::test
