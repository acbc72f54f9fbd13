// The session protocol's framing and dialogue on one connection: which
// frame comes next (session_framer's Want), end of stream, shutdown, and
// the access log line of each command (session_session.hpp); and the
// service's registration. The commands' work is in session_commands.cpp.

#include "fsrv/services/session/session_session.hpp"

#include <chrono>
#include <string>
#include <utility>

#include "fsrv/core/log.hpp"

namespace fsrv::services::session {

// ---------------------------------------------------------------- input

void SessionConn::on_eof() {
  eof_ = true;
  if (in_payload()) {
    uint64_t missing = expected_ - payload_taken();
    if (in_.size() >= missing) return;  // all here: the sink takes it as it frees space
    // Truncated upload: the temporary file goes, nothing is committed.
    FSRV_LOG_INFO("session: upload of %s cut short (%llu bytes missing); discarded", name_.c_str(),
                  static_cast<unsigned long long>(missing));
    count_request(Verb::kUpload, false);
    cancel_payload();
    conn_.close();
    return;
  }
  process_input();
}

// The client half-closed and every byte it sent went into the payload.
void SessionConn::payload_step(kit::PayloadReader::Step step) {
  if (step == kit::PayloadReader::Step::kMore && eof_ && in_.empty()) on_eof();
}

void SessionConn::on_timer() {
  if (later_.empty() || !loop_.busy()) return;
  finish(verb_, true, std::exchange(later_, {}));
}

void SessionConn::on_shutdown() {
  shutdown_ = true;
  if (want_ == Want::kWord && !loop_.busy()) loop_.shutdown();
}

void SessionConn::fail(std::string why) {
  FSRV_LOG_WARN("session: %s; closing", why.c_str());
  service_.count(service_.counter("protocol_errors"));
  loop_.quit();  // no frame after this one
  conn_.close_when_flushed();
}

void SessionConn::back_to_word() {
  want_ = Want::kWord;
  if (shutdown_) loop_.shutdown();
}

void SessionConn::finish(Verb verb, bool ok, std::string_view reply) {
  conn_.write_owned(reply);
  count_request(verb, ok);
  back_to_word();
  request_done();
}

void SessionConn::process_input() {
  if (!loop_.pump([this] { return next_request(); })) return;
  if (eof_) {
    if (!in_.empty() || want_ != Want::kWord) FSRV_LOG_INFO("session: client closed mid-frame");
    loop_.quit();
    conn_.close_when_flushed();
    return;
  }
  conn_.resume_reading();
}

bool SessionConn::next_request() {
  Frame f = next_frame(in_.view(), want_);
  in_.consume(f.consumed);
  if (f.kind != Frame::Kind::kNeedMore || in_.empty()) conn_.request_head_done();
  switch (f.kind) {
    case Frame::Kind::kNeedMore:
      return false;
    case Frame::Kind::kError:
      fail(f.error);
      return false;
    case Frame::Kind::kWord:
      on_word(f.verb);
      break;
    case Frame::Kind::kUploadHeader:
      start_upload(std::move(f.name), f.size);
      break;
    case Frame::Kind::kName:
      on_name(std::move(f.name));
      break;
    case Frame::Kind::kAck:
      on_ack();
      break;
    case Frame::Kind::kConfirm:
      on_confirm(f.yes);
      break;
  }
  return true;
}

// ---------------------------------------------------------------- dialogue

void SessionConn::count_request(Verb verb, bool ok) {
  service_.counters.count(verb, ok);
  bool named = verb != Verb::kLs && verb != Verb::kConnme && verb != Verb::kByebye;
  end_record(service_, verb_name(verb), named ? std::string_view(name_) : std::string_view(), ok);
}

void SessionConn::on_word(Verb verb) {
  verb_ = verb;
  begin_record();
  switch (verb) {
    case Verb::kConnme:
      finish(verb, true, "connected");
      return;
    case Verb::kByebye:
      count_request(verb, true);
      loop_.quit();
      return;
    case Verb::kLs:
      start_ls();
      return;
    case Verb::kUpload:
    case Verb::kDownload:
    case Verb::kRm:
    case Verb::kSize:
      conn_.write_owned("ready");
      want_ = verb == Verb::kUpload ? Want::kUploadHeader : Want::kName;
      return;
  }
}

// want_ is kName only after download, size or rm, and kAck only within
// ls or after a download's bytes (on_word, send_ls_entry, start_download).
void SessionConn::on_name(std::string name) {
  if (verb_ == Verb::kDownload) {
    start_download(std::move(name));
  } else if (verb_ == Verb::kSize) {
    run_size(std::move(name));
  } else {
    // rm: the seed's server deleted here, before reading the answer; we
    // wait for it (docs/services/session.md).
    name_ = std::move(name);
    want_ = Want::kConfirm;
  }
}

void SessionConn::on_ack() {
  if (verb_ == Verb::kLs) {
    ++next_entry_;
    send_ls_entry();
  } else {
    send_float_later();  // the download's seconds
  }
}

void SessionConn::on_confirm(bool yes) {
  Refusal r = service_.policy().refuse(Access::kDelete, Role::kAnonymous);
  if (!yes) {
    finish(Verb::kRm, true, {});  // "N": the seed's client expects nothing back
  } else if (r != Refusal::kNone) {
    // rm's own failure answer; the session goes on.
    FSRV_LOG_INFO("session: rm %s: %s", name_.c_str(), refusal_text(r, Access::kDelete).c_str());
    finish(Verb::kRm, false, pack_i32(-1));
  } else {
    run_rm();
  }
}

void SessionConn::send_float_later() {
  loop_.begin();
  conn_.pause_reading();
  later_ = pack_f32(std::chrono::duration<float>(Clock::now() - started_).count());
  conn_.start_timer(kFloatDelayMs);
}

// ---------------------------------------------------------------- service

const ServiceInfo& info() {
  static const ServiceInfo kInfo{
      "session",
      "FTP-like session (seed 003): connme, upload, ls, download, size, rm, byebye; raw bytes",
      {1234},
      "printf 'connme' | nc -q1 127.0.0.1 {port}",
      [](stats::Schema& schema) {
        Counters::register_stats(schema, "session");
        schema.add("session/protocol_errors");
      },
      // The protocol has no error frame: a refused client is just closed.
      [](reactor::Refusal, int) { return std::string(); },
      &SessionService::create,
      Transport::kStream,
      nullptr,
      kPolicyReadOnly};
  return kInfo;
}

}  // namespace fsrv::services::session
