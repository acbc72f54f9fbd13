#pragma once
// Top of the server: wires config, storage, executor, stats and reactor
// together and runs until SIGINT/SIGTERM. One function per pool mode.

#include <uv.h>

#include <functional>
#include <memory>

#include "fsrv/core/config.hpp"
#include "fsrv/reactor/server.hpp"
#include "fsrv/reactor/signals.hpp"

namespace fsrv::app {

/// Thread mode: one loop accepts and serves every connection; blocking
/// chunks run on libuv's thread pool of config.workers threads. Prints
/// "listening on HOST:PORT" as the first stdout line. Returns the exit code
/// (0 after a graceful shutdown).
int serve_thread_mode(const ServerConfig& config);

/// Process mode (prefork): see include/fsrv/process/prefork.hpp.
int serve_process_mode(const ServerConfig& config);

/// Graceful shutdown of one loop: on SIGINT/SIGTERM (or shutdown()) it
/// stops accepting, drains connections, force-closes them after the grace
/// period, then closes every handle it owns so uv_run returns.
class Lifecycle {
 public:
  /// `stop_accepting` closes the listener(s); `on_stopped` runs once all
  /// connections are gone (print final stats, close remaining handles).
  Lifecycle(reactor::ServerContext& ctx, std::function<void()> stop_accepting,
            std::function<void()> on_stopped);
  ~Lifecycle();
  Lifecycle(const Lifecycle&) = delete;
  Lifecycle& operator=(const Lifecycle&) = delete;

  /// Watches SIGINT and SIGTERM on the context's loop (a SignalWatcher:
  /// call before libuv's pool threads start). A second signal while
  /// draining closes every connection at once.
  void watch_signals();
  /// Prints ctx stats every `seconds` (0 = never) with `line()`.
  void print_stats_every(double seconds, std::function<std::string()> line);
  /// Begins the graceful shutdown (idempotent).
  void shutdown();
  bool stopping() const { return stopping_; }

 private:
  void finish();
  reactor::ServerContext& ctx_;
  std::function<void()> stop_accepting_;
  std::function<void()> on_stopped_;
  std::function<std::string()> stats_line_;
  std::unique_ptr<reactor::SignalWatcher> signals_;
  uv_timer_t grace_timer_;
  uv_timer_t stats_timer_;
  bool stopping_ = false;
  bool finished_ = false;
};

}  // namespace fsrv::app
