#pragma once
// The http service's reply wording: the status code a storage error maps
// to, the short text body of an error status and the Server field. The
// reply heads themselves (status line, Date, Server, Content-Length,
// Connection) are HttpSession::reply_head in http_reply.cpp, beside the
// reply's count and its access log line (HttpSession::finish).

#include <string>
#include <string_view>

#include "fsrv/core/result.hpp"
#include "fsrv/core/version.hpp"

namespace fsrv::services::http {

/// The Server field (RFC 9110 section 10.2.4): "fsrv/VERSION".
inline const std::string kServer = server_token();

/// The type of the service's own text bodies (errors, confirmations).
inline constexpr std::string_view kText = "text/plain; charset=utf-8";

/// HTTP status for a storage failure (the file protocol words the same
/// codes as text, src/services/file/reply.cpp).
int status_for(Errc code);

/// Short text body of the status_for(s.code) that answers the storage
/// failure `s` (`name`: the file concerned).
std::string error_body(const Status& s, const std::string& name);

}  // namespace fsrv::services::http
