// The http service's command-line options and configuration keys (see
// http_options.hpp).

#include "fsrv/services/http/http_options.hpp"

#include <CLI/CLI.hpp>

namespace fsrv::services::http {

void Options::restart_needed(const ServiceOptions& fresh_options,
                             std::vector<std::string>& restart) const {
  const auto& fresh = static_cast<const Options&>(fresh_options);
  if (file_cache_valid_s != fresh.file_cache_valid_s) {
    restart.emplace_back("http-file-cache-valid");
  }
}

void add_options(CLI::App& app, ServerConfig& config) {
  Options& o = config.services.get<Options>();
  app.add_option("--http-file-cache-valid", o.file_cache_valid_s,
                 "http: seconds a cached small file is served without a stat (0: stat every "
                 "GET); changes made through the server are seen at once")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
}

}  // namespace fsrv::services::http
