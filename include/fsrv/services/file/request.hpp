#pragma once
// The course file protocol's request side (docs/PROTOCOL.md): cutting the
// byte stream into requests and parsing a request line. Pure functions over
// bytes: no IO, no sockets, so every rule is testable byte by byte.
//
// A request is one line "COMMAND [ARG ...]" ended by "\r\n" or "\n"; blank
// lines are skipped (the course's clients end requests with "\r\n\r\n").
// Arguments split like Python's shlex.split (the course's server uses it).
// UPLOAD is special: its last argument, the base64 payload, can be gigabytes,
// so the frame ends after the name and the payload is streamed until the
// first '\r' or '\n' (find_terminator).

#include <string>
#include <string_view>
#include <vector>

namespace fsrv::services::file {

/// Commands counted separately; kUnknown covers anything unparseable.
enum class Cmd { kList, kGet, kUpload, kDelete, kSize, kStats, kPing, kQuit, kAuth, kUnknown };
inline constexpr int kCmdCount = static_cast<int>(Cmd::kUnknown) + 1;

/// Upper-case protocol name of a command ("GET", ...; "UNKNOWN").
std::string_view cmd_name(Cmd cmd);

/// The command a verb names, case-insensitively; BYEBYE = QUIT and CONNME =
/// PING (the course's "FTP" shell). kUnknown for anything else.
Cmd command_from_verb(std::string_view verb);

/// Splits `line` like Python's shlex.split in POSIX mode: whitespace
/// separates; '...' is literal; "..." keeps spaces, with \" and \\ escapes;
/// outside quotes a backslash escapes the next character. Returns false and
/// sets *error ("unterminated quote") on bad quoting.
bool split_args(std::string_view line, std::vector<std::string>& out, std::string* error);

/// One parsed request line.
struct Request {
  Cmd cmd = Cmd::kUnknown;
  std::vector<std::string> args;  ///< after the verb
  std::string error;              ///< non-empty: reply ERROR with this text
};

/// Parses one request line (no terminator). Checks the argument count of
/// each command: GET/DELETE/SIZE take one name, LIST/STATS/PING/QUIT none,
/// UPLOAD a name and the payload.
Request parse_line(std::string_view line);

/// What the legacy silence rule does with an unterminated line that has
/// sat alone in the buffer for --legacy-idle-ms (the course's first clients
/// send "LIST" or "GET name" with no terminator and wait).
enum class Silence {
  kWait,    ///< keep waiting for a terminator (or half-close)
  kRun,     ///< run the request now
  kAnswer,  ///< answer its ERROR now (Request::error)
};

/// Decides the silence rule for the unterminated `line` and parses it into
/// *request: waits while the line can still become `UPLOAD name <payload>`
/// and for DELETE (a destructive command runs only with its terminator or
/// at half-close: hardening point 8); answers a line that cannot succeed
/// at once; runs the rest (docs/services/file-interop.md).
Silence on_silence(std::string_view line, Request* request);

/// The next frame at the start of buffered input.
struct Frame {
  enum Kind {
    kNeedMore,      ///< no complete frame yet (consumed may skip blank lines)
    kLine,          ///< `line` is one request line
    kUploadHeader,  ///< "UPLOAD name " seen: payload starts after `consumed`
    kTooLong,       ///< no terminator within limits::kMaxLine bytes, or an
                    ///< UPLOAD name longer than limits::kMaxName (`error`)
  };
  Kind kind = kNeedMore;
  size_t consumed = 0;    ///< input bytes this frame used, terminator included
  std::string_view line;  ///< kLine: the line without its terminator
  std::string name;       ///< kUploadHeader: the (unquoted) file name
  std::string error;      ///< kTooLong: what to answer, if not the generic text
};

/// Cuts the next frame from `input`, skipping leading blank lines. An
/// UPLOAD whose first argument passes limits::kMaxName bytes before any
/// blank is kTooLong at once, saying the name is too long or the blank
/// before the base64 is missing (a client joining them with a comma sends
/// megabytes before its line ends).
Frame next_frame(std::string_view input);

/// Payload bytes a session keeps to explain a failed UPLOAD decode: the
/// rest of a name of limits::kMaxName bytes and the blank after it.
inline constexpr size_t kUploadLookahead = 256;

/// True when an UPLOAD payload that failed to decode was more words, not
/// base64: a blank followed by more text within its first kUploadLookahead
/// bytes (`payload_head`, up to the terminator). "UPLOAD my file.txt
/// <base64>" is an unquoted name with a space, and is answered as GET and
/// DELETE answer it ("too many arguments ... quote a name that has spaces").
bool payload_has_more_words(std::string_view payload_head);

/// Offset of the first '\r' or '\n' in `payload`, or npos.
size_t find_terminator(std::string_view payload);

}  // namespace fsrv::services::file
