#pragma once
// Leveled logging to stderr (or --log-file), as text lines or JSON objects
// (--log-format), plus the access log (core/access_log.hpp). Owns the
// current level and format and the log files, which SIGUSR1 reopens by name
// after logrotate renamed them (reopen_files).

#include <cstdarg>
#include <string>
#include <string_view>

namespace fsrv::log {

enum class Level { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };
/// text: "HH:MM:SS.mmm [pid] level: message"; json: one object per line
/// {"time":RFC 3339 UTC,"pid":N,"level":"info","msg":"..."}.
enum class Format { kText = 0, kJson = 1 };

/// Sets the level; messages above it are dropped.
void set_level(Level level);
/// Parses "error|warn|info|debug"; false if unknown.
bool parse_level(std::string_view text, Level& out);
/// The current level.
Level level();
/// Whether a message at `level` is written: the FSRV_LOG_* macros test it
/// before their arguments are evaluated, so a filtered message costs no
/// formatting of the values it would have printed.
bool enabled(Level level);
/// Sets the format of the server log and of the access log.
void set_format(Format format);
/// Parses "text|json"; false if unknown.
bool parse_format(std::string_view text, Format& out);
Format format();
/// printf-style message at a level, prefixed with time, pid and level.
void write(Level level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

/// Sends the server log (fd 2) to `path` instead (appending; created 0640).
/// Returns "" or the error ("cannot open PATH: ...").
std::string open_log_file(const std::string& path);
/// Reopens every log file by its name (SIGUSR1, after a rotation renamed
/// them): the server log and the access log. `inherited_closed`: a prefork
/// worker whose inherited descriptors were closed opens them afresh without
/// closing the old numbers. Failures are logged; the old file stays in use.
void reopen_files(bool inherited_closed = false);

/// `s` as the inside of a JSON string (RFC 8259 section 7).
std::string json_escape(std::string_view s);

/// `s` as the inside of a double-quoted log field: '"' and '\\' get a
/// backslash, every byte below 0x20 or from `escape_from` up is written with
/// `byte_format` (a printf format of one unsigned int, such as "\\x%02x").
/// json_escape and the access log's Combined Log Format fields are two uses.
std::string escape_quoted(std::string_view s, const char* byte_format,
                          unsigned escape_from = 0x100);

}  // namespace fsrv::log

/// A message at level `lvl` (a log::Level enumerator), its arguments
/// evaluated only when the level is enabled.
#define FSRV_LOG_AT(lvl, ...)                                   \
  do {                                                          \
    if (::fsrv::log::enabled(::fsrv::log::Level::lvl)) {        \
      ::fsrv::log::write(::fsrv::log::Level::lvl, __VA_ARGS__); \
    }                                                           \
  } while (0)
#define FSRV_LOG_ERROR(...) FSRV_LOG_AT(kError, __VA_ARGS__)
#define FSRV_LOG_WARN(...) FSRV_LOG_AT(kWarn, __VA_ARGS__)
#define FSRV_LOG_INFO(...) FSRV_LOG_AT(kInfo, __VA_ARGS__)
#define FSRV_LOG_DEBUG(...) FSRV_LOG_AT(kDebug, __VA_ARGS__)
