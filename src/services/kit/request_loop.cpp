#include "fsrv/services/kit/request_loop.hpp"

namespace fsrv::services::kit {

bool RequestLoop::done() {
  busy_ = false;
  if (conn_.closing()) return false;
  if (quit_) {
    conn_.close_when_flushed();
    return false;
  }
  return !pumping_;
}

void RequestLoop::shutdown() {
  quit_ = true;
  if (!busy_ && !conn_.closing()) conn_.close_when_flushed();
}

}  // namespace fsrv::services::kit
