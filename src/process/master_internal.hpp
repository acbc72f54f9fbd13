#pragma once
// The prefork master's private parts, shared by its two files: master.cpp
// (workers: fork, exit, respawn, the loop, shutdown) and master_pass.cpp
// (connections: accept, admission, fd passing, and the live table the
// workers' connection-gone messages keep true). Not a public header.

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fsrv/core/service_manager.hpp"
#include "fsrv/process/channel.hpp"
#include "fsrv/process/prefork.hpp"
#include "fsrv/reactor/lifecycle.hpp"
#include "fsrv/reactor/listener.hpp"
#include "fsrv/reactor/reactor.hpp"
#include "fsrv/runtime/runtime.hpp"

namespace fsrv::process::master_detail {

/// A worker restarted sooner than this after its previous start waits this
/// long before the next fork, so a crash loop cannot become a fork bomb;
/// well under the one second a replacement must appear in.
constexpr uint64_t kRespawnBackoffMs = 200;

/// Extra time, after the workers' own grace period, before stragglers get
/// SIGKILL.
constexpr double kKillMarginS = 2.0;

/// A worker's exit status for a set-up failure a restart would not change
/// (worker.cpp's kExitNoRestart): the server stops instead of re-forking.
constexpr int kWorkerExitNoRestart = 3;

inline double now_unix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class Master;

/// One connection a worker holds or is being passed, as the master's
/// limits counted it: its listener and its client's address key. The
/// connection's tag is its index in Master::passed_ plus one. 24 bytes, so
/// the master's bookkeeping stays small beside the workers' connections.
struct LiveEntry {
  int32_t listener = -1;  ///< in use: the listener; free: the next free index, or -1
  uint16_t slot = 0;      ///< the worker slot (1..N) holding it; 0 = free
  uint8_t peer_len = 0;   ///< bytes of `peer` in use (0, 4 or 16)
  uint8_t peer[16] = {};  ///< reactor::peer_key's bytes
  std::string key() const { return std::string(reinterpret_cast<const char*>(peer), peer_len); }
};
static_assert(sizeof(LiveEntry) == 24, "one live connection costs the master 24 bytes");

/// The master's view of one worker: its process and its IPC pipe.
struct WorkerHandle {
  Master* master = nullptr;
  int slot = 0;  ///< stats slot (1..N)
  pid_t pid = -1;
  uv_pipe_t pipe;
  bool pipe_open = false;   ///< open and usable for passing sockets
  bool pipe_closed = true;  ///< its close callback ran: the memory may be re-initialised
  /// Sockets sent to this slot's workers since start. Those not yet taken
  /// (sent - received()) still count as load: the master may learn that a
  /// socket went only after the worker already served the client.
  uint64_t sent = 0;
  /// Passes queued in libuv (uv_write2) because the channel was full:
  /// while any is, later ones queue behind them to keep the order.
  uint32_t queued = 0;
  std::chrono::steady_clock::time_point started;
  uv_timer_t respawn_timer;
  std::string inbox;  ///< channel bytes from the worker not yet parsed
  /// The worker's end of the channel, which the master keeps open too: a
  /// worker that dies leaves the passes it had not read in it (no EOF, no
  /// EPIPE: the socket pair lives on), and Master::rescue reads them back
  /// and passes those clients again. -1 when closed.
  int worker_end = -1;
};

/// Closes a worker's channel (idempotent); pipe_closed flips in the close
/// callback, and only then may fork_worker re-initialise the handle.
inline void close_pipe(WorkerHandle& w) {
  if (!w.pipe_open) return;
  w.pipe_open = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&w.pipe),
           [](uv_handle_t* h) { static_cast<WorkerHandle*>(h->data)->pipe_closed = true; });
}

/// A socket passed through libuv when the channel was full: the write2
/// request, the channel message and the master's copy of the client
/// socket wrapped for uv_write2, closed in the write callback (libuv
/// pitfall 1) and freed in the close callback.
struct PassReq {
  WorkerHandle* worker;
  uv_write_t req;
  uv_tcp_t client;
  ChannelMsg msg;
};

/// SO_SNDBUF of the master's end of each channel, bytes.
constexpr int kChannelSendBuffer = 1 << 20;

/// Out of descriptors at accept: the listener rests this long before it
/// is polled again (the clients wait in its backlog meanwhile).
constexpr uint64_t kAcceptPauseMs = 100;
/// Connections the master takes per wake-up of a listener's poll: enough
/// that a burst costs one epoll wake-up per several clients, few enough
/// that one busy listener cannot keep the others (or the workers'
/// channels) waiting long (nginx's multi_accept takes all; libuv's
/// uv__server_io likewise loops until EAGAIN).
constexpr int kAcceptBatch = 16;

/// How a pass of a client socket to a worker ended (Master::pass).
enum class PassResult {
  kPassed,       ///< the worker has it (or libuv's queue does)
  kChannelGone,  ///< the channel failed (EPIPE, ECONNRESET): not expected while the
                 ///< master keeps the worker's end open, handled all the same
  kFailed,       ///< another error; the socket was not passed
};

class Master {
 public:
  explicit Master(const ServerConfig& config) : config_(config), workers_(config.workers) {}

  int run();

 private:
  bool fork_worker(WorkerHandle& w);
  void on_connection(reactor::Listener& l);
  bool accept_one(reactor::Listener& l);
  void admit(reactor::Listener& l, int fd, const sockaddr_storage& addr);
  PassResult pass(WorkerHandle& w, int fd, const ChannelMsg& msg);
  static void on_queued_pass_written(uv_write_t* req, int status);
  bool hand_over(int listener, int fd, const std::string& peer);
  std::string busy_reply(int listener, int limit) const;
  void rescue(WorkerHandle& w);
  void pass_again(int listener, int fd, const std::string& peer);
  void close_kept();
  WorkerHandle* least_loaded();
  uint32_t add_live(int listener, int slot, const std::string& peer);
  void remove_live(uint32_t index);
  void on_worker_exit(pid_t pid, int status);
  static void on_respawn_timer(uv_timer_t* t);
  void on_sigchld();
  int64_t active_connections() const;
  int64_t load(const WorkerHandle& w) const;
  uint64_t received(const WorkerHandle& w) const;
  bool any_worker_alive() const;
  void close_handles();
  void on_worker_bytes(WorkerHandle& w, std::string_view bytes);
  void release_all(WorkerHandle& w);

  const ServerConfig& config_;
  ServerConfig live_ = config_;  ///< as last (re)loaded: what SIGHUP compares with
  /// Every listener with its service (runtime::resolve_listeners, in run()),
  /// by listener index: on_connection words refusals from it, and the
  /// workers inherit it at fork.
  std::vector<services::Listening> specs_;
  stats::Schema schema_;
  std::unique_ptr<stats::StatsTable> table_;
  std::vector<WorkerHandle> workers_;
  double started_unix_ = now_unix();
  uv_loop_t loop_;
  std::vector<std::unique_ptr<reactor::Listener>> listeners_;
  /// UDP sockets, bound only: worker slot 1 receives on them.
  std::vector<std::unique_ptr<reactor::DatagramListener>> datagrams_;
  std::unique_ptr<reactor::Lifecycle> life_;
  bool workers_told_ = false;  ///< SIGTERM sent to the workers at the drain delay's start
  reactor::Reactor reactor_;   ///< the master's own connections: refusals only
  bool stopping_ = false;
  int max_conns_ = 0;
  size_t next_ = 0;
  /// Every connection passed and not yet reported gone, by tag - 1; free
  /// entries are chained from free_ (-1: none).
  std::vector<LiveEntry> passed_;
  int32_t free_ = -1;
  /// Sockets rescued from a dead worker when no worker could take them:
  /// (listener, fd, peer key), passed when the next worker is forked.
  struct Parked {
    int listener;
    int fd;
    std::string peer;
  };
  std::vector<Parked> parked_;
};

}  // namespace fsrv::process::master_detail
