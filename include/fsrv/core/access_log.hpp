#pragma once
// The access log (--access-log FILE): one line per finished request of the
// http, file, session and tftp services, appended with one write(2) on an
// O_APPEND descriptor, so lines of prefork workers never interleave.
// HTTP lines are the Combined Log Format (Apache's "combined"); the other
// services write "[TIME] SERVICE PEER VERB "NAME" STATUS BYTES SECONDS". With
// --log-format json every line is a JSON object with the same fields.
// SIGUSR1 reopens the file (log::reopen_files).

#include <cstdint>
#include <string>
#include <string_view>

namespace fsrv::log {

/// One finished request.
struct AccessEntry {
  std::string_view service;  ///< "http", "file", "session", "tftp"
  std::string_view peer;     ///< client address ("127.0.0.1", "[::1]:5000")
  std::string_view verb;     ///< "GET", "UPLOAD", "RRQ" ...
  std::string_view name;     ///< file name or request target ("" if none)
  std::string_view status;   ///< "ok", "failed", or the HTTP code as text
  uint64_t bytes = 0;        ///< payload bytes sent or received
  double seconds = 0;        ///< from the request's start to its end
  // HTTP only (Combined Log Format):
  std::string_view request_line;  ///< "GET /x HTTP/1.1"
  std::string_view referer;
  std::string_view user_agent;
};

/// Opens `path` for appending (created 0640); "" closes the access log.
/// Returns "" or the error.
std::string open_access_log(const std::string& path);
/// Whether an access log is open (callers skip building entries otherwise).
bool access_enabled();
/// Appends one line for `e` (nothing when no access log is open).
void access(const AccessEntry& e);
/// access() for a request of the file, session or tftp service: status
/// "ok" or "failed", no HTTP fields.
void access_request(std::string_view service, std::string_view peer, std::string_view verb,
                    std::string_view name, bool ok, uint64_t bytes, double seconds);
/// Reopens the access log by name (log::reopen_files calls it); "" or the
/// error, the old descriptor kept on failure.
std::string reopen_access_log(bool inherited_closed);

}  // namespace fsrv::log
