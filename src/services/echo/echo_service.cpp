#include "fsrv/services/echo/echo_service.hpp"

#include <memory>
#include <vector>

namespace fsrv::services::echo {

namespace {

/// Bytes read per socket read. Each read's buffer is written back as it is
/// (no copy) and returned to the service's free list by its write callback.
constexpr size_t kReadChunk = 256 * 1024;
/// Free read buffers a service keeps for reuse (2 MiB per loop at most). A
/// buffer this size is an mmap of its own for malloc, so a fresh one per
/// read cost a page fault per 4 KiB in the kernel's copy into it: most of
/// the echo's time. Idle connections hold none of them.
constexpr size_t kMaxFreeBuffers = 8;
/// Reads whose echo is still being written; at this many reading pauses
/// until one write completes (backpressure: a client that sends without
/// reading holds at most kMaxInFlight * kReadChunk of server memory).
constexpr int kMaxInFlight = 2;

class EchoService final : public Service {
 public:
  explicit EchoService(Shared& shared) : Service(shared, info()), bytes_(counter("bytes")) {}
  void count_bytes(size_t n) { shared_.stats->add(bytes_, n); }
  /// A read buffer of kReadChunk bytes: a reused one when the free list
  /// has one.
  std::unique_ptr<char[]> take_buffer() {
    if (free_.empty()) return std::make_unique_for_overwrite<char[]>(kReadChunk);
    auto b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  /// Returns a buffer whose write completed; freed if the list is full.
  void give_back(std::unique_ptr<char[]> b) {
    if (free_.size() < kMaxFreeBuffers) free_.push_back(std::move(b));
  }

 protected:
  std::unique_ptr<reactor::ConnectionHandler> create_handler(reactor::Connection& conn) override;

 private:
  stats::Counter bytes_;
  std::vector<std::unique_ptr<char[]>> free_;  ///< this loop's reusable read buffers
};

// Echoes from the read buffers themselves: a buffer is taken only when the
// socket is readable (read_space), handed to the write, and given back to
// the service when the write completes, so an idle connection holds none.
class EchoSession final : public reactor::ConnectionHandler {
 public:
  EchoSession(reactor::Connection& conn, EchoService& service) : conn_(conn), service_(service) {}

  std::span<char> read_space() override {
    if (!next_) next_ = service_.take_buffer();
    return {next_.get(), kReadChunk};
  }
  void on_read(size_t n) override {
    service_.count_bytes(n);  // first: the echo may reach the client at once
    char* data = next_.release();
    uv_buf_t buf = uv_buf_init(data, static_cast<unsigned>(n));
    ++in_flight_;
    // The connection outlives its pending writes and their callbacks run
    // before its handler is freed (connection.hpp), so `this` is valid.
    conn_.write(&buf, 1, [this, data](int) {
      service_.give_back(std::unique_ptr<char[]>(data));
      if (in_flight_-- == kMaxInFlight && !conn_.closing()) conn_.resume_reading();
    });
    if (in_flight_ == kMaxInFlight) conn_.pause_reading();
  }
  void on_eof() override { conn_.close_when_flushed(); }
  /// A byte stream, not requests: no request timeout; an interactive
  /// client (nc) may pause as long as it likes (the course server has no
  /// timeout), bounded by the connection limits and closed at shutdown.
  bool has_requests() const override { return false; }
  reactor::IdlePolicy idle_policy() const override { return reactor::IdlePolicy::kKeep; }
  void on_drain() override {}  // backpressure is the in-flight count above
  void on_shutdown() override { conn_.close_when_flushed_for("server shutting down"); }
  void on_close() override {}

 private:
  reactor::Connection& conn_;
  EchoService& service_;
  std::unique_ptr<char[]> next_;  ///< the buffer offered to the next read
  int in_flight_ = 0;
};

std::unique_ptr<reactor::ConnectionHandler> EchoService::create_handler(reactor::Connection& conn) {
  return std::make_unique<EchoSession>(conn, *this);
}

}  // namespace

const ServiceInfo& info() {
  static const ServiceInfo kInfo{
      .name = "echo",
      .description = "echo (tugas 1): every byte sent back in order until the client closes",
      .default_ports = {31000, 31001, 31002},
      .try_command = "echo 'PEMROGRAMAN JARINGAN' | nc -q1 127.0.0.1 {port}",
      .register_stats = [](stats::Schema& schema) { schema.add("echo/bytes"); },
      .refusal = [](reactor::Refusal, int) { return std::string(); },
      .create = [](Shared& shared) -> std::unique_ptr<Service> {
        return std::make_unique<EchoService>(shared);
      },
      .policy_keys = kPolicyReadOnly};
  return kInfo;
}

}  // namespace fsrv::services::echo
