#pragma once
// Leveled logging to stderr. Owns nothing but the current level.

#include <cstdarg>
#include <string_view>

namespace fsrv::log {

enum class Level { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

/// Sets the level; messages above it are dropped.
void set_level(Level level);
/// Parses "error|warn|info|debug"; false if unknown.
bool parse_level(std::string_view text, Level& out);
/// printf-style message at a level, prefixed with time, pid and level.
void write(Level level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace fsrv::log

#define FSRV_LOG_ERROR(...) ::fsrv::log::write(::fsrv::log::Level::kError, __VA_ARGS__)
#define FSRV_LOG_WARN(...) ::fsrv::log::write(::fsrv::log::Level::kWarn, __VA_ARGS__)
#define FSRV_LOG_INFO(...) ::fsrv::log::write(::fsrv::log::Level::kInfo, __VA_ARGS__)
#define FSRV_LOG_DEBUG(...) ::fsrv::log::write(::fsrv::log::Level::kDebug, __VA_ARGS__)
