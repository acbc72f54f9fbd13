#pragma once
// The chat protocol of the course's "tugas 5" (chat.py + chat_server.py):
// request lines in, exact reply bytes out. Owns no state: parse_line is
// pure, execute runs one command against a ChatStore (and so BLOCKS like
// the store: call it from an executor thread). No sockets, no event loop.
//
// Requests (one line, ended by "\r\n"; a bare "\n" is accepted too):
//   auth USER PASSWORD         -> {"status": "OK", "tokenid": "<uuid4>"}
//   send TOKEN USER MESSAGE... -> {"status": "OK", "message": "Message Sent"}
//   inbox TOKEN                -> {"status": "OK", "messages": {"<sender>": [
//                                   {"msg_from": "..", "msg_to": "..", "msg": ".."}]}}
//   listuser TOKEN             -> {"status": "OK", "listuseraktif": "messi henderson "}
//   logout TOKEN               -> {"status": "OK", "messages": "Terima Kash Telah ..."}
// Every reply is JSON exactly as Python's json.dumps writes it (codec/json_py.hpp)
// followed by "\r\n\r\n", as chat_server.py sends it.
//
// Tokenising follows chat.py's `j = data.split(" ")` then `j[i].strip()`:
// the line is stripped (Python str.strip(): Unicode whitespace at both
// ends), split on every single U+0020 (so two spaces make an empty word),
// and each word used is stripped again. The command word is matched
// exactly and case-sensitively. For send, the message is the rest of the
// line after USER, stripped; it may be empty. Extra words after the
// arguments of the other commands are ignored, as chat.py ignores them.
// Errors, in chat.py's order: unknown command, then a missing argument
// (its IndexError), then a bad token (its KeyError), then the
// command-specific ones.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fsrv/codec/json_py.hpp"
#include "fsrv/services/chat/chat_store.hpp"

namespace fsrv::services::chat {

/// Longest request line in bytes, terminator excluded. A chat line is text
/// a person typed; 64 KiB is far beyond that and bounds what one connection
/// can make the server buffer before a line is complete.
inline constexpr size_t kMaxLineBytes = 64 * 1024;

/// Which request a line is.
enum class CommandKind { kUnknown, kAuth, kSend, kInbox, kListUser, kLogout };

/// Why a line is not a runnable request.
enum class ParseError {
  kNone,
  kUnknownCommand,   ///< first word is none of the five -> "**Protocol Tidak Benar"
  kMissingArgument,  ///< too few words -> "--Protocol Tidak Benar"
};

/// A parsed request line. `args` when error == kNone:
///   kAuth: {username, password}; kSend: {token, receiver, message};
///   kInbox, kListUser, kLogout: {token}.
struct Command {
  CommandKind kind = CommandKind::kUnknown;
  std::vector<std::string> args;
  ParseError error = ParseError::kUnknownCommand;
};

/// Parses one request line (with or without its "\r\n"/"\n"). Pure and
/// total: any bytes give a Command (an empty line is an unknown command).
Command parse_line(std::string_view line);

/// The inbox reply, encoded piece by piece: a full inbox (up to
/// kMaxInboxBytes of message bytes, each invalid UTF-8 byte growing six-fold
/// as "\ufffd") is never one string in memory; each message's strings are
/// freed once written. Owns the fetched groups. The pieces joined are the
/// bytes chat_server.py sends (json.dumps + "\r\n\r\n").
class InboxReply {
 public:
  explicit InboxReply(std::vector<InboxGroup> groups);
  /// The next piece: at least one message, and messages until at least
  /// `budget` bytes (or the end); "" once done().
  std::string next(size_t budget);
  /// The whole reply, terminator included, has been returned.
  bool done() const { return done_; }

 private:
  std::vector<InboxGroup> groups_;
  codec::PyJsonWriter w_;
  size_t group_ = 0;    ///< the group being written
  size_t message_ = 0;  ///< its next message
  bool done_ = false;
};

/// A reply: `text`, then (inbox only) `inbox`'s pieces.
struct Reply {
  std::string text;
  std::unique_ptr<InboxReply> inbox = nullptr;  ///< none unless an OK inbox
};

/// As execute, but an OK inbox comes back as an InboxReply to write in
/// pieces while the client reads (text empty).
Reply execute_reply(ChatStore& store, const Command& cmd);

/// Runs `cmd` against `store` and returns the complete reply bytes (JSON +
/// "\r\n\r\n"). Parse errors are answered without touching the store. A
/// store failure (Outcome::kStoreError) is answered with
/// {"status": "ERROR", "message": "Server Error"}; its detail is not sent
/// (chat.py has no such case: it would crash). BLOCKS (see ChatStore).
std::string execute(ChatStore& store, const Command& cmd);

/// Framing of the input buffer.
struct LineEnd {
  enum class Kind {
    kNeedMore,  ///< no complete line yet and not over the limit: read more
    kLine,      ///< a line: buffer[0, line_size) without terminator;
                ///< drop `consumed` bytes (line plus "\n" or "\r\n")
    kTooLong,   ///< more than kMaxLineBytes before the terminator: send
                ///< reply_line_too_long() and close the connection
  };
  Kind kind = Kind::kNeedMore;
  size_t line_size = 0;
  size_t consumed = 0;
};

/// Finds the first complete line in `buffer` (bytes received so far). The
/// terminator is "\n" with an optional "\r" before it (chat_server.py waits
/// for "\r\n"; we also take a bare "\n"). A line is too long when more than
/// kMaxLineBytes bytes precede its terminator; this is decided as soon as
/// the buffer shows it (kMaxLineBytes + 1 bytes that are not a possible
/// terminator), without waiting for the rest of the line.
LineEnd find_line_end(std::string_view buffer);

/// The reply to a line over kMaxLineBytes:
/// {"status": "ERROR", "message": "Baris Terlalu Panjang (maks 65536 byte)"}
/// + "\r\n\r\n". Not in chat.py (which has no limit); worded like its
/// messages. The caller closes the connection after sending it.
std::string reply_line_too_long();

/// {"status": "ERROR", "message": `message`} + "\r\n\r\n".
std::string reply_error(std::string_view message);

/// Python's str.strip() with no argument on UTF-8 text: removes the code
/// points for which str.isspace() is true (U+0009-000D, U+001C-0020,
/// U+0085, U+00A0, U+1680, U+2000-200A, U+2028, U+2029, U+202F, U+205F,
/// U+3000) from both ends. Invalid UTF-8 bytes are not whitespace.
std::string_view python_strip(std::string_view text);

}  // namespace fsrv::services::chat
