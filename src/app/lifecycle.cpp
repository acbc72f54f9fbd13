#include <cmath>
#include <csignal>
#include <cstdio>

#include "fsrv/app/serve.hpp"
#include "fsrv/core/log.hpp"

namespace fsrv::app {

namespace {
void noop_close(uv_handle_t*) {}
uint64_t to_ms(double s) { return static_cast<uint64_t>(std::llround(s * 1000.0)); }
}  // namespace

Lifecycle::Lifecycle(reactor::ServerContext& ctx, std::function<void()> stop_accepting,
                     std::function<void()> on_stopped)
    : ctx_(ctx), stop_accepting_(std::move(stop_accepting)), on_stopped_(std::move(on_stopped)) {
  uv_timer_init(ctx.loop, &grace_timer_);
  uv_timer_init(ctx.loop, &stats_timer_);
  grace_timer_.data = this;
  stats_timer_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&stats_timer_));
}

Lifecycle::~Lifecycle() = default;

void Lifecycle::watch_signals() {
  signals_ = std::make_unique<reactor::SignalWatcher>(
      ctx_.loop, std::initializer_list<int>{SIGINT, SIGTERM}, [this](int signum) {
        if (stopping_) {
          // A second signal: do not wait for the
          // grace period (nginx's fast stop).
          FSRV_LOG_WARN(
              "signal %d again: closing every "
              "connection now",
              signum);
          reactor::close_all_connections(ctx_);
          return;
        }
        FSRV_LOG_INFO("signal %d: shutting down", signum);
        shutdown();
      });
}

void Lifecycle::print_stats_every(double seconds, std::function<std::string()> line) {
  stats_line_ = std::move(line);
  if (seconds <= 0) return;
  uv_timer_start(
      &stats_timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<Lifecycle*>(t->data);
        std::string l = self->stats_line_();
        FSRV_LOG_INFO("%s", l.c_str());
      },
      to_ms(seconds), to_ms(seconds));
}

void Lifecycle::shutdown() {
  if (stopping_) return;
  stopping_ = true;
  stop_accepting_();
  ctx_.on_drained = [this] { finish(); };
  uv_timer_start(
      &grace_timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<Lifecycle*>(t->data);
        FSRV_LOG_WARN("grace period over: closing %zu connection(s)",
                      self->ctx_.connections.size());
        reactor::close_all_connections(self->ctx_);
      },
      to_ms(ctx_.config->grace_s), 0);
  reactor::drain_connections(ctx_);
}

void Lifecycle::finish() {
  if (finished_) return;
  finished_ = true;
  ctx_.on_drained = nullptr;
  uv_timer_stop(&grace_timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&grace_timer_), noop_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&stats_timer_), noop_close);
  // The signals stay blocked: a late one is discarded, never fatal.
  if (signals_) signals_->close();
  if (ctx_.executor) ctx_.executor->close();
  if (stats_line_) {
    std::string l = "final " + stats_line_();
    FSRV_LOG_INFO("%s", l.c_str());
  }
  if (on_stopped_) on_stopped_();
}

}  // namespace fsrv::app
