#pragma once
// The http service's own options (--http-*, `[services.http]` in the
// configuration file), registered through its ServiceInfo::add_options and
// read from ServerConfig::services.

#include <string>
#include <string_view>
#include <vector>

#include "fsrv/core/config.hpp"

namespace CLI {
class App;
}

namespace fsrv::services::http {

struct Options : ServiceOptionsOf<Options> {
  static constexpr std::string_view kService = "http";
  /// --http-file-cache-valid: seconds a small cached file is served without
  /// a stat of its name, unless a file was uploaded or deleted through the
  /// server meanwhile (storage::SmallFileCache; nginx's
  /// open_file_cache_valid). 0: every GET stats the file.
  double file_cache_valid_s = 1.0;

  /// Read when a loop makes its cache: a change needs a restart.
  void restart_needed(const ServiceOptions& fresh,
                      std::vector<std::string>& restart) const override;
};

/// Adds --http-file-cache-valid to `app`, bound to config.services'
/// http::Options.
void add_options(CLI::App& app, ServerConfig& config);

}  // namespace fsrv::services::http
