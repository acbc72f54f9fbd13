// The http service's registration and the sessions its per-process object
// makes (see http_service.hpp and, for the rooms of a session,
// http_session.hpp).

#include "fsrv/services/http/http_service.hpp"

#include <ctime>
#include <memory>
#include <string>

#include "fsrv/services/http/http_session.hpp"
#include "fsrv/services/http/http_util.hpp"

namespace fsrv::services::http {

std::unique_ptr<reactor::ConnectionHandler> HttpService::create_handler(Connection& conn) {
  return std::make_unique<HttpSession>(conn, *this);
}

const ServiceInfo& info() {
  static const ServiceInfo kInfo{
      "http",
      "HTTP/1.1 file server (seed 004, tugas 6-8): web UI, /listdir, uploads, Range, keep-alive",
      // 8885: seed 004; the course runs tugas 6's server on 10001 (`GET /`
      // by telnet) and tugas 8's on 10002 (/sending.html).
      {8885, 10001, 10002},
      "curl -s http://127.0.0.1:{port}/listdir",
      [](stats::Schema& schema) {
        schema.add("http/requests");
        schema.add("http/uploads/bytes");
        for (int s : kCountedStatuses) schema.add("http/status/" + std::to_string(s));
      },
      [](reactor::Refusal why, int limit) {
        std::string body = busy_text(why, limit) + "\n";
        body[0] = 'S';  // a sentence, as the service's other text bodies
        return head_fields(503, format_http_date(time(nullptr)), kText,
                           static_cast<int64_t>(body.size())) +
               "Retry-After: 1\r\nConnection: close\r\n\r\n" + body;
      },
      [](Shared& shared) -> std::unique_ptr<Service> {
        return std::make_unique<HttpService>(shared);
      },
      Transport::kStream,
      nullptr,
      kPolicyReadOnly | kPolicyAuth,
      add_options};
  return kInfo;
}

}  // namespace fsrv::services::http
