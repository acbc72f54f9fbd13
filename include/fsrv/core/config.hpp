#pragma once
// Server configuration: every command-line option of bin/fileserver, with
// its default (docs/PROTOCOL.md and README.md list them).

#include <cstdint>
#include <string>
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

struct ServerConfig {
  /// Every listener, in the order given; empty means one `file` listener on
  /// host:port (the --host/--port shorthand).
  std::vector<ListenSpec> listeners;
  std::string host = "0.0.0.0";
  int port = 6666;  ///< 0 = any free port (printed on stdout)
  std::string root = "./files";
  int workers = 4;  ///< thread pool size or worker processes
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

  // chat service (src/services/chat/chat_service.cpp)
  /// --chat-users: JSON users file (chat_users.hpp); "" = the course's demo users.
  std::string chat_users;
  /// --chat-session-ttl: idle seconds before a chat session expires (the
  /// default is chat::kDefaultSessionTtlS, an hour).
  double chat_session_ttl_s = 3600.0;
  /// --chat-db: "sqlite:PATH", "postgresql://..." or "" (SQLite under the root).
  std::string chat_db;

  // udp-sink service (src/services/udp_sink/udp_sink_service.cpp)
  /// --udp-idle-ms: a sender silent this long has its file committed.
  int udp_idle_ms = 2000;
  /// --udp-max-senders: files open at once (the oldest idle is committed
  /// to make room).
  int udp_max_senders = 64;
  /// --udp-address-files: files one source address (any port) may start
  /// per --udp-address-window; datagrams beyond are dropped and counted.
  int udp_address_files = 16;
  /// --udp-address-bytes: bytes one source address may store per window.
  uint64_t udp_address_bytes = 256ull << 20;
  /// --udp-address-window: seconds of the per-address quota's window.
  double udp_address_window_s = 60.0;

  // tftp service (src/services/tftp/)
  /// --tftp-timeout: seconds between retransmissions when the client asks
  /// for no `timeout` option (RFC 2349); fractions allowed.
  double tftp_timeout_s = 1.0;
  /// --tftp-retries: retransmissions of one packet before the transfer is
  /// abandoned.
  int tftp_retries = 5;
  /// --tftp-read-only: every WRQ is refused with ERROR 2.
  bool tftp_read_only = false;
  /// --tftp-no-overwrite: a WRQ for an existing name gets ERROR 6.
  bool tftp_no_overwrite = false;
};

}  // namespace fsrv
