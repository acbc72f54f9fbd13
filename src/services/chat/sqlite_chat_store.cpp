// Chat state in SQLite (see sqlite_chat_store.hpp for the transaction and
// durability design).
//
// Inside this file every SQLite failure throws StoreError (its code
// SQLite's); each public operation catches it at its boundary, rolls back
// and reports Outcome::kStoreError, so no path forgets a return code.

#include "fsrv/services/chat/sqlite_chat_store.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "fsrv/services/chat/store_frame.hpp"

namespace fsrv::services::chat {

namespace {

// Column types of the shared schema (chat_schema): INTEGER PRIMARY KEY is
// the rowid, max + 1 on each insert.
constexpr SqlTypes kSqliteTypes{"INTEGER PRIMARY KEY", "INTEGER", "BLOB"};

// A failed SQLite call: the message and the primary result code.
StoreError db_error(const std::string& what, int rc) {
  return StoreError(what, Outcome::kStoreError, rc & 0xff);
}

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
    throw db_error(std::string(what) + ": " + (db ? sqlite3_errmsg(db) : "no database"),
                   db ? sqlite3_errcode(db) : 0);
  }

  void exec(const char* sql) {
    char* err = nullptr;
    if (const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err); rc != SQLITE_OK) {
      std::string msg = std::string(sql).substr(0, 40) + ": " + (err ? err : "?");
      sqlite3_free(err);
      throw db_error(msg, rc);
    }
  }

  // A cached statement; $N is SQLite's ?N (a $NAME would be numbered by
  // first appearance instead).
  sqlite3_stmt* prepare(const char* sql) {
    if (auto it = stmts.find(sql); it != stmts.end()) return it->second;
    std::string text(sql);
    std::ranges::replace(text, '$', '?');
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db, text.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) !=
        SQLITE_OK) {
      fail("prepare");
    }
    stmts.emplace(sql, s);
    return s;
  }

  // Binds, steps to the end and reads every column's bytes (TEXT and BLOB
  // alike; an integer as its text); the statement is reset and unbound on
  // the way out, so none keeps a read transaction open.
  std::vector<SqlRow> query(const char* sql, std::initializer_list<SqlParam> params) override {
    sqlite3_stmt* s = prepare(sql);
    std::unique_ptr<sqlite3_stmt, void (*)(sqlite3_stmt*)> reset(s, [](sqlite3_stmt* st) {
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
    });
    for (int i = 1; const SqlParam& p : params) {
      const char* data = p.text.empty() ? "" : p.text.data();  // a null pointer binds NULL
      const int n = static_cast<int>(p.text.size());
      const int rc = p.kind == SqlParam::Kind::kInt ? sqlite3_bind_int64(s, i, p.number)
                     : p.kind == SqlParam::Kind::kText
                         ? sqlite3_bind_text(s, i, data, n, SQLITE_TRANSIENT)
                         : sqlite3_bind_blob(s, i, data, n, SQLITE_TRANSIENT);
      if (rc != SQLITE_OK) fail("bind");
      ++i;
    }
    std::vector<SqlRow> rows;
    for (int rc; (rc = sqlite3_step(s)) != SQLITE_DONE;) {
      if (rc != SQLITE_ROW) fail("step");
      SqlRow& row = rows.emplace_back(sqlite3_column_count(s));
      for (int c = 0; c < static_cast<int>(row.size()); ++c) {
        const auto* p = static_cast<const char*>(sqlite3_column_blob(s, c));
        if (p != nullptr) row[c].assign(p, sqlite3_column_bytes(s, c));
      }
    }
    return rows;
  }

  // SELECT, then DELETE up to the last id read, under BEGIN IMMEDIATE's
  // write lock: DELETE ... RETURNING would make SQLite hold a second copy
  // of the whole inbox meanwhile (about 1 MiB a full one).
  std::vector<SqlRow> take_inbox(int64_t user_id) override {
    std::vector<SqlRow> rows = query(
        "SELECT m.id, u.username, m.msg_from, m.msg_to, m.msg FROM messages m "
        "JOIN users u ON u.id = m.sender_id WHERE m.receiver_id = $1 ORDER BY m.id",
        {sql_int(user_id)});
    if (!rows.empty()) {
      query("DELETE FROM messages WHERE receiver_id = $1 AND id <= $2",
            {sql_int(user_id), sql_int(std::stoll(rows.back()[0]))});
    }
    return rows;
  }

  // BEGIN IMMEDIATE takes the write lock first (waiting up to
  // busy_timeout), so what we read stays true until we write
  // (https://www.sqlite.org/lang_transaction.html).
  void begin() override { exec("BEGIN IMMEDIATE"); }
  void commit() override { exec("COMMIT"); }
  void rollback() override { sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr); }
};

}  // namespace

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
      const std::vector<SqlRow> mode = impl->query("PRAGMA journal_mode = WAL", {});
      if (mode.empty() || mode[0][0] != "wal")
        throw db_error("cannot switch to WAL mode", SQLITE_BUSY);
      impl->exec(options.durability == Durability::kFull ? "PRAGMA synchronous = FULL"
                                                         : "PRAGMA synchronous = NORMAL");
      impl->exec("PRAGMA foreign_keys = ON");

      Transaction txn(*impl);
      const std::vector<SqlRow> rows = impl->query("PRAGMA user_version", {});
      check_schema_version(rows.empty() ? 0 : std::stoll(rows[0][0]));
      impl->exec(chat_schema(kSqliteTypes).c_str());
      impl->exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());

      sync_users(*impl, users);
      txn.commit();
    } catch (const StoreError& e) {
      // Several threads or workers opening one new database race to switch
      // it to WAL and to create the schema; SQLite answers SQLITE_BUSY
      // without calling the busy handler where waiting could deadlock, so
      // the whole set-up is retried until the busy timeout has passed.
      const bool busy = e.code == SQLITE_BUSY || e.code == SQLITE_LOCKED;
      if (busy && std::chrono::steady_clock::now() < deadline) {
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

}  // namespace fsrv::services::chat
