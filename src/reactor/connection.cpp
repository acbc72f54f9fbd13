#include "fsrv/reactor/connection.hpp"

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <utility>

#include "connection_internal.hpp"
#include "fsrv/core/log.hpp"
#include "fsrv/reactor/executor.hpp"
#include "fsrv/reactor/reactor.hpp"
#include "fsrv/reactor/tls.hpp"

namespace fsrv::reactor {

void ConnectionHandler::on_idle_timeout() {
  if (connection) connection->close();
}

void ConnectionHandler::on_too_slow() {
  if (connection) connection->close();
}

void ConnectionHandler::on_request_timeout() {
  if (connection) connection->close();
}

// ---------------------------------------------------------------- ConnRef

ConnRef::ConnRef(Connection* c) : c_(c) {
  if (c_) c_->retain();
}
ConnRef::ConnRef(const ConnRef& o) : c_(o.c_) {
  if (c_) c_->retain();
}
ConnRef& ConnRef::operator=(const ConnRef& o) {
  if (o.c_) o.c_->retain();
  if (c_) c_->release();
  c_ = o.c_;
  return *this;
}
ConnRef::~ConnRef() {
  if (c_) c_->release();
}

// ---------------------------------------------------------------- Connection

Connection* Connection::create(Reactor& reactor) { return new Connection(reactor); }

Connection::Connection(Reactor& reactor) : reactor_(reactor) {
  uv_tcp_init(reactor.loop, &tcp_);
  tcp_.data = this;
  reactor.connections.insert(this);
  // Taken before active, both sequentially consistent: the prefork master
  // reads active first (Master::load), so it may miss this connection for
  // an instant but never counts it twice (it once refused the last slot so).
  reactor.stats->conns_taken.fetch_add(1);
  reactor.stats->conns_active.fetch_add(1);
}

Connection::~Connection() {
  delete timer_;  // closed (close() runs before the last release)
  delete turn_;
}

uv_idle_t* Connection::turn() {
  if (!turn_) {
    turn_ = new uv_idle_t;
    uv_idle_init(reactor_.loop, turn_);
    turn_->data = this;
    ++open_handles_;
  }
  return turn_;
}

// Out of line: GCC 12's -Wuse-after-free cannot see that the handles'
// reference keeps refs_ above zero while a caller still holds a ConnRef.
__attribute__((noinline)) void Connection::release() {
  if (--refs_ == 0) delete this;
}

void Connection::start(std::unique_ptr<ConnectionHandler> handler) {
  handler_ = std::move(handler);
  handler_->connection = this;
  reactor_.stats->conns_total.fetch_add(1, std::memory_order_relaxed);
  // Latency of small replies matters more than packet count here; bulk
  // chunks are large writes anyway.
  if (!reactor_.nodelay_inherited) uv_tcp_nodelay(&tcp_, 1);
  touch();
  if (const TlsContext* ctx = reactor_.tls_for(listener_)) {
    tls_ = std::make_unique<TlsSession>(*ctx);
    open_head();  // the handshake is timed from the accept
  }
  resume_reading();
}

void Connection::reject(std::string message) {
  reactor_.stats->conns_rejected.fetch_add(1, std::memory_order_relaxed);
  rejected_ = true;
  ++reactor_.refusing;
  if (!message.empty() && !reactor_.tls_for(listener_)) write_owned(message);
  close_when_flushed();
}

void Connection::set_origin(int listener, std::string peer, uint32_t tag, bool admitted) {
  listener_ = listener;
  peer_ = std::move(peer);
  tag_ = tag;
  admitted_ = admitted;
}

std::string Connection::peer_text() const { return address_text(peer_); }

// Opens a request head (or, under TLS, the handshake) and its deadline on
// the connection's one deadline timer (on_deadline).
void Connection::open_head() {
  if (closing_ || reactor_.request_timeout_s <= 0) return;
  head_open_ = true;
  head_deadline_ms_ =
      now_ms() + static_cast<uint64_t>(std::llround(reactor_.request_timeout_s * 1000.0));
  arm_deadlines(head_deadline_ms_);
}

void Connection::on_alloc(uv_handle_t* h, size_t /*suggested*/, uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(h->data);
  std::span<char> space = self->tls_ ? self->tls_->cipher_space() : self->handler_->read_space();
  *buf = uv_buf_init(space.data(), static_cast<unsigned>(space.size()));
}

void Connection::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* /*buf*/) {
  auto* self = static_cast<Connection*>(s->data);
  if (nread == 0) return;  // EAGAIN: nothing read
  ConnRef keep(self);      // the handler may close us
  if (nread > 0) {
    self->reactor_.stats->bytes_in.fetch_add(static_cast<uint64_t>(nread),
                                             std::memory_order_relaxed);
    self->touch();
    if (!self->head_open_ && !self->transfer_ && self->handler_->has_requests()) {
      self->open_head();  // the first byte of a request: its head must be complete in time
    }
    self->bytes_read_ += static_cast<uint64_t>(nread);
    if (self->tls_) {
      self->tls_->feed(static_cast<size_t>(nread));
      self->tls_pump();
      self->count_progress(static_cast<uint64_t>(nread));
      return;
    }
    self->handler_->on_read(static_cast<size_t>(nread));
    self->count_progress(static_cast<uint64_t>(nread));
    return;
  }
  if (nread == UV_EOF && self->tls_) {
    // Plaintext still buffered goes to the handler first (tls_deliver).
    self->tls_->eof = true;
    self->tls_deliver();
    return;
  }
  self->pause_reading();
  if (nread == UV_EOF) {
    self->handler_->on_eof();
  } else {
    FSRV_LOG_DEBUG("read error: %s", uv_strerror(static_cast<int>(nread)));
    self->close();
  }
}

void Connection::write(const uv_buf_t* bufs, unsigned n, std::function<void(int)> cb) {
  flush_outbox();  // owned bytes queued earlier go first
  size_t total = 0;
  for (unsigned i = 0; i < n; ++i) total += bufs[i].len;
  queue_write(new WriteReq{{}, ConnRef(this), std::move(cb), {}, total, false}, bufs, n, total);
}

void Connection::write_owned(std::string_view bytes) {
  if (closing_ || bytes.empty()) return;
  outbox_.append(bytes);
  pending_bytes_ += bytes.size();
  if (!owned_in_flight_) flush_outbox();
}

void Connection::write_owned_moved(std::string&& bytes) {
  if (closing_ || bytes.empty()) return;
  pending_bytes_ += bytes.size();
  if (outbox_.empty()) {
    outbox_ = std::move(bytes);  // no copy
  } else {
    outbox_.append(bytes);
  }
  if (!owned_in_flight_) flush_outbox();
}

// Starts writing the outbox as one request (coalescing every owned reply
// queued since the last one went out).
void Connection::flush_outbox() {
  if (outbox_.empty() || closing_) return;
  // Nothing queued in libuv: write at once with uv_try_write. A reply the
  // socket takes whole then needs no write request, and libuv does not
  // re-arm the socket's epoll registration after the write drains (one
  // epoll_ctl per reply: uv__drain's uv__io_stop of POLLOUT). Not while
  // congested or a sendfile waits: those react to write completion, which
  // stays asynchronous.
  // Under TLS the bytes must be encrypted first (queue_write does it).
  if (!tls_ && stream()->write_queue_size == 0 && !congested_ && !sendfile_) {
    uv_buf_t buf = uv_buf_init(outbox_.data(), static_cast<unsigned>(outbox_.size()));
    int n = uv_try_write(stream(), &buf, 1);
    if (n > 0) {
      size_t sent = static_cast<size_t>(n);
      reactor_.stats->bytes_out.fetch_add(sent, std::memory_order_relaxed);
      pending_bytes_ -= sent;
      bytes_written_ += sent;
      touch();
      count_progress(sent);
      if (sent == outbox_.size()) {
        // An idle connection keeps no reply memory. Not `outbox_ =
        // std::string()`: libstdc++'s move assignment from a short string
        // copies into the buffer it has and keeps its capacity, so every
        // keep-alive connection held its last reply (a 16 KiB file: 18 KiB).
        std::string().swap(outbox_);
        return;
      }
      outbox_.erase(0, sent);
    }
  }
  size_t total = outbox_.size();
  auto* w = new WriteReq{{}, ConnRef(this), nullptr, std::move(outbox_), total, true};
  outbox_.clear();  // moved from: empty, with no buffer of its own
  owned_in_flight_ = true;
  uv_buf_t buf = uv_buf_init(w->owned.data(), static_cast<unsigned>(w->owned.size()));
  // The bytes were counted in pending_bytes_ when appended.
  pending_bytes_ -= total;
  queue_write(w, &buf, 1, total);
}

// Queues one write request. The request keeps its buffers (owned, or the
// caller's until its callback) and a connection reference until on_written
// (libuv pitfall 5); when closing or when uv_write refuses, the callback runs
// at once with the error, as libuv would have run it later.
void Connection::queue_write(WriteReq* w, const uv_buf_t* bufs, unsigned n, size_t total) {
  w->req.data = w;
  pending_bytes_ += total;
  // Counted first: uv_write may hand the bytes to the peer at once.
  if (!closing_) reactor_.stats->bytes_out.fetch_add(total, std::memory_order_relaxed);
  int rc = closing_ ? UV_ECANCELED
           : tls_   ? tls_write(w, bufs, n)
                    : uv_write(&w->req, stream(), bufs, n, on_written);
  if (rc != 0) fail_write(w, rc);
}

void Connection::fail_write(WriteReq* w, int rc) {
  if (w->is_owned) owned_in_flight_ = false;
  auto cb = std::move(w->cb);
  size_t bytes = w->bytes;
  w->conn = ConnRef();  // `this` stays alive: the handles hold a reference
  delete w;
  if (cb) cb(rc);
  write_done(bytes);
  close();
}

void Connection::on_written(uv_write_t* req, int status) {
  auto* w = static_cast<WriteReq*>(req->data);
  Connection* c = w->conn.get();
  if (status == 0) c->touch();
  if (w->is_owned) c->owned_in_flight_ = false;
  if (status == 0) c->count_progress(w->bytes);
  if (w->cb) w->cb(status);
  c->write_done(w->bytes);
  if (status != 0 && status != UV_ECANCELED) {
    // The peer is gone (EPIPE, ECONNRESET...): close now and release
    // everything rather than wait for the idle timeout (hardening, point 2).
    FSRV_LOG_DEBUG("write error: %s", uv_strerror(status));
    c->close();
  } else if (w->is_owned) {
    c->flush_outbox();
  }
  if (c->tls_ && c->transfer_ && !c->closing_ && w->owned.capacity() > c->tls_->spare.capacity()) {
    c->tls_->spare = std::move(w->owned);  // its ciphertext was written
  }
  delete w;
}

// Accounts for a completed write; fires on_drain() below the low watermark
// and starts a waiting send_file once nothing is pending.
std::string Connection::peer() const {
  sockaddr_storage ss{};
  int len = sizeof ss;
  char host[INET6_ADDRSTRLEN] = "-";
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "-";
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    uv_ip4_name(a, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(a->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    uv_ip6_name(a, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  return "-";
}

void Connection::write_done(size_t bytes) {
  pending_bytes_ -= bytes;
  bytes_written_ += bytes;
  if (closing_) return;
  if (congested_ && pending_bytes_ < kLowWater) {
    congested_ = false;
    ConnRef keep(this);
    if (handler_) handler_->on_drain();
  }
  if (sendfile_ && !sendfile_->running && pending_bytes_ == 0 && !closing_) sendfile_step();
}

size_t Connection::unacked_in_kernel() const {
  uv_os_fd_t fd = -1;
  int queued = 0;
  if (closing_ || uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp_), &fd) != 0 ||
      ioctl(fd, SIOCOUTQ, &queued) != 0 || queued < 0) {
    return 0;
  }
  return static_cast<size_t>(queued);
}

bool Connection::congested() {
  if (pending_bytes_ > kHighWater) congested_ = true;
  return congested_;
}

// ---------------------------------------------------------------- reading, turns

void Connection::pause_reading() {
  if (!reading_) return;
  reading_ = false;
  uv_read_stop(stream());
}

void Connection::resume_reading() {
  if (reading_ || closing_ || shutting_down_) return;
  if (tls_ && tls_->eof) {
    reading_ = true;  // the socket has nothing more: hand over what is buffered
    uv_idle_start(turn(), on_turn);
    return;
  }
  if (uv_read_start(stream(), on_alloc, on_read) == 0) reading_ = true;
  // Records already read are handed over next turn: no socket event will
  // announce them.
  if (reading_ && tls_ && tls_->has_buffered()) uv_idle_start(turn(), on_turn);
}

void Connection::yield_turn() {
  if (closing_) return;
  pause_reading();
  yield_pending_ = true;
  uv_idle_start(turn(), on_turn);
}

// The turn handle: a yield_turn()'s on_drain, then TLS records buffered
// while the handler was not reading.
void Connection::on_turn(uv_idle_t* h) {
  auto* c = static_cast<Connection*>(h->data);
  uv_idle_stop(h);
  ConnRef keep(c);
  if (c->yield_pending_) {
    c->yield_pending_ = false;
    if (!c->closing_ && c->handler_) c->handler_->on_drain();
  }
  if (c->tls_ && c->reading_ && !c->closing_) c->tls_pump();
}
// ---------------------------------------------------------------- closing

void Connection::close_when_flushed() {
  if (closing_ || shutting_down_) return;
  pause_reading();
  shutting_down_ = true;
  flush_outbox();
  if (tls_ && tls_->established()) {
    tls_->close_notify();  // after every reply: the client can tell a clean end from a cut
    tls_flush();
  }
  auto* req = new uv_shutdown_t;
  req->data = new ConnRef(this);
  if (uv_shutdown(req, stream(), [](uv_shutdown_t* r, int) {
        auto* ref = static_cast<ConnRef*>(r->data);
        (*ref)->close();
        delete ref;
        delete r;
      }) != 0) {
    delete static_cast<ConnRef*>(req->data);
    delete req;
    close();
  }
}

void Connection::shutdown_gracefully() {
  if (handler_) {
    handler_->on_shutdown();
  } else {
    close();
  }
}

void Connection::close() {
  if (closing_) return;
  closing_ = true;
  reading_ = false;
  ConnRef keep(this);
  std::string().swap(outbox_);
  if (handler_) handler_->on_close();
  if (sendfile_ && !sendfile_->running) sendfile_finish(UV_ECANCELED);
  if (tls_) {
    for (WriteReq* w : std::exchange(tls_->held, {})) {  // never given to libuv
      auto cb = std::move(w->cb);
      size_t bytes = w->bytes;
      w->conn = ConnRef();
      delete w;
      if (cb) cb(UV_ECANCELED);
      write_done(bytes);
    }
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_handle_closed);
  reactor_.deadlines.remove(this);
  if (timer_) uv_close(reinterpret_cast<uv_handle_t*>(timer_), on_handle_closed);
  if (turn_) uv_close(reinterpret_cast<uv_handle_t*>(turn_), on_handle_closed);
  if (writable_) uv_close(reinterpret_cast<uv_handle_t*>(writable_), on_handle_closed);
}

void Connection::on_handle_closed(uv_handle_t* h) {
  auto* self = static_cast<Connection*>(h->data);
  if (self->writable_ && h == reinterpret_cast<uv_handle_t*>(self->writable_)) {
    ::close(self->writable_fd_);  // only now: libuv is done polling it
    delete self->writable_;
    self->writable_ = nullptr;
  }
  if (--self->open_handles_ > 0) return;
  Reactor& r = self->reactor_;
  r.connections.erase(self);
  r.stats->conns_active.fetch_sub(1, std::memory_order_relaxed);
  if (self->rejected_) --r.refusing;
  if (self->admitted_) r.admission().remove(self->listener_, self->peer_);
  if (self->tag_ != 0 && r.on_tagged_gone) r.on_tagged_gone(self->listener_, self->tag_);
  if (self->on_gone) self->on_gone();
  self->release();
  if (!r.deferred_accepts.empty() && r.refusing < Reactor::kMaxRefusing) {
    auto retry = std::move(r.deferred_accepts.front());
    r.deferred_accepts.erase(r.deferred_accepts.begin());
    retry();
  }
  if (r.draining && r.connections.empty() && r.on_drained) r.on_drained();
}

}  // namespace fsrv::reactor
