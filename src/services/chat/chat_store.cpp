// What both chat store backends share: --chat-db parsing, the backend
// factory, argument checks, token hashing and token generation, the
// session clock, and the operations' steps and SQL (ChatStore over a
// StoreDb, store_frame.hpp).

#include "fsrv/services/chat/chat_store.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "fsrv/services/chat/pg_chat_store.hpp"
#include "fsrv/services/chat/sqlite_chat_store.hpp"
#include "fsrv/services/chat/store_frame.hpp"

namespace fsrv::services::chat {

namespace {

// A token is a UUID4 text: 32 hex digits and 4 dashes.
constexpr size_t kTokenLength = 36;

// Longest accepted TTL: 10 years in ms keeps every sum far from int64 limits.
constexpr double kMaxSessionTtlS = 10.0 * 365 * 24 * 3600;

constexpr std::string_view kSqlitePrefix = "sqlite:";

// The tables of both backends; @ID@, @INT@ and @BYTES@ stand for the
// backend's types (SqlTypes).
constexpr std::string_view kSchemaTemplate = R"sql(
CREATE TABLE IF NOT EXISTS users (
  id @ID@,
  username TEXT NOT NULL UNIQUE,
  nama TEXT NOT NULL,
  negara TEXT NOT NULL,
  password_hash TEXT NOT NULL
);
-- id grows with each login: listuser's login order.
CREATE TABLE IF NOT EXISTS sessions (
  id @ID@,
  token_hash @BYTES@ NOT NULL UNIQUE,
  user_id @INT@ NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  last_seen_ms @INT@ NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_id);
CREATE INDEX IF NOT EXISTS sessions_last_seen ON sessions(last_seen_ms);
-- id grows with each send: the delivery order. msg holds bytes so any bytes
-- come back unchanged; the names are copied at send time, as the course
-- server copies them into the queued dict.
CREATE TABLE IF NOT EXISTS messages (
  id @ID@,
  sender_id @INT@ NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  receiver_id @INT@ NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  msg_from TEXT NOT NULL,
  msg_to TEXT NOT NULL,
  msg @BYTES@ NOT NULL,
  sent_ms @INT@ NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_receiver ON messages(receiver_id, id);
CREATE INDEX IF NOT EXISTS messages_sender ON messages(sender_id);
)sql";

// Runs `body(r)` on a fresh result `R` (AuthResult, StatusResult, ...)
// after `db->ensure()`, its outcome what `body` returns. Not open (`db`
// null): `r.error` says so and the outcome stays kStoreError. A StoreError
// thrown by ensure or `body`: the result is reset to only that error's
// outcome and text (a failed commit delivers nothing).
template <class R, class Body>
R store_call(StoreDb* db, Body&& body) {
  R r;
  if (db == nullptr) {
    r.error = "chat store not open";
    return r;
  }
  try {
    db->ensure();
    r.outcome = body(r);
  } catch (const StoreError& e) {
    r = R{};
    r.outcome = e.outcome;
    r.error = e.what();
  }
  return r;
}

// A random UUID version 4 (RFC 4122 section 4.4) from the kernel CSPRNG.
std::string new_uuid4() {
  std::array<unsigned char, 16> b{};
  randombytes_buf(b.data(), b.size());
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);  // variant 10xx
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(kTokenLength);
  for (size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(kHex[b[i] >> 4]);
    s.push_back(kHex[b[i] & 0xF]);
  }
  return s;
}

// The stored form of a token: BLAKE2b-256 (crypto_generichash).
std::string token_hash(std::string_view token) {
  std::array<unsigned char, crypto_generichash_BYTES> out{};
  crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(token.data()),
                     token.size(), nullptr, 0);
  return std::string(reinterpret_cast<const char*>(out.data()), out.size());
}

// The statements of the operations, in the SQL both backends speak
// (SQLite since 3.35 for RETURNING). LENGTH of a BLOB or BYTEA is its bytes.
constexpr const char* kSqlUpsertUser =
    "INSERT INTO users (username, nama, negara, password_hash) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (username) DO UPDATE SET nama = excluded.nama, negara = excluded.negara, "
    "password_hash = excluded.password_hash";
constexpr const char* kSqlAllUsers = "SELECT id, username FROM users";
constexpr const char* kSqlDeleteUser = "DELETE FROM users WHERE id = $1";
constexpr const char* kSqlUserByName =
    "SELECT id, nama, password_hash FROM users WHERE username = $1";
constexpr const char* kSqlNamaById = "SELECT nama FROM users WHERE id = $1";
// One UPDATE decides and renews, so two nodes never both see a token live
// that has expired.
constexpr const char* kSqlRenewSession =
    "UPDATE sessions SET last_seen_ms = $2 WHERE token_hash = $1 AND last_seen_ms >= $3 "
    "RETURNING user_id";
constexpr const char* kSqlDeleteSession = "DELETE FROM sessions WHERE token_hash = $1";
constexpr const char* kSqlPurgeSessions = "DELETE FROM sessions WHERE last_seen_ms < $1";
constexpr const char* kSqlInsertSession =
    "INSERT INTO sessions (token_hash, user_id, last_seen_ms) "
    "SELECT $1, id, $3 FROM users WHERE id = $2 RETURNING id";
constexpr const char* kSqlInboxSize =
    "SELECT COUNT(*), COALESCE(SUM(LENGTH(msg)), 0) FROM messages WHERE receiver_id = $1";
constexpr const char* kSqlInsertMessage =
    "INSERT INTO messages (sender_id, receiver_id, msg_from, msg_to, msg, sent_ms) "
    "VALUES ($1, $2, $3, $4, $5, $6)";
constexpr const char* kSqlTakeInbox =
    "DELETE FROM messages WHERE receiver_id = $1 RETURNING id, "
    "(SELECT username FROM users WHERE users.id = messages.sender_id), msg_from, msg_to, msg";
constexpr const char* kSqlLiveUsers =
    "SELECT u.username FROM sessions s JOIN users u ON u.id = s.user_id "
    "GROUP BY s.user_id, u.username ORDER BY MIN(s.id)";
constexpr const char* kSqlLogoutUser = "DELETE FROM sessions WHERE user_id = $1";

int64_t to_i64(const std::string& column) { return std::stoll(column); }

// A user's row as auth and send find it by username.
struct UserRow {
  int64_t id = 0;
  std::string nama;           // full name
  std::string password_hash;  // crypto_pwhash_str
};

std::optional<UserRow> find_user(StoreDb& db, std::string_view username) {
  // A name no user can have (not UTF-8, a NUL) never reaches a TEXT parameter.
  if (!validate_username(username).empty()) return std::nullopt;
  std::vector<SqlRow> rows = db.query(kSqlUserByName, {sql_text(username)});
  if (rows.empty()) return std::nullopt;
  return UserRow{to_i64(rows[0][0]), std::move(rows[0][1]), std::move(rows[0][2])};
}

// The user id behind a live token, renewed; 0 if unknown or expired (an
// expired row is deleted).
int64_t session_user(StoreDb& db, std::string_view token) {
  if (token.size() != kTokenLength) return 0;
  const int64_t t = db.now_ms();
  const std::string hash = token_hash(token);
  std::vector<SqlRow> rows =
      db.query(kSqlRenewSession, {sql_bytes(hash), sql_int(t), sql_int(t - db.ttl_ms)});
  if (!rows.empty()) return to_i64(rows[0][0]);
  db.query(kSqlDeleteSession, {sql_bytes(hash)});
  return 0;
}

// store_call for an operation on the session of `token`, in one
// transaction: session_user() gives the user id behind a live token,
// renewed (0: unknown or expired, kBadToken), and `body(r, user_id)` does
// the rest and returns the outcome. The transaction is committed for every
// outcome; `body` throws to roll back.
template <class R, class Body>
R session_call(StoreDb* db, std::string_view token, Body&& body) {
  return store_call<R>(db, [&](R& r) {
    Transaction txn(*db);
    const int64_t user_id = session_user(*db, token);
    const Outcome outcome = user_id == 0 ? Outcome::kBadToken : body(r, user_id);
    txn.commit();
    return outcome;
  });
}

}  // namespace

std::string default_db_path(const std::string& root) {
  std::string base = root.empty() ? std::string(".") : root;
  if (base.back() != '/') base.push_back('/');
  return base + ".chat/chat.db";
}

Result<ChatDb> parse_chat_db(std::string_view url, const std::string& root) {
  using R = Result<ChatDb>;
  R r;
  if (url.empty()) {
    r.value = {ChatDb::Kind::kSqlite, default_db_path(root)};
  } else if (url.starts_with(kSqlitePrefix)) {
    r.value = {ChatDb::Kind::kSqlite, std::string(url.substr(kSqlitePrefix.size()))};
    if (r.value.location.empty()) {
      return R::failure(Errc::kBadRequest, "--chat-db sqlite: needs a file path");
    }
  } else if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    // libpq's URI prefixes (PostgreSQL 15 docs, section 34.1.1).
    r.value = {ChatDb::Kind::kPostgres, std::string(url)};
  } else {
    return R::failure(
        Errc::kBadRequest,
        "--chat-db must be sqlite:PATH or postgresql://..., not \"" + std::string(url) + "\"");
  }
  return r;
}

std::unique_ptr<ChatStore> make_chat_store(ChatDb::Kind kind) {
  if (kind == ChatDb::Kind::kPostgres) return std::make_unique<PgChatStore>();
  return std::make_unique<SqliteChatStore>();
}

Status check_open_args(const std::vector<ChatUser>& users, double session_ttl_s) {
  if (!(session_ttl_s > 0) || session_ttl_s > kMaxSessionTtlS) {
    return Status::failure(Errc::kIo, "chat store: session TTL must be > 0 and at most 10 years");
  }
  if (users.empty()) return Status::failure(Errc::kIo, "chat store: no users");
  if (sodium_init() < 0) return Status::failure(Errc::kIo, "chat store: sodium_init failed");
  std::set<std::string, std::less<>> seen;
  for (size_t i = 0; i < users.size(); ++i) {
    if (std::string why = check_user(users[i], seen); !why.empty()) {
      return Status::failure(Errc::kIo, "chat store: user #" + std::to_string(i) + ": " + why);
    }
  }
  return {};
}

void check_schema_version(int64_t version) {
  if (version <= kSchemaVersion) return;
  throw StoreError("database schema version " + std::to_string(version) +
                   " is newer than this program's " + std::to_string(kSchemaVersion));
}

std::string chat_schema(const SqlTypes& types) {
  const std::pair<std::string_view, std::string_view> subst[] = {
      {"@ID@", types.id}, {"@INT@", types.integer}, {"@BYTES@", types.bytes}};
  std::string out(kSchemaTemplate);
  for (const auto& [key, value] : subst) {
    for (size_t at = out.find(key); at != std::string::npos;
         at = out.find(key, at + value.size())) {
      out.replace(at, key.size(), value);
    }
  }
  return out;
}

void StoreDb::set(double session_ttl_s, const ChatStoreOptions& options) {
  ttl_ms = std::max<int64_t>(1, std::llround(session_ttl_s * 1000.0));
  now_ms = options.now_ms;
  if (!now_ms) {
    now_ms = [] {
      using namespace std::chrono;
      return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
    };
  }
}

std::vector<SqlRow> StoreDb::take_inbox(int64_t user_id) {
  return query(kSqlTakeInbox, {sql_int(user_id)});
}

void sync_users(StoreDb& db, const std::vector<ChatUser>& users) {
  std::set<std::string_view> names;
  for (const ChatUser& u : users) {
    names.insert(u.username);
    db.query(kSqlUpsertUser, {sql_text(u.username), sql_text(u.nama), sql_text(u.negara),
                              sql_text(u.password_hash)});
  }
  for (const SqlRow& row : db.query(kSqlAllUsers, {})) {
    if (!names.contains(row[1])) db.query(kSqlDeleteUser, {sql_int(to_i64(row[0]))});
  }
}

ChatStore::ChatStore() = default;
ChatStore::~ChatStore() = default;

Status ChatStore::set_users(const std::vector<ChatUser>& users) {
  if (!is_open()) return Status::failure(Errc::kIo, "chat store not open");
  if (Status s = check_open_args(users, kDefaultSessionTtlS); !s.ok()) return s;
  db_->keep_users(users);
  const StatusResult r = store_call<StatusResult>(db_.get(), [&](StatusResult&) {
    Transaction txn(*db_);
    sync_users(*db_, users);
    txn.commit();
    return Outcome::kOk;
  });
  if (r.outcome == Outcome::kOk) return {};
  return Status::failure(Errc::kIo, "chat store: " + r.error);
}

StatusResult ChatStore::ping() {
  return store_call<StatusResult>(db_.get(), [&](StatusResult&) {
    db_->query("SELECT 1", {});
    return Outcome::kOk;
  });
}

AuthResult ChatStore::auth(std::string_view username, std::string_view password) {
  return store_call<AuthResult>(db_.get(), [&](AuthResult& r) {
    const std::optional<UserRow> user = find_user(*db_, username);
    if (!user) return Outcome::kNoSuchUser;
    if (!verify_password(user->password_hash, password)) return Outcome::kWrongPassword;
    std::string token = new_uuid4();
    Transaction txn(*db_);
    db_->query(kSqlPurgeSessions, {sql_int(db_->now_ms() - db_->ttl_ms)});
    // No row when the user was deleted meanwhile (a users reload): rolled back.
    if (db_->query(kSqlInsertSession,
                   {sql_bytes(token_hash(token)), sql_int(user->id), sql_int(db_->now_ms())})
            .empty()) {
      return Outcome::kNoSuchUser;
    }
    txn.commit();
    r.token = std::move(token);
    return Outcome::kOk;
  });
}

StatusResult ChatStore::send(std::string_view token, std::string_view receiver,
                             std::string_view message) {
  return session_call<StatusResult>(db_.get(), token, [&](StatusResult&, int64_t sender_id) {
    const std::optional<UserRow> to = find_user(*db_, receiver);
    if (!to) return Outcome::kNoSuchReceiver;  // committed: keeps the session renewal
    const SqlRow queued = db_->query(kSqlInboxSize, {sql_int(to->id)}).at(0);
    if (to_i64(queued[0]) >= kMaxInboxMessages ||
        to_i64(queued[1]) + static_cast<int64_t>(message.size()) > kMaxInboxBytes) {
      return Outcome::kInboxFull;
    }
    const std::vector<SqlRow> from = db_->query(kSqlNamaById, {sql_int(sender_id)});
    if (from.empty()) throw StoreError("session of a missing user");
    db_->query(kSqlInsertMessage, {sql_int(sender_id), sql_int(to->id), sql_text(from[0][0]),
                                   sql_text(to->nama), sql_bytes(message), sql_int(db_->now_ms())});
    return Outcome::kOk;
  });
}

InboxResult ChatStore::inbox(std::string_view token) {
  return session_call<InboxResult>(db_.get(), token, [&](InboxResult& r, int64_t user_id) {
    std::vector<SqlRow> rows = db_->take_inbox(user_id);
    // Rows in no set order (RETURNING has none): the delivery order is the id's.
    std::ranges::sort(rows, {}, [](const SqlRow& row) { return to_i64(row[0]); });
    std::map<std::string_view, size_t> index;  // sender -> position in r.groups
    for (SqlRow& row : rows) {
      auto [it, added] = index.try_emplace(row[1], r.groups.size());
      if (added) r.groups.push_back(InboxGroup{row[1], {}});
      r.groups[it->second].messages.push_back(
          InboxMessage{std::move(row[2]), std::move(row[3]), std::move(row[4])});
    }
    return Outcome::kOk;
  });
}

ListUserResult ChatStore::listuser(std::string_view token) {
  return session_call<ListUserResult>(db_.get(), token, [&](ListUserResult& r, int64_t) {
    db_->query(kSqlPurgeSessions, {sql_int(db_->now_ms() - db_->ttl_ms)});
    for (SqlRow& row : db_->query(kSqlLiveUsers, {})) r.usernames.push_back(std::move(row[0]));
    return Outcome::kOk;
  });
}

StatusResult ChatStore::logout(std::string_view token) {
  return session_call<StatusResult>(db_.get(), token, [&](StatusResult&, int64_t user_id) {
    db_->query(kSqlLogoutUser, {sql_int(user_id)});
    return Outcome::kOk;
  });
}

}  // namespace fsrv::services::chat
