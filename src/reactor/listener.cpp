#include "fsrv/reactor/listener.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fsrv/core/limits.hpp"
#include "fsrv/core/log.hpp"

namespace fsrv::reactor {

Listener::Listener(uv_loop_t* loop, int index, std::string service, Endpoint endpoint)
    : index_(index), service_(std::move(service)), endpoint_(std::move(endpoint)) {
  uv_tcp_init(loop, &tcp_);  // first, so close() is always valid
  tcp_.data = this;
}

int endpoint_address(const Endpoint& endpoint, sockaddr_storage* addr) {
  *addr = {};
  const char* host = endpoint.host.c_str();
  int rc = uv_ip4_addr(host, endpoint.port, reinterpret_cast<sockaddr_in*>(addr));
  if (rc != 0) rc = uv_ip6_addr(host, endpoint.port, reinterpret_cast<sockaddr_in6*>(addr));
  return rc;
}

namespace {

// The port a bound TCP handle listens on (the kernel's pick for port 0).
int bound_port(const uv_tcp_t* tcp) {
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(tcp, reinterpret_cast<sockaddr*>(&bound), &len);
  return bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                     : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}

// Bounds the unsent bytes of every connection accepted on `fd`
// (limits::kUnsentBytesPerConnection); best effort: a kernel without
// TCP_NOTSENT_LOWAT (before Linux 3.12) leaves the queue to tcp_wmem.
void bound_unsent(int fd) {
  int bytes = limits::kUnsentBytesPerConnection;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &bytes, sizeof bytes) != 0) {
    FSRV_LOG_DEBUG("TCP_NOTSENT_LOWAT: %s", strerror(errno));
  }
}

}  // namespace

Listener::~Listener() = default;

int Listener::listen(std::function<void(Listener&)> on_connection) {
  on_connection_ = std::move(on_connection);
  sockaddr_storage addr{};
  int rc = endpoint_address(endpoint_, &addr);
  // An IPv6 listener accepts IPv6 only, so [::] and 0.0.0.0 can both be used.
  if (rc == 0) {
    rc = uv_tcp_bind(&tcp_, reinterpret_cast<const sockaddr*>(&addr),
                     addr.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
  }
  if (rc != 0) return rc;
  return start_listening();
}

int Listener::listen_polled(std::function<void(Listener&)> on_readable) {
  on_connection_ = std::move(on_readable);
  sockaddr_storage addr{};
  int rc = endpoint_address(endpoint_, &addr);
  if (rc == 0) {
    rc = uv_tcp_bind(&tcp_, reinterpret_cast<const sockaddr*>(&addr),
                     addr.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
  }
  // libuv keeps a bind's EADDRINUSE for uv_listen to report
  // (delayed_error); listen(2) itself would bind an unbound socket to a
  // random port instead.
  if (rc == 0) rc = tcp_.delayed_error;
  if (rc == 0) rc = uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp_), &fd_);
  if (rc != 0) return rc;
  // The backlog as start_listening's.
  if (::listen(fd_, 4096) != 0) return uv_translate_sys_error(errno);
  uv_tcp_nodelay(&tcp_, 1);
  bound_unsent(fd_);
  rc = uv_poll_init(tcp_.loop, &poll_, fd_);
  if (rc != 0) return rc;
  uv_timer_init(tcp_.loop, &poll_pause_);
  polled_ = true;
  poll_.data = this;
  poll_pause_.data = this;
  rc = start_polling();
  if (rc != 0) return rc;
  port_ = bound_port(&tcp_);
  return port_;
}

int Listener::start_polling() {
  return uv_poll_start(&poll_, UV_READABLE, [](uv_poll_t* p, int status, int) {
    auto* self = static_cast<Listener*>(p->data);
    if (status < 0) {
      FSRV_LOG_WARN("%s listener: %s", self->service_.c_str(), uv_strerror(status));
      return;
    }
    self->on_connection_(*self);
  });
}

void Listener::pause_polling(uint64_t ms) {
  if (!polled_ || !open_) return;
  uv_poll_stop(&poll_);
  uv_timer_start(
      &poll_pause_,
      [](uv_timer_t* t) {
        auto* self = static_cast<Listener*>(t->data);
        if (self->open_) self->start_polling();
      },
      ms, 0);
}

int Listener::accept_socket(sockaddr_storage* peer) {
  socklen_t len = sizeof *peer;
  int fd = accept4(fd_, reinterpret_cast<sockaddr*>(peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
  return fd >= 0 ? fd : -errno;
}

int Listener::listen_shared(const Listener& bound, std::function<void(Listener&)> on_connection) {
  on_connection_ = std::move(on_connection);
  uv_os_fd_t fd = -1;
  int rc = uv_fileno(reinterpret_cast<const uv_handle_t*>(&bound.tcp_), &fd);
  if (rc != 0) return rc;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return uv_translate_sys_error(errno);
  rc = uv_tcp_open(&tcp_, copy);
  if (rc != 0) {
    ::close(copy);
    return rc;
  }
  return start_listening();
}

int Listener::start_listening() {
  // Backlog: the kernel caps it at net.core.somaxconn; a burst of 50+
  // stress clients must not see refused connects. listen(2) again on a
  // shared socket only sets the same backlog.
  int rc = uv_listen(stream(), 4096, [](uv_stream_t* s, int status) {
    auto* self = static_cast<Listener*>(s->data);
    if (status < 0) {
      // UV_EMFILE/UV_ENFILE: libuv accepted and closed a client to make
      // room (its emfile trick); the fd-derived connection cap keeps us
      // from getting here (runtime::raise_fd_limit).
      FSRV_LOG_WARN("%s listener: %s (a client was dropped)", self->service_.c_str(),
                    uv_strerror(status));
      return;
    }
    self->on_connection_(*self);
  });
  if (rc != 0) return rc;
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp_), &fd) == 0) bound_unsent(fd);
  port_ = bound_port(&tcp_);
  return port_;
}

void Listener::close() {
  if (!open_) return;
  open_ = false;
  // The poll first: the descriptor it watches is the uv_tcp_t's.
  if (polled_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_pause_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_), nullptr);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_),
           [](uv_handle_t* h) { static_cast<Listener*>(h->data)->closed_ = true; });
}

}  // namespace fsrv::reactor
