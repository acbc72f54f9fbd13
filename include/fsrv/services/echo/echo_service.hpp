#pragma once
// The echo service (course tugas 1): every byte received is sent back, in
// order, until the client half-closes or closes; then the server finishes
// sending and closes. Bounded memory under a client that sends and never
// reads: reading stops while the connection is congested (pending writes
// above Connection::kHighWater) and resumes on drain.

#include "fsrv/services/service.hpp"

namespace fsrv::services::echo {

/// The `echo` service's registration (src/services/registry.cpp).
const ServiceInfo& info();

}  // namespace fsrv::services::echo
