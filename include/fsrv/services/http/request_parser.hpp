#pragma once
// HTTP/1.1 request parsing over bytes (RFC 9112), protocol-pure: no sockets,
// no loop. Owns an llhttp parser in request mode, turns its callbacks into a
// RequestHead, de-chunked body pieces and a completion event, enforces the
// head and body limits, and maps every failure to the status code a server
// answers with. Pipelining: by default the parser pauses after each
// complete message so the caller handles one request at a time.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace fsrv::services::http {

/// Largest request head (request line + header section, line endings
/// included) and, separately, the largest trailer section: 16 KiB. Typical
/// browser heads are under 2 KiB; nginx's default large_client_header_buffers
/// is 4 x 8 KiB. Beyond it: 431 (RFC 6585 section 5), or 414 (RFC 9110
/// section 15.5.15) while still inside the request target.
inline constexpr size_t kMaxHeadBytes = 16 * 1024;

/// Default largest request body in bytes (de-chunked), 4 GiB like the file
/// protocol's --max-upload; RequestParser::Options::max_body overrides it.
inline constexpr uint64_t kDefaultMaxBody = 4ull << 30;

/// One header field line: name as received (case kept), value with leading
/// and trailing whitespace (SP / HTAB) removed (RFC 9112 section 5).
struct Header {
  std::string name;
  std::string value;
  bool operator==(const Header&) const = default;
};

/// How the request body is delimited (RFC 9112 section 6.3).
enum class BodyFraming {
  kNone,           ///< no Content-Length, no Transfer-Encoding: length 0
  kContentLength,  ///< Content-Length: N (N may be 0)
  kChunked,        ///< Transfer-Encoding: chunked (final coding)
};

/// Everything known once the header section has ended.
struct RequestHead {
  std::string method;  ///< e.g. "GET" (llhttp accepts only registered methods)
  std::string target;  ///< request-target exactly as received, not decoded
  int version_major = 1;
  int version_minor = 1;
  std::vector<Header> headers;         ///< in order of arrival, repeats kept
  std::vector<std::string> raw_lines;  ///< request line, then each field line
                                       ///< as received, without CR LF / LF
  bool keep_alive = true;              ///< RFC 9112 section 9.3
  BodyFraming framing = BodyFraming::kNone;
  uint64_t content_length = 0;   ///< valid when framing == kContentLength
  bool expect_continue = false;  ///< HTTP/1.1 and Expect: 100-continue
                                 ///< (RFC 9110 section 10.1.1)

  /// First header named `name` (ASCII case-insensitive), or nullptr.
  const Header* find(std::string_view name) const;
};

/// A failure: the status to answer (then close the connection) and why.
struct ParseError {
  int status = 400;    ///< 400, 413, 414, 431, 501 or 505
  std::string reason;  ///< short text for logs, e.g. "invalid chunk size"
};

/// Receives the events of RequestParser::feed, in order per message:
/// on_head, on_body* (zero or more), on_complete; or on_error once. Called
/// from inside llhttp (C code): handlers must not throw.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  /// The header section ended; `head` stays valid until the next message
  /// begins (copy what must outlive it).
  virtual void on_head(const RequestHead& head) = 0;
  /// Asked right after on_head: true makes feed() return kPaused there (the
  /// body not yet parsed), e.g. while a password is checked; the next feed()
  /// goes on with the body.
  virtual bool hold_after_head() { return false; }
  /// A piece of body bytes, already de-chunked; pieces are never empty and
  /// together never exceed Content-Length or the configured maximum.
  virtual void on_body(std::string_view piece) = 0;
  /// The message ended; `trailers` holds a chunked body's trailer fields.
  virtual void on_complete(const std::vector<Header>& trailers) = 0;
  /// The input cannot be parsed further; the parser stays failed.
  virtual void on_error(const ParseError& error) = 0;
};

/// Incremental HTTP/1.1 request parser (RFC 9112) over llhttp. Feed it byte
/// slices split anywhere; it calls the handler as events become known.
/// Empty lines before a request line are skipped (RFC 9112 section 2.2).
/// A line (request line, field, chunk-size line, after chunk data, trailer)
/// ends with CR LF or a bare LF (section 2.2 allows it); a bare CR is a 400.
/// Blanks between the HTTP version and the line end are ignored.
/// Upgrade and CONNECT are not special-cased: a request announcing an
/// upgrade is parsed as an ordinary message (RFC 9110 section 7.8 lets a
/// server ignore Upgrade). Not copyable or movable (llhttp keeps `this`).
class RequestParser {
 public:
  struct Options {
    uint64_t max_body = kDefaultMaxBody;  ///< de-chunked body bytes; 413 beyond
    size_t max_head = kMaxHeadBytes;      ///< head (and trailer) bytes; 431 beyond
    bool pause_after_message = true;      ///< feed() stops after each message
  };

  /// What a feed() call ended with.
  enum class State {
    kNeedMore,  ///< every byte was consumed; feed more when it arrives
    kPaused,    ///< a message completed at `consumed`; feed the rest later
    kClosed,    ///< the last message said Connection: close (or was
                ///< HTTP/1.0 without keep-alive); bytes after it are ignored
    kError,     ///< on_error was called; the parser stays failed
  };
  struct FeedResult {
    size_t consumed = 0;  ///< bytes of the slice used
    State state = State::kNeedMore;
  };

  RequestParser(RequestHandler& handler, Options options);
  explicit RequestParser(RequestHandler& handler) : RequestParser(handler, Options{}) {}
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  /// Parses `bytes` (any length, split anywhere). After kPaused, pass the
  /// unconsumed rest (and anything newer) to the next call, which resumes.
  /// After kError or kClosed, further calls consume nothing and repeat it.
  FeedResult feed(std::string_view bytes);

  /// True between a message's first byte and its on_complete: an EOF then
  /// means the request was cut short (the caller closes without answering
  /// or answers 400).
  bool in_message() const;

  /// Number of messages completed so far.
  uint64_t messages() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace fsrv::services::http
