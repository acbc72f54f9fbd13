#pragma once
// Chat state: accounts, sessions and queued messages of the course's
// "tugas 5" chat protocol, in one SQLite database file that several worker
// processes (prefork mode) or threads share. Owns one sqlite3 connection.
// Knows nothing of lines, JSON or sockets (chat_protocol.hpp words the
// outcomes).
//
// BLOCKING: every call does file I/O, may fsync, may wait up to the busy
// timeout for another connection's write lock, and auth runs Argon2. Call
// it from an executor's work function, never on the event loop.
//
// Thread safety: a ChatStore is NOT thread-safe. Use one object per thread
// (each has its own connection; SQLite serialises writers across
// connections and processes through the file locks), or guard a shared one
// with your own mutex.
//
// Consistency (https://www.sqlite.org/wal.html, /lang_transaction.html):
// - journal_mode=WAL: readers never block the writer, and the mode is
//   stored in the file, so every process sees it.
// - busy_timeout: a connection that finds the write lock taken waits (up to
//   ChatStoreOptions::busy_timeout_ms) instead of failing with SQLITE_BUSY.
// - Every operation is one BEGIN IMMEDIATE transaction: it takes the write
//   lock before reading, so two connections never act on the same snapshot
//   (no SQLITE_BUSY_SNAPSHOT, no lost update). inbox selects and deletes the
//   user's messages in one such transaction, so two workers calling inbox
//   at once deliver each message exactly once. (Once handed to the
//   caller a message is gone from the database: if the reply is then lost
//   with the connection, it is lost, as in the course server.)
// - synchronous=FULL by default (ChatStoreOptions::durability): "Message
//   Sent" is only answered after the WAL is fsync'ed, so an acknowledged
//   message survives a process crash, an OS crash and a power cut. NORMAL
//   in WAL mode survives process crashes only (the last commits can roll
//   back on power loss) for one fsync less per commit; at chat rates (a few
//   commits per second per user) the fsync costs nothing we would notice
//   and we run off the event loop anyway, so the stronger promise wins.
//
// Sessions: a token is a random UUID4 (libsodium randombytes_buf, i.e. the
// kernel CSPRNG); the database keeps only its BLAKE2b hash, so a copy of the
// file does not hand out live sessions. A session expires once more than
// the idle TTL has passed since its last accepted use; each use renews it.
// Expired rows are deleted when met and on every auth and listuser.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fsrv/core/result.hpp"
#include "fsrv/services/chat/chat_users.hpp"

namespace fsrv::services::chat {

/// Default idle TTL of a session in seconds (an hour of silence logs out).
inline constexpr double kDefaultSessionTtlS = 3600.0;

/// Default time a connection waits for another's write lock, in ms. Commits
/// take milliseconds, so 5 s means something is badly wrong.
inline constexpr int kDefaultBusyTimeoutMs = 5000;

/// Database file under a storage root: `<root>/.chat/chat.db`. The leading
/// dot keeps it out of the file service (storage::validate_name refuses
/// hidden names).
std::string default_db_path(const std::string& root);

/// What happened to a request. The protocol maps each to a reply.
enum class Outcome {
  kOk,
  kNoSuchUser,      ///< auth: unknown username ("User Tidak Ada")
  kWrongPassword,   ///< auth: password does not verify ("Password Salah")
  kBadToken,        ///< unknown, expired or logged-out token ("Informasi tidak ditemukan")
  kNoSuchReceiver,  ///< send: unknown receiver ("User Tidak Ditemukan")
  kStoreError,      ///< the database failed (I/O, busy timeout, corrupt); see `error`
};

/// Durability of a commit (PRAGMA synchronous; see the header comment).
enum class Durability {
  kFull,    ///< synchronous=FULL: survives power loss
  kNormal,  ///< synchronous=NORMAL: survives process crashes
};

/// Tunables of ChatStore::open.
struct ChatStoreOptions {
  Durability durability = Durability::kFull;
  int busy_timeout_ms = kDefaultBusyTimeoutMs;
  /// Wall clock in ms since the Unix epoch (system_clock by default). Wall
  /// time, not steady time: the value is stored and compared across
  /// processes. Tests inject a fake one.
  std::function<int64_t()> now_ms;
};

/// auth: the new session's token (36-char lower-case UUID4) when kOk.
struct AuthResult {
  Outcome outcome = Outcome::kStoreError;
  std::string token;
  std::string error;  ///< detail of kStoreError, for the log only
};

/// send, logout: just the outcome.
struct StatusResult {
  Outcome outcome = Outcome::kStoreError;
  std::string error;  ///< detail of kStoreError
};

/// One delivered message; the names are the full names ("nama") at send time.
struct InboxMessage {
  std::string msg_from;
  std::string msg_to;
  std::string msg;
};

/// All unread messages from one sender, oldest first.
struct InboxGroup {
  std::string sender;  ///< sender's username
  std::vector<InboxMessage> messages;
};

/// inbox: groups in the order of each sender's oldest unread message.
struct InboxResult {
  Outcome outcome = Outcome::kStoreError;
  std::vector<InboxGroup> groups;
  std::string error;  ///< detail of kStoreError
};

/// listuser: usernames with at least one live session, in order of their
/// earliest live login, each once.
struct ListUserResult {
  Outcome outcome = Outcome::kStoreError;
  std::vector<std::string> usernames;
  std::string error;  ///< detail of kStoreError
};

/// The chat state behind one SQLite connection. Not copyable or movable.
class ChatStore {
 public:
  /// A closed store: every operation answers kStoreError until open().
  ChatStore();
  /// Finalises the statements and closes the connection (an open
  /// transaction cannot exist between calls, so nothing is lost).
  ~ChatStore();
  ChatStore(const ChatStore&) = delete;
  ChatStore& operator=(const ChatStore&) = delete;

  /// Opens (creating if missing: the parent directory, mode 0700, and the
  /// file) the database at `path`, sets WAL/busy_timeout/synchronous,
  /// creates the schema, and makes the users table equal to `users`
  /// (inserted or updated by username; users not in the list are deleted
  /// with their sessions and messages). Every store sharing a file must be
  /// opened with the same users. `session_ttl_s` > 0 is the idle TTL in
  /// seconds. Errors: bad arguments, cannot create/open, not a database,
  /// schema from a newer version, busy timeout. Call once per object.
  Status open(const std::string& path, const std::vector<ChatUser>& users,
              double session_ttl_s = kDefaultSessionTtlS, ChatStoreOptions options = {});

  /// Whether open() succeeded.
  bool is_open() const;

  /// Checks the password (crypto_pwhash_str_verify, constant time; Argon2
  /// runs outside the transaction so it does not hold the write lock) and
  /// starts a session. Also purges expired sessions.
  AuthResult auth(std::string_view username, std::string_view password);

  /// Queues `message` (any bytes) from the token's user to `receiver`.
  /// Durable (see Durability) when kOk. Outcomes: kOk, kBadToken,
  /// kNoSuchReceiver (checked after the token, as the course server does).
  StatusResult send(std::string_view token, std::string_view receiver, std::string_view message);

  /// Returns and deletes, atomically, every unread message of the token's
  /// user. Outcomes: kOk (possibly no groups), kBadToken.
  InboxResult inbox(std::string_view token);

  /// Users with a live session. Outcomes: kOk, kBadToken.
  ListUserResult listuser(std::string_view token);

  /// Ends every session of the token's user. Outcomes: kOk, kBadToken.
  StatusResult logout(std::string_view token);

  /// The connection and its prepared statements; defined in chat_store.cpp
  /// only (named here so that file's helpers can take it).
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace fsrv::services::chat
