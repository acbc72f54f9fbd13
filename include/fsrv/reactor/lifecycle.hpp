#pragma once
// Graceful shutdown of one loop, the one implementation used by thread mode,
// the prefork master and its workers. On SIGINT/SIGTERM (or shutdown()) it
// stops accepting, drains the reactor's connections (each finishes its
// current request), forces what is left after the grace period, and once
// nothing is left (connections gone and the owner's busy() false) prints
// the final stats line and lets the owner close its remaining handles, so
// uv_run returns.
//
// One stop cause means one graceful drain, however many arrive (hardening
// issue, point 4): a worker whose master was SIGKILLed sees both its
// channel's EOF and PR_SET_PDEATHSIG's SIGTERM, and Ctrl-C in a terminal
// sends SIGINT to master and workers while the master also sends SIGTERM.
// Only the same signal received a second time forces (nginx's fast stop).

#include <uv.h>

#include <functional>
#include <initializer_list>
#include <memory>
#include <set>
#include <string>

#include "fsrv/reactor/reactor.hpp"
#include "fsrv/reactor/signals.hpp"

namespace fsrv::reactor {

class Lifecycle {
 public:
  /// What the owner does at each step; any may be empty.
  struct Hooks {
    std::function<void()> stop_accepting;     ///< close listeners / the channel
    std::function<void()> on_stopping;        ///< after drain began (master: SIGTERM workers)
    std::function<void()> force;              ///< grace over or repeated signal (after closing
                                              ///< every connection; master: SIGKILL workers)
    std::function<bool()> busy;               ///< work outstanding besides connections
                                              ///< (workers, UDP transfers)
    std::function<void()> on_stopped;         ///< close the owner's remaining handles
    std::function<std::string()> stats_line;  ///< the periodic and final stats line
    std::function<void()> on_reopen;          ///< after SIGUSR1 reopened this process's log
                                              ///< files (master: pass it to the workers)
    std::function<void()> on_reload;          ///< SIGHUP: re-read the configuration
  };

  /// Timers are created on reactor.loop; `grace_s` is how long connections
  /// get to finish after shutdown() before force.
  Lifecycle(Reactor& reactor, Hooks hooks, double grace_s);
  ~Lifecycle();
  Lifecycle(const Lifecycle&) = delete;
  Lifecycle& operator=(const Lifecycle&) = delete;

  /// Watches SIGINT and SIGTERM (shutdown), SIGUSR1 (reopen the log files,
  /// then hooks.on_reopen) and SIGHUP (hooks.on_reload; ignored without
  /// one), plus `extra` signals which go to `other` (the master's SIGCHLD),
  /// through a SignalWatcher: call before libuv's pool threads start and
  /// before forking (children inherit the mask).
  void watch_signals(std::initializer_list<int> extra = {},
                     std::function<void(int)> other = nullptr);
  /// Logs hooks.stats_line() every `seconds` (0 = never).
  void print_stats_every(double seconds);
  /// A cluster node first fails its health checks (reactor.health_failing)
  /// for `seconds`, still serving and accepting, so a load balancer stops
  /// sending it clients before its listeners close; then the shutdown goes
  /// on as usual. `on_health_failing` runs when that delay starts (the
  /// prefork master tells its workers). 0 (the default) = no delay. A
  /// second stop signal during the delay ends it at once.
  void set_drain_delay(double seconds, std::function<void()> on_health_failing = nullptr);
  /// Begins the graceful shutdown (idempotent); `cause` is logged.
  void shutdown(const std::string& cause);
  /// Re-checks whether the shutdown is complete (call when busy() may have
  /// turned false).
  void check_done();
  /// check_done() on the next loop iteration: for callers deep inside a
  /// callback chain (a UDP transfer releasing itself), where finishing (and
  /// closing the executor) must not run under them.
  void check_done_later();
  bool stopping() const { return stopping_; }
  /// Closes every connection now, then hooks.force: what the grace
  /// period's end and a repeated stop signal do (thread mode's main loop
  /// passes a forced stop to its other loops this way).
  void force();

 private:
  void on_signal(int signum);
  void finish();
  Reactor& reactor_;
  Hooks hooks_;
  double grace_s_;
  std::unique_ptr<SignalWatcher> signals_;
  std::function<void(int)> other_;
  std::set<int> seen_;  ///< stop signals received so far
  uv_timer_t grace_timer_;
  uv_timer_t stats_timer_;
  uv_timer_t recheck_timer_;  ///< check_done_later()
  uv_timer_t delay_timer_;    ///< set_drain_delay()'s wait
  double drain_delay_s_ = 0;
  std::function<void()> on_health_failing_;
  bool delaying_ = false;  ///< in the drain delay
  std::string cause_;      ///< of the delayed shutdown
  bool stopping_ = false;
  bool finished_ = false;
};

}  // namespace fsrv::reactor
