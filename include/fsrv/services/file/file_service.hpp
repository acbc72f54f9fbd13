#pragma once
// The course file protocol as a service (docs/PROTOCOL.md): `LIST`, `GET`,
// `UPLOAD`, `DELETE`, `SIZE`, `STATS`, `PING`, `QUIT`, one JSON reply per
// request ended by "\r\n\r\n". One request at a time per connection;
// pipelined requests wait in the input buffer. GET streams through
// transfer::send_file with the base64 transform between the JSON prefix and
// suffix; UPLOAD reads the payload straight into a transfer::UploadSink.

#include "fsrv/services/service.hpp"

namespace fsrv::services::file {

/// The `file` service's registration (src/services/registry.cpp).
const ServiceInfo& info();

}  // namespace fsrv::services::file
