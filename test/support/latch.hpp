#pragma once
// A one-shot gate for tests: threads wait() until one open() (a test holds
// pool threads with it so queues are observed full, not guessed by timing).

#include <condition_variable>
#include <mutex>

namespace fsrv::test {

struct Latch {
  std::mutex mu;
  std::condition_variable cv;
  bool open_ = false;
  /// Blocks until open() (returns at once after it).
  void wait() {
    std::unique_lock lock(mu);
    cv.wait(lock, [this] { return open_; });
  }
  /// Releases every waiter, now and later.
  void open() {
    std::lock_guard lock(mu);
    open_ = true;
    cv.notify_all();
  }
};

}  // namespace fsrv::test
