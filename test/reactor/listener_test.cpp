// Listener and accept: a factory per listener, refusal through the factory
// beyond max_conns and while draining.

#include "reactor_fixture.hpp"

namespace fsrv::test {
namespace {

TEST_F(ReactorTest, ListenerAcceptsWithItsFactoryAndRefusesBeyondMaxConns) {
  reactor.max_conns = 1;
  int a = client();
  ASSERT_GE(a, 0);
  run_until([&] { return factory.made == 1; });
  int b = client();
  ASSERT_GE(b, 0);
  std::string refused;
  std::thread reader([&] { refused = read_all(b); });
  run_until([&] { return factory.refused == 1 && reactor.connections.size() == 1; });
  reader.join();
  EXPECT_EQ(refused, "busy\n");  // the factory's words, then EOF
  EXPECT_EQ(factory.made, 1);
  EXPECT_EQ(reactor.stats->conns_rejected.load(), 1u);
  close(b);
  close(a);
  run_until([&] { return reactor.connections.empty(); });
  EXPECT_EQ(factory.totals.eofs, 1);
  EXPECT_EQ(factory.totals.closes, 1);
}

TEST_F(ReactorTest, DrainingRefusesNewAndShutsDownLiveConnections) {
  int a = client();
  run_until([&] { return factory.made == 1; });
  bool drained = false;
  reactor.on_drained = [&] { drained = true; };
  reactor::drain_connections(reactor);
  std::string rest = "x";
  std::thread eof([&] { rest = read_all(a); });  // on_shutdown: close_when_flushed -> EOF
  run_until([&] { return drained; });
  eof.join();
  EXPECT_EQ(rest, "");
  EXPECT_TRUE(drained);
  int b = client();
  std::string refused;
  std::thread reader([&] { refused = read_all(b); });
  run_until([&] { return factory.refused == 1 && reactor.connections.empty(); });
  reader.join();
  EXPECT_EQ(refused, "busy\n");
  close(a);
  close(b);
}

TEST(Listener, PortInUseIsReportedByListen) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  reactor::Listener first(&loop, 0, "a", Endpoint{"127.0.0.1", 0});
  int port = first.listen([](reactor::Listener&) {});
  ASSERT_GT(port, 0);
  reactor::Listener second(&loop, 1, "b", Endpoint{"127.0.0.1", port});
  EXPECT_EQ(second.listen([](reactor::Listener&) {}), UV_EADDRINUSE);
  reactor::Listener bad(&loop, 2, "c", Endpoint{"not-an-address", 1});
  EXPECT_EQ(bad.listen([](reactor::Listener&) {}), UV_EINVAL);
  first.close();
  second.close();
  bad.close();
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

// Thread mode's extra loops: a handle on a dup() of a listening socket
// accepts from the same queue, and keeps accepting after the first handle
// closed.
TEST(Listener, SharedHandleOnAnotherLoopAcceptsFromTheSameSocket) {
  uv_loop_t first_loop, second_loop;
  uv_loop_init(&first_loop);
  uv_loop_init(&second_loop);
  int accepted = 0;
  auto accept_and_close = [&accepted](reactor::Listener& l) {
    auto* client = new uv_tcp_t;
    uv_tcp_init(l.stream()->loop, client);
    if (uv_accept(l.stream(), reinterpret_cast<uv_stream_t*>(client)) == 0) ++accepted;
    uv_close(reinterpret_cast<uv_handle_t*>(client),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  };
  reactor::Listener first(&first_loop, 0, "a", Endpoint{"127.0.0.1", 0});
  int port = first.listen(accept_and_close);
  ASSERT_GT(port, 0);
  reactor::Listener second(&second_loop, 0, "a", Endpoint{"127.0.0.1", port});
  ASSERT_EQ(second.listen_shared(first, accept_and_close), port);
  // Only the second loop runs: the client can only be its.
  auto connect_and_wait = [&](int expected) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    for (int i = 0; i < 1000 && accepted < expected; ++i) {
      uv_run(&second_loop, UV_RUN_NOWAIT);
      usleep(1000);
    }
    close(fd);
  };
  connect_and_wait(1);
  EXPECT_EQ(accepted, 1);
  first.close();
  uv_run(&first_loop, UV_RUN_DEFAULT);
  connect_and_wait(2);
  EXPECT_EQ(accepted, 2) << "the socket stays open while a loop holds it";
  second.close();
  uv_run(&second_loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&first_loop), 0);
  EXPECT_EQ(uv_loop_close(&second_loop), 0);
}

}  // namespace
}  // namespace fsrv::test
