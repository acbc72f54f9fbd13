#pragma once
// Services: each course system is a service with its own protocol on its own
// listeners (file 6666, echo 31000-31002, http, chat, session, tftp...). A
// service is a directory under src/services/ plus one line in
// src/services/registry.cpp; the reactor never names one.
//
// Layers: a service may use transfer/, storage/, codec/, stats/, reactor/
// and core/; never process/ or app/ (checked by tools/check-layers.sh).

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fsrv/core/config.hpp"
#include "fsrv/reactor/datagram.hpp"
#include "fsrv/reactor/executor.hpp"
#include "fsrv/reactor/reactor.hpp"
#include "fsrv/stats/duration.hpp"
#include "fsrv/stats/stats.hpp"

namespace CLI {
class App;
}
namespace fsrv::storage {
class Root;
}
namespace fsrv::auth {
class Authenticator;
}

namespace fsrv::services {

struct Listening;

/// What every service of one serving process shares (one per process: made
/// by thread mode's main or by each prefork worker after fork).
struct Shared {
  const ServerConfig* config = nullptr;
  storage::Root* root = nullptr;
  reactor::Executor* executor = nullptr;
  const stats::Schema* schema = nullptr;
  stats::StatsSlot* stats = nullptr;  ///< this process's counters
  /// The STATS data object (JSON text), summed over all processes.
  std::function<std::string()> stats_json;
  /// The same counters in the Prometheus text format (GET /metrics); may be
  /// empty (then /metrics is 404).
  std::function<std::string()> metrics_text;
  /// Called by a datagram service during shutdown when its busy() may have
  /// turned false (the runtime re-checks whether the shutdown is complete;
  /// the check runs later on the loop, never inside the caller). May be empty.
  std::function<void()> work_done;
  /// Every listener of this server with its service resolved (runtime::
  /// resolve_listeners), in configuration order: the admin service's
  /// /healthz names them. Null only in tests that make a service alone.
  const std::vector<Listening>* listening = nullptr;
  /// The --users accounts (auth/authenticator.hpp); null without --users.
  auth::Authenticator* auth = nullptr;
  /// This node's id (--node-id, else storage::default_node_id()): /healthz says it.
  std::string node_id;
  /// The loop this serving process runs on (services with handles of their own).
  uv_loop_t* loop = nullptr;
  /// Answers one readiness probe, on the loop thread.
  using ReadyReply = std::function<void(bool ready, std::string detail)>;
  /// Readiness probes the services register while they are made (chat: its
  /// database answers); the admin service's /healthz runs them all.
  std::vector<std::pair<std::string, std::function<void(ReadyReply)>>> readiness;
};

struct ServiceInfo;

/// The refusal text every service words the same way, framed by each
/// protocol's reply: "server shutting down", or "server busy: too many
/// connections (limit N)".
std::string busy_text(reactor::Refusal why, int limit);

/// What a TCP and a UDP service instance share: the serving process's
/// Shared, the service's name, its counters and its listeners' policy.
class ServiceBase {
 public:
  ServiceBase(Shared& shared, std::string_view name);
  /// Counts one finished request of `seconds` in "NAME/duration/..."
  /// (a histogram: fsrv_request_duration_seconds on /metrics).
  void observe_duration(double seconds) { duration_.observe(*shared_.stats, seconds); }
  /// What this instance's listeners allow (`,ro`, `,auth=`; a datagram
  /// carries no account): each service checks it at the verb that writes or
  /// deletes. Listeners of one service with different policies get an
  /// instance each (ServiceSet).
  const ListenerPolicy& policy() const { return policy_; }
  void set_policy(const ListenerPolicy& policy) { policy_ = policy; }
  /// A counter of this service: "NAME/" + path (registered before fork;
  /// counting an unregistered path is a no-op).
  stats::Counter counter(std::string_view path) const;
  /// Adds `n` to one of this process's counters.
  void count(stats::Counter c, uint64_t n = 1) { shared_.stats->add(c, n); }
  Shared& shared() { return shared_; }

 protected:
  Shared& shared_;
  std::string name_;
  stats::Duration duration_;
  ListenerPolicy policy_;
};

/// A TCP service instance: makes the protocol handler of each connection on
/// its listeners and counts its connections ("NAME/connections/...").
class Service : public ServiceBase, public reactor::ConnectionFactory {
 public:
  /// `info` is the service's registration (it words the refusals).
  Service(Shared& shared, const ServiceInfo& info);
  /// Counts the connection, then create_handler().
  std::unique_ptr<reactor::ConnectionHandler> make_handler(reactor::Connection& conn) final;
  std::string_view name() const final { return name_; }
  /// The registration's refusal text (ServiceInfo::refusal).
  std::string refusal(reactor::Refusal why, int limit) const override;
  /// SIGHUP: the live configuration (Shared::config) was just updated;
  /// re-read what the service keeps from it (chat: its users file). A
  /// failure is logged and the running state stays. Default: nothing.
  virtual void reload() {}

 protected:
  virtual std::unique_ptr<reactor::ConnectionHandler> create_handler(reactor::Connection& conn) = 0;

 private:
  const ServiceInfo* info_;
  stats::Counter conns_total_, conns_active_;
};

/// A UDP service instance: receives every datagram of its
/// listeners (reactor::DatagramListener) on the loop thread. One instance
/// per service per serving process, like Service.
class DatagramService : public ServiceBase, public reactor::DatagramHandler {
 public:
  using ServiceBase::ServiceBase;

  /// True while work started before shutdown goes on after the listeners
  /// stopped (TFTP transfers on their own ports): the shutdown waits for it
  /// up to --grace, as for TCP connections. Call shared.work_done when it
  /// may have turned false.
  virtual bool busy() const { return false; }
  /// The grace period is over (or the stop signal came twice): end that
  /// work now; busy() turns false once its handles are closed.
  virtual void force_stop() {}
};

/// How a service's listeners carry bytes.
enum class Transport { kStream, kDatagram };

/// The listener keys a service honours (ServiceInfo::policy_keys); a key it
/// does not is refused at start (exit 2), never silently ignored.
inline constexpr unsigned kPolicyReadOnly = 1;  ///< `,ro`
inline constexpr unsigned kPolicyAuth = 2;      ///< `,auth=write|all`

/// A registered service: its name, what it is, its course default port,
/// and how to make it.
struct ServiceInfo {
  std::string_view name;
  std::string_view description;    ///< one line, for `fileserver --services`
  std::vector<int> default_ports;  ///< the course's ports (`make run-server`, --all-services)
  std::string_view try_command;    ///< a shell command to try it ("{port}" = its port)
  /// Registers the service's counters (before any fork).
  void (*register_stats)(stats::Schema& schema) = nullptr;
  /// Bytes sent to a client refused at accept (busy, shutting down); stream services only.
  std::string (*refusal)(reactor::Refusal why, int limit) = nullptr;
  /// Makes the service for one serving process (stream services).
  std::unique_ptr<Service> (*create)(Shared& shared) = nullptr;
  /// kDatagram: listeners are UDP sockets and create_datagram makes the
  /// service (create is then null).
  Transport transport = Transport::kStream;
  std::unique_ptr<DatagramService> (*create_datagram)(Shared& shared) = nullptr;
  /// kPolicyReadOnly | kPolicyAuth: the listener keys it honours.
  unsigned policy_keys = 0;
  /// Declares the service's own command-line options (CLI11), bound to its
  /// options type in config.services (e.g. tftp::Options in
  /// services/tftp/tftp_options.hpp); main calls it for every service, and
  /// the configuration file and --print-config follow (an option
  /// --NAME-KEY is the key KEY of [services.NAME]). Null: none.
  void (*add_options)(CLI::App& app, ServerConfig& config) = nullptr;
};

/// A listener with its service resolved once, as nginx's ngx_listening_t
/// carries its handler: runtime::resolve_listeners makes them after the
/// configuration is read, and the stats registration, ServiceSet, the
/// prefork master (per accepted connection) and the datagram listeners
/// take the service from here, never by name again.
struct Listening {
  ListenSpec spec;
  const ServiceInfo* service = nullptr;  ///< never null once resolved
  bool datagram() const { return service->transport == Transport::kDatagram; }
};

/// "" if the listener's `,ro` / `,auth=` is one its service honours, else
/// why not (e.g. "tftp cannot carry an account: auth= refused").
std::string check_policy(const Listening& listener);
/// For `--services`: "ro, auth", "ro" or "open only".
std::string policy_keys_text(const ServiceInfo& info);

/// Every registered service, in registry order.
const std::vector<ServiceInfo>& registry();
/// The registered service called `name`, or null. For start-up only: the
/// listener resolver (runtime::resolve_listeners) and main's option checks
/// and --services; after that each listener carries its ServiceInfo.
const ServiceInfo* find(std::string_view name);

/// Registers "NAME/connections/{total,active}" plus the service's own
/// counters for every listener's service.
void register_stats(const std::vector<Listening>& listeners, stats::Schema& schema);

/// One service instance per listener (listeners of the same service share
/// one), in listener order: the wiring used by thread mode and by every
/// prefork worker.
class ServiceSet {
 public:
  ServiceSet(const std::vector<Listening>& listeners, Shared& shared);
  /// The factory serving stream listener `index`.
  reactor::ConnectionFactory& for_listener(size_t index) { return *by_listener_[index]; }
  /// The handler of datagram listener `index`.
  reactor::DatagramHandler& datagram_for_listener(size_t index) {
    return *datagram_by_listener_[index];
  }
  /// Some datagram service still has work after shutdown began.
  bool datagram_busy() const;
  /// Ends every datagram service's remaining work (DatagramService::force_stop).
  void force_datagrams();
  /// Service::reload on every stream service (SIGHUP, after the config).
  void reload();

 private:
  std::vector<std::unique_ptr<Service>> owned_;
  std::vector<std::unique_ptr<DatagramService>> owned_datagram_;
  std::vector<Service*> by_listener_;                   ///< null for datagram listeners
  std::vector<DatagramService*> datagram_by_listener_;  ///< null for stream listeners
};

}  // namespace fsrv::services
