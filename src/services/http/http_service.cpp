// The HTTP service: one HttpSession per connection drives a
// RequestParser and answers one request at a time. Small replies (head and
// body) go out in ONE write_owned (the course's client reads once after the
// blank line); files larger than kInlineFileMax go through
// transfer::send_file (sendfile(2), the head as prefix); uploads stream into
// a transfer::UploadSink. docs/services/http.md lists routes and statuses.

#include "fsrv/services/http/http_service.hpp"

#include <arpa/inet.h>

#include <array>
#include <chrono>
#include <cinttypes>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "fsrv/auth/authenticator.hpp"
#include "fsrv/core/access_log.hpp"
#include "fsrv/core/log.hpp"
#include "fsrv/core/version.hpp"
#include "fsrv/services/http/http_util.hpp"
#include "fsrv/services/http/multipart_reader.hpp"
#include "fsrv/services/http/request_parser.hpp"
#include "fsrv/storage/small_file_cache.hpp"
#include "fsrv/storage/storage.hpp"
#include "fsrv/transfer/file_sender.hpp"
#include "fsrv/transfer/upload_sink.hpp"

namespace fsrv::services::http {

namespace {

/// The challenge of a 401 (RFC 7617 section 2: realm, and UTF-8 for the
/// user name and password).
constexpr const char* kChallenge = "WWW-Authenticate: Basic realm=\"fsrv\", charset=\"UTF-8\"\r\n";

using reactor::Connection;
using reactor::ConnRef;
using Clock = std::chrono::steady_clock;

/// Pipelined requests answered in one loop turn before the session yields
/// (Connection::yield_turn), as the file session does: one client flooding
/// requests cannot starve the others.
constexpr int kRequestsPerTurn = 64;

/// Socket read size: one typical read; the parser keeps a partial head
/// itself (up to kMaxHeadBytes), so the buffer never has to hold more.
/// A connection holds one only from the moment its socket is readable until
/// its input is parsed (nginx's model): an idle keep-alive connection holds
/// none.
constexpr size_t kReadBuffer = 64 * 1024;

/// Read buffers a loop keeps for reuse once connections give them back
/// (1 MiB): taking one is then a pointer move, not a 64 KiB allocation and
/// clearing per request; beyond this many, returned buffers are freed.
constexpr size_t kSpareReadBuffers = 16;

/// Files up to this size are read by the open task and sent with the head
/// in one write (one syscall, no second pool hop: the small-file case of
/// `make bench-http`); larger ones stream with sendfile(2). 64 KiB is the
/// read buffer's size, so memory per connection stays bounded.
constexpr uint64_t kInlineFileMax = 64 * 1024;

/// After an error that loses the framing (RFC 9112 section 9.6) the reply
/// is sent with Connection: close, then the rest of the request is read and
/// dropped for this long before closing: closing with unread bytes makes
/// the kernel send RST, which can destroy the reply before the client reads
/// it (nginx's lingering_close).
constexpr uint64_t kLingerMs = 1000;

/// Methods we implement (the Allow field of 405, RFC 9110 section 15.5.6).
constexpr std::string_view kAllow = "GET, HEAD, POST, PUT, DELETE, OPTIONS";

/// What POST /upload answers when its body has no file to store.
constexpr std::string_view kFormUploadHelp =
    "POST /upload needs a multipart/form-data body with a file part, e.g. "
    "curl -F file=@photo.jpg http://HOST/upload (the file is stored under its filename); "
    "raw bytes go to POST /upload/{name} or PUT /{name}";

/// Fields of every reply carrying a stored file: its bytes are never
/// sniffed into another type, and an HTML or SVG file opened in a browser
/// runs in a sandbox (no script, unique origin), so an uploaded page cannot
/// act on this server with the user's browser.
constexpr std::string_view kStoredFileFields =
    "X-Content-Type-Options: nosniff\r\nContent-Security-Policy: sandbox\r\n";

/// The Server field (RFC 9110 section 10.2.4): "fsrv/VERSION".
const std::string kServer = server_token();

/// Status codes counted as "http/status/<code>" in STATS and /stats.
constexpr int kCountedStatuses[] = {100, 200, 201, 204, 206, 304, 400, 403, 404, 405, 408,
                                    411, 413, 414, 416, 431, 500, 501, 503, 505, 507};

/// HTTP status for a storage failure (the file protocol words the same
/// codes as text, src/services/file/reply.cpp).
int status_for(Errc code) {
  switch (code) {
    case Errc::kOk:
      return 200;
    case Errc::kNotFound:
      return 404;
    case Errc::kInvalidName:
    case Errc::kNotRegular:  // directories and symlinks: never followed
    case Errc::kPermission:
      return 403;
    case Errc::kTooLarge:
      return 413;
    case Errc::kNoSpace:
      return 507;  // RFC 4918 section 11.5
    case Errc::kBusy:
    case Errc::kShuttingDown:
      return 503;
    case Errc::kTimeout:
      return 408;
    case Errc::kBadData:
    case Errc::kBadRequest:
      return 400;
    default:
      return 500;
  }
}

/// Short text body of an error status.
std::string error_body(int status, const Status& s, const std::string& name) {
  if (status == 404) return "File not found";
  if (s.code == Errc::kInvalidName) return "Invalid file name: " + s.error;
  if (s.code == Errc::kNotRegular) return "Not a regular file: " + name;
  return std::string(reason_phrase(status)) + (s.error.empty() ? "" : ": " + s.error);
}

/// JSON string literal of `s` (RFC 8259 section 7).
void json_string(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char esc[8];
      snprintf(esc, sizeof esc, "\\u%04x", c);
      out += esc;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

/// True if If-None-Match's list matches the strong tag `etag` (RFC 9110
/// section 13.1.2: weak comparison, "*" matches any current file).
bool none_match(std::string_view field, std::string_view etag) {
  while (!field.empty()) {
    size_t comma = field.find(',');
    std::string_view item = field.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item.substr(0, 2) == "W/") item.remove_prefix(2);
    if (item == "*" || item == etag) return true;
    if (comma == std::string_view::npos) break;
    field.remove_prefix(comma + 1);
  }
  return false;
}

class HttpService final : public Service {
 public:
  explicit HttpService(Shared& shared) : Service(shared, "http") {
    for (int s : kCountedStatuses)
      status_[static_cast<size_t>(s)] = counter("status/" + std::to_string(s));
    requests_ = counter("requests");
    uploads_ = counter("uploads/bytes");
  }
  std::string refusal(reactor::Refusal why, int limit) const override {
    return info().refusal(why, limit);
  }
  void count(int status) {
    if (status != 100) shared_.stats->add(requests_);  // 100 precedes the final status
    if (status >= 0 && status < static_cast<int>(status_.size())) {
      shared_.stats->add(status_[static_cast<size_t>(status)]);
    }
  }
  void count_upload(uint64_t bytes) { shared_.stats->add(uploads_, bytes); }
  Shared& shared() { return shared_; }
  /// Takes `n` bytes of the form bodies' memory budget (kFormBodyBudget,
  /// shared by every connection of this process); false if over it.
  bool take_form_bytes(size_t n) {
    if (form_bytes_ + n > kFormBodyBudget) return false;
    form_bytes_ += n;
    return true;
  }
  void give_form_bytes(size_t n) { form_bytes_ -= n; }

  /// The Date field value (RFC 9110 section 6.6.1) and the access log's
  /// time, recomputed once per second.
  const std::string& date() {
    refresh_time();
    return date_;
  }
  const std::string& log_time() {
    refresh_time();
    return log_time_;
  }
  /// A kReadBuffer-sized read buffer (a spare one when there is one).
  std::vector<char> take_read_buffer() {
    if (spare_reads_.empty()) return std::vector<char>(kReadBuffer);
    std::vector<char> b = std::move(spare_reads_.back());
    spare_reads_.pop_back();
    return b;
  }
  /// Returns a buffer from take_read_buffer (kept for reuse up to
  /// kSpareReadBuffers; grown or surplus buffers are freed).
  void give_read_buffer(std::vector<char>&& b) {
    if (b.size() == kReadBuffer && spare_reads_.size() < kSpareReadBuffers) {
      spare_reads_.push_back(std::move(b));
    }
    b = std::vector<char>();
  }
  /// Small files of the root kept by this loop (GET answers them without
  /// an executor hop); made at first use.
  storage::SmallFileCache& file_cache() {
    if (!file_cache_) file_cache_ = std::make_unique<storage::SmallFileCache>(*shared_.root);
    return *file_cache_;
  }

 protected:
  std::unique_ptr<reactor::ConnectionHandler> create_handler(Connection& conn) override;

 private:
  /// Form echo bodies (tugas 8) are held whole to be parsed: 64 MiB for
  /// all connections of a process (64 bodies at kMaxMultipartBody), so 400
  /// clients posting 1 MB each get 503, not 400 MB of RSS.
  static constexpr size_t kFormBodyBudget = 64 << 20;
  size_t form_bytes_ = 0;

  void refresh_time() {
    time_t now = time(nullptr);
    if (now == date_second_) return;
    date_second_ = now;
    date_ = format_http_date(now);
    tm t{};
    gmtime_r(&now, &t);
    char buf[64];
    strftime(buf, sizeof buf, "%d/%b/%Y:%H:%M:%S +0000", &t);
    log_time_ = buf;
  }

  std::array<stats::Counter, 600> status_{};
  stats::Counter requests_, uploads_;
  time_t date_second_ = -1;
  std::string date_, log_time_;
  std::unique_ptr<storage::SmallFileCache> file_cache_;
  std::vector<std::vector<char>> spare_reads_;
};

/// What a request asks for, decided from its head.
enum class Route {
  kIndex,       ///< GET / (the web UI)
  kSending,     ///< GET /sending.html (tugas 8 form)
  kListdir,     ///< GET /listdir (seed 004)
  kStats,       ///< GET /stats
  kWhoami,      ///< GET /whoami: the account and what it may do (the web page asks)
  kLogin,       ///< GET /login: 401 with the challenge until the browser has an account
  kHealth,      ///< GET /healthz (load balancer checks; not in the access log)
  kMetrics,     ///< GET /metrics (Prometheus text format 0.0.4)
  kFile,        ///< GET|HEAD /{name}
  kUploadPost,  ///< POST /upload/{name} (seed 004)
  kUploadPut,   ///< PUT /{name} (WebDAV convention)
  kUploadForm,  ///< POST /upload: a multipart/form-data file part
  kDelete,      ///< DELETE /delete/{name} (seed 004) or DELETE /{name}
  kForm,        ///< POST elsewhere: the form echo of tugas 8
  kOptions,     ///< OPTIONS: 204 with Allow
  kReject,      ///< answered with reject_status_ once the message is read
};

class HttpSession final : public reactor::ConnectionHandler,
                          public RequestHandler,
                          public MultipartHandler {
 public:
  HttpSession(Connection& conn, HttpService& service)
      : conn_(conn),
        service_(service),
        shared_(service.shared()),
        parser_(*this, parser_options(*shared_.config)) {
    sockaddr_storage ss{};
    int len = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "-";
    if (uv_tcp_getpeername(conn.tcp(), reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      if (ss.ss_family == AF_INET) {
        uv_ip4_name(reinterpret_cast<sockaddr_in*>(&ss), host, sizeof host);
      } else if (ss.ss_family == AF_INET6) {
        uv_ip6_name(reinterpret_cast<sockaddr_in6*>(&ss), host, sizeof host);
      }
    }
    peer_ = host;
  }

  // ConnectionHandler
  std::span<char> read_space() override;
  void on_read(size_t n) override;
  void on_eof() override;
  void on_timer() override;
  void on_idle_timeout() override;
  /// The head not complete within --request-timeout (or a trickled head
  /// of the next request): 408, as for an idle request.
  void on_request_timeout() override { on_idle_timeout(); }
  /// A body slower than --min-rate: 408 too (a stalled reply just closes).
  void on_too_slow() override { on_idle_timeout(); }
  void on_drain() override { process_input(); }
  void on_shutdown() override;
  void on_close() override;

  // RequestHandler (called from inside parser_.feed)
  void on_head(const RequestHead& head) override;
  void on_body(std::string_view piece) override;
  void on_complete(const std::vector<Header>& trailers) override;
  void on_error(const ParseError& error) override;

  // MultipartHandler (called from inside form_->feed, POST /upload)
  void on_part(const FormField& part) override;
  void on_part_data(std::string_view piece) override;
  void on_part_end() override { in_file_ = false; }

 private:
  enum class State {
    kIdle,        ///< between requests, or reading a head
    kBody,        ///< reading the body of the current request
    kResponding,  ///< the request is complete; its reply is being made
    kLinger,      ///< replied with Connection: close; dropping input
    kClosed,      ///< close_when_flushed() was called
  };
  enum class BodyTo { kDiscard, kSink, kMemory };

  static RequestParser::Options parser_options(const ServerConfig& config) {
    RequestParser::Options o;
    o.max_body = config.max_upload;  // 413 while the body streams
    return o;
  }

  std::string_view input() const { return {in_.data() + in_start_, in_end_ - in_start_}; }
  void consume(size_t n) { in_start_ += n; }

  void process_input();
  void route();
  /// Basic credentials of an auth= listener: role_ now (cached) or after
  /// the check (auth_pending_ holds the parser meanwhile); then the policy.
  void authenticate();
  void refuse_by_policy();
  /// The part of on_head after routing (once authenticated).
  void begin_body();
  bool hold_after_head() override { return auth_pending_; }
  void reject(int status, std::string text, std::string extra = {});
  void fail_now(int status, std::string text, std::string extra = {});
  void complete_message();
  void dispatch();
  void request_done();

  /// Head of a reply: status line, Date, Server, `extra` (complete field
  /// lines), Content-Type, Content-Length (unless `length` < 0) and the
  /// Connection field our keep-alive decision needs. `body_reserve`:
  /// bytes of body the caller appends (reserved, so no reallocation).
  std::string reply_head(int status, std::string_view type, int64_t length,
                         std::string_view extra = {}, size_t body_reserve = 0);
  /// Sends a whole reply in one write (body dropped for HEAD) and finishes.
  void reply(int status, std::string_view type, std::string_view body, std::string_view extra = {});
  void finish(int status, uint64_t body_bytes);
  void count_once(int status);

  void start_get(std::string name, bool head_only);
  /// Answers GET/HEAD of `name` (size and mtime of the file opened):
  /// `data` is the whole file when it was read (small), else `f` streams.
  /// `validators`, when given, holds "ETAG\nLAST-MODIFIED" for this
  /// size and mtime (made here when empty: a cached file keeps them).
  void answer_get(const std::string& name, uint64_t size, int64_t mtime_ns, const std::string* data,
                  storage::ReadFile* f, std::string* validators = nullptr);
  void start_upload();
  void start_form_upload();
  void sink_piece(std::string_view piece);
  bool pump_sink();
  void upload_done(Status s, uint64_t bytes);
  void maybe_reply_upload();
  void start_delete(std::string name);
  void start_listdir(bool page);
  void reply_form();

  Connection& conn_;
  HttpService& service_;
  /// The account of the current request (Authorization: Basic), for the policy.
  Role role_ = Role::kAnonymous;
  std::string user_;                ///< its name once the password checked out
  bool auth_pending_ = false;       ///< its password is being checked
  bool resume_after_hold_ = false;  ///< the parser is paused after a held head
  Shared& shared_;
  RequestParser parser_;
  std::string peer_;

  std::vector<char> in_;
  size_t in_start_ = 0;
  size_t in_end_ = 0;
  bool processing_ = false;
  bool eof_ = false;
  bool quit_ = false;
  State state_ = State::kIdle;

  // The current request.
  RequestHead head_;
  Route route_ = Route::kReject;
  std::string name_;
  bool head_only_ = false;
  bool keep_alive_ = true;
  bool message_complete_ = false;
  bool body_complete_ = false;
  BodyTo body_to_ = BodyTo::kDiscard;
  int reject_status_ = 0;
  std::string reject_text_, reject_extra_;
  std::string form_body_;
  size_t form_charged_ = 0;  ///< form_body_'s bytes taken from the service's budget
  /// Empties form_body_ and gives its bytes back to the budget.
  void release_form() {
    service_.give_form_bytes(form_charged_);
    form_charged_ = 0;
    form_body_ = std::string();
  }
  Clock::time_point started_;
  bool counted_ = false;  ///< the current reply's status is counted

  // Uploads.
  std::shared_ptr<transfer::UploadSink> sink_;
  std::string overflow_;  ///< body bytes the sink had no room for (< one read)
  /// PUT: the upload's commit replaced a file (204, not 201), learnt from
  /// the rename itself (storage::UploadFile::replaced) in upload_done.
  bool replaced_ = false;
  bool upload_finished_ = false;
  Status upload_status_;
  /// POST /upload: the body's reader, and whether a file part was met
  /// (the first one is stored; later parts are read and ignored).
  std::unique_ptr<MultipartReader> form_;
  bool file_seen_ = false;
  bool in_file_ = false;

  std::shared_ptr<transfer::FileSender> get_;
};

std::unique_ptr<reactor::ConnectionHandler> HttpService::create_handler(Connection& conn) {
  return std::make_unique<HttpSession>(conn, *this);
}

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
    if (state_ == State::kIdle && !parser_.in_message()) {
      if (conn_.congested()) break;  // on_drain resumes
      if (handled == kRequestsPerTurn) {
        processing_ = false;
        conn_.yield_turn();  // on_drain next turn
        return;
      }
    }
    // After a held head, the parser is fed once even with no new bytes: a
    // message without a body ends there.
    if (input().empty() && !resume_after_hold_) break;
    resume_after_hold_ = false;
    if (state_ == State::kIdle && !parser_.in_message() && is_http09(input())) {
      // RFC 1945 section 4.1's simple request ("GET /path", no version):
      // the parser would wait for a version that never comes.
      head_ = RequestHead{};
      head_only_ = false;
      started_ = Clock::now();
      fail_now(505, "HTTP Version Not Supported: HTTP/0.9 requests are not served");
      break;
    }
    RequestParser::FeedResult r = parser_.feed(input());
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
  if (conn_.closing() || state_ == State::kLinger || state_ == State::kClosed) return;
  if (state_ == State::kIdle && !parser_.in_message() && input().empty()) {
    conn_.request_head_done();  // nothing of a next request yet
  }
  if ((state_ == State::kIdle || state_ == State::kResponding) && input().empty() && !in_.empty()) {
    // Parsed (a partial head is the parser's own copy): give the buffer back,
    // also while a reply waits for the executor (a burst of requests for
    // uncached files would otherwise hold one buffer each until answered).
    service_.give_read_buffer(std::move(in_));
    in_start_ = in_end_ = 0;
  }
  // While a reply is being made, the next pipelined bytes may still be
  // read (saves a stop/start of reading, two epoll_ctl calls, per
  // request), up to kReadBuffer; beyond that they wait in the kernel.
  bool waiting = auth_pending_ || (state_ == State::kResponding && input().size() >= kReadBuffer) ||
                 (state_ == State::kBody && body_to_ == BodyTo::kSink && !overflow_.empty()) ||
                 (state_ == State::kIdle && !parser_.in_message() && conn_.congested());
  if (waiting) {
    conn_.pause_reading();
    return;
  }
  if (state_ == State::kResponding) return;  // request_done() continues
  if (eof_) {
    if (parser_.in_message()) {
      if (sink_) sink_->cancel();  // cut short: the old file stays
      sink_.reset();
      conn_.close();
    } else {
      state_ = State::kClosed;
      conn_.close_when_flushed();
    }
    return;
  }
  conn_.resume_reading();
}

void HttpSession::on_eof() {
  eof_ = true;
  if (state_ == State::kLinger) {
    state_ = State::kClosed;
    conn_.close_when_flushed();
    return;
  }
  if (state_ == State::kIdle || state_ == State::kBody) process_input();
  // kResponding: request_done() sees eof_ once the reply is out.
}

void HttpSession::on_timer() {
  if (state_ == State::kLinger) {
    state_ = State::kClosed;
    conn_.close_when_flushed();
  }
}

void HttpSession::on_idle_timeout() {
  if (state_ == State::kIdle && !parser_.in_message()) {
    conn_.close();  // an idle keep-alive connection: close quietly
    return;
  }
  if (state_ == State::kIdle || state_ == State::kBody) {
    // RFC 9110 section 15.5.9: the client did not finish its request.
    if (sink_) sink_->cancel();
    sink_.reset();
    if (state_ == State::kIdle) started_ = Clock::now();
    keep_alive_ = false;
    head_only_ = false;
    reply(408, "text/plain; charset=utf-8", "Request timeout");
    state_ = State::kClosed;
    conn_.close_when_flushed();
    return;
  }
  conn_.close();  // mid-reply (a stalled reader) or lingering
}

void HttpSession::on_shutdown() {
  quit_ = true;
  if (state_ == State::kIdle && !parser_.in_message()) {
    state_ = State::kClosed;
    conn_.close_when_flushed();
  }
}

void HttpSession::on_close() {
  release_form();
  if (get_) get_->cancel();
  get_.reset();
  if (sink_) sink_->cancel();  // the temporary file goes with the last task
  sink_.reset();
}

// ---------------------------------------------------------------- parser events

void HttpSession::on_head(const RequestHead& head) {
  // The head is complete; its body (if any) is measured against --min-rate.
  conn_.set_transfer(true);
  head_ = head;
  started_ = Clock::now();
  keep_alive_ = head.keep_alive && !quit_;
  head_only_ = head.method == "HEAD";
  body_to_ = BodyTo::kDiscard;
  body_complete_ = false;
  reject_status_ = 0;
  release_form();
  name_.clear();
  form_.reset();
  file_seen_ = in_file_ = false;
  state_ = State::kBody;
  route();
  if (state_ != State::kBody || auth_pending_) return;  // replied already (fail_now), or held
  begin_body();
}

void HttpSession::begin_body() {
  const RequestHead& head = head_;
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

void HttpSession::on_body(std::string_view piece) {
  if (state_ != State::kBody) return;
  switch (body_to_) {
    case BodyTo::kDiscard:
      return;
    case BodyTo::kMemory:
      if (form_body_.size() + piece.size() > kMaxMultipartBody) {
        fail_now(413, "Form body too large: limit " + std::to_string(kMaxMultipartBody) + " bytes");
        return;
      }
      {
        // Charged by the memory the body takes (its string's capacity), so
        // the budget bounds what the process really holds.
        const size_t want = form_body_.size() + piece.size();
        const size_t need = want <= form_body_.capacity()
                                ? form_body_.capacity()
                                : std::min(std::max(want, 2 * form_body_.capacity()),
                                           std::max(want, kMaxMultipartBody));
        const size_t grow = need > form_charged_ ? need - form_charged_ : 0;
        if (!service_.take_form_bytes(grow)) {
          release_form();
          fail_now(503, "Service Unavailable: form bodies are over their memory budget; retry",
                   "Retry-After: 1\r\n");
          return;
        }
        form_charged_ += grow;
        if (form_body_.capacity() < want) form_body_.reserve(need);
        form_body_.append(piece);
        return;
      }
    case BodyTo::kSink:
      if (form_) {
        if (!form_->feed(piece, *this) && state_ == State::kBody) {
          fail_now(400, "Bad multipart body: " + form_->error());
        }
        return;
      }
      sink_piece(piece);
      return;
  }
}

void HttpSession::sink_piece(std::string_view piece) {
  if (!sink_) return;
  if (overflow_.empty()) piece.remove_prefix(sink_->feed(piece));
  overflow_.append(piece);
  if (!sink_->error().ok()) {
    int st = status_for(sink_->error().code);
    fail_now(st, error_body(st, sink_->error(), name_));
  }
}

// POST /upload: the first part with a (non-empty) filename is the file,
// stored under that name once it passes the name rules.
void HttpSession::on_part(const FormField& part) {
  if (state_ != State::kBody || file_seen_ || !part.is_file || part.filename.empty()) return;
  file_seen_ = true;
  name_ = part.filename;
  if (std::string why = storage::validate_name(name_); !why.empty()) {
    fail_now(403, "Invalid file name: " + why);
    return;
  }
  in_file_ = true;
  start_upload();
}

void HttpSession::on_part_data(std::string_view piece) {
  if (state_ == State::kBody && in_file_) sink_piece(piece);
}

void HttpSession::on_complete(const std::vector<Header>&) { message_complete_ = true; }

void HttpSession::on_error(const ParseError& error) {
  if (state_ != State::kIdle && state_ != State::kBody) return;
  if (state_ == State::kIdle) {  // no head: nothing of the last request applies
    head_ = RequestHead{};
    head_only_ = false;
    started_ = Clock::now();
  }
  fail_now(error.status, std::string(reason_phrase(error.status)) + ": " + error.reason);
}

// ---------------------------------------------------------------- routing

void HttpSession::route() {
  Target t = split_target(head_.target);
  std::string_view path = t.path;
  // Absolute-form (RFC 9112 section 3.2.2): a server must accept it.
  for (std::string_view scheme : {"http://", "https://"}) {
    if (path.size() >= scheme.size() && iequals(path.substr(0, scheme.size()), scheme)) {
      size_t slash = path.find('/', scheme.size());
      path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
    }
  }
  const std::string& m = head_.method;
  // A browser sends Origin with a cross-site request; a write from another
  // site's page (or an opaque "null" origin) is refused, so a page
  // elsewhere cannot upload or delete through a visitor's browser. Clients
  // that send no Origin (curl, the course's) are not concerned.
  if (m == "PUT" || m == "POST" || m == "DELETE") {
    const Header* origin = head_.find("Origin");
    const Header* host = head_.find("Host");
    if (origin && !origin_matches_host(origin->value, host ? host->value : "")) {
      reject(403, "Cross-origin write refused: Origin " + origin->value +
                      " is not this server (Host " + (host ? host->value : "") + ")");
      return;
    }
  }
  if (m == "OPTIONS" && path == "*") {
    route_ = Route::kOptions;
    return;
  }
  if (path.empty() || path[0] != '/') {
    reject(400, "Bad request target");
    return;
  }
  Result<std::string> decoded = percent_decode_path(path.substr(1));  // decoded exactly once
  if (!decoded.ok()) {
    reject(400, "Bad request target: " + decoded.error);
    return;
  }
  const std::string& p = decoded.value;
  if (m == "GET" || m == "HEAD") {
    if (p.empty()) {
      route_ = Route::kIndex;
    } else if (p == "sending.html") {
      route_ = Route::kSending;
    } else if (p == "listdir") {
      route_ = Route::kListdir;
    } else if (p == "stats") {
      route_ = Route::kStats;
    } else if (p == "whoami") {
      route_ = Route::kWhoami;
    } else if (p == "login") {
      route_ = Route::kLogin;
    } else if (p == "healthz") {
      route_ = Route::kHealth;
    } else if (p == "metrics" && shared_.metrics_text) {
      route_ = Route::kMetrics;
    } else {
      route_ = Route::kFile;
      name_ = p;
    }
  } else if (m == "POST") {
    if (p == "upload" || p == "upload/") {
      route_ = Route::kUploadForm;
    } else if (p.rfind("upload/", 0) == 0) {
      route_ = Route::kUploadPost;
      name_ = p.substr(7);
    } else {
      route_ = Route::kForm;
    }
  } else if (m == "PUT") {
    route_ = Route::kUploadPut;
    name_ = p;
  } else if (m == "DELETE") {
    route_ = Route::kDelete;
    name_ = p.rfind("delete/", 0) == 0 ? p.substr(7) : p;
  } else if (m == "OPTIONS") {
    route_ = Route::kOptions;
  } else {
    reject(405, "Method not allowed: " + m, "Allow: " + std::string(kAllow) + "\r\n");
    return;
  }
  if (route_ == Route::kFile || route_ == Route::kUploadPost || route_ == Route::kUploadPut ||
      route_ == Route::kDelete) {
    // The file protocol's name rules: no '/', no "..", no hidden names.
    if (std::string why = storage::validate_name(name_); !why.empty()) {
      reject(403, "Invalid file name: " + why);
      return;
    }
  }
  authenticate();
}

// The listener's `,ro` / `,auth=`: 403 on a read-only listener or for a role
// that may not, 401 with a Basic challenge before an account (RFC 7617
// section 2).
void HttpSession::authenticate() {
  role_ = Role::kAnonymous;
  user_.clear();
  const Header* h = head_.find("Authorization");
  if (!h || !shared_.auth || service_.policy().auth == AuthScope::kNone) {
    refuse_by_policy();
    return;
  }
  std::string user, password;
  if (!parse_basic_credentials(h->value, user, password)) {
    reject(401, "Authorization: expected Basic credentials (RFC 7617)", kChallenge);
    return;
  }
  if (shared_.auth->cached(user, password, role_)) {
    user_ = user;
    refuse_by_policy();
    return;
  }
  // Held: the parser stops after this head until the check is back.
  auth_pending_ = true;
  conn_.pause_reading();
  ConnRef ref(&conn_);
  shared_.auth->check(user, password, peer_, [this, ref, user](auth::LoginOutcome outcome) {
    if (conn_.closing() || state_ != State::kBody) return;
    auth_pending_ = false;
    role_ = outcome.role;
    if (outcome.error.empty()) user_ = user;
    if (!outcome.error.empty()) {
      reject(401, "Unauthorized: " + outcome.error, kChallenge);
    } else {
      refuse_by_policy();
    }
    if (state_ == State::kBody) begin_body();
    resume_after_hold_ = true;
    process_input();
  });
}

void HttpSession::refuse_by_policy() {
  Access access =
      route_ == Route::kDelete ? Access::kDelete
      : route_ == Route::kUploadPost || route_ == Route::kUploadPut || route_ == Route::kUploadForm
          ? Access::kWrite
          : Access::kRead;
  Refusal r = service_.policy().refuse(access, role_);
  if (r == Refusal::kLogin) {
    reject(401, "Authentication required: log in with an account of the users file", kChallenge);
  } else if (r != Refusal::kNone) {
    reject(403, "Forbidden: " + refusal_text(r, access));
  }
}

// A request we refuse from its head alone. Without a body, the reply waits
// for the (empty) message end and the connection stays open; with one, we
// answer now and close (RFC 9110 section 10.1.1 allows it for a client
// waiting on 100-continue; it saves reading a body we would drop).
void HttpSession::reject(int status, std::string text, std::string extra) {
  bool has_body = head_.framing == BodyFraming::kChunked ||
                  (head_.framing == BodyFraming::kContentLength && head_.content_length > 0);
  if (has_body) {
    fail_now(status, std::move(text), std::move(extra));
    return;
  }
  route_ = Route::kReject;
  reject_status_ = status;
  reject_text_ = std::move(text);
  reject_extra_ = std::move(extra);
}

// Replies now with Connection: close and drops the rest of the input for
// kLingerMs (the framing is lost, RFC 9112 section 9.6).
void HttpSession::fail_now(int status, std::string text, std::string extra) {
  if (sink_) sink_->cancel();
  sink_.reset();
  overflow_.clear();
  keep_alive_ = false;
  reply(status, "text/plain; charset=utf-8", text, extra);  // no request_done() here
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
  if (form_ && (!form_->done() || !file_seen_)) {
    // The body was read whole: the connection can stay.
    if (sink_) sink_->cancel();
    sink_.reset();
    overflow_.clear();
    route_ = Route::kReject;
    reject_status_ = 400;
    reject_text_ = !form_->done() ? "Bad multipart body: it ended before the closing boundary"
                                  : std::string(kFormUploadHelp);
    reject_extra_.clear();
    state_ = State::kResponding;
    dispatch();
    return;
  }
  if (body_to_ == BodyTo::kSink) return;  // process_input's pump_sink ends it
  state_ = State::kResponding;
  dispatch();
}

void HttpSession::dispatch() {
  constexpr std::string_view kHtml = "text/html; charset=utf-8";
  constexpr std::string_view kText = "text/plain; charset=utf-8";
  switch (route_) {
    case Route::kReject:
      reply(reject_status_, kText, reject_text_, reject_extra_);
      return;
    case Route::kIndex:
      start_listdir(true);
      return;
    case Route::kSending:
      reply(200, kHtml, sending_page());
      return;
    case Route::kStats:
      reply(200, "application/json", shared_.stats_json() + "\n", "Cache-Control: no-store\r\n");
      return;
    case Route::kWhoami: {
      // The user name holds only [A-Za-z0-9._-] (auth::validate_user_name).
      const ListenerPolicy& p = service_.policy();
      auto may = [&](Access a) { return p.refuse(a, role_) == Refusal::kNone ? "true" : "false"; };
      std::string body =
          "{\"user\":" + (user_.empty() ? std::string("null") : "\"" + user_ + "\"") +
          ",\"role\":\"" + std::string(role_name(role_)) + "\",\"listener\":\"" + p.text() +
          "\",\"accounts\":" + (p.auth != AuthScope::kNone ? "true" : "false") +
          ",\"upload\":" + may(Access::kWrite) + ",\"delete\":" + may(Access::kDelete) + "}\n";
      reply(200, "application/json", body, "Cache-Control: no-store\r\n");
      return;
    }
    case Route::kLogin:
      if (service_.policy().auth != AuthScope::kNone && role_ == Role::kAnonymous) {
        reply(401, kText, "Log in with an account of this server\n", kChallenge);
      } else {
        reply(303, kText, "See /\n", "Location: /\r\n");
      }
      return;
    case Route::kHealth: {
      // 503 from the stop signal on, so HAProxy's `option httpchk` takes the
      // node out before its listeners close (--drain-delay).
      const bool failing = conn_.reactor().health_failing;
      reply(failing ? 503 : 200, kText,
            std::string(failing ? "draining" : "ok") + " node=" + shared_.node_id + "\n",
            "Cache-Control: no-store\r\n");
      return;
    }
    case Route::kMetrics:
      reply(200, "text/plain; version=0.0.4; charset=utf-8", shared_.metrics_text(),
            "Cache-Control: no-store\r\n");
      return;
    case Route::kListdir:
      start_listdir(false);
      return;
    case Route::kFile:
      start_get(name_, head_only_);
      return;
    case Route::kDelete:
      start_delete(name_);
      return;
    case Route::kForm:
      reply_form();
      return;
    case Route::kOptions:
      reply(204, {}, {}, "Allow: " + std::string(kAllow) + "\r\n");
      return;
    case Route::kUploadPost:
    case Route::kUploadPut:
    case Route::kUploadForm:
      return;  // the sink's done callback replies
  }
}

// ---------------------------------------------------------------- replies

std::string HttpSession::reply_head(int status, std::string_view type, int64_t length,
                                    std::string_view extra, size_t body_reserve) {
  std::string h;
  h.reserve(256 + extra.size() + body_reserve);
  h += "HTTP/1.1 ";
  h += std::to_string(status);
  h += ' ';
  h += reason_phrase(status);
  h += "\r\nDate: ";
  h += service_.date();
  h += "\r\nServer: ";
  h += kServer;
  h += "\r\n";
  h += extra;
  if (!type.empty()) {
    h += "Content-Type: ";
    h += type;
    h += "\r\n";
  }
  if (length >= 0) {
    h += "Content-Length: ";
    h += std::to_string(length);
    h += "\r\n";
  }
  if (quit_) keep_alive_ = false;
  if (!keep_alive_) {
    h += "Connection: close\r\n";
  } else if (head_.version_major == 1 && head_.version_minor == 0) {
    h += "Connection: keep-alive\r\n";  // RFC 9112 section 9.3 (HTTP/1.0 keep-alive)
  }
  h += "\r\n";
  return h;
}

void HttpSession::reply(int status, std::string_view type, std::string_view body,
                        std::string_view extra) {
  // 204 and 304 carry no body and (204) no Content-Length (RFC 9110
  // sections 8.6, 15.3.5, 15.4.5).
  bool no_body = status == 204 || status == 304;
  bool send_body = !no_body && !head_only_;
  std::string out = reply_head(status, type, no_body ? -1 : static_cast<int64_t>(body.size()),
                               extra, send_body ? body.size() : 0);
  if (send_body) out += body;
  count_once(status);
  conn_.write_owned_moved(std::move(out));
  finish(status, send_body ? body.size() : 0);
}

// Counted before the reply's first byte is written: a client that reads the
// reply and then asks /stats (on another worker) must see it counted.
void HttpSession::count_once(int status) {
  if (counted_) return;
  counted_ = true;
  service_.count(status);
}

void HttpSession::finish(int status, uint64_t body_bytes) {
  count_once(status);
  counted_ = false;
  double secs = std::chrono::duration<double>(Clock::now() - started_).count();
  std::string line = head_.raw_lines.empty() ? "-" : head_.raw_lines[0];
  // Health checks arrive every half second per balancer: not traffic.
  if (route_ != Route::kHealth) {
    FSRV_LOG_INFO("%s - - [%s] \"%s\" %d %" PRIu64 " %.6f", peer_.c_str(),
                  service_.log_time().c_str(), line.c_str(), status, body_bytes, secs);
    service_.observe_duration(secs);
  }
  if (log::access_enabled() && route_ != Route::kHealth) {
    const Header* referer = head_.find("referer");
    const Header* agent = head_.find("user-agent");
    std::string code = std::to_string(status);
    log::access({.service = "http",
                 .peer = peer_,
                 .verb = head_.method,
                 .name = head_.target,
                 .status = code,
                 .bytes = body_bytes,
                 .seconds = secs,
                 .request_line = line,
                 .referer = referer ? std::string_view(referer->value) : std::string_view(),
                 .user_agent = agent ? std::string_view(agent->value) : std::string_view()});
  }
  if (state_ == State::kResponding) request_done();
}

void HttpSession::request_done() {
  state_ = State::kIdle;
  if (conn_.closing()) return;
  if (!keep_alive_) {
    state_ = State::kClosed;
    conn_.close_when_flushed();
    return;
  }
  process_input();  // returns at once when called from inside it
}

// ---------------------------------------------------------------- GET / HEAD

void HttpSession::start_get(std::string name, bool head_only) {
  // A small file read before and unchanged since: no executor hop.
  storage::SmallFileCache& cache = service_.file_cache();
  if (auto hit = cache.find(name)) {
    answer_get(name, hit->stamp.size, hit->stamp.mtime_ns, &hit->data, nullptr, &hit->derived);
    return;
  }
  struct Opened {
    Result<storage::ReadFile> file;
    std::string data;  ///< the whole file when it is at most kInlineFileMax
    bool inline_data = false;
    std::shared_ptr<const storage::CachedFile> cached;  ///< read for the cache
  };
  auto op = std::make_shared<Opened>();
  const storage::Root* root = shared_.root;
  ConnRef ref(&conn_);
  shared_.executor->submit(
      [op, root, name, head_only] {
        op->file = root->open_read(name);
        if (!op->file.ok() || head_only || op->file.value.size() > kInlineFileMax) return;
        if (op->file.value.size() <= storage::SmallFileCache::kMaxFileBytes) {
          op->cached = storage::SmallFileCache::load(op->file.value);
          if (op->cached) return;
        }
        op->data.resize(op->file.value.size());
        auto r = op->file.value.read_at(
            {reinterpret_cast<uint8_t*>(op->data.data()), op->data.size()}, 0);
        if (!r.ok()) {
          op->file = Result<storage::ReadFile>::failure(r.status());
          return;
        }
        op->data.resize(r.value);  // the file may have shrunk since open
        op->inline_data = true;
      },
      [this, ref, op, name, &cache] {
        if (conn_.closing()) return;
        if (!op->file.ok()) {
          int st = status_for(op->file.code);
          reply(st, "text/plain; charset=utf-8", error_body(st, op->file.status(), name));
          return;
        }
        if (op->cached) {
          cache.insert(name, op->cached);
          answer_get(name, op->cached->stamp.size, op->cached->stamp.mtime_ns, &op->cached->data,
                     nullptr, &op->cached->derived);
          return;
        }
        storage::ReadFile& f = op->file.value;
        answer_get(name, op->inline_data ? op->data.size() : f.size(), f.mtime_ns(),
                   op->inline_data ? &op->data : nullptr, &f);
      });
}

void HttpSession::answer_get(const std::string& name, uint64_t size, int64_t mtime_ns,
                             const std::string* data, storage::ReadFile* f,
                             std::string* validators) {
  int64_t mtime_s = mtime_ns / 1000000000;
  std::string made;
  if (!validators) validators = &made;
  if (validators->empty())
    *validators = make_etag(size, mtime_ns) + '\n' + format_http_date(mtime_s);
  const size_t nl = validators->find('\n');
  std::string_view etag = std::string_view(*validators).substr(0, nl);
  std::string_view last_modified = std::string_view(*validators).substr(nl + 1);
  std::string meta;
  meta.reserve(160);
  meta += "Last-Modified: ";
  meta += last_modified;
  meta += "\r\nETag: ";
  meta += etag;
  meta += "\r\nAccept-Ranges: bytes\r\n";
  meta += kStoredFileFields;
  // RFC 9110 section 13.2.2: If-None-Match first; If-Modified-Since
  // only without it.
  bool not_modified = false;
  if (const Header* inm = head_.find("If-None-Match")) {
    not_modified = none_match(inm->value, etag);
  } else if (const Header* ims = head_.find("If-Modified-Since")) {
    std::optional<int64_t> t = parse_http_date(ims->value);
    not_modified = t && mtime_s <= *t;
  }
  if (not_modified) {
    reply(304, {}, {}, meta);
    return;
  }
  std::string_view type = mime_type_for(name);
  uint64_t offset = 0, length = size;
  int status = 200;
  const Header* range = head_.find("Range");
  if (const Header* if_range = head_.find("If-Range");
      range && if_range && if_range->value != etag && if_range->value != last_modified) {
    range = nullptr;  // RFC 9110 section 13.1.5: changed, send it whole
  }
  if (range) {
    RangeResult rr = parse_range(range->value, size);
    if (rr.decision == RangeDecision::kUnsatisfiable) {
      reply(416, "text/plain; charset=utf-8", "Range not satisfiable",
            meta + "Content-Range: " + content_range_unsatisfied(size) + "\r\n");
      return;
    }
    if (rr.decision == RangeDecision::kPartial) {
      status = 206;
      offset = rr.range.first;
      length = rr.range.length();
      meta += "Content-Range: " + content_range(rr.range, size) + "\r\n";
    }
  }
  count_once(status);
  if (head_only_) {
    conn_.write_owned(reply_head(status, type, static_cast<int64_t>(length), meta));
    finish(status, 0);
    return;
  }
  if (data) {
    reply(status, type, std::string_view(*data).substr(offset, length), meta);
    return;
  }
  std::string prefix = reply_head(status, type, static_cast<int64_t>(length), meta);
  transfer::SendOptions o;
  o.prefix = std::move(prefix);
  o.transform = transfer::Transform::kIdentity;
  o.offset = offset;
  o.length = length;
  get_ = transfer::send_file(conn_, *shared_.executor, std::move(*f), std::move(o),
                             [this, status, length](Status) {
                               get_.reset();
                               finish(status, length);
                             });
}

// ---------------------------------------------------------------- uploads

void HttpSession::start_upload() {
  if (head_.framing == BodyFraming::kContentLength &&
      head_.content_length > shared_.config->max_upload) {
    fail_now(413,
             "Upload too large: limit " + std::to_string(shared_.config->max_upload) + " bytes");
    return;
  }
  body_to_ = BodyTo::kSink;
  upload_finished_ = false;
  upload_status_ = {};
  overflow_.clear();
  transfer::UploadSink::Options o;
  o.name = name_;
  o.transform = transfer::Transform::kIdentity;
  o.max_bytes = shared_.config->max_upload;
  sink_ = transfer::UploadSink::start(
      conn_, *shared_.executor, *shared_.root, std::move(o),
      [this] {
        if (state_ == State::kBody && body_to_ == BodyTo::kSink) process_input();
      },
      [this](Status s, uint64_t bytes) { upload_done(std::move(s), bytes); });
}

// POST /upload: the body must be multipart/form-data; the sink starts
// with its file part (on_part). Anything else is refused from the head.
void HttpSession::start_form_upload() {
  const Header* ct = head_.find("Content-Type");
  Result<std::string> boundary =
      ct ? multipart_boundary(ct->value) : Result<std::string>::failure(Errc::kBadRequest, "");
  if (!boundary.ok()) {
    reject(400, std::string(kFormUploadHelp));
    return;
  }
  form_ = std::make_unique<MultipartReader>(boundary.value);
  body_to_ = BodyTo::kSink;  // pump_sink and the reply wait for the sink
  overflow_.clear();
  upload_finished_ = false;
}

// Moves held-back body bytes into the sink and ends the upload once the
// message is complete. False while the sink has no room (reading stops;
// on_space calls process_input again).
bool HttpSession::pump_sink() {
  if (!sink_) return true;
  if (!overflow_.empty()) overflow_.erase(0, sink_->feed(overflow_));
  if (!sink_->error().ok()) {
    int st = status_for(sink_->error().code);
    fail_now(st, error_body(st, sink_->error(), name_));
    return true;
  }
  if (!overflow_.empty()) return false;
  if (body_complete_) {
    state_ = State::kResponding;
    sink_->end();
  }
  return true;
}

void HttpSession::upload_done(Status s, uint64_t bytes) {
  replaced_ = sink_ && sink_->replaced();
  sink_.reset();
  upload_finished_ = true;
  upload_status_ = std::move(s);
  if (upload_status_.ok()) service_.count_upload(bytes);
  service_.file_cache().erase(name_);  // replaced (the stamp would tell too)
  maybe_reply_upload();
}

void HttpSession::maybe_reply_upload() {
  if (!upload_finished_ || state_ != State::kResponding) return;
  upload_finished_ = false;
  constexpr std::string_view kText = "text/plain; charset=utf-8";
  if (!upload_status_.ok()) {
    int st = status_for(upload_status_.code);
    reply(st, kText, error_body(st, upload_status_, name_));
    return;
  }
  std::string msg = "File " + name_ + " uploaded successfully";
  if (route_ == Route::kUploadPost || route_ == Route::kUploadForm) {
    reply(200, kText, msg);
  } else if (replaced_) {  // RFC 9110 section 9.3.4: 204 replaced, 201 created
    reply(204, {}, {});
  } else {
    reply(201, kText, msg, "Location: /" + name_ + "\r\n");
  }
}

// ---------------------------------------------------------------- others

void HttpSession::start_delete(std::string name) {
  auto st = std::make_shared<Status>();
  const storage::Root* root = shared_.root;
  ConnRef ref(&conn_);
  shared_.executor->submit([st, root, name] { *st = root->remove(name); },
                           [this, ref, st, name] {
                             service_.file_cache().erase(name);
                             if (conn_.closing()) return;
                             constexpr std::string_view kText = "text/plain; charset=utf-8";
                             if (st->ok()) {
                               reply(200, kText, "File " + name + " deleted successfully");
                             } else {
                               int code = status_for(st->code);
                               reply(code, kText, error_body(code, *st, name));
                             }
                           });
}

// Regular, non-hidden files of the root with size and mtime, sorted by
// name (storage::Root::list); names that vanish meanwhile are skipped. Runs
// on the pool.
Result<std::vector<ListedFile>> list_files(const storage::Root& root) {
  auto names = root.list();
  if (!names.ok()) return Result<std::vector<ListedFile>>::failure(names.status());
  Result<std::vector<ListedFile>> out;
  for (const std::string& n : names.value) {
    auto f = root.open_read(n);  // size and mtime
    if (!f.ok()) continue;
    out.value.push_back({n, f.value.size(), f.value.mtime_ns()});
  }
  return out;
}

// GET /listdir (JSON) and GET / (the page with the list in it).
void HttpSession::start_listdir(bool page) {
  auto out = std::make_shared<Result<std::string>>();
  const storage::Root* root = shared_.root;
  ConnRef ref(&conn_);
  shared_.executor->submit(
      [out, root, page] {
        auto files = list_files(*root);
        if (!files.ok()) {
          *out = Result<std::string>::failure(files.status());
          return;
        }
        if (page) {
          out->value = web_page(files.value);
          return;
        }
        std::string j = "[";
        for (const ListedFile& f : files.value) {
          if (j.size() > 1) j += ", ";
          j += "{\"name\": ";
          json_string(j, f.name);
          char num[96];
          snprintf(num, sizeof num, ", \"size\": %" PRIu64 ", \"modified\": %.6f}", f.size,
                   static_cast<double>(f.mtime_ns) / 1e9);
          j += num;
        }
        j += "]";
        out->value = std::move(j);
      },
      [this, ref, out, page] {
        if (conn_.closing()) return;
        if (!out->ok()) {
          int st = status_for(out->code);
          reply(st, "text/plain; charset=utf-8", error_body(st, out->status(), ""));
          return;
        }
        if (page) {
          reply(200, "text/html; charset=utf-8", out->value, "Cache-Control: no-cache\r\n");
        } else {
          reply(200, "application/json", out->value, "Cache-Control: no-store\r\n");
        }
      });
}

// tugas 8: each decoded field as name=value on its own line, a blank line,
// then every header line of the request exactly as received.
void HttpSession::reply_form() {
  std::vector<FormField> fields;
  const Header* ct = head_.find("Content-Type");
  if (ct && iequals(ct->value.substr(0, 19), "multipart/form-data")) {
    Result<std::string> boundary = multipart_boundary(ct->value);
    Result<std::vector<FormField>> parts =
        boundary.ok() ? parse_multipart(form_body_, boundary.value)
                      : Result<std::vector<FormField>>::failure(boundary.status());
    if (!parts.ok()) {
      release_form();
      reply(400, "text/plain; charset=utf-8", "Bad form body: " + parts.error);
      return;
    }
    fields = std::move(parts.value);
  } else {
    fields = parse_urlencoded(form_body_);
  }
  std::string body;
  for (const FormField& f : fields) {
    body += f.name;
    body += '=';
    body += f.is_file ? f.filename : f.value;
    body += "\r\n";
  }
  body += "\r\n";
  for (size_t i = 1; i < head_.raw_lines.size(); ++i) {
    body += head_.raw_lines[i];
    body += "\r\n";
  }
  release_form();
  reply(200, "text/plain; charset=utf-8", body);
}

}  // namespace

const ServiceInfo& info() {
  static const ServiceInfo kInfo{
      "http",
      "HTTP/1.1 file server (seed 004, tugas 6-8): web UI, /listdir, uploads, Range, keep-alive",
      // 8885: seed 004; the course runs tugas 6's server on 10001 (`GET /`
      // by telnet) and tugas 8's on 10002 (/sending.html).
      {8885, 10001, 10002},
      "curl -s http://127.0.0.1:{port}/listdir",
      [](stats::Schema& schema) {
        schema.add("http/requests");
        schema.add("http/uploads/bytes");
        for (int s : kCountedStatuses) schema.add("http/status/" + std::to_string(s));
      },
      [](reactor::Refusal why, int limit) {
        std::string body =
            why == reactor::Refusal::kShuttingDown
                ? "Server shutting down\n"
                : "Server busy: too many connections (limit " + std::to_string(limit) + ")\n";
        return "HTTP/1.1 503 Service Unavailable\r\nDate: " + format_http_date(time(nullptr)) +
               "\r\nServer: " + std::string(kServer) +
               "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" +
               body;
      },
      [](Shared& shared) -> std::unique_ptr<Service> {
        return std::make_unique<HttpService>(shared);
      },
      Transport::kStream,
      nullptr,
      kPolicyReadOnly | kPolicyAuth};
  return kInfo;
}

}  // namespace fsrv::services::http
