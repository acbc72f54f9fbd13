#pragma once
// The stream-session kit's tests: a real loop, a real listener on 127.0.0.1
// whose connections get the handler a test makes, libuv's thread pool and a
// storage root in a temporary directory. Every test ends with every handle
// closed, no work pending and uv_loop_close() == 0.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <uv.h>

#include <functional>
#include <memory>

#include "fsrv/reactor/connection.hpp"
#include "fsrv/reactor/executor.hpp"
#include "fsrv/reactor/listener.hpp"
#include "fsrv/reactor/reactor.hpp"
#include "fsrv/stats/stats.hpp"
#include "fsrv/storage/storage.hpp"
#include "../../support/server_process.hpp"

namespace fsrv::test {

/// Makes each connection's handler with `make`.
struct LambdaFactory : reactor::ConnectionFactory {
  std::function<std::unique_ptr<reactor::ConnectionHandler>(reactor::Connection&)> make;
  std::unique_ptr<reactor::ConnectionHandler> make_handler(reactor::Connection& c) override {
    return make(c);
  }
  std::string refusal(reactor::Refusal, int) const override { return {}; }
};

class KitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop), 0);
    reactor.loop = &loop;
    reactor.stats = &table.slot(0);
    reactor.idle_timeout_s = 0;
    std::string error;
    root = storage::Root::open(dir.path(), &error);
    ASSERT_TRUE(root) << error;
    executor = std::make_unique<reactor::ThreadPoolExecutor>(&loop);
    listener = std::make_unique<reactor::Listener>(&loop, 0, "test", Endpoint{"127.0.0.1", 0});
    port = listener->listen([this](reactor::Listener& l) {
      reactor::accept_connection(reactor, l.stream(), factory);
    });
    ASSERT_GT(port, 0);
  }
  void TearDown() override {
    listener->close();
    reactor::close_all_connections(reactor);
    uv_run(&loop, UV_RUN_DEFAULT);
    EXPECT_EQ(executor->pending(), 0u);
    executor->close();
    uv_run(&loop, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop), 0) << "a handle was left open";
  }
  /// Runs the loop until `done()` or `max_ms`.
  void run_until(const std::function<bool()>& done, uint64_t max_ms = 20000) {
    uv_timer_t guard;
    uv_timer_init(&loop, &guard);
    auto start = uv_now(&loop);
    while (!done() && uv_now(&loop) - start < max_ms) {
      uv_timer_start(&guard, [](uv_timer_t*) {}, 5, 0);
      uv_run(&loop, UV_RUN_ONCE);
      uv_update_time(&loop);
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&guard), nullptr);
    uv_run(&loop, UV_RUN_NOWAIT);
  }

 public:
  TempDir dir;
  uv_loop_t loop;
  stats::Schema schema;
  stats::StatsTable table{1, false, schema};
  reactor::Reactor reactor;
  std::unique_ptr<storage::Root> root;
  std::unique_ptr<reactor::ThreadPoolExecutor> executor;
  LambdaFactory factory;
  std::unique_ptr<reactor::Listener> listener;
  int port = 0;
};

/// Reads from `fd` until EOF (or error/timeout); returns the bytes.
inline std::string read_until_eof(int fd) {
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

}  // namespace fsrv::test
