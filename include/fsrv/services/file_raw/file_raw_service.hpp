#pragma once
// The file-raw service: seed 000's raw-bytes dialect of the file protocol
// (no base64, no JSON; persistent connections). Uploads stream exactly
// `size` bytes into transfer::UploadSink (identity transform, atomic,
// bounded memory); downloads go through transfer::send_file with the
// identity transform (sendfile(2)). Wire format: docs/services/file-raw.md.

#include "fsrv/services/service.hpp"

namespace fsrv::services::file_raw {

/// The `file-raw` service's registration (src/services/registry.cpp).
const ServiceInfo& info();

}  // namespace fsrv::services::file_raw
