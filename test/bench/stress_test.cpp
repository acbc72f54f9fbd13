// Tests of bin/stress and bin/stress-grid, driven as programs (found through
// $FSRV_BIN, which the Makefile sets). A row's CSV counts are checked against
// what really happened: a live server for normal rows and for rows that must
// fail (--max-upload below the size), and a scripted "lying" server whose
// downloads have the right size but the wrong content. The grid's rows, order
// and numbering are checked on a dry run.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "../../bench/csv.hpp"
#include "../support/server_process.hpp"

namespace {

namespace fs = std::filesystem;

/// One test row: 1 MB (10^6 bytes, the course's MB) and 3 clients.
constexpr uint64_t kRowSize = 1000000;
constexpr int kRowClients = 3;

using fsrv::test::ServerProcess;
using fsrv::test::TempDir;

/// $FSRV_BIN/name (./bin/name without FSRV_BIN), or "" when the program is
/// missing or not executable.
std::string program(const std::string& name) {
  fs::path p = fs::path(fsrv::test::bin_dir()) / name;
  return ::access(p.c_str(), X_OK) == 0 ? p.string() : "";
}

/// Runs a shell command, returns its exit status and stdout+stderr.
int run(const std::string& cmd, std::string* output) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) output->append(buf, n);
  int st = ::pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/// Starts bin/fileserver (2 workers in `mode`, plus `extra`) on a free port
/// with a fresh root; null (and a test failure) if it does not start.
std::unique_ptr<ServerProcess> start_server(const TempDir& root, const std::string& mode,
                                            std::vector<std::string> extra) {
  std::vector<std::string> args = {"--workers", "2", "--mode", mode};
  args.insert(args.end(), extra.begin(), extra.end());
  try {
    return std::make_unique<ServerProcess>(args, root.path());
  } catch (const std::exception& e) {
    ADD_FAILURE() << e.what();
    return nullptr;
  }
}

/// The stress CSV, with a test failure for a column that does not exist.
struct Csv : fsrv::bench::Csv {
  Csv(fsrv::bench::Csv c) : fsrv::bench::Csv(std::move(c)) {}
  std::string get(size_t row, const std::string& name) const {
    if (column(name) < 0) ADD_FAILURE() << "no column " << name;
    EXPECT_LT(row, rows.size());
    return fsrv::bench::Csv::get(row, name);
  }
};

Csv read_csv(const fs::path& path) { return fsrv::bench::read_csv(path); }

/// Runs one stress row against 127.0.0.1:port into dir/row.csv; returns the
/// CSV read back (one row expected).
Csv stress_row(const TempDir& dir, int port, const std::string& op, const std::string& extra,
               std::string* out) {
  std::ostringstream cmd;
  cmd << program("stress") << " --host 127.0.0.1 --port " << port << " --op " << op << " --size "
      << kRowSize << " --clients " << kRowClients << " --row 7 --csv "
      << (fs::path(dir.path()) / "row.csv") << " --cache-dir " << (fs::path(dir.path()) / "cache")
      << " --io-timeout-ms 10000 " << extra;
  int rc = run(cmd.str(), out);
  EXPECT_EQ(rc, 0) << cmd.str() << "\n" << *out;
  return read_csv(fs::path(dir.path()) / "row.csv");
}

#define REQUIRE_PROGRAMS(...)             \
  for (const char* name_ : {__VA_ARGS__}) \
    if (program(name_).empty()) GTEST_SKIP() << name_ << " not found in $FSRV_BIN";

// --- grid dry run ---------------------------------------------------------

struct DryRow {
  int k, nomor, volume, clients, server;
  std::string mode, op;
};

std::vector<DryRow> dry_run(const std::string& args) {
  std::string out;
  EXPECT_EQ(run(program("stress-grid") + " --dry-run " + args, &out), 0) << out;
  std::vector<DryRow> rows;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    DryRow r{};
    ls >> r.k >> r.mode >> r.nomor >> r.op >> r.volume >> r.clients >> r.server;
    EXPECT_FALSE(ls.fail()) << "bad dry-run line: " << line;
    rows.push_back(r);
  }
  return rows;
}

TEST(StressGrid, DryRunHas54RowsPerServerModeInTableOrder) {
  REQUIRE_PROGRAMS("stress-grid");
  auto rows = dry_run("");
  ASSERT_EQ(rows.size(), 108u);
  size_t i = 0;
  for (std::string mode : {"thread", "process"}) {
    int nomor = 0;
    for (std::string op : {"download", "upload"})
      for (int v : {10, 50, 100})
        for (int c : {1, 5, 50})
          for (int s : {1, 5, 50}) {
            const DryRow& r = rows[i++];
            EXPECT_EQ(r.k, int(i));
            EXPECT_EQ(r.mode, mode);
            EXPECT_EQ(r.nomor, ++nomor);
            EXPECT_EQ(r.op, op);
            EXPECT_EQ(r.volume, v);
            EXPECT_EQ(r.clients, c);
            EXPECT_EQ(r.server, s);
          }
    EXPECT_EQ(nomor, 54);
  }
}

TEST(StressGrid, QuickDryRunIsReduced) {
  REQUIRE_PROGRAMS("stress-grid");
  auto rows = dry_run("--quick --server-modes thread");
  ASSERT_EQ(rows.size(), 16u);  // 2 ops x 2 volumes x 2 client pools x 2 server pools
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].nomor, int(i) + 1);
    EXPECT_TRUE(rows[i].volume == 1 || rows[i].volume == 5);
    EXPECT_TRUE(rows[i].clients == 1 || rows[i].clients == 5);
  }
}

// --- stress rows against the real server ----------------------------------

TEST(StressRow, SkippedRowIsRecordedWithItsReason) {
  REQUIRE_PROGRAMS("stress");
  TempDir dir;
  std::string out;
  std::string cmd = program("stress") +
                    " --op upload --size 1000000 --clients 5 --server-workers 50 --row 12 " +
                    "--mode-label process --csv " + (fs::path(dir.path()) / "row.csv").string() +
                    " --skip-reason 'server rejects --mode process, for now'";
  ASSERT_EQ(run(cmd, &out), 0) << out;
  Csv csv = read_csv(fs::path(dir.path()) / "row.csv");
  ASSERT_EQ(csv.rows.size(), 1u);
  EXPECT_EQ(csv.get(0, "Nomor"), "12");
  EXPECT_EQ(csv.get(0, "Status"), "skipped");
  EXPECT_EQ(csv.get(0, "Server mode"), "process");
  EXPECT_EQ(csv.get(0, "Volume"), "1 MB");
  EXPECT_EQ(csv.get(0, "Alasan gagal"), "server rejects --mode process, for now");
  EXPECT_EQ(csv.get(0, "Client sukses"), "");
}

/// Parameters: (client pool, server mode).
class StressLive : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {
 protected:
  std::string pool() const { return std::get<0>(GetParam()); }
  std::string mode() const { return std::get<1>(GetParam()); }
};

TEST_P(StressLive, NormalRowsSucceedOnBothSides) {
  REQUIRE_PROGRAMS("stress", "fileserver");
  TempDir root, dir;
  auto server = start_server(root, mode(), {});
  ASSERT_TRUE(server);
  for (std::string op : {"download", "upload"}) {
    std::string out;
    stress_row(dir, server->port(), op, "--pool " + pool() + " --verify-uploads", &out);
  }
  Csv csv = read_csv(fs::path(dir.path()) / "row.csv");
  ASSERT_EQ(csv.rows.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(csv.get(i, "Status"), "ok");
    EXPECT_EQ(csv.get(i, "Nomor"), "7");
    EXPECT_EQ(csv.get(i, "Client sukses"), std::to_string(kRowClients));
    EXPECT_EQ(csv.get(i, "Client gagal"), "0");
    EXPECT_EQ(csv.get(i, "Server sukses"), std::to_string(kRowClients));
    EXPECT_EQ(csv.get(i, "Server gagal"), "0");
    EXPECT_EQ(csv.get(i, "Jumlah server worker pool"), "2");  // from STATS
    EXPECT_EQ(csv.get(i, "Server mode"), mode());
    EXPECT_EQ(csv.get(i, "Client pool mode"), pool());
    EXPECT_EQ(csv.get(i, "Alasan gagal"), "");
    EXPECT_GT(std::stod(csv.get(i, "Throughput per client")), 0);
    EXPECT_GT(std::stod(csv.get(i, "Waktu total per client")), 0);
  }
  EXPECT_EQ(csv.get(0, "Operasi"), "download");
  EXPECT_EQ(csv.get(1, "Operasi"), "upload");
}

TEST_P(StressLive, UploadsAboveMaxUploadFailOnBothSides) {
  REQUIRE_PROGRAMS("stress", "fileserver");
  TempDir root, dir;
  auto server = start_server(root, mode(), {"--max-upload", std::to_string(kRowSize / 2)});
  ASSERT_TRUE(server);
  std::string out;
  Csv csv = stress_row(dir, server->port(), "upload", "--pool " + pool(), &out);
  ASSERT_EQ(csv.rows.size(), 1u) << out;
  EXPECT_EQ(csv.get(0, "Client sukses"), "0");
  EXPECT_EQ(csv.get(0, "Client gagal"), std::to_string(kRowClients));
  EXPECT_EQ(csv.get(0, "Server sukses"), "0");
  EXPECT_EQ(csv.get(0, "Server gagal"), std::to_string(kRowClients));
  EXPECT_EQ(csv.get(0, "Throughput per client"), "0");
  EXPECT_NE(csv.get(0, "Alasan gagal").find(std::to_string(kRowClients) + "x "), std::string::npos)
      << csv.get(0, "Alasan gagal");
}

// --protocol raw: the workers speak file-raw (raw bytes, no
// base64) on --raw-port; STATS counts file-raw's commands.
TEST_P(StressLive, RawProtocolRowsSucceedOnBothSides) {
  REQUIRE_PROGRAMS("stress", "fileserver");
  TempDir root, dir;
  auto server = start_server(root, mode(), {"--listen", "file=0", "--listen", "file-raw=0"});
  ASSERT_TRUE(server);
  ASSERT_EQ(server->ports().size(), 2u);
  for (std::string op : {"download", "upload"}) {
    std::string out;
    stress_row(dir, server->ports()[0], op,
               "--pool " + pool() + " --verify-uploads --protocol raw --raw-port " +
                   std::to_string(server->ports()[1]),
               &out);
    EXPECT_NE(out.find("raw " + op), std::string::npos) << out;
  }
  Csv csv = read_csv(fs::path(dir.path()) / "row.csv");
  ASSERT_EQ(csv.rows.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(csv.get(i, "Status"), "ok");
    EXPECT_EQ(csv.get(i, "Client sukses"), std::to_string(kRowClients));
    EXPECT_EQ(csv.get(i, "Server sukses"), std::to_string(kRowClients));  // file-raw's counters
    EXPECT_EQ(csv.get(i, "Server gagal"), "0");
    EXPECT_EQ(csv.get(i, "Alasan gagal"), "");
  }
}

INSTANTIATE_TEST_SUITE_P(PoolsAndModes, StressLive,
                         ::testing::Combine(::testing::Values("thread", "process"),
                                            ::testing::Values("thread", "process")),
                         [](const auto& info) {
                           return "client_" + std::get<0>(info.param) + "_server_" +
                                  std::get<1>(info.param);
                         });

// --- a lying server: right size, wrong content ------------------------------

/// Speaks just enough of the protocol for a stress download row: UPLOAD is
/// acknowledged (its content dropped), GET returns `size` zero bytes, STATS
/// reports counters. Serves each connection on its own thread; everything is
/// joined on destruction.
class LyingServer {
 public:
  LyingServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 64) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      return;
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~LyingServer() {
    stop_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    std::lock_guard lock(mu_);
    for (auto& t : conns_) t.join();
    ::close(fd_);
  }
  int port() const { return port_; }

 private:
  void accept_loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      timeval tv{5, 0};  // bounded: a silent client is dropped after 5 s
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::lock_guard lock(mu_);
      conns_.emplace_back([this, c] { serve(c); });
    }
  }
  void send_all(int c, const std::string& s) {
    for (size_t off = 0; off < s.size();) {
      ssize_t n = ::send(c, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += size_t(n);
    }
  }
  void serve(int c) {
    std::string buf;
    char chunk[65536];
    for (;;) {
      auto eol = buf.find("\r\n");
      if (eol == std::string::npos) {
        ssize_t n = ::recv(c, chunk, sizeof chunk, 0);
        if (n <= 0) break;
        buf.append(chunk, size_t(n));
        continue;
      }
      std::string line = buf.substr(0, eol);
      buf.erase(0, eol + 2);
      if (line.rfind("UPLOAD ", 0) == 0) {
        auto sp = line.find(' ', 7);
        std::string name = line.substr(7, sp - 7);
        size_t chars = line.size() - sp - 1;
        size_t pad =
            line.size() >= 2 ? (line[line.size() - 1] == '=') + (line[line.size() - 2] == '=') : 0;
        size_ = chars / 4 * 3 - pad;
        send_all(c, "{\"status\":\"OK\",\"data\":\"" + name + " uploaded (" +
                        std::to_string(size_) + " bytes)\"}\r\n\r\n");
      } else if (line.rfind("GET ", 0) == 0) {
        std::string b64(size_ / 3 * 4, 'A');
        if (size_ % 3 == 1) b64 += "AA==";
        if (size_ % 3 == 2) b64 += "AAA=";
        send_all(c, "{\"status\":\"OK\",\"data_namafile\":\"" + line.substr(4) +
                        "\",\"data_file\":\"" + b64 + "\"}\r\n\r\n");
        get_ok_++;
      } else if (line == "STATS") {
        send_all(c,
                 "{\"status\":\"OK\",\"data\":{\"mode\":\"thread\",\"pool_size\":1,\"connections\":"
                 "{\"active\":1,\"total\":1,\"rejected\":0},\"services\":{\"file\":{\"commands\":{"
                 "\"GET\":{\"ok\":" +
                     std::to_string(get_ok_) +
                     ",\"failed\":0},\"UPLOAD\":{\"ok\":0,\"failed\":0}}}}}}\r\n\r\n");
      } else {
        send_all(c, "{\"status\":\"ERROR\",\"data\":\"unknown command\"}\r\n\r\n");
      }
    }
    ::close(c);
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> size_{0};
  std::atomic<int> get_ok_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> conns_;
};

TEST(StressRow, WrongContentCountsAsClientFailure) {
  REQUIRE_PROGRAMS("stress");
  for (std::string pool : {"thread", "process"}) {
    SCOPED_TRACE(pool);
    LyingServer server;
    ASSERT_GT(server.port(), 0);
    TempDir dir;
    std::string out;
    Csv csv = stress_row(dir, server.port(), "download", "--pool " + pool, &out);
    ASSERT_EQ(csv.rows.size(), 1u) << out;
    EXPECT_EQ(csv.get(0, "Client sukses"), "0");
    EXPECT_EQ(csv.get(0, "Client gagal"), std::to_string(kRowClients));
    // The server believes it served every GET: only the client can tell.
    EXPECT_EQ(csv.get(0, "Server sukses"), std::to_string(kRowClients));
    EXPECT_EQ(csv.get(0, "Alasan gagal"), std::to_string(kRowClients) + "x content hash mismatch");
    EXPECT_EQ(csv.get(0, "Throughput agregat"), "0");
  }
}

}  // namespace
