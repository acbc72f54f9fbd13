#include "fsrv/reactor/executor.hpp"

#include <cstdlib>
#include <string>

namespace fsrv::reactor {

namespace {
/// libuv's hard maximum (src/threadpool.c MAX_THREADPOOL_SIZE).
constexpr int kMaxPoolThreads = 1024;

struct WorkItem {
  uv_work_t req;
  Executor::Fn work;
  Executor::Fn done;
  ThreadPoolExecutor* owner;
};
}  // namespace

void ThreadPoolExecutor::set_pool_size(int threads) {
  if (threads < 1) threads = 1;
  if (threads > kMaxPoolThreads) threads = kMaxPoolThreads;
  setenv("UV_THREADPOOL_SIZE", std::to_string(threads).c_str(), 1);
}

void ThreadPoolExecutor::submit(Fn work, Fn done) {
  auto* item = new WorkItem{{}, std::move(work), std::move(done), this};
  item->req.data = item;
  ++pending_;
  publish();
  uv_queue_work(
      loop_, &item->req, [](uv_work_t* req) { static_cast<WorkItem*>(req->data)->work(); },
      [](uv_work_t* req, int /*status*/) {
        // status is UV_ECANCELED only after uv_cancel, which we never call:
        // done always follows a completed work function.
        auto* it = static_cast<WorkItem*>(req->data);
        --it->owner->pending_;
        it->owner->publish();
        it->done();
        delete it;
      });
}

InlineExecutor::InlineExecutor(uv_loop_t* loop) {
  uv_idle_init(loop, &idle_);
  idle_.data = this;
}

InlineExecutor::~InlineExecutor() = default;

void InlineExecutor::submit(Fn work, Fn done) {
  queue_.push_back({std::move(work), std::move(done)});
  publish();
  if (!closed_) uv_idle_start(&idle_, on_idle);
}

// Runs queued tasks for up to kInlineBudgetNs per loop iteration (at least
// one): many small tasks (open, fstat, a DELETE) no longer wait one
// iteration each, while one iteration still cannot hold the loop long.
void InlineExecutor::on_idle(uv_idle_t* idle) {
  auto* self = static_cast<InlineExecutor*>(idle->data);
  if (self->queue_.empty()) {
    uv_idle_stop(idle);
    return;
  }
  uint64_t start = uv_hrtime();
  do {
    Task task = std::move(self->queue_.front());
    self->queue_.pop_front();
    task.work();
    self->publish();
    task.done();
  } while (!self->queue_.empty() && uv_hrtime() - start < kInlineBudgetNs);
}

void InlineExecutor::close() {
  if (closed_) return;
  closed_ = true;
  // Drain what is left synchronously: done callbacks only touch sessions that
  // are closing anyway.
  while (!queue_.empty()) {
    Task task = std::move(queue_.front());
    queue_.pop_front();
    task.work();
    task.done();
  }
  publish();
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), nullptr);
}

}  // namespace fsrv::reactor
