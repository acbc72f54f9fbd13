#include "fsrv/reactor/lifecycle.hpp"

#include <cmath>
#include <csignal>

#include "fsrv/core/log.hpp"
#include "fsrv/core/service_manager.hpp"

namespace fsrv::reactor {

namespace {
// The timers are members of the Lifecycle, which outlives the loop run.
void noop_close(uv_handle_t*) {}
uint64_t to_ms(double s) { return static_cast<uint64_t>(std::llround(s * 1000.0)); }
}  // namespace

Lifecycle::Lifecycle(Reactor& reactor, Hooks hooks, double grace_s)
    : reactor_(reactor), hooks_(std::move(hooks)), grace_s_(grace_s) {
  uv_timer_init(reactor.loop, &grace_timer_);
  uv_timer_init(reactor.loop, &stats_timer_);
  uv_timer_init(reactor.loop, &recheck_timer_);
  uv_timer_init(reactor.loop, &delay_timer_);
  delay_timer_.data = this;
  grace_timer_.data = this;
  stats_timer_.data = this;
  recheck_timer_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&stats_timer_));
}

Lifecycle::~Lifecycle() = default;

void Lifecycle::watch_signals(std::initializer_list<int> extra, std::function<void(int)> other) {
  other_ = std::move(other);
  std::vector<int> all = {SIGINT, SIGTERM, SIGUSR1, SIGHUP};
  all.insert(all.end(), extra.begin(), extra.end());
  signals_ = std::make_unique<SignalWatcher>(reactor_.loop, all,
                                             [this](int signum) { on_signal(signum); });
}

void Lifecycle::on_signal(int signum) {
  if (signum == SIGUSR1) {
    log::reopen_files();
    FSRV_LOG_INFO("SIGUSR1: log files reopened");
    if (hooks_.on_reopen) hooks_.on_reopen();
    return;
  }
  if (signum == SIGHUP) {
    if (hooks_.on_reload) {
      hooks_.on_reload();
    } else {
      FSRV_LOG_INFO("SIGHUP: nothing to reload");
    }
    return;
  }
  if (signum != SIGINT && signum != SIGTERM) {
    if (other_) other_(signum);
    return;
  }
  if (!seen_.insert(signum).second && stopping_) {
    FSRV_LOG_WARN("signal %d again: closing every connection now", signum);
    force();
    return;
  }
  shutdown("signal " + std::to_string(signum));
}

void Lifecycle::print_stats_every(double seconds) {
  if (seconds <= 0 || !hooks_.stats_line) return;
  uv_timer_start(
      &stats_timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<Lifecycle*>(t->data);
        std::string l = self->hooks_.stats_line();
        FSRV_LOG_INFO("%s", l.c_str());
      },
      to_ms(seconds), to_ms(seconds));
}

void Lifecycle::set_drain_delay(double seconds, std::function<void()> on_health_failing) {
  drain_delay_s_ = seconds;
  on_health_failing_ = std::move(on_health_failing);
}

void Lifecycle::shutdown(const std::string& cause) {
  if (stopping_) return;
  reactor_.health_failing = true;
  if (drain_delay_s_ > 0 && cause_.empty()) {
    // First the health checks fail, then (after the delay) the listeners close.
    cause_ = cause;
    delaying_ = true;
    FSRV_LOG_INFO("%s: health checks fail now; closing listeners in %.1f s", cause.c_str(),
                  drain_delay_s_);
    if (on_health_failing_) on_health_failing_();
    uv_timer_start(
        &delay_timer_,
        [](uv_timer_t* t) {
          auto* self = static_cast<Lifecycle*>(t->data);
          self->delaying_ = false;
          self->shutdown(self->cause_);
        },
        to_ms(drain_delay_s_), 0);
    return;
  }
  if (delaying_) {  // a stop request during the delay ends it
    uv_timer_stop(&delay_timer_);
    delaying_ = false;
  }
  stopping_ = true;
  FSRV_LOG_INFO("%s: shutting down (grace %.1f s)", cause.c_str(), grace_s_);
  service_manager::notify_stopping();
  if (hooks_.stop_accepting) hooks_.stop_accepting();
  uv_timer_start(
      &grace_timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<Lifecycle*>(t->data);
        FSRV_LOG_WARN("grace period over: closing %zu connection(s)",
                      self->reactor_.connections.size());
        self->force();
      },
      to_ms(grace_s_), 0);
  // With no connection open, drain_connections reports "drained" at once:
  // on_drained is set only after on_stopping, so the finish (on_stopped,
  // which closes the owner's handles) never runs before on_stopping.
  drain_connections(reactor_);
  if (hooks_.on_stopping) hooks_.on_stopping();
  reactor_.on_drained = [this] { check_done(); };
  check_done();
}

void Lifecycle::force() {
  close_all_connections(reactor_);
  if (hooks_.force) hooks_.force();
}

void Lifecycle::check_done() {
  if (!stopping_ || finished_) return;
  if (!reactor_.connections.empty()) return;
  if (hooks_.busy && hooks_.busy()) return;
  finish();
}

void Lifecycle::check_done_later() {
  if (!stopping_ || finished_) return;
  uv_timer_start(
      &recheck_timer_, [](uv_timer_t* t) { static_cast<Lifecycle*>(t->data)->check_done(); }, 0, 0);
}

void Lifecycle::finish() {
  finished_ = true;
  reactor_.on_drained = nullptr;
  uv_timer_stop(&grace_timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&grace_timer_), noop_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&stats_timer_), noop_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&recheck_timer_), noop_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&delay_timer_), noop_close);
  // The signals stay blocked: a late one is discarded, never fatal.
  if (signals_) signals_->close();
  if (hooks_.stats_line) {
    std::string l = "final " + hooks_.stats_line();
    FSRV_LOG_INFO("%s", l.c_str());
  }
  if (hooks_.on_stopped) hooks_.on_stopped();
}

}  // namespace fsrv::reactor
