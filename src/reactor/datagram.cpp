#include "fsrv/reactor/datagram.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "fsrv/core/log.hpp"
#include "fsrv/reactor/listener.hpp"

namespace fsrv::reactor {

namespace {

/// libuv's recvmmsg slot size (UV__UDP_DGRAM_MAXSIZE in src/unix/udp.c).
constexpr size_t kSlot = 64 * 1024;

static_assert(DatagramOptions{}.rcvbuf == DatagramListener::kRequestedRcvBuf &&
                  DatagramOptions{}.batch == DatagramListener::kBatch,
              "a listener's default sizing is the one documented on DatagramListener");

}  // namespace

std::string address_ip(const sockaddr& addr) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (addr.sa_family == AF_INET) {
    uv_ip4_name(reinterpret_cast<const sockaddr_in*>(&addr), text, sizeof text);
  } else if (addr.sa_family == AF_INET6) {
    uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(&addr), text, sizeof text);
  }
  return text;
}

int address_port(const sockaddr& addr) {
  if (addr.sa_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(addr).sin_port);
  if (addr.sa_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6&>(addr).sin6_port);
  }
  return 0;
}

DatagramListener::DatagramListener(uv_loop_t* loop, int index, std::string service,
                                   Endpoint endpoint, DatagramOptions options)
    : index_(index),
      service_(std::move(service)),
      endpoint_(std::move(endpoint)),
      options_(options) {
  if (options_.batch < 1) options_.batch = 1;
  // First, so close() is always valid. AF_UNSPEC: the socket is made at bind.
  uv_udp_init_ex(loop, &udp_, AF_UNSPEC | (options_.batch > 1 ? UV_UDP_RECVMMSG : 0));
  udp_.data = this;
}

DatagramListener::~DatagramListener() = default;

int DatagramListener::listen(DatagramHandler& handler) {
  handler_ = &handler;  // on_closed is owed even if bind fails
  int port = bind();
  if (port < 0) return port;
  int rc = start(handler);
  return rc < 0 ? rc : port;
}

int DatagramListener::fd() const {
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<const uv_handle_t*>(&udp_), &fd) != 0) return -1;
  return fd;
}

// Reads back what the kernel granted (SO_RCVBUF) and the bound port.
int DatagramListener::record_bound(int fd) {
  socklen_t len = sizeof rcvbuf_;
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf_, &len);
  sockaddr_storage bound{};
  int blen = sizeof bound;
  uv_udp_getsockname(&udp_, reinterpret_cast<sockaddr*>(&bound), &blen);
  port_ = address_port(reinterpret_cast<const sockaddr&>(bound));
  return port_;
}

int DatagramListener::adopt(int fd) {
  int rc = uv_udp_open(&udp_, fd);
  if (rc != 0) return rc;
  return record_bound(fd);
}

int DatagramListener::bind() {
  sockaddr_storage addr{};
  int rc = endpoint_address(endpoint_, &addr);
  if (rc == 0) {
    rc = uv_udp_bind(&udp_, reinterpret_cast<const sockaddr*>(&addr),
                     addr.ss_family == AF_INET6 ? UV_UDP_IPV6ONLY : 0);
  }
  if (rc != 0) return rc;
  uv_os_fd_t fd = -1;
  uv_fileno(reinterpret_cast<uv_handle_t*>(&udp_), &fd);
  int want = options_.rcvbuf;
  // SO_RCVBUFFORCE passes net.core.rmem_max when we may (root); else the
  // plain option, which the kernel caps.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
  }
  if (int snd = options_.sndbuf;
      snd > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof snd) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
  }
  return record_bound(fd);
}

int DatagramListener::start(DatagramHandler& handler) {
  handler_ = &handler;
  buf_len_ = kSlot * options_.batch;
  buf_ = std::make_unique<char[]>(buf_len_);
  handler_->on_start(*this);
  started_ = true;
  int rc = uv_udp_recv_start(
      &udp_,
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* self = static_cast<DatagramListener*>(h->data);
        *buf = uv_buf_init(self->buf_.get(), static_cast<unsigned>(self->buf_len_));
      },
      [](uv_udp_t* u, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr, unsigned flags) {
        auto* self = static_cast<DatagramListener*>(u->data);
        if (flags & UV_UDP_MMSG_FREE) return;  // the buffer is ours, reused
        if (nread < 0) {
          FSRV_LOG_WARN("%s datagram socket: %s", self->service_.c_str(),
                        uv_strerror(static_cast<int>(nread)));
          return;
        }
        if (addr == nullptr || !self->open_) return;  // nothing more to read now
        self->handler_->on_datagram(*self, *addr, {buf->base, static_cast<size_t>(nread)});
      });
  return rc;
}

int DatagramListener::send_to(const sockaddr& to, std::span<const char> data) {
  uv_buf_t b = uv_buf_init(const_cast<char*>(data.data()), static_cast<unsigned>(data.size()));
  return uv_udp_try_send(&udp_, &b, 1, &to);
}

int DatagramListener::send_to(const sockaddr& to, std::span<const char> head,
                              std::span<const char> body) {
  uv_buf_t b[2] = {uv_buf_init(const_cast<char*>(head.data()), static_cast<unsigned>(head.size())),
                   uv_buf_init(const_cast<char*>(body.data()), static_cast<unsigned>(body.size()))};
  return uv_udp_try_send(&udp_, b, body.empty() ? 1 : 2, &to);
}

void DatagramListener::close() {
  if (!open_) return;
  open_ = false;
  uv_udp_recv_stop(&udp_);
  if (started_) handler_->on_stop(*this);  // on_start ran: pair it
  uv_close(reinterpret_cast<uv_handle_t*>(&udp_), [](uv_handle_t* h) {
    auto* self = static_cast<DatagramListener*>(h->data);
    if (self->handler_ != nullptr) self->handler_->on_closed(*self);  // may delete self
  });
}

}  // namespace fsrv::reactor
