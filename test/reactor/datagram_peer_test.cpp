// reactor::DatagramPeer: datagrams from the peer versus strangers on its
// own socket, sends to the peer, the one-shot timer, and the lifetime:
// released only after close, the handles' close callbacks and the last
// executor task, once. Real loop, real UDP sockets, callback counters,
// uv_loop_close() == 0 at the end.

#include "fsrv/reactor/datagram_peer.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <string>

#include "../support/latch.hpp"

namespace fsrv::test {
namespace {

/// Counts every callback; on_released sets a flag instead of freeing.
struct Probe final : reactor::DatagramPeer {
  using DatagramPeer::DatagramPeer;
  int timers = 0, released = 0, strangers = 0;
  std::string from_peer;
  void on_timer() override { ++timers; }
  void on_peer_datagram(std::span<const char> data) override {
    from_peer.append(data.data(), data.size());
  }
  void on_stranger(const sockaddr&, std::span<const char>) override { ++strangers; }
  void on_released() override { ++released; }
};

template <typename F>
bool run_until(uv_loop_t* loop, F done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done() && std::chrono::steady_clock::now() < deadline) uv_run(loop, UV_RUN_NOWAIT);
  return done();
}

/// A UDP socket bound to 127.0.0.1 (ephemeral port); its address in `me`.
int bound_socket(sockaddr_in* me) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  *me = {};
  me->sin_family = AF_INET;
  me->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(me), sizeof *me);
  socklen_t len = sizeof *me;
  getsockname(fd, reinterpret_cast<sockaddr*>(me), &len);
  return fd;
}

sockaddr_in loopback(int port) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return to;
}

TEST(DatagramPeer, TellsThePeerFromStrangersAndSendsToThePeer) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  sockaddr_in peer_addr, other_addr;
  int peer_fd = bound_socket(&peer_addr);
  int other_fd = bound_socket(&other_addr);
  {
    Probe p(&loop, reinterpret_cast<const sockaddr&>(peer_addr));
    EXPECT_EQ(p.peer_ip(), "127.0.0.1");
    EXPECT_EQ(p.peer_key(), "127.0.0.1:" + std::to_string(ntohs(peer_addr.sin_port)));
    int port = p.open_socket(Endpoint{"127.0.0.1", 0}, {});
    ASSERT_GT(port, 0);
    sockaddr_in to = loopback(port);
    ASSERT_EQ(sendto(peer_fd, "abc", 3, 0, reinterpret_cast<sockaddr*>(&to), sizeof to), 3);
    ASSERT_EQ(sendto(other_fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to), 1);
    ASSERT_TRUE(run_until(&loop, [&] { return p.from_peer == "abc" && p.strangers == 1; }));

    std::string head = "he", body = "llo";
    EXPECT_EQ(p.send(head, body), 5);
    char got[16];
    ssize_t n = recv(peer_fd, got, sizeof got, 0);
    ASSERT_EQ(n, 5);
    EXPECT_EQ(std::string(got, 5), "hello");

    p.close();
    p.close();  // idempotent
    EXPECT_TRUE(p.peer_closing());
    EXPECT_LT(p.send(head), 0);  // nothing once closing
    EXPECT_EQ(p.released, 0);    // the close callbacks have not run yet
    ASSERT_TRUE(run_until(&loop, [&] { return p.released == 1; }));
    EXPECT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    EXPECT_EQ(p.released, 1);
  }
  close(peer_fd);
  close(other_fd);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(DatagramPeer, TimerFiresOnceAndNeverAfterClose) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  sockaddr_in addr = loopback(9);
  {
    Probe p(&loop, reinterpret_cast<const sockaddr&>(addr));
    p.arm_timer(1);
    ASSERT_TRUE(run_until(&loop, [&] { return p.timers == 1; }));
    p.arm_timer(1);
    p.stop_timer();
    p.arm_timer(5);
    p.close();  // stops the armed timer: no on_timer after close
    EXPECT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    EXPECT_EQ(p.timers, 1);
    EXPECT_EQ(p.released, 1);
  }
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(DatagramPeer, ExecutorWorkInFlightHoldsThePeerPastClose) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  sockaddr_in addr = loopback(9);
  {
    reactor::ThreadPoolExecutor executor(&loop);
    Probe p(&loop, reinterpret_cast<const sockaddr&>(addr));
    Latch latch;
    int worked = 0, done = 0, ran_after = 0;
    p.run(
        executor, [&] { worked = 1; }, [&] { ++done; });
    ASSERT_TRUE(run_until(&loop, [&] { return done == 1; }));
    // Second task blocks until the peer is closed: done is then skipped
    // and the release waits for the task.
    p.run(
        executor, [&] { latch.wait(); }, [&] { ++ran_after; });
    p.close();
    for (int i = 0; i < 20; ++i) uv_run(&loop, UV_RUN_NOWAIT);
    EXPECT_EQ(p.released, 0);  // the timer is closed, the task still holds it
    latch.open();
    EXPECT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    EXPECT_EQ(worked, 1);
    EXPECT_EQ(ran_after, 0);
    EXPECT_EQ(p.released, 1);
    {
      reactor::PeerRef extra(&p);  // a late reference after release does not release twice
    }
    EXPECT_EQ(p.released, 1);
    executor.close();
  }
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(DatagramPeer, ReleasedEvenWhenItsSocketCouldNotBind) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  sockaddr_in addr = loopback(9);
  {
    Probe p(&loop, reinterpret_cast<const sockaddr&>(addr));
    EXPECT_LT(p.open_socket(Endpoint{"203.0.113.1", 0}, {}), 0);  // not a local address
    p.close();
    EXPECT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    EXPECT_EQ(p.released, 1);
  }
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
}  // namespace fsrv::test
