#pragma once
// The master <-> worker channel's message (nginx's ngx_channel_t): a small
// fixed-size, versioned struct sent beside each passed socket with
// uv_write2, validated on receipt, so a worker knows which listener (and so
// which service) a socket came from. The worker answers kConnectionGone
// with the same tag when that connection is gone, so the master's
// per-listener and per-address counts (reactor::ConnectionLimits) follow
// the connections the workers really hold. A passed socket's message also
// carries the client's address key (reactor::peer_key), which the master
// took from accept4, so the worker need not ask the kernel again.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fsrv::process {

struct ChannelMsg {
  static constexpr uint32_t kMagic = 0x66737276;  ///< "fsrv"
  static constexpr uint16_t kVersion = 3;
  enum Command : uint16_t {
    kPassConnection = 1,  ///< master -> worker, beside a socket
    kConnectionGone = 2,  ///< worker -> master: the connection `tag` closed
  };

  uint32_t magic = kMagic;
  uint16_t version = kVersion;
  uint16_t command = kPassConnection;
  int32_t listener = -1;  ///< index of the listener the socket was accepted on
  uint32_t tag = 0;       ///< the master's id of the connection (never 0)
  uint8_t peer_len = 0;   ///< bytes of `peer` in use: 0, 4 (IPv4) or 16 (IPv6)
  uint8_t reserved[3] = {};
  uint8_t peer[16] = {};  ///< kPassConnection: the client's address key

  /// `peer` as reactor::peer_key's string (empty when peer_len is 0).
  std::string peer_key() const {
    return std::string(reinterpret_cast<const char*>(peer), peer_len);
  }
};
static_assert(sizeof(ChannelMsg) == 36, "the channel message is 36 bytes on the wire");

/// Validates one received message: magic, version, `command`, a listener
/// index below `listeners` and an address length of 0, 4 or 16. Returns the message, or nothing if
/// invalid.
std::optional<ChannelMsg> parse_channel_msg(std::string_view bytes, int listeners,
                                            uint16_t command = ChannelMsg::kPassConnection);

}  // namespace fsrv::process
