#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>

#include "fsrv/app/serve.hpp"
#include "fsrv/core/log.hpp"
#include "fsrv/process/prefork.hpp"
#include "fsrv/protocol/file_session.hpp"
#include "fsrv/reactor/executor.hpp"
#include "fsrv/storage/storage.hpp"

namespace fsrv::process {

namespace {

/// The worker's end of the channel after fork: a fixed low descriptor so
/// everything above it can be closed in one call.
constexpr int kChannelFd = 3;

double now_unix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// Worker state living on the worker's stack.
struct Worker {
  uv_loop_t loop;
  uv_pipe_t channel;
  std::unique_ptr<app::Lifecycle> life;
  reactor::ServerContext ctx;
  bool channel_open = true;

  void close_channel() {
    if (!channel_open) return;
    channel_open = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&channel), nullptr);
  }
};

}  // namespace

void worker_main(const ServerConfig& config, stats::StatsTable& table, int slot, int channel_fd,
                 pid_t master_pid, double started_unix) {
  // 1. A clean slate: keep stdio and the channel, drop everything inherited
  //    from the master (listener, other workers' channels, its loop's fds).
  if (channel_fd != kChannelFd) {
    dup2(channel_fd, kChannelFd);
  }
  close_range(kChannelFd + 1, ~0U, 0);
  // 2. Die with the master: the channel's EOF also tells us, this is belt
  //    and braces for a master that is SIGKILLed before we set up.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != master_pid) _exit(0);
  stats::StatsSlot& my = table.slot(slot);
  my.pid = getpid();
  my.conns_active = 0;

  std::string error;
  std::unique_ptr<storage::Root> root = storage::Root::open(config.root, &error);
  if (!root) {
    FSRV_LOG_ERROR("worker %d: %s", slot, error.c_str());
    _exit(1);
  }

  auto* w = new Worker;  // leaked on purpose: we _exit
  uv_loop_init(&w->loop);
  reactor::InlineExecutor executor(&w->loop);
  reactor::ServerContext& ctx = w->ctx;
  ctx.loop = &w->loop;
  ctx.config = &config;
  ctx.root = root.get();
  ctx.executor = &executor;
  ctx.stats = &my;
  ctx.make_handler = [](reactor::Connection& c) { return protocol::make_file_session(c); };
  ctx.stats_json = [&table, &config, started_unix] {
    return table.to_json("process", config.workers, now_unix() - started_unix, 1);
  };
  // The master enforces --max-conns before passing a socket.
  ctx.active_connections = [] { return int64_t{0}; };

  uv_pipe_init(&w->loop, &w->channel, 1);
  w->channel.data = w;
  uv_pipe_open(&w->channel, kChannelFd);

  w->life = std::make_unique<app::Lifecycle>(
      ctx, [w] { w->close_channel(); }, nullptr);

  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&w->channel),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        static char byte[64];
        *buf = uv_buf_init(byte, sizeof byte);
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
        auto* wk = static_cast<Worker*>(s->data);
        auto* pipe = reinterpret_cast<uv_pipe_t*>(s);
        while (uv_pipe_pending_count(pipe) > 0) {
          if (uv_pipe_pending_type(pipe) != UV_TCP) {
            FSRV_LOG_WARN("worker: unexpected handle type on the channel");
            break;
          }
          reactor::accept_connection(wk->ctx, s);
        }
        if (nread < 0) {
          // The master is gone or stopping: finish in-flight work and exit.
          FSRV_LOG_INFO("worker: channel closed, draining");
          wk->life->shutdown();
        }
      });

  // SIGTERM/SIGINT through the worker's own signalfd (inherited blocked
  // from the master); a second one while draining closes everything.
  w->life->watch_signals();

  FSRV_LOG_DEBUG("worker %d up (pid %d)", slot, static_cast<int>(getpid()));
  uv_run(&w->loop, UV_RUN_DEFAULT);
  my.conns_active = 0;
  fflush(stdout);
  fflush(stderr);
  _exit(0);
}

}  // namespace fsrv::process
