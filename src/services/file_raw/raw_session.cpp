// The file-raw service's connection handler (seed 000's raw-bytes dialect;
// wire format in docs/services/file-raw.md).

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "fsrv/core/limits.hpp"
#include "fsrv/services/file_raw/file_raw_service.hpp"
#include "fsrv/services/file_raw/raw_protocol.hpp"
#include "fsrv/storage/storage.hpp"
#include "fsrv/transfer/file_sender.hpp"
#include "fsrv/transfer/upload_sink.hpp"

namespace fsrv::services::file_raw {

namespace {

using reactor::Connection;
using reactor::ConnRef;

/// Requests answered in one turn of the loop before yielding it (as the
/// file service's kRequestsPerTurn).
constexpr int kRequestsPerTurn = 64;

class RawService final : public Service {
 public:
  explicit RawService(Shared& shared) : Service(shared, "file-raw") {
    for (int c = 0; c < kRawCmdCount; ++c) {
      std::string verb(raw_cmd_name(static_cast<RawCmd>(c)));
      ok_[c] = counter("commands/" + verb + "/ok");
      failed_[c] = counter("commands/" + verb + "/failed");
    }
  }
  std::string refusal(reactor::Refusal why, int limit) const override {
    return info().refusal(why, limit);
  }
  void count(RawCmd c, bool ok) { shared_.stats->add((ok ? ok_ : failed_)[static_cast<int>(c)]); }
  Shared& shared() { return shared_; }

 protected:
  std::unique_ptr<reactor::ConnectionHandler> create_handler(Connection& conn) override;

 private:
  stats::Counter ok_[kRawCmdCount], failed_[kRawCmdCount];
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

class RawSession final : public reactor::ConnectionHandler {
 public:
  RawSession(Connection& conn, RawService& service)
      : conn_(conn), service_(service), shared_(service.shared()), config_(*shared_.config) {}

  std::span<char> read_space() override;
  void on_read(size_t n) override;
  void on_eof() override;
  void on_idle_timeout() override;
  void on_request_timeout() override;
  void on_drain() override { process_input(); }
  void on_shutdown() override;
  void on_close() override;

 private:
  enum class State { kIdle, kBusy, kPayload, kDiscard };

  std::string_view input() const { return {in_.data() + in_start_, in_end_ - in_start_}; }
  void consume(size_t n) { in_start_ += n; }
  void reserve_input(size_t extra);

  void process_input();
  void run(const RawRequest& req);
  void reply(RawCmd cmd, bool ok, std::string_view bytes);
  void request_done();
  void start_list();
  void start_download(const std::string& name);
  void start_upload(const RawRequest& req);
  void take_payload(size_t n);
  void feed_payload();

  Connection& conn_;
  RawService& service_;
  Shared& shared_;
  const ServerConfig& config_;
  State state_ = State::kIdle;
  std::vector<char> in_;
  size_t in_start_ = 0;
  size_t in_end_ = 0;
  bool eof_ = false;
  bool quit_ = false;
  bool into_sink_ = false;
  uint64_t left_ = 0;      ///< payload bytes still expected (kPayload, kDiscard)
  uint64_t expected_ = 0;  ///< the UPLOAD's size
  std::string name_;
  std::string discard_error_;
  std::shared_ptr<transfer::FileSender> get_;
  std::shared_ptr<transfer::UploadSink> sink_;
};

std::unique_ptr<reactor::ConnectionHandler> RawService::create_handler(Connection& conn) {
  return std::make_unique<RawSession>(conn, *this);
}

// ---------------------------------------------------------------- input

void RawSession::reserve_input(size_t extra) {
  if (in_start_ > 0) {
    std::memmove(in_.data(), in_.data() + in_start_, in_end_ - in_start_);
    in_end_ -= in_start_;
    in_start_ = 0;
  }
  if (in_.size() < in_end_ + extra) in_.resize(in_end_ + extra);
}

std::span<char> RawSession::read_space() {
  into_sink_ = false;
  // Payload lands straight in the sink, never past its last byte: what
  // follows it is the next request.
  if (state_ == State::kPayload && sink_ && input().empty()) {
    std::span<char> s = sink_->space();
    if (!s.empty()) {
      into_sink_ = true;
      return s.first(static_cast<size_t>(std::min<uint64_t>(s.size(), left_)));
    }
  }
  size_t room = limits::kLineBuffer;
  if (state_ == State::kDiscard) room = static_cast<size_t>(std::min<uint64_t>(room, left_));
  reserve_input(std::max<size_t>(room, 1));
  return {in_.data() + in_end_, state_ == State::kDiscard ? room : in_.size() - in_end_};
}

void RawSession::on_read(size_t n) {
  if (into_sink_ && state_ == State::kPayload && sink_) {
    into_sink_ = false;
    sink_->produced(n);
    take_payload(n);
    return;
  }
  in_end_ += n;
  if (state_ == State::kPayload || state_ == State::kDiscard) {
    feed_payload();
  } else {
    process_input();
  }
}

void RawSession::on_eof() {
  eof_ = true;
  if (state_ == State::kPayload || state_ == State::kDiscard) {
    if (sink_) sink_->cancel();
    sink_.reset();
    reply(RawCmd::kUpload, false,
          error_line("upload interrupted: connection closed after " +
                     std::to_string(expected_ - left_) + " of " + std::to_string(expected_) +
                     " bytes"));
    conn_.close_when_flushed();
    return;
  }
  if (state_ == State::kIdle) process_input();
}

void RawSession::on_idle_timeout() {
  if (get_ && get_->sent() > 0) {
    conn_.close();  // mid-stream: an ERROR line cannot be spliced in
    return;
  }
  if (sink_) sink_->cancel();
  sink_.reset();
  conn_.write_owned(error_line("idle timeout: no data for " +
                               std::to_string(static_cast<int>(config_.idle_timeout_s)) + " s"));
  conn_.close_when_flushed();
}

// A request line not complete within --request-timeout of its first byte.
void RawSession::on_request_timeout() {
  if (state_ != State::kIdle) {
    conn_.close();
    return;
  }
  char why[96];
  snprintf(why, sizeof why, "request timeout: line not complete within %g s",
           config_.request_timeout_s);
  reply(RawCmd::kUnknown, false, error_line(why));
  conn_.close_when_flushed();
}

void RawSession::on_shutdown() {
  quit_ = true;
  if (state_ == State::kIdle) conn_.close_when_flushed();
}

void RawSession::on_close() {
  if (get_) get_->cancel();
  get_.reset();
  if (sink_) sink_->cancel();
  sink_.reset();
}

// ---------------------------------------------------------------- requests

void RawSession::reply(RawCmd cmd, bool ok, std::string_view bytes) {
  conn_.write_owned(bytes);
  service_.count(cmd, ok);
}

void RawSession::request_done() {
  state_ = State::kIdle;
  if (conn_.closing()) return;
  if (quit_) {
    conn_.close_when_flushed();
    return;
  }
  process_input();
}

void RawSession::process_input() {
  int handled = 0;
  while (state_ == State::kIdle && !conn_.closing() && !quit_) {
    if (conn_.congested()) {
      conn_.pause_reading();  // on_drain comes back
      return;
    }
    if (handled == kRequestsPerTurn) {
      conn_.yield_turn();  // on_drain next turn
      return;
    }
    RawLine l = next_raw_line(input(), limits::kMaxLine);
    consume(l.consumed);
    if (l.kind != RawLine::kNeedMore || input().empty()) conn_.request_head_done();
    if (l.kind == RawLine::kNeedMore) break;
    if (l.kind == RawLine::kTooLong) {
      reply(RawCmd::kUnknown, false,
            error_line("request line too long (limit " + std::to_string(limits::kMaxLine) +
                       " bytes)"));
      conn_.close_when_flushed();
      return;
    }
    run(parse_raw_line(l.line));
    ++handled;
  }
  if (state_ != State::kIdle || conn_.closing() || quit_) return;
  if (eof_) {
    conn_.close_when_flushed();  // an unterminated last line is not a request here
    return;
  }
  conn_.resume_reading();
}

void RawSession::run(const RawRequest& req) {
  if (!req.error.empty()) {
    reply(req.cmd, false, error_line(req.error));
    if (req.fatal) conn_.close_when_flushed();
    return;
  }
  switch (req.cmd) {
    case RawCmd::kList:
      start_list();
      return;
    case RawCmd::kDownload:
      start_download(req.name);
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
  state_ = State::kBusy;
  conn_.pause_reading();
  auto result = std::make_shared<Result<std::vector<std::string>>>();
  const storage::Root* root = shared_.root;
  ConnRef ref(&conn_);
  shared_.executor->submit([result, root] { *result = root->list(); },
                           [this, ref, result] {
                             if (conn_.closing()) return;
                             if (!result->ok()) {
                               reply(RawCmd::kList, false,
                                     error_line(wording(result->status(), "")));
                             } else {
                               std::string text;
                               for (const std::string& n : result->value) {
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
  state_ = State::kBusy;
  conn_.pause_reading();
  auto opened = std::make_shared<Result<storage::ReadFile>>();
  const storage::Root* root = shared_.root;
  ConnRef ref(&conn_);
  shared_.executor->submit(
      [opened, root, name] { *opened = root->open_read(name); },
      [this, ref, opened, name] {
        if (conn_.closing()) return;
        if (!opened->ok()) {
          reply(RawCmd::kDownload, false, error_line(wording(opened->status(), name)));
          request_done();
          return;
        }
        transfer::SendOptions o;
        o.prefix = std::to_string(opened->value.size()) + std::string(kEol);
        o.transform = transfer::Transform::kIdentity;  // sendfile(2)
        o.length = opened->value.size();               // the size announced, even if the file grows
        get_ = transfer::send_file(conn_, *shared_.executor, std::move(opened->value), std::move(o),
                                   [this](Status s) {
                                     get_.reset();
                                     service_.count(RawCmd::kDownload, s.ok());
                                     request_done();
                                   });
      });
}

void RawSession::start_upload(const RawRequest& req) {
  expected_ = left_ = req.size;
  name_ = req.name;
  if (req.size > config_.max_upload) {
    // Reading and dropping that many bytes would only waste the link.
    reply(RawCmd::kUpload, false,
          error_line("upload too large: " + std::to_string(req.size) + " bytes (limit " +
                     std::to_string(config_.max_upload) + ")"));
    conn_.close_when_flushed();
    return;
  }
  if (std::string why = storage::validate_name(req.name); !why.empty()) {
    // The size is known: drop the payload, answer after it, keep serving.
    state_ = State::kDiscard;
    discard_error_ = "invalid name: " + why;
    feed_payload();
    return;
  }
  if (Refusal r = service_.policy().refuse(Access::kWrite, Role::kAnonymous);
      r != Refusal::kNone) {
    state_ = State::kDiscard;  // the payload is dropped, the answer follows it
    discard_error_ = refusal_text(r, Access::kWrite);
    feed_payload();
    return;
  }
  state_ = State::kPayload;
  transfer::UploadSink::Options o;
  o.name = req.name;
  o.transform = transfer::Transform::kIdentity;
  o.max_bytes = config_.max_upload;
  sink_ = transfer::UploadSink::start(
      conn_, *shared_.executor, *shared_.root, std::move(o),
      [this] {
        if (state_ == State::kPayload) feed_payload();
      },
      [this](Status s, uint64_t bytes) {
        sink_.reset();
        if (s.ok()) {
          reply(RawCmd::kUpload, true,
                "OK " + name_ + " uploaded (" + std::to_string(bytes) + " bytes)" +
                    std::string(kEol));
        } else {
          reply(RawCmd::kUpload, false, error_line(wording(s, name_)));
        }
        request_done();
      });
  feed_payload();
}

// `n` payload bytes went into the sink.
void RawSession::take_payload(size_t n) {
  left_ -= n;
  if (left_ == 0) {
    state_ = State::kBusy;
    conn_.pause_reading();
    sink_->end();
    return;
  }
  if (sink_ && sink_->space().empty()) conn_.pause_reading();  // on_space resumes
}

// Moves payload bytes sitting in the input buffer into the sink (or drops
// them, kDiscard), never past the payload's end.
void RawSession::feed_payload() {
  while (state_ == State::kDiscard) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(input().size(), left_));
    consume(n);
    left_ -= n;
    if (left_ > 0) {
      conn_.resume_reading();
      return;
    }
    state_ = State::kIdle;
    reply(RawCmd::kUpload, false, error_line(discard_error_));
    process_input();
    return;
  }
  while (state_ == State::kPayload && sink_) {
    if (left_ == 0) {
      take_payload(0);
      return;
    }
    if (input().empty()) break;
    std::string_view part =
        input().substr(0, static_cast<size_t>(std::min<uint64_t>(input().size(), left_)));
    size_t used = sink_->feed(part);
    consume(used);
    if (used == 0) {
      conn_.pause_reading();  // both buffers busy: on_space comes back here
      return;
    }
    left_ -= used;
  }
  if (state_ == State::kPayload && sink_) conn_.resume_reading();
}

}  // namespace

const ServiceInfo& info() {
  static const ServiceInfo kInfo{
      "file-raw",
      "seed 000's raw-bytes file dialect: LIST, UPLOAD name size + bytes, DOWNLOAD (sendfile)",
      {9000},
      "printf 'LIST\\r\\n' | nc -q1 127.0.0.1 {port}",
      [](stats::Schema& schema) {
        for (int c = 0; c < kRawCmdCount; ++c) {
          std::string verb(raw_cmd_name(static_cast<RawCmd>(c)));
          schema.add("file-raw/commands/" + verb + "/ok");
          schema.add("file-raw/commands/" + verb + "/failed");
        }
      },
      [](reactor::Refusal why, int limit) {
        return why == reactor::Refusal::kShuttingDown
                   ? error_line("server shutting down")
                   : error_line("server busy: too many connections (limit " +
                                std::to_string(limit) + ")");
      },
      [](Shared& shared) -> std::unique_ptr<Service> {
        return std::make_unique<RawService>(shared);
      },
      Transport::kStream,
      nullptr,
      kPolicyReadOnly};
  return kInfo;
}

}  // namespace fsrv::services::file_raw
