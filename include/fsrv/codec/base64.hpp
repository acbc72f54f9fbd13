#pragma once
// Base64 codecs: RFC 4648 section 4 alphabet, '=' padding, never a line
// break in the output. This module owns turning bytes into base64 and back;
// it knows nothing of sockets, files or JSON.
//
// Two implementations sit behind one interface (`--codec fast|libb64`):
//  - kLibb64: Debian's libb64, the reference. Its encoder inserts '\n' every
//    72 characters (we remove them) and its decoder silently skips bytes
//    outside the alphabet (we validate before calling it).
//  - kFast: our own table-driven scalar codec with an AVX2 path picked at run
//    time.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace fsrv::codec {

/// Which implementation to use; see the module comment.
enum class Base64Kind { kFast, kLibb64 };

/// Parses "fast" or "libb64". Returns false (and leaves out alone) otherwise.
bool parse_base64_kind(std::string_view text, Base64Kind& out);

/// "fast" or "libb64".
std::string_view to_string(Base64Kind kind);

/// Characters produced by encoding n bytes, padding included (RFC 4648 s.4).
constexpr size_t encoded_size(size_t n) { return (n + 2) / 3 * 4; }

/// Bytes a Decoder::update() over n characters may write at most (it may
/// also flush up to 3 characters carried from the previous call).
constexpr size_t decode_capacity(size_t n) { return (n + 3) / 4 * 3 + 3; }

/// Stateless block encoder. Thread-safe: one instance serves every thread.
class Encoder {
 public:
  virtual ~Encoder() = default;
  /// Encodes `in` into `out`, which must hold encoded_size(in.size()) chars;
  /// the final partial quantum is padded with '='. A streaming caller passes
  /// chunks whose size is a multiple of 3, except the last one.
  /// Returns the number of characters written (== encoded_size(in.size())).
  virtual size_t encode(std::span<const uint8_t> in, char* out) const = 0;
  /// "fast-avx2", "fast-scalar" or "libb64".
  virtual std::string_view name() const = 0;
};

/// Outcome of one Decoder call. On failure `ok` is false, `error_offset` is
/// the offset of the offending character in the whole stream (0-based,
/// counted over every update() since construction) and `error` says what is
/// wrong, e.g. "invalid base64 character 0x2a at offset 1234".
struct DecodeStatus {
  size_t written = 0;
  bool ok = true;
  uint64_t error_offset = 0;
  std::string error;
};

/// Streaming decoder: one instance per stream. Not thread-safe, but it may
/// be handed between threads between calls. Input may be split at any byte.
/// Rejects characters outside the alphabet (including whitespace) and '='
/// anywhere but in the last quantum of the stream (at most two, and only
/// as "xx==" or "xxx="). After a failure every further call fails.
class Decoder {
 public:
  virtual ~Decoder() = default;
  /// Decodes `in`, writing at most decode_capacity(in.size()) bytes to out
  /// (which must not overlap in).
  virtual DecodeStatus update(std::span<const char> in, uint8_t* out) = 0;
  /// Ends the stream: fails ("truncated base64 ...") if an incomplete
  /// quantum is left. Writes nothing today; `out` is kept for symmetry.
  virtual DecodeStatus finish(uint8_t* out) = 0;
  /// Characters consumed so far.
  virtual uint64_t consumed() const = 0;
};

/// The process-wide encoder of a kind (never null; lives forever).
const Encoder& encoder(Base64Kind kind);

/// A fresh streaming decoder of a kind.
std::unique_ptr<Decoder> make_decoder(Base64Kind kind);

/// A fresh streaming decoder of concatenated base64 segments, each padded on
/// its own: a '=' ends its segment at the end of its quantum and the next
/// character starts a new one ("QQ==QkM=" decodes to "ABC"). Seed 001's
/// client encodes every 1 MiB chunk separately (the file-marker service).
/// Same contract as make_decoder otherwise: any split of the input, errors
/// with offsets counted over the whole stream, a plain single-segment stream
/// decodes exactly as make_decoder's does.
std::unique_ptr<Decoder> make_segmented_decoder(Base64Kind kind);

}  // namespace fsrv::codec
