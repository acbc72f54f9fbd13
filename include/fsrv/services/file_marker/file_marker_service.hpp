#pragma once
// The file-marker service: seed 001's dialect of the file protocol (no JSON,
// no terminators; base64 uploads closed by "__END__", each 1 MiB chunk padded
// on its own). Uploads stream through transfer::UploadSink with the
// segmented base64 decoder (atomic, bounded in memory); downloads stream
// through transfer::send_file with the base64 transform and "__END__" as
// suffix. Wire format: docs/services/file-marker.md.

#include "fsrv/services/service.hpp"

namespace fsrv::services::file_marker {

/// The `file-marker` service's registration (src/services/registry.cpp).
const ServiceInfo& info();

}  // namespace fsrv::services::file_marker
