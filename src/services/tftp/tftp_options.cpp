// The tftp service's command-line options and configuration keys (see
// tftp_options.hpp).

#include "fsrv/services/tftp/tftp_options.hpp"

#include <CLI/CLI.hpp>

namespace fsrv::services::tftp {

void Options::restart_needed(const ServiceOptions& fresh_options,
                             std::vector<std::string>& restart) const {
  const auto& fresh = static_cast<const Options&>(fresh_options);
  if (timeout_s != fresh.timeout_s) restart.emplace_back("tftp-timeout");
  if (retries != fresh.retries) restart.emplace_back("tftp-retries");
  if (read_only != fresh.read_only) restart.emplace_back("tftp-read-only");
  if (no_overwrite != fresh.no_overwrite) restart.emplace_back("tftp-no-overwrite");
}

void add_options(CLI::App& app, ServerConfig& config) {
  Options& o = config.services.get<Options>();
  app.add_option("--tftp-timeout", o.timeout_s,
                 "tftp: seconds between retransmissions unless the client asks (RFC 2349)")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 255.0));
  app.add_option("--tftp-retries", o.retries,
                 "tftp: retransmissions of one packet before a transfer is abandoned")
      ->capture_default_str()
      ->check(CLI::Range(0, 100));
  app.add_flag("--tftp-read-only", o.read_only, "tftp: refuse every write request");
  app.add_flag("--tftp-no-overwrite", o.no_overwrite,
               "tftp: refuse a write request for an existing file (ERROR 6)");
}

}  // namespace fsrv::services::tftp
