// udpsend: sends a file over UDP the course's way (tugas 2: one byte per
// datagram, no name, no sequence numbers, no end marker) or --chunk N bytes
// per datagram, optionally at --rate bytes/s; prints the datagrams and
// bytes sent. The receiver is the udp-sink service (default port 5005).
//
//   udpsend [-H host] [-p port] FILE [--chunk N] [--rate BYTES/S]

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

/// Largest UDP payload over IPv4 (65535 - 8 UDP - 20 IP header).
constexpr size_t kMaxChunk = 65507;
/// File bytes read at a time: the file is streamed, never held whole.
constexpr size_t kReadBlock = 1 << 20;

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"udpsend: send a file as UDP datagrams (the course's tugas 2 sender)"};
  std::string host = "127.0.0.1";
  int port = 5005;
  std::string path;
  size_t chunk = 1;
  double rate = 0;
  app.add_option("-H,--host", host, "Receiver host")->capture_default_str();
  app.add_option("-p,--port", port, "Receiver UDP port")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  app.add_option("FILE", path, "File to send")->required()->check(CLI::ExistingFile);
  app.add_option("--chunk", chunk, "Payload bytes per datagram (1 = the course's way)")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, kMaxChunk));
  app.add_option("--rate", rate, "Payload bytes per second (0 = as fast as possible)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);

  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* ai = nullptr;
  if (int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &ai); rc != 0) {
    fprintf(stderr, "udpsend: %s: %s\n", host.c_str(), gai_strerror(rc));
    return 2;
  }
  int fd = socket(ai->ai_family, SOCK_DGRAM, 0);
  if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    fprintf(stderr, "udpsend: %s:%d: %s\n", host.c_str(), port, strerror(errno));
    return 1;
  }
  freeaddrinfo(ai);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    fprintf(stderr, "udpsend: cannot open %s\n", path.c_str());
    return 1;
  }
  std::vector<char> block(kReadBlock);
  unsigned long long datagrams = 0, bytes = 0;
  auto start = std::chrono::steady_clock::now();
  while (in) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    size_t got = static_cast<size_t>(in.gcount());
    for (size_t off = 0; off < got;) {
      size_t n = std::min(chunk, got - off);
      if (send(fd, block.data() + off, n, 0) < 0) {
        if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) {
          std::this_thread::sleep_for(std::chrono::microseconds(100));
          continue;
        }
        // ECONNREFUSED: an ICMP "port unreachable" for an earlier datagram.
        fprintf(stderr, "udpsend: send: %s\n", strerror(errno));
        return 1;
      }
      off += n;
      bytes += n;
      ++datagrams;
      if (rate > 0) {
        auto due = start + std::chrono::duration<double>(static_cast<double>(bytes) / rate);
        std::this_thread::sleep_until(
            std::chrono::time_point_cast<std::chrono::steady_clock::duration>(due));
      }
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  printf("sent %llu datagrams, %llu bytes to %s:%d in %.3f s\n", datagrams, bytes, host.c_str(),
         port, secs);
  close(fd);
  return 0;
}
