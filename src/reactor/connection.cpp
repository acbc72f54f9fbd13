#include "fsrv/reactor/connection.hpp"

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <utility>

#include "fsrv/core/log.hpp"
#include "fsrv/reactor/executor.hpp"
#include "fsrv/reactor/reactor.hpp"
#include "fsrv/reactor/tls.hpp"

namespace fsrv::reactor {

/// A write request; holds a reference to its connection until on_written.
struct WriteReq {
  uv_write_t req;
  ConnRef conn;
  std::function<void(int)> cb;
  std::string owned;  ///< the owned bytes (outbox) this request writes
  size_t bytes = 0;   ///< counted in pending_bytes_
  bool is_owned = false;
};

/// A send_file in progress (shared with its executor task).
struct SendFileJob {
  int file_fd;
  int sock_fd;
  uint64_t offset;
  uint64_t left;
  uint64_t sent = 0;
  Executor* executor;
  std::function<void(int, uint64_t)> done;
  bool running = false;  ///< a work item is in flight
  int task_errno = 0;
};

namespace {

uint64_t idle_ms(const Reactor& r) {
  return static_cast<uint64_t>(std::llround(r.idle_timeout_s * 1000.0));
}

}  // namespace

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
  reactor.stats->conns_active.fetch_add(1, std::memory_order_relaxed);
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
  uv_tcp_nodelay(&tcp_, 1);
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
  if (admitted_) reactor_.limits.add(listener_, peer_);
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
        outbox_ = std::string();  // an idle connection keeps no reply memory
        return;
      }
      outbox_.erase(0, sent);
    }
  }
  size_t total = outbox_.size();
  auto* w = new WriteReq{{}, ConnRef(this), nullptr, std::move(outbox_), total, true};
  outbox_ = std::string();
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

// ---------------------------------------------------------------- sendfile

void Connection::send_file(int file_fd, uint64_t offset, uint64_t length, Executor& executor,
                           std::function<void(int, uint64_t)> done) {
  if (tls_) {
    reactor_.stats->add(reactor_.tls_sends_userspace);
    tls_send_file(*this, file_fd, offset, length, executor, std::move(done));
    return;
  }
  uv_os_fd_t sock = -1;
  if (closing_ || uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &sock) != 0) {
    done(UV_ECANCELED, 0);
    return;
  }
  sendfile_ = std::make_shared<SendFileJob>(
      SendFileJob{file_fd, sock, offset, length, 0, &executor, std::move(done), false, 0});
  if (length == 0) {
    sendfile_finish(0);
    return;
  }
  if (pending_bytes_ == 0) sendfile_step();  // else write_done() starts it
}

// One work item: sendfile(2) until the slice is sent, the socket is full
// (EAGAIN: the socket is non-blocking) or an error.
void Connection::sendfile_step() {
  std::shared_ptr<SendFileJob> job = sendfile_;
  job->running = true;
  ConnRef ref(this);
  uint64_t sent_before = job->sent;
  job->executor->submit(
      [job] {
        uint64_t budget = std::min(job->left, kSendfileSlice);
        job->task_errno = 0;
        while (budget > 0) {
          off_t off = static_cast<off_t>(job->offset);
          ssize_t n = sendfile(job->sock_fd, job->file_fd, &off, budget);
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) {
            job->task_errno = errno;
            return;
          }
          if (n == 0) {  // the file shrank: nothing more to send
            job->task_errno = ENODATA;
            return;
          }
          job->offset += static_cast<uint64_t>(n);
          job->left -= static_cast<uint64_t>(n);
          job->sent += static_cast<uint64_t>(n);
          budget -= static_cast<uint64_t>(n);
        }
      },
      [this, ref, job, sent_before] {
        job->running = false;
        if (closing_ || sendfile_ != job) {
          if (sendfile_ == job) sendfile_finish(UV_ECANCELED);
          return;
        }
        reactor_.stats->bytes_out.fetch_add(job->sent - sent_before, std::memory_order_relaxed);
        count_progress(job->sent - sent_before);
        touch();
        if (job->task_errno == EAGAIN || job->task_errno == EWOULDBLOCK) {
          wait_writable();
        } else if (job->task_errno == ENODATA) {
          sendfile_finish(UV_EOF);
        } else if (job->task_errno != 0) {
          sendfile_finish(uv_translate_sys_error(job->task_errno));
        } else if (job->left == 0) {
          sendfile_finish(0);
        } else {
          sendfile_step();
        }
      });
}

// Waits for the socket to take more bytes. libuv owns the socket's own
// epoll registration, so the watch is on a dup(2) of it (a separate
// registration of the same socket).
void Connection::wait_writable() {
  if (!writable_) {
    writable_fd_ = dup(sendfile_->sock_fd);
    if (writable_fd_ < 0) {
      sendfile_finish(uv_translate_sys_error(errno));
      return;
    }
    writable_ = new uv_poll_t;
    uv_poll_init(reactor_.loop, writable_, writable_fd_);
    writable_->data = this;
    ++open_handles_;
  }
  uv_poll_start(writable_, UV_WRITABLE, [](uv_poll_t* p, int status, int) {
    auto* c = static_cast<Connection*>(p->data);
    uv_poll_stop(p);
    if (c->closing_ || !c->sendfile_) return;
    if (status < 0) {
      c->sendfile_finish(status);
    } else {
      c->sendfile_step();
    }
  });
}

void Connection::sendfile_finish(int status) {
  std::shared_ptr<SendFileJob> job = std::move(sendfile_);
  if (!job) return;
  ConnRef keep(this);
  if (status != 0 && status != UV_ECANCELED && status != UV_EOF) close();
  bytes_written_ += job->sent;
  job->done(status, job->sent);
}

// ---------------------------------------------------------------- reading, timers

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

void Connection::set_transfer(bool active) {
  if (active) request_head_done();
  if (active && !transfer_) {
    window_start_ms_ = now_ms();
    window_bytes_ = 0;
    if (reactor_.min_rate > 0 && !closing_) {
      rate_check_ms_ = window_start_ms_ + rate_window_ms();
      arm_deadlines(rate_check_ms_);
    }
  }
  if (!active) {
    rate_check_ms_ = 0;  // the deadline timer skips it from now on
    if (tls_) tls_->spare = std::string();
  }
  transfer_ = active;
}

void Connection::request_head_done() {
  head_open_ = false;  // the deadline timer skips the head deadline from now on
}

uint64_t Connection::rate_window_ms() const {
  return std::max<uint64_t>(1,
                            static_cast<uint64_t>(std::llround(reactor_.min_rate_window_s * 1000)));
}

uint64_t Connection::now_ms() const { return uv_now(reactor_.loop); }

void Connection::count_progress(uint64_t bytes) {
  if (transfer_) window_bytes_ += bytes;
}

// At the end of each window of a transfer: fewer bytes than min_rate *
// window (none at all included) means the client is too slow.
void Connection::check_rate() {
  if (!transfer_ || closing_ || reactor_.min_rate <= 0) return;
  uint64_t now = now_ms();
  uint64_t elapsed = std::max<uint64_t>(1, now - window_start_ms_);
  double rate = static_cast<double>(window_bytes_) * 1000.0 / static_cast<double>(elapsed);
  window_start_ms_ = now;
  window_bytes_ = 0;
  if (rate >= reactor_.min_rate) return;
  char why[128];
  snprintf(why, sizeof why, "too slow: %.0f bytes/s, under --min-rate %.0f over %g s", rate,
           reactor_.min_rate, reactor_.min_rate_window_s);
  log_close(why);
  reactor_.stats->add(reactor_.closed_too_slow);
  ConnRef keep(this);
  if (handler_) {
    handler_->on_too_slow();
  } else {
    close();
  }
}

void Connection::log_close(std::string_view reason) const {
  const std::string_view label = label_.empty() ? std::string_view("a") : label_;
  FSRV_LOG_INFO("closing %.*s connection from %s: %.*s", static_cast<int>(label.size()),
                label.data(), peer_.empty() ? "?" : address_text(peer_).c_str(),
                static_cast<int>(reason.size()), reason.data());
}

void Connection::close_for(std::string_view reason) {
  if (closing_) return;
  log_close(reason);
  close();
}

void Connection::close_when_flushed_for(std::string_view reason) {
  if (closing_ || shutting_down_) return;
  log_close(reason);
  close_when_flushed();
}

void Connection::start_timer(uint64_t ms) {
  if (closing_) return;
  if (!timer_) {
    timer_ = new uv_timer_t;
    uv_timer_init(reactor_.loop, timer_);
    timer_->data = this;
    ++open_handles_;
  }
  uv_timer_start(
      timer_,
      [](uv_timer_t* t) {
        auto* c = static_cast<Connection*>(t->data);
        ConnRef keep(c);
        if (!c->closing_ && c->handler_) c->handler_->on_timer();
      },
      ms, 0);
}

void Connection::stop_timer() {
  if (timer_) uv_timer_stop(timer_);
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

// One deadline serves three: the idle timeout (no progress for
// idle_timeout_s), the request head's (request_timeout_s from its first
// byte) and the min_rate check at the end of each window of a transfer.
// Setting a deadline records it and moves the connection's entry in the
// reactor's DeadlineQueue only if it is due before it; clearing one records
// only that (the entry then fires early, finds nothing due and re-arms for
// the earliest deadline left). So progress and each request cost no heap
// or timer operation in the common case, and a connection carries no timer
// handle at all: the loop has one (nginx keeps its read timers in one tree
// per worker the same way).
void Connection::touch() {
  if (closing_ || reactor_.idle_timeout_s <= 0) return;
  // A service whose clients may pause (IdlePolicy::kKeep) has no idle
  // timer: its slow requests are the request timeout's and min_rate's.
  if (handler_ && handler_->idle_policy() == IdlePolicy::kKeep) return;
  last_progress_ms_ = now_ms();
  idle_on_ = true;
  arm_deadlines(last_progress_ms_ + idle_ms(reactor_));
}

void Connection::arm_deadlines(uint64_t due_ms) {
  if (closing_) return;
  reactor_.deadlines.arm(reactor_.loop, this, due_ms);
}

void Connection::on_deadline(Connection* c) {
  ConnRef keep(c);
  if (c->closing_) return;
  uint64_t now = c->now_ms();
  if (c->head_open_ && now >= c->head_deadline_ms_) {
    c->head_open_ = false;
    const bool handshake = c->tls_ && !c->tls_->established();
    char why[96];
    snprintf(why, sizeof why, "request timeout: %s not complete within %g s",
             handshake ? "TLS handshake" : "head", c->reactor_.request_timeout_s);
    c->log_close(why);
    c->reactor_.stats->add(c->reactor_.closed_request_timeout);
    if (handshake) {
      // Nothing can be said in clear text: close.
      c->reactor_.stats->add(c->reactor_.tls_handshakes_failed);
      c->close();
      return;
    }
    if (c->handler_) c->handler_->on_request_timeout();
    if (c->closing_) return;
  }
  if (c->transfer_ && c->rate_check_ms_ != 0 && now >= c->rate_check_ms_) {
    c->rate_check_ms_ = now + c->rate_window_ms();
    c->check_rate();
    if (c->closing_) return;
  }
  bool idle_applies = c->idle_on_ && c->reactor_.idle_timeout_s > 0 &&
                      !(c->handler_ && c->handler_->idle_policy() == IdlePolicy::kKeep);
  if (idle_applies && now - c->last_progress_ms_ >= idle_ms(c->reactor_)) {
    char why[64];
    snprintf(why, sizeof why, "idle timeout: no progress for %g s", c->reactor_.idle_timeout_s);
    c->log_close(why);
    c->reactor_.stats->add(c->reactor_.closed_idle);
    c->idle_on_ = false;
    if (c->handler_) {
      c->handler_->on_idle_timeout();
    } else {
      c->close();
    }
    if (c->closing_) return;
  }
  // Re-arm for the earliest deadline still set.
  uint64_t next = UINT64_MAX;
  if (c->head_open_) next = std::min(next, c->head_deadline_ms_);
  if (c->transfer_ && c->rate_check_ms_ != 0) next = std::min(next, c->rate_check_ms_);
  if (idle_applies && c->idle_on_)
    next = std::min(next, c->last_progress_ms_ + idle_ms(c->reactor_));
  if (next != UINT64_MAX) c->arm_deadlines(next);
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
  outbox_ = std::string();
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
  if (self->admitted_) r.limits.remove(self->listener_, self->peer_);
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

// ---------------------------------------------------------------- TLS hooks

// Encrypts a write (or holds it until the handshake completes) and queues
// the records; pending_bytes() keeps counting its plaintext.
int Connection::tls_write(WriteReq* w, const uv_buf_t* bufs, unsigned n) {
  if (!tls_->established()) {
    std::string plain;
    for (unsigned i = 0; i < n; ++i) plain.append(bufs[i].base, bufs[i].len);
    w->owned = std::move(plain);
    tls_->held.push_back(w);
    return 0;
  }
  std::string cipher = std::exchange(tls_->spare, std::string());
  cipher.clear();
  // encrypt() also takes whatever OpenSSL queued before (a ticket), in order.
  if (!tls_->encrypt(bufs, n, cipher)) return UV_EPROTO;
  w->owned = std::move(cipher);  // the plaintext (an outbox) is no longer needed
  uv_buf_t b = uv_buf_init(w->owned.data(), static_cast<unsigned>(w->owned.size()));
  return uv_write(&w->req, stream(), &b, 1, on_written);
}

// Writes the ciphertext OpenSSL produced on its own (handshake flights,
// alerts, session tickets, close_notify): counted nowhere but on the wire.
void Connection::tls_flush() {
  std::string out;
  if (closing_ || tls_->take_output(out) == 0) return;
  auto* w = new WriteReq{{}, ConnRef(this), nullptr, std::move(out), 0, false};
  w->req.data = w;
  uv_buf_t b = uv_buf_init(w->owned.data(), static_cast<unsigned>(w->owned.size()));
  if (int rc = uv_write(&w->req, stream(), &b, 1, on_written); rc != 0) fail_write(w, rc);
}

// The handshake's writes held back are encrypted and queued in order.
void Connection::tls_release_held() {
  for (WriteReq* w : std::exchange(tls_->held, {})) {
    uv_buf_t b = uv_buf_init(w->owned.data(), static_cast<unsigned>(w->owned.size()));
    int rc = closing_ ? UV_ECANCELED : tls_write(w, &b, 1);
    if (rc != 0) fail_write(w, rc);
  }
}

// Ciphertext arrived (or a paused reader resumed): advance the handshake,
// then hand the plaintext to the handler.
void Connection::tls_pump() {
  if (!tls_->established()) {
    TlsSession::Step step = tls_->handshake();
    tls_flush();
    if (closing_) return;
    if (step == TlsSession::Step::kWant) return;
    if (step == TlsSession::Step::kFailed) {
      reactor_.stats->add(reactor_.tls_handshakes_failed);
      if (reactor_.tls_failure_log.allow(now_ms())) {
        const std::string_view label = label_.empty() ? std::string_view("tls") : label_;
        FSRV_LOG_INFO("%.*s: TLS handshake from %s failed: %s; %llu similar failures suppressed",
                      static_cast<int>(label.size()), label.data(), peer_text().c_str(),
                      tls_->error().c_str(),
                      static_cast<unsigned long long>(reactor_.tls_failure_log.take_suppressed()));
      }
      close();
      return;
    }
    reactor_.stats->add(reactor_.tls_handshakes_ok);
    // The handshake was timed as a head; a request's own head is timed
    // from its first byte, which may have come with the handshake's end.
    request_head_done();
    if (tls_->has_buffered() && handler_->has_requests()) open_head();
    tls_release_held();
    if (closing_) return;
  }
  tls_deliver();
}

// Plaintext to the handler while it reads; then a pending EOF.
void Connection::tls_deliver() {
  if (!tls_->established()) {
    if (tls_->eof) {  // the client left mid-handshake
      reactor_.stats->add(reactor_.tls_handshakes_failed);
      close();
    }
    return;
  }
  bool drained = false;  // nothing more to decrypt (not: the handler paused)
  while (reading_ && !closing_) {
    ptrdiff_t n = tls_->read(handler_->read_space());
    tls_flush();
    if (closing_) return;
    if (n > 0) {
      handler_->on_read(static_cast<size_t>(n));
      continue;
    }
    if (n == TlsSession::kWant || n == TlsSession::kEof) {
      if (n == TlsSession::kEof) tls_->eof = true;
      drained = true;
      break;
    }
    close_for("bad TLS record: " + tls_->error());
    return;
  }
  // After the socket's EOF a partial record can never complete: EOF too.
  if (tls_->eof && drained && !tls_->eof_told && reading_ && !closing_) {
    tls_->eof_told = true;
    pause_reading();
    handler_->on_eof();
  }
}

}  // namespace fsrv::reactor
