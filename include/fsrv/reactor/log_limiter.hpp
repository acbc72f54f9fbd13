#pragma once
// Log lines that a flood cannot multiply: at most one line per cause per
// interval, the next one saying how many were suppressed meanwhile (the
// kernel's printk_ratelimit). Loop thread only; one LogLimiter per cause.

#include <cstdint>

namespace fsrv::reactor {

class LogLimiter {
 public:
  /// One line per `interval_ms` (5 s: a flood costs a dozen lines a minute).
  explicit LogLimiter(uint64_t interval_ms = 5000) : interval_ms_(interval_ms) {}

  /// Whether a line may be logged at `now_ms` (uv_now); if not, it is
  /// counted as suppressed.
  bool allow(uint64_t now_ms) {
    if (logged_ && now_ms - last_ms_ < interval_ms_) {
      ++suppressed_;
      return false;
    }
    logged_ = true;
    last_ms_ = now_ms;
    return true;
  }
  /// Lines suppressed since the last allowed one (then reset): say so in it.
  uint64_t take_suppressed() {
    uint64_t n = suppressed_;
    suppressed_ = 0;
    return n;
  }

 private:
  uint64_t interval_ms_;
  uint64_t last_ms_ = 0;
  uint64_t suppressed_ = 0;
  bool logged_ = false;
};

}  // namespace fsrv::reactor
