#include <fcntl.h>
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

namespace fsrv::process::master_detail {

namespace {

/// One channel message with room for one descriptor beside it: the msghdr
/// the pass (sendmsg) and the rescue (recvmsg) both use. Not copyable (the
/// header points into itself).
struct FdMessage {
  explicit FdMessage(ChannelMsg* m) : iov{m, sizeof *m} {
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
  }
  FdMessage(const FdMessage&) = delete;
  FdMessage& operator=(const FdMessage&) = delete;

  iovec iov;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr mh{};
};

}  // namespace

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
// The worker counts a socket in conns_taken before conns_active, and the
// loads here are in the other order, so a socket it is taking right now is
// counted at most once. (Counting conns_total + conns_rejected, both
// incremented after conns_active, counted it twice for that instant, and a
// burst at --max-conns got the last slot refused.)
int64_t Master::load(const WorkerHandle& w) const {
  const int64_t active = table_->slot(w.slot).conns_active.load();
  return active + static_cast<int64_t>(w.sent - received(w));
}

// Sockets a slot's workers took from the channel (served or refused).
uint64_t Master::received(const WorkerHandle& w) const {
  return table_->slot(w.slot).conns_taken.load();
}

// The listener has connections pending: take up to kAcceptBatch of them
// in this wake-up, admitting each and passing it to the least-loaded
// worker. Under a burst each poll wake-up of the master then serves
// several clients; when fewer wait, one failing accept4 (EAGAIN) ends the
// batch.
void Master::on_connection(reactor::Listener& l) {
  for (int k = 0; k < kAcceptBatch && accept_one(l); ++k) {
  }
}

// Takes one pending connection; false when none was there (or accepting
// failed), which ends the batch.
bool Master::accept_one(reactor::Listener& l) {
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
    return false;  // EAGAIN (the queue is empty), ECONNABORTED...
  }
  admit(l, fd, addr);
  return true;
}

// The service's busy reply for a refused connection of `listener`, or ""
// for a TLS listener (its client could not read a clear-text reply: it is
// just closed).
std::string Master::busy_reply(int listener, int limit) const {
  const services::Listening& listening = specs_[static_cast<size_t>(listener)];
  return listening.spec.tls ? std::string()
                            : listening.service->refusal(reactor::Refusal::kBusy, limit);
}

// Admits an accepted socket (the connection caps, its listener's share,
// its address's cap) and passes it to the least-loaded live worker, or
// refuses it with the service's busy reply.
void Master::admit(reactor::Listener& l, int fd, const sockaddr_storage& addr) {
  if (active_connections() + 1 > max_conns_) {
    if (reactor_.refusal_log.allow(uv_now(&loop_))) {
      FSRV_LOG_INFO(
          "refused a %s connection: --max-conns %d reached; %llu similar refusals "
          "suppressed",
          l.service().c_str(), max_conns_,
          static_cast<unsigned long long>(reactor_.refusal_log.take_suppressed()));
    }
    reactor::refuse_socket(reactor_, fd, busy_reply(l.index(), max_conns_));
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
    std::string text = busy_reply(l.index(), limit);
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
  if (!hand_over(l.index(), fd, peer)) {
    reactor::refuse_socket(reactor_, fd, busy_reply(l.index(), max_conns_));
  }
}

// Passes an admitted socket of `listener` (its limits not yet counted) to
// the least-loaded live worker. False, with `fd` still open and nothing
// counted, when no worker's channel is open.
//
// A worker killed a moment ago still looks alive until its SIGCHLD is
// handled, and a pass to it succeeds into its channel: rescue() passes
// that client again then. (An error on the channel, kChannelGone, closes
// it and the next least-loaded worker takes the client.)
bool Master::hand_over(int listener, int fd, const std::string& peer) {
  for (WorkerHandle* best = least_loaded(); best; best = least_loaded()) {
    reactor_.limits.add(listener, peer);
    ChannelMsg msg;
    msg.listener = listener;
    msg.tag = add_live(listener, best->slot, peer) + 1;
    msg.peer_len = static_cast<uint8_t>(std::min(peer.size(), sizeof msg.peer));
    std::memcpy(msg.peer, peer.data(), msg.peer_len);
    ++best->sent;
    PassResult passed = pass(*best, fd, msg);
    if (passed == PassResult::kPassed) return true;
    --best->sent;
    remove_live(msg.tag - 1);
    if (passed != PassResult::kChannelGone) {
      ::close(fd);
      return true;  // settled: the socket could not be passed and is closed
    }
    close_pipe(*best);
  }
  return false;
}

// Worker `w` is dead (its channel closed): every connection it held is
// released, and the clients passed to it that it never read from its
// channel are read back from the worker's end (which the master kept open)
// and passed again, to a live worker or, if none, to the next one forked.
// So a crash loses only the connections the worker had taken. One recvmsg
// returns one message with its socket: the kernel does not merge a message
// that carries descriptors with the next.
void Master::rescue(WorkerHandle& w) {
  std::vector<Parked> again;
  while (w.worker_end >= 0 && !stopping_) {
    ChannelMsg m;
    FdMessage fm(&m);
    msghdr& mh = fm.mh;
    ssize_t n = recvmsg(w.worker_end, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EAGAIN: nothing left
    int fd = -1;
    for (cmsghdr* cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
      if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
          cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
        std::memcpy(&fd, CMSG_DATA(cm), sizeof fd);
      }
    }
    if (fd < 0) continue;  // bytes without a socket: nothing to pass again
    auto msg =
        n == static_cast<ssize_t>(sizeof m)
            ? parse_channel_msg(std::string_view(reinterpret_cast<const char*>(&m), sizeof m),
                                static_cast<int>(specs_.size()))
            : std::nullopt;  // a message cut short (the channel was full): not parsed
    if (!msg) {
      FSRV_LOG_WARN("worker slot %d: an unreadable pass left in its channel: client closed",
                    w.slot);
      ::close(fd);
      continue;
    }
    again.push_back({msg->listener, fd, msg->peer_key()});
  }
  if (w.worker_end >= 0) ::close(w.worker_end);  // closes whatever is still queued
  w.worker_end = -1;
  release_all(w);
  if (!again.empty()) {
    FSRV_LOG_WARN("worker slot %d had not taken %zu connection(s): passing them again", w.slot,
                  again.size());
  }
  for (Parked& p : again) pass_again(p.listener, p.fd, p.peer);
}

// A client rescued from a dead worker: to the least-loaded live worker, or
// parked until the next fork when none is alive.
void Master::pass_again(int listener, int fd, const std::string& peer) {
  if (stopping_) {
    ::close(fd);
  } else if (!hand_over(listener, fd, peer)) {
    parked_.push_back({listener, fd, peer});
  }
}

// Closes the clients still parked and the workers' ends of the channels
// (the master is stopping).
void Master::close_kept() {
  for (WorkerHandle& w : workers_) {
    if (w.worker_end >= 0) ::close(w.worker_end);
    w.worker_end = -1;
  }
  for (const Parked& p : parked_) ::close(p.fd);
  parked_.clear();
}

// The live worker with the fewest connections (load()); ties go
// round-robin. Null when no worker's channel is open.
WorkerHandle* Master::least_loaded() {
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
  return best;
}

// A pass queued in libuv (the channel was full) was written, or cancelled
// because its worker's channel closed (UV_ECANCELED): then the client goes
// to another worker too, and its entry leaves the limits unless the
// worker's death released it already (no new entry can name that slot
// while its channel is closed). Either way the master's copy is closed.
void Master::on_queued_pass_written(uv_write_t* req, int status) {
  auto* q = static_cast<PassReq*>(req->data);
  --q->worker->queued;
  if (status == UV_ECANCELED) {
    Master* m = q->worker->master;
    const uint32_t index = q->msg.tag - 1;
    if (index < m->passed_.size() && m->passed_[index].slot == q->worker->slot) {
      m->remove_live(index);
    }
    uv_os_fd_t fd = -1;
    uv_fileno(reinterpret_cast<const uv_handle_t*>(&q->client), &fd);
    int copy = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
    if (copy >= 0) m->pass_again(q->msg.listener, copy, q->msg.peer_key());
  } else if (status != 0) {
    FSRV_LOG_WARN("fd passing failed: %s", uv_strerror(status));
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&q->client),
           [](uv_handle_t* h) { delete static_cast<PassReq*>(h->data); });
}

// Sends `fd` with its message to worker `w`: one sendmsg with SCM_RIGHTS
// (the worker's libuv pipe receives it as if uv_write2 had sent it), or
// uv_write2 behind the passes already queued when the channel is full.
// The master's copy of `fd` is closed (or owned by the queued pass) when
// kPassed is returned; otherwise `fd` stays open for the caller.
PassResult Master::pass(WorkerHandle& w, int fd, const ChannelMsg& msg) {
  if (w.queued == 0) {
    uv_os_fd_t channel = -1;
    uv_fileno(reinterpret_cast<const uv_handle_t*>(&w.pipe), &channel);
    FdMessage fm(const_cast<ChannelMsg*>(&msg));
    msghdr& mh = fm.mh;
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
      return PassResult::kPassed;
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
      return PassResult::kPassed;
    }
    if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN) {
      FSRV_LOG_WARN("worker slot %d's channel is gone (%s): passing to another", w.slot,
                    strerror(errno));
      return PassResult::kChannelGone;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      FSRV_LOG_WARN("fd passing failed: %s", strerror(errno));
      return PassResult::kFailed;
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
    return PassResult::kFailed;
  }
  // uv_write2 needs a data buffer beside the handle: the typed message.
  uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(&p->msg), sizeof p->msg);
  ++w.queued;
  int rc = uv_write2(&p->req, reinterpret_cast<uv_stream_t*>(&w.pipe), &buf, 1,
                     reinterpret_cast<uv_stream_t*>(&p->client), on_queued_pass_written);
  if (rc != 0) {
    --w.queued;
    FSRV_LOG_WARN("uv_write2: %s", uv_strerror(rc));
    --w.sent;
    remove_live(msg.tag - 1);
    // uv_close closes the descriptor it was given: the caller's fd goes with it.
    uv_close(reinterpret_cast<uv_handle_t*>(&p->client),
             [](uv_handle_t* h) { delete static_cast<PassReq*>(h->data); });
    return PassResult::kPassed;  // settled here: the client's socket is closed
  }
  return PassResult::kPassed;
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

}  // namespace fsrv::process::master_detail
