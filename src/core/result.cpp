#include "fsrv/core/result.hpp"

namespace fsrv {

std::string_view errc_name(Errc code) {
  switch (code) {
    case Errc::kOk:
      return "ok";
    case Errc::kNotFound:
      return "not_found";
    case Errc::kInvalidName:
      return "invalid_name";
    case Errc::kNotRegular:
      return "not_regular";
    case Errc::kPermission:
      return "permission";
    case Errc::kExists:
      return "exists";
    case Errc::kTooLarge:
      return "too_large";
    case Errc::kNoSpace:
      return "no_space";
    case Errc::kBadData:
      return "bad_data";
    case Errc::kBadRequest:
      return "bad_request";
    case Errc::kBusy:
      return "busy";
    case Errc::kShuttingDown:
      return "shutting_down";
    case Errc::kTimeout:
      return "timeout";
    case Errc::kIo:
      return "io";
  }
  return "unknown";
}

}  // namespace fsrv
