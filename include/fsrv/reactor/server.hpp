#pragma once
// The reactor's shared state and the listening socket. Owns the set of live
// connections (for --max-conns and shutdown) and accepts new ones, from a
// listening TCP socket (thread mode) or from an IPC pipe that delivers client
// sockets by fd passing (process mode workers).

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>

#include "fsrv/core/config.hpp"
#include "fsrv/reactor/connection.hpp"
#include "fsrv/reactor/executor.hpp"
#include "fsrv/stats/stats.hpp"

namespace fsrv::storage {
class Root;
}

namespace fsrv::reactor {

/// Everything a connection and its protocol handler may use. Lives as long
/// as the loop runs; owned by the program's main (or a worker's main).
struct ServerContext {
  uv_loop_t* loop = nullptr;
  const ServerConfig* config = nullptr;
  storage::Root* root = nullptr;
  Executor* executor = nullptr;
  stats::StatsSlot* stats = nullptr;  ///< this process's counters
  /// The STATS reply's data object (JSON text), summed over all processes.
  std::function<std::string()> stats_json;
  /// Makes the protocol handler of a new connection.
  std::function<std::unique_ptr<ConnectionHandler>(Connection&)> make_handler;
  /// Live connections (not yet closed).
  std::unordered_set<Connection*> connections;
  /// Set once shutdown began: connections close after their current request.
  bool draining = false;
  /// Called when the last connection closed while draining.
  std::function<void()> on_drained;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  /// Connections open in the whole server (all processes).
  std::function<int64_t()> active_connections;
};

/// Accepts one pending connection from `server` (a listening TCP handle or an
/// IPC pipe with a pending TCP handle) and starts it, or rejects it with
/// ERROR "server busy" beyond --max-conns. Returns a libuv error code.
int accept_connection(ServerContext& ctx, uv_stream_t* server);

/// Starts graceful shutdown: every connection finishes its current request
/// and closes; calls ctx.on_drained once none is left.
void drain_connections(ServerContext& ctx);

/// Closes every connection now (grace period over).
void close_all_connections(ServerContext& ctx);

/// Initialises `handle` on `loop` (always, so the caller can uv_close it even
/// on failure), binds host:port (IPv4 or IPv6 literal; port 0 = any free
/// port) and listens, calling `on_connection` with handle->data = `data`.
/// Returns the bound port, or a negative libuv error.
int bind_and_listen(uv_loop_t* loop, uv_tcp_t* handle, const std::string& host, int port,
                    uv_connection_cb on_connection, void* data);

/// Binds and listens on host:port (port 0 = any free port), accepting with
/// accept_connection. Returns the bound port, or a negative libuv error.
/// `handle` must stay valid until closed.
int listen_tcp(ServerContext& ctx, uv_tcp_t* handle, const std::string& host, int port);

}  // namespace fsrv::reactor
