#pragma once
// The tftp service's transfer base: one RRQ or WRQ on its own port (the
// server's transfer ID), a reactor::DatagramPeer (which owns the peer's
// address, the socket, the retransmission timer and the lifetime that
// executor work imposes); the read and write directions derive from it
// (tftp_read_transfer.hpp, tftp_write_transfer.hpp) and the request port
// (tftp_request_port.hpp) owns them all.
//
// Block numbers are 16 bits on the wire and roll over 65535 -> 0 (the
// convention of tftp-hpa, curl and atftp for files over 32 MiB at 512-byte
// blocks); inside a transfer every block has a 64-bit number and a wire
// number is resolved against the window it can belong to.

#include <sys/socket.h>
#include <uv.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "fsrv/core/config.hpp"
#include "fsrv/core/result.hpp"
#include "fsrv/reactor/datagram_peer.hpp"
#include "fsrv/reactor/executor.hpp"
#include "fsrv/reactor/transfer_peer.hpp"
#include "fsrv/services/tftp/tftp_options.hpp"
#include "fsrv/services/tftp/tftp_packet.hpp"

namespace fsrv::services::tftp {

/// Retransmissions of a transfer's first packet while its peer was never
/// heard (at the default 1 s timeout it ends after 1 + 2 + 4 + 8 = 15 s,
/// not after --tftp-retries' full minute of backoff): a request never
/// followed by an ACK costs four packets. Three retransmissions keep a
/// client behind 5% loss each way failing its start once in 10,000.
inline constexpr int kUnheardRetries = 3;
/// Bytes read per executor task for an RRQ (a WRQ writes in the upload
/// engine's chunks, transfer::UploadSink): 64 blocks, within 256 KiB..1 MiB, so the executor round
/// trip (a thread handoff in thread mode) is amortised over many blocks at every blksize.
inline constexpr size_t kMinIoChunk = 256 * 1024;
inline constexpr size_t kMaxIoChunk = 1024 * 1024;
inline size_t io_chunk(size_t blksize) {
  return std::clamp<size_t>(64 * blksize, kMinIoChunk, kMaxIoChunk);
}
/// Received bytes a write request holds beyond the upload engine's two
/// chunk buffers while they wait for the disk; above this the ACK that
/// lets the client go on waits (flow control: TFTP has no other way to
/// slow a sender down). A short executor delay on a busy machine then
/// costs no lock-step round trip.
inline constexpr size_t kMaxHeldWrite = 8 * 1024 * 1024;
/// Socket buffers of a transfer: two windows, at least 256 KiB, at most
/// 8 MiB (a 65464-byte datagram costs ~128 KiB of buffer accounting).
inline constexpr int kMinSocketBuffer = 256 * 1024;
inline constexpr int kMaxSocketBuffer = 8 * 1024 * 1024;
/// After the final ACK of a write, the transfer keeps its port this many
/// timeouts to ACK a retransmitted last block (RFC 1350 section 6, the
/// "dallying" of the side that sends the final ACK).
inline constexpr int kDallyTimeouts = 2;
/// Upper bound of the backed-off retransmission timeout (tftpd-hpa stops
/// doubling at about the same point).
inline constexpr uint64_t kMaxBackoffMs = 60'000;

/// The TFTP error for a storage failure (RFC 1350 error codes).
ErrorCode error_code(Errc code);
/// The ERROR message for a storage failure.
std::string error_text(const Status& s);

class RequestPort;

/// What a transfer starts from: the request port that owns it, the client's
/// address (its TID), the parsed request, the options agreed on and the
/// request's bytes as received (to recognise a retransmitted request).
struct TransferArgs {
  RequestPort& port;
  const sockaddr& peer;
  Request request;
  Negotiated negotiated;
  std::string request_bytes;
};

/// One RRQ or WRQ: a DatagramPeer whose own socket is an ephemeral port
/// (the server's transfer ID) and whose peer is the client's TID. Owned by
/// RequestPort; destroyed once the peer is released (handles closed, no
/// executor task holding it).
class Transfer : public reactor::DatagramPeer {
 public:
  explicit Transfer(TransferArgs args);
  ~Transfer() override = default;

  /// Binds the transfer's port and begins. False if no port could be had
  /// (the transfer is then already finishing).
  bool start(const std::string& host);
  /// Ends the transfer with ERROR 0 `why` (server shutdown).
  void abort(std::string_view why);
  /// Counted as a success already: a write that committed and dallies.
  bool succeeded() const { return counted_; }

  const std::string& key() const { return peer_key(); }
  /// The peer's IP (the per-address caps' key).
  const std::string& ip() const { return peer_ip(); }
  /// True once the peer sent anything to this transfer's port.
  bool heard() const { return heard_; }
  /// True once it ended (its handles may still be closing).
  bool ended() const { return closing(); }
  /// True while the peer has not yet spoken to this transfer's port: an
  /// identical request from it is then a retransmission of this one.
  bool is_retransmission(std::string_view request_bytes) const {
    return !heard_ && !closing() && request_bytes == request_bytes_;
  }

 protected:
  // The direction: first step, one datagram from the peer, a timeout.
  virtual void begin() = 0;
  virtual void on_packet(uint16_t op, std::span<const char> packet) = 0;
  virtual void on_timeout() = 0;
  virtual const char* direction() const = 0;

  void send(std::span<const char> packet) { DatagramPeer::send(packet); }
  void send(const std::string& packet) { DatagramPeer::send(std::span<const char>(packet)); }
  /// One datagram of `head` then `body` (no copy).
  void send(std::span<const char> head, std::span<const char> body) {
    DatagramPeer::send(head, body);
  }
  /// Sends ERROR `code` and finishes the transfer as failed.
  void fail(ErrorCode code, std::string_view message);
  /// (Re)starts the timer for `ms` (default: the transfer's timeout).
  void arm_timer(uint64_t ms = 0) { DatagramPeer::arm_timer(ms ? ms : timeout_ms()); }
  /// The retransmission timeout now: the transfer's timeout doubled per
  /// retry since the last progress (RFC 1123 4.2.3.2: "at least an
  /// exponential backoff of retransmission timeout is necessary"), at most
  /// kMaxBackoffMs. A client that re-ACKs only after its own timeout of
  /// silence (atftp 0.8.0: 1 s) is thereby heard within a few retries.
  uint64_t timeout_ms() const {
    return std::min<uint64_t>(timeout_ms_ << std::min(retries_, 16),
                              std::max<uint64_t>(timeout_ms_, kMaxBackoffMs));
  }
  /// Timeouts since the last progress.
  int retries() const { return retries_; }
  /// A timeout happened: false (after ERROR 0 and finish) once the retry
  /// limit is used up; true means retransmit now.
  bool retry();
  /// The peer made progress: the retry count starts over.
  void progress() { retries_ = 0; }
  /// Ends the transfer: counts it (unless count_result ran), closes the
  /// socket and the timer.
  void finish(bool ok);
  /// Counts and logs the outcome now (once per transfer).
  void count_result(bool ok);
  /// Runs `work` on the executor and `done` on the loop, unless the
  /// transfer finished meanwhile. Keeps the transfer alive until then.
  void run(reactor::Executor::Fn work, reactor::Executor::Fn done);
  bool finished() const { return closing(); }

  RequestPort& service_;
  const ServerConfig& config_;
  const Options& options_;  ///< config_.services' tftp options
  Request request_;
  Negotiated n_;
  std::string name_;  ///< the storage name (leading '/' removed)
  uint64_t bytes_ = 0;
  uint64_t started_ms_ = 0;

 private:
  void on_peer_datagram(std::span<const char> data) override;
  void on_stranger(const sockaddr& from, std::span<const char> data) override;
  void on_timer() override { on_timeout(); }
  void on_released() override;

  std::string request_bytes_;
  uint64_t timeout_ms_;
  int retries_ = 0;
  bool heard_ = false;
  bool counted_ = false;
};

}  // namespace fsrv::services::tftp
