#pragma once
// A few threads of its own for password hashing (Argon2id costs about
// 0.1 s and 64 MiB a verification): never the event loop, never libuv's
// pool or the file executor, whose threads file IO needs. One bounded
// queue; a full queue is refused at once (the caller answers busy), as
// STYLE.md asks of expensive work.
//
// The threads, the queue and the way results come back to the loop are
// reactor::WorkerThreads, shared with chat's database threads.

#include <uv.h>

#include <cstddef>
#include <functional>

#include "fsrv/reactor/worker_threads.hpp"

namespace fsrv::auth {

/// Hashing threads per serving process: one slow verification does not
/// hold the others, and a flood costs at most 2 x 64 MiB at a time.
inline constexpr int kHashThreads = 2;
/// Verifications waiting beyond which new ones are refused: far above a
/// class logging in at once, small enough to bound memory under a flood.
inline constexpr size_t kMaxHashQueue = 256;

/// The threads and their queue (reactor::WorkerThreads); lives on one
/// loop's thread (submit and the done callbacks). Not copyable or movable.
class HashPool {
 public:
  using Work = std::function<void()>;  ///< runs on a hashing thread
  using Done = std::function<void()>;  ///< then on the loop thread

  explicit HashPool(uv_loop_t* loop, int threads = kHashThreads, size_t max_queued = kMaxHashQueue)
      : threads_(loop, threads, max_queued) {}

  /// Queues `work`, then `done` on the loop. Threads start on the first call
  /// (after fork). False, running nothing, when kMaxHashQueue wait.
  bool submit(Work work, Done done) {
    return threads_.submit([work = std::move(work)](size_t) { work(); }, std::move(done));
  }

 private:
  reactor::WorkerThreads threads_;  ///< joined by its destructor; queued work is dropped
};

}  // namespace fsrv::auth
