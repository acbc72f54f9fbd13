#pragma once
// TFTP packets (RFC 1350) with option negotiation (RFC 2347) and the
// blksize (RFC 2348), timeout and tsize (RFC 2349) and windowsize (RFC 7440)
// options, plus the netascii transform (RFC 1350 section 5 and its
// reference to the Telnet NVT: LF is sent as CR LF, a bare CR as CR NUL).
// Pure functions over byte spans: no sockets, no files, so the fuzz target
// (test/fuzz/tftp_packet_fuzz.cpp) and the unit tests drive them directly.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fsrv::services::tftp {

/// Opcodes (RFC 1350 section 5; OACK from RFC 2347).
enum class Opcode : uint16_t { kRrq = 1, kWrq = 2, kData = 3, kAck = 4, kError = 5, kOack = 6 };

/// Error codes (RFC 1350 appendix; 8 from RFC 2347).
enum class ErrorCode : uint16_t {
  kUndefined = 0,      ///< "not defined, see error message"
  kNotFound = 1,       ///< file not found
  kAccess = 2,         ///< access violation
  kDiskFull = 3,       ///< disk full or allocation exceeded
  kIllegal = 4,        ///< illegal TFTP operation
  kUnknownTid = 5,     ///< unknown transfer ID
  kExists = 6,         ///< file already exists
  kNoSuchUser = 7,     ///< no such user
  kOptionRefused = 8,  ///< option negotiation failed (RFC 2347)
};

/// Block sizes: 512 by default (RFC 1350); 8..65464 negotiable (RFC 2348
/// section "Blocksize Option Specification": 65464 = 65535 - 20 IPv4
/// header - 8 UDP header - 4 TFTP header - 39, the RFC's own bound).
inline constexpr size_t kDefaultBlockSize = 512;
inline constexpr size_t kMinBlockSize = 8;
inline constexpr size_t kMaxBlockSize = 65464;
/// RFC 7440: windowsize 1..65535 blocks.
inline constexpr uint32_t kMaxWindowSize = 65535;
/// Bytes of one window a WRQ may send us (windowsize x blksize), to fit our
/// receive buffer (8 MiB at most); RFC 7440 section 4 lets us lower windowsize.
inline constexpr size_t kMaxWindowBytes = 4 * 1024 * 1024;
/// Bytes of one window we send (RRQ) beyond its first block: a window lands
/// at once in the client's default socket buffer (net.core.rmem_default,
/// 208 KiB on Linux), and a larger one would lose its tail every time.
inline constexpr size_t kPeerWindowBytes = 160 * 1024;
/// Socket-buffer accounting per datagram in that buffer.
inline constexpr size_t kDatagramOverhead = 1024;
/// RFC 2349: timeout 1..255 seconds.
inline constexpr int kMinTimeoutS = 1;
inline constexpr int kMaxTimeoutS = 255;
/// DATA/ACK header: opcode + block number.
inline constexpr size_t kHeaderSize = 4;
/// Options read from one request; a request with more is not refused, the
/// rest are ignored (RFC 2347 defines four; this bounds the work per packet).
inline constexpr size_t kMaxOptions = 16;

/// Transfer mode (RFC 1350 section 1). "mail" is obsolete and refused.
enum class Mode { kOctet, kNetascii };

/// A parsed RRQ or WRQ. Option names are lower-cased (RFC 2347: case
/// insensitive); values are kept as sent.
struct Request {
  Opcode op = Opcode::kRrq;
  std::string filename;
  Mode mode = Mode::kOctet;
  std::vector<std::pair<std::string, std::string>> options;
};

/// Why a request is refused: the ERROR packet to send, or nothing (`drop`)
/// when the datagram is too short to be a TFTP packet at all.
struct RequestError {
  ErrorCode code = ErrorCode::kIllegal;
  std::string message;
  bool drop = false;
};

/// Parses an RRQ/WRQ datagram: opcode, filename NUL, mode NUL, then option
/// NUL value NUL pairs. Returns the request, or fills `error`: shorter than 4
/// bytes -> drop; another opcode, a missing NUL, an empty filename, an
/// option without a value, an unknown mode -> ERROR 4.
std::optional<Request> parse_request(std::span<const char> packet, RequestError& error);

/// The options accepted from a request (RFC 2347).
struct Negotiated {
  size_t blksize = kDefaultBlockSize;
  int timeout_s = 0;         ///< 0: the client sent no acceptable timeout
  uint32_t windowsize = 1;   ///< RFC 7440; 1 = RFC 1350 lock-step
  bool tsize = false;        ///< tsize asked for (RRQ) or announced (WRQ)
  uint64_t tsize_value = 0;  ///< WRQ: the size the client announced
  /// Accepted options in request order, with the values to echo (the OACK
  /// fills tsize in for an RRQ). Empty: answer without an OACK.
  std::vector<std::pair<std::string, std::string>> accepted;
};

/// Negotiates (RFC 2347: an unknown option, or one out of range, is left out;
/// of repeated options the first counts): blksize 8..65464, larger lowered
/// (RFC 2348); timeout 1..255; tsize a number; windowsize 1..65535, lowered
/// so that (windowsize - 1) x (blksize + kDatagramOverhead) <=
/// kPeerWindowBytes for an RRQ, windowsize x blksize <= kMaxWindowBytes for
/// a WRQ.
Negotiated negotiate(const Request& request);

/// "\0\5" code message "\0" (RFC 1350 ERROR). The message is cut at 200 bytes.
std::string error_packet(ErrorCode code, std::string_view message);
/// "\0\6" name "\0" value "\0" ... (RFC 2347 OACK).
std::string oack_packet(const std::vector<std::pair<std::string, std::string>>& options);
/// "\0\4" block (RFC 1350 ACK).
std::string ack_packet(uint16_t block);
/// Writes the 4-byte DATA header for `block` at `out`.
void put_data_header(char* out, uint16_t block);

/// Big-endian 16-bit value at `p`.
inline uint16_t read_u16(const char* p) {
  return static_cast<uint16_t>((static_cast<uint8_t>(p[0]) << 8) | static_cast<uint8_t>(p[1]));
}

/// The name the storage root is asked for: leading '/' removed (clients
/// such as tftp-hpa send "/name"; tftpd-hpa --secure does the same).
std::string_view storage_name(std::string_view filename);

/// netascii encoding (sender side): LF -> CR LF, CR -> CR NUL, into `out`
/// (room for 2 x in.size() bytes); returns the bytes written (the GET
/// engine's transform for a netascii RRQ).
size_t netascii_encode(std::span<const uint8_t> in, char* out);

/// netascii decoding (receiver side): CR LF -> LF, CR NUL -> CR, and a CR
/// followed by anything else is kept. A CR at the end of one block waits
/// for the next block's first byte.
class NetasciiDecoder {
 public:
  /// Decodes `in`, appending to `out`.
  void decode(std::span<const char> in, std::string& out);
  /// End of the stream: a held CR is written as itself.
  void finish(std::string& out);

 private:
  bool cr_ = false;  ///< the previous byte was a CR, not yet written
};

}  // namespace fsrv::services::tftp
