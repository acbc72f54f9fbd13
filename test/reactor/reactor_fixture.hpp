#pragma once
// In-process reactor tests in libuv's style (test/test-*.c): a real loop and
// real loopback sockets; a blocking client runs on a thread; every test ends
// with every handle closed and uv_loop_close() == 0 (MAKE_VALGRIND_HAPPY).

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "../support/server_process.hpp"
#include "fsrv/reactor/connection.hpp"
#include "fsrv/reactor/listener.hpp"
#include "fsrv/reactor/reactor.hpp"
#include "fsrv/stats/stats.hpp"

namespace fsrv::test {

/// Callback counts that outlive the handlers (a handler is freed with its
/// connection).
struct HandlerCounts {
  int eofs = 0, closes = 0;
};

/// A handler whose behaviour each test fills in; counts its callbacks.
struct ScriptedHandler : reactor::ConnectionHandler {
  HandlerCounts* totals = nullptr;  ///< also counted here (the factory's)
  char buf[65536];
  std::function<void(ScriptedHandler&, size_t)> read;
  std::function<void(ScriptedHandler&)> timer, drain, eof;
  int reads = 0, timers = 0, drains = 0, eofs = 0, closes = 0;
  std::string received;

  std::span<char> read_space() override { return buf; }
  void on_read(size_t n) override {
    ++reads;
    received.append(buf, n);
    if (read) read(*this, n);
  }
  void on_eof() override {
    ++eofs;
    if (totals) ++totals->eofs;
    if (eof) {
      eof(*this);
    } else {
      connection->close_when_flushed();
    }
  }
  void on_timer() override {
    ++timers;
    if (timer) timer(*this);
  }
  void on_drain() override {
    ++drains;
    if (drain) drain(*this);
  }
  void on_shutdown() override { connection->close_when_flushed(); }
  void on_close() override {
    ++closes;
    if (totals) ++totals->closes;
  }
};

/// A factory that makes ScriptedHandlers configured by `setup`.
struct ScriptedFactory : reactor::ConnectionFactory {
  std::function<void(ScriptedHandler&)> setup;
  std::string refusal_text = "busy\n";
  int made = 0, refused = 0;
  HandlerCounts totals;
  ScriptedHandler* last = nullptr;  ///< valid only while its connection is open
  std::unique_ptr<reactor::ConnectionHandler> make_handler(reactor::Connection&) override {
    ++made;
    auto h = std::make_unique<ScriptedHandler>();
    h->totals = &totals;
    if (setup) setup(*h);
    last = h.get();
    return h;
  }
  std::string refusal(reactor::Refusal, int) const override {
    ++const_cast<ScriptedFactory*>(this)->refused;
    return refusal_text;
  }
};

/// A loop, a reactor and one listener on 127.0.0.1 serving `factory` (or
/// `serving`, when a derived fixture sets it in its SetUp).
class ReactorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop), 0);
    reactor.loop = &loop;
    reactor.stats = &table.slot(0);
    reactor.idle_timeout_s = 0;
    // No request deadline either: a scripted handler never ends a request
    // head, and a test slowed past 30 s (ASan on a loaded machine) must not
    // have its connection closed and its handler freed under it. Tests of
    // the deadlines set them.
    reactor.request_timeout_s = 0;
    listener = std::make_unique<reactor::Listener>(&loop, 0, "test", Endpoint{"127.0.0.1", 0});
    port = listener->listen([this](reactor::Listener& l) {
      reactor::accept_connection(reactor, l.stream(), serving ? *serving : factory);
    });
    ASSERT_GT(port, 0);
  }
  void TearDown() override {
    listener->close();
    reactor::close_all_connections(reactor);
    uv_run(&loop, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop), 0) << "a handle was left open";
  }
  /// Runs the loop until `done()` or `max_ms`; returns done().
  bool run_until(const std::function<bool()>& done, uint64_t max_ms = 10000) {
    uv_timer_t guard;
    uv_timer_init(&loop, &guard);
    uv_unref(reinterpret_cast<uv_handle_t*>(&guard));
    auto start = uv_now(&loop);
    while (!done() && uv_now(&loop) - start < max_ms) {
      uv_timer_start(
          &guard, [](uv_timer_t*) {}, 5, 0);
      uv_ref(reinterpret_cast<uv_handle_t*>(&guard));
      uv_run(&loop, UV_RUN_ONCE);
      uv_update_time(&loop);
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&guard), nullptr);
    uv_run(&loop, UV_RUN_NOWAIT);
    return done();
  }
  /// A blocking client socket connected to the listener.
  int client() const { return connect_to(port); }

  uv_loop_t loop;
  stats::Schema schema;
  stats::StatsTable table{1, false, schema};
  reactor::Reactor reactor;
  ScriptedFactory factory;
  reactor::ConnectionFactory* serving = nullptr;
  std::unique_ptr<reactor::Listener> listener;
  int port = 0;
};

/// Reads from `fd` until EOF (or error/timeout); returns the bytes.
inline std::string read_all(int fd) {
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

}  // namespace fsrv::test
