#pragma once
// What the two chat store backends (sqlite_chat_store.cpp,
// pg_chat_store.cpp) share:
// - StoreError, the one exception both throw inside their files;
// - StoreDb, a backend's connection: its transaction steps and the
//   statements the operations run, each a backend's own SQL;
// - Transaction, BEGIN ... COMMIT on a StoreDb;
// - SessionClock, the idle TTL and the clock both compare sessions with;
// - FramedStore, every ChatStore operation but open() in the steps both
//   follow (chat_store.cpp): a store not open answers kStoreError; a
//   StoreError becomes the result's outcome and error text, with nothing
//   else of a half-built result kept; an operation on a token's session is
//   one transaction that checks and renews the session first and is
//   committed whatever the answer (so an expired session's deletion and a
//   renewal are kept);
// - InboxGrouper, which shapes inbox rows into InboxResult's groups;
// - chat_schema, the one table layout, in each backend's column types.
// The SQL stays in each backend: only the logic that is the same is here.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "fsrv/services/chat/chat_store.hpp"

namespace fsrv::services::chat {

/// A failed database call inside a backend, with the outcome the public
/// operation answers: kStoreError, or kUnavailable when the connection
/// itself is gone (PostgreSQL).
struct StoreError : std::runtime_error {
  /// `what` is the detail the result's `error` carries (for the log).
  explicit StoreError(const std::string& what, Outcome outcome = Outcome::kStoreError)
      : std::runtime_error(what), outcome(outcome) {}
  Outcome outcome;
};

/// The session TTL and clock of a backend's connection.
struct SessionClock {
  int64_t ttl_ms = 0;  ///< idle TTL in ms, at least 1
  std::function<int64_t()> now_ms;
  /// Takes open()'s TTL in seconds and the options' clock (system_now_ms
  /// when none is given).
  void set(double session_ttl_s, const ChatStoreOptions& options);
  int64_t now() const { return now_ms(); }
};

/// A user's row as auth and send find it by username: id, full name
/// ("nama") and stored password hash.
struct UserRow {
  int64_t id = 0;
  std::string nama;
  std::string password_hash;
};

/// What a user's inbox holds unread.
struct InboxSize {
  int64_t messages = 0;
  int64_t bytes = 0;
};

/// Shapes an inbox's rows, added in delivery order, into InboxResult's
/// groups: one per sender, in the order of each sender's first row.
class InboxGrouper {
 public:
  /// One row: the sender's username and the message.
  void add(std::string sender, InboxMessage message);
  /// The groups so far (the grouper is empty afterwards).
  std::vector<InboxGroup> take();

 private:
  std::vector<InboxGroup> groups_;
  std::map<std::string, size_t, std::less<>> index_;  // sender -> position in groups_
};

/// A backend's connection, as FramedStore runs the operations on it. Every
/// step throws StoreError on failure; the steps after begin() run inside
/// the caller's transaction.
class StoreDb : public SessionClock {
 public:
  virtual ~StoreDb() = default;
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
  /// Makes the users table equal to `users`: upserts by username, deletes
  /// every user not listed (their sessions and messages go with them).
  virtual void sync_users(const std::vector<ChatUser>& users) = 0;
  /// The user id behind a live token, renewing it; 0 if unknown or expired
  /// (an expired row is deleted).
  virtual int64_t session_user(std::string_view token) = 0;
  /// Deletes every expired session.
  virtual void purge_expired() = 0;
  /// The user called `username`, if any.
  virtual std::optional<UserRow> find_user(std::string_view username) = 0;
  /// Adds the session `hash` (token_hash) of `user_id`; false when that
  /// user was deleted meanwhile.
  virtual bool insert_session(const std::string& hash, int64_t user_id) = 0;
  /// What `user_id`'s inbox holds unread.
  virtual InboxSize inbox_size(int64_t user_id) = 0;
  /// The full name of `user_id` (a StoreError if the user is gone).
  virtual std::string nama_of(int64_t user_id) = 0;
  /// Queues `message` from `sender_id` to `to`, names copied as sent.
  virtual void insert_message(int64_t sender_id, const std::string& from_name, const UserRow& to,
                              std::string_view message) = 0;
  /// Returns and deletes every unread message of `user_id`, in delivery
  /// order, into `groups`.
  virtual void take_inbox(int64_t user_id, InboxGrouper& groups) = 0;
  /// Usernames with a live session, in order of their earliest live login,
  /// each once.
  virtual std::vector<std::string> live_users() = 0;
  /// Deletes every session of `user_id`.
  virtual void logout_user(int64_t user_id) = 0;
  /// One round trip to the database.
  virtual void ping() = 0;
};

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

/// Every ChatStore operation but open(), in the steps both backends follow
/// on the StoreDb their open() sets (chat_store.cpp). Not copyable.
class FramedStore : public ChatStore {
 public:
  FramedStore() = default;
  FramedStore(const FramedStore&) = delete;
  FramedStore& operator=(const FramedStore&) = delete;

  /// open() has set the connection.
  bool is_open() const override { return db_ != nullptr; }
  /// Checked as open() checks its arguments, kept (StoreDb::keep_users),
  /// then synced in one transaction.
  Status set_users(const std::vector<ChatUser>& users) override;
  StatusResult ping() override;
  /// db.find_user, the password checked outside any transaction (Argon2
  /// takes milliseconds to seconds and must hold no lock meanwhile), then
  /// one transaction that purges expired sessions and adds the new one.
  AuthResult auth(std::string_view username, std::string_view password) override;
  /// Inside the session's transaction: the receiver (kNoSuchReceiver), its
  /// inbox against kMaxInboxMessages and kMaxInboxBytes (kInboxFull), then
  /// the message. Durable once committed.
  StatusResult send(std::string_view token, std::string_view receiver,
                    std::string_view message) override;
  /// Delivered only if the transaction commits: a failed commit answers an
  /// error and the messages stay queued.
  InboxResult inbox(std::string_view token) override;
  ListUserResult listuser(std::string_view token) override;
  StatusResult logout(std::string_view token) override;

 protected:
  std::unique_ptr<StoreDb> db_;  ///< null until open() accepts its arguments
};

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
