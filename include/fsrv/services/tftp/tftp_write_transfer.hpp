#pragma once
// The tftp service's write (WRQ) transfer: WriteTransfer (see tftp_write_transfer.cpp).

#include <memory>

#include "fsrv/services/tftp/tftp_packet.hpp"
#include "fsrv/services/tftp/tftp_transfer.hpp"

namespace fsrv::services::tftp {

/// A WriteTransfer for `args.request` from `args.peer`, not yet started (Transfer::start).
std::unique_ptr<Transfer> make_write_transfer(TransferArgs args);

}  // namespace fsrv::services::tftp
