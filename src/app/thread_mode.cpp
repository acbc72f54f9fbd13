#include <csignal>
#include <cstdio>

#include "fsrv/app/serve.hpp"
#include "fsrv/core/log.hpp"
#include "fsrv/protocol/file_session.hpp"
#include "fsrv/stats/stats.hpp"
#include "fsrv/storage/storage.hpp"

namespace fsrv::app {

int serve_thread_mode(const ServerConfig& config) {
  // libuv reads UV_THREADPOOL_SIZE once, at the first work item: set it first.
  reactor::ThreadPoolExecutor::set_pool_size(config.workers);
  signal(SIGPIPE, SIG_IGN);

  std::string error;
  std::unique_ptr<storage::Root> root = storage::Root::open(config.root, &error);
  if (!root) {
    FSRV_LOG_ERROR("%s", error.c_str());
    return 1;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  stats::StatsTable table(1, false);
  table.slot(0).pid = getpid();
  reactor::ThreadPoolExecutor executor(&loop);

  reactor::ServerContext ctx;
  ctx.loop = &loop;
  ctx.config = &config;
  ctx.root = root.get();
  ctx.executor = &executor;
  ctx.stats = &table.slot(0);
  ctx.make_handler = [](reactor::Connection& c) { return protocol::make_file_session(c); };
  ctx.stats_json = [&] {
    double up =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - ctx.started).count();
    return table.to_json("thread", config.workers, up, table.size());
  };

  uv_tcp_t listener;
  int port = reactor::listen_tcp(ctx, &listener, config.host, config.port);
  if (port < 0) {
    FSRV_LOG_ERROR("cannot listen on %s:%d: %s", config.host.c_str(), config.port,
                   uv_strerror(port));
    uv_close(reinterpret_cast<uv_handle_t*>(&listener), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 1;
  }
  printf("listening on %s:%d\n", config.host.c_str(), port);
  fflush(stdout);
  FSRV_LOG_INFO("serving %s in thread mode with %d pool threads", config.root.c_str(),
                config.workers);

  Lifecycle life(
      ctx, [&] { uv_close(reinterpret_cast<uv_handle_t*>(&listener), nullptr); }, nullptr);
  life.watch_signals();
  life.print_stats_every(config.stats_interval_s,
                         [&] { return table.to_line("thread", config.workers); });

  uv_run(&loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&loop);
  if (rc != 0) FSRV_LOG_WARN("loop closed with handles left: %s", uv_strerror(rc));
  return 0;
}

}  // namespace fsrv::app
