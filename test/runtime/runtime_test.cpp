// runtime/: the wiring decisions taken before anything is bound, on real
// configurations: the default listener, the checks of a listener list, the
// datagram/stream split of the connection shares, the fd-limit cap, and
// real binds (a taken port is refused with the listener named, and nothing
// stays open).
#include "fsrv/runtime/runtime.hpp"

#include <gtest/gtest.h>
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

namespace fsrv::runtime {
namespace {

ListenSpec spec(std::string service, std::string host, int port, int max_conns = 0) {
  ListenSpec l;
  l.service = std::move(service);
  l.endpoint = Endpoint{std::move(host), port};
  l.max_conns = max_conns;
  return l;
}

TEST(RuntimeListeners, WithoutListenersTheFileServiceTakesHostAndPort) {
  ServerConfig config;
  config.host = "127.0.0.1";
  config.port = 7777;
  std::vector<ListenSpec> l = listeners_of(config);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].service, "file");
  EXPECT_EQ(l[0].endpoint.text(), "127.0.0.1:7777");
  config.listeners = {spec("echo", "127.0.0.1", 31000)};
  EXPECT_EQ(listeners_of(config)[0].service, "echo");
}

/// resolve_listeners' listeners, which must resolve.
std::vector<services::Listening> resolved(const std::vector<ListenSpec>& specs) {
  auto r = resolve_listeners(specs);
  EXPECT_TRUE(r.ok()) << r.error;
  return r.value;
}

TEST(RuntimeListeners, UnknownServicesAndTakenAddressesAreRefusedByName) {
  auto r = resolve_listeners({spec("file", "0.0.0.0", 6666), spec("gopher", "0.0.0.0", 70)});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code, Errc::kBadRequest);
  EXPECT_NE(r.error.find("unknown service 'gopher'"), std::string::npos) << r.error;
  r = resolve_listeners({spec("file", "0.0.0.0", 6666), spec("http", "0.0.0.0", 6666)});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error.find("duplicate address 0.0.0.0:6666 (file and http)"), std::string::npos)
      << r.error;
  // TCP and UDP are separate port spaces; port 0 never collides.
  EXPECT_EQ(resolved({spec("echo", "0.0.0.0", 5005), spec("udp-sink", "0.0.0.0", 5005)}).size(),
            2u);
  EXPECT_EQ(resolved({spec("file", "0.0.0.0", 0), spec("http", "0.0.0.0", 0)}).size(), 2u);
  // Two UDP services on one UDP port do collide.
  r = resolve_listeners({spec("tftp", "0.0.0.0", 69), spec("udp-sink", "0.0.0.0", 69)});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error.find("duplicate address 0.0.0.0:69 (tftp and udp-sink)"), std::string::npos)
      << r.error;
}

TEST(RuntimeListeners, EachListenerCarriesItsRegisteredServiceInOrder) {
  std::vector<services::Listening> l =
      resolved({spec("tftp", "0.0.0.0", 69), spec("chat", "0.0.0.0", 8889),
                spec("chat", "127.0.0.1", 8890)});
  ASSERT_EQ(l.size(), 3u);
  EXPECT_EQ(l[0].service, services::find("tftp"));
  EXPECT_TRUE(l[0].datagram());
  EXPECT_EQ(l[1].service, services::find("chat"));
  EXPECT_FALSE(l[1].datagram());
  EXPECT_EQ(l[2].service, l[1].service);  // one registration, carried by both
  EXPECT_EQ(l[2].spec.endpoint.text(), "127.0.0.1:8890");
}

TEST(RuntimeListeners, AListenerKeyItsServiceDoesNotHonourIsRefused) {
  ListenSpec tftp = spec("tftp", "0.0.0.0", 69);
  tftp.policy.auth = AuthScope::kWrite;
  auto r = resolve_listeners({spec("file", "0.0.0.0", 6666), tftp});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error.find("tftp on 0.0.0.0:69"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("',auth=' refused"), std::string::npos) << r.error;
}

TEST(RuntimeListeners, SharesGoToStreamListenersOnly) {
  std::vector<reactor::ListenerShare> shares =
      plan_shares(resolved({spec("file", "0.0.0.0", 6666, 10), spec("udp-sink", "0.0.0.0", 5005),
                            spec("chat", "0.0.0.0", 8889)}),
                  100);
  ASSERT_EQ(shares.size(), 3u);
  EXPECT_EQ(shares[0].max_conns, 10);
  EXPECT_EQ(shares[1].max_conns, 0);  // datagram: no connections
  EXPECT_GT(shares[2].max_conns, 0);
  EXPECT_LE(shares[2].max_conns, 100);
}

TEST(RuntimeLimits, TheFdLimitCapsMaxConns) {
  EXPECT_EQ(effective_max_conns(1000, 5000, 1), 1000);
  EXPECT_EQ(effective_max_conns(1000, 300, 1), 300);
  EXPECT_EQ(effective_max_conns(1000, 300, 4), 1000);  // four processes, 300 each
  EXPECT_GE(raise_fd_limit(), 1);
}

TEST(RuntimeBind, ATakenPortIsRefusedWithTheListenerNamedAndNothingLeftOpen) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  {
    std::vector<std::unique_ptr<reactor::Listener>> first;
    ASSERT_TRUE(
        listen_all(&loop, resolved({spec("file", "127.0.0.1", 0)}), first, [](reactor::Listener&) {
        }).ok());
    const int taken = first[0]->port();
    std::vector<std::unique_ptr<reactor::Listener>> second;
    Status s = listen_all(
        &loop, resolved({spec("echo", "127.0.0.1", 0), spec("http", "127.0.0.1", taken)}), second,
        [](reactor::Listener&) {});
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error.find("cannot listen http on 127.0.0.1:" + std::to_string(taken)),
              std::string::npos)
        << s.error;
    // The echo listener made before the failure was closed again: after
    // closing `first`, the loop has nothing left (checked below).
    for (auto& l : first) l->close();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  EXPECT_EQ(uv_loop_close(&loop), 0) << "a listener was left open";
}

}  // namespace
}  // namespace fsrv::runtime
