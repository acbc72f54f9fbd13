#include "fsrv/services/tftp/tftp_packet.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

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
  const std::string_view rest(packet.data() + pos, packet.size() - pos);
  const size_t len = rest.find('\0');
  if (len == std::string_view::npos) return std::nullopt;
  pos += len + 1;
  return rest.substr(0, len);
}

/// A decimal number with no sign, no spaces, at most 20 digits.
std::optional<uint64_t> parse_number(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

/// `v` as two big-endian bytes.
std::string u16(uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)}; }

}  // namespace

std::optional<Request> parse_request(std::span<const char> packet, RequestError& error) {
  error = {};
  auto refuse = [&error](std::string message) {
    error.message = std::move(message);
    return std::nullopt;
  };
  if (packet.size() < 4) {
    error.drop = true;
    return refuse("datagram too short");
  }
  const uint16_t op = read_u16(packet.data());
  if (op != static_cast<uint16_t>(Opcode::kRrq) && op != static_cast<uint16_t>(Opcode::kWrq)) {
    return refuse("expected a read or write request, got opcode " + std::to_string(op));
  }
  Request r;
  r.op = static_cast<Opcode>(op);
  size_t pos = 2;
  auto filename = take_string(packet, pos);
  if (!filename) return refuse("malformed request: filename not terminated by NUL");
  if (filename->empty()) return refuse("malformed request: empty filename");
  auto mode = take_string(packet, pos);
  if (!mode) return refuse("malformed request: mode missing or not terminated by NUL");
  const std::string m = lower(*mode);
  if (m != "octet" && m != "netascii") {
    return refuse(m == "mail" ? "mode mail is not supported (use octet or netascii)"
                              : "unknown transfer mode (use octet or netascii)");
  }
  r.mode = m == "octet" ? Mode::kOctet : Mode::kNetascii;
  r.filename = std::string(*filename);
  while (pos < packet.size()) {
    auto name = take_string(packet, pos);
    if (!name) return refuse("malformed request: option name not terminated by NUL");
    // Some clients pad the request with NULs: an empty name ends the list.
    if (name->empty()) break;
    auto value = take_string(packet, pos);
    if (!value) return refuse("malformed request: option " + lower(*name) + " has no value");
    if (r.options.size() < kMaxOptions) r.options.emplace_back(lower(*name), std::string(*value));
  }
  return r;
}

Negotiated negotiate(const Request& request) {
  // The options understood, each with its accepted range (RFC 2348, 2349,
  // 7440); `lowered`: a larger value is answered with the maximum (RFC
  // 2348), else an out-of-range value is left out.
  struct Rule {
    std::string_view name;
    uint64_t min, max;
    bool lowered;
  };
  enum { kBlksize, kTimeout, kTsize, kWindowsize, kRules };
  static constexpr Rule kRule[kRules] = {{"blksize", kMinBlockSize, kMaxBlockSize, true},
                                         {"timeout", kMinTimeoutS, kMaxTimeoutS, false},
                                         {"tsize", 0, UINT64_MAX, false},
                                         {"windowsize", 1, kMaxWindowSize, false}};
  bool seen[kRules] = {};
  std::optional<uint64_t> value[kRules];
  std::vector<int> order;  // accepted rules, in request order
  for (const auto& [name, text] : request.options) {
    const auto* rule = std::ranges::find(kRule, std::string_view(name), &Rule::name);
    const auto i = static_cast<int>(rule - kRule);
    if (i == kRules || std::exchange(seen[i], true)) continue;  // unknown, or repeated
    const std::optional<uint64_t> v = parse_number(text);
    if (!v || *v < rule->min || (*v > rule->max && !rule->lowered)) continue;
    value[i] = std::min(*v, rule->max);
    order.push_back(i);
  }
  Negotiated n;
  n.blksize = static_cast<size_t>(value[kBlksize].value_or(kDefaultBlockSize));
  n.timeout_s = static_cast<int>(value[kTimeout].value_or(0));
  n.tsize = value[kTsize].has_value();
  n.tsize_value = value[kTsize].value_or(0);
  // The window fits the receiver (applied last: blksize may come after it).
  const size_t fit = request.op == Opcode::kRrq
                         ? kPeerWindowBytes / (n.blksize + kDatagramOverhead) + 1
                         : kMaxWindowBytes / n.blksize;
  const uint64_t max_window = std::clamp<size_t>(fit, 1, kMaxWindowSize);
  if (value[kWindowsize] > max_window) value[kWindowsize] = max_window;
  n.windowsize = static_cast<uint32_t>(value[kWindowsize].value_or(1));
  for (int i : order) n.accepted.emplace_back(kRule[i].name, std::to_string(*value[i]));
  return n;
}

std::string error_packet(ErrorCode code, std::string_view message) {
  std::string out = u16(static_cast<uint16_t>(Opcode::kError)) + u16(static_cast<uint16_t>(code));
  for (char c : message.substr(0, kMaxErrorMessage)) out.push_back(c == '\0' ? ' ' : c);
  out.push_back('\0');
  return out;
}

std::string oack_packet(const std::vector<std::pair<std::string, std::string>>& options) {
  std::string out = u16(static_cast<uint16_t>(Opcode::kOack));
  for (const auto& [name, value] : options) out += name + '\0' + value + '\0';
  return out;
}

std::string ack_packet(uint16_t block) {
  return u16(static_cast<uint16_t>(Opcode::kAck)) + u16(block);
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
    if (c == '\n' || c == '\r') {
      *o++ = '\r';
      *o++ = c == '\n' ? '\n' : '\0';  // LF -> CR LF, CR -> CR NUL
    } else {
      *o++ = c;
    }
  }
  return static_cast<size_t>(o - out);
}

void NetasciiDecoder::decode(std::span<const char> in, std::string& out) {
  out.reserve(out.size() + in.size());
  for (char c : in) {
    // After a CR: CR LF -> LF, CR NUL -> CR; a bare CR (not valid netascii) is kept.
    if (std::exchange(cr_, false)) {
      out.push_back(c == '\n' ? '\n' : '\r');
      if (c == '\n' || c == '\0') continue;
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
