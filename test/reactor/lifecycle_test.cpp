// reactor::Lifecycle, the one shutdown of thread mode, the master and the
// workers: the order of its hooks, busy() holding the finish, the grace
// period forcing, idempotence; every test ends with uv_loop_close() == 0.
#include "fsrv/reactor/lifecycle.hpp"

#include <gtest/gtest.h>
#include <uv.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "fsrv/reactor/reactor.hpp"

namespace fsrv::reactor {
namespace {

struct LifecycleTest : ::testing::Test {
  uv_loop_t loop;
  Reactor reactor;
  std::vector<std::string> calls;
  bool busy = false;

  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop), 0);
    reactor.loop = &loop;
  }
  void TearDown() override { EXPECT_EQ(uv_loop_close(&loop), 0); }

  Lifecycle::Hooks hooks() {
    Lifecycle::Hooks h;
    h.stop_accepting = [this] { calls.push_back("stop_accepting"); };
    h.on_stopping = [this] { calls.push_back("on_stopping"); };
    h.force = [this] { calls.push_back("force"); };
    h.busy = [this] { return busy; };
    h.on_stopped = [this] { calls.push_back("on_stopped"); };
    h.stats_line = [this] {
      calls.push_back("stats_line");
      return std::string("stats");
    };
    return h;
  }
};

// A one-shot timer owned by the test: runs `fn` after `ms` on the loop.
struct Later {
  uv_timer_t timer;
  std::function<void()> fn;
  Later(uv_loop_t* loop, uint64_t ms, std::function<void()> f) : fn(std::move(f)) {
    uv_timer_init(loop, &timer);
    timer.data = this;
    uv_timer_start(
        &timer,
        [](uv_timer_t* t) {
          auto* self = static_cast<Later*>(t->data);
          self->fn();
          uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t*) {});
        },
        ms, 0);
  }
};

TEST_F(LifecycleTest, ShutdownWithNothingOpenRunsTheHooksInOrderAndEndsTheLoop) {
  Lifecycle life(reactor, hooks(), 10.0);
  life.shutdown("test");
  life.shutdown("again");  // idempotent: one drain, one set of hooks
  EXPECT_TRUE(life.stopping());
  EXPECT_TRUE(reactor.draining);
  uv_run(&loop, UV_RUN_DEFAULT);  // returns only once every timer is closed
  EXPECT_EQ(calls, (std::vector<std::string>{"stop_accepting", "on_stopping", "stats_line",
                                             "on_stopped"}));
}

TEST_F(LifecycleTest, BusyHoldsTheFinishUntilCheckDoneLater) {
  busy = true;
  Lifecycle life(reactor, hooks(), 10.0);
  life.shutdown("test");
  bool finished_early = false;
  Later release(&loop, 50, [&] {
    finished_early = std::find(calls.begin(), calls.end(), "on_stopped") != calls.end();
    busy = false;
    life.check_done_later();
  });
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_FALSE(finished_early);
  EXPECT_EQ(calls.back(), "on_stopped");
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "force"), 0) << "finished within the grace";
}

TEST_F(LifecycleTest, GraceOverForcesOnceThenFinishes) {
  busy = true;
  Lifecycle::Hooks h = hooks();
  Lifecycle* self = nullptr;
  h.force = [&] {
    calls.push_back("force");
    busy = false;  // the forced work is gone
    self->check_done_later();
  };
  Lifecycle life(reactor, std::move(h), 0.05);
  self = &life;
  uint64_t t0 = uv_now(&loop);
  life.shutdown("test");
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_GE(uv_now(&loop) - t0, 40u) << "forced before the grace period ended";
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "force"), 1);
  EXPECT_EQ(calls.back(), "on_stopped");
}

TEST_F(LifecycleTest, CheckDoneBeforeShutdownDoesNothing) {
  Lifecycle life(reactor, hooks(), 10.0);
  life.check_done();
  life.check_done_later();
  EXPECT_TRUE(calls.empty());
  EXPECT_FALSE(life.stopping());
  life.shutdown("end");  // closes the timers so the loop can close
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(calls.back(), "on_stopped");
}

}  // namespace
}  // namespace fsrv::reactor
