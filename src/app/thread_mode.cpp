#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>

#include "fsrv/app/serve.hpp"
#include "fsrv/core/log.hpp"
#include "fsrv/core/service_manager.hpp"
#include "fsrv/core/version.hpp"
#include "fsrv/reactor/lifecycle.hpp"
#include "fsrv/runtime/runtime.hpp"
#include "fsrv/stats/prometheus.hpp"

namespace fsrv::app {

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
  stats::Schema schema;
  runtime::register_stats(specs, schema);
  stats::StatsTable table(1, false, schema);
  table.slot(0).pid = getpid();

  uv_loop_t loop;
  uv_loop_init(&loop);
  reactor::ThreadPoolExecutor executor(&loop);
  auto started = std::chrono::steady_clock::now();
  runtime::ServingProcess server(&loop, config, specs, schema, table.slot(0), executor, [&] {
    double up = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return table.to_json("thread", config.workers, up, table.size());
  });
  server.set_metrics([&] {
    double up = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return stats::render_prometheus(table, schema, {version(), git_commit(), "thread"}, up);
  });
  const int fd_cap = runtime::raise_fd_limit();
  server.reactor().max_conns = runtime::effective_max_conns(config.max_conns, fd_cap, 1);
  runtime::configure_limits(server.reactor(), specs, config, server.reactor().max_conns, schema,
                            table.slot(0));

  std::vector<std::unique_ptr<reactor::Listener>> listeners;
  Status s = runtime::listen_all(&loop, specs, listeners, [&](reactor::Listener& l) {
    reactor::accept_connection(server.reactor(), l.stream(),
                               server.factory(static_cast<size_t>(l.index())), l.index());
  });
  std::vector<std::unique_ptr<reactor::DatagramListener>> datagrams;
  if (s.ok()) {
    s = runtime::listen_datagrams(
        &loop, specs, datagrams, [&](size_t i) -> auto& { return server.datagram_handler(i); });
    if (!s.ok()) {
      for (auto& l : listeners) l->close();
    }
  }
  if (!s.ok()) {
    FSRV_LOG_ERROR("%s", s.error.c_str());
    uv_run(&loop, UV_RUN_DEFAULT);  // run the listeners' close callbacks
    uv_loop_close(&loop);
    return kExitConfig;
  }
  FSRV_LOG_INFO("serving %s in thread mode with %d pool threads", config.root.c_str(),
                config.workers);

  reactor::Lifecycle::Hooks hooks;
  hooks.stop_accepting = [&] {
    for (auto& l : listeners) l->close();
    for (auto& d : datagrams) d->close();
  };
  hooks.on_stopped = [&] { executor.close(); };
  hooks.stats_line = [&] { return table.to_line("thread", config.workers); };
  hooks.on_reload = [&server, &specs, fd_cap] {  // SIGHUP
    service_manager::notify_reloading();
    ServerConfig fresh;
    std::vector<std::string> restart;
    std::string why = runtime::reload_config(server.config(), fresh, restart);
    server.reload_users();  // with or without --config
    server.reload_tls();
    if (why.empty()) {
      server.apply_live(fresh);
      server.reactor().max_conns = runtime::effective_max_conns(fresh.max_conns, fd_cap, 1);
      runtime::replan_limits(server.reactor(), specs, fresh, server.reactor().max_conns);
    }
    runtime::report_reload(why, restart, fresh);
  };
  server.join_shutdown(hooks);  // UDP transfers get the grace too
  reactor::Lifecycle life(server.reactor(), std::move(hooks), config.grace_s);
  server.notify_work_done(life);
  life.set_drain_delay(config.drain_delay_s);
  life.watch_signals();
  life.print_stats_every(config.stats_interval_s);
  // Ready (the listening lines, READY=1) only once SIGTERM is handled.
  runtime::print_listening(listeners, datagrams, specs);

  uv_run(&loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&loop);
  if (rc != 0) FSRV_LOG_WARN("loop closed with handles left: %s", uv_strerror(rc));
  return 0;
}

}  // namespace fsrv::app
