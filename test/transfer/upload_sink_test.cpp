// transfer::UploadSink, the one UPLOAD engine, on a real loop, a real
// loopback connection, libuv's thread pool and a real storage root: a
// payload streamed by a client is committed whole (identity and base64),
// and every failure (bad base64, over the size limit, cancel, the client
// gone) leaves the old file as it was and no temporary behind. The handler
// feeds the sink what it reads and stops reading while the sink is full
// (on_space resumes it): the backpressure path the services use.
#include "fsrv/transfer/upload_sink.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include "../reactor/reactor_fixture.hpp"
#include "fsrv/codec/base64.hpp"
#include "fsrv/reactor/executor.hpp"
#include "fsrv/storage/storage.hpp"

namespace fsrv::test {
namespace {

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

std::string base64_of(const std::string& data) {
  std::string out(codec::encoded_size(data.size()), '\0');
  codec::encoder(codec::Base64Kind::kFast)
      .encode({reinterpret_cast<const uint8_t*>(data.data()), data.size()}, out.data());
  return out;
}

/// Files in `dir` (names), temporaries included.
std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class UploadSinkTest : public ReactorTest {
 protected:
  void SetUp() override {
    ReactorTest::SetUp();
    std::string error;
    root = storage::Root::open(dir.path(), &error);
    ASSERT_TRUE(root) << error;
    executor = std::make_unique<reactor::ThreadPoolExecutor>(&loop);
  }
  void TearDown() override {
    sink.reset();
    ReactorTest::TearDown();
  }

  /// Serves one connection: everything it reads goes to an UploadSink of
  /// `options`; EOF ends the payload. `cancel_after` > 0 cancels the
  /// upload once that many bytes were fed.
  void serve(transfer::UploadSink::Options options, size_t cancel_after = 0) {
    factory.setup = [this, options, cancel_after](ScriptedHandler& h) {
      h.read = [this, options, cancel_after](ScriptedHandler& h, size_t) {
        if (!sink) {
          reactor::Connection& conn = *h.connection;
          sink = transfer::UploadSink::start(
              conn, *executor, *root, options,
              [this, &conn] {  // on_space: feed what waits, read again
                feed_pending();
                if (pending.empty() && !conn.closing()) conn.resume_reading();
              },
              [this, &h](Status st, uint64_t bytes) {
                result = st;
                stored = bytes;
                h.connection->close();
              });
        }
        pending += h.received;
        h.received.clear();
        feed_pending();
        if (cancel_after > 0 && sink->received() >= cancel_after && !cancelled) {
          cancelled = true;
          sink->cancel();
          h.connection->close();
          return;
        }
        if (!pending.empty()) h.connection->pause_reading();
      };
      h.eof = [this](ScriptedHandler&) {
        eof = true;
        feed_pending();
      };
    };
  }
  void feed_pending() {
    if (!sink || cancelled) return;
    size_t n = sink->feed(pending);
    pending.erase(0, n);
    if (eof && pending.empty() && !ended) {
      ended = true;
      sink->end();
    }
  }
  /// Sends `payload` from a client thread, then half-closes.
  std::thread send_from_client(std::string payload) {
    return std::thread([this, payload = std::move(payload)] {
      int fd = client();
      ASSERT_GE(fd, 0);
      send_all(fd, payload);
      shutdown(fd, SHUT_WR);
      read_all(fd);
      close(fd);
    });
  }

  /// Streams `payload` over an existing "keep.bin" with `options` and
  /// expects the upload to fail, the old contents to stay and no temporary.
  void expect_refused_and_old_kept(transfer::UploadSink::Options options,
                                   const std::string& payload) {
    spit(dir.file("keep.bin"), "old contents");
    serve(std::move(options));
    std::thread c = send_from_client(payload);
    run_until([&] { return result.has_value(); }, 30000);
    c.join();
    ASSERT_TRUE(result.has_value());
    EXPECT_FALSE(result->ok());
    EXPECT_EQ(slurp(dir.file("keep.bin")), "old contents");
    EXPECT_EQ(names_in(dir.path()), (std::vector<std::string>{"keep.bin"}));
  }

  TempDir dir;
  std::unique_ptr<storage::Root> root;
  std::unique_ptr<reactor::ThreadPoolExecutor> executor;
  std::shared_ptr<transfer::UploadSink> sink;
  std::string pending;
  bool eof = false, ended = false, cancelled = false;
  std::optional<Status> result;
  uint64_t stored = 0;
};

TEST_F(UploadSinkTest, IdentityPayloadIsCommittedWhole) {
  const std::string data = random_bytes(6 << 20, 1);  // several chunk buffers
  serve({.name = "blob.bin"});
  std::thread c = send_from_client(data);
  run_until([&] { return result.has_value(); }, 30000);
  c.join();
  ASSERT_TRUE(result.has_value());
  EXPECT_TRUE(result->ok()) << result->error;
  EXPECT_EQ(stored, data.size());
  EXPECT_TRUE(slurp(dir.file("blob.bin")) == data);  // (no dump of 6 MB)
  EXPECT_EQ(names_in(dir.path()), (std::vector<std::string>{"blob.bin"}));
}

TEST_F(UploadSinkTest, Base64PayloadIsDecodedOnThePool) {
  const std::string data = random_bytes(3 << 20, 2);
  serve({.name = "decoded.bin", .transform = transfer::Transform::kBase64});
  std::thread c = send_from_client(base64_of(data));
  run_until([&] { return result.has_value(); }, 30000);
  c.join();
  ASSERT_TRUE(result.has_value());
  EXPECT_TRUE(result->ok()) << result->error;
  EXPECT_EQ(stored, data.size());
  EXPECT_TRUE(slurp(dir.file("decoded.bin")) == data);
}

TEST_F(UploadSinkTest, BadBase64KeepsTheOldFileAndLeavesNoTemporary) {
  std::string payload = base64_of(random_bytes(2 << 20, 3));
  payload[payload.size() / 2] = '*';  // not base64, mid-stream
  expect_refused_and_old_kept({.name = "keep.bin", .transform = transfer::Transform::kBase64},
                              payload);
}

TEST_F(UploadSinkTest, OverTheLimitKeepsTheOldFile) {
  expect_refused_and_old_kept({.name = "keep.bin", .max_bytes = 1 << 20},
                              random_bytes((1 << 20) + 1, 4));
}

TEST_F(UploadSinkTest, CancelRunsNoCallbackAndRemovesTheTemporary) {
  spit(dir.file("keep.bin"), "old contents");
  serve({.name = "keep.bin"}, 1 << 20);
  std::thread c = send_from_client(random_bytes(4 << 20, 5));
  run_until([&] { return cancelled && executor->pending() == 0 && sink.use_count() == 1; }, 30000);
  c.join();
  ASSERT_TRUE(cancelled);
  sink.reset();
  uv_run(&loop, UV_RUN_NOWAIT);
  EXPECT_FALSE(result.has_value());
  EXPECT_TRUE(eventually([&] { return names_in(dir.path()).size() == 1; }));
  EXPECT_EQ(slurp(dir.file("keep.bin")), "old contents");
  EXPECT_EQ(names_in(dir.path()), (std::vector<std::string>{"keep.bin"}));
}

}  // namespace
}  // namespace fsrv::test
