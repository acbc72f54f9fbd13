// The file-marker service's connection handler (seed 001's dialect; wire
// format in docs/services/file-marker.md).

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "fsrv/codec/base64.hpp"
#include "fsrv/core/limits.hpp"
#include "fsrv/services/file_marker/file_marker_service.hpp"
#include "fsrv/services/file_marker/marker_protocol.hpp"
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

/// Commands answered in one turn of the loop before yielding it (the file
/// service's kRequestsPerTurn: a flood of bad commands cannot starve others).
constexpr int kCommandsPerTurn = 64;

class MarkerService final : public Service {
 public:
  explicit MarkerService(Shared& shared) : Service(shared, "file-marker") {
    for (int v = 0; v < kVerbCount; ++v) {
      std::string verb(verb_name(static_cast<Verb>(v)));
      ok_[v] = counter("commands/" + verb + "/ok");
      failed_[v] = counter("commands/" + verb + "/failed");
    }
  }
  std::string refusal(reactor::Refusal why, int limit) const override {
    return info().refusal(why, limit);
  }
  void count(Verb v, bool ok) { shared_.stats->add((ok ? ok_ : failed_)[static_cast<int>(v)]); }
  Shared& shared() { return shared_; }

 protected:
  std::unique_ptr<reactor::ConnectionHandler> create_handler(Connection& conn) override;

 private:
  stats::Counter ok_[kVerbCount], failed_[kVerbCount];
};

class MarkerSession final : public reactor::ConnectionHandler {
 public:
  MarkerSession(Connection& conn, MarkerService& service)
      : conn_(conn), service_(service), shared_(service.shared()), config_(*shared_.config) {}

  std::span<char> read_space() override;
  void on_read(size_t n) override;
  void on_eof() override;
  void on_timer() override;
  void on_drain() override { process_input(); }
  void on_shutdown() override;
  void on_close() override;

 private:
  enum class State { kIdle, kBusy, kPayload };

  std::string_view input() const { return {in_.data() + in_start_, in_end_ - in_start_}; }
  void consume(size_t n) { in_start_ += n; }
  void reserve_input(size_t extra);
  bool input_blank() const;

  void process_input();
  void run(const Command& cmd);
  void reply(Verb verb, bool ok, std::string_view text);
  void request_done();
  void start_list();
  void start_download(const std::string& name);
  void start_upload(const std::string& name);
  void feed_payload();
  void end_payload();
  void bad_marker();

  Connection& conn_;
  MarkerService& service_;
  Shared& shared_;
  const ServerConfig& config_;
  State state_ = State::kIdle;
  std::vector<char> in_;
  size_t in_start_ = 0;
  size_t in_end_ = 0;
  bool eof_ = false;
  bool quit_ = false;
  bool into_sink_ = false;
  EndMatcher marker_;
  std::shared_ptr<transfer::FileSender> get_;
  std::shared_ptr<transfer::UploadSink> sink_;
};

std::unique_ptr<reactor::ConnectionHandler> MarkerService::create_handler(Connection& conn) {
  return std::make_unique<MarkerSession>(conn, *this);
}

// ---------------------------------------------------------------- input

bool MarkerSession::input_blank() const {
  for (char c : input()) {
    if (c != '\r' && c != '\n' && c != ' ' && c != '\t') return false;
  }
  return true;
}

void MarkerSession::reserve_input(size_t extra) {
  if (in_start_ > 0) {
    std::memmove(in_.data(), in_.data() + in_start_, in_end_ - in_start_);
    in_end_ -= in_start_;
    in_start_ = 0;
  }
  if (in_.size() < in_end_ + extra) in_.resize(in_end_ + extra);
}

std::span<char> MarkerSession::read_space() {
  into_sink_ = false;
  // Payload goes straight into the sink's buffer unless bytes are waiting
  // in the input buffer or a marker is half matched.
  if (state_ == State::kPayload && sink_ && input().empty() && marker_.held() == 0) {
    std::span<char> s = sink_->space();
    if (!s.empty()) {
      into_sink_ = true;
      return s;
    }
  }
  reserve_input(limits::kLineBuffer);
  return {in_.data() + in_end_, in_.size() - in_end_};
}

void MarkerSession::on_read(size_t n) {
  if (into_sink_ && state_ == State::kPayload && sink_) {
    into_sink_ = false;
    std::span<char> s = sink_->space();  // the span the read landed in
    size_t t = marker_start({s.data(), n});
    if (t == std::string_view::npos) {
      sink_->produced(n);
      if (sink_ && sink_->space().empty()) conn_.pause_reading();  // on_space resumes
      return;
    }
    // The marker (and whatever follows it) goes through the input buffer.
    reserve_input(n - t);
    std::memcpy(in_.data() + in_end_, s.data() + t, n - t);
    in_end_ += n - t;
    sink_->produced(t);
    feed_payload();
    return;
  }
  in_end_ += n;
  if (state_ == State::kPayload) {
    feed_payload();
  } else {
    process_input();
  }
}

void MarkerSession::on_eof() {
  eof_ = true;
  if (state_ == State::kPayload) {
    if (sink_) sink_->cancel();
    sink_.reset();
    reply(Verb::kUpload, false, "Upload failed: connection closed before __END__");
    conn_.close_when_flushed();
    return;
  }
  if (state_ == State::kIdle) process_input();
}

void MarkerSession::on_timer() {
  if (state_ != State::kIdle || input_blank()) return;
  // The client went silent after an unterminated command: it is complete.
  Command cmd = parse_command(input());
  consume(input().size());
  run(cmd);
  process_input();
}

void MarkerSession::on_shutdown() {
  quit_ = true;
  if (state_ == State::kIdle) conn_.close_when_flushed();
}

void MarkerSession::on_close() {
  if (get_) get_->cancel();
  get_.reset();
  if (sink_) sink_->cancel();
  sink_.reset();
}

// ---------------------------------------------------------------- commands

void MarkerSession::reply(Verb verb, bool ok, std::string_view text) {
  conn_.write_owned(text);
  service_.count(verb, ok);
}

void MarkerSession::request_done() {
  state_ = State::kIdle;
  if (conn_.closing()) return;
  if (quit_) {
    conn_.close_when_flushed();
    return;
  }
  process_input();
}

void MarkerSession::process_input() {
  int handled = 0;
  while (state_ == State::kIdle && !conn_.closing() && !quit_) {
    if (conn_.congested()) {
      conn_.pause_reading();  // on_drain comes back
      return;
    }
    if (handled == kCommandsPerTurn) {
      conn_.yield_turn();  // on_drain next turn
      return;
    }
    std::string_view in = input();
    size_t nl = in.find('\n');
    if (nl == std::string_view::npos) break;
    std::string_view line = in.substr(0, nl);  // a terminated command: take it now
    consume(nl + 1);
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;  // blank
    run(parse_command(line));
    ++handled;
  }
  if (state_ != State::kIdle || conn_.closing() || quit_) return;
  if (input_blank()) conn_.request_head_done();
  std::string_view in = input();
  if (in.size() > kMaxCommand) {
    reply(Verb::kUnknown, false, "Command too long");
    conn_.close_when_flushed();
    return;
  }
  if (eof_) {
    if (!input_blank()) {  // a last unterminated command before the half-close
      Command cmd = parse_command(in);
      consume(in.size());
      run(cmd);
      if (state_ != State::kIdle) return;  // request_done() comes back
    }
    conn_.close_when_flushed();
    return;
  }
  if (!input_blank()) {
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
  switch (cmd.verb) {
    case Verb::kList:
      start_list();
      return;
    case Verb::kDownload:
      start_download(cmd.name);
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
  state_ = State::kBusy;
  conn_.pause_reading();
  auto result = std::make_shared<Result<std::vector<std::string>>>();
  const storage::Root* root = shared_.root;
  ConnRef ref(&conn_);
  shared_.executor->submit([result, root] { *result = root->list(); },
                           [this, ref, result] {
                             if (conn_.closing()) return;
                             if (!result->ok()) {
                               reply(Verb::kList, false, "Error: " + result->status().error);
                             } else if (result->value.empty()) {
                               reply(Verb::kList, true, kNoFiles);
                             } else {
                               std::string text;
                               for (const std::string& n : result->value) {
                                 if (!text.empty()) text += '\n';
                                 text += n;
                               }
                               reply(Verb::kList, true, text);
                             }
                             request_done();
                           });
}

void MarkerSession::start_download(const std::string& name) {
  state_ = State::kBusy;
  conn_.pause_reading();
  auto opened = std::make_shared<Result<storage::ReadFile>>();
  const storage::Root* root = shared_.root;
  ConnRef ref(&conn_);
  shared_.executor->submit(
      [opened, root, name] { *opened = root->open_read(name); },
      [this, ref, opened] {
        if (conn_.closing()) return;
        if (!opened->ok()) {
          // The seed answers "File not found" for any failure to open.
          const Status& s = opened->status();
          reply(Verb::kDownload, false,
                s.code == Errc::kNotFound ? std::string(kNotFound) : "Error: " + s.error);
          request_done();
          return;
        }
        transfer::SendOptions o;
        o.suffix = std::string(kEndMarker);
        o.transform = transfer::Transform::kBase64;
        o.encoder = &codec::encoder(config_.codec);
        get_ = transfer::send_file(conn_, *shared_.executor, std::move(opened->value), std::move(o),
                                   [this](Status s) {
                                     get_.reset();
                                     service_.count(Verb::kDownload, s.ok());
                                     request_done();
                                   });
      });
}

void MarkerSession::start_upload(const std::string& name) {
  if (std::string why = storage::validate_name(name); !why.empty()) {
    reply(Verb::kUpload, false, "Upload failed: invalid name: " + why);
    return;
  }
  if (Refusal r = service_.policy().refuse(Access::kWrite, Role::kAnonymous);
      r != Refusal::kNone) {
    reply(Verb::kUpload, false, "Upload failed: " + refusal_text(r, Access::kWrite));
    return;
  }
  state_ = State::kPayload;
  marker_ = EndMatcher();
  transfer::UploadSink::Options o;
  o.name = name;
  o.transform = transfer::Transform::kBase64;
  o.base64_segments = true;  // the seed encodes each 1 MiB chunk on its own
  o.codec = config_.codec;
  o.max_bytes = config_.max_upload;
  sink_ = transfer::UploadSink::start(
      conn_, *shared_.executor, *shared_.root, std::move(o),
      [this] {
        if (state_ == State::kPayload) feed_payload();
      },
      [this](Status s, uint64_t) {
        sink_.reset();
        if (s.ok()) {
          reply(Verb::kUpload, true, kUploadOk);
        } else {
          std::string why = s.code == Errc::kNoSpace ? std::string("disk full") : s.error;
          reply(Verb::kUpload, false, "Upload failed: " + why);
        }
        request_done();
      });
  conn_.write_owned(kReady);
  feed_payload();
}

// Moves buffered payload bytes into the sink up to the marker, then matches
// the marker (which may arrive in pieces).
void MarkerSession::feed_payload() {
  while (state_ == State::kPayload && sink_ && !input().empty()) {
    std::string_view in = input();
    if (marker_.held() == 0) {
      size_t t = marker_start(in);
      std::string_view part = in.substr(0, t == std::string_view::npos ? in.size() : t);
      size_t used = sink_->feed(part);
      consume(used);
      if (used < part.size()) {
        conn_.pause_reading();  // both buffers busy: on_space comes back here
        return;
      }
      if (t == std::string_view::npos) break;
      in = input();
    }
    EndMatcher::Step step = marker_.feed(in);
    if (step.bad) {
      bad_marker();
      return;
    }
    consume(step.used);
    if (step.done) {
      end_payload();
      return;
    }
  }
  if (state_ == State::kPayload && sink_) conn_.resume_reading();
}

void MarkerSession::end_payload() {
  state_ = State::kBusy;
  conn_.pause_reading();
  sink_->end();
}

// A '_' that does not start "__END__": the stream cannot be framed again.
void MarkerSession::bad_marker() {
  if (sink_) sink_->cancel();
  sink_.reset();
  state_ = State::kBusy;
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
      [](stats::Schema& schema) {
        for (int v = 0; v < kVerbCount; ++v) {
          std::string verb(verb_name(static_cast<Verb>(v)));
          schema.add("file-marker/commands/" + verb + "/ok");
          schema.add("file-marker/commands/" + verb + "/failed");
        }
      },
      [](reactor::Refusal why, int limit) {
        return why == reactor::Refusal::kShuttingDown
                   ? std::string("Error: server shutting down")
                   : "Error: server busy (limit " + std::to_string(limit) + " connections)";
      },
      [](Shared& shared) -> std::unique_ptr<Service> {
        return std::make_unique<MarkerService>(shared);
      },
      Transport::kStream,
      nullptr,
      kPolicyReadOnly};
  return kInfo;
}

}  // namespace fsrv::services::file_marker
