// Replies of the http service: the status of a storage error, error
// bodies, the head every reply starts with (head_fields, then
// HttpSession::reply_head's Connection field), a
// whole small reply in one write, and the end of each request: counted
// once, logged (the info log line and the access log), then the next.

#include <chrono>
#include <cinttypes>
#include <string>
#include <utility>

#include "fsrv/core/access_log.hpp"
#include "fsrv/core/log.hpp"
#include "fsrv/services/http/http_session.hpp"
#include "fsrv/services/http/http_util.hpp"

namespace fsrv::services::http {

int status_for(Errc code) {
  // kNotRegular: directories and symlinks, never followed; kNoSpace: 507
  // (RFC 4918 section 11.5); any other code: 500.
  static constexpr std::pair<Errc, int> kStatuses[] = {
      {Errc::kOk, 200},         {Errc::kNotFound, 404},   {Errc::kInvalidName, 403},
      {Errc::kNotRegular, 403}, {Errc::kPermission, 403}, {Errc::kTooLarge, 413},
      {Errc::kNoSpace, 507},    {Errc::kBusy, 503},       {Errc::kShuttingDown, 503},
      {Errc::kTimeout, 408},    {Errc::kBadData, 400},    {Errc::kBadRequest, 400}};
  for (const auto& [errc, status] : kStatuses) {
    if (errc == code) return status;
  }
  return 500;
}

std::string error_body(const Status& s, const std::string& name) {
  const int status = status_for(s.code);
  if (status == 404) return "File not found";
  if (s.code == Errc::kInvalidName) return "Invalid file name: " + s.error;
  if (s.code == Errc::kNotRegular) return "Not a regular file: " + name;
  return std::string(reason_phrase(status)) + (s.error.empty() ? "" : ": " + s.error);
}

// ---------------------------------------------------------------- replies

const RequestHead& HttpSession::head() const {
  static const RequestHead kNone;
  return rq_ ? rq_->head : kNone;
}

// From the connection's address key (an IPv4-mapped IPv6 peer shows as
// IPv4, as in the other services' log lines); not kept in the session.
std::string HttpSession::peer_text() const {
  std::string text = conn_.peer_text();
  return text == "?" ? "-" : text;
}

std::string head_fields(int status, std::string_view date, std::string_view type, int64_t length,
                        std::string_view extra, size_t reserve) {
  std::string h;
  h.reserve(256 + extra.size() + reserve);
  auto add = [&h](const auto&... parts) { (h.append(parts), ...); };
  add("HTTP/1.1 ", std::to_string(status), " ", reason_phrase(status), "\r\nDate: ", date,
      "\r\nServer: ", kServer, "\r\n", extra);
  if (!type.empty()) add("Content-Type: ", type, "\r\n");
  if (length >= 0) add("Content-Length: ", std::to_string(length), "\r\n");
  return h;
}

std::string HttpSession::reply_head(int status, std::string_view type, int64_t length,
                                    std::string_view extra, size_t body_reserve) {
  std::string h = head_fields(status, service_.date(), type, length, extra, body_reserve);
  if (quit_) keep_alive_ = false;
  if (!keep_alive_) {
    h += "Connection: close\r\n";
  } else if (head().version_major == 1 && head().version_minor == 0) {
    h += "Connection: keep-alive\r\n";  // RFC 9112 section 9.3 (HTTP/1.0 keep-alive)
  }
  h += "\r\n";
  return h;
}

void HttpSession::reply(int status, std::string_view type, std::string_view body,
                        std::string_view extra) {
  // 204 and 304 carry no body and (204) no Content-Length (RFC 9110
  // sections 8.6, 15.3.5, 15.4.5).
  bool no_body = status == 204 || status == 304;
  bool send_body = !no_body && !head_only_;
  std::string out = reply_head(status, type, no_body ? -1 : static_cast<int64_t>(body.size()),
                               extra, send_body ? body.size() : 0);
  if (send_body) out += body;
  count_once(status);
  conn_.write_owned_moved(std::move(out));
  finish(status, send_body ? body.size() : 0);
}

// Counted before the reply's first byte is written: a client that reads the
// reply and then asks /stats (on another worker) must see it counted.
void HttpSession::count_once(int status) {
  if (counted_) return;
  counted_ = true;
  service_.count(status);
}

void HttpSession::finish(int status, uint64_t body_bytes) {
  count_once(status);
  counted_ = false;
  // Health checks arrive every half second per balancer: not traffic. The
  // peer's text and the request line (allocations) are made only for a
  // line that is written.
  const bool traffic = route_ != Route::kHealth;
  const double secs = std::chrono::duration<double>(Clock::now() - started_).count();
  if (traffic) service_.observe_duration(secs);
  if (traffic && (log::enabled(log::Level::kInfo) || log::access_enabled())) {
    const RequestHead& h = head();
    std::string line = h.raw_lines.empty() ? "-" : h.raw_lines[0];
    const std::string peer = peer_text();
    FSRV_LOG_INFO("%s - - [%s] \"%s\" %d %" PRIu64 " %.6f", peer.c_str(),
                  service_.log_time().c_str(), line.c_str(), status, body_bytes, secs);
    if (log::access_enabled()) {
      auto field = [&h](std::string_view name) {
        const Header* f = h.find(name);
        return f ? std::string_view(f->value) : std::string_view();
      };
      log::access({.service = "http",
                   .peer = peer,
                   .verb = h.method,
                   .name = h.target,
                   .status = std::to_string(status),
                   .bytes = body_bytes,
                   .seconds = secs,
                   .request_line = line,
                   .referer = field("referer"),
                   .user_agent = field("user-agent")});
    }
  }
  if (state_ == State::kResponding) request_done();
}

}  // namespace fsrv::services::http
