// The tftp service's registration (see tftp_service.hpp); the request
// port is tftp_request_port.cpp, the transfers tftp_*transfer.cpp.

#include "fsrv/services/tftp/tftp_service.hpp"

#include "fsrv/services/tftp/tftp_options.hpp"
#include "fsrv/services/tftp/tftp_request_port.hpp"

namespace fsrv::services::tftp {

const ServiceInfo& info() {
  static const ServiceInfo kInfo{
      "tftp",
      "tftp (RFC 1350 + options): TFTP server on the storage root",
      {6969},
      "curl -s tftp://127.0.0.1:{port}/NAME -o NAME",
      [](stats::Schema& schema) {
        for (const char* p : {"rrq/ok", "rrq/failed", "wrq/ok", "wrq/failed", "retransmits",
                              "bad_packets", "bytes/sent", "bytes/received", "refused/address",
                              "refused/unheard", "errors_dropped"}) {
          schema.add(std::string("tftp/") + p);
        }
      },
      [](reactor::Refusal, int) { return std::string(); },
      nullptr,
      Transport::kDatagram,
      [](Shared& shared) -> std::unique_ptr<DatagramService> {
        return std::make_unique<RequestPort>(shared);
      },
      kPolicyReadOnly,
      add_options};
  return kInfo;
}

}  // namespace fsrv::services::tftp
