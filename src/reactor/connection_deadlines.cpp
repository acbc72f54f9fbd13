// A Connection's deadlines: the idle timeout, the request head's timeout
// and the minimum rate of a transfer, on one entry in the reactor's
// DeadlineQueue; and the closes they cause, logged with their reason.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string_view>

#include "fsrv/core/log.hpp"
#include "fsrv/reactor/connection.hpp"
#include "fsrv/reactor/reactor.hpp"
#include "fsrv/reactor/tls.hpp"

namespace fsrv::reactor {

namespace {

uint64_t idle_ms(const Reactor& r) {
  return static_cast<uint64_t>(std::llround(r.idle_timeout_s * 1000.0));
}

}  // namespace

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
    rate_check_ms_ = 0;                         // the deadline timer skips it from now on
    if (tls_) std::string().swap(tls_->spare);  // released, capacity and all
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

}  // namespace fsrv::reactor
