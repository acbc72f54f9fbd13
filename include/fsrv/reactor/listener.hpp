#pragma once
// A listening TCP socket: owns its uv_tcp_t, knows which service it belongs
// to (by name and index, for the process channel) and calls back on each
// pending connection. What to do with the connection (accept and serve with a
// factory, or pass it to a worker) is the owner's choice.
//
// UDP services use its sibling reactor::DatagramListener (datagram.hpp),
// with the same listen/close shape.

#include <uv.h>

#include <functional>
#include <string>

#include "fsrv/core/config.hpp"

namespace fsrv::reactor {

/// Fills `addr` from a numeric IPv4 or IPv6 host and port (libuv's
/// uv_ip4_addr, then uv_ip6_addr). Returns 0 or a negative libuv error
/// (UV_EINVAL for a host that is neither). Shared by both listener kinds;
/// each binds an IPv6 address IPv6-only, so [::] and 0.0.0.0 can coexist.
int endpoint_address(const Endpoint& endpoint, sockaddr_storage* addr);

class Listener {
 public:
  /// `index` is the listener's position in the server's configuration (it
  /// names the listener on the process channel).
  Listener(uv_loop_t* loop, int index, std::string service, Endpoint endpoint);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  /// Binds and listens (backlog 4096); `on_connection(*this)` per pending
  /// connection. Returns the bound port, or a negative libuv error
  /// (UV_EADDRINUSE, UV_EINVAL for a bad address...).
  int listen(std::function<void(Listener&)> on_connection);
  /// Listens on a dup() of `bound`'s socket (already bound and listening,
  /// possibly on another loop): this loop then accepts from the same
  /// kernel queue. Thread mode's extra loops (--loops) use it; each loop
  /// owns its descriptor, so each closes its own. Returns the port, or a
  /// negative libuv error.
  int listen_shared(const Listener& bound, std::function<void(Listener&)> on_connection);
  /// Binds and listens as listen() does, but without libuv's accept:
  /// `on_readable(*this)` runs when the socket has connections pending
  /// (a uv_poll_t on it) and the owner takes them with accept_socket().
  /// Sets TCP_NODELAY on the listening socket, which Linux copies to every
  /// accepted one. The prefork master uses it: it passes the descriptors
  /// on, so wrapping each in a uv_tcp_t only to close it would be waste.
  /// Returns the bound port, or a negative libuv error.
  int listen_polled(std::function<void(Listener&)> on_readable);
  /// One accept4 (non-blocking, close-on-exec) on a listen_polled socket:
  /// the new descriptor with the peer's address in `peer`, or -errno
  /// (-EAGAIN once none is pending).
  int accept_socket(sockaddr_storage* peer);
  /// Stops watching a listen_polled socket for `ms` milliseconds (out of
  /// descriptors: the pending clients wait in the kernel's backlog instead
  /// of waking the loop again at once, as nginx disables its accept events).
  void pause_polling(uint64_t ms);
  /// Stops listening (idempotent); the object must outlive the loop run
  /// that processes the close.
  void close();

  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }
  int index() const { return index_; }
  const std::string& service() const { return service_; }
  const Endpoint& endpoint() const { return endpoint_; }
  /// The bound port (after a successful listen()).
  int port() const { return port_; }

 private:
  /// uv_listen with on_connection_ set; records the bound port.
  int start_listening();
  /// uv_poll_start on a listen_polled socket, calling on_connection_.
  int start_polling();
  uv_tcp_t tcp_;
  uv_poll_t poll_;         ///< listen_polled's readiness watcher
  uv_timer_t poll_pause_;  ///< pause_polling's restart
  bool polled_ = false;    ///< poll_ and poll_pause_ initialised
  int fd_ = -1;            ///< the listening descriptor (listen_polled)
  int index_;
  std::string service_;
  Endpoint endpoint_;
  int port_ = 0;
  bool open_ = true;
  bool closed_ = false;  ///< close callback ran
  std::function<void(Listener&)> on_connection_;
};

}  // namespace fsrv::reactor
