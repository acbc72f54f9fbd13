#pragma once
// The chat service's own database threads. Chat calls block (network round
// trips to PostgreSQL, SQLite fsyncs, Argon2), so they run neither on the
// event loop (a prefork worker's executor runs its tasks on the loop
// itself) nor on libuv's pool, where they would hold threads that file IO
// needs: a few threads of their own, each with its own ChatStore (a store
// is single-threaded), fed by one bounded queue. A full queue is refused at
// once (the caller answers busy) rather than growing without bound.
//
// The threads, the queue and the way results come back to the loop are
// reactor::WorkerThreads (shared with auth's hashing threads); this class
// adds the store each thread keeps.

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "fsrv/reactor/worker_threads.hpp"
#include "fsrv/services/chat/chat_store.hpp"

namespace fsrv::services::chat {

/// Database threads per serving process: two keep one slow call (Argon2 at
/// auth, a reconnect's connect_timeout) from stalling every other request,
/// and bound the connections a node opens to PostgreSQL (nodes x processes x 2).
inline constexpr int kDbThreads = 2;

/// Requests waiting for a database thread beyond which new ones are
/// answered busy: far above what a class's clients queue, small enough
/// that a dead database cannot pile up memory.
inline constexpr size_t kMaxDbQueue = 4096;

/// What every database thread needs to open its store.
struct StoreSpec {
  ChatDb db;
  std::vector<ChatUser> users;
  double ttl_s = kDefaultSessionTtlS;
};

/// The threads and their queue. Lives on one loop's thread (submit and the
/// done callbacks); not copyable or movable.
class DbWorkers {
 public:
  /// Runs on a database thread with that thread's store (opened on first use).
  using Work = std::function<void(ChatStore&)>;
  /// Runs on the loop thread after its Work.
  using Done = std::function<void()>;

  DbWorkers(uv_loop_t* loop, StoreSpec spec);
  /// Stops and joins the threads (queued work is dropped: by then the loop
  /// has ended, so no done callback could run).
  ~DbWorkers() = default;
  DbWorkers(const DbWorkers&) = delete;
  DbWorkers& operator=(const DbWorkers&) = delete;

  /// Queues `work`, then `done` on the loop. Threads start on the first call
  /// (after fork, and after the signal mask is set so they inherit it).
  /// Returns false, running nothing, when kMaxDbQueue requests wait.
  bool submit(Work work, Done done);
  /// Replaces the users every store is synced to (SIGHUP reload): each
  /// database thread applies the list (ChatStore::set_users) before its next
  /// request. Call from the loop thread.
  void set_users(std::vector<ChatUser> users);

 private:
  /// On database thread `index`: opens its store if it has none (or the
  /// last open failed), applies a reloaded users list, then runs `work`.
  void run(size_t index, const Work& work);

  StoreSpec spec_;  ///< users guarded by mu_ (set_users on the loop, read by threads)
  std::mutex mu_;
  uint64_t users_generation_ = 0;  ///< bumped by set_users (under mu_)
  /// One per thread, touched only by that thread (index = thread number).
  std::vector<std::unique_ptr<ChatStore>> stores_;
  std::vector<uint64_t> generations_;  ///< the users list each thread's store has
  reactor::WorkerThreads threads_;     ///< last: joined before the stores go
};

}  // namespace fsrv::services::chat
