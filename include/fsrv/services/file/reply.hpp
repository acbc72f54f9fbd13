#pragma once
// The course file protocol's reply side: one JSON object followed by
// "\r\n\r\n" (docs/PROTOCOL.md). JSON is built with cJSON, so names and
// messages are always escaped, and every reply is then made pure ASCII the
// way Python's json.dumps writes it (ascii_json; docs/services/file-interop.md):
// the course's clients decode each recv() piece on its own and would fail
// on a UTF-8 character split across two reads. GET's reply is streamed: get_prefix(), then
// base64 chunks, then kGetSuffix.

#include <cstdint>
#include <string>
#include <string_view>

#include "fsrv/codec/json_py.hpp"

namespace fsrv::services::file {

/// Ends every reply.
inline constexpr std::string_view kReplyEnd = "\r\n\r\n";

/// A streamed LIST reply: kListPrefix, the names as JSON strings separated
/// by ',', kListSuffix.
inline constexpr std::string_view kListPrefix = "{\"status\":\"OK\",\"data\":[";
inline constexpr std::string_view kListSuffix = "]}\r\n\r\n";

/// `text` as a JSON string literal, quotes included.
std::string json_quoted(std::string_view text);

/// Closes a streamed GET reply: the data_file string, the object, the end.
inline constexpr std::string_view kGetSuffix = "\"}\r\n\r\n";

/// Every reply is made pure ASCII by codec::ascii_json (Python's
/// ensure_ascii; invalid UTF-8 as one U+FFFD per maximal subpart).
using codec::ascii_json;

/// {"status":"OK","data":"<text>"}\r\n\r\n
std::string ok_text(std::string_view text);
/// {"status":"ERROR","data":"<text>"}\r\n\r\n
std::string error_text(std::string_view text);
/// {"status":"OK","data":{"name":"n","bytes":N,"mb":X}}\r\n\r\n (MB = 10^6 bytes)
std::string ok_size(std::string_view name, uint64_t bytes);
/// {"status":"OK","data":<data_json>}\r\n\r\n; data_json must be valid JSON.
std::string ok_json(std::string_view data_json);
/// {"status":"OK","data_namafile":"<name>","data_file":"   (then base64 follows)
std::string get_prefix(std::string_view name);

}  // namespace fsrv::services::file
