// bin/echo-bench: one client echoing BYTES through an `echo` listener; a
// sender thread writes while the main thread reads, both hash with xxHash,
// so the figure is the echo's round-trip throughput with content checked.
//
//   echo-bench --port P [--bytes N]   -> "echo BYTES bytes MBPS MB/s ok|MISMATCH"
//
// Used by bench/transfer.sh (make bench-transfer). Exit 0 only when
// every byte came back in order.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xxhash.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  int port = 0;
  uint64_t bytes = 1000000000;
  CLI::App app{"Echo throughput: one client, content hashed on both sides."};
  app.add_option("--port", port, "echo listener port on 127.0.0.1")->required();
  app.add_option("--bytes", bytes, "bytes to echo")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    perror("echo-bench: connect");
    return 1;
  }
  timeval tv{120, 0};  // bounded: a stuck server ends the run
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::vector<char> block(1 << 20);
  std::mt19937_64 rng(1);
  for (size_t i = 0; i + 8 <= block.size(); i += 8) {
    uint64_t v = rng();
    std::memcpy(block.data() + i, &v, 8);
  }
  XXH64_hash_t sent_hash = 0;
  auto t0 = std::chrono::steady_clock::now();
  std::thread sender([&] {
    XXH3_state_t* st = XXH3_createState();
    XXH3_64bits_reset(st);
    for (uint64_t left = bytes; left > 0;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(left, block.size()));
      XXH3_64bits_update(st, block.data(), n);
      for (size_t off = 0; off < n;) {
        ssize_t k = send(fd, block.data() + off, n - off, MSG_NOSIGNAL);
        if (k <= 0) {
          left = 0;
          break;
        }
        off += static_cast<size_t>(k);
      }
      left -= std::min<uint64_t>(left, n);
    }
    shutdown(fd, SHUT_WR);
    sent_hash = XXH3_64bits_digest(st);
    XXH3_freeState(st);
  });
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  std::vector<char> buf(1 << 20);
  uint64_t got = 0;
  for (ssize_t n; (n = recv(fd, buf.data(), buf.size(), 0)) > 0;) {
    XXH3_64bits_update(st, buf.data(), static_cast<size_t>(n));
    got += static_cast<uint64_t>(n);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  sender.join();
  bool ok = got == bytes && XXH3_64bits_digest(st) == sent_hash;
  XXH3_freeState(st);
  close(fd);
  printf("echo %llu bytes %.1f MB/s %s\n", static_cast<unsigned long long>(got), got / secs / 1e6,
         ok ? "ok" : "MISMATCH");
  return ok ? 0 : 1;
}
