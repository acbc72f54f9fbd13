// The tftp transfer base (see tftp_transfer.hpp).

#include "fsrv/services/tftp/tftp_transfer.hpp"

#include "fsrv/core/access_log.hpp"
#include "fsrv/core/log.hpp"
#include "fsrv/services/tftp/tftp_request_port.hpp"
#include "fsrv/storage/storage.hpp"

namespace fsrv::services::tftp {

namespace {

/// Storage failures as RFC 1350 errors; a null text: the storage's own
/// message (after "access violation: " for a name breaking the rules).
struct StorageError {
  Errc errc;
  ErrorCode code;
  const char* text;
};
constexpr StorageError kStorageErrors[] = {
    {Errc::kNotFound, ErrorCode::kNotFound, "file not found"},
    {Errc::kInvalidName, ErrorCode::kAccess, nullptr},
    {Errc::kNotRegular, ErrorCode::kAccess, "access violation: not a regular file"},
    {Errc::kPermission, ErrorCode::kAccess, "access violation: permission denied"},
    {Errc::kNoSpace, ErrorCode::kDiskFull, "disk full"},
    {Errc::kTooLarge, ErrorCode::kDiskFull, nullptr},
    {Errc::kExists, ErrorCode::kExists, "file already exists"},
};

}  // namespace

Transfer::Transfer(TransferArgs args)
    : DatagramPeer(args.port.shared().loop, args.peer),
      service_(args.port),
      config_(*args.port.shared().config),
      options_(config_.services.get<Options>()),
      request_(std::move(args.request)),
      n_(negotiate(request_)),
      name_(storage_name(request_.filename)),
      started_ms_(uv_now(loop())),
      request_bytes_(std::move(args.request_bytes)) {
  timeout_ms_ = n_.timeout_s > 0
                    ? static_cast<uint64_t>(n_.timeout_s) * 1000
                    : std::max<uint64_t>(1, static_cast<uint64_t>(options_.timeout_s * 1000.0));
}

bool Transfer::start(const std::string& host) {
  const size_t window_bytes = static_cast<size_t>(n_.windowsize) * (n_.blksize + 64);
  const auto buffer =
      static_cast<int>(std::clamp<size_t>(2 * window_bytes, kMinSocketBuffer, kMaxSocketBuffer));
  const int rc = open_socket(Endpoint{host, 0}, {.batch = 1, .rcvbuf = buffer, .sndbuf = buffer});
  if (rc < 0) {
    FSRV_LOG_WARN("tftp: no transfer port for %s: %s", peer_key().c_str(), uv_strerror(rc));
    finish(false);
    return false;
  }
  if (request_.op == Opcode::kWrq && (options_.read_only || service_.policy().read_only)) {
    fail(ErrorCode::kAccess, "access violation: this server is read-only");
  } else if (std::string why = storage::validate_name(name_); !why.empty()) {
    fail(ErrorCode::kAccess, "access violation: " + why);
  } else {
    begin();
  }
  return true;
}

void Transfer::abort(std::string_view why) {
  if (counted_) {
    finish(true);  // already succeeded (a write dallying after its final ACK)
  } else {
    fail(ErrorCode::kUndefined, why);
  }
}

void Transfer::on_stranger(const sockaddr& from, std::span<const char>) {
  // RFC 1350 section 4: a packet from another TID gets ERROR 5 and does
  // not disturb the transfer.
  service_.count_bad();
  send_to(from, error_packet(ErrorCode::kUnknownTid, "unknown transfer ID"));
}

void Transfer::on_peer_datagram(std::span<const char> data) {
  const uint16_t op = data.size() >= 2 ? read_u16(data.data()) : 0;
  if (op == static_cast<uint16_t>(Opcode::kError)) {  // even a bare one, without code or text
    FSRV_LOG_INFO("tftp: %s %s from %s: the client ended it with ERROR %u", direction(),
                  name_.c_str(), peer_key().c_str(),
                  data.size() >= kHeaderSize ? read_u16(data.data() + 2) : 0);
    finish(false);
    return;
  }
  if (data.size() < kHeaderSize) {  // too short for any other packet
    service_.count_bad();
    return;
  }
  if (!heard_) {
    heard_ = true;
    service_.forget_peer(this);
  }
  // A read transfer takes only ACKs, a write only DATA.
  const bool read = request_.op == Opcode::kRrq;
  if (op != static_cast<uint16_t>(read ? Opcode::kAck : Opcode::kData)) {
    fail(ErrorCode::kIllegal,
         read ? "expected an ACK during a read transfer" : "expected DATA during a write transfer");
    return;
  }
  on_packet(read_u16(data.data() + 2), data);
}

void Transfer::fail(ErrorCode code, std::string_view message) {
  if (closing()) return;
  FSRV_LOG_INFO("tftp: %s %s from %s failed: ERROR %d %.*s", direction(), name_.c_str(),
                peer_key().c_str(), static_cast<int>(code), static_cast<int>(message.size()),
                message.data());
  send(error_packet(code, message));
  finish(false);
}

void Transfer::fail(const Status& status) {
  const auto* e = std::ranges::find(kStorageErrors, status.code, &StorageError::errc);
  const ErrorCode code = e == std::end(kStorageErrors) ? ErrorCode::kUndefined : e->code;
  if (e != std::end(kStorageErrors) && e->text) {
    fail(code, e->text);
  } else if (status.code == Errc::kInvalidName) {
    fail(code, "access violation: " + status.error);
  } else {
    fail(code, status.error.empty() ? "server error" : status.error);
  }
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
  if (closing()) return;
  count_result(ok);
  service_.forget_peer(this);
  close();  // on_released follows
}

void Transfer::count_result(bool ok) {
  if (std::exchange(counted_, true)) return;
  const bool read = request_.op == Opcode::kRrq;
  const double secs = static_cast<double>(uv_now(loop()) - started_ms_) / 1000.0;
  service_.count(ok ? (read ? service_.rrq_ok_ : service_.wrq_ok_)
                    : (read ? service_.rrq_failed_ : service_.wrq_failed_));
  service_.observe_duration(secs);
  if (log::access_enabled()) {
    log::access_request("tftp", peer_key(), direction(), name_, ok, bytes_, secs);
  }
  if (ok) {
    FSRV_LOG_INFO("tftp: %s %s %s %s: %llu bytes in %.3f s (blksize %zu, windowsize %u)",
                  direction(), name_.c_str(), read ? "to" : "from", peer_key().c_str(),
                  static_cast<unsigned long long>(bytes_), secs, n_.blksize, n_.windowsize);
  }
}

void Transfer::on_released() { service_.release(this); }  // destroys this

}  // namespace fsrv::services::tftp
