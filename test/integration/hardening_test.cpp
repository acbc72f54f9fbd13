// Regression tests of the hardening issue, named after the bugs they pin,
// against a real bin/fileserver in thread mode and process mode.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "../support/server_process.hpp"

namespace fsrv::test {
namespace {

/// Current RSS in KiB of the server and its worker processes.
std::vector<long> server_rss_kib(pid_t server) { return server_status_kib(server, "VmRSS"); }

/// A connected client socket with a small receive buffer that never reads.
int non_reading_client(int port) {
  int fd = connect_to(port, 4096);
  if (fd >= 0) fcntl(fd, F_SETFL, O_NONBLOCK);
  return fd;
}

class Hardening : public ::testing::TestWithParam<Mode> {
 protected:
  void start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = GetParam().args;
    args.insert(args.end(), extra.begin(), extra.end());
    server = std::make_unique<ServerProcess>(args, root.path());
  }
  TempDir root;
  std::unique_ptr<ServerProcess> server;
};

// Point 1: each small reply used to cost a write request of its own, and the
// watermark counted only bytes still queued in libuv: 100 clients pipelining
// "X\n" without reading took thread mode to ~4 GB and a new client's PING to
// 19.6 s. Now every server process stays under 64 MB and PING answers fast.
TEST_P(Hardening, NonReadingPipeliningClientsKeepMemoryBoundedAndServerResponsive) {
  start();
  const int kClients = small_mode() ? 20 : 100;
  std::vector<int> fds;
  for (int i = 0; i < kClients; ++i) {
    int fd = non_reading_client(server->port());
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
  }
  std::string flood;
  for (int i = 0; i < 524288; ++i) flood += "X\n";
  // Push as much as each connection takes within the time budget: the server
  // stops reading a connection once its replies are not being read.
  std::vector<size_t> sent(fds.size(), 0);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(small_mode() ? 4 : 6);
  bool progress = true;
  while (progress && std::chrono::steady_clock::now() < until) {
    progress = false;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (sent[i] >= flood.size()) continue;
      ssize_t n = send(fds[i], flood.data() + sent[i], flood.size() - sent[i], MSG_NOSIGNAL);
      if (n > 0) {
        sent[i] += static_cast<size_t>(n);
        progress = true;
      }
    }
    if (!progress) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      progress = true;  // give the server time, until the deadline
      bool all_blocked = true;
      for (size_t i = 0; i < fds.size(); ++i) {
        pollfd p{fds[i], POLLOUT, 0};
        if (sent[i] < flood.size() && poll(&p, 1, 0) == 1) all_blocked = false;
      }
      if (all_blocked) break;
    }
  }
  size_t total = 0;
  for (size_t s : sent) total += s;
  EXPECT_GT(total, size_t{100} << 10);  // the attack really was sent
  // A fresh client is answered quickly while the attackers stay connected.
  auto t0 = std::chrono::steady_clock::now();
  std::string reply = request(server->port(), "PING");
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0);
  EXPECT_EQ(reply, "{\"status\":\"OK\",\"data\":\"connected\"}\r\n\r\n");
  if (!small_mode()) {
    // Generous: the point is an answer while the attack holds, not a
    // latency figure (the suites run side by side on 2 cores).
    EXPECT_LT(ms.count(), 1000.0);
    for (long kib : server_rss_kib(server->pid())) EXPECT_LT(kib, 64 * 1024);
  }
  for (int fd : fds) close(fd);
}

// Point 2: a client that closed in the middle of a GET stayed a zombie until
// the idle timeout (write errors ignored, reading paused), holding its slot:
// 20 cycles locked out legitimate clients with --max-conns 20. Now the write
// error closes the connection at once.
TEST_P(Hardening, ClientClosingMidGetIsReleasedAtOnce) {
  start({"--max-conns", "20", "--idle-timeout", "60"});
  {
    std::ofstream f(root.file("big.bin"), std::ios::binary);
    f.seekp((small_mode() ? (16 << 20) : (64 << 20)) - 1);
    f.put('z');
  }
  for (int i = 0; i < 20; ++i) {
    int fd = connect_to(server->port());
    ASSERT_GE(fd, 0);
    send_all(fd, "GET big.bin\r\n");
    char buf[1000];
    size_t got = 0;
    while (got < sizeof buf) {
      ssize_t n = recv(fd, buf, sizeof buf - got, 0);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    EXPECT_EQ(got, sizeof buf);
    linger lg{1, 0};  // close with a reset, as a killed client does
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
  }
  // Within a second every slot is free again: a legitimate client is served.
  std::string reply;
  for (int tries = 0; tries < 20; ++tries) {
    reply = request(server->port(), "PING");
    if (reply.find("\"OK\"") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(reply, "{\"status\":\"OK\",\"data\":\"connected\"}\r\n\r\n");
  // And SIGTERM does not wait for a grace period on them: exit is prompt.
  auto t0 = std::chrono::steady_clock::now();
  int st = server->stop();
  auto s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  EXPECT_LT(s, 5.0);
}

// Point 4: when the master was SIGKILLed, a worker saw its channel's EOF and
// PDEATHSIG's SIGTERM as two stop requests and cut its transfers ("3 of 3
// GETs truncated, the in-flight upload lost"). One cause, one drain now.
TEST(HardeningProcess, WorkersFinishTransfersWhenTheMasterIsKilled) {
  TempDir root;
  ServerProcess server({"--mode", "process", "--workers", "2", "--log-level", "warn"}, root.path());
  const uint64_t size = small_mode() ? (8u << 20) : (48u << 20);
  {
    std::ofstream f(root.file("big.bin"), std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size - 1));
    f.put('z');
  }
  std::vector<int> gets;
  for (int i = 0; i < 3; ++i) {
    int fd = connect_to(server.port());
    ASSERT_GE(fd, 0);
    send_all(fd, "GET big.bin\r\n");
    gets.push_back(fd);
  }
  int up = connect_to(server.port());
  send_all(up, "UPLOAD kept.bin ");
  send_all(up, std::string(400000, 'A'));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // all in flight
  kill(server.pid(), SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  send_all(up, std::string(400000, 'A') + "\r\n");
  const uint64_t want =
      std::string("{\"status\":\"OK\",\"data_namafile\":\"big.bin\",\"data_file\":\"").size() +
      (size + 2) / 3 * 4 + 6;
  for (int fd : gets) {
    uint64_t got = 0;
    std::vector<char> buf(1 << 20);
    for (ssize_t n; got < want && (n = recv(fd, buf.data(), buf.size(), 0)) > 0;) {
      got += static_cast<uint64_t>(n);
    }
    EXPECT_EQ(got, want) << "a GET was cut short";
    close(fd);
  }
  EXPECT_EQ(read_reply(up),
            "{\"status\":\"OK\",\"data\":\"kept.bin uploaded (600000 bytes)\"}\r\n\r\n");
  close(up);
  server.stop(SIGKILL);  // reap the master; the workers exit by themselves
}

// Point 3: one byte per second kept a request line (or an UPLOAD payload)
// alive forever, since every byte reset the idle timer: 20 such clients with
// --max-conns 20 locked everyone out. A line now has --request-timeout from
// its first byte, and a payload must move at --min-rate over its window.
// The legacy clients' silence rule is off (--legacy-idle-ms 0): on a loaded
// machine a 200 ms gap between two trickled bytes would otherwise end the
// line as a request of its own, and this test is about the timeouts.
TEST_P(Hardening, SlowRequestLinesAndPayloadsAreCutOff) {
  start({"--request-timeout", "1", "--min-rate", "2000", "--min-rate-window", "1", "--max-conns",
         "4", "--legacy-idle-ms", "0"});
  std::atomic<int> connected{0};
  auto trickle = [&](const std::string& head, char byte) {
    int fd = connect_to(server->port());
    send_all(fd, head);
    ++connected;
    std::string got;
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(6);
    while (std::chrono::steady_clock::now() < until) {
      if (!send_all(fd, std::string(1, byte))) break;
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 100) == 1) {
        char buf[512];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
      }
    }
    close(fd);
    return got;
  };
  std::vector<std::thread> slow;
  std::vector<std::string> replies(4);
  for (int i = 0; i < 4; ++i) {
    slow.emplace_back([&, i] {
      replies[i] = i % 2 == 0 ? trickle("XYZ", 'A') : trickle("UPLOAD slow.bin ", 'Q');
    });
  }
  // The slow clients connect first: a PING connecting before one of them
  // would take its slot and get it "server busy" (seen under ASan in
  // process mode). connect() returns once the kernel queued the connection,
  // so their place in the accept queue is ahead of every PING.
  for (int i = 0; i < 500 && connected.load() < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(connected.load(), 4);
  // While the 4 slow clients hold every slot, others are refused; once they
  // are cut off (about a second), service resumes.
  std::string reply;
  for (int tries = 0; tries < 50; ++tries) {  // cut off after ~1 s; 5 s at most
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    reply = request(server->port(), "PING");
    if (reply.find("\"OK\"") != std::string::npos) break;
  }
  EXPECT_EQ(reply, "{\"status\":\"OK\",\"data\":\"connected\"}\r\n\r\n");
  for (auto& t : slow) t.join();
  for (int i = 0; i < 4; ++i) {
    if (i % 2 == 0) {
      EXPECT_EQ(replies[i],
                "{\"status\":\"ERROR\",\"data\":\"request timeout: line not complete within 1 s\"}"
                "\r\n\r\n");
    } else {
      EXPECT_EQ(
          replies[i],
          "{\"status\":\"ERROR\",\"data\":\"too slow: under 2000 bytes/s over 1 s\"}\r\n\r\n");
    }
  }
  EXPECT_FALSE(std::filesystem::exists(root.file("slow.bin")));
}

// Point 5: LIST was built whole in memory per request: with 50,000 files a
// reply is 10 MB and 30 clients pipelining LIST without reading took the
// server to 510 MB. It now streams from one shared snapshot.
TEST_P(Hardening, PipelinedListsOfAHugeDirectoryKeepMemoryBounded) {
  // 10,000 names of ~205 bytes: a 2 MB reply. Built whole per request, 30
  // connections needed over 130 MB; creating 50,000 files as in the report
  // takes longer than the whole attack on this disk.
  const int kFiles = small_mode() ? 2000 : 10000;
  const std::string pad(200, 'n');
  for (int i = 0; i < kFiles; ++i) {
    int fd = open(root.file(pad + std::to_string(i)).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    close(fd);
  }
  start();
  std::vector<int> fds;
  for (int i = 0; i < 30; ++i) {
    int fd = non_reading_client(server->port());
    ASSERT_GE(fd, 0);
    std::string lists;
    for (int k = 0; k < 10; ++k) lists += "LIST\r\n";
    send(fd, lists.data(), lists.size(), MSG_NOSIGNAL);
    fds.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  if (!small_mode()) {
    for (long kib : server_rss_kib(server->pid())) EXPECT_LT(kib, 64 * 1024);
  }
  for (int fd : fds) close(fd);
  // A reader gets the whole listing, byte-exact JSON with every name.
  int fd = connect_to(server->port());
  send_all(fd, "LIST\r\n");
  std::string reply = read_reply(fd);
  close(fd);
  ASSERT_GE(reply.size(), 4u);
  EXPECT_EQ(reply.substr(0, 23), "{\"status\":\"OK\",\"data\":[");
  EXPECT_EQ(reply.substr(reply.size() - 6), "]}\r\n\r\n");
  size_t names = 0;
  for (size_t p = 0; (p = reply.find(pad, p)) != std::string::npos; p += pad.size()) ++names;
  EXPECT_EQ(names, static_cast<size_t>(kFiles));
}

// Point 6: with `ulimit -n 200`, 413 of 600 clients were dropped with no
// reply and no log (EMFILE). Now the connection cap follows the descriptor
// limit, so every client beyond it gets the busy reply.
TEST_P(Hardening, ClientsBeyondTheDescriptorLimitGetTheBusyReply) {
  ServerProcess::nofile_limit = 200;
  start();
  ServerProcess::nofile_limit = 0;
  rlimit mine{};
  getrlimit(RLIMIT_NOFILE, &mine);
  mine.rlim_cur = mine.rlim_max;  // this test holds 600 sockets itself
  setrlimit(RLIMIT_NOFILE, &mine);
  const int kClients = 600;
  // All at once, as a burst of clients arrives: connect and send first,
  // read afterwards.
  std::vector<int> all;
  for (int i = 0; i < kClients; ++i) {
    int fd = connect_to(server->port());
    ASSERT_GE(fd, 0) << "connect " << i;
    send_all(fd, "PING\r\n");
    all.push_back(fd);
  }
  std::vector<int> fds;
  int ok = 0, busy = 0, silent = 0;
  for (int fd : all) {
    std::string r = read_reply(fd);
    if (r == "{\"status\":\"OK\",\"data\":\"connected\"}\r\n\r\n") {
      ++ok;
      fds.push_back(fd);  // stays open: holds its slot
    } else {
      if (r.find("server busy") != std::string::npos) {
        ++busy;
      } else {
        ++silent;
      }
      close(fd);
    }
  }
  EXPECT_EQ(silent, 0) << "clients dropped without a reply";
  EXPECT_GT(busy, 0);
  EXPECT_GT(ok, 20);
  EXPECT_EQ(ok + busy, kClients);
  for (int fd : fds) close(fd);
  // The server serves again once they left (it sees their EOFs shortly).
  std::string reply;
  for (int tries = 0; tries < 40; ++tries) {
    reply = request(server->port(), "PING");
    if (reply.find("\"OK\"") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(reply, "{\"status\":\"OK\",\"data\":\"connected\"}\r\n\r\n");
}

// Point 7: where O_TMPFILE is unavailable, a crash left `.upload-*` files
// forever. They are removed at start-up when their process is gone.
TEST(HardeningStartup, StaleUploadTemporariesOfDeadProcessesAreRemoved) {
  TempDir root;
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  waitpid(dead, nullptr, 0);
  spit(root.file(".upload-" + std::to_string(dead) + "-1.tmp"), "partial");
  spit(root.file(".upload-" + std::to_string(getpid()) + "-7.tmp"), "alive owner");
  spit(root.file(".upload-notapid.tmp"), "not ours");
  spit(root.file("keep.txt"), "data");
  ServerProcess s({"--log-level", "warn"}, root.path());
  EXPECT_FALSE(std::filesystem::exists(root.file(".upload-" + std::to_string(dead) + "-1.tmp")));
  EXPECT_TRUE(std::filesystem::exists(root.file(".upload-" + std::to_string(getpid()) + "-7.tmp")));
  EXPECT_TRUE(std::filesystem::exists(root.file(".upload-notapid.tmp")));
  EXPECT_EQ(slurp(root.file("keep.txt")), "data");
}

// Point 8: the silence rule for clients that send no terminator ran DELETE
// on a guess: "DELETE report", a 300 ms pause, then "-2023.txt\r\n" deleted
// "report" (and answered the rest as an unknown command). A destructive
// command now runs only with its terminator or at half-close.
TEST_P(Hardening, DeleteDoesNotRunOnTheSilenceRule) {
  start();
  spit(root.file("report"), "keep me");
  spit(root.file("report-2023.txt"), "old");
  int fd = connect_to(server->port());
  ASSERT_GE(fd, 0);
  send_all(fd, "DELETE report");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // > --legacy-idle-ms 200
  pollfd p{fd, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0) << "answered before the terminator";
  send_all(fd, "-2023.txt\r\n");
  EXPECT_EQ(read_reply(fd), "{\"status\":\"OK\",\"data\":\"report-2023.txt deleted\"}\r\n\r\n");
  close(fd);
  EXPECT_EQ(slurp(root.file("report")), "keep me");
  EXPECT_FALSE(std::filesystem::exists(root.file("report-2023.txt")));
  // At half-close an unterminated DELETE is complete and runs.
  fd = connect_to(server->port());
  send_all(fd, "DELETE report");
  shutdown(fd, SHUT_WR);
  EXPECT_EQ(read_reply(fd), "{\"status\":\"OK\",\"data\":\"report deleted\"}\r\n\r\n");
  close(fd);
  EXPECT_FALSE(std::filesystem::exists(root.file("report")));
}

const Mode kModes[] = {
    {"thread", {"--mode", "thread", "--log-level", "warn"}},
    {"thread_loops2", {"--mode", "thread", "--loops", "2", "--log-level", "warn"}},
    {"process2", {"--mode", "process", "--workers", "2", "--log-level", "warn"}},
};

INSTANTIATE_TEST_SUITE_P(Modes, Hardening, ::testing::ValuesIn(kModes), mode_label);

}  // namespace
}  // namespace fsrv::test
