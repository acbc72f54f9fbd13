#pragma once
// Seed 001's file dialect (the file-marker service; docs/services/
// file-marker.md), its pure parts: the command text and the "__END__" marker
// that closes an upload's base64 stream. No IO, so every rule is testable
// byte by byte and fuzzable (make fuzz-dialects).
//
// Commands carry no terminator in the seed's client: "LIST", "UPLOAD name",
// "DOWNLOAD name". The session takes a command at its '\n' if one comes, else
// when the client falls silent (the client always waits for a reply).

#include <cstddef>
#include <string>
#include <string_view>

#include "fsrv/services/kit/parse.hpp"

namespace fsrv::services::file_marker {

/// Server -> client: the upload may start (no terminator).
inline constexpr std::string_view kReady = "READY";
/// Client -> server after the last base64 chunk; server -> client after a
/// download's base64. '_' is outside the base64 alphabet (RFC 4648 s.4), so
/// the first '_' of an upload stream starts the marker.
inline constexpr std::string_view kEndMarker = "__END__";
inline constexpr std::string_view kUploadOk = "Upload successful";
inline constexpr std::string_view kNotFound = "File not found";
inline constexpr std::string_view kNoFiles = "No files found.";
inline constexpr std::string_view kUnknown = "Unknown command";

using Verb = kit::DialectVerb;

/// One parsed command (UPLOAD/DOWNLOAD's name: the rest of the text, trimmed).
using Command = kit::DialectRequest<Verb>;

/// Parses a command's whole text (terminator, if any, removed). The verb is
/// case-insensitive; the name is everything after the verb's whitespace,
/// trimmed, so it may hold spaces (the seed splits on the first space).
/// "AUTH user password" takes exactly two words after the verb.
Command parse_command(std::string_view text);

}  // namespace fsrv::services::file_marker
