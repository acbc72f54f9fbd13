#pragma once
// What the two chat store backends (sqlite_chat_store.cpp,
// pg_chat_store.cpp) share inside their operations; not part of the
// ChatStore interface, which callers use:
// - StoreError, the one exception both throw inside their files;
// - store_call, the frame of every public operation (a store not open
//   answers kStoreError; a StoreError becomes the result's outcome and
//   error text, with nothing else of a half-built result kept);
// - Transaction, BEGIN ... COMMIT in a backend's own statements;
// - SessionClock, the idle TTL and the clock both compare sessions with;
// - session_call, the frame of an operation on a token's session: one
//   transaction that checks and renews the session first and is committed
//   whatever the answer (so an expired session's deletion and a renewal
//   are kept);
// - auth_call, send_call and set_users_call, auth, send and set_users in
//   the steps both follow, each step a backend's own statement;
// - InboxGrouper, which shapes inbox rows into InboxResult's groups;
// - chat_schema, the one table layout, in each backend's column types.
// The SQL stays in each backend: only the logic that is the same is here.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
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

/// Runs `body(r)` on a fresh result `R` (AuthResult, StatusResult, ...) and
/// returns it. Not open: `r.error` says so and the outcome stays
/// kStoreError. A StoreError thrown by `body`: the result is reset to only
/// that error's outcome and text (a failed commit delivers nothing).
template <class R, class Body>
R store_call(bool open, Body&& body) {
  R r;
  if (!open) {
    r.error = "chat store not open";
    return r;
  }
  try {
    body(r);
  } catch (const StoreError& e) {
    r = R{};
    r.outcome = e.outcome;
    r.error = e.what();
  }
  return r;
}

/// One transaction on a backend's connection `Db`: `db.begin()` starts it,
/// commit() runs `db.commit()` (a StoreError if that fails), and the
/// destructor runs `db.rollback()` (which must not throw) unless committed.
template <class Db>
class Transaction {
 public:
  explicit Transaction(Db& db) : db_(db) { db_.begin(); }
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
  Db& db_;
  bool done_ = false;
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

/// store_call for an operation on the session of `token`, in one
/// transaction: `db.ensure()` (a usable connection, or a thrown
/// StoreError), then a Transaction on `db` (rolled back unless committed),
/// `db.session_user(token)` gives the user id behind a live token, renewed
/// (0: unknown or expired, kBadToken), and `body(r, user_id)` does the rest
/// and returns the outcome. The transaction is committed for every
/// outcome; `body` throws to roll back.
template <class R, class Db, class Body>
R session_call(bool open, Db& db, std::string_view token, Body&& body) {
  return store_call<R>(open, [&](R& r) {
    db.ensure();
    Transaction txn(db);
    const int64_t user_id = db.session_user(token);
    r.outcome = user_id == 0 ? Outcome::kBadToken : body(r, user_id);
    // Delivered (inbox) only if this commits: a failed commit throws, the
    // caller gets an error and the messages stay queued.
    txn.commit();
  });
}

/// A user's row as auth and send find it by username: id, full name
/// ("nama") and stored password hash.
struct UserRow {
  int64_t id = 0;
  std::string nama;
  std::string password_hash;
};

/// auth in the steps both backends follow: `db.ensure()`;
/// `db.find_user(username)` (none: kNoSuchUser); the password checked
/// outside any transaction (Argon2 takes milliseconds to seconds and must
/// hold no lock meanwhile); then one transaction that
/// purges expired sessions (`db.purge_expired()`) and adds the session
/// (`db.insert_session(token_hash, user_id)`, false when the user was
/// deleted meanwhile: kNoSuchUser, rolled back).
template <class Db>
AuthResult auth_call(bool open, Db& db, std::string_view username, std::string_view password) {
  return store_call<AuthResult>(open, [&](AuthResult& r) {
    db.ensure();
    const std::optional<UserRow> user = db.find_user(username);
    if (!user) {
      r.outcome = Outcome::kNoSuchUser;
      return;
    }
    if (!verify_password(user->password_hash, password)) {
      r.outcome = Outcome::kWrongPassword;
      return;
    }
    std::string token = new_uuid4();
    Transaction txn(db);
    db.purge_expired();
    if (!db.insert_session(token_hash(token), user->id)) {
      r.outcome = Outcome::kNoSuchUser;
      return;
    }
    txn.commit();
    r.outcome = Outcome::kOk;
    r.token = std::move(token);
  });
}

/// What a user's inbox holds unread.
struct InboxSize {
  int64_t messages = 0;
  int64_t bytes = 0;
};

/// send in the steps both backends follow, inside session_call's
/// transaction: `db.find_user(receiver)` (none: kNoSuchReceiver),
/// `db.inbox_size(receiver_id)` against kMaxInboxMessages and
/// kMaxInboxBytes (kInboxFull), then `db.insert_message(sender_id,
/// sender's nama, receiver, message)` with `db.nama_of(sender_id)` (throws
/// if the sender is gone). Durable once committed.
template <class Db>
StatusResult send_call(bool open, Db& db, std::string_view token, std::string_view receiver,
                       std::string_view message) {
  return session_call<StatusResult>(open, db, token, [&](StatusResult&, int64_t sender_id) {
    const std::optional<UserRow> to = db.find_user(receiver);
    if (!to) return Outcome::kNoSuchReceiver;  // committed: keeps the session renewal
    const InboxSize queued = db.inbox_size(to->id);
    if (queued.messages >= kMaxInboxMessages ||
        queued.bytes + static_cast<int64_t>(message.size()) > kMaxInboxBytes) {
      return Outcome::kInboxFull;
    }
    const std::string from_name = db.nama_of(sender_id);
    db.insert_message(sender_id, from_name, *to, message);
    return Outcome::kOk;
  });
}

/// set_users in the steps both backends follow: the arguments checked as
/// open() checks them, `db.keep_users(users)` (PostgreSQL keeps the list
/// for its reconnects), then `db.ensure()` and one transaction running
/// `db.sync_users(users)`. Errors: not open, bad arguments, a StoreError.
template <class Db>
Status set_users_call(bool open, Db& db, const std::vector<ChatUser>& users) {
  if (!open) return Status::failure(Errc::kIo, "chat store not open");
  if (Status s = check_open_args(users, kDefaultSessionTtlS); !s.ok()) return s;
  db.keep_users(users);
  try {
    db.ensure();
    Transaction txn(db);
    db.sync_users(users);
    txn.commit();
  } catch (const StoreError& e) {
    return Status::failure(Errc::kIo, std::string("chat store: ") + e.what());
  }
  return {};
}

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
