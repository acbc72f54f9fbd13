#pragma once
// Checks a user name and password against the --users accounts for every
// service of one serving process: the per-address failure throttle first
// (auth/login_throttle.hpp: a blocked address costs no hash), then the
// Argon2id verification on the hashing threads (auth/hash_pool.hpp), then
// a cache of recent successes so an HTTP client sending Basic credentials
// with every request pays the hash once, not per request. Failures are
// logged (rate-limited). Loop thread only.

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "fsrv/auth/hash_pool.hpp"
#include "fsrv/auth/login_throttle.hpp"
#include "fsrv/auth/users.hpp"
#include "fsrv/core/listener_policy.hpp"

namespace fsrv::auth {

/// Successful logins remembered (a keyed hash of name and password -> role;
/// 48 bytes each): a class's worth; the cache is cleared when full and on
/// every reload of the users file.
inline constexpr size_t kMaxCachedLogins = 4096;

/// What a login came to: the role, or kAnonymous and why not.
struct LoginOutcome {
  Role role = Role::kAnonymous;
  std::string error;  ///< "" on success; else for the client ("bad user name or password")
};

class Authenticator {
 public:
  Authenticator(uv_loop_t* loop, std::shared_ptr<const Users> users);
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  /// Checks `user`/`password` from `address` (an IP, the throttle's key);
  /// `done` runs on the loop thread, later (never inside this call). The
  /// caller keeps what `done` touches alive (a ConnRef) and checks for a
  /// closed connection in it.
  void check(std::string user, std::string password, std::string address,
             std::function<void(LoginOutcome)> done);
  /// The role of a recent successful check of the same name and password
  /// (no hash computed), or false: then call check().
  bool cached(const std::string& user, const std::string& password, Role& role) const;
  /// A new table (SIGHUP): later checks use it; the cache is cleared.
  void replace(std::shared_ptr<const Users> users);
  size_t throttled_addresses() const { return throttle_.size(); }

 private:
  std::string cache_key(const std::string& user, const std::string& password) const;
  void finish(const std::string& user, const std::string& address, bool ok, Role role,
              const std::function<void(LoginOutcome)>& done);
  /// Runs `fn` on the loop in a later turn (a zero timer).
  void later(std::function<void()> fn);

  uv_loop_t* loop_;
  std::shared_ptr<const Users> users_;
  HashPool pool_;
  LoginThrottle throttle_;
  std::unordered_map<std::string, Role> cache_;
  unsigned char cache_key_[32];  ///< random: the cache never holds a reusable digest
  uint64_t last_log_ms_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace fsrv::auth
