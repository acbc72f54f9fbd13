#include "fsrv/reactor/server.hpp"

#include <vector>

#include "fsrv/core/log.hpp"
#include "fsrv/protocol/reply.hpp"

namespace fsrv::reactor {

int accept_connection(ServerContext& ctx, uv_stream_t* server) {
  Connection* conn = Connection::create(ctx);
  int rc = uv_accept(server, conn->stream());
  if (rc != 0) {
    FSRV_LOG_WARN("accept failed: %s", uv_strerror(rc));
    conn->close();
    return rc;
  }
  int64_t active = ctx.active_connections ? ctx.active_connections()
                                          : static_cast<int64_t>(ctx.connections.size());
  if (ctx.draining) {
    conn->reject(protocol::error_text("server shutting down"));
  } else if (active > ctx.config->max_conns) {
    // `active` already counts this connection.
    conn->reject(protocol::error_text("server busy: too many connections (limit " +
                                      std::to_string(ctx.config->max_conns) + ")"));
  } else {
    conn->start(ctx.make_handler(*conn));
  }
  return 0;
}

void drain_connections(ServerContext& ctx) {
  ctx.draining = true;
  std::vector<Connection*> live(ctx.connections.begin(), ctx.connections.end());
  for (Connection* c : live) {
    ConnRef keep(c);
    if (!c->closing()) c->shutdown_gracefully();
  }
  if (ctx.connections.empty() && ctx.on_drained) ctx.on_drained();
}

void close_all_connections(ServerContext& ctx) {
  std::vector<Connection*> live(ctx.connections.begin(), ctx.connections.end());
  for (Connection* c : live) c->close();
}

int bind_and_listen(uv_loop_t* loop, uv_tcp_t* handle, const std::string& host, int port,
                    uv_connection_cb on_connection, void* data) {
  uv_tcp_init(loop, handle);  // first, so the caller may always uv_close it
  handle->data = data;
  sockaddr_storage addr{};
  int rc = uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr));
  if (rc != 0) rc = uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr));
  if (rc == 0) rc = uv_tcp_bind(handle, reinterpret_cast<const sockaddr*>(&addr), 0);
  // Backlog: the kernel caps it at net.core.somaxconn; a burst of 50+
  // stress clients must not see refused connects.
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(handle), 4096, on_connection);
  if (rc != 0) return rc;
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(handle, reinterpret_cast<sockaddr*>(&bound), &len);
  if (bound.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}

int listen_tcp(ServerContext& ctx, uv_tcp_t* handle, const std::string& host, int port) {
  return bind_and_listen(
      ctx.loop, handle, host, port,
      [](uv_stream_t* s, int status) {
        if (status < 0) {
          FSRV_LOG_WARN("listen error: %s", uv_strerror(status));
          return;
        }
        accept_connection(*static_cast<ServerContext*>(s->data), s);
      },
      &ctx);
}

}  // namespace fsrv::reactor
