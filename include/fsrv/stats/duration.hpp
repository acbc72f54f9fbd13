#pragma once
// Request-duration histograms in the counter cells: per service, one cell
// per bucket (non-cumulative: an observation lands in the first bucket
// whose bound holds it), a count and a sum in microseconds. Registered
// before fork like every counter; rendered as a Prometheus histogram
// (fsrv_request_duration_seconds, stats/prometheus.hpp) only: STATS and
// the stats line leave them out.

#include <string_view>

#include "fsrv/stats/stats.hpp"

namespace fsrv::stats {

/// Bucket bounds in seconds: Prometheus' default ladder (1 ms to 10 s)
/// extended to a minute, since a transfer of a large file is one request.
inline constexpr double kDurationBounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                             0.5,   1,      2.5,   5,    10,    30,   60};
inline constexpr int kDurationBuckets = sizeof kDurationBounds / sizeof kDurationBounds[0];

/// The cells of one service's histogram: "BASE/duration/le/BOUND",
/// "BASE/duration/count", "BASE/duration/sum_us".
struct Duration {
  Counter buckets[kDurationBuckets];
  Counter count;
  Counter sum_us;

  /// Registers the cells of `base` ("file") in `schema` (before fork).
  static void register_cells(Schema& schema, std::string_view base);
  /// The cells of `base` as registered (unregistered ones count nowhere).
  static Duration of(const Schema& schema, std::string_view base);
  /// Counts one request of `seconds` into `slot`.
  void observe(StatsSlot& slot, double seconds) const;
};

}  // namespace fsrv::stats
