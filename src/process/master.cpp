#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "fsrv/core/log.hpp"
#include "fsrv/core/service_manager.hpp"
#include "fsrv/process/channel.hpp"
#include "fsrv/process/prefork.hpp"
#include "fsrv/reactor/lifecycle.hpp"
#include "fsrv/reactor/listener.hpp"
#include "fsrv/reactor/reactor.hpp"
#include "fsrv/runtime/runtime.hpp"
#include "fsrv/storage/storage.hpp"
#include "master_internal.hpp"

namespace fsrv::process {

namespace master_detail {

bool Master::any_worker_alive() const {
  for (const WorkerHandle& w : workers_) {
    if (w.pid > 0) return true;
  }
  return false;
}

bool Master::fork_worker(WorkerHandle& w) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    FSRV_LOG_ERROR("socketpair: %s", strerror(errno));
    return false;
  }
  fflush(stdout);
  fflush(stderr);
  pid_t master = getpid();
  std::vector<std::pair<int, int>> udp;  // (listener index, fd) for slot 1
  if (w.slot == 1) {
    for (auto& d : datagrams_) udp.emplace_back(d->index(), d->fd());
  }
  pid_t pid = fork();
  if (pid < 0) {
    FSRV_LOG_ERROR("fork: %s", strerror(errno));
    close(sv[0]);
    close(sv[1]);
    return false;
  }
  if (pid == 0) {
    worker_main(config_, specs_, schema_, *table_, w.slot, sv[1], master, started_unix_, udp);
  }
  w.worker_end = sv[1];  // kept: see WorkerHandle::worker_end
  // Room for a burst of passed sockets (each a message with a descriptor
  // attached, about 1 KiB of kernel accounting): a full channel sends
  // through libuv's queue, which allocates per pass. Capped by the
  // kernel's net.core.wmem_max.
  int sndbuf = kChannelSendBuffer;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  w.pid = pid;
  w.started = std::chrono::steady_clock::now();
  uv_pipe_init(&loop_, &w.pipe, 1);
  w.pipe.data = &w;
  uv_pipe_open(&w.pipe, sv[0]);
  w.pipe_open = true;
  w.pipe_closed = false;
  // Reading the worker's kConnectionGone messages, and EOF (the worker
  // died or exited).
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&w.pipe),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        static char bytes[4096];
        *buf = uv_buf_init(bytes, sizeof bytes);
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
        auto* wh = static_cast<WorkerHandle*>(s->data);
        if (nread > 0) {
          wh->master->on_worker_bytes(*wh, std::string_view(buf->base, static_cast<size_t>(nread)));
        } else if (nread < 0) {
          close_pipe(*wh);
        }
      });
  FSRV_LOG_DEBUG("worker slot %d: pid %d", w.slot, static_cast<int>(pid));
  // Clients rescued from a dead worker while no other could take them.
  std::vector<Parked> parked;
  parked.swap(parked_);
  for (const Parked& p : parked) pass_again(p.listener, p.fd, p.peer);
  return true;
}

void Master::on_worker_exit(pid_t pid, int status) {
  for (WorkerHandle& w : workers_) {
    if (w.pid != pid) continue;
    w.pid = -1;
    stats::StatsSlot& s = table_->slot(w.slot);
    int64_t lost = s.conns_active.exchange(0);
    schema_.zero_held(s);    // its services' open connections went with it too
    s.executor_pending = 0;  // its queue died with it
    w.sent = received(w);    // what it had not taken leaves it (rescue)
    if (lost > 0) s.conns_lost.fetch_add(static_cast<uint64_t>(lost));
    close_pipe(w);
    rescue(w);
    if (stopping_) break;
    if (WIFEXITED(status) && WEXITSTATUS(status) == kWorkerExitNoRestart) {
      FSRV_LOG_ERROR("worker slot %d could not start (see above): stopping the server", w.slot);
      if (life_) life_->shutdown("a worker could not start");
      break;
    }
    FSRV_LOG_WARN("worker slot %d (pid %d) %s %d; %lld connection(s) lost; restarting", w.slot,
                  static_cast<int>(pid), WIFSIGNALED(status) ? "killed by signal" : "exited with",
                  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
                  static_cast<long long>(lost));
    s.restarts.fetch_add(1);
    auto age = std::chrono::steady_clock::now() - w.started;
    uint64_t delay = age < std::chrono::seconds(1) ? kRespawnBackoffMs : 0;
    uv_timer_start(&w.respawn_timer, on_respawn_timer, delay, 0);
    break;
  }
}

// Forks the replacement of a dead worker, once its old channel is closed.
void Master::on_respawn_timer(uv_timer_t* t) {
  auto* wh = static_cast<WorkerHandle*>(t->data);
  if (wh->master->stopping_ || wh->pid >= 0) return;
  if (!wh->pipe_closed) {  // the old channel is still closing: retry shortly
    uv_timer_start(t, on_respawn_timer, 10, 0);
    return;
  }
  wh->master->fork_worker(*wh);
}

void Master::on_sigchld() {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) on_worker_exit(pid, status);
  if (life_) life_->check_done();
}

// Once stopping and every worker is reaped: close the master's own handles
// so uv_run returns.
void Master::close_handles() {
  close_kept();
  for (WorkerHandle& w : workers_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&w.respawn_timer), nullptr);
    close_pipe(w);
  }
}

int Master::run() {
  signal(SIGPIPE, SIG_IGN);
  auto resolved = runtime::resolve_listeners(runtime::listeners_of(config_));
  if (!resolved.ok()) {
    FSRV_LOG_ERROR("%s", resolved.error.c_str());
    return kExitConfig;
  }
  specs_ = std::move(resolved.value);
  runtime::register_stats(specs_, schema_);  // before any fork: one layout everywhere
  table_ = std::make_unique<stats::StatsTable>(config_.workers + 1, true, schema_);
  std::string error;
  if (!storage::Root::open(config_.root, &error)) {  // create it before the workers
    FSRV_LOG_ERROR("%s", error.c_str());
    return 1;
  }
  table_->slot(0).pid = getpid();
  for (size_t i = 0; i < workers_.size(); ++i) {
    workers_[i].master = this;
    workers_[i].slot = static_cast<int>(i) + 1;
  }
  uv_loop_init(&loop_);
  reactor_.loop = &loop_;
  reactor_.idle_timeout_s = config_.idle_timeout_s;
  // Each worker raises its own limit the same way after fork; the master
  // caps the whole server at what the workers' descriptors allow.
  const int fd_cap = runtime::raise_fd_limit();
  max_conns_ = runtime::effective_max_conns(config_.max_conns, fd_cap, config_.workers);
  reactor_.max_conns = max_conns_;
  // Address space for every connection the server may hold: pages are
  // touched only as connections come, and the table never moves (growing
  // by doubling would leave up to half of it as slack).
  passed_.reserve(static_cast<size_t>(max_conns_));
  reactor_.stats = &table_->slot(0);
  runtime::configure_limits(reactor_, specs_, config_, max_conns_, schema_, table_->slot(0));

  Status s = runtime::listen_all(
      &loop_, specs_, listeners_, [this](reactor::Listener& l) { on_connection(l); },
      /*polled=*/true);
  // UDP listeners: bound here, never read here; worker slot 1
  // inherits the sockets and alone receives (a UDP service's per-sender
  // state must live in one process). Datagrams that arrive while slot 1
  // restarts wait in the socket's buffer.
  if (s.ok()) {
    s = runtime::listen_datagrams(&loop_, specs_, datagrams_, nullptr);
    if (!s.ok()) {
      for (auto& l : listeners_) l->close();
    }
  }
  if (!s.ok()) {
    FSRV_LOG_ERROR("%s", s.error.c_str());
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    return kExitConfig;
  }

  reactor::Lifecycle::Hooks hooks;
  hooks.stop_accepting = [this] {
    stopping_ = true;
    for (auto& l : listeners_) l->close();
    for (auto& d : datagrams_) d->close();
  };
  hooks.on_stopping = [this] {
    for (WorkerHandle& w : workers_) {
      uv_timer_stop(&w.respawn_timer);
      // Told already when the drain delay began: a second SIGTERM would force them.
      if (w.pid > 0 && !workers_told_) kill(w.pid, SIGTERM);
    }
  };
  hooks.force = [this] {
    for (WorkerHandle& w : workers_) {
      if (w.pid > 0) {
        FSRV_LOG_WARN("worker pid %d still running: SIGKILL", static_cast<int>(w.pid));
        kill(w.pid, SIGKILL);
      }
    }
  };
  hooks.busy = [this] { return any_worker_alive(); };
  hooks.on_stopped = [this] { close_handles(); };
  hooks.stats_line = [this] { return table_->to_line("process", config_.workers); };
  hooks.on_reload = [this, fd_cap] {  // SIGHUP: --max-conns here, the rest in each worker
    service_manager::notify_reloading();
    ServerConfig fresh;
    std::vector<std::string> restart;
    std::string why = runtime::reload_config(live_, fresh, restart);
    if (why.empty()) {
      live_ = fresh;
      max_conns_ = runtime::effective_max_conns(fresh.max_conns, fd_cap, config_.workers);
      reactor_.max_conns = max_conns_;
      runtime::replan_limits(reactor_, specs_, fresh, max_conns_);
      reactor_.idle_timeout_s = fresh.idle_timeout_s;
      for (WorkerHandle& w : workers_) {
        if (w.pid > 0) kill(w.pid, SIGHUP);
      }
    } else if (!config_.users_file.empty() || runtime::any_tls(specs_)) {
      // No --config to apply, but each worker reads --users and the TLS
      // certificate and key again.
      for (WorkerHandle& w : workers_) {
        if (w.pid > 0) kill(w.pid, SIGHUP);
      }
    }
    runtime::report_reload(why, restart, fresh);
  };
  hooks.on_reopen = [this] {
    for (WorkerHandle& w : workers_) {
      if (w.pid > 0) kill(w.pid, SIGUSR1);
    }
  };
  // The workers get the grace period themselves; the master waits a little
  // longer before SIGKILL.
  life_ = std::make_unique<reactor::Lifecycle>(reactor_, std::move(hooks),
                                               config_.grace_s + kKillMarginS);
  // --drain-delay: the workers answer the health checks, so they hear of the
  // stop at once and run the same delay (a little longer, so the master's
  // listeners close before their channels do).
  life_->set_drain_delay(config_.drain_delay_s, [this] {
    workers_told_ = true;
    for (WorkerHandle& w : workers_) {
      if (w.pid > 0) kill(w.pid, SIGTERM);
    }
  });
  // Signals before forking: SIGCHLD must be caught from the first fork on,
  // and the children inherit the blocked mask (they read their own signalfd).
  life_->watch_signals({SIGCHLD}, [this](int) { on_sigchld(); });
  for (WorkerHandle& w : workers_) {
    uv_timer_init(&loop_, &w.respawn_timer);
    w.respawn_timer.data = &w;
  }
  for (WorkerHandle& w : workers_) {
    if (!fork_worker(w)) return 1;
  }
  runtime::print_listening(listeners_, datagrams_, specs_);
  FSRV_LOG_INFO("serving %s in process mode with %d workers", config_.root.c_str(),
                config_.workers);
  life_->print_stats_every(config_.stats_interval_s);
  uv_run(&loop_, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&loop_);
  if (rc != 0) FSRV_LOG_WARN("loop closed with handles left: %s", uv_strerror(rc));
  return 0;
}

}  // namespace master_detail

int run_master(const ServerConfig& config) {
  master_detail::Master master(config);
  return master.run();
}

}  // namespace fsrv::process
