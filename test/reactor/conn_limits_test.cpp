// reactor::ConnectionLimits: default shares, slots kept for each listener,
// the per-address cap, and counting back down as connections close.

#include "fsrv/reactor/conn_limits.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace fsrv::test {
namespace {

using reactor::Admission;
using reactor::ConnectionLimits;

TEST(ConnectionLimits, OneListenerMayTakeEverything) {
  auto s = ConnectionLimits::plan(100, {0});
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].max_conns, 100);
  EXPECT_EQ(s[0].reserved, 0);
}

TEST(ConnectionLimits, EachOfSeveralListenersKeepsSlotsTheOthersCannotTake) {
  // 3 TCP listeners and a datagram one: each keeps 100 / (4 * 3) = 8.
  auto s = ConnectionLimits::plan(100, {0, 0, 0, -1});
  EXPECT_EQ(s[0].reserved, 8);
  EXPECT_EQ(s[0].max_conns, 84);
  EXPECT_EQ(s[3].max_conns, 0);
  ConnectionLimits l;
  l.configure(100, s, 0);
  for (int i = 0; i < 84; ++i) {
    ASSERT_EQ(l.admit(0, "a"), Admission::kOk) << i;
    l.add(0, "a");
  }
  EXPECT_EQ(l.admit(0, "a"), Admission::kListenerFull);
  // The others still have their kept slots and the rest.
  for (int i = 0; i < 8; ++i) {
    ASSERT_EQ(l.admit(1, "b"), Admission::kOk);
    l.add(1, "b");
  }
  for (int i = 0; i < 8; ++i) {
    ASSERT_EQ(l.admit(2, "c"), Admission::kOk);
    l.add(2, "c");
  }
  EXPECT_EQ(l.total(), 100);
  EXPECT_EQ(l.admit(1, "b"), Admission::kBusy);
  l.remove(0, "a");
  EXPECT_EQ(l.active(0), 83);
  EXPECT_EQ(l.admit(1, "b"), Admission::kOk);
}

TEST(ConnectionLimits, ExplicitShareAndPerAddressCap) {
  auto s = ConnectionLimits::plan(100, {5, 0});
  EXPECT_EQ(s[0].max_conns, 5);
  EXPECT_LE(s[0].reserved, 5);
  ConnectionLimits l;
  l.configure(100, s, 3);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(l.admit(1, "x"), Admission::kOk);
    l.add(1, "x");
  }
  EXPECT_EQ(l.admit(1, "x"), Admission::kAddressFull);
  EXPECT_EQ(l.admit(0, "x"), Admission::kAddressFull);  // the cap spans listeners
  EXPECT_EQ(l.admit(1, "y"), Admission::kOk);
  for (int i = 0; i < 3; ++i) l.remove(1, "x");
  EXPECT_EQ(l.addresses(), 0u);  // the table holds live addresses only
  EXPECT_EQ(l.admit(1, "x"), Admission::kOk);
}

// SIGHUP: a lower limit keeps the open connections counted and refuses
// newcomers until enough have closed; a higher one admits more at once.
TEST(ConnectionLimits, ReplanKeepsTheOpenConnectionsCounted) {
  ConnectionLimits l;
  l.configure(5, ConnectionLimits::plan(5, {0}), 0);
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(l.admit(0, "a"), Admission::kOk);
    l.add(0, "a");
  }
  l.replan(2, ConnectionLimits::plan(2, {0}), 0);
  EXPECT_EQ(l.total(), 4);
  EXPECT_EQ(l.active(0), 4);
  EXPECT_NE(l.admit(0, "a"), Admission::kOk);
  for (int i = 0; i < 3; ++i) l.remove(0, "a");
  EXPECT_EQ(l.admit(0, "a"), Admission::kOk);  // 1 open, limit 2
  l.replan(10, ConnectionLimits::plan(10, {0}), 1);
  EXPECT_EQ(l.admit(0, "a"), Admission::kAddressFull) << "the new per-address cap holds";
  EXPECT_EQ(l.admit(0, "b"), Admission::kOk);
}

// Thread mode with --loops: every loop admits against one table at once.
// admit_and_add takes a slot in one step, so four threads racing for 100
// slots get exactly 100 and one address exactly its cap.
TEST(ConnectionLimits, LoopsAdmittingAtOnceNeverTakeMoreThanTheLimit) {
  ConnectionLimits l;
  l.configure(100, ConnectionLimits::plan(100, {0}), 30);
  std::atomic<int> admitted{0}, from_a{0};
  std::vector<std::thread> loops;
  for (int t = 0; t < 4; ++t) {
    loops.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::string address = i % 2 ? "a" : std::string(1, static_cast<char>('b' + t));
        if (l.admit_and_add(0, address) == Admission::kOk) {
          ++admitted;
          if (address == "a") ++from_a;
        }
      }
    });
  }
  for (auto& t : loops) t.join();
  EXPECT_EQ(admitted.load(), 100);
  EXPECT_EQ(l.total(), 100);
  EXPECT_EQ(from_a.load(), 30);
}

TEST(ConnectionLimits, OffUntilConfigured) {
  ConnectionLimits l;
  EXPECT_FALSE(l.enabled());
  EXPECT_EQ(l.admit(0, "a"), Admission::kOk);
  l.add(0, "a");  // no-ops
  EXPECT_EQ(l.total(), 0);
}

}  // namespace
}  // namespace fsrv::test
