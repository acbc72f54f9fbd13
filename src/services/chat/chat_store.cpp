// What both chat store backends share: --chat-db parsing, the backend
// factory, argument checks, token hashing and token generation, the
// session clock, the inbox's grouping and the operations' steps
// (FramedStore, store_frame.hpp).

#include "fsrv/services/chat/chat_store.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <optional>
#include <set>
#include <utility>

#include "fsrv/services/chat/pg_chat_store.hpp"
#include "fsrv/services/chat/sqlite_chat_store.hpp"
#include "fsrv/services/chat/store_frame.hpp"

namespace fsrv::services::chat {

namespace {

// Sessions store BLAKE2b-256 of the token, not the token itself.
constexpr size_t kTokenHashBytes = 32;

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

// Runs `body(r)` on a fresh result `R` (AuthResult, StatusResult, ...) and
// returns it. Not open: `r.error` says so and the outcome stays
// kStoreError. A StoreError thrown by `body`: the result is reset to only
// that error's outcome and text (a failed commit delivers nothing).
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

// store_call for an operation on the session of `token`, in one
// transaction: `db.ensure()`, then `db.session_user(token)` gives the user
// id behind a live token, renewed (0: unknown or expired, kBadToken), and
// `body(r, user_id)` does the rest and returns the outcome. The
// transaction is committed for every outcome; `body` throws to roll back.
template <class R, class Body>
R session_call(StoreDb* db, std::string_view token, Body&& body) {
  return store_call<R>(db != nullptr, [&](R& r) {
    db->ensure();
    Transaction txn(*db);
    const int64_t user_id = db->session_user(token);
    r.outcome = user_id == 0 ? Outcome::kBadToken : body(r, user_id);
    txn.commit();
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
    r.value = ChatDb{ChatDb::Kind::kSqlite, default_db_path(root)};
    return r;
  }
  if (url.starts_with(kSqlitePrefix)) {
    std::string path(url.substr(kSqlitePrefix.size()));
    if (path.empty()) return R::failure(Errc::kBadRequest, "--chat-db sqlite: needs a file path");
    r.value = ChatDb{ChatDb::Kind::kSqlite, std::move(path)};
    return r;
  }
  // libpq's URI prefixes (PostgreSQL 15 docs, section 34.1.1).
  if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    r.value = ChatDb{ChatDb::Kind::kPostgres, std::string(url)};
    return r;
  }
  return R::failure(Errc::kBadRequest, "--chat-db must be sqlite:PATH or postgresql://..., not \"" +
                                           std::string(url) + "\"");
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
  std::set<std::string_view> names;
  for (const ChatUser& u : users) {
    if (std::string why = validate_username(u.username); !why.empty()) {
      return Status::failure(Errc::kIo, "chat store: " + why);
    }
    if (!names.insert(u.username).second) {
      return Status::failure(Errc::kIo, "chat store: duplicate username " + u.username);
    }
    if (!is_password_hash(u.password_hash)) {
      return Status::failure(Errc::kIo,
                             "chat store: user " + u.username + " has no valid password hash");
    }
  }
  return {};
}

std::string token_hash(std::string_view token) {
  std::array<unsigned char, kTokenHashBytes> out{};
  crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(token.data()),
                     token.size(), nullptr, 0);
  return std::string(reinterpret_cast<const char*>(out.data()), out.size());
}

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

void SessionClock::set(double session_ttl_s, const ChatStoreOptions& options) {
  ttl_ms = std::max<int64_t>(1, std::llround(session_ttl_s * 1000.0));
  now_ms = options.now_ms ? options.now_ms : system_now_ms;
}

Status FramedStore::set_users(const std::vector<ChatUser>& users) {
  if (!is_open()) return Status::failure(Errc::kIo, "chat store not open");
  if (Status s = check_open_args(users, kDefaultSessionTtlS); !s.ok()) return s;
  db_->keep_users(users);
  try {
    db_->ensure();
    Transaction txn(*db_);
    db_->sync_users(users);
    txn.commit();
  } catch (const StoreError& e) {
    return Status::failure(Errc::kIo, std::string("chat store: ") + e.what());
  }
  return {};
}

StatusResult FramedStore::ping() {
  return store_call<StatusResult>(is_open(), [&](StatusResult& r) {
    db_->ensure();
    db_->ping();
    r.outcome = Outcome::kOk;
  });
}

AuthResult FramedStore::auth(std::string_view username, std::string_view password) {
  return store_call<AuthResult>(is_open(), [&](AuthResult& r) {
    db_->ensure();
    const std::optional<UserRow> user = db_->find_user(username);
    if (!user) {
      r.outcome = Outcome::kNoSuchUser;
      return;
    }
    if (!verify_password(user->password_hash, password)) {
      r.outcome = Outcome::kWrongPassword;
      return;
    }
    std::string token = new_uuid4();
    Transaction txn(*db_);
    db_->purge_expired();
    if (!db_->insert_session(token_hash(token), user->id)) {
      r.outcome = Outcome::kNoSuchUser;  // rolled back
      return;
    }
    txn.commit();
    r.outcome = Outcome::kOk;
    r.token = std::move(token);
  });
}

StatusResult FramedStore::send(std::string_view token, std::string_view receiver,
                               std::string_view message) {
  return session_call<StatusResult>(db_.get(), token, [&](StatusResult&, int64_t sender_id) {
    const std::optional<UserRow> to = db_->find_user(receiver);
    if (!to) return Outcome::kNoSuchReceiver;  // committed: keeps the session renewal
    const InboxSize queued = db_->inbox_size(to->id);
    if (queued.messages >= kMaxInboxMessages ||
        queued.bytes + static_cast<int64_t>(message.size()) > kMaxInboxBytes) {
      return Outcome::kInboxFull;
    }
    const std::string from_name = db_->nama_of(sender_id);
    db_->insert_message(sender_id, from_name, *to, message);
    return Outcome::kOk;
  });
}

InboxResult FramedStore::inbox(std::string_view token) {
  return session_call<InboxResult>(db_.get(), token, [&](InboxResult& r, int64_t user_id) {
    InboxGrouper groups;
    db_->take_inbox(user_id, groups);
    r.groups = groups.take();
    return Outcome::kOk;
  });
}

ListUserResult FramedStore::listuser(std::string_view token) {
  return session_call<ListUserResult>(db_.get(), token, [&](ListUserResult& r, int64_t) {
    db_->purge_expired();
    r.usernames = db_->live_users();
    return Outcome::kOk;
  });
}

StatusResult FramedStore::logout(std::string_view token) {
  return session_call<StatusResult>(db_.get(), token, [&](StatusResult&, int64_t user_id) {
    db_->logout_user(user_id);
    return Outcome::kOk;
  });
}

void InboxGrouper::add(std::string sender, InboxMessage message) {
  auto it = index_.find(sender);
  if (it == index_.end()) {
    it = index_.emplace(sender, groups_.size()).first;
    groups_.push_back(InboxGroup{std::move(sender), {}});
  }
  groups_[it->second].messages.push_back(std::move(message));
}

std::vector<InboxGroup> InboxGrouper::take() {
  index_.clear();
  return std::exchange(groups_, {});
}

int64_t system_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace fsrv::services::chat
