// HTTP/1.1 request parser over llhttp (see request_parser.hpp).
//
// llhttp reports positions only through pauses, so the parser pauses itself
// at three points of every message: message begin (the first byte after any
// empty lines), headers complete (just after the empty line) and message
// complete. Between the first two it copies the head bytes, which gives the
// exact head size for the 16 KiB limit and the raw lines as received; the
// last one lets feed() stop after each message for pipelining. The head
// limit is also checked inside the URL/field/value callbacks so one large
// slice cannot grow a header string far past the limit.
//
// Line ends. Debian's llhttp is 8.1, built strict (mk/llhttp.mk): it wants
// CR LF everywhere. RFC 9112 section 2.2 lets a recipient take a bare LF as
// a line end, and clients built from triple-quoted strings send them, so
// feed() walks the framing bytes itself and hands llhttp a CR before every
// LF that lacks one (a one-byte constant, never a copy of the input). Body
// bytes (Content-Length bodies and chunk data, whose lengths llhttp tells
// us) pass untouched. A bare CR still reaches llhttp as it came and is
// refused. llhttp 9.1 has this as llhttp_set_lenient_optional_cr_before_lf;
// once Debian ships it, this walk can go. The same walk drops spaces and
// tabs between the HTTP version and the end of the request line, which
// nginx and the course's server accept ("GET / HTTP/1.0 \r\n").

#include "fsrv/services/http/request_parser.hpp"

#include <llhttp.h>

#include <algorithm>
#include <cstring>

#include "fsrv/services/http/http_util.hpp"

namespace fsrv::services::http {

namespace {

// Splits a comma-separated field value into lower-cased list members without
// parameters ("gzip;q=1, Chunked" -> gzip, chunked); RFC 9110 section 5.6.1.
std::vector<std::string> list_members(std::string_view value) {
  std::vector<std::string> out;
  while (!value.empty()) {
    std::string_view item = next_item(value, ",");
    item = trim_ows(item.substr(0, item.find(';')));
    if (item.empty()) continue;
    out.emplace_back(item);
    for (char& c : out.back()) c = ascii_lower(c);
  }
  return out;
}

/// The CR handed to llhttp before a bare LF (see the top of this file).
constexpr char kCr[1] = {'\r'};

bool is_blank(char c) { return c == ' ' || c == '\t'; }

/// What the parse of one message builds up, made anew when it begins.
struct MessageState {
  std::string raw_head;
  RequestHead head;
  std::string name, value;
  bool url_complete = false;
  std::vector<Header> trailers;
  size_t trailer_bytes = 0;
  uint64_t body_bytes = 0;

  // Line-end walk (see the top of this file).
  uint64_t raw_left = 0;           ///< body bytes llhttp still counts (no LF rewriting)
  bool request_line_done = false;  ///< the request line's LF was given to llhttp
  std::string held;                ///< blanks (and a CR) ending a slice inside the
                                   ///< request line: trailing or not, the next
                                   ///< slice tells
};

}  // namespace

const Header* RequestHead::find(std::string_view name) const {
  for (const Header& h : headers) {
    if (iequals(h.name, name)) return &h;
  }
  return nullptr;
}

struct RequestParser::Impl : MessageState {
  enum class Pause { kNone, kBegin, kHeadEnd, kMessageEnd };
  enum class Phase { kIdle, kHead, kBody };
  /// Where the bytes given to one llhttp_execute call come from.
  enum class Src {
    kInput,  ///< the caller's slice
    kCr,     ///< kCr, added before a bare LF: not part of the raw head
    kHeld,   ///< held_, blanks held back from the previous slice
  };

  RequestHandler& handler;
  Options options;
  llhttp_t parser{};

  // Position bookkeeping of the current llhttp_execute call.
  const char* head_from = nullptr;  // head bytes of this slice start here
  Pause pause = Pause::kNone;
  Phase phase = Phase::kIdle;

  bool last_cr = false;  ///< the last framing byte given to llhttp was CR

  // Outcome.
  bool failed = false;
  bool closed = false;
  bool paused_after_message = false;
  ParseError error;
  bool have_error = false;  // set by our callbacks before returning HPE_USER
  uint64_t completed = 0;

  Impl(RequestHandler& h, Options o) : handler(h), options(o) {
    llhttp_init(&parser, HTTP_REQUEST, &shared_settings());
    parser.data = this;
  }

  /// The callbacks, the same for every parser (they find theirs through
  /// llhttp_t::data): one table per process instead of one per connection.
  static const llhttp_settings_t& shared_settings() {
    static const llhttp_settings_t table = [] {
      llhttp_settings_t s;
      llhttp_settings_init(&s);
      s.on_message_begin = [](llhttp_t* p) { return self(p)->pause_at(Pause::kBegin); };
      s.on_url = [](llhttp_t* p, const char* at, size_t n) {
        return self(p)->field_piece(self(p)->head.target, at, n);
      };
      s.on_url_complete = [](llhttp_t* p) {
        self(p)->url_complete = true;
        return 0;
      };
      s.on_header_field = [](llhttp_t* p, const char* at, size_t n) {
        return self(p)->field_piece(self(p)->name, at, n);
      };
      s.on_header_value = [](llhttp_t* p, const char* at, size_t n) {
        return self(p)->field_piece(self(p)->value, at, n);
      };
      s.on_header_value_complete = [](llhttp_t* p) { return self(p)->value_complete(); };
      s.on_headers_complete = [](llhttp_t* p) { return self(p)->headers_complete(); };
      s.on_body = [](llhttp_t* p, const char* at, size_t n) { return self(p)->body(at, n); };
      // Called after the chunk-size line; content_length is the chunk's size.
      s.on_chunk_header = [](llhttp_t* p) {
        self(p)->raw_left = p->content_length;
        return 0;
      };
      s.on_message_complete = [](llhttp_t* p) { return self(p)->pause_at(Pause::kMessageEnd); };
      return s;
    }();
    return table;
  }

  static Impl* self(llhttp_t* p) { return static_cast<Impl*>(p->data); }

  int fail(int status, std::string reason) {
    error = ParseError{status, std::move(reason)};
    have_error = true;
    return HPE_USER;
  }

  // Stops llhttp_execute at one of the three pauses (see the top of this file).
  int pause_at(Pause at) {
    pause = at;
    return HPE_PAUSED;
  }

  // Head bytes so far if the head extended to `end` in the current slice.
  size_t head_size_to(const char* end) const {
    return raw_head.size() + static_cast<size_t>(end - head_from);
  }

  // The head went past the limit: 414 while still in the target, else 431.
  int head_too_large() {
    return url_complete ? fail(431, "request header section too large")
                        : fail(414, "request target too long");
  }

  int check_head(const char* end) {
    if (phase == Phase::kHead && head_size_to(end) > options.max_head) return head_too_large();
    if (phase == Phase::kBody && trailer_bytes > options.max_head) {
      return fail(431, "trailer section too large");
    }
    return 0;
  }

  // A piece of the target, or of a field line's name or value (`to`) in the
  // head or a trailer.
  int field_piece(std::string& to, const char* at, size_t n) {
    to.append(at, n);
    if (phase == Phase::kBody) trailer_bytes += n;
    return check_head(at + n);
  }

  int value_complete() {
    Header h{std::move(name), std::string(trim_ows(value))};
    name.clear();
    value.clear();
    if (phase == Phase::kBody) {
      trailer_bytes += 4;  // ':' SP CR LF, so empty trailers count too
      trailers.push_back(std::move(h));
      return check_head(nullptr);
    }
    head.headers.push_back(std::move(h));
    return 0;
  }

  int headers_complete() {
    // We implement no protocol upgrade: parse the message as an ordinary
    // one (RFC 9110 section 7.8 lets a server ignore Upgrade). CONNECT is
    // answered by the caller like any unsupported method.
    parser.upgrade = 0;
    head.method = llhttp_method_name(static_cast<llhttp_method_t>(parser.method));
    head.version_major = parser.http_major;
    head.version_minor = parser.http_minor;
    if (head.version_major != 1) return fail(505, "HTTP version not supported");
    const bool http11 = head.version_minor >= 1;

    // Transfer-Encoding (RFC 9112 section 6.1): we understand only chunked.
    bool has_te = false;
    size_t hosts = 0;
    bool conn_close = false, conn_keep_alive = false;
    for (const Header& h : head.headers) {
      if (iequals(h.name, "transfer-encoding")) {
        has_te = true;
        for (const std::string& coding : list_members(h.value)) {
          if (coding != "chunked") return fail(501, "unsupported transfer coding: " + coding);
        }
      } else if (iequals(h.name, "host")) {
        ++hosts;
      } else if (iequals(h.name, "connection")) {
        for (const std::string& option : list_members(h.value)) {
          if (option == "close") conn_close = true;
          if (option == "keep-alive") conn_keep_alive = true;
        }
      } else if (iequals(h.name, "expect")) {
        if (http11 && iequals(h.value, "100-continue")) head.expect_continue = true;
      }
    }
    // An HTTP/1.0 message with Transfer-Encoding has faulty framing
    // (RFC 9112 section 6.1).
    if (has_te && !http11) return fail(400, "Transfer-Encoding in an HTTP/1.0 request");
    // Exactly one Host in HTTP/1.1, at most one before (RFC 9112 section 3.2).
    if (hosts > 1 || (http11 && hosts == 0)) return fail(400, "missing or repeated Host");

    // Persistence (RFC 9112 section 9.3): HTTP/1.1 unless "close"; HTTP/1.0
    // only with "keep-alive".
    // llhttp reads the same tokens; requiring both to agree means we never
    // resume into llhttp's "closed" state, which would reject the next
    // request (e.g. "keep-alive;x" is a keep-alive to us, not to llhttp).
    head.keep_alive = (http11 ? !conn_close : (conn_keep_alive && !conn_close)) &&
                      llhttp_should_keep_alive(&parser) != 0;

    if (parser.flags & F_CHUNKED) {
      head.framing = BodyFraming::kChunked;
    } else if (parser.flags & F_CONTENT_LENGTH) {
      head.framing = BodyFraming::kContentLength;
      head.content_length = parser.content_length;
      if (head.content_length > options.max_body) return fail(413, "request body too large");
    } else if (has_te) {
      return fail(400, "chunked is not the final transfer coding");
    }
    return pause_at(Pause::kHeadEnd);
  }

  int body(const char* at, size_t n) {
    body_bytes += n;
    if (body_bytes > options.max_body) return fail(413, "request body too large");
    if (n > 0) handler.on_body(std::string_view(at, n));
    return 0;
  }

  void start_message() {
    phase = Phase::kHead;
    static_cast<MessageState&>(*this) = MessageState{};
  }

  // Builds raw_lines from the copied head and checks what needs the raw
  // bytes: bare CR and obs-fold are rejected (RFC 9112 sections 2.2, 5.2).
  int finish_head() {
    std::string_view rest = raw_head;
    while (!rest.empty()) {
      std::string_view line = next_item(rest, "\n");
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) break;  // the empty line ending the head
      // A bare CR is invalid (RFC 9112 section 2.2); strict llhttp already
      // rejects it, this keeps the raw lines honest with any build.
      if (line.find('\r') != std::string_view::npos) return fail(400, "bare CR in header section");
      if (!head.raw_lines.empty() && is_blank(line.front())) {
        return fail(400, "obsolete line folding");
      }
      head.raw_lines.emplace_back(line);
    }
    return 0;
  }

  FeedResult report_error(size_t consumed) {
    failed = true;
    handler.on_error(error);
    return {consumed, State::kError};
  }

  // Blanks held at the end of the request line plus the head so far must
  // fit the head limit.
  bool held_fits() {
    if (raw_head.size() + held.size() <= options.max_head) return true;
    head_too_large();
    return false;
  }

  FeedResult feed(std::string_view bytes) {
    if (failed) return {0, State::kError};
    if (closed) return {0, State::kClosed};
    const char* data = bytes.data();
    const char* end = data + bytes.size();
    const char* p = data;
    if (paused_after_message) {
      paused_after_message = false;
      llhttp_resume(&parser);
    }
    if (p == end && !held.empty()) return {0, State::kNeedMore};
    std::string held_now;  // held bytes being given to llhttp
    for (;;) {
      // Choose the next run of bytes for llhttp: [from, to) from `src`;
      // `next` is where the input continues once llhttp took all of it.
      const char* from = p;
      const char* to = p;
      const char* next = p;
      Src src = Src::kInput;
      bool raw = false;
      if (raw_left > 0) {
        raw = true;
        to = p + static_cast<size_t>(std::min<uint64_t>(raw_left, static_cast<uint64_t>(end - p)));
        next = to;
      } else if (p < end) {
        const char* lf = static_cast<const char*>(memchr(p, '\n', static_cast<size_t>(end - p)));
        const bool request_line = phase == Phase::kHead && !request_line_done;
        if (request_line) {
          // Blanks after the version: find the line's (or slice's) tail.
          const char* e = lf ? lf : end;
          if (e > p && e[-1] == '\r') --e;
          const char* b = e;
          while (b > p && is_blank(b[-1])) --b;
          // Blanks after a CR make that CR a bare one: no dropping then,
          // llhttp refuses it (whole or split, the same).
          const bool after_cr = b > p ? b[-1] == '\r' : last_cr;
          // Blanks (and maybe a CR) held from the last slice are trailing
          // when nothing but blanks (after a held CR: nothing) comes before
          // the line's end; else llhttp gets them first.
          const bool trailing = !held.empty() && (held.back() == '\r' ? lf == p : b == p);
          if (!held.empty() && !trailing) {
            held_now = std::move(held);
            held.clear();
            from = held_now.data();
            to = from + held_now.size();
            src = Src::kHeld;
          } else if (trailing && lf) {  // not given to llhttp, kept in the raw head
            raw_head += held;
            held.clear();
            if (!held_fits()) return report_error(static_cast<size_t>(p - data));
          }
          if (src == Src::kHeld) {
            // the held bytes go first; this slice is looked at again next
          } else if (after_cr) {
            // fall through to the plain line-end handling below
          } else if (!lf && (b < end)) {
            // The slice ends in blanks or a CR: hold them until the next.
            if (b == p) {
              held.append(p, end);
              if (!held_fits()) return report_error(bytes.size());
              return {bytes.size(), State::kNeedMore};
            }
            to = next = b;
          } else if (lf && b < e) {
            if (b == p) {  // the blanks are next: drop them
              raw_head.append(b, e);
              if (!held_fits()) return report_error(static_cast<size_t>(e - data));
              p = e;
              continue;
            }
            to = next = b;
          }
        }
        if (to == p) {
          if (!lf) {
            to = next = end;
          } else if (lf > p ? lf[-1] == '\r' : last_cr) {
            to = next = lf + 1;
          } else if (lf > p) {
            to = next = lf;  // the LF comes next, after a CR of ours
          } else {
            from = kCr;
            to = kCr + 1;
            src = Src::kCr;
            next = p;
          }
        }
      }
      const bool head_run = phase == Phase::kHead;

      head_from = from;
      pause = Pause::kNone;
      have_error = false;
      llhttp_errno_t err = llhttp_execute(&parser, from, static_cast<size_t>(to - from));
      // The input position of a stop at `at` inside this run.
      auto input_pos = [&](const char* at) {
        return src == Src::kInput && at ? static_cast<size_t>(at - data)
                                        : static_cast<size_t>(next - data);
      };
      // llhttp took [from, upto): the body count and the line-end state.
      auto took = [&](const char* upto) {
        if (raw) {
          raw_left -= static_cast<uint64_t>(upto - from);
          last_cr = false;
        } else if (upto > from) {
          last_cr = upto[-1] == '\r';
          if (head_run && src == Src::kInput && upto[-1] == '\n') request_line_done = true;
        }
      };
      if (err == HPE_OK) {
        if (phase == Phase::kHead && src != Src::kCr) {
          if (check_head(to) != 0) return report_error(input_pos(to));
          raw_head.append(from, to);
        }
        took(to);
        p = next;
        if (p == end && held.empty()) return {bytes.size(), State::kNeedMore};
        continue;
      }
      const char* at = llhttp_get_error_pos(&parser);
      if (err != HPE_PAUSED) {
        if (!have_error) {
          const char* why = llhttp_get_error_reason(&parser);
          error = ParseError{400, why ? why : llhttp_errno_name(err)};
        }
        return report_error(input_pos(at));
      }
      took(at);
      switch (pause) {
        case Pause::kBegin:
          start_message();
          break;
        case Pause::kHeadEnd:
          if (check_head(at) != 0) return report_error(input_pos(at));
          raw_head.append(head_from, at);
          if (finish_head() != 0) return report_error(input_pos(at));
          phase = Phase::kBody;
          if (head.framing == BodyFraming::kContentLength) raw_left = head.content_length;
          handler.on_head(head);
          if (handler.hold_after_head()) {
            paused_after_message = true;  // the next feed() resumes llhttp
            return {input_pos(at), State::kPaused};
          }
          break;
        case Pause::kMessageEnd: {
          phase = Phase::kIdle;
          raw_left = 0;
          ++completed;
          handler.on_complete(trailers);
          size_t consumed = input_pos(at);
          if (!head.keep_alive) {
            closed = true;
            return {consumed, State::kClosed};
          }
          if (options.pause_after_message) {
            paused_after_message = true;
            return {consumed, State::kPaused};
          }
          break;
        }
        case Pause::kNone:
          error = ParseError{500, "unexpected parser pause"};
          return report_error(input_pos(at));
      }
      llhttp_resume(&parser);
      p = src == Src::kInput ? at : next;
    }
  }
};

RequestParser::RequestParser(RequestHandler& handler, Options options)
    : impl_(std::make_unique<Impl>(handler, options)) {}

RequestParser::~RequestParser() = default;

RequestParser::FeedResult RequestParser::feed(std::string_view bytes) { return impl_->feed(bytes); }

bool RequestParser::in_message() const { return impl_->phase != Impl::Phase::kIdle; }

uint64_t RequestParser::messages() const { return impl_->completed; }

}  // namespace fsrv::services::http
