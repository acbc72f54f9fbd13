// Private to the reactor's Connection files (connection*.cpp): the write
// request and the send_file job, shared by the core, its sendfile path and
// its TLS hooks. Not installed, not included outside src/reactor.
#pragma once

#include <unistd.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

#include "fsrv/reactor/buffer.hpp"
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
  /// sock_fd is the job's own dup(2) of the socket: a work item still
  /// running when the connection closes writes to the same socket, never to
  /// whatever descriptor reuses libuv's number.
  ~SendFileJob() {
    if (sock_fd >= 0) ::close(sock_fd);
  }
  int file_fd = -1;
  int sock_fd = -1;
  uint64_t offset = 0;
  uint64_t left = 0;
  uint64_t sent = 0;
  Executor* executor = nullptr;
  /// The task may wait in poll(2) for a full socket (Executor::runs_off_loop).
  bool wait_in_task = false;
  /// What the running work item may still spend waiting for a full socket
  /// (Connection::kSendWaitNs at the item's start), in nanoseconds.
  int64_t wait_left_ns = 0;
  std::function<void(int, uint64_t)> done;
  bool running = false;  ///< a work item is in flight
  int task_errno = 0;
  /// With a transform: the encoded bytes of the chunk being sent, how far
  /// they went out, and the file bytes they stand for.
  const SendTransform* transform = nullptr;
  Buffer encoded;
  size_t encoded_len = 0;
  size_t encoded_off = 0;
  size_t encoded_raw = 0;
  uint64_t wire_sent = 0;  ///< bytes sent on the socket (== sent without a transform)
};

}  // namespace fsrv::reactor
