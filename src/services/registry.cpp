// The registered services: one line per service. Adding a service is a new
// directory under src/services/ and one line here.

#include "fsrv/services/admin/admin_service.hpp"
#include "fsrv/services/chat/chat_service.hpp"
#include "fsrv/services/echo/echo_service.hpp"
#include "fsrv/services/file/file_service.hpp"
#include "fsrv/services/file_marker/file_marker_service.hpp"
#include "fsrv/services/file_raw/file_raw_service.hpp"
#include "fsrv/services/http/http_service.hpp"
#include "fsrv/services/service.hpp"
#include "fsrv/services/session/session_service.hpp"
#include "fsrv/services/tftp/tftp_service.hpp"
#include "fsrv/services/udp_sink/udp_sink_service.hpp"

namespace fsrv::services {

const std::vector<ServiceInfo>& registry() {
  static const std::vector<ServiceInfo> kAll = {
      file::info(),        echo::info(),     http::info(),     chat::info(), session::info(),
      file_marker::info(), file_raw::info(), udp_sink::info(), tftp::info(), admin::info(),
  };
  return kAll;
}

}  // namespace fsrv::services
