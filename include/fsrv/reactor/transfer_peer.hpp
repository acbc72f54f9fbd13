#pragma once
// What a transfer engine (transfer::UploadSink) needs of the transport it
// serves, so that one engine serves a TCP connection (reactor::Connection)
// and a datagram transfer (the tftp service's Transfer) alike: whether the
// peer is gone, the payload's start and end, progress for its timers, and a
// reference that keeps the peer's memory alive while executor work that
// names it is in flight. h2o's generator (`proceed`/`stop` over any
// transport) is the model.

#include <utility>

namespace fsrv::reactor {

/// The transport side of a transfer engine. All calls on the loop thread.
class TransferPeer {
 public:
  /// True once the peer is closing or ended: engines stop calling back.
  virtual bool peer_closing() const = 0;
  /// A payload starts (true) or is complete or dropped (false): a TCP
  /// connection measures its rate against --min-rate in between.
  virtual void peer_payload(bool active) = 0;
  /// Payload bytes reached the disk: progress for the peer's idle timer.
  virtual void peer_progress() = 0;
  /// Keeps the peer's memory alive until the matching peer_release().
  virtual void peer_retain() = 0;
  /// Drops a peer_retain(); may free the peer.
  virtual void peer_release() = 0;

 protected:
  ~TransferPeer() = default;
};

/// Strong reference to a TransferPeer: retains on construction and copy,
/// releases on destruction (held by executor callbacks).
class PeerRef {
 public:
  explicit PeerRef(TransferPeer* p) : p_(p) {
    if (p_) p_->peer_retain();
  }
  PeerRef(const PeerRef& o) : p_(o.p_) {
    if (p_) p_->peer_retain();
  }
  PeerRef(PeerRef&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  PeerRef& operator=(const PeerRef&) = delete;
  PeerRef& operator=(PeerRef&&) = delete;
  ~PeerRef() {
    if (p_) p_->peer_release();
  }

 private:
  TransferPeer* p_;
};

}  // namespace fsrv::reactor
