// Private to the reactor's Connection files (connection*.cpp): the write
// request and the send_file job, shared by the core, its sendfile path and
// its TLS hooks. Not installed, not included outside src/reactor.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

#include "fsrv/reactor/connection.hpp"

namespace fsrv::reactor {

class Executor;

/// A write request; holds a reference to its connection until on_written.
struct WriteReq {
  uv_write_t req;
  ConnRef conn;
  std::function<void(int)> cb;
  std::string owned;  ///< the owned bytes (outbox) this request writes
  size_t bytes = 0;   ///< counted in pending_bytes_
  bool is_owned = false;
};

/// A send_file in progress (shared with its executor task).
struct SendFileJob {
  int file_fd;
  int sock_fd;
  uint64_t offset;
  uint64_t left;
  uint64_t sent = 0;
  Executor* executor;
  std::function<void(int, uint64_t)> done;
  bool running = false;  ///< a work item is in flight
  int task_errno = 0;
};

}  // namespace fsrv::reactor
