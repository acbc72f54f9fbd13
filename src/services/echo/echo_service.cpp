#include "fsrv/services/echo/echo_service.hpp"

#include <array>

namespace fsrv::services::echo {

namespace {

/// Bytes read per socket read; the echo is written from a copy (the
/// connection's coalesced write queue), so this buffer is reused at once.
constexpr size_t kReadChunk = 64 * 1024;

class EchoService final : public Service {
 public:
  explicit EchoService(Shared& shared) : Service(shared, "echo"), bytes_(counter("bytes")) {}
  std::string refusal(reactor::Refusal why, int limit) const override {
    return info().refusal(why, limit);
  }
  void count_bytes(size_t n) { shared_.stats->add(bytes_, n); }

 protected:
  std::unique_ptr<reactor::ConnectionHandler> create_handler(reactor::Connection& conn) override;

 private:
  stats::Counter bytes_;
};

class EchoSession final : public reactor::ConnectionHandler {
 public:
  EchoSession(reactor::Connection& conn, EchoService& service) : conn_(conn), service_(service) {}

  std::span<char> read_space() override { return buf_; }
  void on_read(size_t n) override {
    service_.count_bytes(n);  // first: the echo may reach the client at once
    conn_.write_owned({buf_.data(), n});
    if (conn_.congested()) conn_.pause_reading();  // on_drain resumes
  }
  void on_eof() override { conn_.close_when_flushed(); }
  /// A byte stream, not requests: no request timeout; an interactive
  /// client (nc) may pause as long as it likes (the course server has no
  /// timeout), bounded by the connection limits and closed at shutdown.
  bool has_requests() const override { return false; }
  reactor::IdlePolicy idle_policy() const override { return reactor::IdlePolicy::kKeep; }
  void on_drain() override { conn_.resume_reading(); }
  void on_shutdown() override { conn_.close_when_flushed_for("server shutting down"); }
  void on_close() override {}

 private:
  reactor::Connection& conn_;
  EchoService& service_;
  std::array<char, kReadChunk> buf_;
};

std::unique_ptr<reactor::ConnectionHandler> EchoService::create_handler(
    reactor::Connection& conn) {
  return std::make_unique<EchoSession>(conn, *this);
}

}  // namespace

const ServiceInfo& info() {
  static const ServiceInfo kInfo{
      "echo",
      "echo (tugas 1): every byte sent back in order until the client closes",
      {31000, 31001, 31002},
      "echo 'PEMROGRAMAN JARINGAN' | nc -q1 127.0.0.1 {port}",
      [](stats::Schema& schema) { schema.add("echo/bytes"); },
      [](reactor::Refusal, int) { return std::string(); },
      [](Shared& shared) -> std::unique_ptr<Service> {
        return std::make_unique<EchoService>(shared);
      }};
  return kInfo;
}

}  // namespace fsrv::services::echo
