#pragma once
// A scripted one-connection TCP peer on 127.0.0.1 for the client tests: for
// each step it reads one request (up to and including "\r\n"), records it,
// then sends canned reply bytes in separate pieces with a short pause in
// between, so the client sees the reply split at the places the test chose.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace fsrv::client::testing {

/// One request/reply exchange of the script.
struct Step {
  std::vector<std::string> pieces;  ///< reply bytes, sent piece by piece
  /// Reply after reading only this many request bytes instead of a whole
  /// line (0: wait for "\r\n"); for "server answers mid-upload".
  size_t reply_after_bytes = 0;
  bool close_after = false;  ///< close the connection after the reply
  bool never_reply = false;  ///< read the request, then stay silent
};

/// Splits `s` at the given offsets (ascending, each < s.size()).
inline std::vector<std::string> split_at(const std::string& s, std::vector<size_t> cuts) {
  std::vector<std::string> out;
  size_t from = 0;
  for (size_t cut : cuts) {
    out.push_back(s.substr(from, cut - from));
    from = cut;
  }
  out.push_back(s.substr(from));
  return out;
}

/// Splits `s` into pieces of `n` bytes.
inline std::vector<std::string> split_every(const std::string& s, size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size(); i += n) out.push_back(s.substr(i, n));
  return out;
}

/// Listens on 127.0.0.1 (ephemeral port) and plays the script to the first
/// client that connects. The destructor waits for the script to finish.
class PeerServer {
 public:
  explicit PeerServer(std::vector<Step> script) : script_(std::move(script)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 1) != 0) {
      return;
    }
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~PeerServer() {
    ::shutdown(listen_fd_, SHUT_RDWR);  // unblocks accept() if nobody came
    if (thread_.joinable()) thread_.join();
    ::close(listen_fd_);
  }
  PeerServer(const PeerServer&) = delete;
  PeerServer& operator=(const PeerServer&) = delete;

  uint16_t port() const { return port_; }
  /// The requests read so far, each with its "\r\n".
  std::vector<std::string> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  /// Waits for the script to end (the client closed or the script closed).
  void join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::string buf;
    char chunk[1 << 16];
    bool open = true;
    for (const Step& step : script_) {
      // Read one request.
      for (;;) {
        size_t nl = buf.find("\r\n");
        if (step.reply_after_bytes > 0 && buf.size() >= step.reply_after_bytes) {
          record(buf.substr(0, step.reply_after_bytes));
          buf.erase(0, step.reply_after_bytes);
          break;
        }
        if (step.reply_after_bytes == 0 && nl != std::string::npos) {
          record(buf.substr(0, nl + 2));
          buf.erase(0, nl + 2);
          break;
        }
        ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) {
          open = false;
          break;
        }
        buf.append(chunk, static_cast<size_t>(n));
      }
      if (!open) break;
      if (step.never_reply) {
        drain(fd);
        open = false;
        break;
      }
      for (size_t i = 0; i < step.pieces.size(); ++i) {
        if (i > 0)
          std::this_thread::sleep_for(
              std::chrono::milliseconds(2));  // let the client read the piece
        const std::string& p = step.pieces[i];
        size_t sent = 0;
        while (sent < p.size()) {
          ssize_t n = ::send(fd, p.data() + sent, p.size() - sent, MSG_NOSIGNAL);
          if (n <= 0) break;
          sent += static_cast<size_t>(n);
        }
      }
      if (step.close_after) {
        open = false;
        break;
      }
    }
    if (open) drain(fd);
    ::close(fd);
  }

  /// Reads until the client closes.
  static void drain(int fd) {
    char chunk[1 << 16];
    while (::recv(fd, chunk, sizeof chunk, 0) > 0) {
    }
  }

  void record(std::string request) {
    std::lock_guard lock(mu_);
    requests_.push_back(std::move(request));
  }

  std::vector<Step> script_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> requests_;
};

}  // namespace fsrv::client::testing
