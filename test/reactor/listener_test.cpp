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

}  // namespace
}  // namespace fsrv::test
