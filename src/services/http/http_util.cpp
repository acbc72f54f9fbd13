// HTTP helpers over bytes (see http_util.hpp for the RFC of each).

#include "fsrv/services/http/http_util.hpp"

#include <sodium.h>

#include <array>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <limits>
#include <span>
#include <utility>

namespace fsrv::services::http {

namespace {

constexpr std::array<std::string_view, 7> kDays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 7> kLongDays = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                       "Thursday", "Friday", "Saturday"};
constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Matches `text` whole against a date form written as a pattern: 'd' a
// day name of kDays, 'l' one of kLongDays, 'm' a month name (its number
// from 1 goes to `month`), '9' a digit, '_' a digit or a space (asctime's
// day), any other byte itself. Each run of '9' and '_' is one number,
// stored in `nums` in order.
bool match_date(std::string_view text, std::string_view pattern, int& month, int (&nums)[5]) {
  size_t i = 0, k = 0;
  for (size_t p = 0; p < pattern.size(); ++p) {
    const char c = pattern[p];
    if (c == 'd' || c == 'l' || c == 'm') {
      std::span<const std::string_view> names = kMonths;
      if (c != 'm') names = c == 'd' ? std::span<const std::string_view>(kDays) : kLongDays;
      size_t n = 0;
      while (n < names.size() && text.substr(i, names[n].size()) != names[n]) ++n;
      if (n == names.size()) return false;
      i += names[n].size();
      if (c == 'm') month = static_cast<int>(n) + 1;
    } else if (c == '9' || c == '_') {
      const char t = i < text.size() ? text[i++] : '\0';
      if (!is_digit(t) && !(c == '_' && t == ' ')) return false;
      if (p == 0 || (pattern[p - 1] != '9' && pattern[p - 1] != '_')) nums[k++] = 0;
      if (t != ' ') nums[k - 1] = nums[k - 1] * 10 + (t - '0');
    } else if (i == text.size() || text[i++] != c) {
      return false;
    }
  }
  return i == text.size();
}

std::optional<int64_t> to_unix(int64_t year, int month, int day, int h, int mi, int sec) {
  static constexpr int kMonthDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1 || day > kMonthDays[month - 1]) return std::nullopt;
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month == 2 && day == 29 && !leap) return std::nullopt;
  if (h > 23 || mi > 59 || sec > 60) return std::nullopt;  // 60: leap second
  tm t{};
  t.tm_year = static_cast<int>(year - 1900);
  t.tm_mon = month - 1;
  t.tm_mday = day;
  t.tm_hour = h;
  t.tm_min = mi;
  t.tm_sec = sec;
  return static_cast<int64_t>(timegm(&t));
}

// Parses a non-negative decimal; saturates at UINT64_MAX. False if empty or
// not all digits.
bool parse_u64(std::string_view s, uint64_t& out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec == std::errc::result_out_of_range) out = std::numeric_limits<uint64_t>::max();
  return !s.empty() && end == s.data() + s.size();
}

}  // namespace

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int percent_escape_at(std::string_view s, size_t i) {
  if (i + 2 >= s.size()) return -1;
  unsigned byte = 0;
  const char* hex_end = s.data() + i + 3;
  const auto [end, ec] = std::from_chars(s.data() + i + 1, hex_end, byte, 16);
  return ec == std::errc() && end == hex_end ? static_cast<int>(byte) : -1;
}

Target split_target(std::string_view target) {
  target = target.substr(0, target.find('#'));
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return {target, {}, false};
  return {target.substr(0, q), target.substr(q + 1), true};
}

std::string_view next_item(std::string_view& list, std::string_view sep) {
  const size_t at = list.find(sep);
  const std::string_view item = list.substr(0, at);
  list = at == std::string_view::npos ? std::string_view{} : list.substr(at + sep.size());
  return item;
}

Result<std::string> percent_decode_path(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '\0') return Result<std::string>::failure(Errc::kBadRequest, "NUL byte in path");
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    const int byte = percent_escape_at(path, i);
    if (byte < 0)
      return Result<std::string>::failure(Errc::kBadRequest, "bad percent escape in path");
    if (byte == 0) return Result<std::string>::failure(Errc::kBadRequest, "%00 in path");
    out.push_back(static_cast<char>(byte));
    i += 2;
  }
  return {std::move(out), Errc::kOk, {}};
}

std::string_view mime_type_for(std::string_view filename) {
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {"pdf", "application/pdf"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"png", "image/png"},
      {"gif", "image/gif"},
      {"txt", "text/plain; charset=utf-8"},
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"json", "application/json"},
      {"csv", "text/csv; charset=utf-8"},
      {"mp4", "video/mp4"},
      {"zip", "application/zip"},
      {"svg", "image/svg+xml"},
      {"ico", "image/vnd.microsoft.icon"},
      {"webp", "image/webp"},
      {"wasm", "application/wasm"},
      {"xml", "application/xml"},
      {"mp3", "audio/mpeg"},
      {"wav", "audio/wav"},
      {"webm", "video/webm"},
      {"tar", "application/x-tar"},
      {"gz", "application/gzip"},
  };
  filename = filename.substr(filename.find_last_of('/') + 1);  // npos + 1: from 0
  const size_t dot = filename.rfind('.');
  if (dot != std::string_view::npos && dot + 1 < filename.size()) {
    const std::string_view ext = filename.substr(dot + 1);
    for (const auto& [e, type] : kTypes) {
      if (iequals(e, ext)) return type;
    }
  }
  return "application/octet-stream";
}

std::string format_http_date(int64_t unix_seconds) {
  const time_t t = unix_seconds < 0 ? 0 : static_cast<time_t>(unix_seconds);
  tm c{};
  gmtime_r(&t, &c);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3s, %02d %.3s %04d %02d:%02d:%02d GMT", kDays[c.tm_wday].data(),
                c.tm_mday, kMonths[c.tm_mon].data(), c.tm_year + 1900, c.tm_hour, c.tm_min,
                c.tm_sec);
  return buf;
}

std::optional<int64_t> parse_http_date(std::string_view text) {
  int month = 0, n[5] = {};
  if (match_date(text, "d, 99 m 9999 99:99:99 GMT", month, n)) {  // IMF-fixdate
    return to_unix(n[1], month, n[0], n[2], n[3], n[4]);
  }
  if (match_date(text, "l, 99-m-99 99:99:99 GMT", month, n)) {  // rfc850-date
    return to_unix(n[1] < 70 ? 2000 + n[1] : 1900 + n[1], month, n[0], n[2], n[3], n[4]);
  }
  if (match_date(text, "d m _9 99:99:99 9999", month, n)) {  // asctime-date
    return to_unix(n[4], month, n[0], n[1], n[2], n[3]);
  }
  return std::nullopt;
}

std::string make_etag(uint64_t size, int64_t mtime_ns) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "\"%" PRIx64 "-%" PRIx64 "\"", size,
                static_cast<uint64_t>(mtime_ns));
  return buf;
}

RangeResult parse_range(std::string_view value, uint64_t size) {
  RangeResult ignore;
  value = trim_ows(value);
  const size_t eq = value.find('=');
  if (eq == std::string_view::npos || !iequals(trim_ows(value.substr(0, eq)), "bytes")) {
    return ignore;  // another unit or no unit: ignore (RFC 9110 section 14.2)
  }
  std::string_view set = value.substr(eq + 1);
  // range-set = 1#range-spec; empty list elements are allowed and skipped
  // (RFC 9110 section 5.6.1.2). More than one range: we send 200.
  std::string_view spec;
  size_t count = 0;
  while (!set.empty()) {
    if (const std::string_view item = trim_ows(next_item(set, ",")); !item.empty()) {
      spec = item;
      ++count;
    }
  }
  if (count != 1) return ignore;
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return ignore;
  const std::string_view a = spec.substr(0, dash);
  const std::string_view b = spec.substr(dash + 1);
  constexpr RangeResult unsatisfiable{RangeDecision::kUnsatisfiable, {}};
  if (a.empty()) {  // suffix-range: the last N bytes
    uint64_t n = 0;
    if (!parse_u64(b, n)) return ignore;
    if (n == 0 || size == 0) return unsatisfiable;
    return {RangeDecision::kPartial, {n >= size ? 0 : size - n, size - 1}};
  }
  uint64_t first = 0, last = 0;
  if (!parse_u64(a, first)) return ignore;
  if (b.empty()) {
    last = std::numeric_limits<uint64_t>::max();
  } else if (!parse_u64(b, last) || last < first) {
    return ignore;  // invalid range-spec: the whole field is ignored
  }
  if (first >= size) return unsatisfiable;
  return {RangeDecision::kPartial, {first, last >= size ? size - 1 : last}};
}

std::string content_range(ByteRange range, uint64_t size) {
  return "bytes " + std::to_string(range.first) + "-" + std::to_string(range.last) + "/" +
         std::to_string(size);
}

std::string content_range_unsatisfied(uint64_t size) { return "bytes */" + std::to_string(size); }

std::string_view reason_phrase(int status) {
  static constexpr std::pair<int, std::string_view> kReasons[] = {
      {100, "Continue"},
      {101, "Switching Protocols"},
      {200, "OK"},
      {201, "Created"},
      {202, "Accepted"},
      {203, "Non-Authoritative Information"},
      {204, "No Content"},
      {205, "Reset Content"},
      {206, "Partial Content"},
      {300, "Multiple Choices"},
      {301, "Moved Permanently"},
      {302, "Found"},
      {303, "See Other"},
      {304, "Not Modified"},
      {307, "Temporary Redirect"},
      {308, "Permanent Redirect"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {406, "Not Acceptable"},
      {408, "Request Timeout"},
      {409, "Conflict"},
      {410, "Gone"},
      {411, "Length Required"},
      {412, "Precondition Failed"},
      {413, "Content Too Large"},
      {414, "URI Too Long"},
      {415, "Unsupported Media Type"},
      {416, "Range Not Satisfiable"},
      {417, "Expectation Failed"},
      {421, "Misdirected Request"},
      {422, "Unprocessable Content"},
      {426, "Upgrade Required"},
      {428, "Precondition Required"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {502, "Bad Gateway"},
      {503, "Service Unavailable"},
      {504, "Gateway Timeout"},
      {505, "HTTP Version Not Supported"},
      {507, "Insufficient Storage"},  // RFC 4918 section 11.5
  };
  for (const auto& [code, reason] : kReasons) {
    if (code == status) return reason;
  }
  return "";
}

bool origin_matches_host(std::string_view origin, std::string_view host) {
  origin = trim_ows(origin);
  host = trim_ows(host);
  for (auto [scheme, port] :
       {std::pair<std::string_view, std::string_view>{"http://", ":80"}, {"https://", ":443"}}) {
    if (!iequals(origin.substr(0, scheme.size()), scheme)) continue;
    origin.remove_prefix(scheme.size());  // "http://" alone: empty, equal to no host
    if (origin.find('/') != std::string_view::npos || host.empty()) return false;
    if (origin.size() > port.size() && origin.ends_with(port)) origin.remove_suffix(port.size());
    if (host.size() > port.size() && host.ends_with(port)) host.remove_suffix(port.size());
    return iequals(origin, host);
  }
  return false;  // "null", another scheme, garbage
}

std::string percent_encode(std::string_view s, std::string_view keep) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
        keep.find(c) != std::string_view::npos) {
      out.push_back(c);
    } else {
      out.append({'%', kHex[u >> 4], kHex[u & 15]});
    }
  }
  return out;
}

std::string html_escape(std::string_view text) {
  // The entity of each of the five characters, in the order of kSpecial.
  static constexpr std::string_view kSpecial = "&<>\"'";
  static constexpr std::string_view kEntities[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"};
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const size_t k = kSpecial.find(c);
    if (k == std::string_view::npos) {
      out.push_back(c);
    } else {
      out += kEntities[k];
    }
  }
  return out;
}

std::string content_disposition(std::string_view filename, bool inline_disposition) {
  std::string name(filename);
  std::erase_if(name, [](char c) { return c == '\r' || c == '\n' || c == '"'; });
  std::string plain = name;
  for (char& c : plain) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '\\') c = '_';
  }
  std::string out = inline_disposition ? "inline" : "attachment";
  // filename* keeps attr-char (RFC 8187 section 3.2.1).
  out += "; filename=\"" + plain + "\"; filename*=UTF-8''" + percent_encode(name, "!#$&+-.^_`|~");
  return out;
}

bool parse_basic_credentials(std::string_view value, std::string& user, std::string& password) {
  if (value.size() > kMaxCredentials || !iequals(value.substr(0, 6), "basic ")) return false;
  std::string_view b64 = value.substr(6);
  while (!b64.empty() && b64.front() == ' ') b64.remove_prefix(1);
  while (!b64.empty() && b64.back() == ' ') b64.remove_suffix(1);
  std::string bin(b64.size(), '\0');
  size_t len = 0;
  if (b64.empty() ||
      sodium_base642bin(reinterpret_cast<unsigned char*>(bin.data()), bin.size(), b64.data(),
                        b64.size(), nullptr, &len, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0) {
    return false;
  }
  bin.resize(len);
  size_t colon = bin.find(':');
  if (colon == std::string::npos) return false;
  user = bin.substr(0, colon);
  password = bin.substr(colon + 1);
  return true;
}

}  // namespace fsrv::services::http
