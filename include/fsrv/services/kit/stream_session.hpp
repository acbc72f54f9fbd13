#pragma once
// The stream-session kit's session base: a ConnectionHandler assembled from
// the kit's pieces. Reads land in the PayloadReader while an upload's
// payload flows, else in the InputBuffer; then the session's
// process_input() parses (usually by pumping the RequestLoop). Storage
// calls on the executor, uploads into a transfer::UploadSink, a request's
// access log record and the close are the same for every session. A
// service's session adds its parser, its replies and its end-of-stream
// rules.

#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <utility>

#include "fsrv/core/access_log.hpp"
#include "fsrv/core/limits.hpp"
#include "fsrv/reactor/connection.hpp"
#include "fsrv/services/kit/input_buffer.hpp"
#include "fsrv/services/kit/payload_reader.hpp"
#include "fsrv/services/kit/request_loop.hpp"
#include "fsrv/services/kit/storage_calls.hpp"
#include "fsrv/services/service.hpp"
#include "fsrv/transfer/file_sender.hpp"
#include "fsrv/transfer/upload_sink.hpp"

namespace fsrv::services::kit {

/// A TCP session built from the kit (see above).
class StreamSession : public reactor::ConnectionHandler {
 public:
  /// `read_room`: the bytes asked for per read outside payloads (a
  /// protocol of short lines or words asks for less than limits::kLineBuffer).
  explicit StreamSession(reactor::Connection& conn, size_t read_room = limits::kLineBuffer)
      : conn_(conn), loop_(conn), read_room_(read_room) {}

  std::span<char> read_space() override {
    return in_payload() ? payload_->read_space() : in_.space(read_room_);
  }
  void on_read(size_t n) override {
    if (in_payload()) {
      payload_step(payload_->on_read(n));
      return;
    }
    in_.produced(n);
    process_input();
  }
  void on_drain() override { process_input(); }
  void on_shutdown() override { loop_.shutdown(); }
  /// Drops a download and an upload in progress (the temporary file goes
  /// with the sink's last task).
  void on_close() override {
    if (get_) get_->cancel();
    get_.reset();
    cancel_payload();
  }

 protected:
  /// Parses and answers what the InputBuffer holds (RequestLoop::pump).
  virtual void process_input() = 0;
  /// What the PayloadReader did with a read or a feed (kDone: the sink
  /// ended, its callback answers; kBadMarker: the stream is unusable).
  virtual void payload_step(PayloadReader::Step) {}
  /// Sees every payload byte taken, in order (file: the payload's head).
  virtual void observe_payload(std::string_view) {}
  /// True while a payload is being read (into a sink or dropped).
  bool in_payload() const { return payload_ && payload_->active(); }
  /// The payload's bytes taken so far (0 before the first payload).
  uint64_t payload_taken() const { return payload_ ? payload_->taken() : 0; }
  /// Stops the payload in progress, if any (the sink's temporary goes).
  void cancel_payload() {
    if (payload_) payload_->cancel();
  }
  /// The connection's PayloadReader, made at its first payload: a
  /// connection that never uploads holds none (about 120 bytes less per
  /// idle connection).
  PayloadReader& payload() {
    if (!payload_) {
      payload_ = std::make_unique<PayloadReader>(conn_, in_);
      payload_->observe = [this](std::string_view bytes) { observe_payload(bytes); };
    }
    return *payload_;
  }
  /// The request in progress finished: takes the next one unless closing.
  void request_done() {
    if (loop_.done()) process_input();
  }
  /// Starts a request that runs `work` on the serving process's executor
  /// (a storage call: it touches no connection) with reading paused, then
  /// `done(result)` on the loop thread unless the connection is closing by
  /// then (a PeerRef keeps it alive meanwhile: STYLE.md, every in-flight
  /// work request holds a strong reference).
  template <class T>
  void call_storage(Shared& shared, std::function<T(const storage::Root&)> work,
                    std::function<void(T&)> done) {
    loop_.begin();
    conn_.pause_reading();
    kit::call_storage<T>(
        conn_, shared, [root = shared.root, work = std::move(work)] { return work(*root); },
        std::move(done));
  }
  /// Starts a request whose payload, up to `end`, goes into a new
  /// transfer::UploadSink made with `o`; `done(status, bytes)` when it is
  /// stored or failed.
  void take_upload(Shared& shared, transfer::UploadSink::Options o, PayloadEnd end,
                   std::function<void(Status, uint64_t)> done) {
    loop_.begin();
    auto sink = transfer::UploadSink::start(
        conn_, *shared.executor, *shared.root, std::move(o),
        [this] {
          if (in_payload()) payload_step(payload_->feed());
        },
        [this, done = std::move(done)](Status s, uint64_t bytes) {
          payload_->reset();
          done(s, bytes);
        });
    payload().start(std::move(sink), end);
    payload_step(payload_->feed());
  }

  /// A request begins: its access log record starts now.
  void begin_record() {
    record_in_ = conn_.bytes_read();
    record_out_ = conn_.bytes_written() + conn_.pending_bytes();
    record_started_ = std::chrono::steady_clock::now();
  }
  /// The request ends: its duration goes into `service`'s histogram and,
  /// with --access-log, its line is written with the bytes the connection
  /// moved since begin_record() plus `extra` (a reply about to be queued).
  void end_record(Service& service, std::string_view verb, std::string_view name, bool ok,
                  size_t extra = 0) {
    using Seconds = std::chrono::duration<double>;
    double seconds = Seconds(std::chrono::steady_clock::now() - record_started_).count();
    service.observe_duration(seconds);
    if (!log::access_enabled()) return;
    log::access_request(service.name(), conn_.peer(), verb, name, ok,
                        conn_.bytes_read() - record_in_ + conn_.bytes_written() +
                            conn_.pending_bytes() - record_out_ + extra,
                        seconds);
  }

  reactor::Connection& conn_;
  InputBuffer in_;
  RequestLoop loop_;
  std::unique_ptr<PayloadReader> payload_;     ///< made at the first payload (payload())
  std::shared_ptr<transfer::FileSender> get_;  ///< a download in progress
  bool eof_ = false;                           ///< the client half-closed
  size_t read_room_;
  uint64_t record_in_ = 0, record_out_ = 0;  ///< begin_record()'s byte counts
  std::chrono::steady_clock::time_point record_started_;
};

}  // namespace fsrv::services::kit
