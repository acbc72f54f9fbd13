#pragma once
// Blocking client for the course file protocol (docs/PROTOCOL.md): one TCP
// connection, one request at a time, every transfer streamed (never a whole
// file or its base64 in memory). Used by filecli, the stress bench and tests.
// Owns: the client socket and reply parsing; knows nothing of local files
// (callers pass sources and sinks).

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "fsrv/codec/base64.hpp"

namespace fsrv::client {

/// Why a call failed; filecli maps these to its exit codes (1, 3, 3, 1).
enum class ErrorKind {
  kNone,
  kServer,      ///< the server replied {"status":"ERROR","data":...}
  kConnection,  ///< connect, send, receive or timeout failure
  kProtocol,    ///< the reply was not what the protocol says
  kLocal,       ///< the caller's source or sink failed
};

/// Outcome of one request.
struct Result {
  ErrorKind kind = ErrorKind::kNone;
  std::string message;  ///< server's "data" text for kServer, else a description
  std::string json;     ///< the whole reply for small replies; empty for GET
  uint64_t bytes = 0;   ///< file bytes transferred by get()/upload()
  bool ok() const { return kind == ErrorKind::kNone; }
};

/// Called now and then with (bytes done, total bytes or 0 if unknown).
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;
/// Receives decoded file bytes in order; returning false aborts the GET.
using SinkFn = std::function<bool(std::span<const uint8_t>)>;
/// Fills the span with the next file bytes; returns the count, 0 at end of
/// file, -1 on error.
using SourceFn = std::function<long(std::span<uint8_t>)>;

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 6666;
  codec::Base64Kind codec = codec::Base64Kind::kFast;
  int timeout_ms = 60000;  ///< per send/receive, not per transfer
  /// SO_SNDBUF/SO_RCVBUF in bytes; 0 leaves both to the kernel's
  /// autotuning (setting them turns autotuning off, capped by
  /// net.core.[rw]mem_max).
  int socket_buffer_bytes = 0;
};

/// One connection to the server. Not thread-safe; use one per thread.
class Client {
 public:
  /// Connects; returns null and sets *error on failure.
  static std::unique_ptr<Client> connect(const Options& options, std::string* error);
  virtual ~Client() = default;
  /// Sends `line` + "\r\n" (e.g. "LIST", "SIZE \"a b.txt\"") and reads one
  /// JSON reply ended by "\r\n\r\n".
  virtual Result command(std::string_view line) = 0;
  /// GET name: decodes data_file as it arrives and feeds the sink.
  virtual Result get(std::string_view name, const SinkFn& sink,
                     const ProgressFn& progress = {}) = 0;
  /// UPLOAD name: encodes `size` bytes pulled from source as they are sent.
  virtual Result upload(std::string_view name, uint64_t size, const SourceFn& source,
                        const ProgressFn& progress = {}) = 0;
};

/// Quotes a file name for a request line when it needs it (spaces, quotes),
/// the way the course's shlex.split reads it back.
std::string quote_name(std::string_view name);

}  // namespace fsrv::client
