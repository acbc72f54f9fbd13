#pragma once
// The udp-sink service (the course's tugas 2 receiver): each datagram's
// payload is appended, in arrival order, to a file per sender,
// `udp-<ip>-<port>-<UTC time>.bin` under the storage root, committed
// atomically once the sender was silent for --udp-idle-ms (the protocol has
// no end marker). Limits and wire details: docs/services/udp.md.

#include "fsrv/services/service.hpp"

namespace fsrv::services::udp_sink {

/// The `udp-sink` service's registration (src/services/registry.cpp).
const ServiceInfo& info();

}  // namespace fsrv::services::udp_sink
