#pragma once
// The udp-sink service (the course's tugas 2 receiver): every
// datagram's payload is appended, in arrival order, to a file per sender,
// `udp-<ip>-<port>-<UTC time>.bin` under the storage root, committed
// atomically (fsync, rename) once the sender has been silent for
// --udp-idle-ms. The course's protocol has no names, sequence numbers,
// acknowledgements or end marker, so silence is the only end of a file.
// Disk writes run on the executor, never in the receive path. Limits:
// --udp-max-senders files open (the least recently active is committed to
// make room) and --max-upload bytes per file (a sender over it gets no
// file: its upload is discarded and the log says so).

#include "fsrv/services/service.hpp"

namespace fsrv::services::udp_sink {

/// The `udp-sink` service's registration (src/services/registry.cpp).
const ServiceInfo& info();

}  // namespace fsrv::services::udp_sink
