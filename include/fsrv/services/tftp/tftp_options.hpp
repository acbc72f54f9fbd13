#pragma once
// The tftp service's own options (--tftp-*, `[services.tftp]` in the
// configuration file), declared here rather than in core's ServerConfig:
// the service registers them through its ServiceInfo::add_options, and
// reads them from ServerConfig::services.

#include <string>
#include <string_view>
#include <vector>

#include "fsrv/core/config.hpp"

namespace CLI {
class App;
}

namespace fsrv::services::tftp {

struct Options : ServiceOptionsOf<Options> {
  static constexpr std::string_view kService = "tftp";
  /// --tftp-timeout: seconds between retransmissions when the client asks
  /// for no `timeout` option (RFC 2349); fractions allowed.
  double timeout_s = 1.0;
  /// --tftp-retries: retransmissions of one packet before the transfer is
  /// abandoned.
  int retries = 5;
  /// --tftp-read-only: every WRQ is refused with ERROR 2.
  bool read_only = false;
  /// --tftp-no-overwrite: a WRQ for an existing name gets ERROR 6.
  bool no_overwrite = false;

  /// Every one of them is read when a transfer starts, from the options the
  /// serving process was started with: a change needs a restart.
  void restart_needed(const ServiceOptions& fresh,
                      std::vector<std::string>& restart) const override;
};

/// Adds --tftp-timeout, --tftp-retries, --tftp-read-only and
/// --tftp-no-overwrite to `app`, bound to config.services' tftp::Options.
void add_options(CLI::App& app, ServerConfig& config);

}  // namespace fsrv::services::tftp
