// The chat service: framing, one request at a time through the service's
// own database threads (DbWorkers), each with its ChatStore (see
// chat_service.hpp).

#include "fsrv/services/chat/chat_service.hpp"

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "fsrv/auth/login_throttle.hpp"
#include "fsrv/core/log.hpp"
#include "fsrv/reactor/log_limiter.hpp"
#include "fsrv/services/chat/chat_options.hpp"
#include "fsrv/services/chat/chat_protocol.hpp"
#include "fsrv/services/chat/chat_store.hpp"
#include "fsrv/services/chat/chat_users.hpp"
#include "fsrv/services/chat/db_workers.hpp"
#include "fsrv/services/kit/stream_session.hpp"
#include "fsrv/services/kit/verb_counters.hpp"
#include "fsrv/storage/storage.hpp"

namespace fsrv::services::chat {

namespace {

using auth::LoginThrottle;
using reactor::Connection;
using reactor::ConnRef;

/// Bytes asked for per socket read. The input buffer holds at most one
/// incomplete line (<= kMaxLineBytes, find_line_end says "too long" past
/// that) plus one read, because reading pauses while a request runs.
constexpr size_t kReadChunk = 16 * 1024;

/// Bytes of an inbox reply encoded at a time: the write queue's high water
/// (reactor::Connection::kHighWater) stops the encoding until the client
/// reads, so a connection holds about that plus one piece, however large
/// the inbox.
constexpr size_t kInboxPiece = 64 * 1024;

/// Counter names per command kind (index = CommandKind).
constexpr std::string_view kVerbs[] = {"unknown", "auth", "send", "inbox", "listuser", "logout"};
constexpr int kVerbCount = static_cast<int>(std::size(kVerbs));
std::string_view verb_name(CommandKind kind) { return kVerbs[static_cast<int>(kind)]; }
using Counters = kit::VerbCounters<verb_name, kVerbCount>;

/// The users of --chat-users `path` (load_users_file), or the demo users
/// when it is "".
Result<std::vector<ChatUser>> users_of(const std::string& path) {
  return path.empty() ? demo_users() : load_users_file(path);
}

class ChatService final : public Service {
 public:
  explicit ChatService(Shared& shared)
      : Service(shared, info()),
        counters(*this),
        too_long(counter("lines_too_long")),
        throttled(counter("logins_throttled")) {
    const Options& options = shared.config->services.get<Options>();
    Result<ChatDb> db = parse_chat_db(options.db, shared.root->path());
    if (!db.ok()) throw std::runtime_error(db.error);
    // Start-up: main validated the users file already.
    Result<std::vector<ChatUser>> users = users_of(options.users);
    if (!users.ok()) throw std::runtime_error("chat users: " + users.error);
    const bool pg = db.value.kind == ChatDb::Kind::kPostgres;
    FSRV_LOG_INFO("chat: state in %s", pg ? "PostgreSQL" : db.value.location.c_str());
    db_ = std::make_unique<DbWorkers>(
        shared.loop, StoreSpec{std::move(db.value), std::move(users.value), options.session_ttl_s});
    // Readiness (the admin service's /healthz): the database answers.
    shared.readiness.push_back({"chat", [this](Shared::ReadyReply reply) { probe(reply); }});
  }
  /// One readiness probe: a ping on a database thread.
  void probe(const Shared::ReadyReply& reply) {
    auto r = std::make_shared<StatusResult>();
    const bool queued =
        db_->submit([r](ChatStore& store) { *r = store.ping(); },
                    [r, reply] {
                      reply(r->outcome == Outcome::kOk,
                            r->outcome == Outcome::kOk ? "database reachable" : r->error);
                    });
    if (!queued) reply(false, "database queue full");
  }

  /// SIGHUP: reads the users file again (or the demo users without one)
  /// and hands the list to the database threads, which sync the users
  /// table before their next request (removed users lose their sessions
  /// and unread messages). A bad file keeps the running users.
  void reload() override {
    const std::string& path = shared_.config->services.get<Options>().users;
    Result<std::vector<ChatUser>> users = users_of(path);
    if (!users.ok()) {
      FSRV_LOG_ERROR("SIGHUP: chat users: %s; the running users stay", users.error.c_str());
      return;
    }
    FSRV_LOG_INFO("SIGHUP: chat users reloaded from %s: %zu users",
                  path.empty() ? "the demo list" : path.c_str(), users.value.size());
    db_->set_users(std::move(users.value));
  }
  DbWorkers& db() { return *db_; }

  /// The outcome of an auth that ran: a failure counts against the
  /// address, logged (rate-limited) when it blocks it.
  void login_done(const std::string& address, bool ok, uint64_t now_ms) {
    if (ok) {
      throttle.succeeded(address);
    } else if (throttle.failed(address, now_ms) && log_limit_.allow(now_ms)) {
      FSRV_LOG_WARN(
          "chat: %d failed logins from %s within %llu s: its logins are refused until "
          "then (%llu similar lines suppressed)",
          LoginThrottle::kMaxFailures, address.c_str(),
          static_cast<unsigned long long>(LoginThrottle::kWindowMs / 1000),
          static_cast<unsigned long long>(log_limit_.take_suppressed()));
    }
  }
  Counters counters;         ///< "chat/commands/VERB/{ok,failed}"
  stats::Counter too_long;   ///< "chat/lines_too_long"
  stats::Counter throttled;  ///< "chat/logins_throttled"
  LoginThrottle throttle;    ///< failed logins per address

 protected:
  std::unique_ptr<reactor::ConnectionHandler> create_handler(Connection& conn) override;

 private:
  std::unique_ptr<DbWorkers> db_;
  reactor::LogLimiter log_limit_;
};

class ChatSession final : public kit::StreamSession {
 public:
  ChatSession(Connection& conn, ChatService& service)
      : StreamSession(conn, kReadChunk), service_(service) {}

  void on_eof() override {
    eof_ = true;
    process_input();
  }
  void on_drain() override { inbox_ ? write_inbox() : process_input(); }
  /// chat-cli.py keeps one connection for the whole session and never
  /// reconnects, and the course server never times out: a quiet connection
  /// stays open (it holds no buffer); a line that never ends is the
  /// connection's request timeout.
  reactor::IdlePolicy idle_policy() const override { return reactor::IdlePolicy::kKeep; }

 private:
  void process_input() override;
  /// Frames one line and runs it; false when no whole line is buffered.
  bool next_request();
  void run(Command cmd);
  /// Writes inbox pieces while the client keeps up (the write queue under
  /// its high water), then waits for on_drain; the next request is read
  /// once the whole reply is queued.
  void write_inbox();

  ChatService& service_;
  std::unique_ptr<InboxReply> inbox_;  ///< an inbox reply still being written
};

std::unique_ptr<reactor::ConnectionHandler> ChatService::create_handler(Connection& conn) {
  return std::make_unique<ChatSession>(conn, *this);
}

void ChatSession::process_input() {
  if (!loop_.pump([this] { return next_request(); })) return;
  // chat_server.py waits for "\r\n"; an unterminated tail at EOF is dropped.
  if (eof_) {
    conn_.close_when_flushed();
  } else {
    conn_.resume_reading();
  }
}

bool ChatSession::next_request() {
  LineEnd end = find_line_end(in_.view());
  if (end.kind != LineEnd::Kind::kNeedMore || in_.empty()) conn_.request_head_done();
  switch (end.kind) {
    case LineEnd::Kind::kNeedMore:
      return false;
    case LineEnd::Kind::kTooLong:
      service_.count(service_.too_long);
      FSRV_LOG_INFO("chat: line over %zu bytes, closing", kMaxLineBytes);
      conn_.write_owned(reply_line_too_long());
      conn_.pause_reading();
      in_.clear();
      loop_.quit();  // closes after the reply; input that still arrives is ignored
      return false;
    case LineEnd::Kind::kLine:
      break;
  }
  Command cmd = parse_line(in_.view().substr(0, end.line_size));
  in_.consume(end.consumed);
  run(std::move(cmd));
  return true;
}

// One request on the executor; reading pauses until its reply is queued, so
// pipelined lines wait in the buffer and replies keep their order.
void ChatSession::run(Command cmd) {
  std::string address;
  if (cmd.kind == CommandKind::kAuth) {
    // Over the failed-login limit: refused before any password is hashed.
    address = conn_.peer();
    address = address.substr(0, address.rfind(':'));
    if (uint64_t wait = service_.throttle.blocked_for(address, conn_.now_ms()); wait > 0) {
      service_.count(service_.throttled);
      service_.counters.count(cmd.kind, false);
      conn_.write_owned(
          reply_error("Terlalu Banyak Login Gagal (too many failed logins from your "
                      "address; try again in " +
                      std::to_string((wait + 999) / 1000) + " s)"));
      return;
    }
  }
  auto reply = std::make_shared<Reply>();
  auto command = std::make_shared<const Command>(std::move(cmd));
  ConnRef ref(&conn_);
  const bool queued = service_.db().submit(
      [reply, command](ChatStore& store) { *reply = execute_reply(store, *command); },
      [this, ref, reply, command, address] {
        // Every OK reply of chat.py starts so (json.dumps keeps key order).
        bool ok = reply->inbox || reply->text.rfind(R"({"status": "OK")", 0) == 0;
        if (command->kind == CommandKind::kAuth) service_.login_done(address, ok, conn_.now_ms());
        if (conn_.closing()) return;
        service_.counters.count(command->kind, ok);
        conn_.write_owned(reply->text);
        if (reply->inbox) {
          inbox_ = std::move(reply->inbox);
          write_inbox();
          return;
        }
        request_done();
      });
  if (!queued) {
    service_.counters.count(command->kind, false);
    conn_.write_owned(reply_error("Server Sibuk (busy: chat database queue full)"));
    return;
  }
  loop_.begin();
  conn_.pause_reading();
}

void ChatSession::write_inbox() {
  while (!conn_.congested()) {
    conn_.write_owned(inbox_->next(kInboxPiece));
    if (inbox_->done()) {
      inbox_.reset();
      request_done();
      return;
    }
  }
}

}  // namespace

const ServiceInfo& info() {
  static const ServiceInfo kInfo{
      "chat",
      "chat (tugas 5): auth, send, inbox, listuser, logout; Python-json replies; SQLite or "
      "PostgreSQL state (--chat-db)",
      {8889},
      "printf 'auth messi surabaya \\r\\n' | nc -q1 127.0.0.1 {port}",
      [](stats::Schema& schema) {
        Counters::register_stats(schema, "chat");
        schema.add("chat/lines_too_long");
        schema.add("chat/logins_throttled");
      },
      [](reactor::Refusal why, int limit) {
        return why == reactor::Refusal::kShuttingDown
                   ? reply_error("Server Sedang Berhenti (shutting down)")
                   : reply_error("Server Sibuk (busy: limit " + std::to_string(limit) +
                                 " connections)");
      },
      [](Shared& shared) -> std::unique_ptr<Service> {
        return std::make_unique<ChatService>(shared);
      },
      Transport::kStream,
      nullptr,
      0,
      add_options};
  return kInfo;
}

}  // namespace fsrv::services::chat
