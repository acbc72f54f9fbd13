#pragma once
// One HTTP/1.1 connection of the http service (HttpSession): the request
// framing (reads, the llhttp RequestParser, pipelining, keep-alive, idle,
// lingering close after an error) in http_session.cpp; its other rooms
// are member functions defined beside their concern: routing, policy and
// GET/HEAD of files in http_routes.cpp, uploads and the form echo in
// http_upload.cpp, reply heads and the access log in http_reply.cpp.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fsrv/reactor/connection.hpp"
#include "fsrv/services/http/http_service.hpp"
#include "fsrv/services/http/multipart_reader.hpp"
#include "fsrv/services/http/request_parser.hpp"
#include "fsrv/storage/storage.hpp"
#include "fsrv/transfer/file_sender.hpp"
#include "fsrv/transfer/upload_sink.hpp"

namespace fsrv::services::http {

using reactor::Connection;
using reactor::ConnRef;
using Clock = std::chrono::steady_clock;

/// What POST /upload answers when its body has no file to store.
inline constexpr std::string_view kFormUploadHelp =
    "POST /upload needs a multipart/form-data body with a file part, e.g. "
    "curl -F file=@photo.jpg http://HOST/upload (the file is stored under its filename); "
    "raw bytes go to POST /upload/{name} or PUT /{name}";

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

/// One connection's handler: parses requests, answers them in order and
/// keeps the connection alive between them (see the top of this header).
class HttpSession final : public reactor::ConnectionHandler,
                          public RequestHandler,
                          public MultipartHandler {
 public:
  HttpSession(Connection& conn, HttpService& service)
      : conn_(conn), service_(service), shared_(service.shared()) {}

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

  // RequestHandler (called from inside rq_->parser.feed)
  void on_head(const RequestHead& head) override;
  void on_body(std::string_view piece) override;
  void on_complete(const std::vector<Header>& trailers) override;
  void on_error(const ParseError& error) override;

  // MultipartHandler (called from inside rq_->form->feed, POST /upload)
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
  /// Closes once the replies are out; no input is read meanwhile.
  void close_flushed() {
    state_ = State::kClosed;
    conn_.close_when_flushed();
  }
  void dispatch();
  void request_done();

  /// Head of a reply: head_fields (the service's Date) and the Connection
  /// field our keep-alive decision needs. `body_reserve`: bytes of body the
  /// caller appends (reserved, so no reallocation).
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
  void start_delete(std::string name);
  void start_listdir(bool page);
  void reply_form();

  /// What only a request in progress needs: the parser's state, the
  /// request head and the strings made from it. Made when the first byte of
  /// a request arrives (open_request), released when the connection is idle
  /// again with no input left (the end of process_input, where the read
  /// buffer goes back too): an idle keep-alive connection holds none of it
  /// (nginx frees its request the same way).
  struct Request {
    Request(HttpSession& session, const ServerConfig& config)
        : parser(session, {.max_body = config.max_upload}) {}  // 413 while the body streams
    RequestParser parser;
    RequestHead head;
    std::string name;
    std::string user;  ///< the account's name once the password checked out
    std::string reject_text, reject_extra;
    std::string form_body;
    std::string overflow;  ///< body bytes the sink had no room for (< one read)
    /// POST /upload: the body's reader.
    std::unique_ptr<MultipartReader> form;
  };
  void open_request() {
    if (!rq_) rq_ = std::make_unique<Request>(*this, *shared_.config);
  }
  /// Gives the request's memory back (nothing of it may be in use).
  void release_request() {
    release_form();
    rq_.reset();
  }
  /// True between a request's first byte and its end (the parser's view).
  bool in_message() const { return rq_ && rq_->parser.in_message(); }
  /// The head of the current request (an empty one when there is none).
  const RequestHead& head() const;
  /// The client's address for log lines ("-" if unknown).
  std::string peer_text() const;

  Connection& conn_;
  HttpService& service_;
  /// The account of the current request (Authorization: Basic), for the policy.
  Role role_ = Role::kAnonymous;
  bool auth_pending_ = false;       ///< its password is being checked
  bool resume_after_hold_ = false;  ///< the parser is paused after a held head
  bool processing_ = false;
  bool eof_ = false;
  bool quit_ = false;
  State state_ = State::kIdle;
  Shared& shared_;
  std::unique_ptr<Request> rq_;

  std::vector<char> in_;
  size_t in_start_ = 0;
  size_t in_end_ = 0;

  // The current request's small state (the rest is in rq_).
  Route route_ = Route::kReject;
  bool head_only_ = false;
  bool keep_alive_ = true;
  bool message_complete_ = false;
  bool body_complete_ = false;
  BodyTo body_to_ = BodyTo::kDiscard;
  int reject_status_ = 0;
  size_t form_charged_ = 0;  ///< rq_->form_body's bytes taken from the service's budget
  /// Empties the form body and gives its bytes back to the budget.
  void release_form() {
    service_.give_form_bytes(form_charged_);
    form_charged_ = 0;
    if (rq_) std::string().swap(rq_->form_body);  // capacity and all
  }
  Clock::time_point started_;
  bool counted_ = false;  ///< the current reply's status is counted

  // Uploads.
  /// POST /upload: whether a file part was met (the first one is stored;
  /// later parts are read and ignored).
  bool file_seen_ = false;
  bool in_file_ = false;
  std::shared_ptr<transfer::UploadSink> sink_;
  /// Cancels the upload in progress, if any (an old file of its name
  /// stays), and drops the body bytes held back for it.
  void cancel_upload() {
    if (sink_) sink_->cancel();
    sink_.reset();
    if (rq_) rq_->overflow.clear();
  }

  std::shared_ptr<transfer::FileSender> get_;
};

}  // namespace fsrv::services::http
