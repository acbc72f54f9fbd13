#include "fsrv/core/version.hpp"

#ifndef FSRV_VERSION
#define FSRV_VERSION "0.0.0"
#endif
#ifndef FSRV_COMMIT
#define FSRV_COMMIT "unknown"
#endif

namespace fsrv {

std::string_view version() { return FSRV_VERSION; }

std::string_view git_commit() { return FSRV_COMMIT; }

std::string version_line() {
  return "fsrv " + std::string(version()) + " (commit " + std::string(git_commit()) + ")";
}

std::string server_token() { return "fsrv/" + std::string(version()); }

}  // namespace fsrv
