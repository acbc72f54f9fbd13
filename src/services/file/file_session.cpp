#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "fsrv/auth/authenticator.hpp"
#include "fsrv/codec/base64.hpp"
#include "fsrv/core/access_log.hpp"
#include "fsrv/core/limits.hpp"
#include "fsrv/core/log.hpp"
#include "fsrv/services/file/file_service.hpp"
#include "fsrv/services/file/reply.hpp"
#include "fsrv/services/file/request.hpp"
#include "fsrv/services/kit/input_buffer.hpp"
#include "fsrv/services/kit/login.hpp"
#include "fsrv/services/kit/payload_reader.hpp"
#include "fsrv/services/kit/verb_counters.hpp"
#include "fsrv/storage/storage.hpp"
#include "fsrv/transfer/file_sender.hpp"
#include "fsrv/transfer/upload_sink.hpp"

namespace fsrv::services::file {

namespace {

using reactor::Connection;
using reactor::ConnRef;

/// Pipelined requests answered in one turn of the loop before the session
/// yields it (Connection::yield_turn): with 100 clients flooding requests,
/// a new client is still accepted and answered within milliseconds.
constexpr int kRequestsPerTurn = 64;

/// A streamed LIST is written in pieces of about this many bytes, and at
/// most kListBytesPerTurn per loop turn (then it yields, or waits for the
/// socket when congested): a 10 MB listing never sits in one buffer.
constexpr size_t kListPiece = 16 * 1024;
constexpr size_t kListBytesPerTurn = 256 * 1024;

/// The file service: one per serving process, shared by its listeners.
using Counters = kit::VerbCounters<cmd_name, kCmdCount>;

class FileService final : public Service {
 public:
  explicit FileService(Shared& shared) : Service(shared, info()), counters_(*this) {}
  void count(Cmd cmd, bool ok) { counters_.count(cmd, ok); }

 protected:
  std::unique_ptr<reactor::ConnectionHandler> create_handler(Connection& conn) override;

 private:
  Counters counters_;
};

class FileSession final : public reactor::ConnectionHandler {
 public:
  FileSession(Connection& conn, FileService& service)
      : conn_(conn), service_(service), shared_(service.shared()), config_(*shared_.config) {}

  std::span<char> read_space() override;
  void on_read(size_t n) override;
  void on_eof() override;
  void on_timer() override;
  void on_idle_timeout() override;
  void on_too_slow() override;
  void on_request_timeout() override;
  void on_drain() override {
    if (list_) {
      pump_list();
    } else {
      process_input();
    }
  }
  void on_shutdown() override;
  void on_close() override;

 private:
  enum class State { kIdle, kBusy, kPayload, kDiscard };

  std::string_view input() const { return in_.view(); }
  void consume(size_t n) { in_.consume(n); }
  bool input_blank() const { return in_.blank(); }

  void process_input();
  void handle_request(const Request& req);
  void begin(Cmd cmd);
  /// Ends the open request: counted, and its access log line written with
  /// `reply_bytes` more (a reply about to be queued).
  void finish(Cmd cmd, bool ok, size_t reply_bytes = 0);
  void reply_now(Cmd cmd, bool ok, std::string reply);
  void request_done();
  void start_discard(Cmd cmd, std::string error);

  void run_simple(Cmd cmd, std::function<std::pair<bool, std::string>()> work);
  void start_get(const std::string& name);
  void start_list();
  void abort_request(const std::string& why);
  void pump_list();
  void start_upload(std::string name);
  /// AUTH user password: role_ once the --users account checks out.
  void start_auth(const std::string& user, const std::string& password);
  void payload_step(kit::PayloadReader::Step step);

  Connection& conn_;
  FileService& service_;
  Shared& shared_;
  const ServerConfig& config_;
  State state_ = State::kIdle;
  kit::InputBuffer in_;
  bool eof_ = false;
  bool quit_ = false;
  bool request_open_ = false;
  Cmd current_ = Cmd::kUnknown;
  std::string discard_error_;
  std::shared_ptr<transfer::FileSender> get_;
  /// A LIST being streamed: the shared snapshot and the next name to write.
  struct ListStream {
    std::shared_ptr<const std::vector<std::string>> names;
    size_t next = 0;
  };
  std::unique_ptr<ListStream> list_;
  /// What only an UPLOAD needs, made at the connection's first UPLOAD and
  /// kept until it closes (most connections never upload: an idle one
  /// does not carry it).
  struct Upload {
    Upload(Connection& conn, kit::InputBuffer& in) : payload(conn, in) {}
    kit::PayloadReader payload;  ///< the base64, up to its line's end
    std::string name;
    /// The payload's first kUploadLookahead bytes: why a decode failed.
    std::string head;
  };
  std::unique_ptr<Upload> upload_;
  bool payload_active() const { return upload_ && upload_->payload.active(); }
  void cancel_payload() {
    if (upload_) upload_->payload.cancel();
  }
  Upload& upload() {
    if (!upload_) {
      upload_ = std::make_unique<Upload>(conn_, in_);
      upload_->payload.observe = [this](std::string_view bytes) {
        std::string& head = upload_->head;
        if (head.size() < kUploadLookahead) {
          head.append(bytes.substr(0, kUploadLookahead - head.size()));
        }
      };
    }
    return *upload_;
  }
  /// The access log's view of the open request: its name, and the
  /// connection's byte counts and the time when it began.
  std::string log_name_;
  /// The account this connection authenticated as (AUTH), for the policy.
  Role role_ = Role::kAnonymous;
  uint64_t log_in_ = 0;
  uint64_t log_out_ = 0;
  std::chrono::steady_clock::time_point log_started_;
};

// ---------------------------------------------------------------- service

std::unique_ptr<reactor::ConnectionHandler> FileService::create_handler(Connection& conn) {
  return std::make_unique<FileSession>(conn, *this);
}

// ---------------------------------------------------------------- input

std::span<char> FileSession::read_space() {
  return payload_active() ? upload_->payload.read_space() : in_.space(limits::kLineBuffer);
}

void FileSession::on_read(size_t n) {
  if (payload_active()) {
    payload_step(upload_->payload.on_read(n));
    return;
  }
  in_.produced(n);
  process_input();
}

void FileSession::on_eof() {
  eof_ = true;
  if (state_ == State::kPayload || state_ == State::kDiscard) {
    // An UPLOAD is complete only when its terminator arrives: however valid
    // its base64 so far, one cut short by EOF is interrupted and discarded.
    std::string why = state_ == State::kDiscard
                          ? discard_error_
                          : "upload interrupted: connection closed before the end of the line";
    cancel_payload();
    finish(current_, false);
    if (!why.empty()) conn_.write_owned(error_text(why));
    conn_.close_when_flushed();
    return;
  }
  if (state_ == State::kIdle) process_input();
}

void FileSession::on_timer() {
  if (state_ != State::kIdle || input_blank()) return;
  // The course's original client sends "LIST" or "GET name" with no
  // terminator and waits for the reply (docs/PROTOCOL.md, legacy clients;
  // hardening point 8: on_silence).
  Request req;
  if (on_silence(input(), &req) == Silence::kWait) return;
  consume(input().size());
  handle_request(req);
  process_input();
}

void FileSession::on_idle_timeout() {
  abort_request("idle timeout: no data for " +
                std::to_string(static_cast<int>(config_.idle_timeout_s)) + " s");
}

// The payload or reply moved slower than --min-rate over its window.
void FileSession::on_too_slow() {
  char why[128];
  snprintf(why, sizeof why, "too slow: under %.0f bytes/s over %.0f s", config_.min_rate,
           config_.min_rate_window_s);
  abort_request(why);
}

// A request line not complete within --request-timeout of its first byte
// (slowloris): the client is told, the connection closes.
void FileSession::on_request_timeout() {
  if (state_ == State::kPayload) return;  // a transfer: min_rate's business
  conn_.stop_timer();
  char why[96];
  snprintf(why, sizeof why, "request timeout: line not complete within %g s",
           config_.request_timeout_s);
  if (state_ == State::kIdle) {
    reply_now(Cmd::kUnknown, false, error_text(why));
    conn_.close_when_flushed();
  } else {
    abort_request(why);
  }
}

// Ends the connection on a limit: the request in progress fails, the client
// is told why (unless a reply is already streaming: an ERROR object cannot
// be spliced into it), the connection closes.
void FileSession::abort_request(const std::string& why) {
  if ((get_ && get_->sent() > 0) || list_) {
    conn_.close();
    return;
  }
  if (request_open_) finish(current_, false);
  cancel_payload();
  conn_.write_owned(error_text(why));
  conn_.close_when_flushed();
}

void FileSession::on_shutdown() {
  quit_ = true;
  if (state_ == State::kIdle) conn_.close_when_flushed();
}

void FileSession::on_close() {
  if (request_open_) finish(current_, false);
  if (get_) get_->cancel();
  get_.reset();
  list_.reset();
  cancel_payload();  // the temporary file goes with the last task
}

// ---------------------------------------------------------------- requests

void FileSession::begin(Cmd cmd) {
  current_ = cmd;
  request_open_ = true;
  log_in_ = conn_.bytes_read();
  log_out_ = conn_.bytes_written() + conn_.pending_bytes();
  log_started_ = std::chrono::steady_clock::now();
  conn_.stop_timer();
}

void FileSession::finish(Cmd cmd, bool ok, size_t reply_bytes) {
  conn_.set_transfer(false);
  if (!request_open_) return;
  request_open_ = false;
  service_.count(cmd, ok);
  service_.observe_duration(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - log_started_).count());
  if (log::access_enabled()) {
    log::access_request(
        "file", conn_.peer(), cmd_name(cmd), log_name_, ok,
        conn_.bytes_read() - log_in_ + conn_.bytes_written() + conn_.pending_bytes() - log_out_ +
            reply_bytes,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - log_started_).count());
  }
  log_name_.clear();
}

// Counts before writing: the write may reach the client at once, and a
// client that has its reply must find the request counted in STATS.
void FileSession::reply_now(Cmd cmd, bool ok, std::string reply) {
  begin(cmd);
  finish(cmd, ok, reply.size());
  conn_.write_owned(reply);
}

void FileSession::request_done() {
  state_ = State::kIdle;
  if (conn_.closing()) return;
  if (quit_) {
    conn_.close_when_flushed();
    return;
  }
  process_input();
}

void FileSession::start_discard(Cmd cmd, std::string error) {
  begin(cmd);
  state_ = State::kDiscard;
  discard_error_ = std::move(error);
}

void FileSession::process_input() {
  int handled = 0;
  while (!conn_.closing() && !quit_) {
    if (state_ == State::kDiscard) {
      size_t t = find_terminator(input());
      if (t == std::string_view::npos) {
        consume(input().size());
        break;
      }
      consume(t + 1);
      state_ = State::kIdle;
      finish(current_, false);
      if (!discard_error_.empty()) conn_.write_owned(error_text(discard_error_));
      continue;
    }
    if (state_ != State::kIdle) return;
    if (conn_.congested()) {
      conn_.pause_reading();  // on_drain() resumes
      return;
    }
    if (handled == kRequestsPerTurn) {
      conn_.yield_turn();  // on_drain() next turn
      return;
    }
    Frame f = next_frame(input());
    if (f.kind == Frame::kNeedMore) {
      consume(f.consumed);
      // A request line must be complete within --request-timeout of its
      // first byte (the connection's request timer: on_request_timeout).
      if (input().empty()) conn_.request_head_done();
      break;
    }
    conn_.request_head_done();
    if (f.kind == Frame::kTooLong) {
      // Answered now, not once the line ends (it can be megabytes of base64
      // a client sends before it reads); the rest is dropped silently.
      conn_.stop_timer();
      reply_now(Cmd::kUnknown, false,
                error_text(!f.error.empty() ? f.error
                                            : "request line too long (limit " +
                                                  std::to_string(limits::kMaxLine) + " bytes)"));
      state_ = State::kDiscard;
      discard_error_.clear();
      continue;
    }
    if (f.kind == Frame::kUploadHeader) {
      consume(f.consumed);
      start_upload(std::move(f.name));
      return;
    }
    Request req = parse_line(f.line);
    consume(f.consumed);
    handle_request(req);
    ++handled;
  }
  if (conn_.closing() || quit_ || state_ != State::kIdle) return;
  if (eof_) {
    if (!input_blank()) {
      // A final unterminated request before the client's half-close.
      std::string_view rest = input();  // starts non-blank: next_frame skipped blanks
      if (command_from_verb(rest.substr(0, rest.find_first_of(" \t\r\n"))) == Cmd::kUpload) {
        consume(rest.size());
        reply_now(Cmd::kUpload, false,
                  error_text("upload interrupted: connection closed before the end of the line"));
      } else {
        Request req = parse_line(rest);
        consume(rest.size());
        handle_request(req);
        if (state_ != State::kIdle) return;  // request_done() comes back here
      }
    }
    conn_.close_when_flushed();
    return;
  }
  if (!input_blank() && config_.legacy_idle_ms > 0) {
    conn_.start_timer(static_cast<uint64_t>(config_.legacy_idle_ms));
  }
  conn_.resume_reading();
}

void FileSession::handle_request(const Request& req) {
  log_name_ = req.args.empty() ? std::string() : req.args[0];
  if (!req.error.empty()) {
    reply_now(req.cmd, false, error_text(req.error));
    return;
  }
  if (req.cmd == Cmd::kAuth) {
    start_auth(req.args[0], req.args[1]);
    return;
  }
  if (req.cmd != Cmd::kPing && req.cmd != Cmd::kQuit) {
    Access access = req.cmd == Cmd::kDelete ? Access::kDelete : Access::kRead;
    if (Refusal r = service_.policy().refuse(access, role_); r != Refusal::kNone) {
      reply_now(req.cmd, false, error_text(refusal_text(r, access)));
      return;
    }
  }
  const storage::Root* root = shared_.root;
  switch (req.cmd) {
    case Cmd::kList:
      start_list();
      return;
    case Cmd::kGet:
      start_get(req.args[0]);
      return;
    case Cmd::kSize:
      run_simple(Cmd::kSize, [root, name = req.args[0]] {
        auto r = root->size(name);
        return r.ok() ? std::pair{true, ok_size(name, r.value)}
                      : std::pair{false, error_text(error_message(r.status(), name))};
      });
      return;
    case Cmd::kDelete:
      run_simple(Cmd::kDelete, [root, name = req.args[0]] {
        Status s = root->remove(name);
        return s.ok() ? std::pair{true, ok_text(name + " deleted")}
                      : std::pair{false, error_text(error_message(s, name))};
      });
      return;
    case Cmd::kStats:
      reply_now(Cmd::kStats, true, ok_json(shared_.stats_json()));
      return;
    case Cmd::kPing:
      reply_now(Cmd::kPing, true, ok_text("connected"));
      return;
    case Cmd::kQuit:
      reply_now(Cmd::kQuit, true, ok_text("bye"));
      quit_ = true;
      conn_.close_when_flushed();
      return;
    case Cmd::kUpload:
      // next_frame() turns every "UPLOAD name <payload>" into a streamed
      // upload; a whole UPLOAD line only reaches here through the legacy or
      // half-close paths, which refuse uploads before calling us.
      reply_now(Cmd::kUpload, false, error_text("UPLOAD must end with \\r\\n"));
      return;
    default:
      reply_now(Cmd::kUnknown, false, error_text("unknown command"));
      return;
  }
}

void FileSession::run_simple(Cmd cmd, std::function<std::pair<bool, std::string>()> work) {
  begin(cmd);
  state_ = State::kBusy;
  conn_.pause_reading();
  auto result = std::make_shared<std::pair<bool, std::string>>();
  ConnRef ref(&conn_);
  shared_.executor->submit([result, work = std::move(work)] { *result = work(); },
                           [this, ref, result, cmd] {
                             if (conn_.closing()) return;
                             finish(cmd, result->first, result->second.size());
                             conn_.write_owned(result->second);
                             request_done();
                           });
}

// ---------------------------------------------------------------- AUTH

void FileSession::start_auth(const std::string& user, const std::string& password) {
  bool started =
      kit::start_login(conn_, service_, user, password, [this, user](auth::LoginOutcome outcome) {
        bool ok = outcome.error.empty();
        if (ok) role_ = outcome.role;
        std::string reply = ok ? ok_text("authenticated as " + user + " (role " +
                                         std::string(role_name(role_)) + ")")
                               : error_text("AUTH: " + outcome.error);
        finish(Cmd::kAuth, ok, reply.size());
        conn_.write_owned(std::move(reply));
        request_done();
      });
  if (!started) {
    reply_now(Cmd::kAuth, false, error_text("AUTH: " + std::string(kit::kNoAccounts)));
    return;
  }
  begin(Cmd::kAuth);
  state_ = State::kBusy;
  conn_.pause_reading();
}

// ---------------------------------------------------------------- LIST

// LIST streams (hardening issue, point 5): the listing is a snapshot shared
// by every connection listing the same unchanged directory
// (Root::list_shared), written as JSON in pieces while the socket keeps up.
void FileSession::start_list() {
  begin(Cmd::kList);
  state_ = State::kBusy;
  conn_.pause_reading();
  auto r = std::make_shared<Result<std::shared_ptr<const std::vector<std::string>>>>();
  const storage::Root* root = shared_.root;
  ConnRef ref(&conn_);
  shared_.executor->submit([r, root] { *r = root->list_shared(); },
                           [this, ref, r] {
                             if (conn_.closing()) return;
                             if (!r->ok()) {
                               finish(Cmd::kList, false);
                               conn_.write_owned(error_text(error_message(r->status(), "")));
                               request_done();
                               return;
                             }
                             conn_.set_transfer(true);
                             list_ = std::make_unique<ListStream>();
                             list_->names = std::move(r->value);
                             conn_.write_owned(kListPrefix);
                             pump_list();
                           });
}

void FileSession::pump_list() {
  const std::vector<std::string>& names = *list_->names;
  size_t produced = 0;
  std::string piece;
  while (list_->next < names.size() && !conn_.congested() && produced < kListBytesPerTurn) {
    piece.clear();
    while (piece.size() < kListPiece && list_->next < names.size()) {
      if (list_->next > 0) piece += ',';
      piece += json_quoted(names[list_->next++]);
    }
    conn_.write_owned(piece);
    produced += piece.size();
  }
  if (list_->next == names.size()) {
    list_.reset();
    finish(Cmd::kList, true);
    conn_.write_owned(kListSuffix);
    request_done();
    return;
  }
  if (!conn_.congested()) conn_.yield_turn();  // either way, on_drain continues
}

// ---------------------------------------------------------------- GET

void FileSession::start_get(const std::string& name) {
  begin(Cmd::kGet);
  state_ = State::kBusy;
  conn_.pause_reading();
  auto opened = std::make_shared<Result<storage::ReadFile>>();
  const storage::Root* root = shared_.root;
  ConnRef ref(&conn_);
  shared_.executor->submit([opened, root, name] { *opened = root->open_read(name); },
                           [this, ref, opened, name] {
                             if (conn_.closing()) return;
                             if (!opened->ok()) {
                               finish(Cmd::kGet, false);
                               conn_.write_owned(error_text(error_message(opened->status(), name)));
                               request_done();
                               return;
                             }
                             conn_.set_transfer(true);
                             transfer::SendOptions o;
                             o.prefix = get_prefix(name);
                             o.suffix = std::string(kGetSuffix);
                             o.transform = transfer::Transform::kBase64;
                             o.encoder = &codec::encoder(config_.codec);
                             get_ = transfer::send_file(conn_, *shared_.executor,
                                                        std::move(opened->value), std::move(o),
                                                        [this](Status s) {
                                                          get_.reset();
                                                          finish(Cmd::kGet, s.ok());
                                                          request_done();
                                                        });
                           });
}

// ---------------------------------------------------------------- UPLOAD

void FileSession::start_upload(std::string name) {
  log_name_ = name;
  if (std::string why = storage::validate_name(name); !why.empty()) {
    start_discard(Cmd::kUpload, "invalid name: " + why);
    process_input();
    return;
  }
  if (Refusal r = service_.policy().refuse(Access::kWrite, role_); r != Refusal::kNone) {
    start_discard(Cmd::kUpload, refusal_text(r, Access::kWrite));  // the payload is dropped
    process_input();
    return;
  }
  begin(Cmd::kUpload);
  conn_.set_transfer(true);
  state_ = State::kPayload;
  upload().name = name;
  upload_->head.clear();
  transfer::UploadSink::Options o;
  o.name = std::move(name);
  o.transform = transfer::Transform::kBase64;
  o.codec = config_.codec;
  o.max_bytes = config_.max_upload;
  auto sink = transfer::UploadSink::start(
      conn_, *shared_.executor, *shared_.root, std::move(o),
      [this] {
        if (payload_active()) payload_step(upload_->payload.feed());
      },
      [this](Status s, uint64_t bytes) {
        upload_->payload.reset();
        finish(Cmd::kUpload, s.ok());
        if (s.ok()) {
          conn_.write_owned(
              ok_text(upload_->name + " uploaded (" + std::to_string(bytes) + " bytes)"));
        } else if (s.code == Errc::kBadData && payload_has_more_words(upload_->head)) {
          conn_.write_owned(
              error_text("too many arguments for UPLOAD (quote a name that has spaces)"));
        } else {
          conn_.write_owned(error_text(error_message(s, upload_->name)));
        }
        request_done();
      });
  // The base64 ends with its line: the first CR or LF (find_terminator).
  upload_->payload.start(std::move(sink), kit::PayloadEnd::terminator("\r\n"));
  payload_step(upload_->payload.feed());
}

// The payload's terminator arrived: no more reading until the sink's reply.
void FileSession::payload_step(kit::PayloadReader::Step step) {
  if (step == kit::PayloadReader::Step::kDone) state_ = State::kBusy;
}

}  // namespace

const ServiceInfo& info() {
  static const ServiceInfo kInfo{
      "file",
      "the course file protocol: LIST, GET, UPLOAD (base64), DELETE, SIZE; JSON replies",
      {6666},
      "printf 'LIST\\r\\n' | nc -q1 127.0.0.1 {port}",
      [](stats::Schema& schema) { Counters::register_stats(schema, "file"); },
      [](reactor::Refusal why, int limit) { return error_text(busy_text(why, limit)); },
      [](Shared& shared) -> std::unique_ptr<Service> {
        return std::make_unique<FileService>(shared);
      },
      Transport::kStream,
      nullptr,
      kPolicyReadOnly | kPolicyAuth};
  return kInfo;
}

}  // namespace fsrv::services::file
