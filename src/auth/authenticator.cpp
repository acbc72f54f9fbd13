// Password checks for the --users accounts (see authenticator.hpp).

#include "fsrv/auth/authenticator.hpp"

#include <sodium.h>

#include <utility>

#include "fsrv/auth/password.hpp"
#include "fsrv/core/log.hpp"

namespace fsrv::auth {

namespace {

/// One failure line per this interval; the rest are counted and reported
/// with the next line (printk's ratelimit habit).
constexpr uint64_t kFailLogIntervalMs = 1000;

constexpr const char* kBadLogin = "bad user name or password";

}  // namespace

Authenticator::Authenticator(uv_loop_t* loop, std::shared_ptr<const Users> users)
    : loop_(loop), users_(std::move(users)), pool_(loop) {
  if (sodium_init() < 0) FSRV_LOG_ERROR("auth: sodium_init failed");
  randombytes_buf(cache_key_, sizeof cache_key_);
}

void Authenticator::replace(std::shared_ptr<const Users> users) {
  users_ = std::move(users);
  cache_.clear();
}

std::string Authenticator::cache_key(const std::string& user, const std::string& password) const {
  unsigned char out[32];
  crypto_generichash_state st;
  crypto_generichash_init(&st, cache_key_, sizeof cache_key_, sizeof out);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(user.data()), user.size());
  const unsigned char nul = 0;  // "ab"+"c" and "a"+"bc" differ
  crypto_generichash_update(&st, &nul, 1);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(password.data()),
                            password.size());
  crypto_generichash_final(&st, out, sizeof out);
  return std::string(reinterpret_cast<char*>(out), sizeof out);
}

bool Authenticator::cached(const std::string& user, const std::string& password, Role& role) const {
  auto it = cache_.find(cache_key(user, password));
  if (it == cache_.end()) return false;
  role = it->second;
  return true;
}

void Authenticator::later(std::function<void()> fn) {
  auto* t = new uv_timer_t;
  uv_timer_init(loop_, t);
  t->data = new std::function<void()>(std::move(fn));
  uv_timer_start(
      t,
      [](uv_timer_t* h) {
        auto* f = static_cast<std::function<void()>*>(h->data);
        (*f)();
        delete f;
        uv_close(reinterpret_cast<uv_handle_t*>(h),
                 [](uv_handle_t* x) { delete reinterpret_cast<uv_timer_t*>(x); });
      },
      0, 0);
}

void Authenticator::check(std::string user, std::string password, std::string address,
                          std::function<void(LoginOutcome)> done) {
  uint64_t now = uv_now(loop_);
  if (uint64_t wait = throttle_.blocked_for(address, now); wait > 0) {
    std::string why = "too many failed logins from " + address + ": try again in " +
                      std::to_string((wait + 999) / 1000) + " s";
    later([done = std::move(done), why] { done(LoginOutcome{Role::kAnonymous, why}); });
    return;
  }
  std::string key = cache_key(user, password);
  if (auto it = cache_.find(key); it != cache_.end()) {
    Role role = it->second;
    // Still in the table with that role? (A reload clears the cache anyway.)
    later([this, user, address, role, done = std::move(done)] {
      finish(user, address, true, role, done);
    });
    return;
  }
  const Account* acc = users_ ? users_->find(user) : nullptr;
  // An unknown name costs a hash too (of a fixed dummy), so timing does not
  // tell which names exist.
  auto hash = std::make_shared<std::string>(acc ? acc->hash : std::string());
  Role role = acc ? acc->role : Role::kAnonymous;
  auto ok = std::make_shared<bool>(false);
  bool queued = pool_.submit(
      [hash, password, ok] {
        if (hash->empty()) {
          verify_password(
              "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$"
              "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE",
              password);
          return;
        }
        *ok = verify_password(*hash, password);
      },
      [this, user, address, ok, role, key, done] {
        if (*ok) {
          if (cache_.size() >= kMaxCachedLogins) cache_.clear();
          cache_[key] = role;
        }
        finish(user, address, *ok, role, done);
      });
  if (!queued) {
    later([done = std::move(done)] {
      done(LoginOutcome{Role::kAnonymous, "server busy checking passwords: try again"});
    });
  }
}

void Authenticator::finish(const std::string& user, const std::string& address, bool ok, Role role,
                           const std::function<void(LoginOutcome)>& done) {
  if (ok) {
    throttle_.succeeded(address);
    done(LoginOutcome{role, ""});
    return;
  }
  uint64_t now = uv_now(loop_);
  bool blocks = throttle_.failed(address, now);
  std::string shown;  // the name as sent, printable bytes only (no forged log lines)
  for (char c : user.substr(0, kMaxUserName)) shown += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (blocks || now - last_log_ms_ >= kFailLogIntervalMs) {
    FSRV_LOG_WARN("auth: failed login for '%s' from %s%s (%llu similar suppressed)", shown.c_str(),
                  address.c_str(),
                  blocks ? ": the address is blocked for the rest of the minute" : "",
                  static_cast<unsigned long long>(suppressed_));
    last_log_ms_ = now;
    suppressed_ = 0;
  } else {
    ++suppressed_;
  }
  done(LoginOutcome{Role::kAnonymous, kBadLogin});
}

}  // namespace fsrv::auth
