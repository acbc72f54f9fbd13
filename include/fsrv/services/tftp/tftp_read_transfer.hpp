#pragma once
// The tftp service's read (RRQ) transfer: ReadTransfer (see tftp_read_transfer.cpp).

#include <sys/socket.h>

#include <memory>
#include <string>

#include "fsrv/services/tftp/tftp_packet.hpp"
#include "fsrv/services/tftp/tftp_transfer.hpp"

namespace fsrv::services::tftp {

/// A ReadTransfer for `request` from `peer`, not yet started (Transfer::start).
std::unique_ptr<Transfer> make_read_transfer(RequestPort& port, const sockaddr& peer,
                                             Request request, Negotiated negotiated,
                                             std::string request_bytes);

}  // namespace fsrv::services::tftp
