// The file-marker service's connection handler (seed 001's dialect; wire
// format in docs/services/file-marker.md).

#include <string>
#include <vector>

#include "fsrv/codec/base64.hpp"
#include "fsrv/core/limits.hpp"
#include "fsrv/services/file_marker/file_marker_service.hpp"
#include "fsrv/services/file_marker/marker_protocol.hpp"
#include "fsrv/services/kit/login.hpp"
#include "fsrv/services/kit/storage_calls.hpp"
#include "fsrv/services/kit/stream_session.hpp"
#include "fsrv/services/kit/verb_counters.hpp"
#include "fsrv/storage/storage.hpp"
#include "fsrv/transfer/file_sender.hpp"
#include "fsrv/transfer/upload_sink.hpp"

namespace fsrv::services::file_marker {

namespace {

using reactor::Connection;
using reactor::ConnRef;

/// Longest command text kept while waiting for its end: a verb and a name
/// of at most limits::kMaxName bytes fit many times over.
constexpr size_t kMaxCommand = limits::kMaxLine;

/// How long a client must stay silent before its unterminated command is
/// taken (the seed's client sends "UPLOAD name" bare and waits for READY),
/// when --legacy-idle-ms is 0 (the file service's rule is then off, but
/// this dialect cannot work without one).
constexpr int kFallbackSilenceMs = limits::kDefaultLegacyIdleMs;

using Counters = kit::VerbCounters<verb_name, kVerbCount>;

class MarkerService final : public Service {
 public:
  explicit MarkerService(Shared& shared) : Service(shared, info()), counters(*this) {}
  Counters counters;

 protected:
  std::unique_ptr<reactor::ConnectionHandler> create_handler(Connection& conn) override;
};

class MarkerSession final : public kit::StreamSession {
 public:
  MarkerSession(Connection& conn, MarkerService& service)
      : StreamSession(conn),
        service_(service),
        shared_(service.shared()),
        config_(*shared_.config) {}

  void on_eof() override;
  void on_timer() override;
  void on_close() override;

 private:
  void process_input() override;
  bool next_command();
  void run(const Command& cmd);
  void reply(Verb verb, bool ok, std::string_view text);
  void start_list();
  void start_download(const std::string& name);
  void start_upload(const std::string& name);
  void start_auth(const Command& cmd);
  /// The listener's policy refuses `access` to this connection's role: the
  /// refusal's words, else "".
  std::string refused(Access access) const;
  void payload_step(kit::PayloadReader::Step step) override;

  MarkerService& service_;
  Shared& shared_;
  const ServerConfig& config_;
  std::shared_ptr<transfer::FileSender> get_;
  /// The account this connection authenticated as (AUTH), for the policy.
  Role role_ = Role::kAnonymous;
};

std::unique_ptr<reactor::ConnectionHandler> MarkerService::create_handler(Connection& conn) {
  return std::make_unique<MarkerSession>(conn, *this);
}

// ---------------------------------------------------------------- input

void MarkerSession::on_eof() {
  eof_ = true;
  if (payload_.active()) {
    payload_.cancel();
    reply(Verb::kUpload, false, "Upload failed: connection closed before __END__");
    conn_.close_when_flushed();
    return;
  }
  if (!loop_.busy()) process_input();
}

void MarkerSession::on_timer() {
  if (loop_.busy() || in_.blank()) return;
  // The client went silent after an unterminated command: it is complete.
  Command cmd = parse_command(in_.view());
  in_.clear();
  run(cmd);
  process_input();
}

void MarkerSession::on_close() {
  if (get_) get_->cancel();
  get_.reset();
  payload_.cancel();
}

// ---------------------------------------------------------------- commands

void MarkerSession::reply(Verb verb, bool ok, std::string_view text) {
  conn_.write_owned(text);
  service_.counters.count(verb, ok);
}

bool MarkerSession::next_command() {
  for (;;) {
    std::string_view in = in_.view();
    size_t nl = in.find('\n');
    if (nl == std::string_view::npos) return false;
    std::string_view line = in.substr(0, nl);  // a terminated command: take it now
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) {
      in_.consume(nl + 1);  // blank
      continue;
    }
    Command cmd = parse_command(line);
    in_.consume(nl + 1);
    run(cmd);
    return true;
  }
}

void MarkerSession::process_input() {
  if (!loop_.pump([this] { return next_command(); })) return;
  if (in_.blank()) conn_.request_head_done();
  std::string_view in = in_.view();
  if (in.size() > kMaxCommand) {
    reply(Verb::kUnknown, false, "Command too long");
    conn_.close_when_flushed();
    return;
  }
  if (eof_) {
    if (!in_.blank()) {  // a last unterminated command before the half-close
      Command cmd = parse_command(in);
      in_.clear();
      run(cmd);
      if (loop_.busy()) return;  // request_done() comes back
    }
    conn_.close_when_flushed();
    return;
  }
  if (!in_.blank()) {
    int ms = config_.legacy_idle_ms > 0 ? config_.legacy_idle_ms : kFallbackSilenceMs;
    conn_.start_timer(static_cast<uint64_t>(ms));
  }
  conn_.resume_reading();
}

void MarkerSession::run(const Command& cmd) {
  conn_.stop_timer();
  conn_.request_head_done();
  if (!cmd.error.empty()) {
    reply(cmd.verb, false, cmd.error);
    return;
  }
  if (cmd.verb == Verb::kList || cmd.verb == Verb::kDownload) {
    // On auth=all reading needs an account too; the seed's error word.
    if (std::string why = refused(Access::kRead); !why.empty()) {
      reply(cmd.verb, false, "Error: " + why);
      return;
    }
  }
  switch (cmd.verb) {
    case Verb::kList:
      start_list();
      return;
    case Verb::kDownload:
      start_download(cmd.name);
      return;
    case Verb::kAuth:
      start_auth(cmd);
      return;
    case Verb::kUpload:
      start_upload(cmd.name);
      return;
    default:
      reply(Verb::kUnknown, false, kUnknown);
      return;
  }
}

void MarkerSession::start_list() {
  loop_.begin();
  conn_.pause_reading();
  kit::list_root(conn_, shared_, [this](Result<std::vector<std::string>>& result) {
    if (!result.ok()) {
      reply(Verb::kList, false, "Error: " + result.status().error);
    } else if (result.value.empty()) {
      reply(Verb::kList, true, kNoFiles);
    } else {
      std::string text;
      for (const std::string& n : result.value) {
        if (!text.empty()) text += '\n';
        text += n;
      }
      reply(Verb::kList, true, text);
    }
    request_done();
  });
}

void MarkerSession::start_download(const std::string& name) {
  loop_.begin();
  conn_.pause_reading();
  kit::open_read(conn_, shared_, name, [this](Result<storage::ReadFile>& opened) {
    if (!opened.ok()) {
      // The seed answers "File not found" for any failure to open.
      const Status& s = opened.status();
      reply(Verb::kDownload, false,
            s.code == Errc::kNotFound ? std::string(kNotFound) : "Error: " + s.error);
      request_done();
      return;
    }
    transfer::SendOptions o;
    o.suffix = std::string(kEndMarker);
    o.transform = transfer::Transform::kBase64;
    o.encoder = &codec::encoder(config_.codec);
    get_ = transfer::send_file(conn_, *shared_.executor, std::move(opened.value), std::move(o),
                               [this](Status s) {
                                 get_.reset();
                                 service_.counters.count(Verb::kDownload, s.ok());
                                 request_done();
                               });
  });
}

void MarkerSession::start_upload(const std::string& name) {
  if (std::string why = storage::validate_name(name); !why.empty()) {
    reply(Verb::kUpload, false, "Upload failed: invalid name: " + why);
    return;
  }
  if (std::string why = refused(Access::kWrite); !why.empty()) {
    reply(Verb::kUpload, false, "Upload failed: " + why);  // before READY: no payload comes
    return;
  }
  loop_.begin();
  transfer::UploadSink::Options o;
  o.name = name;
  o.transform = transfer::Transform::kBase64;
  o.base64_segments = true;  // the seed encodes each 1 MiB chunk on its own
  o.codec = config_.codec;
  o.max_bytes = config_.max_upload;
  auto sink = transfer::UploadSink::start(
      conn_, *shared_.executor, *shared_.root, std::move(o), sink_space(),
      [this](Status s, uint64_t) {
        payload_.reset();
        if (s.ok()) {
          reply(Verb::kUpload, true, kUploadOk);
        } else {
          std::string why = s.code == Errc::kNoSpace ? std::string("disk full") : s.error;
          reply(Verb::kUpload, false, "Upload failed: " + why);
        }
        request_done();
      });
  conn_.write_owned(kReady);
  // Base64 has no '_': the first one starts the marker, or breaks the stream.
  payload_.start(std::move(sink), kit::PayloadEnd::marker(kEndMarker));
  payload_step(payload_.feed());
}

std::string MarkerSession::refused(Access access) const {
  Refusal r = service_.policy().refuse(access, role_);
  return r == Refusal::kNone ? std::string() : refusal_text(r, access);
}

// AUTH user password (our extension, as the file protocol's): the seed's
// dialect has no status word, so success and failure are plain sentences.
void MarkerSession::start_auth(const Command& cmd) {
  std::string user = cmd.name;
  bool started = kit::start_login(
      conn_, service_, cmd.name, cmd.password, [this, user](auth::LoginOutcome outcome) {
        bool ok = outcome.error.empty();
        if (ok) role_ = outcome.role;
        reply(Verb::kAuth, ok,
              ok ? "Authenticated as " + user + " (role " + std::string(role_name(role_)) + ")"
                 : "Authentication failed: " + outcome.error);
        request_done();
      });
  if (!started) {
    reply(Verb::kAuth, false, "Authentication failed: " + std::string(kit::kNoAccounts));
    return;
  }
  loop_.begin();
  conn_.pause_reading();
}

// A '_' that does not start "__END__": the stream cannot be framed again
// (the sink was cancelled; its callback will not run).
void MarkerSession::payload_step(kit::PayloadReader::Step step) {
  if (step != kit::PayloadReader::Step::kBadMarker) return;
  reply(Verb::kUpload, false, "Upload failed: invalid byte '_' in the base64 stream");
  conn_.close_when_flushed();
}

}  // namespace

const ServiceInfo& info() {
  static const ServiceInfo kInfo{
      "file-marker",
      "seed 001's file dialect: LIST, UPLOAD (READY, base64 chunks, __END__), DOWNLOAD",
      {8995},
      "printf 'LIST' | nc -q1 127.0.0.1 {port}",
      [](stats::Schema& schema) { Counters::register_stats(schema, "file-marker"); },
      [](reactor::Refusal why, int limit) { return "Error: " + busy_text(why, limit); },
      [](Shared& shared) -> std::unique_ptr<Service> {
        return std::make_unique<MarkerService>(shared);
      },
      Transport::kStream,
      nullptr,
      kPolicyReadOnly | kPolicyAuth};
  return kInfo;
}

}  // namespace fsrv::services::file_marker
