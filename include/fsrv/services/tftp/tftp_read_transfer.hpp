#pragma once
// The tftp service's read (RRQ) transfer: ReadTransfer (see tftp_read_transfer.cpp).

#include <memory>

#include "fsrv/services/tftp/tftp_packet.hpp"
#include "fsrv/services/tftp/tftp_transfer.hpp"

namespace fsrv::services::tftp {

/// A ReadTransfer for `args.request` from `args.peer`, not yet started (Transfer::start).
std::unique_ptr<Transfer> make_read_transfer(TransferArgs args);

}  // namespace fsrv::services::tftp
