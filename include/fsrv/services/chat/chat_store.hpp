#pragma once
// Chat state: accounts, sessions and queued messages of the course's
// "tugas 5" chat protocol, behind one interface with two backends:
// - SqliteChatStore (sqlite_chat_store.hpp): one SQLite file that the
//   processes and threads of ONE machine share (the default,
//   `--chat-db sqlite:PATH`);
// - PgChatStore (pg_chat_store.hpp): a PostgreSQL database that the nodes of
//   a cluster share (`--chat-db postgresql://...`).
// Knows nothing of lines, JSON or sockets (chat_protocol.hpp words the
// outcomes).
//
// BLOCKING: every call does file or network I/O, may wait for another
// connection's lock, and auth runs Argon2. Call it from a thread off the
// event loop (the chat service's own database threads), never on the loop.
//
// Thread safety: a ChatStore is NOT thread-safe. Use one object per thread
// (each has its own connection; the database serialises writers across
// connections, processes and machines), or guard a shared one.
//
// Both backends give the same answers: every operation is one transaction;
// inbox takes and deletes the user's messages in one transaction, so two
// readers (threads, processes or machines) calling inbox at once deliver
// each message exactly once (once handed to the caller a message is gone:
// if the reply is then lost with the connection, it is lost, as in the
// course server).
//
// Sessions: a token is a random UUID4 (libsodium randombytes_buf, i.e. the
// kernel CSPRNG); the database keeps only its BLAKE2b hash, so a copy of the
// database does not hand out live sessions. A session expires once more than
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

/// Default time a PostgreSQL connection attempt may take, in seconds: a
/// database host that does not answer must not hold a chat request longer
/// than a person waits for a reply (libpq's connect_timeout, minimum 2).
inline constexpr int kDefaultConnectTimeoutS = 2;

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
  kInboxFull,       ///< send: the receiver's unread messages reached kMaxInbox*
  kStoreError,      ///< the database failed (I/O, busy timeout, corrupt); see `error`
  kUnavailable,     ///< the database cannot be reached now (down, restarting);
                    ///< answered at once while a reconnect backs off; see `error`
};

/// What one inbox may hold unread. inbox() builds its reply from all of it
/// at once, and invalid UTF-8 grows up to six-fold as \ufffd escapes, so
/// these bound one reply to a few MiB; a send over either gets kInboxFull
/// (the receiver must read first). Checked in the send's transaction: two
/// senders racing may pass it by a message each.
inline constexpr int64_t kMaxInboxMessages = 1000;
inline constexpr int64_t kMaxInboxBytes = 1 << 20;

/// Durability of a commit (PRAGMA synchronous; see the header comment).
enum class Durability {
  kFull,    ///< synchronous=FULL: survives power loss
  kNormal,  ///< synchronous=NORMAL: survives process crashes
};

/// Tunables of ChatStore::open.
struct ChatStoreOptions {
  Durability durability = Durability::kFull;
  int busy_timeout_ms = kDefaultBusyTimeoutMs;      ///< SQLite only
  int connect_timeout_s = kDefaultConnectTimeoutS;  ///< PostgreSQL only
  /// Wall clock in ms since the Unix epoch (system_clock by default). Wall
  /// time, not steady time: the value is stored and compared across
  /// processes. Tests inject a fake one.
  std::function<int64_t()> now_ms;
};

/// send, logout, ping: just the outcome; the base of the other results.
struct StatusResult {
  Outcome outcome = Outcome::kStoreError;
  std::string error;  ///< detail of kStoreError or kUnavailable, for the log only
};

/// auth: the new session's token (36-char lower-case UUID4) when kOk.
struct AuthResult : StatusResult {
  std::string token;
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
struct InboxResult : StatusResult {
  std::vector<InboxGroup> groups;
};

/// listuser: usernames with at least one live session, in order of their
/// earliest live login, each once.
struct ListUserResult : StatusResult {
  std::vector<std::string> usernames;
};

class StoreDb;

/// The chat state behind one database connection: each backend's open()
/// sets the connection (a StoreDb, store_frame.hpp), and every other
/// operation runs the same steps and SQL on it (chat_store.cpp). A store
/// not open answers kStoreError; a database failure becomes the result's
/// outcome and error text, with nothing of a half-built result kept; an
/// operation on a token's session is one transaction that checks and
/// renews the session first and is committed whatever the answer (so an
/// expired session's deletion and a renewal are kept). Not copyable.
class ChatStore {
 public:
  ChatStore();
  virtual ~ChatStore();
  ChatStore(const ChatStore&) = delete;
  ChatStore& operator=(const ChatStore&) = delete;

  /// Opens the database at `location` (SQLite: a file path; PostgreSQL: a
  /// libpq connection URI or key=value string), creates or migrates the
  /// schema through its version record, and makes the users table equal to
  /// `users` (inserted or updated by username; users not in the list are
  /// deleted with their sessions and messages). Every store sharing a
  /// database must be opened with the same users. `session_ttl_s` > 0 is
  /// the idle TTL in seconds. Errors: bad arguments, cannot connect or
  /// create, not a database, schema from a newer version. Call once per
  /// object. (PgChatStore keeps a valid configuration even when the first
  /// connection fails, and connects again on later calls.)
  virtual Status open(const std::string& location, const std::vector<ChatUser>& users,
                      double session_ttl_s = kDefaultSessionTtlS,
                      ChatStoreOptions options = {}) = 0;

  /// Whether open() accepted the configuration (every operation answers
  /// kStoreError before that).
  bool is_open() const { return db_ != nullptr; }

  /// Makes the users table equal to `users`, as open() does (SIGHUP reload
  /// of --chat-users): new users added, changed names and hashes updated,
  /// users no longer listed deleted with their sessions and messages, all in
  /// one transaction. Checked like open()'s arguments first; on any error
  /// nothing changes. PostgreSQL also keeps the list for its reconnects.
  Status set_users(const std::vector<ChatUser>& users);

  /// Whether the database answers now (a health probe: one round trip, or
  /// kUnavailable at once while a reconnect backs off). Outcomes: kOk,
  /// kUnavailable, kStoreError.
  StatusResult ping();

  /// Checks the password (crypto_pwhash_str_verify, constant time; Argon2
  /// runs outside any transaction so it holds no lock) and starts a
  /// session. Also purges expired sessions.
  AuthResult auth(std::string_view username, std::string_view password);

  /// Queues `message` (any bytes) from the token's user to `receiver`.
  /// Durable once kOk. Outcomes: kOk, kBadToken, kNoSuchReceiver (checked
  /// after the token, as the course server does), kInboxFull (the
  /// receiver's unread messages against kMaxInboxMessages and
  /// kMaxInboxBytes).
  StatusResult send(std::string_view token, std::string_view receiver, std::string_view message);

  /// Returns and deletes, atomically, every unread message of the token's
  /// user (StoreDb::take_inbox). Delivered only if the transaction commits:
  /// a failed commit answers an error and the messages stay queued.
  /// Outcomes: kOk (possibly no groups), kBadToken.
  InboxResult inbox(std::string_view token);

  /// Users with a live session. Outcomes: kOk, kBadToken.
  ListUserResult listuser(std::string_view token);

  /// Ends every session of the token's user. Outcomes: kOk, kBadToken.
  StatusResult logout(std::string_view token);

 protected:
  std::unique_ptr<StoreDb> db_;  ///< null until open() accepts its arguments
};

/// Where the chat state lives (`--chat-db`).
struct ChatDb {
  enum class Kind { kSqlite, kPostgres };
  Kind kind = Kind::kSqlite;
  /// SQLite: the file path; PostgreSQL: the whole URI as libpq takes it.
  std::string location;
};

/// Parses `--chat-db`: "" -> SQLite at default_db_path(root);
/// "sqlite:PATH" -> SQLite at PATH; "postgresql://..." or "postgres://..."
/// -> PostgreSQL. Error: anything else, or an empty PATH.
Result<ChatDb> parse_chat_db(std::string_view url, const std::string& root);

/// A closed store of the given backend.
std::unique_ptr<ChatStore> make_chat_store(ChatDb::Kind kind);

/// Checks open()'s arguments the same way for both backends (TTL range,
/// users non-empty, each user as check_user checks a users file's). Also
/// runs sodium_init. Returns the first problem.
Status check_open_args(const std::vector<ChatUser>& users, double session_ttl_s);

}  // namespace fsrv::services::chat
