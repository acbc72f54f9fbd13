#include "fsrv/process/channel.hpp"

#include <cstring>

namespace fsrv::process {

std::optional<ChannelMsg> parse_channel_msg(std::string_view bytes, int listeners,
                                            uint16_t command) {
  if (bytes.size() != sizeof(ChannelMsg)) return std::nullopt;
  ChannelMsg m;
  std::memcpy(&m, bytes.data(), sizeof m);
  if (m.magic != ChannelMsg::kMagic || m.version != ChannelMsg::kVersion || m.command != command ||
      m.listener < 0 || m.listener >= listeners ||
      (m.peer_len != 0 && m.peer_len != 4 && m.peer_len != 16)) {
    return std::nullopt;
  }
  return m;
}

}  // namespace fsrv::process
