#pragma once
// Helpers of the chat tests: demo users hashed once per test binary, a
// store opened on a temporary database, a settable fake clock.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../../support/server_process.hpp"
#include "fsrv/services/chat/chat_store.hpp"
#include "fsrv/services/chat/chat_users.hpp"

namespace fsrv::services::chat::testing {

/// The course's demo users, hashed once (hashing is the slow part).
inline const std::vector<ChatUser>& demo() {
  static const std::vector<ChatUser> users = [] {
    auto r = demo_users();
    if (!r.ok()) throw std::runtime_error(r.error);
    return r.value;
  }();
  return users;
}

/// A wall clock the test moves by hand (ms since the epoch).
struct FakeClock {
  std::shared_ptr<std::atomic<int64_t>> ms =
      std::make_shared<std::atomic<int64_t>>(1'700'000'000'000);
  std::function<int64_t()> fn() const {
    auto p = ms;
    return [p] { return p->load(); };
  }
  void advance_ms(int64_t d) { *ms += d; }
};

/// A ChatStore on `path` with the demo users; fails the test if open fails.
inline std::unique_ptr<ChatStore> open_store(const std::string& path, double ttl_s = 3600,
                                             ChatStoreOptions opts = {}) {
  auto store = std::make_unique<ChatStore>();
  Status st = store->open(path, demo(), ttl_s, std::move(opts));
  EXPECT_TRUE(st.ok()) << st.error;
  return store;
}

/// Logs in through the store; empty string (and a test failure) if refused.
inline std::string login(ChatStore& store, const std::string& user) {
  AuthResult r = store.auth(user, "surabaya");
  EXPECT_EQ(r.outcome, Outcome::kOk) << user << ": " << r.error;
  return r.token;
}

}  // namespace fsrv::services::chat::testing
