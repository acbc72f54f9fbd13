#pragma once
// The GET engine, protocol-neutral (h2o's file handler: the body producer
// knows nothing of the framing around it). Streams a byte range of an open
// file to a reactor::TransferPeer as [prefix] transform(bytes) [suffix]:
//   - kBase64: without TLS, each chunk is pread, encoded and send(2) by one
//     executor item (TransferPeer::body_send_file with a transform:
//     Connection::send_file); under TLS, or to a peer that cannot send
//     files, each chunk is pread into the pool thread's scratch and encoded
//     straight into a chunk buffer handed to the peer (the course protocol);
//   - kIdentity: with sendfile(2) from the executor when the peer can (a TCP
//     connection: HTTP, the raw dialect), else pread into a chunk buffer (a
//     TFTP read transfer, which cuts its DATA blocks out of the chunks);
//   - kCustom: pread into scratch, then SendOptions::custom into the chunk
//     buffer (TFTP's netascii).
// The peer pulls: a chunk is produced only when one of the
// kGetChunksInFlight buffers is free again, i.e. when the peer gave an
// earlier one back (TransferPeer::body_write's done: the socket took it, or
// the TFTP client acknowledged it) and the peer wants more
// (TransferPeer::body_wants_more, else FileSender::proceed later), so memory
// per transfer is bounded whatever the file size. Each chunk buffer belongs
// to the engine; the peer only borrows it until it calls done.

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "fsrv/codec/base64.hpp"
#include "fsrv/core/result.hpp"
#include "fsrv/reactor/executor.hpp"
#include "fsrv/reactor/transfer_peer.hpp"
#include "fsrv/storage/storage.hpp"

namespace fsrv::transfer {

/// How file bytes become wire bytes.
enum class Transform { kIdentity, kBase64, kCustom };

/// What to send around and of the file.
struct SendOptions {
  std::string prefix;  ///< framing before the body (may be empty)
  std::string suffix;  ///< framing after the body (may be empty)
  Transform transform = Transform::kIdentity;
  const codec::Encoder* encoder = nullptr;  ///< kBase64: which codec
  uint64_t offset = 0;                      ///< first file byte sent
  uint64_t length = UINT64_MAX;             ///< bytes of the file (clamped to its size)
  /// kCustom: writes the transform of `in` to `out` (room for `expansion`
  /// x in.size() bytes) and returns the bytes written; runs on a pool thread.
  size_t (*custom)(std::span<const uint8_t> in, char* out) = nullptr;
  size_t expansion = 1;
  /// Raw file bytes per chunk when fixed by the peer (a TFTP window or
  /// more); 0: the adaptive size of a stream (48 KiB doubling up to
  /// limits::kGetChunk while the socket keeps up). `first_chunk`, if set,
  /// is the first one's size (TFTP: one block until the client answers).
  size_t chunk = 0;
  size_t first_chunk = 0;
};

class FileSender;

/// Starts streaming `file` to `peer` (a reactor::Connection, a TFTP read
/// transfer). `done(status)` runs on the loop once the peer gave the last
/// chunk back (ok). After a read error mid-stream, or when the file shrank,
/// the peer is told by body_abort() (framing cannot be repaired) and done
/// is not called; nor is it if the peer closes first (the handler's
/// on_close learns of it). Keep the returned handle to cancel() (e.g. when
/// the handler goes away) or proceed(); dropping it does not stop the
/// transfer.
std::shared_ptr<FileSender> send_file(reactor::TransferPeer& peer, reactor::Executor& executor,
                                      storage::ReadFile file, SendOptions options,
                                      std::function<void(Status)> done);

/// A transfer in progress (opaque; shared with its executor tasks).
class FileSender {
 public:
  virtual ~FileSender() = default;
  /// Stops producing and never calls done (idempotent).
  virtual void cancel() = 0;
  /// File bytes whose chunks the peer gave back so far.
  virtual uint64_t sent() const = 0;
  /// The peer wants chunks again after body_wants_more() said no.
  virtual void proceed() = 0;
};

}  // namespace fsrv::transfer
