#pragma once
// Helpers of the chat tests: demo users hashed once per test binary, a
// store opened on a temporary database, a settable fake clock.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../../support/pg_instance.hpp"
#include "../../support/server_process.hpp"
#include "fsrv/services/chat/chat_store.hpp"
#include "fsrv/services/chat/chat_users.hpp"
#include "fsrv/services/chat/sqlite_chat_store.hpp"

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

/// A SQLite ChatStore on `path` with the demo users; fails the test if open fails.
inline std::unique_ptr<ChatStore> open_store(const std::string& path, double ttl_s = 3600,
                                             ChatStoreOptions opts = {}) {
  auto store = std::make_unique<SqliteChatStore>();
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

/// Test names of the two backends ("Sqlite", "Postgres").
inline std::string backend_name(const ::testing::TestParamInfo<ChatDb::Kind>& info) {
  return info.param == ChatDb::Kind::kPostgres ? "Postgres" : "Sqlite";
}

/// Base of the tests that run against both backends (TEST_P, instantiated
/// with both ChatDb kinds). PostgreSQL runs on the process-wide throwaway
/// server (fsrv::test::PgInstance), one new database per location; the
/// PostgreSQL cases skip, saying why, where that server cannot run.
class BothBackends : public ::testing::TestWithParam<ChatDb::Kind> {
 protected:
  void SetUp() override {
    if (GetParam() == ChatDb::Kind::kPostgres) {
      std::string why;
      pg_ = fsrv::test::PgInstance::shared(&why);
      if (pg_ == nullptr) GTEST_SKIP() << why;
    }
  }
  /// A location no store has used yet (a file path or a database URI).
  std::string new_location() {
    if (GetParam() == ChatDb::Kind::kPostgres) return pg_->create_database();
    return dir_.file("chat" + std::to_string(++files_) + ".db");
  }
  /// A closed store of this backend.
  std::unique_ptr<ChatStore> make() const { return make_chat_store(GetParam()); }
  /// A store opened on `location` with the demo users; fails the test if open fails.
  std::unique_ptr<ChatStore> open_at(const std::string& location, double ttl_s = 3600,
                                     ChatStoreOptions opts = {}) {
    auto store = make();
    Status st = store->open(location, demo(), ttl_s, std::move(opts));
    EXPECT_TRUE(st.ok()) << st.error;
    return store;
  }

  fsrv::test::TempDir dir_;
  fsrv::test::PgInstance* pg_ = nullptr;
  int files_ = 0;
};

}  // namespace fsrv::services::chat::testing
