#pragma once
// Executors run the blocking pieces of a request (open, pread, pwrite,
// fsync, rename, base64) off the event loop and hand the result back to it.
// The connection and protocol code only see Executor, so the same code runs
// in thread mode (libuv's thread pool) and in process mode (inline on a
// worker process's own loop, one task per loop iteration).

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <string_view>

namespace fsrv::reactor {

/// Runs work off the loop, then done on the loop thread.
class Executor {
 public:
  using Fn = std::function<void()>;
  virtual ~Executor() = default;
  /// Queues `work` (may run on another thread: it must touch no libuv handle
  /// and only data it owns) and then `done` on the loop thread. Both always
  /// run, in that order, even if the requester closed meanwhile: `done`
  /// checks that itself (libuv: uv_close does not cancel queued work).
  virtual void submit(Fn work, Fn done) = 0;
  /// Tasks submitted and not yet done.
  virtual size_t pending() const = 0;
  /// True when `work` runs on a thread other than the loop's, so a task
  /// may block briefly (a poll(2) of a few hundred microseconds) without
  /// stalling every other connection of the loop.
  virtual bool runs_off_loop() const { return false; }
  /// Releases the executor's own handles (idempotent); pending tasks still run.
  virtual void close() {}
  /// Publishes pending() into `gauge` from now on (a stats slot's
  /// executor_pending, read by STATS and /metrics from any process); null
  /// stops publishing.
  void set_gauge(std::atomic<int64_t>* gauge) {
    gauge_ = gauge;
    publish();
  }

 protected:
  /// Stores pending() into the gauge, if any (after every change).
  void publish() const {
    if (gauge_) gauge_->store(static_cast<int64_t>(pending()), std::memory_order_relaxed);
  }

 private:
  std::atomic<int64_t>* gauge_ = nullptr;
};

/// libuv's thread pool (uv_queue_work). The pool is process-global; its
/// size comes from UV_THREADPOOL_SIZE, read once at the first work item
/// (libuv src/threadpool.c), so set_pool_size() must run before that.
class ThreadPoolExecutor final : public Executor {
 public:
  explicit ThreadPoolExecutor(uv_loop_t* loop) : loop_(loop) {}
  /// Sets UV_THREADPOOL_SIZE (1..1024, libuv's maximum). Call before any
  /// uv_queue_work or uv_fs_* in this process.
  static void set_pool_size(int threads);
  void submit(Fn work, Fn done) override;
  size_t pending() const override { return pending_; }
  bool runs_off_loop() const override { return true; }

 private:
  uv_loop_t* loop_;
  size_t pending_ = 0;
};

/// Runs tasks on the loop thread itself, a time-bounded batch per loop
/// iteration (an idle handle keeps the loop polling without blocking while
/// tasks wait), so socket IO of every connection interleaves between chunks. Used by
/// process-mode workers: the worker process is the pool.
class InlineExecutor final : public Executor {
 public:
  /// Time one loop iteration may spend running queued tasks (at least one
  /// task runs): 1 ms keeps socket IO of every connection interleaved
  /// between large chunks while small requests do not each wait a turn.
  static constexpr uint64_t kInlineBudgetNs = 1'000'000;
  explicit InlineExecutor(uv_loop_t* loop);
  ~InlineExecutor() override;
  void submit(Fn work, Fn done) override;
  size_t pending() const override { return queue_.size(); }
  void close() override;

 private:
  struct Task {
    Fn work;
    Fn done;
  };
  static void on_idle(uv_idle_t* idle);
  uv_idle_t idle_;
  bool closed_ = false;
  std::deque<Task> queue_;
};

}  // namespace fsrv::reactor
