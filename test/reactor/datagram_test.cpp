// reactor::DatagramListener: bind, batched receive in order,
// sender addresses, on_start/on_stop pairing, bind errors, adopt().

#include "fsrv/reactor/datagram.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <string>
#include <vector>

namespace fsrv::test {
namespace {

struct Recorder : reactor::DatagramHandler {
  int starts = 0, stops = 0;
  std::string bytes;
  size_t datagrams = 0;
  int last_port = 0;
  std::string last_ip;
  void on_start(reactor::DatagramListener&) override { ++starts; }
  void on_datagram(reactor::DatagramListener&, const sockaddr& from,
                   std::span<const char> data) override {
    ++datagrams;
    bytes.append(data.data(), data.size());
    last_ip = reactor::address_ip(from);
    last_port = reactor::address_port(from);
  }
  void on_stop(reactor::DatagramListener&) override { ++stops; }
};

/// Runs `loop` until `done()` or 10 s.
template <typename F>
bool run_until(uv_loop_t* loop, F done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done() && std::chrono::steady_clock::now() < deadline) uv_run(loop, UV_RUN_NOWAIT);
  return done();
}

int udp_to(int port, sockaddr_in* to) {
  *to = {};
  to->sin_family = AF_INET;
  to->sin_port = htons(static_cast<uint16_t>(port));
  to->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return socket(AF_INET, SOCK_DGRAM, 0);
}

TEST(Datagram, ReceivesEveryByteInOrderFromTheSender) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  Recorder rec;
  {
    reactor::DatagramListener l(&loop, 3, "udp-sink", Endpoint{"127.0.0.1", 0});
    int port = l.listen(rec);
    ASSERT_GT(port, 0);
    EXPECT_EQ(l.port(), port);
    EXPECT_EQ(l.index(), 3);
    EXPECT_GT(l.granted_rcvbuf(), 0);
    EXPECT_EQ(rec.starts, 1);
    sockaddr_in to;
    int fd = udp_to(port, &to);
    std::string sent;
    // The course's way: one byte per datagram, all sent before the loop reads.
    for (int i = 0; i < 6766; ++i) {
      char b = static_cast<char>(i * 7 + 1);
      sent.push_back(b);
      ASSERT_EQ(sendto(fd, &b, 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to), 1);
    }
    ASSERT_TRUE(run_until(&loop, [&] { return rec.datagrams == 6766; }));
    EXPECT_EQ(rec.bytes, sent);
    sockaddr_in me{};
    socklen_t len = sizeof me;
    getsockname(fd, reinterpret_cast<sockaddr*>(&me), &len);
    EXPECT_EQ(rec.last_ip, "127.0.0.1");
    EXPECT_EQ(rec.last_port, ntohs(me.sin_port));
    close(fd);
    l.close();
    l.close();  // idempotent
    EXPECT_EQ(rec.stops, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(Datagram, BindErrorIsReturnedAndNoStopWithoutStart) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  Recorder rec;
  {
    int busy = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(busy, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(busy, reinterpret_cast<sockaddr*>(&a), &len);
    reactor::DatagramListener l(&loop, 0, "udp-sink", Endpoint{"127.0.0.1", ntohs(a.sin_port)});
    EXPECT_EQ(l.listen(rec), UV_EADDRINUSE);
    reactor::DatagramListener bad(&loop, 1, "udp-sink", Endpoint{"not-an-ip", 0});
    EXPECT_LT(bad.listen(rec), 0);
    l.close();
    bad.close();
    EXPECT_EQ(rec.starts, 0);
    EXPECT_EQ(rec.stops, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    close(busy);
  }
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(Datagram, AdoptsABoundSocketLikeAPreforkWorker) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  Recorder rec;
  {
    reactor::DatagramListener master(&loop, 0, "udp-sink", Endpoint{"127.0.0.1", 0});
    int port = master.bind();
    ASSERT_GT(port, 0);
    int copy = dup(master.fd());
    reactor::DatagramListener worker(&loop, 0, "udp-sink", Endpoint{"127.0.0.1", 0});
    EXPECT_EQ(worker.adopt(copy), port);
    ASSERT_EQ(worker.start(rec), 0);
    sockaddr_in to;
    int fd = udp_to(port, &to);
    ASSERT_EQ(sendto(fd, "abc", 3, 0, reinterpret_cast<sockaddr*>(&to), sizeof to), 3);
    ASSERT_TRUE(run_until(&loop, [&] { return rec.datagrams == 1; }));
    EXPECT_EQ(rec.bytes, "abc");
    close(fd);
    master.close();
    worker.close();
    EXPECT_EQ(rec.stops, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
}  // namespace fsrv::test
