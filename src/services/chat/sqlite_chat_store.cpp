// Chat state in SQLite (see sqlite_chat_store.hpp for the transaction and
// durability design).
//
// Inside this file every SQLite failure throws DbError; each public
// operation catches it at its boundary, rolls back and reports
// Outcome::kStoreError, so no path forgets a return code.

#include "fsrv/services/chat/sqlite_chat_store.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <set>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

#include "fsrv/services/chat/store_frame.hpp"

namespace fsrv::services::chat {

namespace {

// Schema version kept in PRAGMA user_version; a newer file is refused
// rather than misread.
constexpr int kSchemaVersion = 1;

// Column types of the shared schema (chat_schema): INTEGER PRIMARY KEY is
// the rowid, max + 1 on each insert.
constexpr SqlTypes kSqliteTypes{"INTEGER PRIMARY KEY", "INTEGER", "BLOB"};

/// A failed SQLite call: the message and the primary result code (0 when
/// the failure is ours, not SQLite's).
struct DbError : StoreError {
  explicit DbError(const std::string& what, int code = 0) : StoreError(what), code(code) {}
  /// True for SQLITE_BUSY and SQLITE_LOCKED: another connection held a lock
  /// longer than busy_timeout, or SQLite declined to wait (see open()).
  bool busy() const { return code == SQLITE_BUSY || code == SQLITE_LOCKED; }
  int code;
};

std::string column_text(sqlite3_stmt* s, int col) {
  const auto* p = sqlite3_column_blob(s, col);  // raw bytes for TEXT and BLOB alike
  const int n = sqlite3_column_bytes(s, col);
  return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), n);
}

// The connection and its prepared statements.
struct SqliteDb final : StoreDb {
  sqlite3* db = nullptr;
  // Prepared once per connection, keyed by the SQL literal's address.
  std::unordered_map<const char*, sqlite3_stmt*> stmts;

  // Finalises the statements and closes the connection (an open
  // transaction cannot exist between calls, so nothing is lost).
  ~SqliteDb() override {
    for (auto& [sql, s] : stmts) sqlite3_finalize(s);
    if (db != nullptr) sqlite3_close_v2(db);
  }

  [[noreturn]] void fail(const char* what) const {
    throw DbError(std::string(what) + ": " + (db ? sqlite3_errmsg(db) : "no database"),
                  db ? sqlite3_errcode(db) & 0xff : 0);
  }

  void exec(const char* sql) {
    char* err = nullptr;
    if (const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err); rc != SQLITE_OK) {
      std::string msg = std::string(sql).substr(0, 40) + ": " + (err ? err : "?");
      sqlite3_free(err);
      throw DbError(msg, rc & 0xff);
    }
  }

  // A cached statement, reset and unbound by Query's destructor.
  sqlite3_stmt* prepare(const char* sql) {
    auto it = stmts.find(sql);
    if (it != stmts.end()) return it->second;
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
      fail("prepare");
    }
    stmts.emplace(sql, s);
    return s;
  }

  // BEGIN IMMEDIATE takes the write lock first (waiting up to
  // busy_timeout), so what we read stays true until we write
  // (https://www.sqlite.org/lang_transaction.html).
  void begin() override { exec("BEGIN IMMEDIATE"); }
  void commit() override { exec("COMMIT"); }
  void rollback() override { sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr); }
  void sync_users(const std::vector<ChatUser>& users) override;
  int64_t session_user(std::string_view token) override;
  void purge_expired() override;
  std::optional<UserRow> find_user(std::string_view username) override;
  bool insert_session(const std::string& hash, int64_t user_id) override;
  InboxSize inbox_size(int64_t user_id) override;
  std::string nama_of(int64_t user_id) override;
  void insert_message(int64_t sender_id, const std::string& from_name, const UserRow& to,
                      std::string_view message) override;
  void take_inbox(int64_t user_id, InboxGrouper& groups) override;
  std::vector<std::string> live_users() override;
  void logout_user(int64_t user_id) override;
  void ping() override;
};

// One use of a cached statement: bind, step, read columns; reset on scope
// exit so no statement keeps a read transaction open.
class Query {
 public:
  Query(SqliteDb& impl, const char* sql) : impl_(impl), s_(impl.prepare(sql)) {}
  ~Query() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  Query& bind(int i, int64_t v) {
    check(sqlite3_bind_int64(s_, i, v));
    return *this;
  }
  Query& bind_text(int i, std::string_view v) {
    check(sqlite3_bind_text(s_, i, v.empty() ? "" : v.data(), static_cast<int>(v.size()),
                            SQLITE_TRANSIENT));
    return *this;
  }
  Query& bind_blob(int i, std::string_view v) {
    // A null pointer would bind NULL; "" binds a zero-length blob.
    check(sqlite3_bind_blob(s_, i, v.empty() ? "" : v.data(), static_cast<int>(v.size()),
                            SQLITE_TRANSIENT));
    return *this;
  }
  /// Steps once: true if a row is available, false when done.
  bool step() {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    impl_.fail("step");
  }
  void run() {
    while (step()) {
    }
  }
  int64_t i64(int col) const { return sqlite3_column_int64(s_, col); }
  std::string text(int col) const { return column_text(s_, col); }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) impl_.fail("bind");
  }
  SqliteDb& impl_;
  sqlite3_stmt* s_;
};

constexpr const char* kSqlSessionByToken =
    "SELECT id, user_id, last_seen_ms FROM sessions WHERE token_hash = ?1";
constexpr const char* kSqlDeleteSession = "DELETE FROM sessions WHERE id = ?1";
constexpr const char* kSqlTouchSession = "UPDATE sessions SET last_seen_ms = ?2 WHERE id = ?1";
constexpr const char* kSqlPurgeSessions = "DELETE FROM sessions WHERE last_seen_ms < ?1";
constexpr const char* kSqlUserByName =
    "SELECT id, nama, password_hash FROM users WHERE username = ?1";
constexpr const char* kSqlUserById = "SELECT username, nama FROM users WHERE id = ?1";
constexpr const char* kSqlInsertSession =
    "INSERT INTO sessions (token_hash, user_id, last_seen_ms) VALUES (?1, ?2, ?3)";
constexpr const char* kSqlInsertMessage =
    "INSERT INTO messages (sender_id, receiver_id, msg_from, msg_to, msg, sent_ms) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
constexpr const char* kSqlInboxSize =
    "SELECT COUNT(*), COALESCE(SUM(LENGTH(msg)), 0) FROM messages WHERE receiver_id = ?1";
constexpr const char* kSqlSelectInbox =
    "SELECT m.id, u.username, m.msg_from, m.msg_to, m.msg FROM messages m "
    "JOIN users u ON u.id = m.sender_id WHERE m.receiver_id = ?1 ORDER BY m.id";
constexpr const char* kSqlDeleteInbox = "DELETE FROM messages WHERE receiver_id = ?1 AND id <= ?2";
constexpr const char* kSqlLiveUsers =
    "SELECT u.username FROM sessions s JOIN users u ON u.id = s.user_id "
    "GROUP BY s.user_id ORDER BY MIN(s.id)";
constexpr const char* kSqlLogoutUser = "DELETE FROM sessions WHERE user_id = ?1";
constexpr const char* kSqlUpsertUser =
    "INSERT INTO users (username, nama, negara, password_hash) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (username) DO UPDATE SET nama = excluded.nama, negara = excluded.negara, "
    "password_hash = excluded.password_hash";
constexpr const char* kSqlAllUsers = "SELECT id, username FROM users";
constexpr const char* kSqlDeleteUser = "DELETE FROM users WHERE id = ?1";

}  // namespace

// A deleted user's sessions and messages go with it (ON DELETE CASCADE).
void SqliteDb::sync_users(const std::vector<ChatUser>& users) {
  std::set<std::string_view> names;
  for (const ChatUser& u : users) {
    names.insert(u.username);
    Query(*this, kSqlUpsertUser)
        .bind_text(1, u.username)
        .bind_text(2, u.nama)
        .bind_text(3, u.negara)
        .bind_text(4, u.password_hash)
        .run();
  }
  std::vector<int64_t> stale;
  {
    Query q(*this, kSqlAllUsers);
    while (q.step()) {
      if (!names.contains(q.text(1))) stale.push_back(q.i64(0));
    }
  }
  for (int64_t id : stale) Query(*this, kSqlDeleteUser).bind(1, id).run();
}

int64_t SqliteDb::session_user(std::string_view token) {
  if (token.size() != kTokenLength) return 0;
  const int64_t t = now();
  int64_t session_id = 0, user_id = 0, last_seen = 0;
  {
    Query q(*this, kSqlSessionByToken);
    q.bind_blob(1, token_hash(token));
    if (!q.step()) return 0;
    session_id = q.i64(0);
    user_id = q.i64(1);
    last_seen = q.i64(2);
  }
  if (t - last_seen > ttl_ms) {
    Query(*this, kSqlDeleteSession).bind(1, session_id).run();
    return 0;
  }
  Query(*this, kSqlTouchSession).bind(1, session_id).bind(2, t).run();
  return user_id;
}

void SqliteDb::purge_expired() { Query(*this, kSqlPurgeSessions).bind(1, now() - ttl_ms).run(); }

std::optional<UserRow> SqliteDb::find_user(std::string_view username) {
  Query q(*this, kSqlUserByName);
  if (!q.bind_text(1, username).step()) return std::nullopt;
  return UserRow{q.i64(0), q.text(1), q.text(2)};
}

bool SqliteDb::insert_session(const std::string& hash, int64_t user_id) {
  {
    Query q(*this, kSqlUserById);
    if (!q.bind(1, user_id).step()) return false;  // deleted by a reopen meanwhile
  }
  Query(*this, kSqlInsertSession).bind_blob(1, hash).bind(2, user_id).bind(3, now()).run();
  return true;
}

InboxSize SqliteDb::inbox_size(int64_t user_id) {
  Query q(*this, kSqlInboxSize);
  q.bind(1, user_id).step();
  return InboxSize{q.i64(0), q.i64(1)};
}

std::string SqliteDb::nama_of(int64_t user_id) {
  Query q(*this, kSqlUserById);
  if (!q.bind(1, user_id).step()) throw DbError("session of a missing user");
  return q.text(1);
}

void SqliteDb::insert_message(int64_t sender_id, const std::string& from_name, const UserRow& to,
                              std::string_view message) {
  Query(*this, kSqlInsertMessage)
      .bind(1, sender_id)
      .bind(2, to.id)
      .bind_text(3, from_name)
      .bind_text(4, to.nama)
      .bind_blob(5, message)
      .bind(6, now())
      .run();
}

Status SqliteChatStore::open(const std::string& path, const std::vector<ChatUser>& users,
                             double session_ttl_s, ChatStoreOptions options) {
  if (is_open()) return Status::failure(Errc::kIo, "chat store: already open");
  if (Status s = check_open_args(users, session_ttl_s); !s.ok()) return s;
  // The hidden directory under the storage root: owner-only, since it holds
  // password hashes and messages.
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    if (std::filesystem::create_directories(parent, ec)) {
      ::chmod(parent.c_str(), 0700);
    } else if (ec) {
      return Status::failure(Errc::kIo,
                             "chat store: cannot create " + parent.string() + ": " + ec.message());
    }
  }

  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(std::max(options.busy_timeout_ms, 0));
  for (int attempt = 1;; ++attempt) {
    auto impl = std::make_unique<SqliteDb>();
    impl->set(session_ttl_s, options);
    // NOMUTEX: the object is single-threaded by contract (see the header).
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path.c_str(), &impl->db, flags, nullptr) != SQLITE_OK) {
      std::string msg = impl->db ? sqlite3_errmsg(impl->db) : "out of memory";
      return Status::failure(Errc::kIo, "chat store: cannot open " + path + ": " + msg);
    }
    try {
      sqlite3_extended_result_codes(impl->db, 1);
      sqlite3_busy_timeout(impl->db, options.busy_timeout_ms);
      {
        Query q(*impl, "PRAGMA journal_mode = WAL");
        if (!q.step() || q.text(0) != "wal")
          throw DbError("cannot switch to WAL mode", SQLITE_BUSY);
      }
      impl->exec(options.durability == Durability::kFull ? "PRAGMA synchronous = FULL"
                                                         : "PRAGMA synchronous = NORMAL");
      impl->exec("PRAGMA foreign_keys = ON");

      Transaction txn(*impl);
      int64_t version = 0;
      {
        Query q(*impl, "PRAGMA user_version");
        if (q.step()) version = q.i64(0);
      }
      if (version > kSchemaVersion) {
        throw DbError("database schema version " + std::to_string(version) +
                      " is newer than this program's " + std::to_string(kSchemaVersion));
      }
      impl->exec(chat_schema(kSqliteTypes).c_str());
      impl->exec("PRAGMA user_version = 1");
      static_assert(kSchemaVersion == 1, "update the PRAGMA above");

      impl->sync_users(users);
      txn.commit();
    } catch (const DbError& e) {
      // Several threads or workers opening one new database race to switch
      // it to WAL and to create the schema; SQLite answers SQLITE_BUSY
      // without calling the busy handler where waiting could deadlock, so
      // the whole set-up is retried until the busy timeout has passed.
      if (e.busy() && std::chrono::steady_clock::now() < deadline) {
        impl.reset();
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min(5 * attempt, 50)));
        continue;
      }
      return Status::failure(Errc::kIo, "chat store: " + path + ": " + e.what());
    }
    db_ = std::move(impl);
    return {};
  }
}

void SqliteDb::take_inbox(int64_t user_id, InboxGrouper& groups) {
  int64_t last_id = 0;
  {
    Query q(*this, kSqlSelectInbox);
    q.bind(1, user_id);
    while (q.step()) {
      last_id = q.i64(0);
      groups.add(q.text(1), InboxMessage{q.text(2), q.text(3), q.text(4)});
    }
  }
  if (last_id != 0) Query(*this, kSqlDeleteInbox).bind(1, user_id).bind(2, last_id).run();
}

std::vector<std::string> SqliteDb::live_users() {
  std::vector<std::string> names;
  Query q(*this, kSqlLiveUsers);
  while (q.step()) names.push_back(q.text(0));
  return names;
}

void SqliteDb::logout_user(int64_t user_id) { Query(*this, kSqlLogoutUser).bind(1, user_id).run(); }

void SqliteDb::ping() { Query(*this, "SELECT 1").run(); }

}  // namespace fsrv::services::chat
