#pragma once
// The tftp service's request port: parses RRQ and WRQ, applies the caps
// (transfers in all, per source address, unheard per address; ERROR replies
// per second) and starts one transfer per request on its own port
// (tftp_transfer.hpp). One per serving process.

#include <sys/socket.h>
#include <uv.h>

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fsrv/core/log.hpp"
#include "fsrv/services/service.hpp"
#include "fsrv/services/tftp/tftp_transfer.hpp"

namespace fsrv::services::tftp {

/// Transfers at once per serving process; a request beyond gets ERROR 0
/// "server busy" (each transfer holds a socket, a timer and up to a window
/// plus two read chunks of memory).
inline constexpr size_t kMaxTransfers = 512;
/// Transfers one source address (any port) may have at once: one client
/// alone cannot take the table (a course client runs one at a time; a
/// parallel bench a handful).
inline constexpr size_t kMaxTransfersPerAddress = 32;
/// Transfers of one address that have not yet heard from their peer: the
/// bytes sent to an address that never answers (a spoofed source, a
/// reflection victim) are bounded by this many first packets, each sent
/// at most 1 + kUnheardRetries times.
inline constexpr size_t kMaxUnheardPerAddress = 4;
/// ERROR replies to garbage and to refused requests on the request port,
/// per second (the rest are dropped and counted): a forged-source flood
/// cannot turn the port into a reflector.
inline constexpr int kErrorRepliesPerSecond = 50;
/// The request port: parses RRQ/WRQ and starts transfers.
class RequestPort final : public DatagramService {
 public:
  explicit RequestPort(Shared& shared)
      : DatagramService(shared, "tftp"),
        rrq_ok_(counter("rrq/ok")),
        rrq_failed_(counter("rrq/failed")),
        wrq_ok_(counter("wrq/ok")),
        wrq_failed_(counter("wrq/failed")),
        retransmits_(counter("retransmits")),
        bad_packets_(counter("bad_packets")),
        bytes_sent_(counter("bytes/sent")),
        bytes_received_(counter("bytes/received")),
        refused_address_(counter("refused/address")),
        refused_unheard_(counter("refused/unheard")),
        errors_dropped_(counter("errors_dropped")) {}

  void on_start(reactor::DatagramListener&) override { ++listeners_; }

  void on_datagram(reactor::DatagramListener& listener, const sockaddr& from,
                   std::span<const char> data) override;

  /// Shutdown: no new requests (the request port is closed); transfers in
  /// progress go on on their own ports within the grace period (busy()).
  /// A write already committed, only dallying for a lost final ACK, ends
  /// now rather than hold the shutdown for two timeouts.
  void on_stop(reactor::DatagramListener&) override {
    if (--listeners_ > 0) return;
    stopping_ = true;
    abort_transfers(/*committed_only=*/true);
    if (!transfers_.empty()) {
      FSRV_LOG_INFO("tftp: %zu transfer(s) finishing", transfers_.size());
    }
  }
  bool busy() const override { return stopping_ && !transfers_.empty(); }
  /// Grace over: every transfer ends with ERROR 0 (an upload in progress
  /// keeps the old file); busy() turns false once their handles are closed.
  void force_stop() override { abort_transfers(/*committed_only=*/false); }

  /// A transfer is done with every handle and task: destroy it.
  void release(Transfer* t) {
    forget_peer(t);
    transfers_.erase(t);
    if (stopping_ && transfers_.empty() && shared_.work_done) shared_.work_done();
  }
  /// The transfer no longer answers retransmitted requests.
  void forget_peer(Transfer* t) {
    auto k = by_peer_.find(t->peer_key());
    if (k != by_peer_.end() && k->second == t) by_peer_.erase(k);
  }

  bool stopping() const { return stopping_; }
  void count_bad() { count(bad_packets_); }

  stats::Counter rrq_ok_, rrq_failed_, wrq_ok_, wrq_failed_, retransmits_, bad_packets_,
      bytes_sent_, bytes_received_, refused_address_, refused_unheard_, errors_dropped_;

 private:
  /// Ends every transfer (or only writes already committed and dallying)
  /// with Transfer::abort; collected first, as an abort may release one.
  void abort_transfers(bool committed_only) {
    std::vector<Transfer*> chosen;
    for (auto& [t, owned] : transfers_) {
      if (!committed_only || t->succeeded()) chosen.push_back(t);
    }
    for (Transfer* t : chosen) t->abort("server shutting down");
  }

  /// Sends ERROR `message` from the request port unless kErrorRepliesPerSecond
  /// went out this second (then dropped and counted).
  void reply_error(reactor::DatagramListener& listener, const sockaddr& to, ErrorCode code,
                   std::string_view message) {
    const uint64_t now = uv_now(shared_.loop);
    if (now - error_second_ms_ >= 1000) {
      error_second_ms_ = now;
      errors_this_second_ = 0;
    }
    if (++errors_this_second_ > kErrorRepliesPerSecond) {
      count(errors_dropped_);
      return;
    }
    listener.send_to(to, error_packet(code, message));
  }

  int listeners_ = 0;
  bool stopping_ = false;
  uint64_t error_second_ms_ = 0;
  int errors_this_second_ = 0;
  std::unordered_map<Transfer*, std::unique_ptr<Transfer>> transfers_;
  std::unordered_map<std::string, Transfer*> by_peer_;  ///< latest transfer of each peer
};

}  // namespace fsrv::services::tftp
