// The seed 003 session protocol on a connection: a state machine over
// session_framer's frames (see session_service.hpp and
// docs/services/session.md for the wire format).

#include "fsrv/services/session/session_service.hpp"

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fsrv/core/access_log.hpp"
#include "fsrv/core/limits.hpp"
#include "fsrv/core/log.hpp"
#include "fsrv/services/kit/input_buffer.hpp"
#include "fsrv/services/kit/verb_counters.hpp"
#include "fsrv/services/session/session_framer.hpp"
#include "fsrv/storage/storage.hpp"
#include "fsrv/transfer/file_sender.hpp"
#include "fsrv/transfer/upload_sink.hpp"

namespace fsrv::services::session {

namespace {

using reactor::Connection;
using reactor::ConnRef;
using Clock = std::chrono::steady_clock;

/// Delay before the `f` seconds field that follows "received" (and the
/// end of a download). The seed's client reads "received" with recv(1024):
/// sent together, that recv would swallow the float too, and the client's
/// next recv(4) would block forever. 50 ms apart, they arrive as two reads
/// (i10.md section 2).
constexpr uint64_t kFloatDelayMs = 50;

/// The largest size the `i` (int32) fields can carry; a file of 2 GiB or
/// more is answered with -1 (and logged) instead of a wrong number.
constexpr uint64_t kMaxWireSize = INT32_MAX;

/// Frames handled in one loop turn before yielding (a client pipelining
/// `connme` thousands of times must not starve the others).
constexpr int kFramesPerTurn = 64;

/// Bytes asked for per socket read outside payloads (words and headers are
/// tiny; payload bytes go straight into the upload sink's buffers).
constexpr size_t kReadChunk = 16 * 1024;

constexpr int kVerbCount = 7;
using Counters = kit::VerbCounters<verb_name, kVerbCount>;

class SessionService final : public Service {
 public:
  explicit SessionService(Shared& shared)
      : Service(shared, info()), counters(*this), protocol_errors_(counter("protocol_errors")) {}
  void count(Verb verb, bool ok) { counters.count(verb, ok); }
  void count_protocol_error() { Service::count(protocol_errors_); }
  Counters counters;

 protected:
  std::unique_ptr<reactor::ConnectionHandler> create_handler(Connection& conn) override;

 private:
  stats::Counter protocol_errors_;
};

/// One `ls` line: name and its size as sent (-1 when it does not fit `i`).
struct Entry {
  std::string name;
  int32_t size = -1;
};

class SessionConn final : public reactor::ConnectionHandler {
 public:
  SessionConn(Connection& conn, SessionService& service)
      : conn_(conn), service_(service), shared_(service.shared()) {}

  std::span<char> read_space() override;
  void on_read(size_t n) override;
  void on_eof() override;
  void on_timer() override;
  void on_drain() override { process_input(); }
  void on_shutdown() override;
  void on_close() override;
  /// The seed's client keeps one connection for a whole interactive
  /// session and never reconnects: a user may pause between commands (a
  /// frame trickled, or a payload slower than --min-rate, is still cut).
  reactor::IdlePolicy idle_policy() const override { return reactor::IdlePolicy::kKeep; }

 private:
  enum class State {
    kIdle,     ///< framing input as want_ says
    kBusy,     ///< storage task, download or delayed float in flight
    kPayload,  ///< upload bytes flow into sink_
    kDone,     ///< closing
  };

  std::string_view input() const { return in_.view(); }
  void consume(size_t n) { in_.consume(n); }
  void process_input();
  void fail(std::string why);
  void back_to_word();

  void on_word(Verb verb);
  void on_name(std::string name);
  void on_ack();
  void on_confirm(bool yes);

  void start_ls();
  void send_ls_entry();
  void start_upload(std::string name, int32_t size);
  void feed_payload();
  void end_payload();
  void start_download(std::string name);
  void run_size(std::string name);
  void run_rm();
  void send_float_later(Verb verb);

  Connection& conn_;
  SessionService& service_;
  Shared& shared_;
  State state_ = State::kIdle;
  Want want_ = Want::kWord;
  Verb verb_ = Verb::kConnme;  ///< the command in progress
  kit::InputBuffer in_;
  bool eof_ = false;
  bool quit_ = false;
  // upload
  std::shared_ptr<transfer::UploadSink> sink_;
  bool into_sink_ = false;
  uint64_t remaining_ = 0;  ///< payload bytes still to come
  std::string name_;        ///< upload / download / rm target
  /// The access log's view of the current command: the connection's byte
  /// counts and the time when its verb arrived.
  uint64_t log_in_ = 0;
  uint64_t log_out_ = 0;
  std::chrono::steady_clock::time_point log_started_;
  /// Counts a finished command and writes its access log line.
  void count_request(Verb verb, bool ok);
  Clock::time_point started_;
  std::string later_;  ///< the float waiting for the timer
  // ls
  std::vector<Entry> entries_;
  int64_t total_ = 0;
  size_t next_entry_ = 0;
  // download
  std::shared_ptr<transfer::FileSender> get_;
};

std::unique_ptr<reactor::ConnectionHandler> SessionService::create_handler(Connection& conn) {
  return std::make_unique<SessionConn>(conn, *this);
}

float seconds_since(Clock::time_point t) {
  return std::chrono::duration<float>(Clock::now() - t).count();
}

// ---------------------------------------------------------------- input

std::span<char> SessionConn::read_space() {
  into_sink_ = false;
  if (state_ == State::kPayload && sink_ && input().empty() && remaining_ > 0) {
    std::span<char> s = sink_->space();
    if (!s.empty()) {
      into_sink_ = true;
      // Never past the payload's end: what follows is the next command.
      return s.first(static_cast<size_t>(std::min<uint64_t>(s.size(), remaining_)));
    }
  }
  return in_.space(kReadChunk);
}

void SessionConn::on_read(size_t n) {
  if (into_sink_) {
    into_sink_ = false;
    if (state_ != State::kPayload || !sink_) return;
    sink_->produced(n);
    remaining_ -= n;
    if (remaining_ == 0) {
      end_payload();
    } else if (sink_->space().empty()) {
      conn_.pause_reading();  // on_space resumes
    }
    return;
  }
  in_.produced(n);
  if (state_ == State::kDone) {  // closing: drop whatever still arrives
    in_.clear();
    return;
  }
  if (state_ == State::kPayload) {
    feed_payload();
  } else {
    process_input();
  }
}

void SessionConn::on_eof() {
  eof_ = true;
  if (state_ == State::kPayload && input().size() >= remaining_) return;  // all here: feed goes on
  if (state_ == State::kPayload) {
    // Truncated upload: the temporary file goes, nothing is committed.
    FSRV_LOG_INFO("session: upload of %s cut short (%llu bytes missing); discarded", name_.c_str(),
                  static_cast<unsigned long long>(remaining_));
    count_request(Verb::kUpload, false);
    if (sink_) sink_->cancel();
    sink_.reset();
    state_ = State::kDone;
    conn_.close();
    return;
  }
  if (state_ == State::kIdle) process_input();
}

void SessionConn::on_timer() {
  if (later_.empty() || state_ != State::kBusy) return;
  conn_.write_owned(later_);
  later_.clear();
  count_request(verb_, true);
  back_to_word();
  process_input();
}

void SessionConn::on_shutdown() {
  quit_ = true;
  if (state_ == State::kIdle && want_ == Want::kWord) conn_.close_when_flushed();
}

void SessionConn::on_close() {
  state_ = State::kDone;
  if (sink_) sink_->cancel();
  sink_.reset();
  if (get_) get_->cancel();
  get_.reset();
}

void SessionConn::fail(std::string why) {
  FSRV_LOG_WARN("session: %s; closing", why.c_str());
  service_.count_protocol_error();
  state_ = State::kDone;
  conn_.pause_reading();
  conn_.close_when_flushed();
}

void SessionConn::back_to_word() {
  state_ = State::kIdle;
  want_ = Want::kWord;
}

void SessionConn::process_input() {
  int handled = 0;
  while (state_ == State::kIdle && !conn_.closing()) {
    if (quit_ && want_ == Want::kWord) {
      conn_.close_when_flushed();
      state_ = State::kDone;
      return;
    }
    if (conn_.congested()) {
      conn_.pause_reading();  // on_drain resumes
      return;
    }
    if (handled == kFramesPerTurn) {
      conn_.yield_turn();  // on_drain next turn
      return;
    }
    Frame f = next_frame(input(), want_);
    consume(f.consumed);
    ++handled;
    if (f.kind != Frame::Kind::kNeedMore || input().empty()) conn_.request_head_done();
    switch (f.kind) {
      case Frame::Kind::kNeedMore:
        if (eof_) {
          if (!input().empty() || want_ != Want::kWord) {
            FSRV_LOG_INFO("session: client closed mid-frame");
          }
          state_ = State::kDone;
          conn_.close_when_flushed();
        } else {
          conn_.resume_reading();
        }
        return;
      case Frame::Kind::kError:
        fail(f.error);
        return;
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
  }
}

// ---------------------------------------------------------------- commands

void SessionConn::count_request(Verb verb, bool ok) {
  service_.count(verb, ok);
  service_.observe_duration(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - log_started_).count());
  if (!log::access_enabled()) return;
  bool named = verb != Verb::kLs && verb != Verb::kConnme && verb != Verb::kByebye;
  log::access_request(
      "session", conn_.peer(), verb_name(verb),
      named ? std::string_view(name_) : std::string_view(), ok,
      conn_.bytes_read() - log_in_ + conn_.bytes_written() + conn_.pending_bytes() - log_out_,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - log_started_).count());
}

void SessionConn::on_word(Verb verb) {
  verb_ = verb;
  log_in_ = conn_.bytes_read();
  log_out_ = conn_.bytes_written() + conn_.pending_bytes();
  log_started_ = std::chrono::steady_clock::now();
  switch (verb) {
    case Verb::kConnme:
      conn_.write_owned("connected");
      count_request(verb, true);
      return;
    case Verb::kByebye:
      count_request(verb, true);
      state_ = State::kDone;
      conn_.pause_reading();
      conn_.close_when_flushed();
      return;
    case Verb::kLs:
      start_ls();
      return;
    case Verb::kUpload:
      conn_.write_owned("ready");
      want_ = Want::kUploadHeader;
      return;
    case Verb::kDownload:
    case Verb::kRm:
    case Verb::kSize:
      conn_.write_owned("ready");
      want_ = Want::kName;
      return;
  }
}

void SessionConn::on_name(std::string name) {
  switch (verb_) {
    case Verb::kDownload:
      start_download(std::move(name));
      return;
    case Verb::kSize:
      run_size(std::move(name));
      return;
    case Verb::kRm:
      // The seed's server deleted here, before reading the answer; we wait
      // for it (docs/services/session.md).
      name_ = std::move(name);
      want_ = Want::kConfirm;
      return;
    default:
      fail("name frame outside download/size/rm");
      return;
  }
}

void SessionConn::on_ack() {
  if (verb_ == Verb::kLs) {
    ++next_entry_;
    send_ls_entry();
    return;
  }
  if (verb_ == Verb::kDownload) {
    send_float_later(Verb::kDownload);
    return;
  }
  fail("unexpected ack");
}

void SessionConn::on_confirm(bool yes) {
  if (!yes) {
    // "N": the seed's client expects nothing back.
    count_request(Verb::kRm, true);
    back_to_word();
    return;
  }
  if (Refusal r = service_.policy().refuse(Access::kDelete, Role::kAnonymous);
      r != Refusal::kNone) {
    // rm's own failure answer; the session goes on.
    FSRV_LOG_INFO("session: rm %s: %s", name_.c_str(), refusal_text(r, Access::kDelete).c_str());
    conn_.write_owned(pack_i32(-1));
    count_request(Verb::kRm, false);
    back_to_word();
    return;
  }
  run_rm();
}

void SessionConn::send_float_later(Verb verb) {
  verb_ = verb;
  state_ = State::kBusy;
  conn_.pause_reading();
  later_ = pack_f32(seconds_since(started_));
  conn_.start_timer(kFloatDelayMs);
}

// ---------------------------------------------------------------- ls

void SessionConn::start_ls() {
  state_ = State::kBusy;
  conn_.pause_reading();
  auto out = std::make_shared<std::vector<Entry>>();
  auto status = std::make_shared<Status>();
  const storage::Root* root = shared_.root;
  ConnRef ref(&conn_);
  shared_.executor->submit(
      [root, out, status] {
        auto names = root->list();
        if (!names.ok()) {
          *status = names.status();
          return;
        }
        for (std::string& n : names.value) {
          auto size = root->size(n);
          if (!size.ok()) continue;  // removed since the listing
          Entry e{std::move(n), -1};
          if (size.value <= kMaxWireSize) {
            e.size = static_cast<int32_t>(size.value);
          } else {
            FSRV_LOG_WARN("session: ls: %s has %llu bytes, more than an int32 can say: size -1",
                          e.name.c_str(), static_cast<unsigned long long>(size.value));
          }
          out->push_back(std::move(e));
        }
      },
      [this, ref, out, status] {
        if (conn_.closing() || state_ == State::kDone) return;
        if (!status->ok()) FSRV_LOG_ERROR("session: ls: %s", status->error.c_str());
        entries_ = std::move(*out);
        total_ = 0;
        for (const Entry& e : entries_) total_ += e.size > 0 ? e.size : 0;
        next_entry_ = 0;
        conn_.write_owned(pack_i32(static_cast<int32_t>(entries_.size())));
        state_ = State::kIdle;
        send_ls_entry();
        process_input();
      });
}

// Sends entry next_entry_ and waits for its ack, or the total after the last.
void SessionConn::send_ls_entry() {
  if (next_entry_ < entries_.size()) {
    const Entry& e = entries_[next_entry_];
    conn_.write_owned(pack_i32(static_cast<int32_t>(e.name.size())) + e.name + pack_i32(e.size));
    want_ = Want::kAck;
    return;
  }
  int32_t total = total_ <= static_cast<int64_t>(kMaxWireSize) ? static_cast<int32_t>(total_) : -1;
  if (total < 0)
    FSRV_LOG_WARN("session: ls: total %lld bytes does not fit an int32: -1",
                  static_cast<long long>(total_));
  conn_.write_owned(pack_i32(total));
  entries_.clear();
  count_request(Verb::kLs, true);
  back_to_word();
}

// ---------------------------------------------------------------- size, rm

void SessionConn::run_size(std::string name) {
  state_ = State::kBusy;
  conn_.pause_reading();
  auto result = std::make_shared<Result<uint64_t>>();
  const storage::Root* root = shared_.root;
  ConnRef ref(&conn_);
  shared_.executor->submit(
      [root, result, name] { *result = root->size(name); },
      [this, ref, result, name] {
        if (conn_.closing() || state_ == State::kDone) return;
        int32_t v = -1;
        if (!result->ok()) {
          FSRV_LOG_INFO("session: size %s: %s", name.c_str(), result->error.c_str());
        } else if (result->value > kMaxWireSize) {
          FSRV_LOG_WARN("session: size %s: %llu bytes, over int32: -1", name.c_str(),
                        static_cast<unsigned long long>(result->value));
        } else {
          v = static_cast<int32_t>(result->value);
        }
        conn_.write_owned(pack_i32(v));
        count_request(Verb::kSize, v >= 0);
        back_to_word();
        process_input();
      });
}

void SessionConn::run_rm() {
  state_ = State::kBusy;
  conn_.pause_reading();
  auto status = std::make_shared<Status>();
  const storage::Root* root = shared_.root;
  ConnRef ref(&conn_);
  shared_.executor->submit([root, status, name = name_] { *status = root->remove(name); },
                           [this, ref, status] {
                             if (conn_.closing() || state_ == State::kDone) return;
                             if (!status->ok()) {
                               FSRV_LOG_INFO("session: rm %s: %s", name_.c_str(),
                                             status->error.c_str());
                             }
                             conn_.write_owned(pack_i32(status->ok() ? 1 : -1));
                             count_request(Verb::kRm, status->ok());
                             back_to_word();
                             process_input();
                           });
}

// ---------------------------------------------------------------- download

void SessionConn::start_download(std::string name) {
  state_ = State::kBusy;
  conn_.pause_reading();
  started_ = Clock::now();
  name_ = std::move(name);
  auto opened = std::make_shared<Result<storage::ReadFile>>();
  const storage::Root* root = shared_.root;
  ConnRef ref(&conn_);
  shared_.executor->submit(
      [root, opened, name = name_] { *opened = root->open_read(name); },
      [this, ref, opened] {
        if (conn_.closing() || state_ == State::kDone) return;
        if (!opened->ok() || opened->value.size() > kMaxWireSize) {
          if (opened->ok()) {
            FSRV_LOG_WARN("session: download %s: %llu bytes, over int32: -1", name_.c_str(),
                          static_cast<unsigned long long>(opened->value.size()));
          } else {
            FSRV_LOG_INFO("session: download %s: %s", name_.c_str(), opened->error.c_str());
          }
          conn_.write_owned(pack_i32(-1));
          count_request(Verb::kDownload, false);
          back_to_word();
          process_input();
          return;
        }
        transfer::SendOptions o;
        o.prefix = pack_i32(static_cast<int32_t>(opened->value.size()));
        o.transform = transfer::Transform::kIdentity;
        get_ = transfer::send_file(conn_, *shared_.executor, std::move(opened->value), std::move(o),
                                   [this](Status s) {
                                     get_.reset();
                                     if (!s.ok()) {
                                       count_request(Verb::kDownload, false);
                                       return;  // the sender closed the connection
                                     }
                                     // The client acks the bytes with '1', then
                                     // reads the seconds.
                                     state_ = State::kIdle;
                                     want_ = Want::kAck;
                                     process_input();
                                   });
      });
}

// ---------------------------------------------------------------- upload

void SessionConn::start_upload(std::string name, int32_t size) {
  if (Refusal r = service_.policy().refuse(Access::kWrite, Role::kAnonymous); r != Refusal::kNone) {
    // No error frame for an upload: closed before any byte is stored.
    count_request(Verb::kUpload, false);
    fail("upload " + name + ": " + refusal_text(r, Access::kWrite));
    return;
  }
  if (std::string why = storage::validate_name(name); !why.empty()) {
    count_request(Verb::kUpload, false);
    fail("upload: invalid name: " + why);
    return;
  }
  if (static_cast<uint64_t>(size) > shared_.config->max_upload) {
    count_request(Verb::kUpload, false);
    fail("upload " + name + ": " + std::to_string(size) + " bytes is over --max-upload " +
         std::to_string(shared_.config->max_upload));
    return;
  }
  state_ = State::kPayload;
  name_ = name;
  remaining_ = static_cast<uint64_t>(size);
  started_ = Clock::now();
  transfer::UploadSink::Options o;
  o.name = std::move(name);
  o.transform = transfer::Transform::kIdentity;
  o.max_bytes = shared_.config->max_upload;
  sink_ = transfer::UploadSink::start(
      conn_, *shared_.executor, *shared_.root, std::move(o),
      [this] {
        if (state_ == State::kPayload) feed_payload();
      },
      [this](Status s, uint64_t) {
        sink_.reset();
        if (!s.ok()) {
          // The protocol has no error reply for an upload: log and close.
          count_request(Verb::kUpload, false);
          fail("upload " + name_ + ": " + std::string(errc_name(s.code)) + ": " + s.error);
          return;
        }
        conn_.write_owned("received");
        send_float_later(Verb::kUpload);
      });
  feed_payload();
}

// Payload bytes already in the input buffer go to the sink, up to the
// payload's end; what follows stays for the next command.
void SessionConn::feed_payload() {
  while (state_ == State::kPayload && sink_ && remaining_ > 0 && !input().empty()) {
    std::string_view part =
        input().substr(0, static_cast<size_t>(std::min<uint64_t>(input().size(), remaining_)));
    size_t used = sink_->feed(part);
    consume(used);
    remaining_ -= used;
    if (used < part.size()) {
      conn_.pause_reading();  // both buffers busy: on_space comes back here
      return;
    }
  }
  if (state_ != State::kPayload || !sink_) return;
  if (remaining_ == 0) {
    end_payload();
    return;
  }
  if (eof_) {
    on_eof();
    return;
  }
  conn_.resume_reading();
}

void SessionConn::end_payload() {
  state_ = State::kBusy;
  conn_.pause_reading();
  sink_->end();
}

}  // namespace

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
      [](Shared& shared) -> std::unique_ptr<Service> {
        return std::make_unique<SessionService>(shared);
      },
      Transport::kStream,
      nullptr,
      kPolicyReadOnly};
  return kInfo;
}

}  // namespace fsrv::services::session
