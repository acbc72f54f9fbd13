// The tftp request port (see tftp_request_port.hpp).

#include "fsrv/services/tftp/tftp_request_port.hpp"

#include <optional>

#include "fsrv/services/tftp/tftp_read_transfer.hpp"
#include "fsrv/services/tftp/tftp_write_transfer.hpp"

namespace fsrv::services::tftp {

void RequestPort::on_datagram(reactor::DatagramListener& listener, const sockaddr& from,
                              std::span<const char> data) {
  if (stopping_) return;
  if (data.size() < 2) {
    count_bad();
    return;
  }
  if (read_u16(data.data()) == static_cast<uint16_t>(Opcode::kError)) {
    count_bad();  // never answer an ERROR (RFC 1350 section 7)
    return;
  }
  RequestError error;
  std::optional<Request> request = parse_request(data, error);
  if (!request) {
    count_bad();
    if (!error.drop) reply_error(listener, from, error.code, error.message);
    return;
  }
  const std::string key = reactor::address_key(from);
  const std::string_view bytes(data.data(), data.size());
  if (auto it = by_peer_.find(key); it != by_peer_.end() && it->second->is_retransmission(bytes)) {
    return;  // the client resent its request: the transfer's timer answers
  }
  if (transfers_.size() >= kMaxTransfers) {
    reply_error(listener, from, ErrorCode::kUndefined, "server busy: too many transfers");
    return;
  }
  if (std::string why = over_address_caps(reactor::address_ip(from)); !why.empty()) {
    if (why == "unheard") {
      // Its earlier transfers never heard back: nothing more is sent to
      // it, not even an ERROR (anti-amplification, RFC 9000 section 8's
      // idea: an unverified address gets a bounded number of bytes).
      count(refused_unheard_);
      return;
    }
    count(refused_address_);
    reply_error(listener, from, ErrorCode::kUndefined, why);
    return;
  }
  const bool read = request->op == Opcode::kRrq;
  Negotiated n = negotiate(*request);
  TransferArgs args{*this, from, std::move(*request), std::move(n), std::string(bytes)};
  std::unique_ptr<Transfer> t =
      read ? make_read_transfer(std::move(args)) : make_write_transfer(std::move(args));
  Transfer* raw = t.get();
  transfers_.emplace(raw, std::move(t));
  by_peer_[key] = raw;
  raw->start(listener.endpoint().host);
}

}  // namespace fsrv::services::tftp
