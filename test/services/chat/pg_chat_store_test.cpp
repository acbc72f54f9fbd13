// PgChatStore (src/services/chat/pg_chat_store.cpp) beyond the tests both
// backends share (chat_store_test.cpp, chat_protocol_test.cpp): the schema
// version table, a database that goes down and comes back, bad addresses.
// Each runs on a throwaway PostgreSQL server (test/support/pg_instance.hpp)
// and skips, saying why, where one cannot run.

#include "fsrv/services/chat/pg_chat_store.hpp"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <chrono>
#include <string>
#include <thread>

#include "chat_test_util.hpp"

namespace fsrv::services::chat {
namespace {

using testing::login;
using Clock = std::chrono::steady_clock;

// One SQL statement through a fresh libpq connection; its first value ("" if none).
std::string sql(const std::string& url, const std::string& statement) {
  PGconn* c = PQconnectdb(url.c_str());
  PGresult* r = PQexec(c, statement.c_str());
  std::string out = PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
  EXPECT_TRUE(PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK)
      << statement << ": " << PQerrorMessage(c);
  PQclear(r);
  PQfinish(c);
  return out;
}

#define NEED_PG(pg)                                                   \
  std::string why_;                                                   \
  fsrv::test::PgInstance* pg = fsrv::test::PgInstance::shared(&why_); \
  if (pg == nullptr) GTEST_SKIP() << why_

TEST(PgChatStore, SchemaVersionIsRecordedAndANewerOneIsRefused) {
  NEED_PG(pg);
  const std::string db = pg->create_database();
  PgChatStore store;
  ASSERT_TRUE(store.open(db, testing::demo(), 3600).ok());
  EXPECT_EQ(sql(db, "SELECT version FROM chat_schema_version"), "1");
  EXPECT_EQ(sql(db, "SELECT count(*) FROM users"), "3");
  // The clear token is nowhere: only its hash is stored.
  const std::string token = login(store, "messi");
  EXPECT_EQ(sql(db, "SELECT count(*) FROM sessions WHERE token_hash = convert_to('" + token +
                        "', 'UTF8')"),
            "0");
  EXPECT_EQ(sql(db, "SELECT count(*) FROM sessions"), "1");

  sql(db, "UPDATE chat_schema_version SET version = 99");
  PgChatStore newer;
  Status st = newer.open(db, testing::demo(), 3600);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.error.find("newer"), std::string::npos) << st.error;
}

TEST(PgChatStore, BadAddressIsRefusedAndUnreachableOneAnswersAtOnce) {
  PgChatStore bad;
  Status st = bad.open("postgresql://[::1", testing::demo(), 3600);
  EXPECT_FALSE(st.ok());
  EXPECT_FALSE(bad.is_open());
  // A socket directory with no server: refused at once, and the store keeps
  // its configuration to try again later.
  fsrv::test::TempDir dir;
  PgChatStore none;
  const auto t0 = Clock::now();
  st = none.open("postgresql:///x?host=" + dir.path(), testing::demo(), 3600);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.error.find("unavailable"), std::string::npos) << st.error;
  EXPECT_TRUE(none.is_open());
  AuthResult r = none.auth("messi", "surabaya");
  EXPECT_EQ(r.outcome, Outcome::kUnavailable) << r.error;
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
}

// The database stops hard (a crash) while a store is connected: every call
// answers kUnavailable at once (no hang), and once the server is back the
// store reconnects by itself; the sessions and messages committed before
// the crash are all there.
TEST(PgChatStore, DatabaseDownAnswersAtOnceAndRecoversByItself) {
  if (geteuid() != 0) GTEST_SKIP() << "PostgreSQL tests need root";
  std::unique_ptr<fsrv::test::PgInstance> pg;
  try {
    pg = std::make_unique<fsrv::test::PgInstance>();
  } catch (const std::exception& e) {
    GTEST_SKIP() << e.what();
  }
  const std::string db = pg->create_database();
  PgChatStore store;
  ASSERT_TRUE(store.open(db, testing::demo(), 3600).ok());
  const std::string messi = login(store, "messi");
  const std::string hend = login(store, "henderson");
  ASSERT_EQ(store.send(messi, "henderson", "sebelum crash").outcome, Outcome::kOk);

  pg->stop(/*immediate=*/true);
  for (int i = 0; i < 20; ++i) {
    const auto t0 = Clock::now();
    StatusResult r = store.send(messi, "henderson", "x");
    EXPECT_EQ(r.outcome, Outcome::kUnavailable) << r.error;
    EXPECT_LT(Clock::now() - t0, std::chrono::seconds(3)) << "call " << i << " hung";
    EXPECT_EQ(store.ping().outcome, Outcome::kUnavailable);
  }

  pg->start();
  const auto deadline = Clock::now() + std::chrono::seconds(15);
  InboxResult in;
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    in = store.inbox(hend);
  } while (in.outcome == Outcome::kUnavailable && Clock::now() < deadline);
  ASSERT_EQ(in.outcome, Outcome::kOk) << in.error;
  ASSERT_EQ(in.groups.size(), 1u);
  ASSERT_EQ(in.groups[0].messages.size(), 1u);
  EXPECT_EQ(in.groups[0].messages[0].msg, "sebelum crash");
  EXPECT_EQ(store.ping().outcome, Outcome::kOk);
}

// Two stores stand for two nodes: a token issued through one works through
// the other, and listuser sees every node's sessions.
TEST(PgChatStore, TokenFromOneNodeWorksOnAnother) {
  NEED_PG(pg);
  const std::string db = pg->create_database();
  PgChatStore node_a, node_b;
  ASSERT_TRUE(node_a.open(db, testing::demo(), 3600).ok());
  ASSERT_TRUE(node_b.open(db, testing::demo(), 3600).ok());
  const std::string messi = login(node_a, "messi");
  const std::string hend = login(node_b, "henderson");
  EXPECT_EQ(node_b.send(messi, "henderson", "dari A lewat B").outcome, Outcome::kOk);
  EXPECT_EQ(node_b.listuser(messi).usernames, (std::vector<std::string>{"messi", "henderson"}));
  InboxResult in = node_a.inbox(hend);
  ASSERT_EQ(in.groups.size(), 1u);
  EXPECT_EQ(in.groups[0].messages[0].msg, "dari A lewat B");
  // Bytes that are not UTF-8, and a NUL, come back unchanged.
  const std::string odd("\xff\x00z", 3);
  EXPECT_EQ(node_a.send(messi, "henderson", odd).outcome, Outcome::kOk);
  EXPECT_EQ(node_b.inbox(hend).groups.at(0).messages.at(0).msg, odd);
  EXPECT_EQ(node_a.send(messi, "\xff", "x").outcome, Outcome::kNoSuchReceiver);
}

}  // namespace
}  // namespace fsrv::services::chat
