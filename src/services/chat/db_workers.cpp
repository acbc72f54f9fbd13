// The chat service's database threads (see db_workers.hpp).

#include "fsrv/services/chat/db_workers.hpp"

#include <utility>

#include "fsrv/core/log.hpp"

namespace fsrv::services::chat {

DbWorkers::DbWorkers(uv_loop_t* loop, StoreSpec spec)
    : spec_(std::move(spec)),
      stores_(kDbThreads),
      generations_(kDbThreads, 0),
      threads_(loop, kDbThreads, kMaxDbQueue) {}

bool DbWorkers::submit(Work work, Done done) {
  return threads_.submit([this, work = std::move(work)](size_t index) { run(index, work); },
                         std::move(done));
}

void DbWorkers::set_users(std::vector<ChatUser> users) {
  std::lock_guard lock(mu_);
  spec_.users = std::move(users);
  ++users_generation_;
}

void DbWorkers::run(size_t index, const Work& work) {
  std::unique_ptr<ChatStore>& store = stores_[index];
  std::vector<ChatUser> users;  // a newer list to apply, or empty
  {
    std::lock_guard lock(mu_);
    if (!store || !store->is_open() || generations_[index] != users_generation_) {
      users = spec_.users;
      generations_[index] = users_generation_;
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
  work(*store);
}

}  // namespace fsrv::services::chat
