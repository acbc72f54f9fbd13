// Threads of a service's own with a bounded queue (see worker_threads.hpp).

#include "fsrv/reactor/worker_threads.hpp"

#include <utility>

namespace fsrv::reactor {

WorkerThreads::WorkerThreads(uv_loop_t* loop, int threads, size_t max_queued)
    : loop_(loop), thread_count_(threads), max_queued_(max_queued) {}

WorkerThreads::~WorkerThreads() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

bool WorkerThreads::submit(Work work, Done done) {
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= max_queued_) return false;
    queue_.push_back(Task{std::move(work), std::move(done)});
    if (async_ == nullptr) {
      async_ = new uv_async_t;
      uv_async_init(loop_, async_, on_async);
      async_->data = this;
    }
  }
  ++in_flight_;
  if (threads_.empty()) {
    for (int i = 0; i < thread_count_; ++i) {
      threads_.emplace_back([this, i] { thread_main(static_cast<size_t>(i)); });
    }
  }
  cv_.notify_one();
  return true;
}

void WorkerThreads::thread_main(size_t index) {
  for (;;) {
    Task task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task.work(index);
    // Sent under the lock: the loop closes the handle only after taking
    // every result under it, so the handle is open here.
    std::lock_guard lock(mu_);
    results_.push_back(std::move(task.done));
    uv_async_send(async_);
  }
}

void WorkerThreads::on_async(uv_async_t* handle) {
  static_cast<WorkerThreads*>(handle->data)->deliver();
}

void WorkerThreads::deliver() {
  std::vector<Done> ready;
  {
    std::lock_guard lock(mu_);
    ready.swap(results_);
  }
  for (Done& done : ready) {
    --in_flight_;
    done();
  }
  if (in_flight_ > 0) return;
  uv_async_t* handle = nullptr;
  {
    std::lock_guard lock(mu_);
    handle = std::exchange(async_, nullptr);
  }
  if (handle != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(handle),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
  }
}

}  // namespace fsrv::reactor
