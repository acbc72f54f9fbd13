#include "fsrv/core/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>

#include "fsrv/core/access_log.hpp"

namespace fsrv::log {

namespace {
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::atomic<int> g_format{static_cast<int>(Format::kText)};
const char* const kNames[] = {"error", "warn", "info", "debug"};
/// --log-file (empty: stderr as inherited). Set once at start-up.
std::string g_log_path;
std::mutex g_reopen_mutex;

/// Opens a log file for appending: 0640, never a terminal of ours.
int open_append(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
}
}  // namespace

void set_level(Level level) { g_level.store(static_cast<int>(level)); }

Level level() { return static_cast<Level>(g_level.load()); }

bool enabled(Level level) {
  return static_cast<int>(level) <= g_level.load(std::memory_order_relaxed);
}

bool parse_level(std::string_view text, Level& out) {
  for (int i = 0; i < 4; ++i) {
    if (text == kNames[i]) {
      out = static_cast<Level>(i);
      return true;
    }
  }
  return false;
}

void set_format(Format format) { g_format.store(static_cast<int>(format)); }

Format format() { return static_cast<Format>(g_format.load()); }

bool parse_format(std::string_view text, Format& out) {
  if (text == "text") {
    out = Format::kText;
  } else if (text == "json") {
    out = Format::kJson;
  } else {
    return false;
  }
  return true;
}

std::string escape_quoted(std::string_view s, const char* byte_format, unsigned escape_from) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= escape_from) {
      char buf[8];
      snprintf(buf, sizeof buf, byte_format, static_cast<unsigned>(c));
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string json_escape(std::string_view s) { return escape_quoted(s, "\\u%04x"); }

void write(Level level, const char* fmt, ...) {
  if (static_cast<int>(level) > g_level.load(std::memory_order_relaxed)) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  size_t mlen = m < 0 ? 0 : std::min<size_t>(static_cast<size_t>(m), sizeof msg - 1);
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm tmv{};
  gmtime_r(&ts.tv_sec, &tmv);
  std::string line;
  if (format() == Format::kJson) {
    char head[128];
    snprintf(head, sizeof head,
             "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"pid\":%d,\"level\":\"%s\","
             "\"msg\":\"",
             tmv.tm_year + 1900, tmv.tm_mon + 1, tmv.tm_mday, tmv.tm_hour, tmv.tm_min, tmv.tm_sec,
             ts.tv_nsec / 1000000, static_cast<int>(getpid()), kNames[static_cast<int>(level)]);
    line = head + json_escape(std::string_view(msg, mlen)) + "\"}\n";
  } else {
    char head[64];
    snprintf(head, sizeof head, "%02d:%02d:%02d.%03ld [%d] %s: ", tmv.tm_hour, tmv.tm_min,
             tmv.tm_sec, ts.tv_nsec / 1000000, static_cast<int>(getpid()),
             kNames[static_cast<int>(level)]);
    line = head;
    line.append(msg, mlen);
    line += '\n';
  }
  (void)!::write(2, line.data(), line.size());
}

std::string open_log_file(const std::string& path) {
  int fd = open_append(path);
  if (fd < 0) return "cannot open log file " + path + ": " + strerror(errno);
  dup2(fd, 2);
  close(fd);
  g_log_path = path;
  return "";
}

void reopen_files(bool inherited_closed) {
  std::lock_guard<std::mutex> lock(g_reopen_mutex);
  // fd 2 survives a worker's clean slate, so it is always replaced in place.
  if (!g_log_path.empty()) {
    int fd = open_append(g_log_path);
    if (fd < 0) {
      FSRV_LOG_ERROR("cannot reopen log file %s: %s", g_log_path.c_str(), strerror(errno));
    } else {
      dup2(fd, 2);
      close(fd);
    }
  }
  if (std::string why = reopen_access_log(inherited_closed); !why.empty()) {
    FSRV_LOG_ERROR("%s", why.c_str());
  }
}

}  // namespace fsrv::log
