// reactor::WorkerThreads (auth's hashing threads, chat's database threads):
// work runs on the pool's own threads with their number, done on the loop
// thread, a full queue refuses at once, and an idle instance holds no
// handle (the loop ends and closes). Real loops; work blocks on a latch so
// the queue is full when the refusal is checked, not by timing.
#include "fsrv/reactor/worker_threads.hpp"

#include <gtest/gtest.h>
#include <uv.h>

#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "../support/latch.hpp"

namespace fsrv::reactor {
namespace {

using test::Latch;

TEST(WorkerThreads, WorkOnItsThreadsDoneOnTheLoopAndTheLoopEnds) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  {
    WorkerThreads pool(&loop, 2, 64);
    const std::thread::id loop_thread = std::this_thread::get_id();
    std::mutex mu;
    std::set<size_t> indices;
    std::vector<int> done;
    bool done_off_loop = false;
    constexpr int kTasks = 20;
    for (int i = 0; i < kTasks; ++i) {
      ASSERT_TRUE(pool.submit(
          [&](size_t index) {
            std::lock_guard lock(mu);
            EXPECT_NE(std::this_thread::get_id(), loop_thread);
            indices.insert(index);
          },
          [&, i] {
            done_off_loop = done_off_loop || std::this_thread::get_id() != loop_thread;
            done.push_back(i);
          }));
    }
    EXPECT_EQ(pool.in_flight(), static_cast<size_t>(kTasks));
    // Returns once every done ran: the async handle closed with the last.
    ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    EXPECT_EQ(done.size(), static_cast<size_t>(kTasks));
    EXPECT_FALSE(done_off_loop);
    EXPECT_EQ(pool.in_flight(), 0u);
    for (size_t index : indices) EXPECT_LT(index, 2u);
  }
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(WorkerThreads, AFullQueueRefusesAtOnceAndDropsNothingAccepted) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  {
    WorkerThreads pool(&loop, 1, 3);
    Latch latch, started;
    int done = 0;
    // The first task holds the only thread (started tells it has left the
    // queue); three more fill the queue; the fifth is refused.
    ASSERT_TRUE(pool.submit(
        [&](size_t) {
          started.open();
          latch.wait();
        },
        [&] { ++done; }));
    started.wait();
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(pool.submit([](size_t) {}, [&] { ++done; }));
    bool ran = false;
    EXPECT_FALSE(pool.submit([&](size_t) { ran = true; }, [&] { ran = true; }));
    latch.open();
    ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    EXPECT_EQ(done, 4);
    EXPECT_FALSE(ran);
    // Room again once the queue drained.
    EXPECT_TRUE(pool.submit([](size_t) {}, [&] { ++done; }));
    ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    EXPECT_EQ(done, 5);
  }
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
}  // namespace fsrv::reactor
