// The --users file parser (auth/users.hpp).

#include "fsrv/auth/users.hpp"

#include <gtest/gtest.h>

#include <string>

#include "fsrv/auth/password.hpp"

namespace fsrv::auth {
namespace {

// A cheap hash: the parser checks the form, not the cost.
std::string cheap_hash(const std::string& pw) { return hash_password(pw, 1, 8192).value; }

TEST(Users, ParsesAccountsCommentsAndBlankLines) {
  std::string text =
      "# accounts\n\nann:" + cheap_hash("a") + ":read\r\nbob:" + cheap_hash("b") + ":admin\n";
  auto users = Users::parse(text, "users");
  ASSERT_TRUE(users.ok()) << users.error;
  ASSERT_EQ(users.value->size(), 2u);
  EXPECT_EQ(users.value->find("ann")->role, Role::kRead);
  EXPECT_EQ(users.value->find("bob")->role, Role::kAdmin);
  EXPECT_TRUE(verify_password(users.value->find("bob")->hash, "b"));
  EXPECT_EQ(users.value->find("carl"), nullptr);
}

TEST(Users, ErrorsNameFileAndLine) {
  const std::string h = cheap_hash("x");
  struct Case {
    std::string text;
    std::string want;
  } cases[] = {
      {"# c\nann:" + h + ":read\nbob\n", "f:3: expected NAME:HASH:ROLE"},
      {"ann:plain:read\n", "f:1: the hash is not"},
      {"ann:" + h + ":root\n", "f:1: role 'root'"},
      {"a n:" + h + ":read\n", "f:1: user name may hold only"},
      {"ann:" + h + ":read\nann:" + h + ":write\n", "f:2: user 'ann' appears twice"},
  };
  for (const Case& c : cases) {
    auto users = Users::parse(c.text, "f");
    ASSERT_FALSE(users.ok()) << c.text;
    EXPECT_EQ(users.error.rfind(c.want, 0), 0u) << users.error;
  }
}

TEST(Users, MakeUsersLineRoundTrips) {
  auto line = make_users_line("zoe", Role::kWrite, "pw");
  ASSERT_TRUE(line.ok()) << line.error;
  auto users = Users::parse(line.value + "\n", "f");
  ASSERT_TRUE(users.ok()) << users.error;
  EXPECT_TRUE(verify_password(users.value->find("zoe")->hash, "pw"));
  EXPECT_EQ(users.value->find("zoe")->role, Role::kWrite);
  EXPECT_FALSE(make_users_line("bad:name", Role::kRead, "pw").ok());
}

TEST(Users, LoadMissingFileSaysSo) {
  auto users = Users::load("/nonexistent/users");
  ASSERT_FALSE(users.ok());
  EXPECT_NE(users.error.find("/nonexistent/users"), std::string::npos);
}

}  // namespace
}  // namespace fsrv::auth
