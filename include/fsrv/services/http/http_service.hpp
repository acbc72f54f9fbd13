#pragma once
// The HTTP service: the course's HTTP file server (seed 004,
// tugas 6-8) as an HTTP/1.1 server (RFC 9110, RFC 9112) on the same storage
// root and name rules as the file protocol. One handler per connection
// drives a RequestParser (llhttp), answers one request at a time
// (pipelined requests wait, the parser pauses after each message), sends
// file bodies with sendfile(2) through transfer::send_file and streams
// uploads (POST /upload/{name}, PUT /{name}) into a transfer::UploadSink.
// Routes, limits and status codes: docs/services/http.md.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fsrv/services/service.hpp"

namespace fsrv::services::http {

/// The `http` service's registration (src/services/registry.cpp); course
/// default ports 8885 (the seed's thread-pool HTTP server), 10001 and
/// 10002 (tugas 6 and 8).
const ServiceInfo& info();

/// One file of the web UI's list (as GET /listdir reports it).
struct ListedFile {
  std::string name;      ///< as stored (valid per storage::validate_name)
  uint64_t size = 0;     ///< bytes
  int64_t mtime_ns = 0;  ///< modification time, ns since the epoch
};

/// The web UI served at GET / (src/services/http/web_page.cpp): one
/// self-contained HTML page (CSS and JS embedded, no CDN) whose heading is
/// `<h1>SERVER HTTP</h1>` (tugas 6): file list, upload with progress and
/// drag and drop, delete with confirmation. `files` is rendered into the
/// page's table (names HTML-escaped, links percent-encoded), so a client
/// without JavaScript sees the list; the page's script only refreshes it
/// after an upload or a delete.
std::string web_page(const std::vector<ListedFile>& files);

/// The course's form page of tugas 8 (GET /sending.html): one text field
/// `kirim`, method post.
std::string_view sending_page();

}  // namespace fsrv::services::http
