// The chat service through bin/fileserver: a --chat-users file replaces the
// demo users; a bad one stops the server at start-up with the reason; many
// clients sending at once in thread mode (several pool threads, one
// ChatStore each) deliver every message exactly once, on SQLite and on
// PostgreSQL (--chat-db), in thread and process mode.

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "../support/pg_instance.hpp"
#include "../support/server_process.hpp"
#include "fsrv/services/chat/chat_users.hpp"

namespace fsrv::test {
namespace {

/// Sends one request line and returns the reply up to and including "\r\n\r\n".
std::string ask(int fd, const std::string& line) {
  if (!send_all(fd, line + "\r\n")) return "<send failed>";
  std::string in;
  char buf[4096];
  while (in.size() < 4 || in.compare(in.size() - 4, 4, "\r\n\r\n") != 0) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return in + "<closed>";
    in.append(buf, static_cast<size_t>(n));
  }
  return in;
}

/// The token of an OK auth reply ("" otherwise).
std::string token_of(const std::string& reply) {
  const std::string key = R"("tokenid": ")";
  size_t at = reply.find(key);
  return at == std::string::npos ? "" : reply.substr(at + key.size(), 36);
}

TEST(ChatService, UsersFileReplacesTheDemoUsers) {
  TempDir root, etc;
  auto hash = services::chat::hash_password("rahasia", services::chat::kDemoOpsLimit,
                                            services::chat::kDemoMemLimit);
  ASSERT_TRUE(hash.ok()) << hash.error;
  std::string users = etc.file("users.json");
  spit(users, R"([{"username": "budi", "nama": "Budi \u00c9", "negara": "Indonesia", )"
              R"("password_hash": ")" +
                  hash.value +
                  R"("}, )"
                  R"({"username": "sari", "nama": "Sari", "negara": "Indonesia", )"
                  R"("password_hash": ")" +
                  hash.value + R"("}])");
  ServerProcess server({"--listen", "chat=0", "--chat-users", users, "--log-level", "error"},
                       root.path());
  int fd = connect_to(server.port());
  ASSERT_GE(fd, 0);
  EXPECT_EQ(ask(fd, "auth messi surabaya"),
            "{\"status\": \"ERROR\", \"message\": \"User Tidak Ada\"}\r\n\r\n");
  EXPECT_EQ(ask(fd, "auth budi surabaya"),
            "{\"status\": \"ERROR\", \"message\": \"Password Salah\"}\r\n\r\n");
  std::string token = token_of(ask(fd, "auth budi rahasia"));
  ASSERT_EQ(token.size(), 36u);
  EXPECT_EQ(ask(fd, "send " + token + " sari halo"),
            "{\"status\": \"OK\", \"message\": \"Message Sent\"}\r\n\r\n");
  std::string sari = token_of(ask(fd, "auth sari rahasia"));
  EXPECT_EQ(ask(fd, "inbox " + sari),
            "{\"status\": \"OK\", \"messages\": {\"budi\": [{\"msg_from\": \"Budi \\u00c9\", "
            "\"msg_to\": \"Sari\", \"msg\": \"halo\"}]}}\r\n\r\n");
  close(fd);
}

TEST(ChatService, BadUsersFileStopsTheServerWithTheReason) {
  TempDir root, etc;
  std::string users = etc.file("users.json");
  spit(users, R"([{"username": "x", "nama": "X", "negara": "Y", "password_hash": "surabaya"}])");
  std::string cmd = bin_dir() + "/fileserver --host 127.0.0.1 --listen chat=0 --root " +
                    root.path() + " --chat-users " + users + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int st = pclose(p);
  EXPECT_NE(WEXITSTATUS(st), 0) << out;
  EXPECT_NE(out.find("--chat-users"), std::string::npos) << out;
  EXPECT_NE(out.find("password_hash"), std::string::npos) << out;
  EXPECT_EQ(out.find("listening"), std::string::npos) << out;
}

/// A users file of `names`, each with the hash of `password` (demo cost:
/// the test checks who may log in, not the hash's strength).
std::string users_json(const std::vector<std::string>& names, const std::string& password) {
  auto hash = services::chat::hash_password(password, services::chat::kDemoOpsLimit,
                                            services::chat::kDemoMemLimit);
  std::string out = "[";
  for (const std::string& n : names) {
    if (out.size() > 1) out += ", ";
    out += R"({"username": ")" + n + R"(", "nama": ")" + n +
           R"(", "negara": "Indonesia", "password_hash": ")" + hash.value + R"("})";
  }
  return out + "]";
}

// SIGHUP re-reads --chat-users with no restart and without a config file:
// a new user can log in, a removed one cannot (its session is gone), a
// changed password takes effect; a broken file on the next SIGHUP keeps
// the running users. Thread mode, with one loop and with two (loop 0 tells
// the other), and process mode (the master forwards the signal; every
// worker's database threads sync the table).
class ChatUsersReload : public ::testing::TestWithParam<const char*> {};

TEST_P(ChatUsersReload, SighupReadsTheUsersFileAgain) {
  TempDir root, etc;
  const std::string users = etc.file("users.json");
  spit(users, users_json({"budi", "sari"}, "lama"));
  // "thread_loops2": thread mode with two event loops, each its own chat
  // service whose database threads must see the reload.
  const std::string mode = GetParam();
  std::vector<std::string> args = {"--listen",     "chat=0",
                                   "--chat-users", users,
                                   "--log-level",  "error",
                                   "--workers",    "2",
                                   "--mode",       mode == "thread_loops2" ? "thread" : mode};
  if (mode == "thread_loops2") args.insert(args.end(), {"--loops", "2"});
  ServerProcess server(args, root.path());
  int fd = connect_to(server.port());
  ASSERT_GE(fd, 0);
  const std::string sari = token_of(ask(fd, "auth sari lama"));
  ASSERT_EQ(sari.size(), 36u);
  EXPECT_EQ(ask(fd, "auth tono baru"),
            "{\"status\": \"ERROR\", \"message\": \"User Tidak Ada\"}\r\n\r\n");

  spit(users + ".tmp", users_json({"budi", "tono"}, "baru"));
  ASSERT_EQ(rename((users + ".tmp").c_str(), users.c_str()), 0);
  ASSERT_EQ(kill(server.pid(), SIGHUP), 0);
  // Every worker applies it before its next request: ask until all agree.
  EXPECT_TRUE(eventually(
      [&] {
        int c = connect_to(server.port());
        bool ok = token_of(ask(c, "auth tono baru")).size() == 36;
        close(c);
        return ok;
      },
      10000));
  for (int i = 0; i < 6; ++i) {  // new connections land on every worker
    int c = connect_to(server.port());
    EXPECT_EQ(token_of(ask(c, "auth tono baru")).size(), 36u);
    EXPECT_EQ(ask(c, "auth sari lama"),
              "{\"status\": \"ERROR\", \"message\": \"User Tidak Ada\"}\r\n\r\n");
    EXPECT_EQ(ask(c, "auth budi lama"),
              "{\"status\": \"ERROR\", \"message\": \"Password Salah\"}\r\n\r\n");
    close(c);
  }
  // The removed user's session went with her.
  EXPECT_EQ(ask(fd, "inbox " + sari),
            "{\"status\": \"ERROR\", \"message\": \"Informasi tidak ditemukan\"}\r\n\r\n");

  // A broken file: logged, and the running users stay.
  spit(users, "[not json");
  ASSERT_EQ(kill(server.pid(), SIGHUP), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(token_of(ask(fd, "auth tono baru")).size(), 36u);
  close(fd);
  EXPECT_EQ(WEXITSTATUS(server.stop()), 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, ChatUsersReload,
                         ::testing::Values("thread", "thread_loops2", "process"));

/// Backend and server mode of the end-to-end chat test.
struct ChatSetup {
  bool postgres;
  const char* mode;
};

class ChatEndToEnd : public ::testing::TestWithParam<ChatSetup> {};

TEST_P(ChatEndToEnd, ConcurrentSendersDeliverEachMessageOnce) {
  TempDir root;
  std::vector<std::string> args = {"--listen",    "chat=0", "--workers", "4",
                                   "--log-level", "error",  "--mode",    GetParam().mode};
  if (GetParam().postgres) {
    std::string why;
    PgInstance* pg = PgInstance::shared(&why);
    if (pg == nullptr) GTEST_SKIP() << why;
    args.push_back("--chat-db");
    args.push_back(pg->create_database());
  }
  ServerProcess server(args, root.path());
  constexpr int kSenders = 8;
  constexpr int kEach = 25;
  std::vector<std::thread> threads;
  std::vector<int> sent(kSenders, 0);
  for (int s = 0; s < kSenders; ++s) {
    threads.emplace_back([&, s] {
      int fd = connect_to(server.port());
      if (fd < 0) return;
      std::string t = token_of(ask(fd, s % 2 ? "auth messi surabaya" : "auth lineker surabaya"));
      for (int i = 0; i < kEach; ++i) {
        std::string r =
            ask(fd, "send " + t + " henderson m" + std::to_string(s) + "-" + std::to_string(i));
        if (r == "{\"status\": \"OK\", \"message\": \"Message Sent\"}\r\n\r\n") ++sent[s];
      }
      close(fd);
    });
  }
  // Meanwhile the receiver drains its inbox repeatedly from two connections.
  std::vector<std::string> got;
  int a = connect_to(server.port()), b = connect_to(server.port());
  std::string ta = token_of(ask(a, "auth henderson surabaya"));
  std::string tb = token_of(ask(b, "auth henderson surabaya"));
  auto drain = [&](int fd, const std::string& t) {
    std::string r = ask(fd, "inbox " + t);
    for (size_t at = 0; (at = r.find("\"msg\": \"", at)) != std::string::npos;) {
      at += 8;
      got.push_back(r.substr(at, r.find('"', at) - at));
    }
  };
  for (int round = 0; round < 20; ++round) {
    drain(a, ta);
    drain(b, tb);
  }
  for (auto& th : threads) th.join();
  drain(a, ta);
  close(a);
  close(b);
  int total = 0;
  for (int n : sent) total += n;
  EXPECT_EQ(total, kSenders * kEach);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(std::adjacent_find(got.begin(), got.end()), got.end()) << "a message came twice";
  EXPECT_EQ(static_cast<int>(got.size()), total);
}

INSTANTIATE_TEST_SUITE_P(Backends, ChatEndToEnd,
                         ::testing::Values(ChatSetup{false, "thread"}, ChatSetup{true, "thread"},
                                           ChatSetup{true, "process"}),
                         [](const ::testing::TestParamInfo<ChatSetup>& i) {
                           return std::string(i.param.postgres ? "Postgres" : "Sqlite") + "_" +
                                  i.param.mode;
                         });

}  // namespace
}  // namespace fsrv::test
