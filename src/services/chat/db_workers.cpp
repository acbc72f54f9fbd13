// The chat service's database threads (see db_workers.hpp).

#include "fsrv/services/chat/db_workers.hpp"

#include <utility>

#include "fsrv/core/log.hpp"

namespace fsrv::services::chat {

DbWorkers::DbWorkers(uv_loop_t* loop, StoreSpec spec, int threads, size_t max_queued)
    : loop_(loop), spec_(std::move(spec)), thread_count_(threads), max_queued_(max_queued) {}

DbWorkers::~DbWorkers() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

bool DbWorkers::submit(Work work, Done done) {
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
    for (int i = 0; i < thread_count_; ++i) threads_.emplace_back([this] { thread_main(); });
  }
  cv_.notify_one();
  return true;
}

void DbWorkers::set_users(std::vector<ChatUser> users) {
  std::lock_guard lock(mu_);
  spec_.users = std::move(users);
  ++users_generation_;
}

void DbWorkers::thread_main() {
  std::unique_ptr<ChatStore> store;
  uint64_t generation = 0;  // the users list this thread's store has
  for (;;) {
    Task task;
    std::vector<ChatUser> users;  // a newer list to apply, or empty
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      task = std::move(queue_.front());
      queue_.pop_front();
      if (!store || !store->is_open() || generation != users_generation_) {
        users = spec_.users;
        generation = users_generation_;
      }
    }
    // A store that could not open is made again on the next request (SQLite:
    // the directory may be fixed; PostgreSQL keeps its configuration and
    // reconnects by itself, so it is made once).
    if (!store || !store->is_open()) {
      store = make_chat_store(spec_.db.kind);
      Status s = store->open(spec_.db.location, users, spec_.ttl_s);
      if (!s.ok()) FSRV_LOG_ERROR("chat: %s", s.error.c_str());
    } else if (!users.empty()) {
      // A reloaded users file: the first thread to get here changes the
      // shared table, the others find it equal (PostgreSQL also keeps the
      // list for its reconnects).
      Status s = store->set_users(users);
      if (!s.ok()) FSRV_LOG_ERROR("chat: reloading users: %s", s.error.c_str());
    }
    task.work(*store);
    // Sent under the lock: the loop closes the handle only after taking
    // every result under this lock, so it is open here.
    std::lock_guard lock(mu_);
    results_.push_back(std::move(task.done));
    uv_async_send(async_);
  }
}

void DbWorkers::on_async(uv_async_t* handle) { static_cast<DbWorkers*>(handle->data)->deliver(); }

void DbWorkers::deliver() {
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

}  // namespace fsrv::services::chat
