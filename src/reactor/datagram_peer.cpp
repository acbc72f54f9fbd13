// Per-peer datagram state (see datagram_peer.hpp).

#include "fsrv/reactor/datagram_peer.hpp"

#include <netinet/in.h>

#include <cstring>

namespace fsrv::reactor {

std::string address_key(const sockaddr& addr) {
  return address_ip(addr) + ":" + std::to_string(address_port(addr));
}

bool same_address(const sockaddr_storage& a, const sockaddr& b) {
  if (a.ss_family != b.sa_family) return false;
  if (b.sa_family == AF_INET) {
    const auto& x = reinterpret_cast<const sockaddr_in&>(a);
    const auto& y = reinterpret_cast<const sockaddr_in&>(b);
    return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
  }
  if (b.sa_family == AF_INET6) {
    const auto& x = reinterpret_cast<const sockaddr_in6&>(a);
    const auto& y = reinterpret_cast<const sockaddr_in6&>(b);
    return x.sin6_port == y.sin6_port &&
           std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof x.sin6_addr) == 0;
  }
  return false;
}

DatagramPeer::DatagramPeer(uv_loop_t* loop, const sockaddr& peer)
    : ip_(address_ip(peer)), key_(address_key(peer)) {
  std::memcpy(&peer_, &peer,
              peer.sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
  uv_timer_init(loop, &timer_);
  timer_.data = this;
}

// Owners destroy a peer only from on_released(): libuv holds nothing then.
DatagramPeer::~DatagramPeer() = default;

int DatagramPeer::open_socket(const Endpoint& at, DatagramOptions options) {
  sock_ = std::make_unique<DatagramListener>(loop(), 0, "peer", at, options);
  ++handles_;  // DatagramListener::close() calls on_closed() even when unbound
  return sock_->listen(*this);
}

int DatagramPeer::send(std::span<const char> head, std::span<const char> body) {
  if (!sock_ || closing_) return UV_EBADF;
  return body.empty() ? sock_->send_to(peer(), head) : sock_->send_to(peer(), head, body);
}

int DatagramPeer::send_to(const sockaddr& to, std::span<const char> data) {
  if (!sock_ || closing_) return UV_EBADF;
  return sock_->send_to(to, data);
}

void DatagramPeer::arm_timer(uint64_t ms) {
  if (closing_) return;
  uv_timer_start(
      &timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<DatagramPeer*>(t->data);
        if (!self->closing_) self->on_timer();
      },
      ms, 0);
}

void DatagramPeer::stop_timer() { uv_timer_stop(&timer_); }

void DatagramPeer::run(Executor& executor, Executor::Fn work, Executor::Fn done) {
  executor.submit(std::move(work), [this, ref = PeerRef(this), done = std::move(done)] {
    if (!closing_) done();
  });  // the task's PeerRef goes with it: may release (and destroy) this
}

void DatagramPeer::close() {
  if (closing_) return;
  closing_ = true;
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* h) {
    auto* self = static_cast<DatagramPeer*>(h->data);
    --self->handles_;
    self->release_if_done();
  });
  if (sock_) sock_->close();  // on_closed follows
}

void DatagramPeer::peer_release() {
  --refs_;
  release_if_done();
}

void DatagramPeer::on_datagram(DatagramListener&, const sockaddr& from,
                               std::span<const char> data) {
  if (closing_) return;
  if (same_address(peer_, from)) {
    on_peer_datagram(data);
  } else {
    on_stranger(from, data);
  }
}

void DatagramPeer::on_closed(DatagramListener&) {
  --handles_;
  release_if_done();
}

void DatagramPeer::release_if_done() {
  if (closing_ && handles_ == 0 && refs_ == 0 && !released_) {
    released_ = true;
    on_released();  // may destroy this
  }
}

}  // namespace fsrv::reactor
