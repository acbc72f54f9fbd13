#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <vector>

#include "fsrv/core/log.hpp"
#include "fsrv/process/prefork.hpp"
#include "fsrv/protocol/reply.hpp"
#include "fsrv/reactor/connection.hpp"
#include "fsrv/reactor/server.hpp"
#include "fsrv/reactor/signals.hpp"
#include "fsrv/storage/storage.hpp"

namespace fsrv::process {

namespace {

/// A worker restarted sooner than this after its previous start waits this
/// long before the next fork, so a crash loop cannot become a fork bomb;
/// well under the one second a replacement must appear in.
constexpr uint64_t kRespawnBackoffMs = 200;

/// Extra time, after the grace period, before stragglers get SIGKILL.
constexpr double kKillMarginS = 2.0;

double now_unix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class Master;
struct WorkerHandle;
void close_pipe(WorkerHandle& w);

/// The master's view of one worker: its process and its IPC pipe.
struct WorkerHandle {
  Master* master = nullptr;
  int slot = 0;  ///< stats slot (1..N)
  pid_t pid = -1;
  uv_pipe_t pipe;
  bool pipe_open = false;   ///< open and usable for passing sockets
  bool pipe_closed = true;  ///< its close callback ran: the memory may be re-initialised
  /// Sockets sent to this slot's workers since start. Those not yet taken
  /// (sent - received()) still count as load: the master's own write2
  /// callback may run only after the worker already served the client.
  uint64_t sent = 0;
  std::chrono::steady_clock::time_point started;
  uv_timer_t respawn_timer;
};

/// Closes a worker's channel (idempotent); pipe_closed flips in the close
/// callback, and only then may fork_worker re-initialise the handle.
void close_pipe(WorkerHandle& w) {
  if (!w.pipe_open) return;
  w.pipe_open = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&w.pipe),
           [](uv_handle_t* h) { static_cast<WorkerHandle*>(h->data)->pipe_closed = true; });
}

/// One socket being passed: the write2 request and the master's copy of the
/// client connection, closed in the callback (libuv pitfall 1).
struct PassReq {
  uv_write_t req;
  reactor::ConnRef conn;
  WorkerHandle* worker;
};

class Master {
 public:
  explicit Master(const ServerConfig& config)
      : config_(config), table_(config.workers + 1, true), workers_(config.workers) {}

  int run();

 private:
  bool fork_worker(WorkerHandle& w);
  void on_connection();
  void on_worker_exit(pid_t pid, int status);
  static void on_respawn_timer(uv_timer_t* t);
  void on_signal(int signum);
  void maybe_finish();
  int64_t active_connections() const;
  int64_t load(const WorkerHandle& w) const;
  uint64_t received(const WorkerHandle& w) const;

  const ServerConfig& config_;
  stats::StatsTable table_;
  std::vector<WorkerHandle> workers_;
  double started_unix_ = now_unix();
  uv_loop_t loop_;
  uv_tcp_t listener_;
  std::unique_ptr<reactor::SignalWatcher> signals_;
  uv_timer_t kill_timer_, stats_timer_;
  reactor::ServerContext ctx_;
  std::unique_ptr<storage::Root> root_;
  bool stopping_ = false;
  bool finished_ = false;
  size_t next_ = 0;
};

// Connections the workers hold plus those being passed to them. The
// master's own slot is left out: its copies are transient (closed once
// passed) and would count each client twice.
int64_t Master::active_connections() const {
  int64_t n = 0;
  for (const WorkerHandle& w : workers_) n += load(w);
  return n;
}

// Connections a worker holds plus those sent to it and not yet taken.
int64_t Master::load(const WorkerHandle& w) const {
  const stats::StatsSlot& s = table_.slot(w.slot);
  return s.conns_active.load() + static_cast<int64_t>(w.sent - received(w));
}

// Sockets a slot's workers took from the channel (served or refused).
uint64_t Master::received(const WorkerHandle& w) const {
  const stats::StatsSlot& s = table_.slot(w.slot);
  return s.conns_total.load() + s.conns_rejected.load();
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
  pid_t pid = fork();
  if (pid < 0) {
    FSRV_LOG_ERROR("fork: %s", strerror(errno));
    close(sv[0]);
    close(sv[1]);
    return false;
  }
  if (pid == 0) {
    worker_main(config_, table_, w.slot, sv[1], master, started_unix_);
  }
  close(sv[1]);
  w.pid = pid;
  w.started = std::chrono::steady_clock::now();
  uv_pipe_init(&loop_, &w.pipe, 1);
  w.pipe.data = &w;
  uv_pipe_open(&w.pipe, sv[0]);
  w.pipe_open = true;
  w.pipe_closed = false;
  // Reading only to notice EOF (the worker died or exited).
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&w.pipe),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        static char sink[64];
        *buf = uv_buf_init(sink, sizeof sink);
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
        if (nread >= 0) return;
        close_pipe(*static_cast<WorkerHandle*>(s->data));
      });
  FSRV_LOG_DEBUG("worker slot %d: pid %d", w.slot, static_cast<int>(pid));
  return true;
}

void Master::on_connection() {
  reactor::Connection* conn = reactor::Connection::create(ctx_);
  reactor::ConnRef ref(conn);
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&listener_), conn->stream()) != 0) {
    conn->close();
    return;
  }
  if (active_connections() + 1 > config_.max_conns) {
    conn->reject(protocol::error_text("server busy: too many connections (limit " +
                                      std::to_string(config_.max_conns) + ")"));
    return;
  }
  // Least-loaded live worker; ties go round-robin.
  WorkerHandle* best = nullptr;
  int64_t best_load = 0;
  for (size_t k = 0; k < workers_.size(); ++k) {
    WorkerHandle& w = workers_[(next_ + k) % workers_.size()];
    if (!w.pipe_open) continue;
    int64_t l = load(w);
    if (!best || l < best_load) {
      best = &w;
      best_load = l;
    }
  }
  next_ = (next_ + 1) % workers_.size();
  if (!best) {
    conn->reject(protocol::error_text("server busy: no worker available"));
    return;
  }
  auto* pass = new PassReq{{}, ref, best};
  pass->req.data = pass;
  static char one_byte[] = "c";  // uv_write2 needs a data buffer beside the handle
  uv_buf_t buf = uv_buf_init(one_byte, 1);
  ++best->sent;
  int rc = uv_write2(&pass->req, reinterpret_cast<uv_stream_t*>(&best->pipe), &buf, 1,
                     conn->stream(), [](uv_write_t* req, int status) {
                       auto* p = static_cast<PassReq*>(req->data);
                       if (status != 0) FSRV_LOG_WARN("fd passing failed: %s", uv_strerror(status));
                       p->conn->close();  // the worker has its own copy now
                       delete p;
                     });
  if (rc != 0) {
    --best->sent;
    FSRV_LOG_WARN("uv_write2: %s", uv_strerror(rc));
    conn->close();
    delete pass;
  }
}

void Master::on_worker_exit(pid_t pid, int status) {
  for (WorkerHandle& w : workers_) {
    if (w.pid != pid) continue;
    w.pid = -1;
    stats::StatsSlot& s = table_.slot(w.slot);
    int64_t lost = s.conns_active.exchange(0);
    w.sent = received(w);  // sockets in the dead worker's channel are gone too
    if (lost > 0) s.conns_lost.fetch_add(static_cast<uint64_t>(lost));
    close_pipe(w);
    if (stopping_) break;
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
  maybe_finish();
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

void Master::on_signal(int signum) {
  if (signum == SIGCHLD) {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) on_worker_exit(pid, status);
    return;
  }
  if (stopping_) {
    FSRV_LOG_WARN("signal %d again: killing workers now", signum);
    for (WorkerHandle& w : workers_) {
      if (w.pid > 0) kill(w.pid, SIGKILL);
    }
    return;
  }
  FSRV_LOG_INFO("signal %d: stopping workers (grace %.1f s)", signum, config_.grace_s);
  stopping_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
  for (WorkerHandle& w : workers_) {
    uv_timer_stop(&w.respawn_timer);
    if (w.pid > 0) kill(w.pid, SIGTERM);
  }
  reactor::drain_connections(ctx_);
  uv_timer_start(
      &kill_timer_,
      [](uv_timer_t* t) {
        auto* m = static_cast<Master*>(t->data);
        for (WorkerHandle& w : m->workers_) {
          if (w.pid > 0) {
            FSRV_LOG_WARN("worker pid %d still running after the grace period: SIGKILL",
                          static_cast<int>(w.pid));
            kill(w.pid, SIGKILL);
          }
        }
      },
      static_cast<uint64_t>(std::llround((config_.grace_s + kKillMarginS) * 1000)), 0);
  maybe_finish();
}

// Once stopping and every worker is reaped: close the master's own handles
// so uv_run returns.
void Master::maybe_finish() {
  if (!stopping_ || finished_) return;
  for (WorkerHandle& w : workers_) {
    if (w.pid > 0) return;
  }
  finished_ = true;
  reactor::close_all_connections(ctx_);
  signals_->close();  // the signals stay blocked: a late one is discarded
  uv_close(reinterpret_cast<uv_handle_t*>(&kill_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&stats_timer_), nullptr);
  for (WorkerHandle& w : workers_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&w.respawn_timer), nullptr);
    close_pipe(w);
  }
  std::string line = table_.to_line("process", config_.workers);
  FSRV_LOG_INFO("final %s", line.c_str());
}

int Master::run() {
  signal(SIGPIPE, SIG_IGN);
  std::string error;
  root_ = storage::Root::open(config_.root, &error);  // create it before the workers
  if (!root_) {
    FSRV_LOG_ERROR("%s", error.c_str());
    return 1;
  }
  table_.slot(0).pid = getpid();
  for (size_t i = 0; i < workers_.size(); ++i) {
    workers_[i].master = this;
    workers_[i].slot = static_cast<int>(i) + 1;
  }
  uv_loop_init(&loop_);
  ctx_.loop = &loop_;
  ctx_.config = &config_;
  ctx_.stats = &table_.slot(0);
  ctx_.active_connections = [this] { return active_connections(); };

  int port = reactor::bind_and_listen(
      &loop_, &listener_, config_.host, config_.port,
      [](uv_stream_t* s, int st) {
        if (st == 0) static_cast<Master*>(s->data)->on_connection();
      },
      this);
  if (port < 0) {
    FSRV_LOG_ERROR("cannot listen on %s:%d: %s", config_.host.c_str(), config_.port,
                   uv_strerror(port));
    return 1;
  }

  // Signals before forking: SIGCHLD must be caught from the first fork on,
  // and the children inherit the blocked mask (they read their own signalfd).
  signals_ = std::make_unique<reactor::SignalWatcher>(
      &loop_, std::initializer_list<int>{SIGINT, SIGTERM, SIGCHLD},
      [this](int signum) { on_signal(signum); });
  uv_timer_init(&loop_, &kill_timer_);
  kill_timer_.data = this;
  uv_timer_init(&loop_, &stats_timer_);
  stats_timer_.data = this;
  for (WorkerHandle& w : workers_) {
    uv_timer_init(&loop_, &w.respawn_timer);
    w.respawn_timer.data = &w;
  }
  for (WorkerHandle& w : workers_) {
    if (!fork_worker(w)) return 1;
  }
  printf("listening on %s:%d\n", config_.host.c_str(), port);
  fflush(stdout);
  FSRV_LOG_INFO("serving %s in process mode with %d workers", config_.root.c_str(),
                config_.workers);
  if (config_.stats_interval_s > 0) {
    auto ms = static_cast<uint64_t>(std::llround(config_.stats_interval_s * 1000));
    uv_timer_start(
        &stats_timer_,
        [](uv_timer_t* t) {
          std::string line = static_cast<Master*>(t->data)->table_.to_line(
              "process", static_cast<Master*>(t->data)->config_.workers);
          FSRV_LOG_INFO("%s", line.c_str());
        },
        ms, ms);
  }
  uv_run(&loop_, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&loop_);
  if (rc != 0) FSRV_LOG_WARN("loop closed with handles left: %s", uv_strerror(rc));
  return 0;
}

}  // namespace

int run_master(const ServerConfig& config) {
  Master master(config);
  return master.run();
}

}  // namespace fsrv::process
