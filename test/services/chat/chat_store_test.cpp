// ChatStore (src/services/chat/chat_store.cpp) on temporary SQLite files:
// two stores on one file stand for two prefork workers; persistence across
// reopen; exactly-once delivery under concurrent inbox calls; idle expiry.

#include "fsrv/services/chat/chat_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <latch>
#include <set>
#include <thread>

#include "chat_test_util.hpp"
#include "fsrv/services/chat/sqlite_chat_store.hpp"

namespace fsrv::services::chat {
namespace {

using testing::FakeClock;
using testing::login;
using testing::open_store;
using ChatStoreBoth = testing::BothBackends;

// All messages of an inbox result as "sender:msg" strings, in reply order.
std::vector<std::string> flatten(const InboxResult& r) {
  std::vector<std::string> out;
  for (const InboxGroup& g : r.groups) {
    for (const InboxMessage& m : g.messages) out.push_back(g.sender + ":" + m.msg);
  }
  return out;
}

TEST_P(ChatStoreBoth, TwoStoresOnOneFileMessageEachOther) {
  const std::string db = new_location();
  auto worker_a = open_at(db);
  auto worker_b = open_at(db);
  const std::string messi = login(*worker_a, "messi");
  const std::string hend = login(*worker_b, "henderson");

  EXPECT_EQ(worker_a->send(messi, "henderson", "halo dari A").outcome, Outcome::kOk);
  InboxResult in_b = worker_b->inbox(hend);
  ASSERT_EQ(in_b.outcome, Outcome::kOk);
  EXPECT_EQ(flatten(in_b), (std::vector<std::string>{"messi:halo dari A"}));
  ASSERT_EQ(in_b.groups.size(), 1u);
  EXPECT_EQ(in_b.groups[0].messages[0].msg_from, "Lionel Messi");
  EXPECT_EQ(in_b.groups[0].messages[0].msg_to, "Jordan Henderson");

  EXPECT_EQ(worker_b->send(hend, "messi", "balas dari B").outcome, Outcome::kOk);
  // A token is valid through any worker.
  EXPECT_EQ(flatten(worker_b->inbox(messi)), (std::vector<std::string>{"henderson:balas dari B"}));
  EXPECT_TRUE(flatten(worker_a->inbox(hend)).empty());
  ListUserResult l = worker_a->listuser(hend);
  EXPECT_EQ(l.usernames, (std::vector<std::string>{"messi", "henderson"}));
}

TEST_P(ChatStoreBoth, UnreadMessageAndSessionSurviveReopen) {
  const std::string db = new_location();
  std::string messi, hend;
  {
    auto store = open_at(db);
    messi = login(*store, "messi");
    hend = login(*store, "henderson");
    ASSERT_EQ(store->send(messi, "henderson", "simpan aku").outcome, Outcome::kOk);
  }
  // Fresh demo hashes on reopen (as a restarted server makes them).
  auto users = demo_users();
  ASSERT_TRUE(users.ok()) << users.error;
  auto store_owner = make();
  ChatStore& store = *store_owner;
  ASSERT_TRUE(store.open(db, users.value, 3600).ok());
  EXPECT_EQ(flatten(store.inbox(hend)), (std::vector<std::string>{"messi:simpan aku"}));
  EXPECT_TRUE(flatten(store.inbox(hend)).empty());
  EXPECT_EQ(store.auth("messi", "surabaya").outcome, Outcome::kOk);
}

// The operations' SQL is shared by both backends (chat_store.cpp), each
// binding parameters and reading columns its own way: a message of any
// bytes (NUL, invalid UTF-8, none at all) comes back unchanged, and the
// inbox keeps the delivery order however the database returns deleted rows.
TEST_P(ChatStoreBoth, AnyBytesComeBackUnchangedGroupedInDeliveryOrder) {
  auto store = open_at(new_location());
  const std::string messi = login(*store, "messi");
  const std::string gary = login(*store, "lineker");
  const std::string hend = login(*store, "henderson");
  const std::string odd[] = {std::string("a\0b", 3), "\xff\xfe\xc3", "", "\\x00'\"; --"};
  std::vector<std::string> from_messi, from_gary;
  for (int i = 0; i < 40; ++i) {
    const bool by_messi = i % 3 != 1;
    const std::string msg = odd[i % 4] + std::to_string(i);
    ASSERT_EQ(store->send(by_messi ? messi : gary, "henderson", msg).outcome, Outcome::kOk);
    (by_messi ? from_messi : from_gary).push_back(msg);
  }
  ASSERT_EQ(store->send(gary, "henderson", "").outcome, Outcome::kOk);
  from_gary.push_back("");
  InboxResult in = store->inbox(hend);
  ASSERT_EQ(in.outcome, Outcome::kOk);
  ASSERT_EQ(in.groups.size(), 2u);
  EXPECT_EQ(in.groups[0].sender, "messi");  // its first message came first
  EXPECT_EQ(in.groups[1].sender, "lineker");
  for (const auto& [group, sent] :
       {std::pair{&in.groups[0], &from_messi}, std::pair{&in.groups[1], &from_gary}}) {
    ASSERT_EQ(group->messages.size(), sent->size());
    for (size_t i = 0; i < sent->size(); ++i) EXPECT_EQ(group->messages[i].msg, (*sent)[i]) << i;
  }
  EXPECT_EQ(in.groups[1].messages[0].msg_from, "Gary Lineker");
  EXPECT_TRUE(store->inbox(hend).groups.empty());
}

// Generous lock waits: sanitizer builds on shared cores are slow, and this
// test is about exactly-once delivery, not about lock latency.
ChatStoreOptions patient() {
  ChatStoreOptions o;
  o.busy_timeout_ms = 60'000;
  return o;
}

// Regression (CI, thread mode): libuv's pool threads each open their own
// store on first use, so several first opens of one new database race to
// switch it to WAL and create the schema. SQLite answers some of those with
// SQLITE_BUSY without waiting; open() must retry instead of failing.
TEST_P(ChatStoreBoth, SimultaneousFirstOpensOfANewDatabaseAllSucceed) {
  constexpr int kRounds = 8;
  constexpr int kOpeners = 8;
  for (int round = 0; round < kRounds; ++round) {
    const std::string db = new_location();
    std::latch start(kOpeners);
    std::atomic<int> failures{0};
    std::vector<std::string> errors(kOpeners);
    std::vector<std::thread> threads;
    for (int i = 0; i < kOpeners; ++i) {
      threads.emplace_back([&, i] {
        auto store = make();
        start.arrive_and_wait();
        Status st = store->open(db, testing::demo(), 3600);
        if (!st.ok()) {
          errors[i] = st.error;
          ++failures;
        }
      });
    }
    for (auto& t : threads) t.join();
    for (const std::string& e : errors) EXPECT_TRUE(e.empty()) << "round " << round << ": " << e;
    ASSERT_EQ(failures.load(), 0) << "round " << round;
  }
}

TEST_P(ChatStoreBoth, ConcurrentInboxDeliversEachMessageExactlyOnce) {
  const std::string db = new_location();
  auto sender = open_at(db, 3600, patient());
  auto reader_a = open_at(db, 3600, patient());
  auto reader_b = open_at(db, 3600, patient());
  const std::string messi = login(*sender, "messi");
  const std::string hend = login(*sender, "henderson");
  constexpr int kMessages = 300;

  std::atomic<bool> sending_done{false};
  std::atomic<int> failures{0};
  std::vector<std::string> got_a, got_b;
  auto reader = [&](ChatStore& store, std::vector<std::string>& got) {
    while (true) {
      const bool last_round = sending_done.load();
      InboxResult r = store.inbox(hend);
      if (r.outcome != Outcome::kOk) ++failures;
      for (std::string& s : flatten(r)) got.push_back(std::move(s));
      if (last_round) break;
      // A client polls; without a pause two readers could hold the write
      // lock in turn and starve the sender past its busy timeout.
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  };
  std::thread ta(reader, std::ref(*reader_a), std::ref(got_a));
  std::thread tb(reader, std::ref(*reader_b), std::ref(got_b));
  for (int i = 0; i < kMessages; ++i) {
    if (sender->send(messi, "henderson", "m" + std::to_string(i)).outcome != Outcome::kOk) {
      ++failures;
    }
  }
  sending_done = true;
  ta.join();
  tb.join();
  EXPECT_EQ(failures.load(), 0);

  std::set<std::string> all;
  for (const auto* got : {&got_a, &got_b}) {
    int previous = -1;
    for (const std::string& s : *got) {
      EXPECT_TRUE(all.insert(s).second) << "delivered twice: " << s;
      const int n = std::stoi(s.substr(s.find(":m") + 2));
      EXPECT_GT(n, previous) << "out of order";  // each reader sees ascending ids
      previous = n;
    }
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kMessages));
  // Both readers took part (recorded for the log; the split varies).
  RecordProperty("reader_a", static_cast<int>(got_a.size()));
  RecordProperty("reader_b", static_cast<int>(got_b.size()));
}

// Both readers start inbox at the same moment on a full queue, round after
// round: exactly one of them may take each message.
TEST_P(ChatStoreBoth, SimultaneousInboxOnAFullQueueNeverDuplicates) {
  const std::string db = new_location();
  auto sender = open_at(db, 3600, patient());
  std::unique_ptr<ChatStore> readers[2] = {open_at(db, 3600, patient()),
                                           open_at(db, 3600, patient())};
  const std::string messi = login(*sender, "messi");
  const std::string hend = login(*sender, "henderson");
  constexpr int kRounds = 20, kPerRound = 10;
  std::set<std::string> all;
  int winners[2] = {0, 0};
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < kPerRound; ++i) {
      ASSERT_EQ(sender->send(messi, "henderson", std::to_string(round * kPerRound + i)).outcome,
                Outcome::kOk);
    }
    std::latch start(2);
    std::vector<std::string> got[2];
    auto reader = [&](int k) {
      start.arrive_and_wait();
      got[k] = flatten(readers[k]->inbox(hend));
    };
    std::thread t0(reader, 0), t1(reader, 1);
    t0.join();
    t1.join();
    for (int k = 0; k < 2; ++k) {
      if (!got[k].empty()) ++winners[k];
      for (const std::string& s : got[k]) EXPECT_TRUE(all.insert(s).second) << "twice: " << s;
    }
    // One transaction takes the whole queue; the other finds it empty.
    EXPECT_TRUE(got[0].empty() || got[1].empty());
    EXPECT_EQ(got[0].size() + got[1].size(), static_cast<size_t>(kPerRound));
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kRounds * kPerRound));
  RecordProperty("winner_0", winners[0]);
  RecordProperty("winner_1", winners[1]);
}

TEST_P(ChatStoreBoth, IdleSessionExpiresAndUseRenewsIt) {
  FakeClock clock;
  ChatStoreOptions opts;
  opts.now_ms = clock.fn();
  auto store = open_at(new_location(), 10.0, opts);
  const std::string messi = login(*store, "messi");
  const std::string hend = login(*store, "henderson");

  clock.advance_ms(10'000);  // exactly the TTL: still alive, and renewed
  EXPECT_EQ(store->send(messi, "henderson", "x").outcome, Outcome::kOk);
  clock.advance_ms(9'000);
  EXPECT_EQ(store->listuser(messi).usernames, (std::vector<std::string>{"messi"}));
  clock.advance_ms(10'001);  // messi idle 10.001 s
  EXPECT_EQ(store->inbox(messi).outcome, Outcome::kBadToken);
  EXPECT_EQ(store->send(messi, "henderson", "y").outcome, Outcome::kBadToken);
  // The message queued before expiry is still there for a new session.
  const std::string hend2 = login(*store, "henderson");
  EXPECT_EQ(flatten(store->inbox(hend2)), (std::vector<std::string>{"messi:x"}));
}

// An inbox holds at most kMaxInboxMessages unread messages and
// kMaxInboxBytes: a send over either is refused with kInboxFull and stores
// nothing; once the receiver has read, sending works again.
TEST_P(ChatStoreBoth, InboxOverItsCapRefusesTheSendUntilRead) {
  auto store = open_at(new_location(), 3600.0);
  const std::string messi = login(*store, "messi");
  const std::string hend = login(*store, "henderson");
  for (int64_t i = 0; i < kMaxInboxMessages; ++i) {
    ASSERT_EQ(store->send(messi, "henderson", "m").outcome, Outcome::kOk) << i;
  }
  EXPECT_EQ(store->send(messi, "henderson", "one too many").outcome, Outcome::kInboxFull);
  EXPECT_EQ(store->send(hend, "messi", "the other way is not full").outcome, Outcome::kOk);
  EXPECT_EQ(flatten(store->inbox(hend)).size(), static_cast<size_t>(kMaxInboxMessages));
  // By bytes: messages of 64 KiB fill 1 MiB in 16.
  const std::string big(64 * 1024, 'x');
  int stored = 0;
  while (store->send(messi, "henderson", big).outcome == Outcome::kOk) ++stored;
  EXPECT_EQ(static_cast<int64_t>(stored) * 64 * 1024, kMaxInboxBytes);
  EXPECT_EQ(store->send(messi, "henderson", big).outcome, Outcome::kInboxFull);
  EXPECT_EQ(flatten(store->inbox(hend)).size(), static_cast<size_t>(stored));
  EXPECT_EQ(store->send(messi, "henderson", big).outcome, Outcome::kOk);
}

TEST_P(ChatStoreBoth, ShortRealTtlExpires) {
  auto store = open_at(new_location(), 0.2);
  const std::string messi = login(*store, "messi");
  EXPECT_EQ(store->inbox(messi).outcome, Outcome::kOk);
  std::this_thread::sleep_for(std::chrono::milliseconds(450));
  EXPECT_EQ(store->inbox(messi).outcome, Outcome::kBadToken);
}

TEST_P(ChatStoreBoth, LogoutEndsEverySessionOfTheUser) {
  auto store = open_at(new_location());
  const std::string first = login(*store, "messi");
  const std::string other = login(*store, "lineker");
  const std::string second = login(*store, "messi");
  EXPECT_NE(first, second);
  EXPECT_EQ(store->listuser(second).usernames, (std::vector<std::string>{"messi", "lineker"}));
  EXPECT_EQ(store->logout(first).outcome, Outcome::kOk);
  EXPECT_EQ(store->inbox(second).outcome, Outcome::kBadToken);
  EXPECT_EQ(store->logout(first).outcome, Outcome::kBadToken);
  EXPECT_EQ(store->listuser(other).usernames, (std::vector<std::string>{"lineker"}));
}

TEST(ChatStore, DefaultPathIsHiddenUnderRootAndCreated) {
  fsrv::test::TempDir dir;
  EXPECT_EQ(default_db_path("/srv/files"), "/srv/files/.chat/chat.db");
  EXPECT_EQ(default_db_path("/srv/files/"), "/srv/files/.chat/chat.db");
  const std::string path = default_db_path(dir.path());
  auto store = open_store(path);
  ASSERT_TRUE(store->is_open());
  struct stat st {};
  ASSERT_EQ(stat((dir.path() + "/.chat").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_TRUE(std::filesystem::exists(path));
}

TEST(ChatStore, FileIsInWalModeWithHashedTokensOnly) {
  fsrv::test::TempDir dir;
  const std::string path = dir.file("chat.db");
  auto store = open_store(path);
  const std::string token = login(*store, "messi");
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &s, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)), "wal");
  sqlite3_finalize(s);
  ASSERT_EQ(sqlite3_prepare_v2(raw, "SELECT count(*) FROM sessions WHERE token_hash = ?1", -1, &s,
                               nullptr),
            SQLITE_OK);
  sqlite3_bind_text(s, 1, token.c_str(), -1, SQLITE_TRANSIENT);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(s, 0), 0);  // the clear token is nowhere
  sqlite3_finalize(s);
  sqlite3_close(raw);
}

TEST_P(ChatStoreBoth, ReopenWithFewerUsersDropsTheOthers) {
  const std::string db = new_location();
  std::string messi;
  {
    auto store = open_at(db);
    messi = login(*store, "messi");
    const std::string hend = login(*store, "henderson");
    ASSERT_EQ(store->send(hend, "messi", "dari hend").outcome, Outcome::kOk);
  }
  std::vector<ChatUser> only_messi = {testing::demo()[0]};
  auto store_owner = make();
  ChatStore& store = *store_owner;
  ASSERT_TRUE(store.open(db, only_messi, 3600).ok());
  EXPECT_EQ(store.send(messi, "henderson", "x").outcome, Outcome::kNoSuchReceiver);
  EXPECT_TRUE(store.inbox(messi).groups.empty());  // henderson's messages went with him
  EXPECT_EQ(store.auth("henderson", "surabaya").outcome, Outcome::kNoSuchUser);
}

TEST_P(ChatStoreBoth, SetUsersAddsUpdatesAndRemovesInOneStep) {
  const std::string db = new_location();
  auto a = open_at(db);
  auto b = open_at(db);  // a second worker on the same database
  const std::string messi = login(*a, "messi");
  const std::string hend = login(*a, "henderson");
  ASSERT_EQ(a->send(messi, "henderson", "sebelum").outcome, Outcome::kOk);
  std::vector<ChatUser> next = {testing::demo()[0], testing::demo()[2]};  // henderson goes
  next[1].nama = "Gary W. Lineker";
  ChatUser extra = testing::demo()[0];
  extra.username = "budi";
  extra.nama = "Budi";
  next.push_back(extra);
  ASSERT_TRUE(a->set_users(next).ok());
  // Seen through the other store at once (one table).
  EXPECT_EQ(b->auth("henderson", "surabaya").outcome, Outcome::kNoSuchUser);
  EXPECT_EQ(b->auth("budi", "surabaya").outcome, Outcome::kOk);
  EXPECT_EQ(b->inbox(hend).outcome, Outcome::kBadToken);  // his session went with him
  EXPECT_EQ(b->send(messi, "henderson", "x").outcome, Outcome::kNoSuchReceiver);
  ASSERT_EQ(b->send(messi, "lineker", "halo").outcome, Outcome::kOk);
  const std::string gary = login(*b, "lineker");
  InboxResult in = b->inbox(gary);
  ASSERT_EQ(in.groups.size(), 1u);
  EXPECT_EQ(in.groups[0].messages[0].msg_to, "Gary W. Lineker");
  // A bad list changes nothing.
  std::vector<ChatUser> bad = next;
  bad[0].password_hash = "surabaya";
  EXPECT_FALSE(a->set_users(bad).ok());
  EXPECT_FALSE(a->set_users({}).ok());
  EXPECT_EQ(b->auth("budi", "surabaya").outcome, Outcome::kOk);
}

TEST(ChatStore, OpenRefusesBadArgumentsAndFiles) {
  fsrv::test::TempDir dir;
  {
    SqliteChatStore s;
    EXPECT_FALSE(s.open(dir.file("a.db"), testing::demo(), 0).ok());
    EXPECT_FALSE(s.open(dir.file("a.db"), testing::demo(), -1).ok());
    EXPECT_FALSE(s.open(dir.file("a.db"), {}, 60).ok());
    std::vector<ChatUser> plain = testing::demo();
    plain[1].password_hash = "surabaya";
    EXPECT_FALSE(s.open(dir.file("a.db"), plain, 60).ok());
    std::vector<ChatUser> twice = {testing::demo()[0], testing::demo()[0]};
    EXPECT_FALSE(s.open(dir.file("a.db"), twice, 60).ok());
    EXPECT_FALSE(s.is_open());
  }
  {
    fsrv::test::spit(dir.file("garbage.db"), std::string(4096, 'g'));
    SqliteChatStore s;
    Status st = s.open(dir.file("garbage.db"), testing::demo(), 60);
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.error.find("garbage.db"), std::string::npos) << st.error;
  }
  {
    fsrv::test::spit(dir.file("file"), "x");
    SqliteChatStore s;
    EXPECT_FALSE(s.open(dir.file("file") + "/sub/chat.db", testing::demo(), 60).ok());
  }
  {
    SqliteChatStore s;
    ASSERT_TRUE(s.open(dir.file("ok.db"), testing::demo(), 60).ok());
    EXPECT_FALSE(s.open(dir.file("ok.db"), testing::demo(), 60).ok());  // once per object
  }
}

TEST_P(ChatStoreBoth, WrongPasswordAndUnknownUser) {
  auto store = open_at(new_location());
  EXPECT_EQ(store->auth("messi", "Surabaya").outcome, Outcome::kWrongPassword);
  EXPECT_EQ(store->auth("messi", "").outcome, Outcome::kWrongPassword);
  EXPECT_EQ(store->auth("messi", testing::demo()[0].password_hash).outcome,
            Outcome::kWrongPassword);
  EXPECT_EQ(store->auth("Messi", "surabaya").outcome, Outcome::kNoSuchUser);
  AuthResult ok = store->auth("lineker", "surabaya");
  EXPECT_EQ(ok.outcome, Outcome::kOk);
  EXPECT_EQ(ok.token.size(), 36u);
}

INSTANTIATE_TEST_SUITE_P(Backends, ChatStoreBoth,
                         ::testing::Values(ChatDb::Kind::kSqlite, ChatDb::Kind::kPostgres),
                         testing::backend_name);

}  // namespace
}  // namespace fsrv::services::chat
