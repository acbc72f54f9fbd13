// ListenerPolicy::refuse: who may read, write and delete on each kind of
// listener (core/listener_policy.hpp).

#include "fsrv/core/listener_policy.hpp"

#include <gtest/gtest.h>

namespace fsrv {
namespace {

constexpr Role kRoles[] = {Role::kAnonymous, Role::kRead, Role::kWrite, Role::kAdmin};

TEST(ListenerPolicy, OpenAllowsEverythingToEveryone) {
  ListenerPolicy open;
  EXPECT_TRUE(open.open());
  EXPECT_EQ(open.text(), "");
  for (Role r : kRoles) {
    for (Access a : {Access::kRead, Access::kWrite, Access::kDelete}) {
      EXPECT_EQ(open.refuse(a, r), Refusal::kNone);
    }
  }
}

TEST(ListenerPolicy, ReadOnlyRefusesWritesWhateverTheRole) {
  ListenerPolicy ro{true, AuthScope::kWrite};
  EXPECT_EQ(ro.text(), "ro, auth=write");
  for (Role r : kRoles) {
    EXPECT_EQ(ro.refuse(Access::kWrite, r), Refusal::kReadOnly);
    EXPECT_EQ(ro.refuse(Access::kDelete, r), Refusal::kReadOnly);
  }
  EXPECT_EQ(ro.refuse(Access::kRead, Role::kAnonymous), Refusal::kNone);
}

TEST(ListenerPolicy, AuthWriteByRole) {
  ListenerPolicy p{false, AuthScope::kWrite};
  EXPECT_EQ(p.refuse(Access::kRead, Role::kAnonymous), Refusal::kNone);
  EXPECT_EQ(p.refuse(Access::kWrite, Role::kAnonymous), Refusal::kLogin);
  EXPECT_EQ(p.refuse(Access::kWrite, Role::kRead), Refusal::kForbidden);
  EXPECT_EQ(p.refuse(Access::kWrite, Role::kWrite), Refusal::kNone);
  EXPECT_EQ(p.refuse(Access::kDelete, Role::kWrite), Refusal::kForbidden);
  EXPECT_EQ(p.refuse(Access::kDelete, Role::kAdmin), Refusal::kNone);
}

TEST(ListenerPolicy, AuthAllAsksAnAccountToRead) {
  ListenerPolicy p{false, AuthScope::kAll};
  EXPECT_EQ(p.text(), "auth=all");
  EXPECT_EQ(p.refuse(Access::kRead, Role::kAnonymous), Refusal::kLogin);
  EXPECT_EQ(p.refuse(Access::kRead, Role::kRead), Refusal::kNone);
}

TEST(ListenerPolicy, RoleNames) {
  for (Role r : {Role::kRead, Role::kWrite, Role::kAdmin}) {
    Role back = Role::kAnonymous;
    ASSERT_TRUE(parse_role(role_name(r), back));
    EXPECT_EQ(back, r);
  }
  Role x;
  EXPECT_FALSE(parse_role("root", x));
  EXPECT_FALSE(parse_role("anonymous", x));
}

}  // namespace
}  // namespace fsrv
