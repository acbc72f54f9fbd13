// The session service's registration and its per-process object; a
// connection is a SessionConn (session_session.hpp).

#include "fsrv/services/session/session_service.hpp"

#include <memory>
#include <string>

#include "fsrv/services/session/session_session.hpp"

namespace fsrv::services::session {

std::unique_ptr<reactor::ConnectionHandler> SessionService::create_handler(
    reactor::Connection& conn) {
  return std::make_unique<SessionConn>(conn, *this);
}

const ServiceInfo& info() {
  static const ServiceInfo kInfo{
      "session",
      "FTP-like session (seed 003): connme, upload, ls, download, size, rm, byebye; raw bytes",
      {1234},
      "printf 'connme' | nc -q1 127.0.0.1 {port}",
      [](stats::Schema& schema) {
        Counters::register_stats(schema, "session");
        schema.add("session/protocol_errors");
      },
      // The protocol has no error frame: a refused client is just closed.
      [](reactor::Refusal, int) { return std::string(); },
      [](Shared& shared) -> std::unique_ptr<Service> {
        return std::make_unique<SessionService>(shared);
      },
      Transport::kStream,
      nullptr,
      kPolicyReadOnly};
  return kInfo;
}

}  // namespace fsrv::services::session
