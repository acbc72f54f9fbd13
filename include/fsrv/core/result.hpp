#pragma once
// Errors as values at module edges. An error carries a code (what kind of
// failure: each protocol words it its own way, e.g. kNotFound is the file
// protocol's "no such file: x", HTTP's 404 and TFTP's error 1) and a detail
// text that is protocol-neutral (a strerror, a validation reason, a limit).

#include <string>
#include <string_view>
#include <utility>

namespace fsrv {

/// Kinds of failure shared by every layer and service.
enum class Errc {
  kOk = 0,
  kNotFound,      ///< no such file
  kInvalidName,   ///< the name breaks the name rules (detail says which)
  kNotRegular,    ///< exists but is not a regular file (directory, symlink, fifo)
  kPermission,    ///< the OS refused access
  kExists,        ///< the target exists and may not be replaced
  kTooLarge,      ///< over a configured size limit
  kNoSpace,       ///< disk full or quota exceeded
  kBadData,       ///< malformed payload (bad base64, truncated frame)
  kBadRequest,    ///< malformed request
  kBusy,          ///< too many connections, or no worker available
  kShuttingDown,  ///< the server is draining
  kTimeout,       ///< a deadline passed
  kIo,            ///< any other OS error (detail: strerror)
};

/// Stable lower-case name of a code ("not_found"), for logs and JSON.
std::string_view errc_name(Errc code);

/// Success, or a failure with its code and detail text.
struct Status {
  Errc code = Errc::kOk;
  std::string error;  ///< detail; empty on success

  bool ok() const { return code == Errc::kOk; }
  static Status failure(Errc code, std::string detail) { return Status{code, std::move(detail)}; }
};

/// A value of T, or a failure with its code and detail text.
template <typename T>
struct Result {
  T value{};
  Errc code = Errc::kOk;
  std::string error;  ///< detail; empty on success

  bool ok() const { return code == Errc::kOk; }
  Status status() const { return Status{code, error}; }
  static Result failure(Errc code, std::string detail) {
    Result r;
    r.code = code;
    r.error = std::move(detail);
    return r;
  }
  static Result failure(const Status& s) { return failure(s.code, s.error); }
};

}  // namespace fsrv
