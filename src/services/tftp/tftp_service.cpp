// The tftp service: its request port (see tftp_request_port.hpp) and its
// registration (see tftp_service.hpp); the transfers are tftp_*transfer.cpp.

#include "fsrv/services/tftp/tftp_service.hpp"

#include <optional>
#include <vector>

#include "fsrv/services/tftp/tftp_options.hpp"
#include "fsrv/services/tftp/tftp_request_port.hpp"

namespace fsrv::services::tftp {

void RequestPort::on_datagram(reactor::DatagramListener& listener, const sockaddr& from,
                              std::span<const char> data) {
  if (stopping_) return;
  // Too short for an opcode, or an ERROR: never answered (RFC 1350 section 7).
  if (data.size() < 2 || read_u16(data.data()) == static_cast<uint16_t>(Opcode::kError)) {
    count_bad();
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
  const std::string ip = reactor::address_ip(from);
  size_t mine = 0, unheard = 0;  // the address's live transfers, and those never heard
  std::vector<Transfer*> dallying;
  for (const auto& [t, owned] : transfers_) {
    if (t->peer_ip() != ip || t->closing()) continue;
    ++mine;
    if (!t->heard()) ++unheard;
    if (t->succeeded()) dallying.push_back(t);
  }
  // A write that committed and only dallies to re-send a lost final ACK
  // gives its place to a new request from its address (a client that asks
  // again had its ACK or gave up): quick uploads in a row are not refused
  // as busy for two timeouts after each, and the cap still holds.
  while (mine >= kMaxTransfersPerAddress && !dallying.empty()) {
    dallying.back()->abort("dally ended by a new request");
    dallying.pop_back();
    --mine;
  }
  if (mine >= kMaxTransfersPerAddress) {
    count(refused_address_);
    reply_error(listener, from, ErrorCode::kUndefined,
                "server busy: " + std::to_string(kMaxTransfersPerAddress) +
                    " transfers from your address already");
    return;
  }
  if (unheard >= kMaxUnheardPerAddress) {
    // Nothing more is sent to it, not even an ERROR (anti-amplification,
    // RFC 9000 section 8's idea: an unverified address gets bounded bytes).
    count(refused_unheard_);
    return;
  }
  TransferArgs args{*this, from, std::move(*request), std::string(bytes)};
  std::unique_ptr<Transfer> t = args.request.op == Opcode::kRrq
                                    ? make_read_transfer(std::move(args))
                                    : make_write_transfer(std::move(args));
  Transfer* raw = t.get();
  transfers_.emplace(raw, std::move(t));
  by_peer_[key] = raw;
  raw->start(listener.endpoint().host);
}

const ServiceInfo& info() {
  static const ServiceInfo kInfo{
      .name = "tftp",
      .description = "tftp (RFC 1350 + options): TFTP server on the storage root",
      .default_ports = {6969},
      .try_command = "curl -s tftp://127.0.0.1:{port}/NAME -o NAME",
      .register_stats =
          [](stats::Schema& schema) {
            for (const char* p : {"rrq/ok", "rrq/failed", "wrq/ok", "wrq/failed", "retransmits",
                                  "bad_packets", "bytes/sent", "bytes/received", "refused/address",
                                  "refused/unheard", "errors_dropped"}) {
              schema.add(std::string("tftp/") + p);
            }
          },
      .transport = Transport::kDatagram,
      .create_datagram = [](Shared& shared) -> std::unique_ptr<DatagramService> {
        return std::make_unique<RequestPort>(shared);
      },
      .policy_keys = kPolicyReadOnly,
      .add_options = add_options};
  return kInfo;
}

}  // namespace fsrv::services::tftp
