#include "fsrv/app/serve.hpp"
#include "fsrv/core/log.hpp"

namespace fsrv::app {

// Placeholder until the prefork issue lands: refuse clearly.
int serve_process_mode(const ServerConfig&) {
  FSRV_LOG_ERROR("--mode process is not implemented yet");
  return 2;
}

}  // namespace fsrv::app
