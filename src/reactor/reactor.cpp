#include "fsrv/reactor/reactor.hpp"

#include <unistd.h>

#include <vector>

#include "fsrv/core/log.hpp"

namespace fsrv::reactor {

namespace {

/// Accepts the pending connection of `server` into a new Connection; null
/// (and the connection closed, its tag reported gone) if accept failed.
Connection* accept_one(Reactor& reactor, uv_stream_t* server, int* rc, int listener, uint32_t tag) {
  Connection* conn = Connection::create(reactor);
  *rc = uv_accept(server, conn->stream());
  if (*rc != 0) {
    FSRV_LOG_WARN("accept failed: %s", uv_strerror(*rc));
    conn->close();
    if (tag != 0 && reactor.on_tagged_gone) reactor.on_tagged_gone(listener, tag);
    return nullptr;
  }
  return conn;
}

}  // namespace

int accept_connection(Reactor& reactor, uv_stream_t* server, ConnectionFactory& factory,
                      int listener, uint32_t tag, const std::string* known_peer) {
  int64_t active = reactor.active_connections
                       ? reactor.active_connections()
                       : static_cast<int64_t>(reactor.connections.size()) - reactor.refusing;
  if (reactor.draining || active + 1 > reactor.max_conns) {
    Refusal why = reactor.draining ? Refusal::kShuttingDown : Refusal::kBusy;
    if (!reactor.draining && reactor.refusal_log.allow(uv_now(reactor.loop))) {
      FSRV_LOG_INFO(
          "refused a %.*s connection: --max-conns %d reached; %llu similar refusals "
          "suppressed",
          static_cast<int>(factory.name().size()), factory.name().data(), reactor.max_conns,
          static_cast<unsigned long long>(reactor.refusal_log.take_suppressed()));
    }
    return refuse_connection(reactor, server, factory.refusal(why, reactor.max_conns), listener,
                             tag);
  }
  int rc;
  Connection* conn = accept_one(reactor, server, &rc, listener, tag);
  if (!conn) return rc;
  std::string peer = known_peer ? *known_peer : peer_key(conn->tcp());
  ConnectionLimits& limits = reactor.admission();
  // One step: with --loops, another loop may be admitting at the same time.
  Admission verdict = limits.admit_and_add(listener, peer);
  if (verdict != Admission::kOk) {
    // Accepted to learn its address: refused like a busy server, and the
    // reason logged (a flood logs one line per refused client at debug).
    // kBusy here: another loop sharing the table (--loops) admitted the
    // last slot since this loop's own count was checked above.
    int limit = verdict == Admission::kAddressFull ? limits.per_address()
                : verdict == Admission::kBusy      ? reactor.max_conns
                                                   : limits.share(listener).max_conns;
    if (reactor.refusal_log.allow(uv_now(reactor.loop))) {
      FSRV_LOG_INFO("refused a %.*s connection from %s: %s (%d); %llu similar refusals suppressed",
                    static_cast<int>(factory.name().size()), factory.name().data(),
                    address_text(peer).c_str(),
                    verdict == Admission::kAddressFull ? "its address holds --max-conns-per-address"
                    : verdict == Admission::kBusy      ? "--max-conns reached"
                                                       : "its listener's share is full",
                    limit, static_cast<unsigned long long>(reactor.refusal_log.take_suppressed()));
    }
    conn->set_origin(listener, std::move(peer), tag, false);
    if (reactor.refusing >= Reactor::kMaxRefusing) {
      reactor.stats->conns_rejected.fetch_add(1, std::memory_order_relaxed);
      conn->close();  // too many refusals being flushed: just close
    } else {
      conn->reject(factory.refusal(Refusal::kBusy, limit));
    }
    return 0;
  }
  conn->set_origin(listener, std::move(peer), tag, limits.enabled());
  conn->set_label(factory.name());
  conn->start(factory.make_handler(*conn));
  return 0;
}

int refuse_connection(Reactor& reactor, uv_stream_t* server, std::string message, int listener,
                      uint32_t tag) {
  if (reactor.refusing >= Reactor::kMaxRefusing) {
    // Leave it in the listener: libuv polls the listener again at uv_accept.
    reactor.deferred_accepts.push_back([&reactor, server, message, listener, tag] {
      refuse_connection(reactor, server, message, listener, tag);
    });
    return 0;
  }
  int rc;
  Connection* conn = accept_one(reactor, server, &rc, listener, tag);
  if (conn) {
    conn->set_origin(listener, "", tag, false);
    conn->reject(std::move(message));
  }
  return rc;
}

int refuse_socket(Reactor& reactor, int fd, std::string message) {
  if (reactor.refusing >= Reactor::kMaxRefusing) {
    // Too many refusals being flushed: just close (it is out of the
    // kernel's backlog already, so it cannot wait there).
    reactor.stats->conns_rejected.fetch_add(1, std::memory_order_relaxed);
    ::close(fd);
    return 0;
  }
  Connection* conn = Connection::create(reactor);
  int rc = uv_tcp_open(conn->tcp(), fd);
  if (rc != 0) {
    ::close(fd);
    conn->close();
    return rc;
  }
  conn->set_origin(-1, "", 0, false);
  conn->reject(std::move(message));
  return 0;
}

void drain_connections(Reactor& reactor) {
  reactor.draining = true;
  std::vector<Connection*> live(reactor.connections.begin(), reactor.connections.end());
  for (Connection* c : live) {
    ConnRef keep(c);
    if (!c->closing()) c->shutdown_gracefully();
  }
  if (reactor.connections.empty() && reactor.on_drained) reactor.on_drained();
}

void close_all_connections(Reactor& reactor) {
  std::vector<Connection*> live(reactor.connections.begin(), reactor.connections.end());
  for (Connection* c : live) c->close();
}

}  // namespace fsrv::reactor
