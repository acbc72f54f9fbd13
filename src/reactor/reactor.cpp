#include "fsrv/reactor/reactor.hpp"

#include <vector>

#include "fsrv/core/log.hpp"

namespace fsrv::reactor {

namespace {

/// Accepts the pending connection of `server` into a new Connection; null
/// (and the connection closed) if accept failed.
Connection* accept_one(Reactor& reactor, uv_stream_t* server, int* rc) {
  Connection* conn = Connection::create(reactor);
  *rc = uv_accept(server, conn->stream());
  if (*rc != 0) {
    FSRV_LOG_WARN("accept failed: %s", uv_strerror(*rc));
    conn->close();
    return nullptr;
  }
  return conn;
}

}  // namespace

int accept_connection(Reactor& reactor, uv_stream_t* server, ConnectionFactory& factory) {
  int64_t active = reactor.active_connections
                       ? reactor.active_connections()
                       : static_cast<int64_t>(reactor.connections.size()) - reactor.refusing;
  if (reactor.draining || active + 1 > reactor.max_conns) {
    Refusal why = reactor.draining ? Refusal::kShuttingDown : Refusal::kBusy;
    return refuse_connection(reactor, server, factory.refusal(why, reactor.max_conns));
  }
  int rc;
  Connection* conn = accept_one(reactor, server, &rc);
  if (conn) conn->start(factory.make_handler(*conn));
  return rc;
}

int refuse_connection(Reactor& reactor, uv_stream_t* server, std::string message) {
  if (reactor.refusing >= Reactor::kMaxRefusing) {
    // Leave it in the listener: libuv polls the listener again at uv_accept.
    reactor.deferred_accepts.push_back(
        [&reactor, server, message] { refuse_connection(reactor, server, message); });
    return 0;
  }
  int rc;
  Connection* conn = accept_one(reactor, server, &rc);
  if (conn) conn->reject(std::move(message));
  return rc;
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
