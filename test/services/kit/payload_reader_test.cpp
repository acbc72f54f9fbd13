// kit::PayloadReader over a real connection, a real UploadSink and a real
// storage root: each end rule stores exactly the payload and leaves what
// follows it for the next request, however the client's writes are cut;
// a broken marker stores nothing; a payload with no sink is dropped.

#include "fsrv/services/kit/payload_reader.hpp"

#include <sys/socket.h>

#include <atomic>
#include <thread>

#include "kit_fixture.hpp"

namespace fsrv::test {
namespace {

using services::kit::InputBuffer;
using services::kit::PayloadEnd;
using services::kit::PayloadReader;
using Step = PayloadReader::Step;

struct Outcome {
  bool finished = false;  ///< kDone (and, with a sink, its done callback) or kBadMarker
  bool bad_marker = false;
  Status status;
  uint64_t stored = 0;
  std::string rest;  ///< the input left after the payload
};

// Starts one payload when the connection opens; after it ends, keeps every
// byte that follows in the input buffer.
class UploadSession final : public reactor::ConnectionHandler {
 public:
  UploadSession(reactor::Connection& conn, KitTest& t, PayloadEnd end, bool keep, Outcome& out)
      : conn_(conn), reader_(conn, in_), out_(out) {
    std::shared_ptr<transfer::UploadSink> sink;
    if (keep) {
      transfer::UploadSink::Options o;
      o.name = "up.bin";
      sink = transfer::UploadSink::start(
          conn, *t.executor, *t.root, std::move(o), [this] { handle(reader_.feed()); },
          [this](Status s, uint64_t bytes) {
            reader_.reset();
            out_.status = s;
            out_.stored = bytes;
            out_.finished = true;
            if (eof_) conn_.close_when_flushed();
          });
    }
    reader_.start(std::move(sink), end);
    keep_ = keep;
  }
  std::span<char> read_space() override {
    return reader_.active() ? reader_.read_space() : in_.space(4096);
  }
  void on_read(size_t n) override {
    if (reader_.active()) {
      handle(reader_.on_read(n));
    } else {
      in_.produced(n);
    }
    out_.rest = std::string(in_.view());
  }
  void on_eof() override {
    out_.rest = std::string(in_.view());
    eof_ = true;
    bool cut = reader_.active();  // the payload was cut short: drop it
    if (cut) reader_.cancel();
    if (cut || !keep_ || out_.finished) conn_.close_when_flushed();
  }
  void on_drain() override {}
  void on_shutdown() override { conn_.close(); }
  void on_close() override { reader_.cancel(); }

 private:
  void handle(Step s) {
    if (s == Step::kBadMarker) {
      out_.bad_marker = out_.finished = true;
      return;
    }
    if (s == Step::kDone) {
      if (!keep_) out_.finished = true;
      conn_.resume_reading();  // the test's "next request": keep what follows
    }
  }

  reactor::Connection& conn_;
  InputBuffer in_;
  PayloadReader reader_;
  Outcome& out_;
  bool keep_ = false;
  bool eof_ = false;
};

class PayloadReaderTest : public KitTest {
 protected:
  /// Sends `pieces` (one write each, a pause between) and closes; returns
  /// when the payload ended and the client closed.
  Outcome run(PayloadEnd end, std::vector<std::string> pieces, bool keep = true) {
    Outcome out;
    kit_factory.make = [&](reactor::Connection& c) {
      return std::make_unique<UploadSession>(c, *this, end, keep, out);
    };
    std::atomic<bool> sent{false};  // written by the client thread
    std::thread client([&] {
      int fd = connect_to(port);
      for (const std::string& p : pieces) {
        send_all(fd, p);
        if (pieces.size() > 1) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      shutdown(fd, SHUT_WR);
      read_all(fd);
      close(fd);
      sent = true;
    });
    run_until([&] { return out.finished && sent; });
    client.join();
    return out;
  }
  std::string stored() const { return slurp(dir.file("up.bin")); }
  bool exists() const { return std::filesystem::exists(dir.file("up.bin")); }
};

TEST_F(PayloadReaderTest, CountStoresExactlyThatManyBytes) {
  Outcome o = run(PayloadEnd::count(11), {"hello world", "NEXT"});
  ASSERT_TRUE(o.status.ok()) << o.status.error;
  EXPECT_EQ(o.stored, 11u);
  EXPECT_EQ(stored(), "hello world");
  EXPECT_EQ(o.rest, "NEXT");
}

TEST_F(PayloadReaderTest, CountInOneReadWithWhatFollows) {
  Outcome o = run(PayloadEnd::count(5), {"abcdeLIST\r\n"});
  ASSERT_TRUE(o.status.ok()) << o.status.error;
  EXPECT_EQ(stored(), "abcde");
  EXPECT_EQ(o.rest, "LIST\r\n");
}

TEST_F(PayloadReaderTest, TerminatorEndsAtItsFirstByteWhichIsConsumed) {
  Outcome o = run(PayloadEnd::terminator("\r\n"), {"aGVs", "bG8=", "\r\nLIST\r\n"});
  ASSERT_TRUE(o.status.ok()) << o.status.error;
  EXPECT_EQ(stored(), "aGVsbG8=");
  EXPECT_EQ(o.rest, "\nLIST\r\n");
}

TEST_F(PayloadReaderTest, MarkerMatchedAcrossPieces) {
  Outcome o = run(PayloadEnd::marker("__END__"), {"ZGF0YQ==_", "_EN", "D__LIST"});
  ASSERT_TRUE(o.status.ok()) << o.status.error;
  EXPECT_EQ(stored(), "ZGF0YQ==");
  EXPECT_EQ(o.rest, "LIST");
}

TEST_F(PayloadReaderTest, BrokenMarkerStoresNothing) {
  Outcome o = run(PayloadEnd::marker("__END__"), {"ZGF0_YQ==__END__"});
  EXPECT_TRUE(o.bad_marker);
  run_until([] { return false; }, 100);  // the cancelled temporary file goes
  EXPECT_FALSE(exists());
}

TEST_F(PayloadReaderTest, LargeCountedPayloadThroughTheSinksBuffers) {
  std::string big;
  for (int i = 0; big.size() < (6u << 20); ++i) big += std::to_string(i) + ",";
  std::vector<std::string> pieces;
  for (size_t at = 0; at < big.size(); at += 1 << 20) pieces.push_back(big.substr(at, 1 << 20));
  pieces.back() += "NEXT";
  Outcome o = run(PayloadEnd::count(big.size()), pieces);
  ASSERT_TRUE(o.status.ok()) << o.status.error;
  EXPECT_EQ(o.stored, big.size());
  EXPECT_TRUE(stored() == big);
  EXPECT_EQ(o.rest, "NEXT");
}

TEST_F(PayloadReaderTest, WithoutASinkThePayloadIsDropped) {
  Outcome o = run(PayloadEnd::count(6), {"dropme", "NEXT"}, false);
  EXPECT_FALSE(exists());
  EXPECT_EQ(o.rest, "NEXT");
}

TEST_F(PayloadReaderTest, EofBeforeTheEndLeavesNoFile) {
  Outcome out;
  kit_factory.make = [&](reactor::Connection& c) {
    return std::make_unique<UploadSession>(c, *this, PayloadEnd::count(100), true, out);
  };
  int fd = connect_to(port);
  send_all(fd, "only ten b");
  shutdown(fd, SHUT_WR);
  run_until([&] { return reactor.connections.empty(); }, 5000);
  run_until([] { return false; }, 100);
  close(fd);
  EXPECT_FALSE(out.finished);
  EXPECT_FALSE(exists());
}

}  // namespace
}  // namespace fsrv::test
