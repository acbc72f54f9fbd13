// The chat's per-address failed-login throttle: blocking after the limit,
// the window, forgetting on success, and a table that never grows past its
// bound however many addresses fail.

#include "fsrv/auth/login_throttle.hpp"

#include <gtest/gtest.h>

#include <string>

namespace fsrv::auth {
namespace {

using T = LoginThrottle;

TEST(LoginThrottle, BlocksAfterTheLimitUntilTheWindowEnds) {
  T t;
  for (int i = 1; i < T::kMaxFailures; ++i) {
    EXPECT_FALSE(t.failed("a", 1000 + i));
    EXPECT_EQ(t.blocked_for("a", 1000 + i), 0u) << i;
  }
  EXPECT_TRUE(t.failed("a", 2000)) << "the failure that blocks says so once";
  EXPECT_EQ(t.blocked_for("a", 2000), 1001 + T::kWindowMs - 2000);
  EXPECT_EQ(t.blocked_for("b", 2000), 0u) << "another address is not concerned";
  EXPECT_EQ(t.blocked_for("a", 1001 + T::kWindowMs), 0u);
  // After the window a failure starts a new count.
  EXPECT_FALSE(t.failed("a", 1001 + T::kWindowMs));
  EXPECT_EQ(t.blocked_for("a", 1002 + T::kWindowMs), 0u);
}

TEST(LoginThrottle, SuccessForgetsTheAddress) {
  T t;
  for (int i = 0; i < T::kMaxFailures - 1; ++i) t.failed("a", 10);
  t.succeeded("a");
  EXPECT_EQ(t.size(), 0u);
  for (int i = 0; i < T::kMaxFailures - 1; ++i) t.failed("a", 20);
  EXPECT_EQ(t.blocked_for("a", 20), 0u);
}

TEST(LoginThrottle, TableStaysBoundedUnderManyAddresses) {
  T t;
  for (size_t i = 0; i < 3 * T::kMaxAddresses; ++i) t.failed("addr" + std::to_string(i), 100 + i);
  EXPECT_LE(t.size(), T::kMaxAddresses);
  // A blocked address in the middle of the flood stays blocked while it is
  // among the newest entries.
  for (int i = 0; i < T::kMaxFailures; ++i) t.failed("attacker", 50'000);
  for (size_t i = 0; i < 100; ++i) t.failed("late" + std::to_string(i), 50'001);
  EXPECT_GT(t.blocked_for("attacker", 50'002), 0u);
  EXPECT_LE(t.size(), T::kMaxAddresses);
}

}  // namespace
}  // namespace fsrv::auth
