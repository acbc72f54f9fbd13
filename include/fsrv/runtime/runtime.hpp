#pragma once
// One serving process's wiring, the single builder used by thread mode and
// by every prefork worker: the storage root, the services' shared parts, one
// service instance per configured service, and the reactor's state on the
// given loop. Also the listeners (thread mode and the prefork master bind
// them the same way) and the "listening SERVICE on HOST:PORT" lines.
//
// Layers: runtime/ sits above services/ and below process/ and app/.

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fsrv/auth/authenticator.hpp"
#include "fsrv/core/config.hpp"
#include "fsrv/core/result.hpp"
#include "fsrv/reactor/datagram.hpp"
#include "fsrv/reactor/executor.hpp"
#include "fsrv/reactor/lifecycle.hpp"
#include "fsrv/reactor/listener.hpp"
#include "fsrv/reactor/reactor.hpp"
#include "fsrv/services/service.hpp"
#include "fsrv/stats/stats.hpp"
#include "fsrv/storage/storage.hpp"

namespace fsrv::runtime {

/// The listeners of a configuration: config.listeners, or one `file`
/// listener on --host/--port when none is given.
std::vector<ListenSpec> listeners_of(const ServerConfig& config);

/// Resolves each listener's service once, after the configuration is read
/// and before anything is bound (the one place a listener's service is
/// looked up by name): every service is registered, honours the
/// listener's `,ro`/`,auth=` (services::check_policy), and no endpoint
/// appears twice within a transport. Returns the listeners in order, or
/// the first problem ("unknown service 'gopher' ...", "duplicate address
/// 0.0.0.0:6666 (file and http)").
Result<std::vector<services::Listening>> resolve_listeners(const std::vector<ListenSpec>& specs);

/// The counters every process of this configuration registers, in the same
/// order (call before forking).
void register_stats(const std::vector<services::Listening>& listeners, stats::Schema& schema);

/// Binds every datagram (UDP) listener of `listeners`, in order, receiving into
/// handler_for(index) (bound only, not receiving, when handler_for is
/// empty: the prefork master); logs the SO_RCVBUF granted. On the first failure
/// every one made so far is closed and the error names it ("cannot bind
/// udp-sink on udp 127.0.0.1:5005: address already in use").
Status listen_datagrams(uv_loop_t* loop, const std::vector<services::Listening>& listeners,
                        std::vector<std::unique_ptr<reactor::DatagramListener>>& out,
                        const std::function<reactor::DatagramHandler&(size_t)>& handler_for);

/// Binds and listens on every stream (TCP) listener, in order; `on_connection` per
/// pending connection. On the first failure every listener made so far is
/// closed and the error says which one ("cannot listen file on
/// 0.0.0.0:6666: address already in use"). `polled`: listen with
/// Listener::listen_polled (the caller accepts with accept_socket).
Status listen_all(uv_loop_t* loop, const std::vector<services::Listening>& listeners,
                  std::vector<std::unique_ptr<reactor::Listener>>& out,
                  std::function<void(reactor::Listener&)> on_connection, bool polled = false);

/// Prints "listening SERVICE on HOST:PORT" per listener to stdout and
/// flushes (tests and scripts read the ports from these lines), then tells
/// the service manager READY=1 (service_manager::notify_ready).
/// UDP listeners are printed the same way, in configuration order.
/// A listener's notes (`specs`, by listener index) follow its line:
/// "listening http on 0.0.0.0:8443 (tls)" or "(ro, auth=write)"; with a TLS listener, one log
/// line says how TLS replies are sent (tls_send_path_text).
void print_listening(const std::vector<std::unique_ptr<reactor::Listener>>& listeners,
                     const std::vector<std::unique_ptr<reactor::DatagramListener>>& datagrams = {},
                     const std::vector<services::Listening>& specs = {});

/// Whether any listener is `,tls`.
bool any_tls(const std::vector<services::Listening>& listeners);
/// The notes of a listener's "listening" line: its policy and TLS
/// (" (ro)", " (auth=write, tls)"), or "".
std::string listen_notes(const ListenSpec& spec);

/// Raises the soft RLIMIT_NOFILE to the hard limit (logged) and returns the
/// connection cap it allows: (limit - limits::kReservedFds) /
/// limits::kFdsPerConnection, so a client beyond it is refused with the
/// service's busy reply instead of being dropped by EMFILE (hardening issue,
/// point 6). Call once per process at start-up.
int raise_fd_limit();

/// The effective connection limit: min(--max-conns, raise_fd_limit()'s cap
/// times `processes` serving processes); logs a warning when the fd limit is
/// the smaller.
int effective_max_conns(int max_conns, int fd_cap, int processes);

/// Each listener's connection share under `max_conns` (its `max-conns=N`
/// or the default of reactor::ConnectionLimits::plan), in listener order;
/// datagram listeners get {0, 0}.
std::vector<reactor::ListenerShare> plan_shares(const std::vector<services::Listening>& listeners,
                                                int max_conns);

/// Turns on `reactor`'s per-listener shares and per-address cap
/// (--max-conns-per-address) for `listeners` under `max_conns`, counting
/// refusals in `slot` ("NAME/connections/refused/{share,address}") and
/// each listener's share in "NAME/connections/share"; logs one line per
/// listener with its share.
void configure_limits(reactor::Reactor& reactor, const std::vector<services::Listening>& listeners,
                      const ServerConfig& config, int max_conns, const stats::Schema& schema,
                      stats::StatsSlot& slot);
/// SIGHUP: the shares and the per-address cap planned again for a new
/// `max_conns` and `config` (reactor::ConnectionLimits::replan; the open
/// connections stay counted).
void replan_limits(reactor::Reactor& reactor, const std::vector<services::Listening>& listeners,
                   const ServerConfig& config, int max_conns);

/// Where a SIGHUP reads the configuration again: set once by main (the
/// --config file under the same command line). Fills `out` and appends to
/// `restart` the options whose change needs a restart that only main can
/// see (the listener list, mode, codec); returns "" or what is wrong.
using ConfigSource =
    std::function<std::string(ServerConfig& out, std::vector<std::string>& restart)>;
void set_config_source(ConfigSource source);

/// SIGHUP: the configuration read again through the source. Returns "" or
/// what is wrong ("no --config file" without one); `restart` gets the name
/// of every option that changed but cannot change while serving.
std::string reload_config(const ServerConfig& running, ServerConfig& out,
                          std::vector<std::string>& restart);

/// Logs the outcome of a SIGHUP in the process that owns the listeners:
/// the error (the running configuration stays), or the live values now in
/// force and a warning per option that needs a restart; then READY=1 again
/// for the service manager.
void report_reload(const std::string& error, const std::vector<std::string>& restart,
                   const ServerConfig& fresh);

/// A serving process: storage root, services and reactor on one loop.
class ServingProcess {
 public:
  /// Opens the root (throws std::runtime_error if it cannot: start-up).
  /// `slot` is this process's counters in `table`; `stats_json` renders
  /// STATS for the whole server.
  ServingProcess(uv_loop_t* loop, const ServerConfig& config,
                 std::vector<services::Listening> listeners, const stats::Schema& schema,
                 stats::StatsSlot& slot, reactor::Executor& executor,
                 std::function<std::string()> stats_json);
  ServingProcess(const ServingProcess&) = delete;
  ServingProcess& operator=(const ServingProcess&) = delete;

  /// SIGHUP: reads the --users file again; a bad file keeps the accounts
  /// in force and logs why. No-op without --users.
  void reload_users();
  /// SIGHUP: reads --tls-cert and --tls-key again (the paths given at
  /// start); new handshakes use the new pair, open connections keep theirs,
  /// a bad or missing file keeps the pair in force and logs why. No-op
  /// without a tls listener.
  void reload_tls();
  reactor::Reactor& reactor() { return reactor_; }
  /// The factory of listener `index` (its position in the listener list).
  reactor::ConnectionFactory& factory(size_t index) { return services_->for_listener(index); }
  size_t listener_count() const { return listeners_.size(); }
  /// The handler of datagram listener `index` (Listening::datagram).
  reactor::DatagramHandler& datagram_handler(size_t index);
  /// Wires the shutdown to the datagram services' own work (TFTP
  /// transfers): `life` waits for it as for connections and forces it with
  /// them. Call once, before the loop runs.
  void join_shutdown(reactor::Lifecycle::Hooks& hooks);
  /// Lets the datagram services report that their work may be done.
  void notify_work_done(reactor::Lifecycle& life);
  /// Applies what can change while serving (SIGHUP): idle and request
  /// timeouts, the minimum rate and its window, --max-upload,
  /// --legacy-idle-ms, each service's live options (ServiceOptions::apply_live:
  /// the chat's users file, re-read by Service::reload).
  /// Open connections see them at their next check. (--max-conns belongs to whoever accepts: thread
  /// mode or the master.)
  void apply_live(const ServerConfig& fresh);
  /// Sets what GET /metrics renders (stats::render_prometheus over the
  /// whole table, which only the mode's builder has).
  void set_metrics(std::function<std::string()> metrics) {
    shared_.metrics_text = std::move(metrics);
  }
  /// The configuration the services read (a copy owned here).
  const ServerConfig& config() const { return config_; }

 private:
  std::vector<services::Listening> listeners_;
  ServerConfig config_;
  std::unique_ptr<storage::Root> root_;
  std::unique_ptr<auth::Authenticator> auth_;  ///< with --users
  services::Shared shared_;
  reactor::Reactor reactor_;
  std::unique_ptr<services::ServiceSet> services_;
};

}  // namespace fsrv::runtime
