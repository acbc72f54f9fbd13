#include "fsrv/core/log.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>

namespace fsrv::log {

namespace {
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
const char* const kNames[] = {"error", "warn", "info", "debug"};
}  // namespace

void set_level(Level level) { g_level.store(static_cast<int>(level)); }

bool parse_level(std::string_view text, Level& out) {
  for (int i = 0; i < 4; ++i) {
    if (text == kNames[i]) {
      out = static_cast<Level>(i);
      return true;
    }
  }
  return false;
}

void write(Level level, const char* fmt, ...) {
  if (static_cast<int>(level) > g_level.load(std::memory_order_relaxed)) return;
  char line[1024];
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm tmv{};
  gmtime_r(&ts.tv_sec, &tmv);
  int n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld [%d] %s: ", tmv.tm_hour, tmv.tm_min,
                   tmv.tm_sec, ts.tv_nsec / 1000000, static_cast<int>(getpid()),
                   kNames[static_cast<int>(level)]);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
  va_end(ap);
  size_t len = static_cast<size_t>(n) + (m < 0 ? 0 : std::min<size_t>(m, sizeof line - n - 2));
  line[len++] = '\n';
  (void)!::write(2, line, len);
}

}  // namespace fsrv::log
