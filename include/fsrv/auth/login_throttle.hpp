#pragma once
// Failed logins per source address, in a table of bounded size: an
// address that fails kMaxFailures times within kWindowMs is refused at once
// (no password hash is computed for it) until the window since its first
// failure ends. Like HAProxy's stick-table with `size` and `expire`: spoofed
// or many addresses cannot grow it past kMaxAddresses entries, the oldest
// goes first. A successful login forgets its address. Loop thread only.

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace fsrv::auth {

class LoginThrottle {
 public:
  /// Failures allowed per window: a person mistyping a password never gets
  /// there; a guesser gets 10 Argon2id verifications a minute per address.
  static constexpr int kMaxFailures = 10;
  static constexpr uint64_t kWindowMs = 60'000;
  /// Addresses tracked at most (~100 bytes each: under 0.5 MB).
  static constexpr size_t kMaxAddresses = 4096;

  /// Milliseconds before `address` may try again at `now_ms` (0 = now).
  uint64_t blocked_for(const std::string& address, uint64_t now_ms) const;
  /// Records a failed login; true when this failure is the one that blocks
  /// the address (log it once, not on every refused attempt).
  bool failed(const std::string& address, uint64_t now_ms);
  /// A successful login: the address starts afresh.
  void succeeded(const std::string& address) { table_.erase(address); }
  size_t size() const { return table_.size(); }

 private:
  struct Entry {
    uint64_t first_ms = 0;  ///< first failure of the current window
    int failures = 0;
  };
  void make_room(uint64_t now_ms);
  std::unordered_map<std::string, Entry> table_;
};

}  // namespace fsrv::auth
