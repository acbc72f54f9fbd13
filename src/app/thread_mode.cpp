// Thread mode: one process, libuv's thread pool for the blocking file work,
// and --loops event loops. Loop 0 runs on the main thread and owns what is
// process-wide: the signals (Lifecycle::watch_signals), the datagram
// listeners, the bind of every TCP listener, the connection limits' table
// and the final stats line. Each other loop is a thread with its own
// uv_loop_t, executor, runtime::ServingProcess and stats slot; it accepts
// from the same listening sockets through its own handle on a dup() of each
// descriptor (reactor::Listener::listen_shared), admits against loop 0's
// limits (Reactor::shared_limits) and obeys loop 0 through a uv_async_t:
// fail health checks, drain, force, reload.
//
// Why a dup() of one socket and not SO_REUSEPORT: the socket is bound once,
// so a port in use fails at start-up as with one loop and `--port 0` needs no
// second bind to the port the kernel picked; no other process of the same
// user can bind the port beside us and silently take a share of the
// clients; and a loop that closes its handle at shutdown drops nothing,
// since the accept queue is the one socket's, still served by the others
// until the last handle closes (each SO_REUSEPORT socket has its own queue,
// whose pending clients are reset when it closes). The price is that every
// loop wakes for each new client and one wins accept(2) (the others get
// EAGAIN, which libuv ignores): cheap with few loops and keep-alive clients.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "fsrv/app/serve.hpp"
#include "fsrv/core/log.hpp"
#include "fsrv/core/service_manager.hpp"
#include "fsrv/core/version.hpp"
#include "fsrv/reactor/lifecycle.hpp"
#include "fsrv/runtime/runtime.hpp"
#include "fsrv/stats/prometheus.hpp"

namespace fsrv::app {

namespace {

/// What loop 0 tells another loop.
struct Command {
  enum class Kind {
    kHealthFailing,  ///< the drain delay began: /healthz answers 503
    kShutdown,       ///< drain and stop
    kForce,          ///< close every connection now
    kReload,         ///< SIGHUP: users, TLS pair, and `fresh` if it read
  };
  Kind kind;
  std::shared_ptr<const ServerConfig> fresh;  ///< kReload: null if the file did not read
  int max_conns = 0;                          ///< kReload with `fresh`: the new --max-conns
};

/// A uv_async_t plus the commands queued for its loop. The queue and the
/// open flag are guarded by a mutex, which is also what orders a command's
/// data before the loop reads it (TSan sees the mutex, not libuv's eventfd).
class Mailbox {
 public:
  Mailbox() = default;
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  /// Opens the handle on `loop`; `on_commands` runs on that loop with each
  /// batch taken from the queue.
  void open(uv_loop_t* loop, std::function<void(std::vector<Command>&)> on_commands) {
    on_commands_ = std::move(on_commands);
    async_.data = this;
    uv_async_init(loop, &async_, [](uv_async_t* a) {
      auto* self = static_cast<Mailbox*>(a->data);
      std::vector<Command> batch;
      {
        std::lock_guard<std::mutex> lock(self->mutex_);
        batch.swap(self->queue_);
      }
      if (self->on_commands_) self->on_commands_(batch);
    });
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
  }
  /// Queues `command` and wakes the loop (any thread); dropped once the
  /// handle is closed.
  void post(Command command) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!open_) return;
    queue_.push_back(std::move(command));
    uv_async_send(&async_);
  }
  /// Closes the handle (its loop's thread; idempotent). The object must
  /// outlive the loop run that processes the close.
  void close() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!open_) return;
    open_ = false;
    queue_.clear();
    uv_close(reinterpret_cast<uv_handle_t*>(&async_), [](uv_handle_t*) {});
  }

 private:
  uv_async_t async_;
  std::function<void(std::vector<Command>&)> on_commands_;
  std::mutex mutex_;
  std::vector<Command> queue_;  ///< guarded by mutex_
  bool open_ = false;           ///< guarded by mutex_
};

/// One of loops 1..N-1: everything it owns, built on the main thread before
/// its thread starts (the thread's creation orders those writes before the
/// loop runs) and destroyed after the thread is joined.
struct ExtraLoop {
  int index = 0;
  uv_loop_t loop;
  std::unique_ptr<reactor::ThreadPoolExecutor> executor;
  std::unique_ptr<runtime::ServingProcess> server;
  std::vector<std::unique_ptr<reactor::Listener>> listeners;
  std::unique_ptr<reactor::Lifecycle> life;
  Mailbox mailbox;
  std::thread thread;
};

/// Connections open on every loop: each slot's gauge.
int64_t open_connections(const stats::StatsTable& table) {
  int64_t n = 0;
  for (int i = 0; i < table.size(); ++i) n += table.slot(i).conns_active.load();
  return n;
}

/// Applies one command from loop 0 on loop `x` (its thread).
void run_command(ExtraLoop& x, const Command& c) {
  switch (c.kind) {
    case Command::Kind::kHealthFailing:
      x.server->reactor().health_failing = true;
      break;
    case Command::Kind::kShutdown:
      x.life->shutdown("loop " + std::to_string(x.index) + ": the main loop stops");
      break;
    case Command::Kind::kForce:
      if (x.life->stopping()) x.life->force();
      break;
    case Command::Kind::kReload:
      x.server->reload_users();
      x.server->reload_tls();
      if (c.fresh) {
        x.server->apply_live(*c.fresh);
        x.server->reactor().max_conns = c.max_conns;
      }
      break;
  }
}

}  // namespace

int serve_thread_mode(const ServerConfig& config) {
  // libuv reads UV_THREADPOOL_SIZE once, at the first work item: set it first.
  reactor::ThreadPoolExecutor::set_pool_size(config.workers);
  signal(SIGPIPE, SIG_IGN);
  auto resolved = runtime::resolve_listeners(runtime::listeners_of(config));
  if (!resolved.ok()) {
    FSRV_LOG_ERROR("%s", resolved.error.c_str());
    return kExitConfig;
  }
  const std::vector<services::Listening>& specs = resolved.value;
  const int loops = std::max(1, config.loops);
  stats::Schema schema;
  runtime::register_stats(specs, schema);
  stats::StatsTable table(loops, false, schema);
  for (int i = 0; i < loops; ++i) table.slot(i).pid = getpid();

  // A copy: main's SIGHUP source re-reads the configuration into the
  // object `config` refers to (on loop 0), while every loop renders STATS.
  const int pool_size = config.workers;
  auto started = std::chrono::steady_clock::now();
  auto stats_json = [&table, started, pool_size] {
    double up = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return table.to_json("thread", pool_size, up, table.size());
  };
  auto metrics = [&table, &schema, started] {
    double up = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return stats::render_prometheus(table, schema, {version(), git_commit(), "thread"}, up);
  };

  uv_loop_t loop;
  uv_loop_init(&loop);
  reactor::ThreadPoolExecutor executor(&loop);
  runtime::ServingProcess server(&loop, config, specs, schema, table.slot(0), executor, stats_json);
  server.set_metrics(metrics);
  const int fd_cap = runtime::raise_fd_limit();
  // One process: the descriptor limit is shared by every loop.
  server.reactor().max_conns = runtime::effective_max_conns(config.max_conns, fd_cap, 1);
  runtime::configure_limits(server.reactor(), specs, config, server.reactor().max_conns, schema,
                            table.slot(0));

  std::vector<std::unique_ptr<reactor::Listener>> listeners;
  Status s = runtime::listen_all(&loop, specs, listeners, [&](reactor::Listener& l) {
    reactor::accept_connection(server.reactor(), l.stream(),
                               server.factory(static_cast<size_t>(l.index())), l.index());
  });

  // Loops 1..N-1: built here, started once the signals are blocked.
  std::vector<std::unique_ptr<ExtraLoop>> extra;
  for (int i = 1; i < loops && s.ok(); ++i) {
    auto x = std::make_unique<ExtraLoop>();
    ExtraLoop& xr = *x;
    xr.index = i;
    uv_loop_init(&xr.loop);
    xr.executor = std::make_unique<reactor::ThreadPoolExecutor>(&xr.loop);
    xr.server = std::make_unique<runtime::ServingProcess>(&xr.loop, config, specs, schema,
                                                          table.slot(i), *xr.executor, stats_json);
    xr.server->set_metrics(metrics);
    reactor::Reactor& r = xr.server->reactor();
    r.max_conns = server.reactor().max_conns;
    r.shared_limits = &server.reactor().limits;
    extra.push_back(std::move(x));
    for (const auto& bound : listeners) {
      xr.listeners.push_back(std::make_unique<reactor::Listener>(
          &xr.loop, bound->index(), bound->service(), bound->endpoint()));
      int rc = xr.listeners.back()->listen_shared(*bound, [&xr](reactor::Listener& l) {
        reactor::accept_connection(xr.server->reactor(), l.stream(),
                                   xr.server->factory(static_cast<size_t>(l.index())), l.index());
      });
      if (rc < 0) {
        s = Status::failure(Errc::kIo, "loop " + std::to_string(i) + ": cannot listen " +
                                           bound->service() + " on " + bound->endpoint().text() +
                                           ": " + uv_strerror(rc));
        break;
      }
    }
  }
  // Connections open in the whole process, for each loop's --max-conns
  // check (the shared table's admit() is the exact one).
  if (loops > 1) {
    server.reactor().active_connections = [&table] { return open_connections(table); };
    for (auto& x : extra) {
      x->server->reactor().active_connections = [&table] { return open_connections(table); };
    }
  }

  std::vector<std::unique_ptr<reactor::DatagramListener>> datagrams;
  if (s.ok()) {
    s = runtime::listen_datagrams(
        &loop, specs, datagrams, [&](size_t i) -> auto& { return server.datagram_handler(i); });
  }
  if (!s.ok()) {
    FSRV_LOG_ERROR("%s", s.error.c_str());
    for (auto& l : listeners) l->close();
    for (auto& x : extra) {
      for (auto& l : x->listeners) l->close();
      uv_run(&x->loop, UV_RUN_DEFAULT);
      uv_loop_close(&x->loop);
    }
    uv_run(&loop, UV_RUN_DEFAULT);  // run the listeners' close callbacks
    uv_loop_close(&loop);
    return kExitConfig;
  }
  FSRV_LOG_INFO("serving %s in thread mode with %d pool threads and %d loop(s)",
                config.root.c_str(), config.workers, loops);

  // Loops 1..N-1 report here when they are done; loop 0 finishes after them.
  std::mutex done_mutex;
  int running = 0;  ///< extra loops not finished; guarded by done_mutex
  Mailbox done;     ///< loop 0's: an extra loop finished
  auto post_all = [&extra](Command::Kind kind, std::shared_ptr<const ServerConfig> fresh = nullptr,
                           int max_conns = 0) {
    for (auto& x : extra) x->mailbox.post({kind, fresh, max_conns});
  };

  reactor::Lifecycle::Hooks hooks;
  hooks.stop_accepting = [&] {
    for (auto& l : listeners) l->close();
    for (auto& d : datagrams) d->close();
    post_all(Command::Kind::kShutdown);
  };
  hooks.force = [&] { post_all(Command::Kind::kForce); };
  hooks.busy = [&] {
    std::lock_guard<std::mutex> lock(done_mutex);
    return running > 0;
  };
  hooks.on_stopped = [&] {
    executor.close();
    done.close();
  };
  hooks.stats_line = [&table, pool_size] { return table.to_line("thread", pool_size); };
  hooks.on_reload = [&server, &specs, fd_cap, &post_all] {  // SIGHUP
    service_manager::notify_reloading();
    ServerConfig fresh;
    std::vector<std::string> restart;
    std::string why = runtime::reload_config(server.config(), fresh, restart);
    server.reload_users();  // with or without --config
    server.reload_tls();
    if (why.empty()) {
      server.apply_live(fresh);
      // The one table every loop admits against.
      server.reactor().max_conns = runtime::effective_max_conns(fresh.max_conns, fd_cap, 1);
      runtime::replan_limits(server.reactor(), specs, fresh, server.reactor().max_conns);
    }
    post_all(Command::Kind::kReload,
             why.empty() ? std::make_shared<const ServerConfig>(fresh) : nullptr,
             server.reactor().max_conns);
    runtime::report_reload(why, restart, fresh);
  };
  server.join_shutdown(hooks);  // UDP transfers get the grace too
  reactor::Lifecycle life(server.reactor(), std::move(hooks), config.grace_s);
  server.notify_work_done(life);
  life.set_drain_delay(config.drain_delay_s,
                       [&post_all] { post_all(Command::Kind::kHealthFailing); });
  // Blocks the signals in this thread, so in every loop thread started below.
  life.watch_signals();
  life.print_stats_every(config.stats_interval_s);

  done.open(&loop, [&life](std::vector<Command>&) { life.check_done(); });
  for (auto& x : extra) {
    ExtraLoop& xr = *x;
    reactor::Lifecycle::Hooks h;
    h.stop_accepting = [&xr] {
      for (auto& l : xr.listeners) l->close();
    };
    h.on_stopped = [&xr, &done_mutex, &running, &done] {
      xr.executor->close();
      xr.mailbox.close();
      std::lock_guard<std::mutex> lock(done_mutex);
      --running;
      done.post({Command::Kind::kShutdown, nullptr, 0});  // wakes loop 0's check_done
    };
    xr.server->join_shutdown(h);
    xr.life =
        std::make_unique<reactor::Lifecycle>(xr.server->reactor(), std::move(h), config.grace_s);
    xr.server->notify_work_done(*xr.life);
    xr.mailbox.open(&xr.loop, [&xr](std::vector<Command>& batch) {
      for (const Command& c : batch) run_command(xr, c);
    });
    {
      std::lock_guard<std::mutex> lock(done_mutex);
      ++running;
    }
    xr.thread = std::thread([&xr] { uv_run(&xr.loop, UV_RUN_DEFAULT); });
  }
  // Ready (the listening lines, READY=1) only once SIGTERM is handled.
  runtime::print_listening(listeners, datagrams, specs);

  uv_run(&loop, UV_RUN_DEFAULT);
  for (auto& x : extra) {
    x->thread.join();
    int rc = uv_loop_close(&x->loop);
    if (rc != 0) FSRV_LOG_WARN("loop %d closed with handles left: %s", x->index, uv_strerror(rc));
  }
  int rc = uv_loop_close(&loop);
  if (rc != 0) FSRV_LOG_WARN("loop closed with handles left: %s", uv_strerror(rc));
  return 0;
}

}  // namespace fsrv::app
