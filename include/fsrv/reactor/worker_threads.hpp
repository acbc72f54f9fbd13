#pragma once
// A few threads of a service's own, fed by one bounded queue, with results
// delivered back on the event loop: for work that blocks or burns CPU and
// must not hold the loop nor libuv's pool, whose threads file IO needs
// (password hashing: auth::HashPool; database calls: chat's DbWorkers).
// A full queue is refused at once (the caller answers busy) rather than
// growing without bound, as STYLE.md asks of expensive work.
//
// Results come back through a uv_async_t that exists only while work is in
// flight (made by the first submit, closed when the last result is
// delivered), so an idle instance holds no handle and the loop can close.
// libuv: uv_async_send may be called from any thread and coalesces
// wake-ups (https://docs.libuv.org/en/v1.x/async.html).

#include <uv.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace fsrv::reactor {

/// The threads and their queue. Lives on one loop's thread (submit and the
/// done callbacks); not copyable or movable.
class WorkerThreads {
 public:
  /// Runs on one of the threads; `thread` is its number, 0..threads-1, so
  /// an owner can keep per-thread state (chat: one store per thread).
  using Work = std::function<void(size_t thread)>;
  /// Then runs on the loop thread.
  using Done = std::function<void()>;

  /// `threads` >= 1 threads, at most `max_queued` tasks waiting for one.
  WorkerThreads(uv_loop_t* loop, int threads, size_t max_queued);
  /// Stops and joins the threads; queued work is dropped (no done runs: by
  /// then the loop has ended).
  ~WorkerThreads();
  WorkerThreads(const WorkerThreads&) = delete;
  WorkerThreads& operator=(const WorkerThreads&) = delete;

  /// Queues `work`, then `done` on the loop. Threads start on the first
  /// call (after fork, and after the signal mask is set, so they inherit
  /// it). False, running nothing, when `max_queued` tasks wait.
  bool submit(Work work, Done done);
  /// Submitted tasks whose done has not run yet (loop thread).
  size_t in_flight() const { return in_flight_; }

 private:
  struct Task {
    Work work;
    Done done;
  };
  void thread_main(size_t index);
  static void on_async(uv_async_t* handle);
  void deliver();

  uv_loop_t* loop_;
  int thread_count_;
  size_t max_queued_;
  std::vector<std::thread> threads_;
  uv_async_t* async_ = nullptr;  ///< open while in_flight_ > 0
  size_t in_flight_ = 0;         ///< loop thread only

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;     ///< waiting for a thread
  std::vector<Done> results_;  ///< finished, done to run on the loop
  bool stopping_ = false;
};

}  // namespace fsrv::reactor
