// Chat state in PostgreSQL through libpq (see pg_chat_store.hpp for the
// transaction design and the reconnect rule).
//
// Inside this file every failed libpq call throws DbError; each public
// operation catches it at its boundary (the open transaction is rolled back
// by Transaction's destructor) and reports kStoreError, or kUnavailable when
// the connection itself is gone.

#include "fsrv/services/chat/pg_chat_store.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>

#include "fsrv/services/chat/store_frame.hpp"

namespace fsrv::services::chat {

namespace {

// Version of the schema below, recorded in chat_schema_version; a database
// with a newer one is refused rather than misread.
constexpr int kSchemaVersion = 1;

// A database host that vanishes without a reset (a partition, a power cut)
// must not hold a chat request for TCP's retransmission timeout (about 15
// min): unacknowledged data for 10 s ends the connection (libpq
// tcp_user_timeout, Linux TCP_USER_TIMEOUT), and an idle one is probed after
// 10 s (keepalives_idle).
constexpr int kPgTcpUserTimeoutMs = 10'000;

// No chat operation takes seconds; one waiting that long on a lock is
// answered as an error rather than holding its database thread.
constexpr int kPgStatementTimeoutMs = 10'000;

// Key of the advisory lock that serialises schema set-up across nodes
// (any constant of our own; "fsrvchat" in ASCII, truncated to 63 bits).
constexpr long long kSetupLockKey = 0x6673727663686174LL;

// Column types of the shared schema (chat_schema).
constexpr SqlTypes kPgTypes{"BIGSERIAL PRIMARY KEY", "BIGINT", "BYTEA"};

/// A failed database call. `unavailable`: the connection is refused or
/// broken (the caller answers kUnavailable and a later call reconnects).
struct DbError : StoreError {
  DbError(const std::string& what, bool unavailable)
      : StoreError(what, unavailable ? Outcome::kUnavailable : Outcome::kStoreError),
        unavailable(unavailable) {}
  bool unavailable;
};

/// `why` without the line ends and spaces libpq's messages end with.
std::string trimmed(std::string why) {
  while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
  return why;
}

/// One query parameter: text, or binary for BYTEA columns (any bytes,
/// including NUL, pass unchanged).
struct Param {
  std::string value;
  bool binary = false;
};
Param text(std::string_view v) { return Param{std::string(v), false}; }
Param bytes(std::string_view v) { return Param{std::string(v), true}; }
Param num(int64_t v) { return Param{std::to_string(v), false}; }

/// A query result (text format), cleared on scope exit.
class Rows {
 public:
  explicit Rows(PGresult* r) : r_(r) {}
  ~Rows() { PQclear(r_); }
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;
  int size() const { return PQntuples(r_); }
  bool null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  std::string str(int row, int col) const {
    return std::string(PQgetvalue(r_, row, col), PQgetlength(r_, row, col));
  }
  int64_t i64(int row, int col) const { return std::stoll(str(row, col)); }
  /// A BYTEA column: text format is hex ("\x..."), decoded by libpq.
  std::string blob(int row, int col) const {
    size_t n = 0;
    unsigned char* p =
        PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(r_, row, col)), &n);
    if (p == nullptr) throw DbError("cannot decode a bytea value", false);
    std::string out(reinterpret_cast<const char*>(p), n);
    PQfreemem(p);
    return out;
  }

 private:
  PGresult* r_;
};

// The connection and its state.
struct PgDb final : StoreDb {
  std::string conninfo;
  std::vector<ChatUser> users;
  int connect_timeout_s = kDefaultConnectTimeoutS;

  PGconn* conn = nullptr;
  bool ready = false;  ///< setup() has run on this connection
  std::chrono::steady_clock::time_point next_attempt{};
  int backoff_ms = 0;      ///< 0 until an attempt failed
  std::string last_error;  ///< why the last attempt failed

  ~PgDb() override { drop(); }

  void drop() {
    if (conn != nullptr) PQfinish(conn);
    conn = nullptr;
    ready = false;
  }

  // The connection is gone: drop it and make the next call wait the
  // shortest backoff, or longer after repeated failures.
  [[noreturn]] void lost(const std::string& why) {
    schedule_retry(why);
    throw DbError("database unavailable: " + why, true);
  }

  void schedule_retry(const std::string& why) {
    drop();
    last_error = why;
    backoff_ms = backoff_ms == 0 ? kPgRetryMinMs : std::min(backoff_ms * 2, kPgRetryMaxMs);
    next_attempt = std::chrono::steady_clock::now() + std::chrono::milliseconds(backoff_ms);
  }

  // A live, set-up connection, or DbError(unavailable) at once while the
  // backoff runs.
  void ensure() override {
    if (conn != nullptr && ready && PQstatus(conn) == CONNECTION_OK) return;
    drop();
    if (backoff_ms > 0 && std::chrono::steady_clock::now() < next_attempt) {
      throw DbError("database unavailable (retrying): " + last_error, true);
    }
    // The URI's own settings win over ours: dbname (expanded) comes last.
    const std::string timeout = std::to_string(std::max(connect_timeout_s, 2));
    const std::string user_timeout = std::to_string(kPgTcpUserTimeoutMs);
    const char* keys[] = {"connect_timeout",  "tcp_user_timeout", "keepalives_idle",
                          "application_name", "dbname",           nullptr};
    const char* values[] = {timeout.c_str(), user_timeout.c_str(), "10",
                            "fsrv-chat",     conninfo.c_str(),     nullptr};
    conn = PQconnectdbParams(keys, values, 1);
    if (conn == nullptr) lost("out of memory");
    // Server notices (NOTICE, the WARNING of a shutdown) would go to stderr
    // from every thread; errors reach us through results instead.
    PQsetNoticeProcessor(
        conn, [](void*, const char*) {}, nullptr);
    if (PQstatus(conn) != CONNECTION_OK) lost(trimmed(PQerrorMessage(conn)));
    try {
      exec_simple("SET client_min_messages = warning");  // no NOTICE per IF NOT EXISTS
      exec_simple(("SET statement_timeout = " + std::to_string(kPgStatementTimeoutMs)).c_str());
      setup();
    } catch (const DbError& e) {
      if (!e.unavailable) schedule_retry(e.what());  // a newer schema: retried, not hammered
      throw;
    }
    ready = true;
    backoff_ms = 0;
  }

  // Raises the right DbError for a failed result (and clears it).
  [[noreturn]] void fail(PGresult* r, const char* what) {
    const std::string msg = trimmed(r ? PQresultErrorMessage(r) : PQerrorMessage(conn));
    const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    const std::string sqlstate = state ? state : "";
    PQclear(r);
    // The server going away: class 08 (connection exception), 57P01-57P03
    // (admin or crash shutdown, cannot connect now; PostgreSQL 15 docs,
    // appendix A), or no SQLSTATE at all (libpq lost the socket). libpq may
    // still say CONNECTION_OK until it reads the EOF.
    const bool gone = sqlstate.empty() || sqlstate.starts_with("08") || sqlstate == "57P01" ||
                      sqlstate == "57P02" || sqlstate == "57P03";
    if (gone || PQstatus(conn) != CONNECTION_OK) lost(msg);
    throw DbError(std::string(what) + ": " + msg, false);
  }

  // `r` when it succeeded; else fail() raises its DbError.
  PGresult* checked(PGresult* r) {
    const ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) fail(r, "query");
    return r;
  }

  // PQexec: `sql` may hold several statements (the schema).
  void exec_simple(const char* sql) { PQclear(checked(PQexec(conn, sql))); }

  Rows query(const char* sql, const std::vector<Param>& params) {
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    for (const Param& p : params) {
      values.push_back(p.value.data());
      lengths.push_back(static_cast<int>(p.value.size()));
      formats.push_back(p.binary ? 1 : 0);
    }
    return Rows(checked(PQexecParams(conn, sql, static_cast<int>(params.size()), nullptr,
                                     values.data(), lengths.data(), formats.data(), 0)));
  }

  // The rollback only while the connection is there.
  void begin() override { exec_simple("BEGIN"); }
  void commit() override { exec_simple("COMMIT"); }
  void rollback() override {
    if (conn != nullptr && PQstatus(conn) == CONNECTION_OK) PQclear(PQexec(conn, "ROLLBACK"));
  }

  // Creates or migrates the schema and syncs `users`, in one transaction
  // under the set-up advisory lock.
  void setup() {
    Transaction txn(*this);
    query("SELECT pg_advisory_xact_lock($1)", {num(kSetupLockKey)});
    exec_simple("CREATE TABLE IF NOT EXISTS chat_schema_version (version INTEGER NOT NULL)");
    int64_t version = 0;
    {
      Rows r = query("SELECT max(version) FROM chat_schema_version", {});
      if (r.size() == 1 && !r.null(0, 0)) version = r.i64(0, 0);
    }
    if (version > kSchemaVersion) {
      throw DbError("database schema version " + std::to_string(version) +
                        " is newer than this program's " + std::to_string(kSchemaVersion),
                    false);
    }
    if (version < kSchemaVersion) {
      exec_simple(chat_schema(kPgTypes).c_str());
      exec_simple("DELETE FROM chat_schema_version");
      query("INSERT INTO chat_schema_version (version) VALUES ($1)", {num(kSchemaVersion)});
    }
    sync_users(users);
    txn.commit();
  }

  // setup() on a reconnect syncs the kept list.
  void keep_users(const std::vector<ChatUser>& list) override { users = list; }

  void sync_users(const std::vector<ChatUser>& list) override {
    std::set<std::string, std::less<>> names;
    for (const ChatUser& u : list) {
      names.insert(u.username);
      query(
          "INSERT INTO users (username, nama, negara, password_hash) VALUES ($1, $2, $3, $4) "
          "ON CONFLICT (username) DO UPDATE SET nama = excluded.nama, negara = excluded.negara, "
          "password_hash = excluded.password_hash",
          {text(u.username), text(u.nama), text(u.negara), text(u.password_hash)});
    }
    Rows all = query("SELECT id, username FROM users", {});
    for (int i = 0; i < all.size(); ++i) {
      if (!names.contains(all.str(i, 1))) {
        query("DELETE FROM users WHERE id = $1", {num(all.i64(i, 0))});
      }
    }
  }

  // One UPDATE decides and renews, so two nodes never both see a token
  // live that has expired.
  int64_t session_user(std::string_view token) override {
    if (token.size() != kTokenLength) return 0;
    const int64_t t = now();
    const std::string hash = token_hash(token);
    Rows r = query(
        "UPDATE sessions SET last_seen_ms = $2 WHERE token_hash = $1 AND last_seen_ms >= $3 "
        "RETURNING user_id",
        {bytes(hash), num(t), num(t - ttl_ms)});
    if (r.size() == 1) return r.i64(0, 0);
    query("DELETE FROM sessions WHERE token_hash = $1", {bytes(hash)});
    return 0;
  }

  void purge_expired() override {
    query("DELETE FROM sessions WHERE last_seen_ms < $1", {num(now() - ttl_ms)});
  }

  std::optional<UserRow> find_user(std::string_view username) override {
    // A name no user can have (not UTF-8, a NUL) never reaches a TEXT parameter.
    if (!validate_username(username).empty()) return std::nullopt;
    Rows q =
        query("SELECT id, nama, password_hash FROM users WHERE username = $1", {text(username)});
    if (q.size() != 1) return std::nullopt;
    return UserRow{q.i64(0, 0), q.str(0, 1), q.str(0, 2)};
  }
  bool insert_session(const std::string& hash, int64_t user_id) override {
    // No row when the user was deleted by a restart with other users.
    Rows ins = query(
        "INSERT INTO sessions (token_hash, user_id, last_seen_ms) "
        "SELECT $1, id, $3 FROM users WHERE id = $2 RETURNING id",
        {bytes(hash), num(user_id), num(now())});
    return ins.size() != 0;
  }
  InboxSize inbox_size(int64_t user_id) override {
    Rows q = query(
        "SELECT COUNT(*), COALESCE(SUM(OCTET_LENGTH(msg)), 0) FROM messages WHERE receiver_id = $1",
        {num(user_id)});
    return InboxSize{q.i64(0, 0), q.i64(0, 1)};
  }
  std::string nama_of(int64_t user_id) override {
    Rows q = query("SELECT nama FROM users WHERE id = $1", {num(user_id)});
    if (q.size() != 1) throw DbError("session of a missing user", false);
    return q.str(0, 0);
  }
  void insert_message(int64_t sender_id, const std::string& from_name, const UserRow& to,
                      std::string_view message) override {
    query(
        "INSERT INTO messages (sender_id, receiver_id, msg_from, msg_to, msg, sent_ms) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        {num(sender_id), num(to.id), text(from_name), text(to.nama), bytes(message), num(now())});
  }

  // One statement takes the whole queue: a concurrent DELETE of the same
  // rows waits for this one and then skips them (READ COMMITTED).
  void take_inbox(int64_t user_id, InboxGrouper& groups) override {
    Rows q = query(
        "WITH d AS (DELETE FROM messages WHERE receiver_id = $1 "
        "RETURNING id, sender_id, msg_from, msg_to, msg) "
        "SELECT d.id, u.username, d.msg_from, d.msg_to, d.msg FROM d "
        "JOIN users u ON u.id = d.sender_id ORDER BY d.id",
        {num(user_id)});
    for (int i = 0; i < q.size(); ++i) {
      groups.add(q.str(i, 1), InboxMessage{q.str(i, 2), q.str(i, 3), q.blob(i, 4)});
    }
  }
  std::vector<std::string> live_users() override {
    Rows q = query(
        "SELECT u.username FROM sessions s JOIN users u ON u.id = s.user_id "
        "GROUP BY s.user_id, u.username ORDER BY MIN(s.id)",
        {});
    std::vector<std::string> names;
    for (int i = 0; i < q.size(); ++i) names.push_back(q.str(i, 0));
    return names;
  }
  void logout_user(int64_t user_id) override {
    query("DELETE FROM sessions WHERE user_id = $1", {num(user_id)});
  }
  void ping() override { query("SELECT 1", {}); }
};

}  // namespace

Status PgChatStore::open(const std::string& location, const std::vector<ChatUser>& users,
                         double session_ttl_s, ChatStoreOptions options) {
  if (is_open()) return Status::failure(Errc::kIo, "chat store: already open");
  if (Status s = check_open_args(users, session_ttl_s); !s.ok()) return s;
  char* err = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(location.c_str(), &err);
  if (parsed == nullptr) {
    std::string why = err ? err : "out of memory";
    PQfreemem(err);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return Status::failure(Errc::kIo, "chat store: bad PostgreSQL address: " + why);
  }
  PQconninfoFree(parsed);
  auto db = std::make_unique<PgDb>();
  db->conninfo = location;
  db->users = users;
  db->set(session_ttl_s, options);
  db->connect_timeout_s = options.connect_timeout_s;
  db_ = std::move(db);  // configured: later calls connect again if this one fails
  try {
    db_->ensure();
  } catch (const DbError& e) {
    return Status::failure(Errc::kIo, std::string("chat store: ") + e.what());
  }
  return {};
}

}  // namespace fsrv::services::chat
