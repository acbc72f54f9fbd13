#pragma once
// What a transfer engine (transfer::UploadSink, transfer::FileSender)
// needs of the transport it serves, so that one engine serves a TCP
// connection (reactor::Connection) and a datagram transfer (the tftp
// service's Transfer) alike: whether the peer is gone, the payload's start
// and end, progress for its timers, a reference that keeps the peer's
// memory alive while executor work that names it is in flight, and, for
// the GET engine, where its chunks of body go. h2o's generator
// (`proceed`/`stop` over any transport) is the model: the engine hands a
// chunk to the peer, the peer gives it back when done with it, and that is
// what lets the engine produce the next one.

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <utility>

namespace fsrv::reactor {

class Executor;

/// How send_file turns file bytes into wire bytes (e.g. base64): the
/// reactor knows only the sizes and the function.
struct SendTransform {
  /// Encodes `in` into `out` (out_size(in.size()) bytes); returns the bytes
  /// written. Runs on the executor's thread; must be thread-safe.
  std::function<size_t(std::span<const uint8_t> in, char* out)> encode;
  /// Output bytes for `n` input bytes, at most.
  size_t (*out_size)(size_t n) = nullptr;
  /// File bytes read and encoded at a time; every chunk but the last has
  /// this size, so it must keep the encoding's block boundaries (a
  /// multiple of 3 for base64).
  size_t chunk = 0;
};

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

  // The GET engine's side. The defaults serve a peer that takes no body.

  /// Takes `n` buffers of body (and framing), the engine's until
  /// `done(status)`: a stream writes them and calls done once written; a
  /// datagram transfer keeps them until its peer acknowledged every byte.
  /// `last`: the body ends with them. status 0, or a libuv error (closing).
  virtual void body_write(const uv_buf_t* bufs, unsigned n, bool last,
                          std::function<void(int)> done) {
    (void)bufs, (void)n, (void)last;
    done(UV_ENOTSUP);
  }
  /// Framing bytes the peer copies and sends before what follows.
  virtual void body_write_owned(std::string_view bytes) { (void)bytes; }
  /// False while the peer wants no further chunk yet (it calls the
  /// engine's proceed() when it does).
  virtual bool body_wants_more() const { return true; }
  /// Bytes of body queued in user space and unacknowledged in the kernel
  /// (the base64 pump sizes its next chunk by them).
  virtual size_t body_queued() const { return 0; }
  virtual size_t body_unacked() const { return 0; }
  /// True when the body may go through body_send_file: by sendfile(2),
  /// or (`transformed`) read, encoded and sent by one executor item.
  virtual bool body_can_send_file(bool transformed) const {
    (void)transformed;
    return false;
  }
  /// Sends `length` bytes of `fd` from `offset`, through `transform` when
  /// not null (Connection::send_file).
  virtual void body_send_file(int fd, uint64_t offset, uint64_t length, Executor& executor,
                              std::function<void(int, uint64_t)> done,
                              const SendTransform* transform) {
    (void)fd, (void)offset, (void)length, (void)executor, (void)transform;
    done(UV_ENOTSUP, 0);
  }
  /// The body cannot be completed as announced (a read failed, the file
  /// shrank): the peer ends without its normal ending.
  virtual void body_abort() {}

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
