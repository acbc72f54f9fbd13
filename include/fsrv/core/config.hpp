#pragma once
// Server configuration: every command-line option of bin/fileserver, with
// its default (docs/PROTOCOL.md and README.md list them). A service's own
// options are declared by the service (services/NAME/NAME_options.hpp) and
// carried here untyped (ServiceOptionSet): core names no service.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fsrv/codec/base64.hpp"
#include "fsrv/core/limits.hpp"
#include "fsrv/core/listener_policy.hpp"

namespace fsrv {

/// Which executor runs the blocking chunks of requests.
enum class PoolMode { kThread, kProcess };

/// host:port of a listener. `host` is an IPv4 or IPv6 literal (no brackets).
struct Endpoint {
  std::string host = "0.0.0.0";
  int port = 0;  ///< 0 = any free port
  /// "HOST:PORT", with brackets around an IPv6 host.
  std::string text() const {
    bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  }
};

/// One listener: a registered service on an endpoint (--listen SERVICE=[HOST:]PORT).
struct ListenSpec {
  std::string service;
  Endpoint endpoint;
  /// `,max-conns=N`: the most connections this listener holds; 0 = its
  /// default share (reactor::ConnectionLimits::plan).
  int max_conns = 0;
  /// `,tls`: TLS 1.2/1.3 under the service, with --tls-cert/--tls-key.
  bool tls = false;
  /// `,ro` and `,auth=write|all`: what its clients may do (default: everything).
  ListenerPolicy policy{};
};

/// Exit code for a configuration that cannot be served (bad option, file,
/// key or value; unknown service, duplicate address, port in use): nothing
/// is served. The one definition for main, app/ and process/.
inline constexpr int kExitConfig = 2;

/// A service's own settings (its command-line options and `[services.NAME]`
/// keys), declared by the service in its own header
/// (services/NAME/NAME_options.hpp) and registered through its
/// services::ServiceInfo::add_options: core carries them without knowing
/// their type. Derive through ServiceOptionsOf.
class ServiceOptions {
 public:
  virtual ~ServiceOptions() = default;
  virtual std::unique_ptr<ServiceOptions> clone() const = 0;
  /// Copies `other` (the same type) into this object, which stays where it
  /// is (the command-line parser holds the addresses of its members).
  virtual void assign(const ServiceOptions& other) = 0;
  /// SIGHUP: appends the name of each option whose value in `fresh` (the
  /// same type) differs and takes effect only after a restart.
  virtual void restart_needed(const ServiceOptions& /*fresh*/,
                              std::vector<std::string>& /*restart*/) const {}
  /// SIGHUP: takes from `fresh` what applies while serving (chat: its
  /// users file). Default: nothing.
  virtual void apply_live(const ServiceOptions& /*fresh*/) {}
};

/// The base of a service's options type T (which names its service in
/// `static constexpr std::string_view kService`): clone and assign.
template <typename T>
class ServiceOptionsOf : public ServiceOptions {
 public:
  std::unique_ptr<ServiceOptions> clone() const override {
    return std::make_unique<T>(static_cast<const T&>(*this));
  }
  void assign(const ServiceOptions& other) override {
    static_cast<T&>(*this) = static_cast<const T&>(other);
  }
};

/// Every service's options, by service name. A value: copying copies each
/// service's options, and assigning copies them into the objects already
/// held (so options bound by address stay bound).
class ServiceOptionSet {
 public:
  ServiceOptionSet() = default;
  ServiceOptionSet(const ServiceOptionSet& other) { *this = other; }
  ServiceOptionSet& operator=(const ServiceOptionSet& other) {
    if (this == &other) return *this;
    for (auto it = by_name_.begin(); it != by_name_.end();) {
      it = other.by_name_.count(it->first) != 0 ? std::next(it) : by_name_.erase(it);
    }
    for (const auto& [name, options] : other.by_name_) {
      auto& mine = by_name_[name];
      if (mine) {
        mine->assign(*options);
      } else {
        mine = options->clone();
      }
    }
    return *this;
  }
  ServiceOptionSet(ServiceOptionSet&&) = default;
  ServiceOptionSet& operator=(ServiceOptionSet&&) = default;

  /// Service T's options, made with their defaults at first use.
  template <typename T>
  T& get() {
    auto& options = by_name_[std::string(T::kService)];
    if (!options) options = std::make_unique<T>();
    return static_cast<T&>(*options);
  }
  /// As above; T's defaults when none were made.
  template <typename T>
  const T& get() const {
    auto it = by_name_.find(T::kService);
    if (it == by_name_.end()) {
      static const T kDefaults;
      return kDefaults;
    }
    return static_cast<const T&>(*it->second);
  }
  /// ServiceOptions::restart_needed for each service held by both.
  void restart_needed(const ServiceOptionSet& fresh, std::vector<std::string>& restart) const {
    for (const auto& [name, options] : by_name_) {
      auto it = fresh.by_name_.find(name);
      if (it != fresh.by_name_.end()) options->restart_needed(*it->second, restart);
    }
  }
  /// ServiceOptions::apply_live for each service held by both.
  void apply_live(const ServiceOptionSet& fresh) {
    for (const auto& [name, options] : by_name_) {
      auto it = fresh.by_name_.find(name);
      if (it != fresh.by_name_.end()) options->apply_live(*it->second);
    }
  }

 private:
  std::map<std::string, std::unique_ptr<ServiceOptions>, std::less<>> by_name_;
};

struct ServerConfig {
  /// Every listener, in the order given; empty means one `file` listener on
  /// host:port (the --host/--port shorthand).
  std::vector<ListenSpec> listeners;
  std::string host = "0.0.0.0";
  int port = 6666;  ///< 0 = any free port (printed on stdout)
  std::string root = "./files";
  int workers = 4;  ///< thread pool size or worker processes
  /// Thread mode: event-loop threads, each with its own reactor, all
  /// accepting on the same listening sockets (1 = the main thread's loop only).
  int loops = 1;
  PoolMode mode = PoolMode::kThread;
  uint64_t max_upload = limits::kDefaultMaxUpload;  ///< decoded bytes
  double idle_timeout_s = limits::kDefaultIdleTimeoutS;
  int max_conns = limits::kDefaultMaxConns;
  /// --max-conns-per-address: connections one source address may hold (0 = no cap).
  int max_conns_per_address = limits::kDefaultMaxConnsPerAddress;
  double stats_interval_s = 0;  ///< 0 = no periodic stats line
  int legacy_idle_ms = limits::kDefaultLegacyIdleMs;
  double grace_s = limits::kDefaultGraceS;
  double request_timeout_s = limits::kDefaultRequestTimeoutS;  ///< 0 = none
  double min_rate = limits::kDefaultMinRate;                   ///< bytes/s; 0 = none
  double min_rate_window_s = limits::kDefaultMinRateWindowS;
  codec::Base64Kind codec = codec::Base64Kind::kFast;

  // TLS (docs/TLS.md)
  /// --tls-cert / --tls-key: PEM certificate chain and private key served
  /// by every `,tls` listener; required by one.
  std::string tls_cert;
  std::string tls_key;

  // cluster (docs/CLUSTER.md)
  /// --node-id: this node's name in upload temporaries and /healthz; "" =
  /// storage::default_node_id() (host name + boot id).
  std::string node_id;
  /// --drain-delay: seconds between a stop signal and closing the
  /// listeners, during which /healthz answers 503 so a load balancer stops
  /// sending new clients first (0 = close at once, as on one machine).
  double drain_delay_s = 0;

  /// --users: the accounts file of auth= listeners (auth/users.hpp); "" = none.
  std::string users_file;

  /// Each service's own options (services/NAME/NAME_options.hpp):
  /// `services.get<tftp::Options>()`.
  ServiceOptionSet services;
};

}  // namespace fsrv
