#pragma once
// Top of the server: runs a configuration in one of the two pool modes until
// SIGINT/SIGTERM. Each mode is a thin shell around runtime::ServingProcess
// (the one builder) and reactor::Lifecycle (the one shutdown).

#include "fsrv/core/config.hpp"

namespace fsrv::app {

/// Thread mode: one loop accepts and serves every listener; blocking chunks
/// run on libuv's thread pool of config.workers threads. Prints one
/// "listening SERVICE on HOST:PORT" line per listener first. Returns the
/// exit code (0 after a graceful shutdown, kExitConfig, or 1).
int serve_thread_mode(const ServerConfig& config);

/// Process mode (prefork): see include/fsrv/process/prefork.hpp.
int serve_process_mode(const ServerConfig& config);

}  // namespace fsrv::app
