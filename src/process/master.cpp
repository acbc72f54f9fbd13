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

namespace fsrv::process {

namespace {

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

double now_unix() {
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
};

/// Closes a worker's channel (idempotent); pipe_closed flips in the close
/// callback, and only then may fork_worker re-initialise the handle.
void close_pipe(WorkerHandle& w) {
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

class Master {
 public:
  explicit Master(const ServerConfig& config) : config_(config), workers_(config.workers) {}

  int run();

 private:
  bool fork_worker(WorkerHandle& w);
  void on_connection(reactor::Listener& l);
  bool pass(WorkerHandle& w, int fd, const ChannelMsg& msg);
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
};

// Records a connection passed to worker `slot`; returns its index (tag - 1).
uint32_t Master::add_live(int listener, int slot, const std::string& peer) {
  uint32_t at;
  if (free_ >= 0) {
    at = static_cast<uint32_t>(free_);
    free_ = passed_[at].listener;
  } else {
    at = static_cast<uint32_t>(passed_.size());
    passed_.emplace_back();
  }
  LiveEntry& e = passed_[at];
  e.listener = listener;
  e.slot = static_cast<uint16_t>(slot);
  e.peer_len = static_cast<uint8_t>(std::min(peer.size(), sizeof e.peer));
  std::memcpy(e.peer, peer.data(), e.peer_len);
  return at;
}

// The connection at `index` is gone: out of the limits, its entry free.
void Master::remove_live(uint32_t index) {
  LiveEntry& e = passed_[index];
  reactor_.limits.remove(e.listener, e.key());
  e.slot = 0;
  e.listener = free_;
  free_ = static_cast<int32_t>(index);
}

// Connections the workers hold plus those being passed to them.
int64_t Master::active_connections() const {
  int64_t n = 0;
  for (const WorkerHandle& w : workers_) n += load(w);
  return n;
}

// Connections a worker holds plus those sent to it and not yet taken.
int64_t Master::load(const WorkerHandle& w) const {
  const stats::StatsSlot& s = table_->slot(w.slot);
  return s.conns_active.load() + static_cast<int64_t>(w.sent - received(w));
}

// Sockets a slot's workers took from the channel (served or refused).
uint64_t Master::received(const WorkerHandle& w) const {
  const stats::StatsSlot& s = table_->slot(w.slot);
  return s.conns_total.load() + s.conns_rejected.load();
}

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
  close(sv[1]);
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
  return true;
}

// The listener has connections pending: take one (level-triggered, so
// the poll wakes again while more wait, with no failing accept4 to learn
// that the queue is empty), admit it and pass it to the least-loaded worker.
void Master::on_connection(reactor::Listener& l) {
  sockaddr_storage addr{};
  int fd = l.accept_socket(&addr);
  if (fd < 0) {
    if (fd == -EMFILE || fd == -ENFILE) {
      // The fd-derived connection cap keeps us from here; a listener that
      // stayed readable would otherwise spin the loop.
      FSRV_LOG_WARN("%s listener: %s: accepting again in %llu ms", l.service().c_str(),
                    strerror(-fd), static_cast<unsigned long long>(kAcceptPauseMs));
      l.pause_polling(kAcceptPauseMs);
    }
    return;  // EAGAIN (another wake-up took it), ECONNABORTED...
  }
  const services::Listening& listening = specs_[static_cast<size_t>(l.index())];
  // A TLS client could not read a clear-text busy reply: it is just closed.
  auto refusal = [&](int limit) {
    return listening.spec.tls ? std::string()
                              : listening.service->refusal(reactor::Refusal::kBusy, limit);
  };
  if (active_connections() + 1 > max_conns_) {
    if (reactor_.refusal_log.allow(uv_now(&loop_))) {
      FSRV_LOG_INFO(
          "refused a %s connection: --max-conns %d reached; %llu similar refusals "
          "suppressed",
          l.service().c_str(), max_conns_,
          static_cast<unsigned long long>(reactor_.refusal_log.take_suppressed()));
    }
    reactor::refuse_socket(reactor_, fd, refusal(max_conns_));
    return;
  }
  // Least-loaded live worker; ties go round-robin.
  WorkerHandle* best = nullptr;
  int64_t best_load = 0;
  for (size_t k = 0; k < workers_.size(); ++k) {
    WorkerHandle& w = workers_[(next_ + k) % workers_.size()];
    if (!w.pipe_open) continue;
    int64_t ld = load(w);
    if (!best || ld < best_load) {
      best = &w;
      best_load = ld;
    }
  }
  next_ = (next_ + 1) % workers_.size();
  if (!best) {
    reactor::refuse_socket(reactor_, fd, refusal(max_conns_));
    return;
  }
  std::string peer = reactor::peer_key(reinterpret_cast<const sockaddr*>(&addr));
  reactor::Admission verdict = reactor_.limits.admit(l.index(), peer);
  if (verdict != reactor::Admission::kOk) {
    // Over its listener's share or its address's cap: the busy reply
    // (small: it fits the new socket's buffer) and close.
    int limit = verdict == reactor::Admission::kAddressFull
                    ? reactor_.limits.per_address()
                    : reactor_.limits.share(l.index()).max_conns;
    std::string text = refusal(limit);
    if (!text.empty()) {
      ssize_t sent = ::send(fd, text.data(), text.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      (void)sent;  // best effort: the client is refused either way
    }
    ::close(fd);
    reactor_.stats->conns_rejected.fetch_add(1, std::memory_order_relaxed);
    if (reactor_.refusal_log.allow(uv_now(&loop_))) {
      FSRV_LOG_INFO("refused a %s connection from %s: %s (%d); %llu similar refusals suppressed",
                    l.service().c_str(), reactor::address_text(peer).c_str(),
                    verdict == reactor::Admission::kAddressFull
                        ? "its address holds --max-conns-per-address"
                        : "its listener's share is full",
                    limit, static_cast<unsigned long long>(reactor_.refusal_log.take_suppressed()));
    }
    return;
  }
  reactor_.limits.add(l.index(), peer);
  ChannelMsg msg;
  msg.listener = l.index();
  msg.tag = add_live(l.index(), best->slot, peer) + 1;
  msg.peer_len = static_cast<uint8_t>(std::min(peer.size(), sizeof msg.peer));
  std::memcpy(msg.peer, peer.data(), msg.peer_len);
  ++best->sent;
  if (!pass(*best, fd, msg)) {
    --best->sent;
    remove_live(msg.tag - 1);
    ::close(fd);
  }
}

// Sends `fd` with its message to worker `w`: one sendmsg with SCM_RIGHTS
// (the worker's libuv pipe receives it as if uv_write2 had sent it), or
// uv_write2 behind the passes already queued when the channel is full.
// The master's copy of `fd` is closed (or owned by the queued pass) when
// true is returned; false leaves `fd` open for the caller.
bool Master::pass(WorkerHandle& w, int fd, const ChannelMsg& msg) {
  if (w.queued == 0) {
    uv_os_fd_t channel = -1;
    uv_fileno(reinterpret_cast<const uv_handle_t*>(&w.pipe), &channel);
    iovec iov{const_cast<ChannelMsg*>(&msg), sizeof msg};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    cmsghdr* cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    ssize_t n;
    do {
      n = sendmsg(channel, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(sizeof msg)) {
      ::close(fd);  // the worker has its own copy now
      return true;
    }
    if (n >= 0) {
      // The socket went with the first bytes; the rest of the message
      // follows through libuv (a stream: the worker reassembles it).
      ::close(fd);
      auto* rest = new PassReq;
      rest->worker = &w;
      rest->msg = msg;
      rest->req.data = rest;
      auto off = static_cast<size_t>(n);
      uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(&rest->msg) + off,
                                 static_cast<unsigned>(sizeof msg - off));
      ++w.queued;
      uv_write(&rest->req, reinterpret_cast<uv_stream_t*>(&w.pipe), &buf, 1,
               [](uv_write_t* req, int) {
                 auto* p = static_cast<PassReq*>(req->data);
                 --p->worker->queued;
                 delete p;
               });
      return true;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      FSRV_LOG_WARN("fd passing failed: %s", strerror(errno));
      return false;
    }
  }
  // The channel is full: libuv queues it and writes when the worker reads.
  auto* p = new PassReq;
  p->worker = &w;
  p->req.data = p;
  p->client.data = p;
  p->msg = msg;
  uv_tcp_init(&loop_, &p->client);
  if (int rc = uv_tcp_open(&p->client, fd); rc != 0) {
    FSRV_LOG_WARN("uv_tcp_open: %s", uv_strerror(rc));
    p->client.data = p;
    uv_close(reinterpret_cast<uv_handle_t*>(&p->client),
             [](uv_handle_t* h) { delete static_cast<PassReq*>(h->data); });
    return false;
  }
  // uv_write2 needs a data buffer beside the handle: the typed message.
  uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(&p->msg), sizeof p->msg);
  ++w.queued;
  int rc = uv_write2(&p->req, reinterpret_cast<uv_stream_t*>(&w.pipe), &buf, 1,
                     reinterpret_cast<uv_stream_t*>(&p->client), [](uv_write_t* req, int status) {
                       auto* q = static_cast<PassReq*>(req->data);
                       --q->worker->queued;
                       if (status != 0) FSRV_LOG_WARN("fd passing failed: %s", uv_strerror(status));
                       // The worker has its own copy now.
                       uv_close(reinterpret_cast<uv_handle_t*>(&q->client),
                                [](uv_handle_t* h) { delete static_cast<PassReq*>(h->data); });
                     });
  if (rc != 0) {
    --w.queued;
    FSRV_LOG_WARN("uv_write2: %s", uv_strerror(rc));
    --w.sent;
    remove_live(msg.tag - 1);
    // uv_close closes the descriptor it was given: the caller's fd goes with it.
    uv_close(reinterpret_cast<uv_handle_t*>(&p->client),
             [](uv_handle_t* h) { delete static_cast<PassReq*>(h->data); });
    return true;
  }
  return true;
}

// kConnectionGone messages: the worker closed the connection of that tag.
void Master::on_worker_bytes(WorkerHandle& w, std::string_view bytes) {
  w.inbox.append(bytes);
  size_t at = 0;
  for (; w.inbox.size() - at >= sizeof(ChannelMsg); at += sizeof(ChannelMsg)) {
    auto msg = parse_channel_msg(std::string_view(w.inbox).substr(at, sizeof(ChannelMsg)),
                                 static_cast<int>(specs_.size()), ChannelMsg::kConnectionGone);
    if (!msg) {
      FSRV_LOG_WARN("worker slot %d: invalid message on the channel", w.slot);
      continue;
    }
    uint32_t index = msg->tag - 1;
    if (msg->tag == 0 || index >= passed_.size() || passed_[index].slot != w.slot) continue;
    remove_live(index);
  }
  w.inbox.erase(0, at);
}

// A worker is gone: every connection it held (or had not yet taken) is too.
void Master::release_all(WorkerHandle& w) {
  for (uint32_t i = 0; i < passed_.size(); ++i) {
    if (passed_[i].slot == w.slot) remove_live(i);
  }
  w.inbox.clear();
}

void Master::on_worker_exit(pid_t pid, int status) {
  for (WorkerHandle& w : workers_) {
    if (w.pid != pid) continue;
    w.pid = -1;
    stats::StatsSlot& s = table_->slot(w.slot);
    int64_t lost = s.conns_active.exchange(0);
    s.executor_pending = 0;  // its queue died with it
    w.sent = received(w);    // sockets in the dead worker's channel are gone too
    if (lost > 0) s.conns_lost.fetch_add(static_cast<uint64_t>(lost));
    close_pipe(w);
    release_all(w);
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

}  // namespace

int run_master(const ServerConfig& config) {
  Master master(config);
  return master.run();
}

}  // namespace fsrv::process
