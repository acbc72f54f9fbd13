#include "fsrv/app/serve.hpp"
#include "fsrv/process/prefork.hpp"

namespace fsrv::app {

int serve_process_mode(const ServerConfig& config) { return process::run_master(config); }

}  // namespace fsrv::app
