#pragma once
// The reactor's shared state on one loop: the live connections (for
// --max-conns and shutdown), the draining flag and this process's counters;
// and accepting a connection for a listener's ConnectionFactory. Knows
// nothing of any protocol: what a connection's bytes mean, and what a refused
// client is told, come from the factory (nginx: ngx_listening_t's handler).

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "fsrv/reactor/conn_limits.hpp"
#include "fsrv/reactor/connection.hpp"
#include "fsrv/reactor/deadlines.hpp"
#include "fsrv/reactor/log_limiter.hpp"
#include "fsrv/stats/stats.hpp"

namespace fsrv::reactor {

class TlsContext;  // fsrv/reactor/tls.hpp

/// Why a connection is refused at accept time.
enum class Refusal {
  kBusy,          ///< over --max-conns, or no worker to take it
  kShuttingDown,  ///< the server is draining
};

/// What a listener's service gives the reactor: a protocol handler per
/// accepted connection, and the bytes a refused client is sent.
class ConnectionFactory {
 public:
  virtual ~ConnectionFactory() = default;
  /// Makes the protocol handler of a new connection (on the loop thread).
  virtual std::unique_ptr<ConnectionHandler> make_handler(Connection& conn) = 0;
  /// Bytes sent to a refused client before the connection closes ("" =
  /// just close). `limit` is --max-conns.
  virtual std::string refusal(Refusal why, int limit) const = 0;
  /// The service's name, for log lines.
  virtual std::string_view name() const { return {}; }
};

/// The reactor's state for one loop. Lives as long as the loop runs; owned
/// by the program's main (or a worker's main).
struct Reactor {
  uv_loop_t* loop = nullptr;
  double idle_timeout_s = 60;  ///< 0 = no idle timeout
  int max_conns = 1024;
  double min_rate = 0;            ///< bytes/s during a transfer; 0 = no minimum
  double min_rate_window_s = 30;  ///< window the rate is measured over
  /// Seconds from a request's first byte to the end of its head (line,
  /// header block, frame header); 0 = no limit.
  double request_timeout_s = 30;
  stats::StatsSlot* stats = nullptr;  ///< this process's counters
  /// Server-decided closes by reason (STATS "limits/closed/..."; unset =
  /// not counted).
  stats::Counter closed_request_timeout, closed_too_slow, closed_idle;
  /// Live connections (not yet closed).
  std::unordered_set<Connection*> connections;
  /// The connections' deadlines (idle, request head, min_rate): one timer.
  DeadlineQueue deadlines;
  /// Set once shutdown began: connections close after their current request.
  bool draining = false;
  /// Set when a stop signal came: health checks (/healthz) answer 503 from
  /// then on, through the drain delay (Lifecycle::set_drain_delay) and the drain.
  bool health_failing = false;
  /// Called when the last connection closed while draining.
  std::function<void()> on_drained;
  /// Connections open in the whole server (all processes); null = this
  /// loop's connections.
  std::function<int64_t()> active_connections;
  /// Refusals are logged at info level, one line per 5 s with the count
  /// of those suppressed (a flood must not flood the log).
  LogLimiter refusal_log;
  /// Per-listener shares and the per-address cap (off until configured:
  /// the prefork master admits for its workers).
  ConnectionLimits limits;
  /// Another loop's table that this loop admits against instead of
  /// `limits` (thread mode's extra loops: one table per process); null =
  /// `limits`.
  ConnectionLimits* shared_limits = nullptr;
  /// The table admission and the connections' add/remove use.
  ConnectionLimits& admission() { return shared_limits ? *shared_limits : limits; }
  /// Called when a connection carrying a tag (accept_connection's `tag`:
  /// the prefork master's id for it) is gone, so the master can release
  /// its slot.
  std::function<void(int listener, uint32_t tag)> on_tagged_gone;
  /// Accepted sockets already carry TCP_NODELAY (set on the listening
  /// socket, and Linux copies it to each accepted one): Connection::start
  /// then skips its setsockopt. The prefork workers' sockets come from the
  /// master's listeners, which set it.
  bool nodelay_inherited = false;

  /// Refused connections still open (their busy reply being flushed). Each
  /// holds a descriptor: beyond kMaxRefusing, accepting waits (the kernel's
  /// backlog holds the clients) until one closes, so a burst of clients
  /// beyond the limit cannot exhaust the descriptors kept for refusing.
  static constexpr int kMaxRefusing = 32;
  int refusing = 0;
  /// Accepts postponed while kMaxRefusing were open; retried, oldest first,
  /// as connections close.
  std::vector<std::function<void()>> deferred_accepts;

  /// Per listener index: the TLS context of a `,tls` listener, null for
  /// clear text. Connection::start puts TLS under a connection whose
  /// listener has one; its refusals are then silent (a busy text in clear
  /// would only break the client's handshake).
  std::vector<std::shared_ptr<TlsContext>> tls;
  /// STATS "tls/handshakes/{ok,failed}" and "tls/sends/userspace" (GET
  /// bodies read and encrypted in chunks); unset = not counted.
  stats::Counter tls_handshakes_ok, tls_handshakes_failed, tls_sends_userspace;
  /// Failed handshakes are logged one line per 5 s (a flood of bad
  /// clients must not flood the log).
  LogLimiter tls_failure_log;
  /// The TLS context of listener `listener`, or null.
  const TlsContext* tls_for(int listener) const {
    return listener >= 0 && static_cast<size_t>(listener) < tls.size()
               ? tls[static_cast<size_t>(listener)].get()
               : nullptr;
  }
};

/// Accepts one pending connection from `server` (a listening TCP handle or an
/// IPC pipe with a pending TCP handle) and starts it with `factory`'s
/// handler, or refuses it (factory.refusal) while draining, beyond
/// max_conns, beyond listener `listener`'s share or its address's cap
/// (reactor.limits). A non-zero `tag` is reported to
/// reactor.on_tagged_gone when the connection is gone. `peer`, if given,
/// is the client's address key (peer_key) already known to the caller (the
/// prefork master sends it beside the socket), saving a getpeername.
/// Returns 0 or a libuv error code.
int accept_connection(Reactor& reactor, uv_stream_t* server, ConnectionFactory& factory,
                      int listener = -1, uint32_t tag = 0, const std::string* peer = nullptr);

/// Sends `message` to an already accepted client socket `fd` and closes it
/// (counted as rejected), as refuse_connection does; the fd is closed at
/// once when Reactor::kMaxRefusing refusals are still open. Takes
/// ownership of `fd`. Returns 0 or a libuv error code.
int refuse_socket(Reactor& reactor, int fd, std::string message);

/// Accepts one pending connection from `server` only to send it `message`
/// and close it (counted as rejected), or, while Reactor::kMaxRefusing
/// refusals are still open, leaves it pending (libuv stops polling the
/// listener until uv_accept) and retries when one closes. Returns 0 or a
/// libuv error code.
int refuse_connection(Reactor& reactor, uv_stream_t* server, std::string message, int listener = -1,
                      uint32_t tag = 0);

/// Starts graceful shutdown: every connection finishes its current request
/// and closes; calls reactor.on_drained once none is left.
void drain_connections(Reactor& reactor);

/// Closes every connection now (grace period over).
void close_all_connections(Reactor& reactor);

}  // namespace fsrv::reactor
