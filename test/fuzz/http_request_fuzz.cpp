// libFuzzer target for the HTTP request parser (src/services/http/
// request_parser.cpp): `make fuzz-http`. The first three bytes choose a
// split point, the body limit and the pause mode; the rest is fed whole,
// then split in two at the chosen point, then in 7-byte pieces. Checked:
// no crash or sanitizer report; events come in order (head, body pieces,
// complete; at most one error, last); body bytes never exceed
// Content-Length nor the limit, and equal Content-Length at completion;
// consumed never exceeds the slice; every feeding gives the same events
// (error statuses may differ where the head limit and a syntax error race,
// the fact of an error may not).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fsrv/services/http/http_form.hpp"
#include "fsrv/services/http/http_util.hpp"
#include "fsrv/services/http/request_parser.hpp"

namespace {

using namespace fsrv::services::http;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "invariant failed: %s\n", what);
  std::abort();
}

#define CHECK(cond)           \
  do {                        \
    if (!(cond)) fail(#cond); \
  } while (0)

struct Checker : RequestHandler {
  uint64_t max_body = 0;
  size_t max_head = 0;
  std::vector<std::string> events;
  bool in_head = false;  // a head was reported, the message not complete
  bool errored = false;
  RequestHead head;
  uint64_t body = 0;
  std::string body_text;

  void on_head(const RequestHead& h) override {
    CHECK(!errored && !in_head);
    CHECK(h.version_major == 1);
    CHECK(!h.raw_lines.empty());
    CHECK(h.raw_lines[0].compare(0, h.method.size(), h.method) == 0);
    CHECK(h.headers.size() + 1 == h.raw_lines.size());  // one line per field, no obs-fold
    size_t raw = 0;
    for (const std::string& line : h.raw_lines) raw += line.size();
    CHECK(raw <= max_head);
    CHECK(h.framing != BodyFraming::kContentLength || h.content_length <= max_body);
    in_head = true;
    head = h;
    body = 0;
    body_text.clear();
    events.push_back("H " + h.method + " " + h.target + (h.keep_alive ? " ka" : " close"));
  }
  void on_body(std::string_view piece) override {
    CHECK(!errored && in_head);
    CHECK(!piece.empty());
    CHECK(head.framing != BodyFraming::kNone);
    body += piece.size();
    CHECK(body <= max_body);
    if (head.framing == BodyFraming::kContentLength) CHECK(body <= head.content_length);
    body_text += piece;
  }
  void on_complete(const std::vector<Header>& trailers) override {
    CHECK(!errored && in_head);
    if (head.framing == BodyFraming::kContentLength) CHECK(body == head.content_length);
    if (head.framing != BodyFraming::kChunked) CHECK(trailers.empty());
    in_head = false;
    events.push_back("B " + body_text);
    events.push_back("C " + std::to_string(trailers.size()));
  }
  void on_error(const ParseError& e) override {
    CHECK(!errored);
    CHECK(e.status == 400 || e.status == 413 || e.status == 414 || e.status == 431 ||
          e.status == 501 || e.status == 505);
    // We stop at a message without keep-alive, so llhttp's "closed" state
    // must never see data.
    CHECK(e.reason != "Data after `Connection: close`");
    errored = true;
    events.push_back("E");
  }
};

std::vector<std::string> run(const std::vector<std::string_view>& pieces, uint64_t max_body,
                             size_t max_head, bool pause) {
  Checker c;
  c.max_body = max_body;
  c.max_head = max_head;
  RequestParser::Options opt;
  opt.max_body = max_body;
  opt.max_head = max_head;
  opt.pause_after_message = pause;
  RequestParser p(c, opt);
  bool stop = false;
  for (std::string_view rest : pieces) {
    while (!stop) {
      const uint64_t before = p.messages();
      RequestParser::FeedResult r = p.feed(rest);
      CHECK(r.consumed <= rest.size());
      rest.remove_prefix(r.consumed);
      if (r.state == RequestParser::State::kPaused) {
        CHECK(pause && p.messages() == before + 1 && !p.in_message());
        continue;
      }
      if (r.state == RequestParser::State::kNeedMore) {
        CHECK(rest.empty());
      } else if (r.state == RequestParser::State::kError) {
        CHECK(c.errored);
        stop = true;
      } else {
        CHECK(!c.head.keep_alive && !c.in_head);
        stop = true;
      }
      break;
    }
  }
  return c.events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const uint64_t max_body = 16 + uint64_t{data[1]} * 8;
  const bool pause = (data[2] & 1) != 0;
  // Small head limits (32..540 bytes) so the 414/431 paths get fuzzed too.
  const size_t max_head = 32 + (data[2] >> 1) * 4u;
  const std::string_view in(reinterpret_cast<const char*>(data) + 3, size - 3);
  const size_t cut = in.empty() ? 0 : data[0] * in.size() / 255;

  const std::vector<std::string> whole = run({in}, max_body, max_head, pause);
  const std::vector<std::string> split =
      run({in.substr(0, cut), in.substr(cut)}, max_body, max_head, !pause);
  CHECK(split == whole);
  std::vector<std::string_view> small;
  for (size_t i = 0; i < in.size(); i += 7) small.push_back(in.substr(i, 7));
  CHECK(run(small, max_body, max_head, pause) == whole);

  // The helpers must not crash on the same bytes either.
  if (auto d = percent_decode_path(in); d.ok()) CHECK(d.value.find('\0') == std::string::npos);
  const Target t = split_target(in);
  CHECK(t.path.size() + t.query.size() <= in.size());
  if (auto when = parse_http_date(in); when && *when >= 0) {
    CHECK(parse_http_date(format_http_date(*when)) == *when);
  }
  const uint64_t file_size = data[0] * 1000u;
  if (RangeResult r = parse_range(in, file_size); r.decision == RangeDecision::kPartial) {
    CHECK(r.range.first <= r.range.last && r.range.last < file_size);
  }
  (void)parse_urlencoded(in);
  if (auto b = multipart_boundary(in); b.ok()) (void)parse_multipart(in, b.value);
  (void)parse_multipart(in, "b");
  (void)content_disposition(in);
  return 0;
}
