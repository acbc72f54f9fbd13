#include "fsrv/reactor/connection.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <cmath>

#include "fsrv/core/log.hpp"
#include "fsrv/reactor/server.hpp"

namespace fsrv::reactor {

/// A write request; holds a reference to its connection until on_written.
struct WriteReq {
  uv_write_t req;
  ConnRef conn;
  std::function<void(int)> cb;
  std::string owned;  ///< write_owned's bytes
};

namespace {

uint64_t idle_ms(const ServerContext& ctx) {
  return static_cast<uint64_t>(std::llround(ctx.config->idle_timeout_s * 1000.0));
}

}  // namespace

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

Connection* Connection::create(ServerContext& ctx) { return new Connection(ctx); }

Connection::Connection(ServerContext& ctx) : ctx_(ctx) {
  uv_tcp_init(ctx.loop, &tcp_);
  uv_timer_init(ctx.loop, &idle_timer_);
  uv_timer_init(ctx.loop, &legacy_timer_);
  tcp_.data = this;
  idle_timer_.data = this;
  legacy_timer_.data = this;
  ctx.connections.insert(this);
  ctx.stats->conns_active.fetch_add(1, std::memory_order_relaxed);
}

Connection::~Connection() = default;

void Connection::release() {
  if (--refs_ == 0) delete this;
}

void Connection::start(std::unique_ptr<ConnectionHandler> handler) {
  handler_ = std::move(handler);
  ctx_.stats->conns_total.fetch_add(1, std::memory_order_relaxed);
  // Latency of small replies matters more than packet count here; bulk
  // chunks are large writes anyway.
  uv_tcp_nodelay(&tcp_, 1);
  touch();
  resume_reading();
}

void Connection::reject(std::string message) {
  ctx_.stats->conns_rejected.fetch_add(1, std::memory_order_relaxed);
  write_owned(std::move(message));
  close_when_flushed();
}

void Connection::on_alloc(uv_handle_t* h, size_t /*suggested*/, uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(h->data);
  std::span<char> space = self->handler_->read_space();
  *buf = uv_buf_init(space.data(), static_cast<unsigned>(space.size()));
}

void Connection::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* /*buf*/) {
  auto* self = static_cast<Connection*>(s->data);
  if (nread == 0) return;  // EAGAIN: nothing read
  ConnRef keep(self);      // the handler may close us
  if (nread > 0) {
    self->ctx_.stats->bytes_in.fetch_add(static_cast<uint64_t>(nread), std::memory_order_relaxed);
    self->touch();
    self->handler_->on_read(static_cast<size_t>(nread));
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
  queue_write(new WriteReq{{}, ConnRef(this), std::move(cb), {}}, bufs, n);
}

void Connection::write_owned(std::string bytes) {
  auto* w = new WriteReq{{}, ConnRef(this), nullptr, std::move(bytes)};
  uv_buf_t buf = uv_buf_init(w->owned.data(), static_cast<unsigned>(w->owned.size()));
  queue_write(w, &buf, 1);
}

// Queues one write request. The request keeps its buffers (owned, or the
// caller's until its callback) and a connection reference until on_written
// (libuv pitfall 5); when closing or when uv_write refuses, the callback runs
// at once with the error, as libuv would have run it later.
void Connection::queue_write(WriteReq* w, const uv_buf_t* bufs, unsigned n) {
  w->req.data = w;
  size_t total = 0;
  for (unsigned i = 0; i < n; ++i) total += bufs[i].len;
  int rc = closing_ ? UV_ECANCELED : uv_write(&w->req, stream(), bufs, n, on_written);
  if (rc != 0) {
    if (w->cb) w->cb(rc);
    delete w;
    close();
    return;
  }
  ctx_.stats->bytes_out.fetch_add(total, std::memory_order_relaxed);
}

void Connection::on_written(uv_write_t* req, int status) {
  auto* w = static_cast<WriteReq*>(req->data);
  Connection* c = w->conn.get();
  if (status == 0) c->touch();
  if (w->cb) w->cb(status);
  if (c->congested_ && !c->closing_ && c->queued_bytes() < kLowWater) {
    c->congested_ = false;
    if (c->handler_) c->handler_->on_drain();
  }
  delete w;
}

size_t Connection::queued_bytes() const { return tcp_.write_queue_size; }

bool Connection::congested() {
  if (queued_bytes() > kHighWater) congested_ = true;
  return congested_;
}

void Connection::pause_reading() {
  if (!reading_) return;
  reading_ = false;
  uv_read_stop(stream());
}

void Connection::resume_reading() {
  if (reading_ || closing_ || shutting_down_) return;
  if (uv_read_start(stream(), on_alloc, on_read) == 0) reading_ = true;
}

void Connection::arm_legacy_timer(uint64_t ms) {
  if (closing_) return;
  uv_timer_start(
      &legacy_timer_,
      [](uv_timer_t* t) {
        auto* c = static_cast<Connection*>(t->data);
        ConnRef keep(c);
        if (!c->closing_) c->handler_->on_legacy_timer();
      },
      ms, 0);
}

void Connection::cancel_legacy_timer() { uv_timer_stop(&legacy_timer_); }

void Connection::touch() {
  if (closing_ || ctx_.config->idle_timeout_s <= 0) return;
  uv_timer_start(
      &idle_timer_,
      [](uv_timer_t* t) {
        auto* c = static_cast<Connection*>(t->data);
        ConnRef keep(c);
        if (c->closing_) return;
        if (c->handler_) {
          c->handler_->on_idle_timeout();
        } else {
          c->close();
        }
      },
      idle_ms(ctx_), 0);
}

void Connection::close_when_flushed() {
  if (closing_ || shutting_down_) return;
  pause_reading();
  shutting_down_ = true;
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
  if (handler_) handler_->on_close();
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_timer_), on_handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&legacy_timer_), on_handle_closed);
}

void Connection::on_handle_closed(uv_handle_t* h) {
  auto* self = static_cast<Connection*>(h->data);
  if (--self->open_handles_ > 0) return;
  ServerContext& ctx = self->ctx_;
  ctx.connections.erase(self);
  ctx.stats->conns_active.fetch_sub(1, std::memory_order_relaxed);
  self->release();
  if (ctx.draining && ctx.connections.empty() && ctx.on_drained) ctx.on_drained();
}

}  // namespace fsrv::reactor
