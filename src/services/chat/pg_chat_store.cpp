// Chat state in PostgreSQL through libpq (see pg_chat_store.hpp for the
// transaction design and the reconnect rule).
//
// Inside this file every failed libpq call throws StoreError; each public
// operation catches it at its boundary (the open transaction is rolled back
// by Transaction's destructor) and reports kStoreError, or kUnavailable when
// the connection itself is gone.

#include "fsrv/services/chat/pg_chat_store.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fsrv/services/chat/store_frame.hpp"

namespace fsrv::services::chat {

namespace {

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

// libpq's type id of BYTEA (PostgreSQL's catalog/pg_type.dat): a result
// column that comes back hex-encoded.
constexpr Oid kByteaOid = 17;

/// `why` without the line ends and spaces libpq's messages end with.
std::string trimmed(std::string why) {
  while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
  return why;
}

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
    throw StoreError("database unavailable: " + why, Outcome::kUnavailable);
  }

  void schedule_retry(const std::string& why) {
    drop();
    last_error = why;
    backoff_ms = backoff_ms == 0 ? kPgRetryMinMs : std::min(backoff_ms * 2, kPgRetryMaxMs);
    next_attempt = std::chrono::steady_clock::now() + std::chrono::milliseconds(backoff_ms);
  }

  // A live, set-up connection, or a kUnavailable StoreError at once while
  // the backoff runs.
  void ensure() override {
    if (conn != nullptr && ready && PQstatus(conn) == CONNECTION_OK) return;
    drop();
    if (backoff_ms > 0 && std::chrono::steady_clock::now() < next_attempt) {
      throw StoreError("database unavailable (retrying): " + last_error, Outcome::kUnavailable);
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
    } catch (const StoreError& e) {
      // A newer schema: retried, not hammered.
      if (e.outcome != Outcome::kUnavailable) schedule_retry(e.what());
      throw;
    }
    ready = true;
    backoff_ms = 0;
  }

  // `r` when it succeeded; else `r` is cleared and the right StoreError
  // thrown.
  PGresult* checked(PGresult* r) {
    const ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
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
    throw StoreError("query: " + msg);
  }

  // PQexec: `sql` may hold several statements (the schema).
  void exec_simple(const char* sql) { PQclear(checked(PQexec(conn, sql))); }

  // Integers and text go as text (C strings: libpq reads a text parameter
  // up to its NUL), bytes in binary (any bytes, NUL included, pass
  // unchanged); results come as text, BYTEA decoded here.
  std::vector<SqlRow> query(const char* sql, std::initializer_list<SqlParam> params) override {
    std::vector<std::string> owned;
    owned.reserve(params.size());  // values[] points into it
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    for (const SqlParam& p : params) {
      const std::string& v = owned.emplace_back(
          p.kind == SqlParam::Kind::kInt ? std::to_string(p.number) : std::string(p.text));
      values.push_back(v.c_str());
      lengths.push_back(static_cast<int>(v.size()));
      formats.push_back(p.kind == SqlParam::Kind::kBytes ? 1 : 0);
    }
    std::unique_ptr<PGresult, void (*)(PGresult*)> r(
        checked(PQexecParams(conn, sql, static_cast<int>(params.size()), nullptr, values.data(),
                             lengths.data(), formats.data(), 0)),
        PQclear);
    std::vector<SqlRow> rows(PQntuples(r.get()), SqlRow(PQnfields(r.get())));
    for (int i = 0; i < static_cast<int>(rows.size()); ++i) {
      for (int c = 0; c < static_cast<int>(rows[i].size()); ++c) {
        const char* v = PQgetvalue(r.get(), i, c);
        if (PQftype(r.get(), c) != kByteaOid) {
          rows[i][c].assign(v, PQgetlength(r.get(), i, c));
          continue;
        }
        size_t n = 0;
        unsigned char* p = PQunescapeBytea(reinterpret_cast<const unsigned char*>(v), &n);
        if (p == nullptr) throw StoreError("cannot decode a bytea value");
        rows[i][c].assign(reinterpret_cast<const char*>(p), n);
        PQfreemem(p);
      }
    }
    return rows;
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
    query("SELECT pg_advisory_xact_lock($1)", {sql_int(kSetupLockKey)});
    exec_simple("CREATE TABLE IF NOT EXISTS chat_schema_version (version INTEGER NOT NULL)");
    const int64_t version =
        std::stoll(query("SELECT COALESCE(max(version), 0) FROM chat_schema_version", {})[0][0]);
    check_schema_version(version);
    if (version < kSchemaVersion) {
      exec_simple(chat_schema(kPgTypes).c_str());
      exec_simple("DELETE FROM chat_schema_version");
      query("INSERT INTO chat_schema_version (version) VALUES ($1)", {sql_int(kSchemaVersion)});
    }
    sync_users(*this, users);
    txn.commit();
  }

  // setup() on a reconnect syncs the kept list.
  void keep_users(const std::vector<ChatUser>& list) override { users = list; }
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
    return Status::failure(Errc::kIo, "chat store: bad PostgreSQL address: " + trimmed(why));
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
  } catch (const StoreError& e) {
    return Status::failure(Errc::kIo, std::string("chat store: ") + e.what());
  }
  return {};
}

}  // namespace fsrv::services::chat
