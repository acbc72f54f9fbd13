#pragma once
// The tftp service's transfer base: one RRQ or WRQ on its own port (the
// server's transfer ID), a reactor::DatagramPeer; the read and write
// directions derive from it (tftp_read_transfer.cpp, tftp_write_transfer.cpp)
// and the request port (tftp_request_port.hpp) owns them all.
//
// Wire block numbers roll over 65535 -> 0 (as in tftp-hpa, curl and atftp);
// inside a transfer blocks have 64-bit numbers, and a wire number is
// resolved against the window it can belong to.

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
#include "fsrv/services/tftp/tftp_options.hpp"
#include "fsrv/services/tftp/tftp_packet.hpp"

namespace fsrv::services::tftp {

/// Retransmissions of a transfer's first packet while its peer was never
/// heard (15 s at the default 1 s timeout, not --tftp-retries' minute): a
/// request never followed up costs four packets, and a client behind 5%
/// loss each way fails its start once in 10,000.
inline constexpr int kUnheardRetries = 3;
/// Bytes read per executor task for an RRQ (a WRQ writes in the upload
/// engine's chunks, transfer::UploadSink): 64 blocks, within 256 KiB..1
/// MiB, so the executor round trip (a thread handoff in thread mode) is
/// amortised over many blocks at every blksize.
inline constexpr size_t kMinIoChunk = 256 * 1024;
inline constexpr size_t kMaxIoChunk = 1024 * 1024;
/// Received bytes a write request holds beyond the upload engine's two
/// chunk buffers while they wait for the disk; above this the ACK that lets
/// the client go on waits (flow control: TFTP has no other).
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

class RequestPort;

/// What a transfer starts from: the request port that owns it, the client's
/// address (its TID), the parsed request (negotiated by the transfer) and
/// the request's bytes as received (to recognise a retransmitted request).
struct TransferArgs {
  RequestPort& port;
  const sockaddr& peer;
  Request request;
  std::string request_bytes;
};

/// One RRQ or WRQ: a DatagramPeer whose own socket is an ephemeral port
/// (the server's transfer ID) and whose peer is the client's TID. Owned by
/// RequestPort; destroyed once the peer is released (handles closed, no
/// executor task holding it).
class Transfer : public reactor::DatagramPeer {
 public:
  explicit Transfer(TransferArgs args);

  /// Binds the transfer's port, checks the name (and a write against
  /// read-only) and begins. False if no port could be had (the transfer is
  /// then already finishing).
  bool start(const std::string& host);
  /// Ends the transfer with ERROR 0 `why` (server shutdown).
  void abort(std::string_view why);
  /// Counted as a success already: a write that committed and dallies.
  bool succeeded() const { return counted_; }

  /// True once the peer sent anything to this transfer's port.
  bool heard() const { return heard_; }
  /// True while the peer has not yet spoken to this transfer's port: an
  /// identical request from it is then a retransmission of this one.
  bool is_retransmission(std::string_view request_bytes) const {
    return !heard_ && !closing() && request_bytes == request_bytes_;
  }

 protected:
  // The direction: first step, and one packet of its opcode (ACK for a
  // read, DATA for a write) with its wire block number (and on_timer).
  virtual void begin() = 0;
  virtual void on_packet(uint16_t wire, std::span<const char> packet) = 0;

  const char* direction() const { return request_.op == Opcode::kRrq ? "RRQ" : "WRQ"; }

  /// Sends ERROR `code` and finishes the transfer as failed.
  void fail(ErrorCode code, std::string_view message);
  /// The same for a storage failure, as its RFC 1350 error code and text.
  void fail(const Status& status);
  /// (Re)starts the timer for `ms` (default: the transfer's timeout).
  void arm_timer(uint64_t ms = 0) { DatagramPeer::arm_timer(ms ? ms : timeout_ms()); }
  /// The retransmission timeout now: the transfer's timeout doubled per
  /// retry since the last progress (RFC 1123 4.2.3.2), at most kMaxBackoffMs,
  /// so a client that re-ACKs only after 1 s of silence (atftp) is heard.
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
  void on_released() override;

  std::string request_bytes_;
  uint64_t timeout_ms_;
  int retries_ = 0;
  bool heard_ = false;
  bool counted_ = false;
};

/// A ReadTransfer (tftp_read_transfer.cpp) or WriteTransfer
/// (tftp_write_transfer.cpp) for `args`, not yet started (Transfer::start).
std::unique_ptr<Transfer> make_read_transfer(TransferArgs args);
std::unique_ptr<Transfer> make_write_transfer(TransferArgs args);

}  // namespace fsrv::services::tftp
