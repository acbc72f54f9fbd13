// The udp-sink service's command-line options and configuration keys (see
// udp_sink_options.hpp).

#include "fsrv/services/udp_sink/udp_sink_options.hpp"

#include <CLI/CLI.hpp>

namespace fsrv::services::udp_sink {

void Options::restart_needed(const ServiceOptions& fresh_options,
                             std::vector<std::string>& restart) const {
  const auto& fresh = static_cast<const Options&>(fresh_options);
  if (idle_ms != fresh.idle_ms) restart.emplace_back("udp-idle-ms");
  if (max_senders != fresh.max_senders) restart.emplace_back("udp-max-senders");
}

void add_options(CLI::App& app, ServerConfig& config) {
  Options& o = config.services.get<Options>();
  app.add_option("--udp-idle-ms", o.idle_ms,
                 "udp-sink: commit a sender's file after this many ms of silence")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600 * 1000));
  app.add_option("--udp-max-senders", o.max_senders,
                 "udp-sink: senders with an open file at once (oldest idle committed first)")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  app.add_option("--udp-address-files", o.address_files,
                 "udp-sink: files one source address may start per --udp-address-window")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--udp-address-bytes", o.address_bytes,
                 "udp-sink: bytes one source address may store per --udp-address-window")
      ->capture_default_str();
  app.add_option("--udp-address-window", o.address_window_s,
                 "udp-sink: seconds of the per-address quota window")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
}

}  // namespace fsrv::services::udp_sink
