// Failed logins per source address (see login_throttle.hpp).

#include "fsrv/auth/login_throttle.hpp"

namespace fsrv::auth {

uint64_t LoginThrottle::blocked_for(const std::string& address, uint64_t now_ms) const {
  auto it = table_.find(address);
  if (it == table_.end() || it->second.failures < kMaxFailures) return 0;
  uint64_t ends = it->second.first_ms + kWindowMs;
  return now_ms < ends ? ends - now_ms : 0;
}

bool LoginThrottle::failed(const std::string& address, uint64_t now_ms) {
  auto it = table_.find(address);
  if (it == table_.end()) {
    if (table_.size() >= kMaxAddresses) make_room(now_ms);
    it = table_.emplace(address, Entry{now_ms, 0}).first;
  } else if (now_ms - it->second.first_ms >= kWindowMs) {
    it->second = Entry{now_ms, 0};  // a new window
  }
  return ++it->second.failures == kMaxFailures;
}

// Drops every entry whose window is over; if none is, the one whose window
// began first (a linear scan, only when the table is full).
void LoginThrottle::make_room(uint64_t now_ms) {
  auto oldest = table_.end();
  for (auto it = table_.begin(); it != table_.end();) {
    if (now_ms - it->second.first_ms >= kWindowMs) {
      it = table_.erase(it);
      continue;
    }
    if (oldest == table_.end() || it->second.first_ms < oldest->second.first_ms) oldest = it;
    ++it;
  }
  if (table_.size() >= kMaxAddresses && oldest != table_.end()) table_.erase(oldest);
}

}  // namespace fsrv::auth
