// libFuzzer target for the tftp service's packet layer (make fuzz-tftp
// [FUZZ_SECONDS=60]): src/services/tftp/tftp_packet.cpp, pure functions.
//
// For every input:
// 1. parse_request never reads past the datagram; a parsed request has a
//    non-empty filename without NUL, a known mode, at most kMaxOptions
//    options; written back in wire form it parses to the same request.
// 2. negotiate keeps every value in its RFC range (blksize 8..65464,
//    timeout 0 or 1..255, windowsize 1..65535 and within the window caps)
//    and accepts only options that were asked for.
// 3. error_packet with the input as message is one well-formed ERROR.
// 4. netascii: encoding then decoding, cut at a point taken from the input,
//    gives the input back.

#include <cstdint>
#include <cstdlib>
#include <string>

#include "fsrv/services/tftp/tftp_packet.hpp"

using namespace fsrv::services::tftp;

namespace {

void check(bool ok) {
  if (!ok) abort();
}

std::string wire_form(const Request& r) {
  std::string out;
  out.push_back('\0');
  out.push_back(static_cast<char>(r.op));
  out += r.filename;
  out.push_back('\0');
  out += r.mode == Mode::kOctet ? "octet" : "netascii";
  out.push_back('\0');
  for (const auto& [name, value] : r.options) {
    out += name;
    out.push_back('\0');
    out += value;
    out.push_back('\0');
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);

  RequestError error;
  std::optional<Request> r = parse_request(std::span<const char>(input), error);
  if (r) {
    check(!r->filename.empty() && r->filename.find('\0') == std::string::npos);
    check(r->op == Opcode::kRrq || r->op == Opcode::kWrq);
    check(r->options.size() <= kMaxOptions);
    for (const auto& [name, value] : r->options) check(!name.empty());
    RequestError again_error;
    const std::string wire = wire_form(*r);
    std::optional<Request> again = parse_request(std::span<const char>(wire), again_error);
    check(again && again->filename == r->filename && again->mode == r->mode &&
          again->options == r->options && again->op == r->op);

    const Negotiated n = negotiate(*r);
    check(n.blksize >= kMinBlockSize && n.blksize <= kMaxBlockSize);
    check(n.timeout_s == 0 || (n.timeout_s >= kMinTimeoutS && n.timeout_s <= kMaxTimeoutS));
    check(n.windowsize >= 1 && n.windowsize <= kMaxWindowSize);
    if (n.windowsize > 1) {
      check(r->op == Opcode::kRrq
                ? (n.windowsize - 1) * (n.blksize + kDatagramOverhead) <= kPeerWindowBytes
                : n.windowsize * n.blksize <= kMaxWindowBytes);
    }
    check(n.accepted.size() <= r->options.size());
    for (const auto& [name, value] : n.accepted) {
      bool asked = false;
      for (const auto& [rn, rv] : r->options) asked = asked || rn == name;
      check(asked);
    }
  } else if (!error.drop) {
    check(!error.message.empty());
  }

  const std::string e = error_packet(ErrorCode::kUndefined, input);
  check(e.size() >= 5 && e[0] == 0 && e[1] == 5 && e.back() == '\0');
  check(e.find('\0', 4) == e.size() - 1);

  std::string encoded(2 * size, '\0');
  encoded.resize(netascii_encode({data, size}, encoded.data()));
  const size_t cut = size ? data[0] % (encoded.size() + 1) : 0;
  NetasciiDecoder d;
  std::string decoded;
  d.decode(std::span<const char>(encoded.data(), cut), decoded);
  d.decode(std::span<const char>(encoded.data() + cut, encoded.size() - cut), decoded);
  d.finish(decoded);
  check(decoded == input);
  return 0;
}
