#pragma once
// Errors as values at module edges: Result<T> holds a value or a message.

#include <string>
#include <utility>

namespace fsrv {

/// A value of T, or an error message (empty message = success).
template <typename T>
struct Result {
  T value{};
  std::string error;

  bool ok() const { return error.empty(); }
  static Result failure(std::string message) {
    Result r;
    r.error = std::move(message);
    return r;
  }
};

/// Success or an error message.
struct Status {
  std::string error;
  bool ok() const { return error.empty(); }
  static Status failure(std::string message) { return Status{std::move(message)}; }
};

}  // namespace fsrv
