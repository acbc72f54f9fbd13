// The file-raw service's connection handler (seed 000's raw-bytes dialect;
// wire format in docs/services/file-raw.md).

#include <string>
#include <vector>

#include "fsrv/core/limits.hpp"
#include "fsrv/services/file_raw/file_raw_service.hpp"
#include "fsrv/services/file_raw/raw_protocol.hpp"
#include "fsrv/services/kit/login.hpp"
#include "fsrv/services/kit/storage_calls.hpp"
#include "fsrv/services/kit/stream_session.hpp"
#include "fsrv/services/kit/verb_counters.hpp"
#include "fsrv/storage/storage.hpp"
#include "fsrv/transfer/file_sender.hpp"
#include "fsrv/transfer/upload_sink.hpp"

namespace fsrv::services::file_raw {

namespace {

using reactor::Connection;
using reactor::ConnRef;
using Counters = kit::VerbCounters<raw_cmd_name, kRawCmdCount>;

class RawService final : public Service {
 public:
  explicit RawService(Shared& shared) : Service(shared, info()), counters(*this) {}
  Counters counters;

 protected:
  std::unique_ptr<reactor::ConnectionHandler> create_handler(Connection& conn) override;
};

/// "ERROR <text>\r\n".
std::string error_line(std::string_view text) {
  std::string out = "ERROR ";
  out += text;
  out += kEol;
  return out;
}

/// This dialect's wording of a typed storage error about `name`.
std::string wording(const Status& s, std::string_view name) {
  switch (s.code) {
    case Errc::kInvalidName:
      return "invalid name: " + s.error;
    case Errc::kNotFound:
    case Errc::kNotRegular:
    case Errc::kPermission:
      return s.error + ": " + std::string(name);
    case Errc::kNoSpace:
      return "disk full";
    default:
      return s.error;
  }
}

class RawSession final : public kit::StreamSession {
 public:
  RawSession(Connection& conn, RawService& service)
      : StreamSession(conn),
        service_(service),
        shared_(service.shared()),
        config_(*shared_.config) {}

  void on_eof() override;
  void on_idle_timeout() override;
  void on_request_timeout() override;
  void on_close() override;

 private:
  void process_input() override;
  bool next_request();
  void run(const RawRequest& req);
  void reply(RawCmd cmd, bool ok, std::string_view bytes);
  void start_list();
  void start_download(const std::string& name);
  void start_upload(const RawRequest& req);
  void start_auth(const RawRequest& req);
  /// The listener's policy refuses `access` to this connection's role: the
  /// refusal's words, else "".
  std::string refused(Access access) const;
  void payload_step(kit::PayloadReader::Step step) override;

  RawService& service_;
  Shared& shared_;
  const ServerConfig& config_;
  uint64_t expected_ = 0;  ///< the UPLOAD's size
  std::string name_;
  std::string discard_error_;  ///< non-empty: the payload is dropped, then this is answered
  std::shared_ptr<transfer::FileSender> get_;
  /// The account this connection authenticated as (AUTH), for the policy.
  Role role_ = Role::kAnonymous;
};

std::unique_ptr<reactor::ConnectionHandler> RawService::create_handler(Connection& conn) {
  return std::make_unique<RawSession>(conn, *this);
}

// ---------------------------------------------------------------- input

void RawSession::on_eof() {
  eof_ = true;
  if (payload_.active()) {
    payload_.cancel();
    reply(RawCmd::kUpload, false,
          error_line("upload interrupted: connection closed after " +
                     std::to_string(payload_.taken()) + " of " + std::to_string(expected_) +
                     " bytes"));
    conn_.close_when_flushed();
    return;
  }
  if (!loop_.busy()) process_input();
}

void RawSession::on_idle_timeout() {
  if (get_ && get_->sent() > 0) {
    conn_.close();  // mid-stream: an ERROR line cannot be spliced in
    return;
  }
  payload_.cancel();
  conn_.write_owned(error_line("idle timeout: no data for " +
                               std::to_string(static_cast<int>(config_.idle_timeout_s)) + " s"));
  conn_.close_when_flushed();
}

// A request line not complete within --request-timeout of its first byte.
void RawSession::on_request_timeout() {
  if (loop_.busy()) {
    conn_.close();
    return;
  }
  char why[96];
  snprintf(why, sizeof why, "request timeout: line not complete within %g s",
           config_.request_timeout_s);
  reply(RawCmd::kUnknown, false, error_line(why));
  conn_.close_when_flushed();
}

void RawSession::on_close() {
  if (get_) get_->cancel();
  get_.reset();
  payload_.cancel();
}

// ---------------------------------------------------------------- requests

void RawSession::reply(RawCmd cmd, bool ok, std::string_view bytes) {
  conn_.write_owned(bytes);
  service_.counters.count(cmd, ok);
}

void RawSession::process_input() {
  if (!loop_.pump([this] { return next_request(); })) return;
  if (eof_) {
    conn_.close_when_flushed();  // an unterminated last line is not a request here
    return;
  }
  conn_.resume_reading();
}

bool RawSession::next_request() {
  RawLine l = next_raw_line(in_.view(), limits::kMaxLine);
  in_.consume(l.consumed);
  if (l.kind != RawLine::kNeedMore || in_.empty()) conn_.request_head_done();
  if (l.kind == RawLine::kNeedMore) return false;
  if (l.kind == RawLine::kTooLong) {
    reply(
        RawCmd::kUnknown, false,
        error_line("request line too long (limit " + std::to_string(limits::kMaxLine) + " bytes)"));
    conn_.close_when_flushed();
    return false;
  }
  run(parse_raw_line(l.line));
  return true;
}

void RawSession::run(const RawRequest& req) {
  if (!req.error.empty()) {
    reply(req.cmd, false, error_line(req.error));
    if (req.fatal) conn_.close_when_flushed();
    return;
  }
  if (req.cmd == RawCmd::kList || req.cmd == RawCmd::kDownload) {
    if (std::string why = refused(Access::kRead); !why.empty()) {  // auth=all
      reply(req.cmd, false, error_line(why));
      return;
    }
  }
  switch (req.cmd) {
    case RawCmd::kList:
      start_list();
      return;
    case RawCmd::kDownload:
      start_download(req.name);
      return;
    case RawCmd::kAuth:
      start_auth(req);
      return;
    case RawCmd::kUpload:
      start_upload(req);
      return;
    default:
      reply(RawCmd::kUnknown, false, error_line("unknown command"));
      return;
  }
}

void RawSession::start_list() {
  loop_.begin();
  conn_.pause_reading();
  kit::list_root(conn_, shared_, [this](Result<std::vector<std::string>>& result) {
    if (!result.ok()) {
      reply(RawCmd::kList, false, error_line(wording(result.status(), "")));
    } else {
      std::string text;
      for (const std::string& n : result.value) {
        if (!text.empty()) text += '\n';
        text += n;
      }
      text += kListEnd;
      reply(RawCmd::kList, true, text);
    }
    request_done();
  });
}

void RawSession::start_download(const std::string& name) {
  loop_.begin();
  conn_.pause_reading();
  kit::open_read(conn_, shared_, name, [this, name](Result<storage::ReadFile>& opened) {
    if (!opened.ok()) {
      reply(RawCmd::kDownload, false, error_line(wording(opened.status(), name)));
      request_done();
      return;
    }
    transfer::SendOptions o;
    o.prefix = std::to_string(opened.value.size()) + std::string(kEol);
    o.transform = transfer::Transform::kIdentity;  // sendfile(2)
    o.length = opened.value.size();                // the size announced, even if the file grows
    get_ = transfer::send_file(conn_, *shared_.executor, std::move(opened.value), std::move(o),
                               [this](Status s) {
                                 get_.reset();
                                 service_.counters.count(RawCmd::kDownload, s.ok());
                                 request_done();
                               });
  });
}

void RawSession::start_upload(const RawRequest& req) {
  expected_ = req.size;
  name_ = req.name;
  if (req.size > config_.max_upload) {
    // Reading and dropping that many bytes would only waste the link.
    reply(RawCmd::kUpload, false,
          error_line("upload too large: " + std::to_string(req.size) + " bytes (limit " +
                     std::to_string(config_.max_upload) + ")"));
    conn_.close_when_flushed();
    return;
  }
  loop_.begin();
  discard_error_.clear();
  std::shared_ptr<transfer::UploadSink> sink;
  if (std::string why = refused(Access::kWrite); !why.empty()) {
    discard_error_ = why;  // dropped, answered after it
  } else if (std::string why = storage::validate_name(req.name); !why.empty()) {
    // The size is known: drop the payload, answer after it, keep serving.
    discard_error_ = "invalid name: " + why;
  } else {
    transfer::UploadSink::Options o;
    o.name = req.name;
    o.transform = transfer::Transform::kIdentity;
    o.max_bytes = config_.max_upload;
    sink = transfer::UploadSink::start(
        conn_, *shared_.executor, *shared_.root, std::move(o), sink_space(),
        [this](Status s, uint64_t bytes) {
          payload_.reset();
          if (s.ok()) {
            reply(RawCmd::kUpload, true,
                  "OK " + name_ + " uploaded (" + std::to_string(bytes) + " bytes)" +
                      std::string(kEol));
          } else {
            reply(RawCmd::kUpload, false, error_line(wording(s, name_)));
          }
          request_done();
        });
  }
  payload_.start(std::move(sink), kit::PayloadEnd::count(req.size));
  payload_step(payload_.feed());
}

std::string RawSession::refused(Access access) const {
  Refusal r = service_.policy().refuse(access, role_);
  return r == Refusal::kNone ? std::string() : refusal_text(r, access);
}

// AUTH user password (our extension, as the file protocol's), in this
// dialect's words: "OK ..." or "ERROR AUTH: ...".
void RawSession::start_auth(const RawRequest& req) {
  std::string user = req.name;
  bool started = kit::start_login(
      conn_, service_, req.name, req.password, [this, user](auth::LoginOutcome outcome) {
        bool ok = outcome.error.empty();
        if (ok) role_ = outcome.role;
        reply(RawCmd::kAuth, ok,
              ok ? "OK authenticated as " + user + " (role " + std::string(role_name(role_)) + ")" +
                       std::string(kEol)
                 : error_line("AUTH: " + outcome.error));
        request_done();
      });
  if (!started) {
    reply(RawCmd::kAuth, false, error_line("AUTH: " + std::string(kit::kNoAccounts)));
    return;
  }
  loop_.begin();
  conn_.pause_reading();
}

// A dropped payload is answered at its end; a stored one when its sink is
// done (the sink's callback).
void RawSession::payload_step(kit::PayloadReader::Step step) {
  if (step != kit::PayloadReader::Step::kDone || discard_error_.empty()) return;
  reply(RawCmd::kUpload, false, error_line(discard_error_));
  request_done();
}

}  // namespace

const ServiceInfo& info() {
  static const ServiceInfo kInfo{
      "file-raw",
      "seed 000's raw-bytes file dialect: LIST, UPLOAD name size + bytes, DOWNLOAD (sendfile)",
      {9000},
      "printf 'LIST\\r\\n' | nc -q1 127.0.0.1 {port}",
      [](stats::Schema& schema) { Counters::register_stats(schema, "file-raw"); },
      [](reactor::Refusal why, int limit) { return error_line(busy_text(why, limit)); },
      [](Shared& shared) -> std::unique_ptr<Service> {
        return std::make_unique<RawService>(shared);
      },
      Transport::kStream,
      nullptr,
      kPolicyReadOnly | kPolicyAuth};
  return kInfo;
}

}  // namespace fsrv::services::file_raw
