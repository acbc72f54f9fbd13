// kit::RequestLoop over a real connection: pipelined requests are answered
// in order, at most kRequestsPerTurn per turn of the loop; QUIT closes
// after the replies before it; a shutdown waits for the request in progress.

#include "fsrv/services/kit/request_loop.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <thread>

#include "fsrv/services/kit/input_buffer.hpp"
#include "kit_fixture.hpp"

namespace fsrv::test {
namespace {

using services::kit::InputBuffer;
using services::kit::kRequestsPerTurn;
using services::kit::RequestLoop;

struct Counts {
  int most_in_one_pump = 0;
  int pumps = 0;
  bool closed = false;
};

// A line protocol: each line is echoed back; "QUIT" quits; "SLOW" is a
// request that ends only when the test says so (done_slow).
class LineSession final : public reactor::ConnectionHandler {
 public:
  LineSession(reactor::Connection& conn, Counts& counts)
      : conn_(conn), loop_(conn), counts_(counts) {}
  std::span<char> read_space() override { return in_.space(4096); }
  void on_read(size_t n) override {
    in_.produced(n);
    pump();
  }
  void on_eof() override {
    eof_ = true;
    pump();
  }
  void on_drain() override { pump(); }
  void on_shutdown() override { loop_.shutdown(); }
  void on_close() override { counts_.closed = true; }
  void done_slow() {
    conn_.write_owned("SLOW done\n");
    if (loop_.done()) pump();
  }

 private:
  void pump() {
    int handled = 0;
    ++counts_.pumps;
    bool wait = loop_.pump([&] {
      size_t nl = in_.view().find('\n');
      if (nl == std::string_view::npos) return false;
      std::string line(in_.view().substr(0, nl));
      in_.consume(nl + 1);
      ++handled;
      if (line == "QUIT") {
        loop_.quit();
      } else if (line == "SLOW") {
        loop_.begin();
      } else {
        conn_.write_owned(line + "\n");
      }
      return true;
    });
    counts_.most_in_one_pump = std::max(counts_.most_in_one_pump, handled);
    if (!wait) return;
    if (eof_) {
      conn_.close_when_flushed();
      return;
    }
    conn_.resume_reading();
  }

  reactor::Connection& conn_;
  RequestLoop loop_;
  InputBuffer in_;
  Counts& counts_;
  bool eof_ = false;
};

class RequestLoopTest : public KitTest {
 protected:
  void SetUp() override {
    KitTest::SetUp();
    kit_factory.make = [this](reactor::Connection& c) {
      auto h = std::make_unique<LineSession>(c, counts);
      session = h.get();
      return h;
    };
  }
  Counts counts;
  LineSession* session = nullptr;
};

TEST_F(RequestLoopTest, PipelinedRequestsAreAnsweredInOrderAFewPerTurn) {
  constexpr int kLines = 500;
  std::string sent, expected;
  for (int i = 0; i < kLines; ++i) sent += std::to_string(i) + "\n";
  expected = sent;
  sent += "QUIT\n";
  std::string got;
  std::thread client([&] {
    int fd = connect_to(port);
    send_all(fd, sent);
    got = read_all(fd);
    close(fd);
  });
  run_until([&] { return counts.closed; });
  client.join();
  EXPECT_EQ(got, expected);
  EXPECT_LE(counts.most_in_one_pump, kRequestsPerTurn);
  EXPECT_GE(counts.pumps, kLines / kRequestsPerTurn);
}

TEST_F(RequestLoopTest, ShutdownWaitsForTheRequestInProgress) {
  int fd = connect_to(port);
  ASSERT_TRUE(send_all(fd, "a\nSLOW\nb\n"));
  // "a" answered, "SLOW" in progress, "b" waits behind it.
  std::string got;
  char buf[256];
  while (got.find("a\n") == std::string::npos) {
    run_until([] { return false; }, 20);
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
  }
  reactor::drain_connections(reactor);
  run_until([] { return false; }, 200);
  EXPECT_FALSE(counts.closed) << "closed with a request in progress";
  session->done_slow();
  run_until([&] { return counts.closed; });
  EXPECT_TRUE(counts.closed);
  got += read_all(fd);
  // The request in progress was answered; the one behind it was not taken.
  EXPECT_EQ(got, "a\nSLOW done\n");
  close(fd);
}

}  // namespace
}  // namespace fsrv::test
