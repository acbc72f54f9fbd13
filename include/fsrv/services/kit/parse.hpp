#pragma once
// The stream-session kit's pure parsing helpers: the parsed request of a
// file dialect (what the file-marker and file-raw parsers return and
// kit::FileDialect runs), the verb a word names, the first of a set of
// bytes. Header-only, so each parser's fuzz target builds alone.

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fsrv/codec/ascii.hpp"

namespace fsrv::services::kit {

/// The verbs of file-marker and file-raw, in their counters' order.
enum class DialectVerb { kList, kUpload, kGet, kAuth, kUnknown };
inline constexpr int kDialectVerbCount = static_cast<int>(DialectVerb::kUnknown) + 1;

/// "LIST", "UPLOAD", "DOWNLOAD", "AUTH" or "UNKNOWN".
inline std::string_view dialect_verb_name(DialectVerb verb) {
  static constexpr std::string_view kNames[] = {"LIST", "UPLOAD", "DOWNLOAD", "AUTH", "UNKNOWN"};
  return kNames[static_cast<int>(verb)];
}

/// One parsed request of a dialect whose verbs are the enum `Verb` (with
/// kList, kGet, kUpload, kAuth and kUnknown).
template <class Verb>
struct DialectRequest {
  Verb verb = Verb::kUnknown;
  std::string name;      ///< GET/UPLOAD: the file; AUTH: the user
  std::string password;  ///< AUTH
  uint64_t size = 0;     ///< UPLOAD with a counted payload: its bytes
  std::string error;     ///< non-empty: answer this and run nothing
  /// With an error: the stream cannot be framed any more (how many payload
  /// bytes follow is unknown), so the connection closes after it.
  bool fatal = false;
};

/// The verb whose wire name (`name_of`, the counters' table) is `word`,
/// ignoring ASCII case; Verb::kUnknown (the last verb) if none is.
template <class Verb, class NameOf>
Verb verb_of(std::string_view word, NameOf name_of) {
  for (int v = 0; v < static_cast<int>(Verb::kUnknown); ++v) {
    if (codec::iequals_ascii(word, name_of(static_cast<Verb>(v)))) return static_cast<Verb>(v);
  }
  return Verb::kUnknown;
}

/// ASCII whitespace as Python's str.split and shlex see it.
inline bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/// The first byte of `data` that is one of `set`, or npos: one memchr per
/// byte of the set, each only up to the best match so far. libstdc++'s
/// find_first_of calls memchr on the set once per byte of the data, which
/// made this scan most of an UPLOAD's CPU time (perf, 100 MB through the
/// file protocol: 35% in memchr).
inline size_t find_any(std::string_view data, std::string_view set) {
  size_t limit = data.size();
  for (char c : set) {
    const void* hit = std::memchr(data.data(), c, limit);
    if (hit) limit = static_cast<size_t>(static_cast<const char*>(hit) - data.data());
  }
  return limit == data.size() ? std::string_view::npos : limit;
}

}  // namespace fsrv::services::kit
