#pragma once
// Per-peer datagram state, the UDP sibling of reactor::Connection (nginx's
// ngx_event_udp.c gives each UDP peer a pseudo-connection the same way):
// the peer's address, one timer (retransmission or idle), optionally a
// socket of its own (a TFTP transfer's port, the server's transfer ID),
// and the lifetime that libuv and the executor impose. A peer lives until
// it is closed, its handles' close callbacks ran and no executor work
// holds it (TransferPeer's reference count); on_released() then tells the
// owner it may destroy it. A service derives its per-peer type from it
// (the tftp service's Transfer, the udp-sink's Sender).

#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "fsrv/core/config.hpp"
#include "fsrv/reactor/datagram.hpp"
#include "fsrv/reactor/executor.hpp"
#include "fsrv/reactor/transfer_peer.hpp"

namespace fsrv::reactor {

/// "IP:PORT" of an IPv4/IPv6 address (a peer's key in a service's table).
std::string address_key(const sockaddr& addr);
/// Whether `b` is the address and port stored in `a`.
bool same_address(const sockaddr_storage& a, const sockaddr& b);

/// One UDP peer's state. Neither copyable nor movable (libuv keeps the
/// timer's address). Every call runs on the loop thread.
class DatagramPeer : public TransferPeer, private DatagramHandler {
 public:
  /// A peer at `peer` (IPv4 or IPv6); its timer is initialised on `loop`.
  DatagramPeer(uv_loop_t* loop, const sockaddr& peer);
  ~DatagramPeer() override;
  DatagramPeer(const DatagramPeer&) = delete;
  DatagramPeer& operator=(const DatagramPeer&) = delete;

  /// Binds a socket of the peer's own at `at` (port 0: an ephemeral one):
  /// datagrams from the peer's address reach on_peer_datagram, others
  /// on_stranger. Returns the bound port or a negative libuv error.
  int open_socket(const Endpoint& at, DatagramOptions options);
  /// Sends one datagram (`head` then `body`, no copy) to the peer from its
  /// own socket; nothing once closing or without a socket. Returns bytes
  /// sent or a negative libuv error (UDP may drop it: uv_udp_try_send).
  int send(std::span<const char> head, std::span<const char> body = {});
  /// Sends a datagram to `to` (not the peer) from the peer's own socket.
  int send_to(const sockaddr& to, std::span<const char> data);

  /// (Re)starts the timer: on_timer() in `ms` milliseconds, once.
  void arm_timer(uint64_t ms);
  void stop_timer();

  /// Runs `work` on `executor` and `done` on the loop unless the peer is
  /// closing by then; the peer stays alive until the task is done.
  void run(Executor& executor, Executor::Fn work, Executor::Fn done);

  /// Stops the timer and closes the timer and the socket (idempotent);
  /// on_released() follows once libuv closed them and no reference is left.
  void close();
  bool closing() const { return closing_; }

  const sockaddr& peer() const { return reinterpret_cast<const sockaddr&>(peer_); }
  /// "IP" and "IP:PORT" of the peer.
  const std::string& peer_ip() const { return ip_; }
  const std::string& peer_key() const { return key_; }
  uv_loop_t* loop() const { return timer_.loop; }

  // TransferPeer: engines stop calling back once the peer is closing; a
  // datagram peer's progress is its own (packets), not the engine's.
  bool peer_closing() const override { return closing_; }
  void peer_payload(bool) override {}
  void peer_progress() override {}
  void peer_retain() override { ++refs_; }
  void peer_release() override;

 protected:
  /// The timer fired (never once closing).
  virtual void on_timer() {}
  /// A datagram from the peer on its own socket (never once closing).
  virtual void on_peer_datagram(std::span<const char> data) { (void)data; }
  /// A datagram from another address on the peer's own socket.
  virtual void on_stranger(const sockaddr& from, std::span<const char> data) {
    (void)from;
    (void)data;
  }
  /// Closed, every handle's close callback ran and no reference is left:
  /// the owner may destroy the peer now (called once, may destroy this).
  virtual void on_released() = 0;

 private:
  void on_datagram(DatagramListener& listener, const sockaddr& from,
                   std::span<const char> data) override;
  void on_closed(DatagramListener& listener) override;
  void release_if_done();

  sockaddr_storage peer_{};
  std::string ip_;
  std::string key_;
  uv_timer_t timer_;
  std::unique_ptr<DatagramListener> sock_;
  int handles_ = 1;  ///< the timer, and the socket once opened, until their close callbacks
  int refs_ = 0;     ///< executor tasks (PeerRef) in flight
  bool closing_ = false;
  bool released_ = false;
};

}  // namespace fsrv::reactor
