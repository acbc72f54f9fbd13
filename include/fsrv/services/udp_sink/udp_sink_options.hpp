#pragma once
// The udp-sink service's own options (--udp-*: top-level keys of the
// configuration file, as the option names carry no service prefix),
// declared here rather than in core's ServerConfig: the service registers
// them through its ServiceInfo::add_options and reads them from
// ServerConfig::services.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fsrv/core/config.hpp"

namespace CLI {
class App;
}

namespace fsrv::services::udp_sink {

struct Options : ServiceOptionsOf<Options> {
  static constexpr std::string_view kService = "udp-sink";
  /// --udp-idle-ms: a sender silent this long has its file committed.
  int idle_ms = 2000;
  /// --udp-max-senders: files open at once (the oldest idle is committed
  /// to make room).
  int max_senders = 64;
  /// --udp-address-files: files one source address (any port) may start
  /// per --udp-address-window; datagrams beyond are dropped and counted.
  int address_files = 16;
  /// --udp-address-bytes: bytes one source address may store per window.
  uint64_t address_bytes = 256ull << 20;
  /// --udp-address-window: seconds of the per-address quota's window.
  double address_window_s = 60.0;

  /// --udp-idle-ms and --udp-max-senders are named when a SIGHUP changes
  /// them (the service keeps the values it started with).
  void restart_needed(const ServiceOptions& fresh,
                      std::vector<std::string>& restart) const override;
};

/// Adds the --udp-* options to `app`, bound to config.services'
/// udp_sink::Options.
void add_options(CLI::App& app, ServerConfig& config);

}  // namespace fsrv::services::udp_sink
