// Chat users (src/services/chat/chat_users.cpp): libsodium hashes, the
// demo users, the JSON users file and its errors.

#include "fsrv/services/chat/chat_users.hpp"

#include <gtest/gtest.h>

#include <string>

#include "chat_test_util.hpp"

namespace fsrv::services::chat {
namespace {

using fsrv::test::spit;

// A cheap hash for test files (the file format does not care about cost).
std::string cheap_hash(const std::string& password) {
  auto h = hash_password(password, kDemoOpsLimit, kDemoMemLimit);
  EXPECT_TRUE(h.ok()) << h.error;
  return h.value;
}

std::string user_json(const std::string& username, const std::string& hash) {
  return "{\"username\": \"" + username + "\", \"nama\": \"Nama " + username +
         "\", \"negara\": \"Indonesia\", \"password_hash\": \"" + hash + "\"}";
}

TEST(ChatUsers, HashesVerifyOnlyTheirPassword) {
  const std::string h = cheap_hash("rahasia");
  EXPECT_TRUE(h.starts_with("$argon2id$"));
  EXPECT_TRUE(is_password_hash(h));
  EXPECT_TRUE(verify_password(h, "rahasia"));
  EXPECT_FALSE(verify_password(h, "Rahasia"));
  EXPECT_FALSE(verify_password(h, ""));
  EXPECT_FALSE(verify_password(h, h));  // the stored string is not the password
  EXPECT_NE(cheap_hash("rahasia"), h);  // fresh salt each time
  // A plain-text "hash" never verifies anything, even itself.
  EXPECT_FALSE(is_password_hash("surabaya"));
  EXPECT_FALSE(verify_password("surabaya", "surabaya"));
  EXPECT_FALSE(verify_password("", ""));
}

TEST(ChatUsers, InteractiveLimitsWorkForRealAccounts) {
  auto h = hash_password("kuat", kOpsLimitInteractive, kMemLimitInteractive);
  ASSERT_TRUE(h.ok()) << h.error;
  EXPECT_NE(h.value.find("m=65536,t=2"), std::string::npos) << h.value;
  EXPECT_TRUE(verify_password(h.value, "kuat"));
}

TEST(ChatUsers, DemoUsersAreTheCoursesThree) {
  const auto& users = testing::demo();
  ASSERT_EQ(users.size(), 3u);
  EXPECT_EQ(users[0].username, "messi");
  EXPECT_EQ(users[0].nama, "Lionel Messi");
  EXPECT_EQ(users[0].negara, "Argentina");
  EXPECT_EQ(users[1].username, "henderson");
  EXPECT_EQ(users[1].nama, "Jordan Henderson");
  EXPECT_EQ(users[1].negara, "Inggris");
  EXPECT_EQ(users[2].username, "lineker");
  EXPECT_EQ(users[2].nama, "Gary Lineker");
  EXPECT_EQ(users[2].negara, "Inggris");
  for (const ChatUser& u : users) {
    EXPECT_TRUE(verify_password(u.password_hash, "surabaya")) << u.username;
    EXPECT_EQ(u.password_hash.find("surabaya"), std::string::npos);
  }
}

TEST(ChatUsers, LoadsAUsersFileAndLogsIn) {
  fsrv::test::TempDir dir;
  const std::string path = dir.file("users.json");
  spit(path, "[" + user_json("budi", cheap_hash("satu")) + ", " +
                 user_json("siti", cheap_hash("dua")) + "]");
  auto users = load_users_file(path);
  ASSERT_TRUE(users.ok()) << users.error;
  ASSERT_EQ(users.value.size(), 2u);
  EXPECT_EQ(users.value[1].username, "siti");
  EXPECT_EQ(users.value[1].nama, "Nama siti");
  EXPECT_EQ(users.value[1].negara, "Indonesia");

  SqliteChatStore store;
  ASSERT_TRUE(store.open(dir.file("chat.db"), users.value, 60).ok());
  EXPECT_EQ(store.auth("budi", "satu").outcome, Outcome::kOk);
  EXPECT_EQ(store.auth("budi", "dua").outcome, Outcome::kWrongPassword);
  EXPECT_EQ(store.auth("messi", "surabaya").outcome, Outcome::kNoSuchUser);
}

TEST(ChatUsers, BadUsersFilesAreRefusedWithAReason) {
  const std::string h = cheap_hash("x");
  struct Case {
    std::string text;
    std::string reason;  // a fragment of the expected error
  };
  const std::vector<Case> cases = {
      {"", "not valid JSON"},
      {"[", "not valid JSON"},
      {"{\"username\": \"a\"}", "must be a JSON array"},
      {"[]", "no users"},
      {"[1]", "user #0: not an object"},
      {"[{\"nama\": \"A\", \"negara\": \"B\", \"password_hash\": \"" + h + "\"}]",
       "missing \"username\""},
      {"[{\"username\": 7, \"nama\": \"A\", \"negara\": \"B\", \"password_hash\": \"" + h + "\"}]",
       "\"username\" must be a string"},
      {"[" + user_json("a", h) + ", " + user_json("a", h) + "]", "user #1: duplicate username"},
      {"[" + user_json("two words", h) + "]", "whitespace"},
      {"[" + user_json("", h) + "]", "empty username"},
      {"[" + user_json("a", "surabaya") + "]", "password_hash is not"},
      {"[" + user_json("a", "$2y$10$bcryptbcryptbcryptbcrypt") + "]", "password_hash is not"},
  };
  for (const Case& c : cases) {
    auto r = parse_users_json(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.error.find(c.reason), std::string::npos) << c.text << " -> " << r.error;
  }
}

TEST(ChatUsers, UnreadableUsersFileNamesThePath) {
  fsrv::test::TempDir dir;
  auto missing = load_users_file(dir.file("nope.json"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error.find("nope.json"), std::string::npos) << missing.error;
  EXPECT_FALSE(load_users_file(dir.path()).ok());  // a directory
  spit(dir.file("bad.json"), "[1]");
  auto bad = load_users_file(dir.file("bad.json"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error.find("bad.json"), std::string::npos) << bad.error;
}

TEST(ChatUsers, UsernameRules) {
  EXPECT_EQ(validate_username("messi"), "");
  EXPECT_EQ(validate_username("caf\xc3\xa9"), "");
  // Each is refused with a reason.
  for (const std::string& name : std::vector<std::string>{
           "",
           "a b",
           "a\tb",
           "a\xc2\xa0",  // NBSP would be stripped
           "\xff",
           std::string(65, 'a'),
       }) {
    EXPECT_NE(validate_username(name), "") << name;
  }
}

}  // namespace
}  // namespace fsrv::services::chat
