#include "fsrv/core/access_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "fsrv/core/log.hpp"

namespace fsrv::log {

namespace {
std::atomic<int> g_fd{-1};
std::string g_path;  ///< set once at start-up

const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/// A field inside the double quotes of a Combined Log Format line: quote,
/// backslash and control bytes escaped as Apache's mod_log_config does.
std::string clf_escape(std::string_view s) { return escape_quoted(s, "\\x%02x", 0x7f); }

std::string dash(std::string_view s) { return s.empty() ? "-" : clf_escape(s); }
}  // namespace

std::string open_access_log(const std::string& path) {
  g_path = path;
  if (path.empty()) {
    int old = g_fd.exchange(-1);
    if (old >= 0) close(old);
    return "";
  }
  return reopen_access_log(false);
}

std::string reopen_access_log(bool inherited_closed) {
  if (g_path.empty()) return "";
  int fd = ::open(g_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
  if (fd < 0) return "cannot open access log " + g_path + ": " + strerror(errno);
  int old = g_fd.exchange(fd);
  if (old >= 0 && !inherited_closed) close(old);
  return "";
}

bool access_enabled() { return g_fd.load(std::memory_order_relaxed) >= 0; }

void access(const AccessEntry& e) {
  int fd = g_fd.load(std::memory_order_relaxed);
  if (fd < 0) return;
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char when[64];
  std::string line;
  if (format() == Format::kJson) {
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", t.tm_year + 1900,
             t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec / 1000000);
    char nums[96];
    snprintf(nums, sizeof nums, "\"bytes\":%" PRIu64 ",\"duration_s\":%.6f", e.bytes, e.seconds);
    line = std::string("{\"time\":\"") + when + "\",\"service\":\"" + json_escape(e.service) +
           "\",\"peer\":\"" + json_escape(e.peer) + "\",\"verb\":\"" + json_escape(e.verb) +
           "\",\"name\":\"" + json_escape(e.name) + "\",\"status\":\"" + json_escape(e.status) +
           "\"," + nums;
    if (!e.request_line.empty()) {
      line += ",\"request\":\"" + json_escape(e.request_line) + "\",\"referer\":\"" +
              json_escape(e.referer) + "\",\"user_agent\":\"" + json_escape(e.user_agent) + "\"";
    }
    line += "}\n";
  } else {
    // [10/Oct/2000:13:55:36 +0000], Apache's %t.
    snprintf(when, sizeof when, "[%02d/%s/%04d:%02d:%02d:%02d +0000]", t.tm_mday, kMonths[t.tm_mon],
             t.tm_year + 1900, t.tm_hour, t.tm_min, t.tm_sec);
    char nums[64];
    if (!e.request_line.empty()) {
      // Combined Log Format: %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i".
      if (e.bytes == 0) {
        snprintf(nums, sizeof nums, "-");
      } else {
        snprintf(nums, sizeof nums, "%" PRIu64, e.bytes);
      }
      line = std::string(e.peer) + " - - " + when + " \"" + clf_escape(e.request_line) + "\" " +
             std::string(e.status) + " " + nums + " \"" + dash(e.referer) + "\" \"" +
             dash(e.user_agent) + "\"\n";
    } else {
      snprintf(nums, sizeof nums, " %" PRIu64 " %.6f\n", e.bytes, e.seconds);
      line = std::string(when) + " " + std::string(e.service) + " " + std::string(e.peer) + " " +
             std::string(e.verb) + " \"" + clf_escape(e.name) + "\" " + std::string(e.status) +
             nums;
    }
  }
  // One write on O_APPEND: whole lines, whatever the other workers write.
  (void)!::write(fd, line.data(), line.size());
}

void access_request(std::string_view service, std::string_view peer, std::string_view verb,
                    std::string_view name, bool ok, uint64_t bytes, double seconds) {
  AccessEntry e;
  e.service = service;
  e.peer = peer;
  e.verb = verb;
  e.name = name;
  e.status = ok ? "ok" : "failed";
  e.bytes = bytes;
  e.seconds = seconds;
  access(e);
}

}  // namespace fsrv::log
