#pragma once
// The tftp service: a TFTP server (RFC 1350, with options RFC 2347, blksize
// RFC 2348, timeout and tsize RFC 2349, windowsize RFC 7440; octet and
// netascii) on the shared storage root. Requests arrive on the service's
// port, each transfer runs on its own ephemeral port (RFC 1350 section 4);
// a write is acknowledged only after its commit (fsync, rename), and an
// abandoned one never replaces the old file. Details: docs/services/tftp.md.

#include "fsrv/services/service.hpp"

namespace fsrv::services::tftp {

/// The `tftp` service's registration (src/services/registry.cpp).
const ServiceInfo& info();

}  // namespace fsrv::services::tftp
