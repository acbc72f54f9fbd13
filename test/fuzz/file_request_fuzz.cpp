// libFuzzer target for the file protocol's request side (make fuzz-file
// [FUZZ_SECONDS=60]): next_frame, parse_line, on_silence and the ASCII-only
// reply writer. Pure functions, no sockets.
//
// For every input (first two bytes pick a split point):
// 1. Framing the input whole and framing it as two reads (appended to a
//    buffer the way FileSession does, payloads skipped up to their
//    terminator) give the same frames, up to the first kTooLong.
// 2. parse_line on every line: without an error, the argument count fits
//    the command; on_silence never runs DELETE or UPLOAD.
// 3. ascii_json of cJSON's printing of the input as a string: pure ASCII,
//    parses back, and equals the input when the input is valid UTF-8.

#include <cjson/cJSON.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fsrv/services/file/reply.hpp"
#include "fsrv/services/file/request.hpp"

using namespace fsrv::services::file;

namespace {

void check(bool ok) {
  if (!ok) abort();
}

/// One framing event, comparable across runs.
struct Event {
  int kind;
  std::string text;
  bool operator==(const Event&) const = default;
};

/// Frames `pieces` arriving one after the other; stops at kTooLong.
std::vector<Event> frame(const std::vector<std::string_view>& pieces) {
  std::vector<Event> out;
  std::string buf;
  bool in_payload = false;
  for (std::string_view p : pieces) {
    buf.append(p);
    for (;;) {
      if (in_payload) {
        size_t t = find_terminator(buf);
        if (t == std::string_view::npos) {
          buf.clear();  // payload bytes go to the sink
          break;
        }
        buf.erase(0, t + 1);
        in_payload = false;
        out.push_back({9, ""});
        continue;
      }
      Frame f = next_frame(buf);
      if (f.kind == Frame::kNeedMore) {
        buf.erase(0, f.consumed);
        break;
      }
      if (f.kind == Frame::kTooLong) {
        out.push_back({Frame::kTooLong, ""});
        return out;
      }
      check(f.consumed > 0 && f.consumed <= buf.size());
      if (f.kind == Frame::kUploadHeader) {
        out.push_back({Frame::kUploadHeader, f.name});
        in_payload = true;
      } else {
        std::string line(f.line);
        out.push_back({Frame::kLine, line});
        Request r = parse_line(line);
        if (r.error.empty()) {
          size_t want = (r.cmd == Cmd::kGet || r.cmd == Cmd::kDelete || r.cmd == Cmd::kSize) ? 1
                        : r.cmd == Cmd::kUpload                                              ? 2
                                                                                             : 0;
          check(r.args.size() == want);
        }
      }
      buf.erase(0, f.consumed);
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  size_t split = (static_cast<size_t>(data[0]) << 8 | data[1]) % (size - 1);
  std::string_view in(reinterpret_cast<const char*>(data) + 2, size - 2);
  split = std::min(split, in.size());

  // 1. Whole versus two reads.
  std::vector<Event> whole = frame({in});
  std::vector<Event> parts = frame({in.substr(0, split), in.substr(split)});
  check(whole == parts);

  // 2. The silence rule on the input as one unterminated line.
  Request req;
  Silence s = on_silence(in, &req);
  if (s == Silence::kRun) {
    check(req.error.empty());
    check(req.cmd != Cmd::kDelete && req.cmd != Cmd::kUpload && req.cmd != Cmd::kUnknown);
  }
  if (s == Silence::kAnswer) check(!req.error.empty());

  // 3. ASCII-only JSON round trip.
  std::string text(in.substr(0, in.find('\0')));
  cJSON* str = cJSON_CreateString(text.c_str());
  char* printed = cJSON_PrintUnformatted(str);
  std::string ascii = ascii_json(printed);
  for (char c : ascii) check(static_cast<unsigned char>(c) < 0x80);
  cJSON* back = cJSON_Parse(ascii.c_str());
  check(back != nullptr && cJSON_IsString(back));
  // Valid UTF-8 (ascii_json writes no U+FFFD) decodes back to the input.
  if (ascii.find("\\ufffd") == std::string::npos) {
    check(text == back->valuestring);
  }
  cJSON_Delete(back);
  cJSON_free(printed);
  cJSON_Delete(str);
  (void)error_text(text);
  (void)json_quoted(text);
  return 0;
}
