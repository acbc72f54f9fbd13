#pragma once
// The stream-session kit's payload reader: diverts an upload's bytes, as
// they are read, into a transfer::UploadSink (or drops them), and finds
// where the payload ends by one of three rules:
//   count       exactly N bytes (file-raw: "UPLOAD name size");
//   terminator  the first byte of a set, which is consumed (file: the end
//               of the UPLOAD line, '\r' or '\n');
//   marker      a string whose first byte never occurs in the payload
//               (file-marker: "__END__" after base64, which has no '_');
//               any other byte after that first one is a framing error.
// Reads land straight in the sink's buffer while nothing is buffered;
// bytes read past the end stay in the session's InputBuffer for the next
// request. Reading pauses while the sink's buffers are full and resumes
// when it frees one (backpressure; the sink's on_space calls feed()).

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>

#include "fsrv/reactor/connection.hpp"
#include "fsrv/services/kit/input_buffer.hpp"
#include "fsrv/transfer/upload_sink.hpp"

namespace fsrv::services::kit {

/// Where a payload ends (see above). `text` must outlive the payload
/// (string literals).
struct PayloadEnd {
  enum Kind { kCount, kTerminator, kMarker };
  Kind kind = kCount;
  uint64_t bytes = 0;     ///< kCount
  std::string_view text;  ///< kTerminator: any of these bytes; kMarker: the marker
  static PayloadEnd count(uint64_t n) { return {kCount, n, {}}; }
  static PayloadEnd terminator(std::string_view any_of) { return {kTerminator, 0, any_of}; }
  static PayloadEnd marker(std::string_view text) { return {kMarker, 0, text}; }
};

/// One upload payload at a time on one connection (see above).
class PayloadReader {
 public:
  /// What a read or feed() did.
  enum class Step {
    kMore,       ///< the payload goes on (reading resumed or paused for space)
    kDone,       ///< the end was found: reading paused, the sink ended
    kBadMarker,  ///< kMarker: a byte broke the marker; the sink was cancelled
  };

  PayloadReader(reactor::Connection& conn, InputBuffer& input) : conn_(conn), in_(input) {}

  /// Starts a payload: its bytes go into `sink` (null: they are dropped)
  /// until `end`. Call feed() next for bytes already buffered.
  void start(std::shared_ptr<transfer::UploadSink> sink, PayloadEnd end);
  /// Between start() and kDone / kBadMarker / cancel().
  bool active() const { return active_; }
  /// While active: where the next read lands (inside the sink when it can,
  /// never past a counted payload's end; else in the InputBuffer).
  std::span<char> read_space();
  /// While active: `n` bytes were read into the last read_space().
  Step on_read(size_t n);
  /// While active: moves payload bytes buffered in the InputBuffer into the
  /// sink, up to the end.
  Step feed();
  /// Drops the payload: cancels the sink (no callback of it runs after).
  void cancel();
  /// Forgets the sink after its done callback ran.
  void reset() { sink_.reset(); }
  /// Payload bytes taken so far (not counting the end).
  uint64_t taken() const { return taken_; }
  /// Sees every payload byte taken, in order (file: the payload's head).
  std::function<void(std::string_view)> observe;

 private:
  size_t end_start(std::string_view data) const;
  void take(std::string_view part);
  Step finish();

  reactor::Connection& conn_;
  InputBuffer& in_;
  std::shared_ptr<transfer::UploadSink> sink_;
  PayloadEnd end_;
  bool active_ = false;
  bool into_sink_ = false;  ///< the last read_space() was the sink's
  size_t held_ = 0;         ///< kMarker: bytes of the marker matched so far
  uint64_t taken_ = 0;
};

}  // namespace fsrv::services::kit
