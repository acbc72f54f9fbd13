#include "fsrv/services/tftp/tftp_packet.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>

namespace fsrv::services::tftp {

namespace {

/// Longest ERROR message we send (RFC 1350 sets no bound; clients print it).
constexpr size_t kMaxErrorMessage = 200;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// The NUL-terminated string at `pos` (moved past its NUL), or nullopt if
/// the packet ends first.
std::optional<std::string_view> take_string(std::span<const char> packet, size_t& pos) {
  if (pos >= packet.size()) return std::nullopt;
  const char* begin = packet.data() + pos;
  const void* nul = std::memchr(begin, '\0', packet.size() - pos);
  if (nul == nullptr) return std::nullopt;
  const size_t len = static_cast<size_t>(static_cast<const char*>(nul) - begin);
  pos += len + 1;
  return std::string_view(begin, len);
}

/// A decimal number with no sign, no spaces, at most 20 digits.
std::optional<uint64_t> parse_number(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

void put_u16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

}  // namespace

std::optional<Request> parse_request(std::span<const char> packet, RequestError& error) {
  error = {};
  if (packet.size() < 4) {
    error.drop = true;
    error.message = "datagram too short";
    return std::nullopt;
  }
  const uint16_t op = read_u16(packet.data());
  if (op != static_cast<uint16_t>(Opcode::kRrq) && op != static_cast<uint16_t>(Opcode::kWrq)) {
    error.message = "expected a read or write request, got opcode " + std::to_string(op);
    return std::nullopt;
  }
  Request r;
  r.op = static_cast<Opcode>(op);
  size_t pos = 2;
  auto filename = take_string(packet, pos);
  if (!filename) {
    error.message = "malformed request: filename not terminated by NUL";
    return std::nullopt;
  }
  if (filename->empty()) {
    error.message = "malformed request: empty filename";
    return std::nullopt;
  }
  auto mode = take_string(packet, pos);
  if (!mode) {
    error.message = "malformed request: mode missing or not terminated by NUL";
    return std::nullopt;
  }
  const std::string m = lower(*mode);
  if (m == "octet") {
    r.mode = Mode::kOctet;
  } else if (m == "netascii") {
    r.mode = Mode::kNetascii;
  } else {
    error.message = m == "mail" ? "mode mail is not supported (use octet or netascii)"
                                : "unknown transfer mode (use octet or netascii)";
    return std::nullopt;
  }
  r.filename = std::string(*filename);
  while (pos < packet.size()) {
    auto name = take_string(packet, pos);
    if (!name) {
      error.message = "malformed request: option name not terminated by NUL";
      return std::nullopt;
    }
    // Some clients pad the request with NULs: an empty name ends the list.
    if (name->empty()) break;
    auto value = take_string(packet, pos);
    if (!value) {
      error.message = "malformed request: option " + lower(*name) + " has no value";
      return std::nullopt;
    }
    if (r.options.size() < kMaxOptions) r.options.emplace_back(lower(*name), std::string(*value));
  }
  return r;
}

Negotiated negotiate(const Request& request) {
  Negotiated n;
  bool seen_blksize = false, seen_timeout = false, seen_tsize = false, seen_window = false;
  for (const auto& [name, value] : request.options) {
    const std::optional<uint64_t> v = parse_number(value);
    if (name == "blksize" && !seen_blksize) {
      seen_blksize = true;
      if (!v || *v < kMinBlockSize) continue;
      n.blksize = static_cast<size_t>(std::min<uint64_t>(*v, kMaxBlockSize));
      n.accepted.emplace_back(name, std::to_string(n.blksize));
    } else if (name == "timeout" && !seen_timeout) {
      seen_timeout = true;
      if (!v || *v < kMinTimeoutS || *v > kMaxTimeoutS) continue;
      n.timeout_s = static_cast<int>(*v);
      n.accepted.emplace_back(name, std::to_string(n.timeout_s));
    } else if (name == "tsize" && !seen_tsize) {
      seen_tsize = true;
      if (!v) continue;
      n.tsize = true;
      n.tsize_value = *v;
      n.accepted.emplace_back(name, std::to_string(*v));
    } else if (name == "windowsize" && !seen_window) {
      seen_window = true;
      if (!v || *v < 1 || *v > kMaxWindowSize) continue;
      n.windowsize = static_cast<uint32_t>(*v);
      n.accepted.emplace_back(name, std::to_string(n.windowsize));
    }
  }
  // Applied last: blksize may come after windowsize in the request.
  const size_t fit = request.op == Opcode::kRrq
                         ? kPeerWindowBytes / (n.blksize + kDatagramOverhead) + 1
                         : kMaxWindowBytes / n.blksize;
  const auto max_window = static_cast<uint32_t>(std::clamp<size_t>(fit, 1, kMaxWindowSize));
  if (n.windowsize > max_window) {
    n.windowsize = max_window;
    for (auto& [name, value] : n.accepted) {
      if (name == "windowsize") value = std::to_string(max_window);
    }
  }
  return n;
}

std::string error_packet(ErrorCode code, std::string_view message) {
  std::string out;
  put_u16(out, static_cast<uint16_t>(Opcode::kError));
  put_u16(out, static_cast<uint16_t>(code));
  message = message.substr(0, kMaxErrorMessage);
  for (char c : message) out.push_back(c == '\0' ? ' ' : c);
  out.push_back('\0');
  return out;
}

std::string oack_packet(const std::vector<std::pair<std::string, std::string>>& options) {
  std::string out;
  put_u16(out, static_cast<uint16_t>(Opcode::kOack));
  for (const auto& [name, value] : options) {
    out += name;
    out.push_back('\0');
    out += value;
    out.push_back('\0');
  }
  return out;
}

std::string ack_packet(uint16_t block) {
  std::string out;
  put_u16(out, static_cast<uint16_t>(Opcode::kAck));
  put_u16(out, block);
  return out;
}

void put_data_header(char* out, uint16_t block) {
  out[0] = 0;
  out[1] = static_cast<char>(Opcode::kData);
  out[2] = static_cast<char>(block >> 8);
  out[3] = static_cast<char>(block & 0xff);
}

std::string_view storage_name(std::string_view filename) {
  while (!filename.empty() && filename.front() == '/') filename.remove_prefix(1);
  return filename;
}

size_t netascii_encode(std::span<const uint8_t> in, char* out) {
  char* o = out;
  for (uint8_t b : in) {
    const char c = static_cast<char>(b);
    if (c == '\n') {
      *o++ = '\r';
      *o++ = '\n';
    } else if (c == '\r') {
      *o++ = '\r';
      *o++ = '\0';
    } else {
      *o++ = c;
    }
  }
  return static_cast<size_t>(o - out);
}

void netascii_encode(std::span<const char> in, std::string& out) {
  const size_t at = out.size();
  out.resize(at + 2 * in.size());
  const size_t n =
      netascii_encode({reinterpret_cast<const uint8_t*>(in.data()), in.size()}, out.data() + at);
  out.resize(at + n);
}

void NetasciiDecoder::decode(std::span<const char> in, std::string& out) {
  out.reserve(out.size() + in.size());
  for (char c : in) {
    if (cr_) {
      cr_ = false;
      if (c == '\n') {
        out.push_back('\n');
        continue;
      }
      if (c == '\0') {
        out.push_back('\r');
        continue;
      }
      out.push_back('\r');  // a bare CR (not valid netascii): kept
    }
    if (c == '\r') {
      cr_ = true;
    } else {
      out.push_back(c);
    }
  }
}

void NetasciiDecoder::finish(std::string& out) {
  if (cr_) out.push_back('\r');
  cr_ = false;
}

}  // namespace fsrv::services::tftp
