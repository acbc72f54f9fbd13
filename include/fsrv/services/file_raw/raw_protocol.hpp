#pragma once
// Seed 000's raw-bytes file dialect (the file-raw service; docs/services/
// file-raw.md), its pure parts: cutting request lines and parsing them. No
// IO, so every rule is testable byte by byte and fuzzable (make
// fuzz-dialects).
//
//   LIST\r\n                -> names joined by "\n", then "\r\n\r\n"
//   UPLOAD name size\r\n    + exactly `size` raw bytes -> "OK ...\r\n"
//   DOWNLOAD name\r\n       -> "size\r\n" + the raw bytes
//   AUTH user password\r\n -> "OK authenticated as user (role R)\r\n" (our
//                             extension, on `,auth=` listeners)
//   any failure             -> "ERROR <text>\r\n"

#include <cstdint>
#include <string>
#include <string_view>

#include "fsrv/services/kit/parse.hpp"

namespace fsrv::services::file_raw {

/// Ends LIST's reply (after the names).
inline constexpr std::string_view kListEnd = "\r\n\r\n";
/// Ends every one-line reply and DOWNLOAD's size line.
inline constexpr std::string_view kEol = "\r\n";

using RawCmd = kit::DialectVerb;

/// One parsed request line (`fatal`: an UPLOAD whose size is missing or
/// unreadable).
using RawRequest = kit::DialectRequest<RawCmd>;

/// Parses one request line (terminator removed). Words split on spaces and
/// tabs; verbs are case-insensitive; `size` is 1-20 decimal digits that fit
/// in 64 bits.
RawRequest parse_raw_line(std::string_view line);

/// The next request line at the start of buffered input.
struct RawLine {
  enum Kind {
    kNeedMore,  ///< no '\n' yet (consumed may skip blank lines)
    kLine,      ///< `line` without "\r\n" / "\n"
    kTooLong,   ///< no '\n' within max_line bytes
  };
  Kind kind = kNeedMore;
  size_t consumed = 0;
  std::string_view line;
};

/// Cuts the next line from `input`, skipping blank lines (only blanks, then
/// "\n"). A line, blank or not, longer than `max_line` bytes before its
/// "\n" is kTooLong, whether or not its "\n" has arrived: the verdict never
/// depends on how reads split the input (fuzz-dialects checks this).
RawLine next_raw_line(std::string_view input, size_t max_line);

}  // namespace fsrv::services::file_raw
