// The file service's connection framing: reads, the request loop (with
// the discard of a bad UPLOAD's line), the legacy clients' silence, the
// limits and the end of stream; and the service's registration. The
// commands that outlive one reply are in file_commands.cpp.

#include "fsrv/services/file/file_session.hpp"

#include <chrono>
#include <string>

#include "fsrv/core/access_log.hpp"
#include "fsrv/core/limits.hpp"
#include "fsrv/services/file/reply.hpp"
#include "fsrv/services/kit/request_loop.hpp"
#include "fsrv/storage/storage.hpp"

namespace fsrv::services::file {

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
    if (handled == kit::kRequestsPerTurn) {
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

// ---------------------------------------------------------------- service

std::unique_ptr<reactor::ConnectionHandler> FileService::create_handler(Connection& conn) {
  return std::make_unique<FileSession>(conn, *this);
}

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
