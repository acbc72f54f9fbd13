// Connection: the one-shot protocol timer, write watermarks and on_drain,
// coalesced owned writes, close during a pending write, write errors closing
// at once, and send_file (sendfile(2) from the executor, or pread, a
// transform and send(2)).

#include <fcntl.h>

#include <atomic>
#include <cstring>
#include <random>

#include "../support/server_process.hpp"
#include "fsrv/reactor/executor.hpp"
#include "reactor_fixture.hpp"

namespace fsrv::test {
namespace {

TEST_F(ReactorTest, TimerFiresOnceAfterItsDelay) {
  factory.setup = [](ScriptedHandler& h) {
    h.read = [](ScriptedHandler& self, size_t) { self.connection->start_timer(30); };
    h.timer = [](ScriptedHandler& self) { self.connection->write_owned("tick"); };
  };
  int fd = client();
  send_all(fd, "go");
  std::string got;
  std::atomic<bool> received{false};  // the reader thread's result is read after join
  std::thread reader([&] {
    char buf[8];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) got.assign(buf, static_cast<size_t>(n));
    received = true;
  });
  bool ticked =
      run_until([&] { return factory.last && factory.last->timers == 1 && received.load(); });
  reader.join();
  ASSERT_TRUE(ticked);
  EXPECT_EQ(got, "tick");
  // Stopped before it fires: never fires.
  factory.last->connection->start_timer(20);
  factory.last->connection->stop_timer();
  run_until([&] { return false; }, 100);
  EXPECT_EQ(factory.last->timers, 1);
  close(fd);
}

// The connections' deadlines share one timer per loop (DeadlineQueue): every
// idle connection still times out, the queue empties as they close, and its
// timer is closed with it (TearDown's uv_loop_close() == 0).
TEST_F(ReactorTest, IdleDeadlinesOfManyConnectionsShareOneTimerAndAllFire) {
  reactor.idle_timeout_s = 0.05;
  constexpr int kClients = 20;
  int fds[kClients];
  for (int& fd : fds) fd = client();
  run_until([&] { return factory.made == kClients; });
  // Each one's deadline is queued, or (on a loaded machine, where accepting
  // twenty took longer than 50 ms) has already fired and closed it.
  EXPECT_EQ(reactor.deadlines.size() + static_cast<size_t>(factory.totals.closes),
            static_cast<size_t>(kClients));
  run_until([&] { return factory.totals.closes == kClients; }, 5000);
  EXPECT_EQ(factory.totals.closes, kClients);
  EXPECT_EQ(reactor.deadlines.size(), 0u);
  for (int fd : fds) EXPECT_EQ(read_all(fd), "");  // closed by the server
  for (int fd : fds) close(fd);
}

TEST_F(ReactorTest, WatermarksBoundPendingBytesAndDrainFiresOnce) {
  // The read asks for owned replies until the connection says it is
  // congested; the pending bytes then stay within one reply of kHighWater,
  // and on_drain fires once the client has read enough.
  bool was_congested = false;
  size_t max_pending = 0;
  int drains = 0;
  factory.setup = [&](ScriptedHandler& h) {
    h.read = [&](ScriptedHandler& self, size_t) {
      reactor::Connection& c = *self.connection;
      while (!c.congested()) c.write_owned(std::string(4096, 'r'));
      was_congested = true;
      max_pending = c.pending_bytes();
      c.pause_reading();
    };
    h.drain = [&](ScriptedHandler& self) {
      ++drains;
      self.connection->close_when_flushed();
    };
  };
  int fd = client();
  send_all(fd, "x");
  std::string all;
  std::thread reader([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    all = read_all(fd);
  });
  run_until([&] { return factory.made == 1 && reactor.connections.empty(); });
  reader.join();
  EXPECT_TRUE(was_congested);
  EXPECT_GT(max_pending, reactor::Connection::kHighWater);
  EXPECT_LE(max_pending, reactor::Connection::kHighWater + 4096);  // one reply beyond
  EXPECT_EQ(drains, 1);
  // Replies the socket took at once (uv_try_write) were never pending: the
  // client reads those and everything pending at the peak.
  EXPECT_GE(all.size(), max_pending);
  EXPECT_EQ(all.size() % 4096, 0u);
  EXPECT_EQ(all.find_first_not_of('r'), std::string::npos);
  close(fd);
}

TEST_F(ReactorTest, OwnedWritesAreCoalescedAndKeepTheirOrder) {
  factory.setup = [](ScriptedHandler& h) {
    h.read = [](ScriptedHandler& self, size_t) {
      for (int i = 0; i < 10000; ++i) self.connection->write_owned(std::to_string(i) + ",");
      self.connection->close_when_flushed();
    };
  };
  int fd = client();
  send_all(fd, "x");
  std::string all;
  std::thread reader([&] { all = read_all(fd); });
  run_until([&] { return factory.made == 1 && reactor.connections.empty(); });
  reader.join();
  std::string want;
  for (int i = 0; i < 10000; ++i) want += std::to_string(i) + ",";
  EXPECT_EQ(all.size(), want.size());
  EXPECT_TRUE(all == want) << "bytes out of order or lost";
  close(fd);
}

TEST_F(ReactorTest, CloseDuringPendingWriteCancelsItsCallbackOnce) {
  static std::string big(8 << 20, 'b');  // far more than the socket buffers hold
  int calls = 0, status = 1;
  factory.setup = [&](ScriptedHandler& h) {
    h.read = [&](ScriptedHandler& self, size_t) {
      uv_buf_t b = uv_buf_init(big.data(), static_cast<unsigned>(big.size()));
      self.connection->write(&b, 1, [&](int st) {
        ++calls;
        status = st;
      });
      self.connection->close();
    };
  };
  int fd = connect_to(port, 4096);
  send_all(fd, "x");
  run_until([&] { return calls == 1 && reactor.connections.empty(); });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(status, UV_ECANCELED);
  close(fd);
}

TEST_F(ReactorTest, WriteErrorClosesTheConnectionAtOnce) {
  static std::string chunk(1 << 20, 'w');
  factory.setup = [](ScriptedHandler& h) {
    // Keep one write in flight; on_drain is never reached (no reader), so
    // only a write error can end this connection (idle timeout is off).
    h.read = [](ScriptedHandler& self, size_t) {
      for (int i = 0; i < 16; ++i) {
        uv_buf_t b = uv_buf_init(chunk.data(), static_cast<unsigned>(chunk.size()));
        self.connection->write(&b, 1, [](int) {});
      }
      self.connection->pause_reading();
    };
  };
  int fd = client();
  send_all(fd, "x");
  run_until([&] { return factory.last && factory.last->reads == 1; });
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);  // reset: the server's pending write fails with ECONNRESET/EPIPE
  run_until([&] { return factory.made == 1 && reactor.connections.empty(); });
  EXPECT_TRUE(reactor.connections.empty());
}

class SendFileTest : public ReactorTest, public ::testing::WithParamInterface<bool> {};

TEST_P(SendFileTest, SendsTheRangeExactlyEvenToASlowReader) {
  const bool slow = GetParam();
  TempDir dir;
  std::string data(6 << 20, '\0');
  std::mt19937_64 rng(7);
  for (size_t i = 0; i + 8 <= data.size(); i += 8) {
    uint64_t v = rng();
    std::memcpy(data.data() + i, &v, 8);
  }
  spit(dir.file("f.bin"), data);
  int file = open(dir.file("f.bin").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(file, 0);
  reactor::ThreadPoolExecutor executor(&loop);
  const uint64_t offset = 1000, length = (5 << 20) + 17;
  int done_status = 1;
  uint64_t done_sent = 0;
  factory.setup = [&](ScriptedHandler& h) {
    h.read = [&](ScriptedHandler& self, size_t) {
      reactor::Connection* c = self.connection;
      c->write_owned("HEAD:");  // waits for this before sendfile starts
      c->send_file(file, offset, length, executor, [&, c](int st, uint64_t sent) {
        done_status = st;
        done_sent = sent;
        c->write_owned(":TAIL");
        c->close_when_flushed();
      });
    };
  };
  int fd = client();
  send_all(fd, "x");
  std::string all;
  std::thread reader([&] {
    if (slow) std::this_thread::sleep_for(std::chrono::milliseconds(300));
    all = read_all(fd);
  });
  run_until([&] { return done_status != 1 && reactor.connections.empty(); });
  reader.join();
  EXPECT_EQ(done_status, 0);
  EXPECT_EQ(done_sent, length);
  ASSERT_EQ(all.size(), 5 + length + 5);
  EXPECT_EQ(all.substr(0, 5), "HEAD:");
  EXPECT_TRUE(all.compare(5, length, data, offset, length) == 0);
  EXPECT_EQ(all.substr(5 + length), ":TAIL");
  executor.close();
  close(fd);
  close(file);
}

INSTANTIATE_TEST_SUITE_P(Readers, SendFileTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "slow" : "fast"; });

// A pool thread waits only briefly (Connection::kSendWaitNs) for a full
// socket: with a client that stops reading, the job's work item returns and
// the wait moves to the loop, so the executor has nothing in flight while
// the GET is stalled, and the job still completes once the client reads.
TEST_F(ReactorTest, StalledReaderDoesNotHoldAPoolThread) {
  TempDir dir;
  // More than loopback's socket buffers hold (tcp_wmem's and tcp_rmem's
  // defaults grow to 4 and 6 MiB), so the send stalls until the client reads.
  std::string data(24 << 20, 's');
  spit(dir.file("f.bin"), data);
  int file = open(dir.file("f.bin").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(file, 0);
  reactor::ThreadPoolExecutor executor(&loop);
  ASSERT_TRUE(executor.runs_off_loop());
  int done_status = 1;
  reactor::Connection* conn = nullptr;
  factory.setup = [&](ScriptedHandler& h) {
    h.read = [&](ScriptedHandler& self, size_t) {
      conn = self.connection;
      conn->send_file(file, 0, data.size(), executor, [&](int st, uint64_t) {
        done_status = st;
        conn->close_when_flushed();
      });
    };
  };
  int fd = client();
  send_all(fd, "x");
  // send_file submits its first item from the read callback.
  ASSERT_TRUE(run_until([&] { return conn != nullptr; }));
  // Stalled: the item must come back while nobody reads (not wait forever).
  EXPECT_TRUE(run_until([&] { return executor.pending() == 0; }, 5000));
  EXPECT_EQ(done_status, 1);  // still in progress, waiting on the loop
  std::string all;
  std::thread reader([&] { all = read_all(fd); });
  run_until([&] { return done_status != 1 && reactor.connections.empty(); });
  reader.join();
  EXPECT_EQ(done_status, 0);
  EXPECT_EQ(all.size(), data.size());
  executor.close();
  close(fd);
  close(file);
}

/// A transform the test can check by hand: every byte as two hex digits.
size_t hex_size(size_t n) { return 2 * n; }

TEST_P(SendFileTest, TransformedRangeArrivesEncodedInOrderEvenToASlowReader) {
  const bool slow = GetParam();
  TempDir dir;
  std::string data(6 << 20, '\0');
  std::mt19937_64 rng(11);
  for (size_t i = 0; i + 8 <= data.size(); i += 8) {
    uint64_t v = rng();
    std::memcpy(data.data() + i, &v, 8);
  }
  spit(dir.file("f.bin"), data);
  int file = open(dir.file("f.bin").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(file, 0);
  reactor::ThreadPoolExecutor executor(&loop);
  static constexpr char kDigits[] = "0123456789abcdef";
  // A chunk that divides neither the range nor the 4 MiB slice, and more
  // than one slice of file: short last chunk, several work items, and (slow
  // reader) a socket that fills in the middle of a chunk.
  reactor::SendTransform hex{[](std::span<const uint8_t> in, char* out) {
                               for (size_t i = 0; i < in.size(); ++i) {
                                 out[2 * i] = kDigits[in[i] >> 4];
                                 out[2 * i + 1] = kDigits[in[i] & 15];
                               }
                               return 2 * in.size();
                             },
                             &hex_size, 300001};
  const uint64_t offset = 1000, length = (5 << 20) + 17;
  int done_status = 1;
  uint64_t done_sent = 0;
  factory.setup = [&](ScriptedHandler& h) {
    h.read = [&](ScriptedHandler& self, size_t) {
      reactor::Connection* c = self.connection;
      c->write_owned("HEAD:");
      c->send_file(
          file, offset, length, executor,
          [&, c](int st, uint64_t sent) {
            done_status = st;
            done_sent = sent;
            c->write_owned(":TAIL");
            c->close_when_flushed();
          },
          &hex);
    };
  };
  int fd = client();
  send_all(fd, "x");
  std::string all;
  std::thread reader([&] {
    if (slow) std::this_thread::sleep_for(std::chrono::milliseconds(300));
    all = read_all(fd);
  });
  run_until([&] { return done_status != 1 && reactor.connections.empty(); });
  reader.join();
  EXPECT_EQ(done_status, 0);
  EXPECT_EQ(done_sent, length);
  std::string expected;
  expected.reserve(2 * length);
  for (uint64_t i = offset; i < offset + length; ++i) {
    const auto b = static_cast<uint8_t>(data[i]);
    expected += kDigits[b >> 4];
    expected += kDigits[b & 15];
  }
  ASSERT_EQ(all.size(), 5 + 2 * length + 5);
  EXPECT_EQ(all.substr(0, 5), "HEAD:");
  EXPECT_TRUE(all.compare(5, 2 * length, expected) == 0);
  EXPECT_EQ(all.substr(5 + 2 * length), ":TAIL");
  executor.close();
  close(fd);
  close(file);
}

}  // namespace
}  // namespace fsrv::test
