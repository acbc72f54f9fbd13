// The framing of an HTTP/1.1 connection (HttpSession, http_session.hpp):
// reads into a buffer lent by the service, feeds the RequestParser, answers
// pipelined requests one at a time (kit::kRequestsPerTurn per loop turn),
// keeps the connection alive or closes it, times out idle and slow
// clients, and lingers after an error that loses the framing. Small replies
// (head and body) go out in ONE write_owned (the course's client reads once
// after the blank line); files larger than kInlineFileMax go through
// transfer::send_file (sendfile(2), the head as prefix); uploads stream into
// a transfer::UploadSink. docs/services/http.md lists routes and statuses.

#include "fsrv/services/http/http_session.hpp"

#include <cstring>
#include <string>

#include "fsrv/services/http/http_util.hpp"
#include "fsrv/services/kit/request_loop.hpp"

namespace fsrv::services::http {

/// After an error that loses the framing (RFC 9112 section 9.6) the reply
/// is sent with Connection: close, then the rest of the request is read and
/// dropped for this long before closing: closing with unread bytes makes
/// the kernel send RST, which can destroy the reply before the client reads
/// it (nginx's lingering_close).
constexpr uint64_t kLingerMs = 1000;

// ---------------------------------------------------------------- input

std::span<char> HttpSession::read_space() {
  if (in_.empty()) in_ = service_.take_read_buffer();  // the socket is readable
  if (state_ == State::kLinger) {
    in_start_ = in_end_ = 0;  // dropped anyway
  } else if (in_start_ > 0) {
    std::memmove(in_.data(), in_.data() + in_start_, in_end_ - in_start_);
    in_end_ -= in_start_;
    in_start_ = 0;
  }
  if (in_end_ == in_.size()) in_.resize(in_.size() + kReadBuffer);  // rare: see process_input
  return {in_.data() + in_end_, in_.size() - in_end_};
}

void HttpSession::on_read(size_t n) {
  if (state_ == State::kLinger || state_ == State::kClosed) {
    in_start_ = in_end_ = 0;
    return;
  }
  in_end_ += n;
  if (state_ == State::kResponding) {
    if (input().size() >= kReadBuffer) conn_.pause_reading();  // request_done() resumes
    return;
  }
  process_input();
}

namespace {

// True if `in` starts with a whole request line of HTTP/0.9's form: a
// method and a target and no version.
bool is_http09(std::string_view in) {
  const size_t eol = in.find('\n');
  if (eol == std::string_view::npos) return false;
  std::string_view line = in.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const size_t sp = line.find(' ');
  return sp != std::string_view::npos && sp > 0 &&
         line.find(' ', sp + 1) == std::string_view::npos && sp + 1 < line.size();
}

}  // namespace

void HttpSession::process_input() {
  if (processing_) return;
  processing_ = true;
  int handled = 0;
  while (!conn_.closing()) {
    if (state_ == State::kResponding || state_ == State::kLinger || state_ == State::kClosed) break;
    if (auth_pending_) break;  // authenticate()'s callback comes back
    if (state_ == State::kBody && body_to_ == BodyTo::kSink) {
      if (!pump_sink()) break;  // the sink is full: on_space comes back
      if (state_ != State::kBody) continue;
    }
    if (state_ == State::kIdle && !in_message()) {
      if (conn_.congested()) break;            // on_drain resumes
      if (handled == kit::kRequestsPerTurn) {  // one client cannot starve the others
        processing_ = false;
        conn_.yield_turn();  // on_drain next turn
        return;
      }
    }
    // After a held head, the parser is fed once even with no new bytes: a
    // message without a body ends there.
    if (input().empty() && !resume_after_hold_) break;
    resume_after_hold_ = false;
    open_request();  // the first byte of a request (or the rest of one)
    if (state_ == State::kIdle && !in_message() && is_http09(input())) {
      // RFC 1945 section 4.1's simple request ("GET /path", no version):
      // the parser would wait for a version that never comes.
      on_error({505, "HTTP/0.9 requests are not served"});
      break;
    }
    RequestParser::FeedResult r = rq_->parser.feed(input());
    consume(r.consumed);
    if (message_complete_) {
      message_complete_ = false;
      ++handled;
      complete_message();
      continue;
    }
    if (r.state != RequestParser::State::kNeedMore) break;  // kError: on_error replied
  }
  processing_ = false;
  const bool parsed = !conn_.closing() && input().empty() &&
                      (state_ == State::kIdle || state_ == State::kResponding);
  if (!in_.empty() && (parsed || state_ == State::kClosed)) {
    // Parsed (a partial head is the parser's own copy): the buffer goes
    // back, also while a reply waits for the executor (a burst of requests
    // for uncached files would otherwise hold one buffer each until
    // answered). Closing after its reply (HTTP/1.0, Connection: close): what
    // is left of the input is dropped, so the buffer goes back for the next
    // connection rather than being freed with this one (a fresh 64 KiB,
    // zeroed and unmapped again, per connection otherwise).
    service_.give_read_buffer(std::move(in_));
    in_start_ = in_end_ = 0;
  }
  if (conn_.closing() || state_ == State::kLinger || state_ == State::kClosed) return;
  if (state_ == State::kIdle && !in_message() && input().empty()) {
    conn_.request_head_done();  // nothing of a next request yet
    // Between requests with nothing of the next one: the request's memory
    // goes too. Safe here: this is the outermost process_input (a nested
    // call returned at its top), so no parser callback is running, and
    // every caller of request_done() returns right after it.
    if (!auth_pending_ && rq_) release_request();
  }
  // While a reply is being made, the next pipelined bytes may still be
  // read (saves a stop/start of reading, two epoll_ctl calls, per
  // request), up to kReadBuffer; beyond that they wait in the kernel.
  bool waiting =
      auth_pending_ || (state_ == State::kResponding && input().size() >= kReadBuffer) ||
      (state_ == State::kBody && body_to_ == BodyTo::kSink && rq_ && !rq_->overflow.empty()) ||
      (state_ == State::kIdle && !in_message() && conn_.congested());
  if (waiting) {
    conn_.pause_reading();
    return;
  }
  if (state_ == State::kResponding) return;  // request_done() continues
  if (eof_) {
    if (in_message()) {
      cancel_upload();  // cut short: the old file stays
      conn_.close();
    } else {
      close_flushed();
    }
    return;
  }
  conn_.resume_reading();
}

void HttpSession::on_eof() {
  eof_ = true;
  if (state_ == State::kLinger) {
    close_flushed();
    return;
  }
  if (state_ == State::kIdle || state_ == State::kBody) process_input();
  // kResponding: request_done() sees eof_ once the reply is out.
}

void HttpSession::on_timer() {
  if (state_ == State::kLinger) close_flushed();
}

void HttpSession::on_idle_timeout() {
  if (state_ == State::kIdle && !in_message()) {
    conn_.close();  // an idle keep-alive connection: close quietly
    return;
  }
  if (state_ == State::kIdle || state_ == State::kBody) {
    // RFC 9110 section 15.5.9: the client did not finish its request.
    cancel_upload();
    if (state_ == State::kIdle) started_ = Clock::now();
    keep_alive_ = false;
    head_only_ = false;
    reply(408, kText, "Request timeout");
    close_flushed();
    return;
  }
  conn_.close();  // mid-reply (a stalled reader) or lingering
}

void HttpSession::on_shutdown() {
  quit_ = true;
  if (state_ == State::kIdle && !in_message()) close_flushed();
}

void HttpSession::on_close() {
  release_form();
  if (get_) get_->cancel();
  get_.reset();
  cancel_upload();  // the temporary file goes with the last task
}

// ---------------------------------------------------------------- parser events

void HttpSession::on_head(const RequestHead& head) {
  // The head is complete; its body (if any) is measured against --min-rate.
  conn_.set_transfer(true);
  rq_->head = head;
  started_ = Clock::now();
  keep_alive_ = head.keep_alive && !quit_;
  head_only_ = head.method == "HEAD";
  body_to_ = BodyTo::kDiscard;
  body_complete_ = false;
  reject_status_ = 0;
  release_form();
  rq_->name.clear();
  rq_->form.reset();
  file_seen_ = in_file_ = false;
  state_ = State::kBody;
  route();
  if (state_ != State::kBody || auth_pending_) return;  // replied already (fail_now), or held
  begin_body();
}

void HttpSession::begin_body() {
  const RequestHead& head = rq_->head;
  if (route_ == Route::kUploadPost || route_ == Route::kUploadPut) {
    start_upload();
  } else if (route_ == Route::kUploadForm) {
    start_form_upload();
  } else if (route_ == Route::kForm) {
    body_to_ = BodyTo::kMemory;
  }
  if (head.expect_continue && state_ == State::kBody) {
    // RFC 9110 section 10.1.1: the client waits for this before the body.
    conn_.write_owned("HTTP/1.1 100 Continue\r\n\r\n");
    service_.count(100);
  }
}

void HttpSession::on_complete(const std::vector<Header>&) { message_complete_ = true; }

void HttpSession::on_error(const ParseError& error) {
  if (state_ != State::kIdle && state_ != State::kBody) return;
  if (state_ == State::kIdle) {  // no head: nothing of the last request applies
    rq_->head = RequestHead{};
    head_only_ = false;
    started_ = Clock::now();
  }
  fail_now(error.status, std::string(reason_phrase(error.status)) + ": " + error.reason);
}

// Replies now with Connection: close and drops the rest of the input for
// kLingerMs (the framing is lost, RFC 9112 section 9.6).
void HttpSession::fail_now(int status, std::string text, std::string extra) {
  cancel_upload();
  keep_alive_ = false;
  reply(status, kText, text, extra);  // no request_done() here
  if (conn_.closing()) return;
  state_ = State::kLinger;
  in_start_ = in_end_ = 0;
  conn_.start_timer(kLingerMs);
  conn_.resume_reading();
}

void HttpSession::complete_message() {
  if (body_to_ != BodyTo::kSink) conn_.set_transfer(false);  // the sink ends its own
  if (state_ != State::kBody) return;                        // replied already
  body_complete_ = true;
  if (rq_->form && (!rq_->form->done() || !file_seen_)) {
    // The body was read whole: the connection can stay.
    cancel_upload();
    route_ = Route::kReject;
    reject_status_ = 400;
    rq_->reject_text = !rq_->form->done()
                           ? "Bad multipart body: it ended before the closing boundary"
                           : std::string(kFormUploadHelp);
    rq_->reject_extra.clear();
  } else if (body_to_ == BodyTo::kSink) {
    return;  // process_input's pump_sink ends it
  }
  state_ = State::kResponding;
  dispatch();
}

void HttpSession::request_done() {
  state_ = State::kIdle;
  if (conn_.closing()) return;
  if (!keep_alive_) {
    close_flushed();
    return;
  }
  process_input();  // returns at once when called from inside it
}

}  // namespace fsrv::services::http
