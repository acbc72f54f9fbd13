#pragma once
// The `session` service (seed 003's FTP-like protocol, default port 1234;
// docs/services/session.md): bare command words (connme, byebye, upload,
// ls, download, rm, size) and little-endian struct fields on one
// connection, framed by session_framer.hpp as a byte stream. Uploads stream
// through transfer::UploadSink (identity, atomic), downloads through
// transfer::send_file (identity: sendfile). Many sessions at once; the
// seed's server serves one at a time.

#include "fsrv/services/service.hpp"

namespace fsrv::services::session {

/// The `session` service's registration (src/services/registry.cpp).
const ServiceInfo& info();

}  // namespace fsrv::services::session
