#pragma once
// The counters in the Prometheus text exposition format, version 0.0.4
// (prometheus.io/docs/instrumenting/exposition_formats), summed over every
// slot of the table (in process mode: the master and all workers). Names
// follow the Prometheus naming conventions: fsrv_ prefix, base units,
// `_total` for counters, `_bytes` and `_seconds` units.
//
// The schema's paths are mapped generically, so a counter a service
// registers later is exported without code here:
//   SVC/commands/VERB/ok|failed, SVC/X/ok|failed
//                        -> fsrv_requests_total{service,verb,result}
//   SVC/connections/total -> fsrv_service_connections_total{service}
//   SVC/connections/active -> fsrv_service_connections_open{service} (gauge)
//   SVC/status/CODE       -> fsrv_responses_total{service,code}
//   SVC/bytes/DIR         -> fsrv_SVC_DIR_bytes_total
//   SVC/A/B               -> fsrv_SVC_A_B_total (one service's own counter)
//   SVC/duration/...      -> fsrv_request_duration_seconds{service} (histogram,
//                            stats/duration.hpp)

#include <string>
#include <string_view>

#include "fsrv/stats/stats.hpp"

namespace fsrv::stats {

/// Build facts exported as fsrv_build_info{version,commit} 1.
struct BuildInfo {
  std::string_view version;
  std::string_view commit;
  std::string_view mode;  ///< "thread" | "process"
};

/// The whole scrape body (ends with a newline), for `Content-Type:
/// text/plain; version=0.0.4; charset=utf-8`.
std::string render_prometheus(const StatsTable& table, const Schema& schema, const BuildInfo& build,
                              double uptime_s);

}  // namespace fsrv::stats
