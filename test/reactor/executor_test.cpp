// reactor::Executor: both executors run work then done, and publish their
// queue depth into the gauge STATS and /metrics read (a stats slot's
// executor_pending). Real loops; work blocks on a latch so the depth is
// observed while tasks are queued, not guessed.
#include "fsrv/reactor/executor.hpp"

#include <gtest/gtest.h>
#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "../support/latch.hpp"

namespace fsrv::reactor {
namespace {

using test::Latch;

TEST(ExecutorGauge, ThreadPoolPublishesQueuedTasksAndZeroWhenDone) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  {
    ThreadPoolExecutor executor(&loop);
    std::atomic<int64_t> gauge{-1};
    executor.set_gauge(&gauge);
    EXPECT_EQ(gauge.load(), 0);
    Latch latch;
    std::vector<int> done;
    constexpr int kTasks = 6;
    for (int i = 0; i < kTasks; ++i) {
      executor.submit([&latch] { latch.wait(); }, [&done, i] { done.push_back(i); });
    }
    // Queued or running, none done: the gauge counts all of them.
    EXPECT_EQ(gauge.load(), kTasks);
    EXPECT_EQ(executor.pending(), static_cast<size_t>(kTasks));
    latch.open();
    ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    EXPECT_EQ(done.size(), static_cast<size_t>(kTasks));
    EXPECT_EQ(gauge.load(), 0);
    executor.set_gauge(nullptr);
  }
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(ExecutorGauge, InlineExecutorCountsDownAsTheLoopRunsTasks) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  {
    InlineExecutor executor(&loop);
    std::atomic<int64_t> gauge{-1};
    executor.set_gauge(&gauge);
    std::vector<int64_t> seen;  // the gauge as each done callback saw it
    constexpr int kTasks = 4;
    for (int i = 0; i < kTasks; ++i) {
      executor.submit([] {}, [&] { seen.push_back(gauge.load()); });
    }
    EXPECT_EQ(gauge.load(), kTasks);
    while (executor.pending() > 0) uv_run(&loop, UV_RUN_NOWAIT);
    // Each done runs after its task left the queue: kTasks-1, ..., 0.
    ASSERT_EQ(seen.size(), static_cast<size_t>(kTasks));
    for (int i = 0; i < kTasks; ++i) EXPECT_EQ(seen[static_cast<size_t>(i)], kTasks - 1 - i);
    EXPECT_EQ(gauge.load(), 0);
    executor.close();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
}  // namespace fsrv::reactor
