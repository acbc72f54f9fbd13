#pragma once
// Test support: a real bin/fileserver child process on a free port with a
// fresh temporary root, and small blocking socket helpers. Header-only so
// any test file can include it.
//
//   TempDir root;
//   ServerProcess server({"--workers", "2"}, root.path());
//   int fd = connect_to(server.port());

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace fsrv::test {

/// A server configuration a parametrized integration suite runs against
/// (`TestWithParam<Mode>`): the label names the test instance, the
/// arguments go to bin/fileserver.
struct Mode {
  std::string label;
  std::vector<std::string> args;
};

/// INSTANTIATE_TEST_SUITE_P's name generator for a suite over Modes: each
/// instance is named by its mode's label.
inline std::string mode_label(const ::testing::TestParamInfo<Mode>& info) {
  return info.param.label;
}

/// Directory of the programs under test: $FSRV_BIN, else ./bin.
inline std::string bin_dir() {
  const char* b = getenv("FSRV_BIN");
  return b && *b ? b : "bin";
}

/// True when FSRV_SMALL is set (sanitizer runs): tests shrink big transfers.
inline bool small_mode() { return getenv("FSRV_SMALL") != nullptr; }

/// The whole content of a (small) test file.
inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

/// Writes `data` as the whole content of a test file.
inline void spit(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

/// A temporary directory removed (recursively) on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "fsrv-test-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// A fileserver child: started with --host 127.0.0.1 --port 0 --root ROOT
/// plus `args`; the ports are read from its "listening SERVICE on
/// HOST:PORT" lines.
/// The destructor sends SIGTERM and reaps it (SIGKILL after 15 s).
class ServerProcess {
 public:
  ServerProcess(std::vector<std::string> args, const std::string& root,
                const std::string& program = "fileserver") {
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe failed");
    std::vector<std::string> argv = {
        bin_dir() + "/" + program, "--host", "127.0.0.1", "--port", "0", "--root", root};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      // Tests of descriptor exhaustion run the server under a small
      // RLIMIT_NOFILE (soft and hard), as `ulimit -n N` would.
      if (nofile_limit > 0) {
        rlimit rl{static_cast<rlim_t>(nofile_limit), static_cast<rlim_t>(nofile_limit)};
        setrlimit(RLIMIT_NOFILE, &rl);
      }
      dup2(out[1], 1);
      close(out[0]);
      close(out[1]);
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
    close(out[1]);
    out_fd_ = out[0];
    // One "listening SERVICE on HOST:PORT" line per listener: one for the
    // --host/--port shorthand, else one per --listen.
    size_t want = 0;
    for (const auto& a : args) want += a == "--listen";
    if (want == 0) want = 1;
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (ports_.size() < want) {
      pollfd p{out_fd_, POLLIN, 0};
      if (std::chrono::steady_clock::now() > deadline || poll(&p, 1, 200) < 0) break;
      if (!(p.revents & (POLLIN | POLLHUP))) continue;
      char c;
      if (read(out_fd_, &c, 1) != 1) break;
      if (c != '\n') {
        line += c;
        continue;
      }
      // "listening SERVICE on HOST:PORT", then the policy if any: " (ro)".
      if (auto paren = line.find(" ("); paren != std::string::npos) line.resize(paren);
      auto colon = line.rfind(':');
      if (line.rfind("listening ", 0) != 0 || line.find(" on ") == std::string::npos ||
          colon == std::string::npos) {
        break;
      }
      ports_.push_back(std::stoi(line.substr(colon + 1)));
      line.clear();
    }
    if (ports_.size() < want) {
      stop();
      throw std::runtime_error("server did not start: '" + line + "'");
    }
    port_ = ports_[0];
  }
  ~ServerProcess() { stop(); }

  /// When > 0, the next ServerProcess started (in this thread) runs with
  /// RLIMIT_NOFILE at this value.
  static inline thread_local int nofile_limit = 0;
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  /// The first listener's port.
  int port() const { return port_; }
  /// Every listener's port, in the order of the --listen options.
  const std::vector<int>& ports() const { return ports_; }
  pid_t pid() const { return pid_; }

  /// Waits up to `timeout` for the child to exit on its own (no signal
  /// sent); true once it has, with its wait status in exit_status().
  bool wait_exit(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (pid_ > 0) {
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        status_ = st;
        pid_ = -1;
        if (out_fd_ >= 0) close(out_fd_);
        out_fd_ = -1;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  }
  /// The wait status recorded by stop() or wait_exit().
  int exit_status() const { return status_; }

  /// Sends `sig`, waits up to `timeout` for exit; returns the wait status
  /// (or -1 if it had to be killed). Idempotent.
  int stop(int sig = SIGTERM, std::chrono::seconds timeout = std::chrono::seconds(15)) {
    if (pid_ <= 0) return status_;
    kill(pid_, sig);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      int st = 0;
      pid_t r = waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        status_ = st;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &st, 0);
        status_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
    if (out_fd_ >= 0) close(out_fd_);
    out_fd_ = -1;
    return status_;
  }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = 0;
  std::vector<int> ports_;
  int status_ = 0;
};

/// Connects a blocking TCP socket to 127.0.0.1:port (receive timeout 30 s);
/// `rcvbuf` > 0 sets a small receive buffer first (clients that do not read).
inline int connect_to(int port, int rcvbuf = 0) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

/// Polls `pred` every 20 ms until it holds or `timeout_ms` passed; returns
/// its last value. For state the server settles just after its reply: a
/// counter kept by another worker process, a temporary removed when a
/// connection's close is processed.
inline bool eventually(const std::function<bool()>& pred, int timeout_ms = 5000) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

/// A /proc/PID/status field in KiB ("VmRSS", "VmHWM") of the server and of
/// each of its worker processes (process mode), server first.
inline std::vector<long> server_status_kib(pid_t server, const std::string& field) {
  std::vector<pid_t> pids = {server};
  std::ifstream children("/proc/" + std::to_string(server) + "/task/" + std::to_string(server) +
                         "/children");
  for (pid_t c; children >> c;) pids.push_back(c);
  std::vector<long> out;
  for (pid_t p : pids) {
    std::ifstream st("/proc/" + std::to_string(p) + "/status");
    std::string line;
    while (std::getline(st, line)) {
      if (line.rfind(field + ":", 0) == 0) out.push_back(std::stol(line.substr(field.size() + 1)));
    }
  }
  return out;
}

/// Sends all bytes; false on error.
inline bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

/// Reads until "\r\n\r\n" (returned included), EOF or timeout; the bytes
/// after the terminator stay in *rest for the next call.
inline std::string read_reply(int fd, std::string* rest = nullptr) {
  std::string buf = rest ? *rest : "";
  size_t end;
  char tmp[65536];
  while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) break;
    buf.append(tmp, static_cast<size_t>(n));
  }
  if (end == std::string::npos) {
    if (rest) rest->clear();
    return buf;
  }
  if (rest) *rest = buf.substr(end + 4);
  return buf.substr(0, end + 4);
}

/// One request on a fresh connection: sends `line` + "\r\n", returns the reply.
inline std::string request(int port, const std::string& line) {
  int fd = connect_to(port);
  if (fd < 0) return "";
  send_all(fd, line + "\r\n");
  std::string r = read_reply(fd);
  close(fd);
  return r;
}

}  // namespace fsrv::test
