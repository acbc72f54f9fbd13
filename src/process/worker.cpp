#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "fsrv/core/log.hpp"
#include "fsrv/core/version.hpp"
#include "fsrv/process/channel.hpp"
#include "fsrv/process/prefork.hpp"
#include "fsrv/reactor/datagram.hpp"
#include "fsrv/reactor/executor.hpp"
#include "fsrv/reactor/lifecycle.hpp"
#include "fsrv/runtime/runtime.hpp"
#include "fsrv/stats/prometheus.hpp"

namespace fsrv::process {

/// Extra drain delay of a worker over the master's, in seconds: the master
/// stops passing sockets before the worker stops taking them.
constexpr double kWorkerDrainMarginS = 0.3;

namespace {

/// The worker's end of the channel after fork: a fixed low descriptor so
/// everything above it can be closed in one call.
constexpr int kChannelFd = 3;
/// Exit status of a worker that cannot set itself up for a reason a restart
/// would not change (the master then stops instead of forking in a loop).
constexpr int kExitNoRestart = 3;

double now_unix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// Worker state living on the heap for the whole process (we _exit).
struct Worker {
  uv_loop_t loop;
  uv_pipe_t channel;
  std::unique_ptr<runtime::ServingProcess> server;
  std::unique_ptr<reactor::Lifecycle> life;
  std::string inbox;  ///< channel bytes not yet parsed into messages
  /// The UDP sockets this worker receives on (slot 1 only).
  std::vector<std::unique_ptr<reactor::DatagramListener>> datagrams;
  int listeners = 0;
  bool channel_open = true;
  /// kConnectionGone messages of this loop turn, sent together before the
  /// next poll (one write for all the connections that closed meanwhile).
  std::vector<ChannelMsg> gone;
  uv_prepare_t flush_gone;
  /// Gone bytes queued in libuv because the channel was full: later ones
  /// queue behind them to keep the order.
  uint32_t gone_queued = 0;

  /// Sends the collected kConnectionGone messages: one write(2) straight to
  /// the channel, or libuv's queue for what the channel could not take.
  void send_gone() {
    uv_prepare_stop(&flush_gone);
    if (gone.empty() || !channel_open) {
      gone.clear();
      return;
    }
    const char* bytes = reinterpret_cast<const char*>(gone.data());
    size_t size = gone.size() * sizeof(ChannelMsg);
    size_t done = 0;
    if (gone_queued == 0) {
      uv_os_fd_t fd = -1;
      uv_fileno(reinterpret_cast<const uv_handle_t*>(&channel), &fd);
      ssize_t n;
      do {
        n = ::write(fd, bytes, size);
      } while (n < 0 && errno == EINTR);
      if (n > 0) done = static_cast<size_t>(n);
    }
    if (done < size) {
      struct GoneReq {
        uv_write_t req;
        Worker* worker;
        std::string bytes;
      };
      auto* g = new GoneReq{{}, this, std::string(bytes + done, size - done)};
      g->req.data = g;
      uv_buf_t buf = uv_buf_init(g->bytes.data(), static_cast<unsigned>(g->bytes.size()));
      ++gone_queued;
      if (uv_write(&g->req, reinterpret_cast<uv_stream_t*>(&channel), &buf, 1,
                   [](uv_write_t* r, int) {
                     auto* q = static_cast<GoneReq*>(r->data);
                     --q->worker->gone_queued;
                     delete q;
                   }) != 0) {
        --gone_queued;
        delete g;
      }
    }
    gone.clear();
  }

  void close_channel() {
    if (!channel_open) return;
    send_gone();
    channel_open = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&flush_gone), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&channel), nullptr);
  }

  // One message per passed socket, in order: validate it and accept the
  // socket for its listener's service with the client address the master
  // sent; an invalid one is logged and its socket closed. Only the master
  // writes to this channel and it passes TCP sockets alone, so the
  // socket's type is not asked again (uv_pipe_pending_type costs four
  // syscalls per socket).
  void take_messages(uv_pipe_t* pipe) {
    while (inbox.size() >= sizeof(ChannelMsg) && uv_pipe_pending_count(pipe) > 0) {
      auto msg =
          parse_channel_msg(std::string_view(inbox).substr(0, sizeof(ChannelMsg)), listeners);
      inbox.erase(0, sizeof(ChannelMsg));
      auto* s = reinterpret_cast<uv_stream_t*>(pipe);
      if (!msg) {
        FSRV_LOG_WARN("worker: invalid message on the channel: socket dropped");
        reactor::refuse_connection(server->reactor(), s, "", msg ? msg->listener : -1,
                                   msg ? msg->tag : 0);
        continue;
      }
      std::string peer = msg->peer_key();
      reactor::accept_connection(server->reactor(), s,
                                 server->factory(static_cast<size_t>(msg->listener)), msg->listener,
                                 msg->tag, &peer);
    }
  }
};

}  // namespace

void worker_main(const ServerConfig& config, const std::vector<services::Listening>& specs,
                 const stats::Schema& schema, stats::StatsTable& table, int slot, int channel_fd,
                 pid_t master_pid, double started_unix,
                 const std::vector<std::pair<int, int>>& datagrams) {
  // 1. A clean slate: keep stdio, the channel and our UDP sockets (moved to
  //    kChannelFd + 1...), drop everything inherited from the master
  //    (listeners, other workers' channels, its loop's fds). The UDP fds go
  //    above every low fd first so the dup2s below cannot clobber them.
  //    The copies go to the lowest free descriptors above every target
  //    (kChannelFd and the UDP slots after it), whatever RLIMIT_NOFILE is.
  std::vector<int> high;
  const int above = kChannelFd + 1 + static_cast<int>(datagrams.size());
  for (const auto& d : datagrams) {
    int fd = fcntl(d.second, F_DUPFD, above);
    if (fd < 0) {
      FSRV_LOG_ERROR("worker %d: cannot move a UDP socket (fcntl F_DUPFD %d): %s", slot, above,
                     strerror(errno));
      _exit(kExitNoRestart);
    }
    high.push_back(fd);
  }
  if (channel_fd != kChannelFd) dup2(channel_fd, kChannelFd);
  for (size_t k = 0; k < high.size(); ++k) dup2(high[k], kChannelFd + 1 + static_cast<int>(k));
  close_range(kChannelFd + 1 + static_cast<unsigned>(high.size()), ~0U, 0);
  log::reopen_files(/*inherited_closed=*/true);  // the access log's fd went above
  // 2. Die with the master: the channel's EOF also tells us, this is belt
  //    and braces for a master that is SIGKILLed before we set up.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != master_pid) _exit(0);
  stats::StatsSlot& my = table.slot(slot);
  my.pid = getpid();
  my.conns_active = 0;

  auto* w = new Worker;  // leaked on purpose: we _exit
  uv_loop_init(&w->loop);
  reactor::InlineExecutor executor(&w->loop);
  w->listeners = static_cast<int>(specs.size());
  try {
    w->server = std::make_unique<runtime::ServingProcess>(
        &w->loop, config, specs, schema, my, executor, [&table, &config, started_unix] {
          return table.to_json("process", config.workers, now_unix() - started_unix, 1);
        });
  } catch (const std::exception& e) {
    FSRV_LOG_ERROR("worker %d: %s", slot, e.what());
    _exit(1);
  }
  for (size_t k = 0; k < datagrams.size(); ++k) {
    auto index = static_cast<size_t>(datagrams[k].first);
    const ListenSpec& spec = specs[index].spec;
    w->datagrams.push_back(std::make_unique<reactor::DatagramListener>(
        &w->loop, static_cast<int>(index), spec.service, spec.endpoint));
    int rc = w->datagrams.back()->adopt(kChannelFd + 1 + static_cast<int>(k));
    if (rc >= 0) rc = w->datagrams.back()->start(w->server->datagram_handler(index));
    if (rc < 0) {
      FSRV_LOG_ERROR("worker %d: %s: %s", slot, spec.service.c_str(), uv_strerror(rc));
      _exit(1);
    }
  }
  w->server->set_metrics([&table, &schema, started_unix] {
    return stats::render_prometheus(table, schema, {version(), git_commit(), "process"},
                                    now_unix() - started_unix);
  });
  // The master enforces --max-conns, the listeners' shares and the
  // per-address cap before passing a socket; it learns here when each
  // connection is gone.
  w->server->reactor().active_connections = [] { return int64_t{0}; };
  // The master's listeners set TCP_NODELAY, which the sockets inherit.
  w->server->reactor().nodelay_inherited = true;
  uv_prepare_init(&w->loop, &w->flush_gone);
  w->flush_gone.data = w;
  w->server->reactor().on_tagged_gone = [w](int listener, uint32_t tag) {
    if (!w->channel_open) return;
    ChannelMsg m;
    m.command = ChannelMsg::kConnectionGone;
    m.listener = listener;
    m.tag = tag;
    w->gone.push_back(m);
    // Connections close in close callbacks, after this turn's poll: the
    // prepare phase before the next poll sends them all at once.
    if (w->gone.size() == 1) {
      uv_prepare_start(&w->flush_gone,
                       [](uv_prepare_t* p) { static_cast<Worker*>(p->data)->send_gone(); });
    }
  };

  uv_pipe_init(&w->loop, &w->channel, 1);
  w->channel.data = w;
  uv_pipe_open(&w->channel, kChannelFd);

  reactor::Lifecycle::Hooks hooks;
  hooks.stop_accepting = [w] {
    w->close_channel();
    for (auto& d : w->datagrams) d->close();
  };
  hooks.on_stopped = [&executor] { executor.close(); };
  hooks.on_reload = [w] {  // SIGHUP from the master: the live settings
    ServerConfig fresh;
    std::vector<std::string> restart;
    if (runtime::reload_config(w->server->config(), fresh, restart).empty()) {
      w->server->apply_live(fresh);
    }
    w->server->reload_users();  // with or without --config
    w->server->reload_tls();
  };
  w->server->join_shutdown(hooks);  // UDP transfers get the grace too
  w->life =
      std::make_unique<reactor::Lifecycle>(w->server->reactor(), std::move(hooks), config.grace_s);
  w->server->notify_work_done(*w->life);
  // Its channel closes a little after the master's listeners (master.cpp).
  if (config.drain_delay_s > 0)
    w->life->set_drain_delay(config.drain_delay_s + kWorkerDrainMarginS);

  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&w->channel),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        static char bytes[256];
        *buf = uv_buf_init(bytes, sizeof bytes);
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
        auto* wk = static_cast<Worker*>(s->data);
        if (nread > 0) wk->inbox.append(buf->base, static_cast<size_t>(nread));
        wk->take_messages(reinterpret_cast<uv_pipe_t*>(s));
        if (nread < 0) {
          // The master is gone or stopping: finish in-flight work and exit.
          wk->life->shutdown("channel closed");
        }
      });

  // SIGTERM/SIGINT through the worker's own signalfd (inherited blocked
  // from the master); the same signal twice closes everything.
  w->life->watch_signals();

  FSRV_LOG_DEBUG("worker %d up (pid %d)", slot, static_cast<int>(getpid()));
  uv_run(&w->loop, UV_RUN_DEFAULT);
  my.conns_active = 0;
  fflush(stdout);
  fflush(stderr);
  _exit(0);
}

}  // namespace fsrv::process
