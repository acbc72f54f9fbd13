#pragma once
// The GET engine, protocol-neutral (h2o's file handler: the body producer
// knows nothing of the framing around it). Streams a byte range of an open
// file to a connection as [prefix] transform(bytes) [suffix]:
//   - kBase64: each chunk is pread into the pool thread's scratch, encoded
//     and send(2) by the same executor item (Connection::send_file with a
//     transform); under TLS, encoded chunk buffers handed to the
//     connection's writes instead (the course protocol);
//   - kIdentity: with sendfile(2) from the executor (HTTP, the raw dialect).
// The connection pulls: a chunk is produced only when one of the
// kGetChunksInFlight buffers is free again, i.e. when the socket took an
// earlier one, so memory per transfer is bounded whatever the file size.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "fsrv/codec/base64.hpp"
#include "fsrv/core/result.hpp"
#include "fsrv/reactor/connection.hpp"
#include "fsrv/reactor/executor.hpp"
#include "fsrv/storage/storage.hpp"

namespace fsrv::transfer {

/// How file bytes become wire bytes.
enum class Transform { kIdentity, kBase64 };

/// What to send around and of the file.
struct SendOptions {
  std::string prefix;  ///< framing before the body (may be empty)
  std::string suffix;  ///< framing after the body (may be empty)
  Transform transform = Transform::kIdentity;
  const codec::Encoder* encoder = nullptr;  ///< kBase64: which codec
  uint64_t offset = 0;                      ///< first file byte sent
  uint64_t length = UINT64_MAX;             ///< bytes of the file (clamped to its size)
};

class FileSender;

/// Starts streaming `file` on `conn`. `done(status)` runs on the loop once
/// the last byte's write completed (ok), or after a read error mid-stream
/// (kIo; the connection is then closed, since framing cannot be repaired).
/// If the connection closes first, done is not called: the handler's
/// on_close learns of it. Keep the returned handle to cancel() (e.g. when
/// the handler goes away); dropping it does not stop the transfer.
std::shared_ptr<FileSender> send_file(reactor::Connection& conn, reactor::Executor& executor,
                                      storage::ReadFile file, SendOptions options,
                                      std::function<void(Status)> done);

/// A transfer in progress (opaque; shared with its executor tasks).
class FileSender {
 public:
  virtual ~FileSender() = default;
  /// Stops producing and never calls done (idempotent).
  virtual void cancel() = 0;
  /// File bytes handed to the socket so far.
  virtual uint64_t sent() const = 0;
};

}  // namespace fsrv::transfer
