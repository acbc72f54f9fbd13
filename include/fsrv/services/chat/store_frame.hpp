#pragma once
// What the two chat store backends (sqlite_chat_store.cpp,
// pg_chat_store.cpp) share:
// - StoreError, the one exception both throw inside their files;
// - StoreDb, a backend's connection: its transaction steps, one call that
//   runs a statement of the SQL both speak, the session TTL and clock;
// - Transaction, BEGIN ... COMMIT on a StoreDb;
// - sync_users, the users table made equal to a list;
// - chat_schema, the one table layout (kSchemaVersion) in each backend's
//   column types.
// The operations' SQL is written once (chat_store.cpp); each backend keeps
// its connection, its transactions and its schema version record, and
// SQLite its own inbox step (StoreDb::take_inbox).

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "fsrv/services/chat/chat_store.hpp"

namespace fsrv::services::chat {

/// A failed database call inside a backend, with the outcome the public
/// operation answers: kStoreError, or kUnavailable when the connection
/// itself is gone (PostgreSQL), and the backend's own error code (SQLite's
/// primary result code; 0 when the failure is ours).
struct StoreError : std::runtime_error {
  /// `what` is the detail the result's `error` carries (for the log).
  explicit StoreError(const std::string& what, Outcome outcome = Outcome::kStoreError, int code = 0)
      : std::runtime_error(what), outcome(outcome), code(code) {}
  Outcome outcome;
  int code;
};

/// One parameter of StoreDb::query: a 64-bit integer, text, or bytes (a
/// BLOB or BYTEA value: any bytes, NUL included, stored unchanged).
struct SqlParam {
  enum class Kind { kInt, kText, kBytes };
  Kind kind = Kind::kInt;
  int64_t number = 0;     ///< kInt
  std::string_view text;  ///< kText, kBytes: viewed for the call only
};
inline SqlParam sql_int(int64_t v) { return {SqlParam::Kind::kInt, v, {}}; }
inline SqlParam sql_text(std::string_view v) { return {SqlParam::Kind::kText, 0, v}; }
inline SqlParam sql_bytes(std::string_view v) { return {SqlParam::Kind::kBytes, 0, v}; }

/// One result row: each column's bytes (an integer in decimal, a BLOB or
/// BYTEA value decoded, NULL as "").
using SqlRow = std::vector<std::string>;

/// A backend's connection, as ChatStore runs the operations on it, and
/// the session TTL and clock it compares sessions with. Every step throws
/// StoreError on failure; the steps after begin() run inside the caller's
/// transaction.
class StoreDb {
 public:
  virtual ~StoreDb() = default;
  /// Takes open()'s TTL in seconds and the options' clock (the system's
  /// wall clock when none is given).
  void set(double session_ttl_s, const ChatStoreOptions& options);
  int64_t ttl_ms = 0;               ///< idle TTL in ms, at least 1
  std::function<int64_t()> now_ms;  ///< wall clock, ms since the Unix epoch

  /// A usable connection, or a thrown StoreError (SQLite keeps one for the
  /// store's life; PostgreSQL reconnects here).
  virtual void ensure() {}
  /// Transaction's steps; rollback() must not throw.
  virtual void begin() = 0;
  virtual void commit() = 0;
  virtual void rollback() = 0;
  /// Keeps the users list set_users() is given (PostgreSQL syncs it again
  /// on each reconnect).
  virtual void keep_users(const std::vector<ChatUser>&) {}
  /// Runs one statement, `sql` a string literal in the SQL both backends
  /// speak with parameters $1, $2, ... (SQLite caches it by its address),
  /// and returns every row it yields.
  virtual std::vector<SqlRow> query(const char* sql, std::initializer_list<SqlParam> params) = 0;
  /// Returns and deletes every unread message of `user_id`: rows of (id,
  /// sender's username, msg_from, msg_to, msg), in no set order. By default
  /// one DELETE ... RETURNING: a concurrent one of the same rows waits for
  /// it, then finds them gone (PostgreSQL's READ COMMITTED).
  virtual std::vector<SqlRow> take_inbox(int64_t user_id);
};

/// Makes the users table equal to `users`, inside the caller's transaction:
/// upserts by username, deletes every user not listed (their sessions and
/// messages go with them: ON DELETE CASCADE).
void sync_users(StoreDb& db, const std::vector<ChatUser>& users);

/// BEGIN ... COMMIT on a StoreDb, rolled back by the destructor unless
/// committed (a failed commit throws StoreError).
class Transaction {
 public:
  explicit Transaction(StoreDb& db) : db_(db) { db_.begin(); }
  ~Transaction() {
    if (!done_) db_.rollback();
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit() {
    db_.commit();
    done_ = true;
  }

 private:
  StoreDb& db_;
  bool done_ = false;
};

/// Version of chat_schema's layout, recorded by each backend (SQLite: PRAGMA
/// user_version; PostgreSQL: the chat_schema_version table).
inline constexpr int kSchemaVersion = 1;

/// Throws StoreError when a database records a schema `version` newer than
/// kSchemaVersion: refused rather than misread.
void check_schema_version(int64_t version);

/// A backend's column types for chat_schema.
struct SqlTypes {
  std::string_view id;       ///< auto-numbered primary key, growing with each insert
  std::string_view integer;  ///< 64-bit integer
  std::string_view bytes;    ///< any bytes, NUL included, returned unchanged
};

/// The CREATE TABLE/INDEX IF NOT EXISTS statements of the chat schema
/// (users, sessions, messages and their indexes) in `types`.
std::string chat_schema(const SqlTypes& types);

}  // namespace fsrv::services::chat
