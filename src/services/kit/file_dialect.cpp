#include "fsrv/services/kit/file_dialect.hpp"

#include <cstdio>

namespace fsrv::services::kit {

std::string storage_words(const Status& status, std::string_view name) {
  switch (status.code) {
    case Errc::kInvalidName:
      return "invalid name: " + status.error;
    case Errc::kNotFound:
    case Errc::kNotRegular:
    case Errc::kPermission:
      return status.error + ": " + std::string(name);
    case Errc::kNoSpace:
      return "disk full";
    default:
      return status.error;
  }
}

std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& n : names) {
    if (!text.empty()) text += '\n';
    text += n;
  }
  return text;
}

std::string idle_words(const ServerConfig& config) {
  return "idle timeout: no data for " + std::to_string(static_cast<int>(config.idle_timeout_s)) +
         " s";
}

std::string request_timeout_words(const ServerConfig& config) {
  char why[96];
  snprintf(why, sizeof why, "request timeout: line not complete within %g s",
           config.request_timeout_s);
  return why;
}

}  // namespace fsrv::services::kit
