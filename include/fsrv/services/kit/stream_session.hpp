#pragma once
// The stream-session kit's session base: a ConnectionHandler assembled from
// the kit's pieces. Reads land in the PayloadReader while an upload's
// payload flows, else in the InputBuffer; then the session's
// process_input() parses (usually by pumping the RequestLoop). A service's
// session adds its parser, its replies and its end-of-stream rules.

#include <functional>
#include <span>

#include "fsrv/core/limits.hpp"
#include "fsrv/reactor/connection.hpp"
#include "fsrv/services/kit/input_buffer.hpp"
#include "fsrv/services/kit/payload_reader.hpp"
#include "fsrv/services/kit/request_loop.hpp"

namespace fsrv::services::kit {

/// A TCP session built from the kit (see above).
class StreamSession : public reactor::ConnectionHandler {
 public:
  /// `read_room`: the bytes asked for per read outside payloads (a
  /// protocol of short lines or words asks for less than limits::kLineBuffer).
  explicit StreamSession(reactor::Connection& conn, size_t read_room = limits::kLineBuffer)
      : conn_(conn), loop_(conn), payload_(conn, in_), read_room_(read_room) {}

  std::span<char> read_space() override {
    return payload_.active() ? payload_.read_space() : in_.space(read_room_);
  }
  void on_read(size_t n) override {
    if (payload_.active()) {
      payload_step(payload_.on_read(n));
      return;
    }
    in_.produced(n);
    process_input();
  }
  void on_drain() override { process_input(); }
  void on_shutdown() override { loop_.shutdown(); }

 protected:
  /// Parses and answers what the InputBuffer holds (RequestLoop::pump).
  virtual void process_input() = 0;
  /// What the PayloadReader did with a read or a feed (kDone: the sink
  /// ended, its callback answers; kBadMarker: the stream is unusable).
  virtual void payload_step(PayloadReader::Step) {}
  /// The request in progress finished: takes the next one unless closing.
  void request_done() {
    if (loop_.done()) process_input();
  }
  /// The `on_space` callback of an UploadSink feeding payload_.
  std::function<void()> sink_space() {
    return [this] {
      if (payload_.active()) payload_step(payload_.feed());
    };
  }

  reactor::Connection& conn_;
  InputBuffer in_;
  RequestLoop loop_;
  PayloadReader payload_;
  bool eof_ = false;  ///< the client half-closed
  size_t read_room_;
};

}  // namespace fsrv::services::kit
