// The tftp transfer base (see tftp_transfer.hpp).

#include "fsrv/services/tftp/tftp_transfer.hpp"

#include "fsrv/core/access_log.hpp"
#include "fsrv/core/log.hpp"
#include "fsrv/services/tftp/tftp_request_port.hpp"
#include "fsrv/storage/storage.hpp"

namespace fsrv::services::tftp {

ErrorCode error_code(Errc code) {
  switch (code) {
    case Errc::kNotFound:
      return ErrorCode::kNotFound;
    case Errc::kInvalidName:
    case Errc::kNotRegular:
    case Errc::kPermission:
      return ErrorCode::kAccess;
    case Errc::kNoSpace:
    case Errc::kTooLarge:
      return ErrorCode::kDiskFull;
    case Errc::kExists:
      return ErrorCode::kExists;
    default:
      return ErrorCode::kUndefined;
  }
}

std::string error_text(const Status& s) {
  switch (s.code) {
    case Errc::kNotFound:
      return "file not found";
    case Errc::kInvalidName:
      return "access violation: " + s.error;
    case Errc::kNotRegular:
      return "access violation: not a regular file";
    case Errc::kPermission:
      return "access violation: permission denied";
    case Errc::kNoSpace:
      return "disk full";
    case Errc::kExists:
      return "file already exists";
    default:
      return s.error.empty() ? std::string("server error") : s.error;
  }
}

Transfer::Transfer(TransferArgs args)
    : DatagramPeer(args.port.loop(), args.peer),
      service_(args.port),
      config_(*args.port.shared().config),
      options_(config_.services.get<Options>()),
      request_(std::move(args.request)),
      n_(std::move(args.negotiated)),
      name_(storage_name(request_.filename)),
      started_ms_(uv_now(args.port.loop())),
      request_bytes_(std::move(args.request_bytes)) {
  timeout_ms_ = n_.timeout_s > 0
                    ? static_cast<uint64_t>(n_.timeout_s) * 1000
                    : std::max<uint64_t>(1, static_cast<uint64_t>(options_.timeout_s * 1000.0));
}

bool Transfer::start(const std::string& host) {
  const size_t window_bytes = static_cast<size_t>(n_.windowsize) * (n_.blksize + 64);
  reactor::DatagramOptions options;
  options.batch = 1;
  options.rcvbuf =
      static_cast<int>(std::clamp<size_t>(2 * window_bytes, kMinSocketBuffer, kMaxSocketBuffer));
  options.sndbuf = options.rcvbuf;
  const int rc = open_socket(Endpoint{host, 0}, options);
  if (rc < 0) {
    FSRV_LOG_WARN("tftp: no transfer port for %s: %s", key().c_str(), uv_strerror(rc));
    finish(false);
    return false;
  }
  begin();
  return true;
}

void Transfer::abort(std::string_view why) {
  if (finished()) return;
  if (counted_) {  // already succeeded (a write dallying after its final ACK)
    finish(true);
    return;
  }
  fail(ErrorCode::kUndefined, why);
}

void Transfer::on_stranger(const sockaddr& from, std::span<const char>) {
  // RFC 1350 section 4: a packet from another TID gets ERROR 5 and does
  // not disturb the transfer.
  service_.count_bad();
  send_to(from, error_packet(ErrorCode::kUnknownTid, "unknown transfer ID"));
}

void Transfer::on_peer_datagram(std::span<const char> data) {
  if (data.size() < kHeaderSize) {  // too short for any packet but a bare ERROR
    if (data.size() >= 2 && read_u16(data.data()) == static_cast<uint16_t>(Opcode::kError)) {
      finish(false);
      return;
    }
    service_.count_bad();
    return;
  }
  if (!heard_) {
    heard_ = true;
    service_.forget_peer(this);
  }
  const uint16_t op = read_u16(data.data());
  if (op == static_cast<uint16_t>(Opcode::kError)) {
    FSRV_LOG_INFO("tftp: %s %s from %s: the client ended it with ERROR %u", direction(),
                  name_.c_str(), key().c_str(), read_u16(data.data() + 2));
    finish(false);
    return;
  }
  on_packet(op, data);
}

void Transfer::fail(ErrorCode code, std::string_view message) {
  if (finished()) return;
  FSRV_LOG_INFO("tftp: %s %s from %s failed: ERROR %d %.*s", direction(), name_.c_str(),
                key().c_str(), static_cast<int>(code), static_cast<int>(message.size()),
                message.data());
  send(error_packet(code, message));
  finish(false);
}

bool Transfer::retry() {
  // A peer never heard gets a shorter life (kUnheardRetries).
  const int limit = heard_ ? options_.retries : std::min(options_.retries, kUnheardRetries);
  if (++retries_ > limit) {
    fail(ErrorCode::kUndefined, "timed out after " + std::to_string(limit) + " retransmissions" +
                                    (heard_ ? "" : " (the client never answered)"));
    return false;
  }
  service_.count(service_.retransmits_);
  return true;
}

void Transfer::finish(bool ok) {
  if (finished()) return;
  count_result(ok);
  service_.forget_peer(this);
  close();  // on_released follows
}

void Transfer::count_result(bool ok) {
  if (counted_) return;
  counted_ = true;
  const bool read = request_.op == Opcode::kRrq;
  service_.count(ok ? (read ? service_.rrq_ok_ : service_.wrq_ok_)
                    : (read ? service_.rrq_failed_ : service_.wrq_failed_));
  service_.observe_duration(static_cast<double>(uv_now(service_.loop()) - started_ms_) / 1000.0);
  if (log::access_enabled()) {
    log::access_request("tftp", key(), read ? "RRQ" : "WRQ", name_, ok, bytes_,
                        static_cast<double>(uv_now(service_.loop()) - started_ms_) / 1000.0);
  }
  if (ok) {
    const double secs = static_cast<double>(uv_now(service_.loop()) - started_ms_) / 1000.0;
    FSRV_LOG_INFO("tftp: %s %s %s %s: %llu bytes in %.3f s (blksize %zu, windowsize %u)",
                  direction(), name_.c_str(), read ? "to" : "from", key().c_str(),
                  static_cast<unsigned long long>(bytes_), secs, n_.blksize, n_.windowsize);
  }
}

void Transfer::on_released() { service_.release(this); }  // destroys this

void Transfer::run(reactor::Executor::Fn work, reactor::Executor::Fn done) {
  DatagramPeer::run(*service_.shared().executor, std::move(work), std::move(done));
}

}  // namespace fsrv::services::tftp
