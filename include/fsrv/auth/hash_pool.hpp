#pragma once
// A few threads of its own for password hashing (Argon2id costs about
// 0.1 s and 64 MiB a verification): never the event loop, never libuv's
// pool or the file executor, whose threads file IO needs. One bounded
// queue; a full queue is refused at once (the caller answers busy), as
// STYLE.md asks of expensive work.
//
// Results come back to the loop through a uv_async_t that exists only while
// work is in flight, so an idle pool holds no handle and the loop can close
// (libuv: uv_async_send may be called from any thread and coalesces
// wake-ups, https://docs.libuv.org/en/v1.x/async.html).

#include <uv.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace fsrv::auth {

/// Hashing threads per serving process: one slow verification does not
/// hold the others, and a flood costs at most 2 x 64 MiB at a time.
inline constexpr int kHashThreads = 2;
/// Verifications waiting beyond which new ones are refused: far above a
/// class logging in at once, small enough to bound memory under a flood.
inline constexpr size_t kMaxHashQueue = 256;

/// The threads and their queue; lives on one loop's thread (submit and the
/// done callbacks). Not copyable or movable.
class HashPool {
 public:
  using Work = std::function<void()>;  ///< runs on a hashing thread
  using Done = std::function<void()>;  ///< then on the loop thread

  explicit HashPool(uv_loop_t* loop, int threads = kHashThreads, size_t max_queued = kMaxHashQueue);
  /// Stops and joins the threads; queued work is dropped (no done runs).
  ~HashPool();
  HashPool(const HashPool&) = delete;
  HashPool& operator=(const HashPool&) = delete;

  /// Queues `work`, then `done` on the loop. Threads start on the first call
  /// (after fork). False, running nothing, when kMaxHashQueue wait.
  bool submit(Work work, Done done);

 private:
  struct Task {
    Work work;
    Done done;
  };
  void thread_main();
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
  std::deque<Task> queue_;
  std::vector<Done> results_;
  bool stopping_ = false;
};

}  // namespace fsrv::auth
