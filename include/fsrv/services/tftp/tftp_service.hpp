#pragma once
// The tftp service: a TFTP server (RFC 1350) on the shared
// storage root, with option negotiation (RFC 2347), blksize (RFC 2348),
// timeout and tsize (RFC 2349) and windowsize (RFC 7440), in octet and
// netascii modes. Requests arrive on the service's port (6969 in `make
// run-server`: 69 needs root); each transfer then runs on its own ephemeral
// UDP port (RFC 1350 section 4, "transfer identifiers"), with its own
// retransmission timer. Reads and writes of the file run on the executor;
// writes go through storage::UploadFile (temporary file, fsync, rename), so
// an abandoned or refused upload never replaces the old file. The final ACK
// of a write is sent only after the commit: a client that got it knows the
// file is on disk. Wire details and limits: docs/services/tftp.md.

#include "fsrv/services/service.hpp"

namespace fsrv::services::tftp {

/// The `tftp` service's registration (src/services/registry.cpp).
const ServiceInfo& info();

}  // namespace fsrv::services::tftp
