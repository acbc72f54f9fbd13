// HTTP helpers over bytes (see http_util.hpp for the RFC of each).

#include "fsrv/services/http/http_util.hpp"

#include <sodium.h>

#include <array>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <limits>

namespace fsrv::services::http {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr std::array<std::string_view, 7> kDays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 7> kLongDays = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                       "Thursday", "Friday", "Saturday"};
constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// A small cursor for the fixed-format date grammars.
struct Cursor {
  std::string_view s;
  size_t i = 0;
  bool lit(std::string_view t) {
    if (s.substr(i, t.size()) != t) return false;
    i += t.size();
    return true;
  }
  bool digits(size_t n, int& out) {
    if (i + n > s.size()) return false;
    out = 0;
    for (size_t k = 0; k < n; ++k) {
      if (!is_digit(s[i + k])) return false;
      out = out * 10 + (s[i + k] - '0');
    }
    i += n;
    return true;
  }
  // Takes the first of `names` found here: its number from 1, else 0.
  template <size_t N>
  int one_of(const std::array<std::string_view, N>& names) {
    for (size_t k = 0; k < N; ++k) {
      if (lit(names[k])) return static_cast<int>(k) + 1;
    }
    return 0;
  }
  bool done() const { return i == s.size(); }
};

bool time_of_day(Cursor& c, int& h, int& mi, int& sec) {
  return c.digits(2, h) && c.lit(":") && c.digits(2, mi) && c.lit(":") && c.digits(2, sec);
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
  if (s.empty()) return false;
  out = 0;
  for (char c : s) {
    if (!is_digit(c)) return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (out > (std::numeric_limits<uint64_t>::max() - d) / 10) {
      out = std::numeric_limits<uint64_t>::max();
    } else {
      out = out * 10 + d;
    }
  }
  return true;
}

}  // namespace

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int percent_escape_at(std::string_view s, size_t i) {
  if (i + 2 >= s.size()) return -1;
  int hi = hex_value(s[i + 1]);
  int lo = hex_value(s[i + 2]);
  if (hi < 0 || lo < 0) return -1;
  return hi * 16 + lo;
}

Target split_target(std::string_view target) {
  size_t hash = target.find('#');
  if (hash != std::string_view::npos) target = target.substr(0, hash);
  Target t;
  size_t q = target.find('?');
  if (q == std::string_view::npos) {
    t.path = target;
  } else {
    t.path = target.substr(0, q);
    t.query = target.substr(q + 1);
    t.has_query = true;
  }
  return t;
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
  Result<std::string> r;
  r.value = std::move(out);
  return r;
}

std::string_view mime_type_for(std::string_view filename) {
  struct Entry {
    std::string_view ext, type;
  };
  static constexpr Entry kTypes[] = {
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
  const size_t slash = filename.find_last_of('/');
  if (slash != std::string_view::npos) filename = filename.substr(slash + 1);
  const size_t dot = filename.rfind('.');
  if (dot != std::string_view::npos && dot + 1 < filename.size()) {
    const std::string_view ext = filename.substr(dot + 1);
    for (const Entry& e : kTypes) {
      if (iequals(e.ext, ext)) return e.type;
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
  int day = 0, year = 0, h = 0, mi = 0, sec = 0, month = 0;
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  {
    Cursor c{text};
    if (c.one_of(kDays) && c.lit(", ") && c.digits(2, day) && c.lit(" ") &&
        (month = c.one_of(kMonths)) != 0 && c.lit(" ") && c.digits(4, year) && c.lit(" ") &&
        time_of_day(c, h, mi, sec) && c.lit(" GMT") && c.done()) {
      return to_unix(year, month, day, h, mi, sec);
    }
  }
  // rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT"
  {
    Cursor c{text};
    if (c.one_of(kLongDays) && c.lit(", ") && c.digits(2, day) && c.lit("-") &&
        (month = c.one_of(kMonths)) != 0 && c.lit("-") && c.digits(2, year) && c.lit(" ") &&
        time_of_day(c, h, mi, sec) && c.lit(" GMT") && c.done()) {
      return to_unix(year < 70 ? 2000 + year : 1900 + year, month, day, h, mi, sec);
    }
  }
  // asctime-date: "Sun Nov  6 08:49:37 1994"
  {
    Cursor c{text};
    if (c.one_of(kDays) && c.lit(" ") && (month = c.one_of(kMonths)) != 0 && c.lit(" ")) {
      bool day_ok = c.lit(" ") ? c.digits(1, day) : c.digits(2, day);
      if (day_ok && c.lit(" ") && time_of_day(c, h, mi, sec) && c.lit(" ") && c.digits(4, year) &&
          c.done()) {
        return to_unix(year, month, day, h, mi, sec);
      }
    }
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
  while (true) {
    const size_t comma = set.find(',');
    const std::string_view item = trim_ows(set.substr(0, comma));
    if (!item.empty()) {
      spec = item;
      ++count;
    }
    if (comma == std::string_view::npos) break;
    set = set.substr(comma + 1);
  }
  if (count != 1) return ignore;
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return ignore;
  const std::string_view a = spec.substr(0, dash);
  const std::string_view b = spec.substr(dash + 1);
  RangeResult r;
  if (a.empty()) {  // suffix-range: the last N bytes
    uint64_t n = 0;
    if (!parse_u64(b, n)) return ignore;
    if (n == 0 || size == 0) {
      r.decision = RangeDecision::kUnsatisfiable;
      return r;
    }
    r.decision = RangeDecision::kPartial;
    r.range = {n >= size ? 0 : size - n, size - 1};
    return r;
  }
  uint64_t first = 0, last = 0;
  if (!parse_u64(a, first)) return ignore;
  if (b.empty()) {
    last = std::numeric_limits<uint64_t>::max();
  } else if (!parse_u64(b, last) || last < first) {
    return ignore;  // invalid range-spec: the whole field is ignored
  }
  if (first >= size) {
    r.decision = RangeDecision::kUnsatisfiable;
    return r;
  }
  r.decision = RangeDecision::kPartial;
  r.range = {first, last >= size ? size - 1 : last};
  return r;
}

std::string content_range(ByteRange range, uint64_t size) {
  char buf[80];
  std::snprintf(buf, sizeof buf, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, range.first, range.last,
                size);
  return buf;
}

std::string content_range_unsatisfied(uint64_t size) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "bytes */%" PRIu64, size);
  return buf;
}

std::string_view reason_phrase(int status) {
  struct Entry {
    int status;
    std::string_view reason;
  };
  static constexpr Entry kReasons[] = {
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
  for (const Entry& e : kReasons) {
    if (e.status == status) return e.reason;
  }
  return "";
}

bool origin_matches_host(std::string_view origin, std::string_view host) {
  origin = trim_ows(origin);
  host = trim_ows(host);
  std::string_view default_port;
  if (origin.size() > 7 && iequals(origin.substr(0, 7), "http://")) {
    origin.remove_prefix(7);
    default_port = ":80";
  } else if (origin.size() > 8 && iequals(origin.substr(0, 8), "https://")) {
    origin.remove_prefix(8);
    default_port = ":443";
  } else {
    return false;  // "null", another scheme, garbage
  }
  if (origin.find('/') != std::string_view::npos || host.empty()) return false;
  auto strip_default = [&](std::string_view a) {
    if (a.size() > default_port.size() &&
        a.substr(a.size() - default_port.size()) == default_port) {
      a.remove_suffix(default_port.size());
    }
    return a;
  };
  return iequals(strip_default(origin), strip_default(host));
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
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
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
  std::string name;
  for (char c : filename) {
    if (c != '\r' && c != '\n' && c != '"') name.push_back(c);
  }
  std::string plain;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    plain.push_back(u < 0x20 || u >= 0x7f || c == '\\' ? '_' : c);
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
