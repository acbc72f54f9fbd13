// libFuzzer target for the session protocol's framer (make fuzz-session
// [FUZZ_SECONDS=60]): session_framer's next_frame, a pure function.
//
// For every input:
// 1. For each Want: `consumed` never exceeds the input; a complete frame
//    consumes at least one byte; names are 1..kMaxNameBytes bytes and upload
//    sizes are not negative.
// 2. Prefixes never contradict: on every prefix the answer is kNeedMore
//    (consuming no more than the full answer), or, when the prefix holds the
//    whole frame, exactly the full answer.
// 3. A session model (word -> its follow-up frames -> word, upload payloads
//    skipped by their size) run over the whole input gives the same frame
//    sequence as the same model fed one byte at a time: read boundaries do
//    not matter (i10.md section 2: words split or glued across reads).

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fsrv/services/session/session_framer.hpp"

using namespace fsrv::services::session;

namespace {

void check(bool ok) {
  if (!ok) abort();
}

bool same(const Frame& a, const Frame& b) {
  return a.kind == b.kind && a.consumed == b.consumed && a.verb == b.verb && a.name == b.name &&
         a.size == b.size && a.yes == b.yes && a.error == b.error;
}

const Want kWants[] = {Want::kWord, Want::kUploadHeader, Want::kName, Want::kAck, Want::kConfirm};

/// The server's order of frames, without storage: what follows each frame.
struct Model {
  Want want = Want::kWord;
  Verb verb = Verb::kConnme;
  uint64_t payload = 0;  ///< upload bytes still to skip
  bool stopped = false;  ///< after an error or byebye
  std::vector<std::string> log;

  /// Consumes what it can of buf[pos...]; returns the new position.
  size_t run(std::string_view buf, size_t pos) {
    while (!stopped) {
      if (payload > 0) {
        uint64_t take = std::min<uint64_t>(payload, buf.size() - pos);
        payload -= take;
        pos += take;
        if (payload > 0) return pos;
        log.push_back("payload-end");
        continue;
      }
      Frame f = next_frame(buf.substr(pos), want);
      pos += f.consumed;
      switch (f.kind) {
        case Frame::Kind::kNeedMore:
          return pos;
        case Frame::Kind::kError:
          log.push_back("error:" + f.error);
          stopped = true;
          return pos;
        case Frame::Kind::kWord:
          log.push_back("word:" + std::string(verb_name(f.verb)));
          verb = f.verb;
          if (f.verb == Verb::kUpload) want = Want::kUploadHeader;
          if (f.verb == Verb::kDownload || f.verb == Verb::kRm || f.verb == Verb::kSize) {
            want = Want::kName;
          }
          if (f.verb == Verb::kLs) want = Want::kAck;  // as if one file was listed
          if (f.verb == Verb::kByebye) stopped = true;
          break;
        case Frame::Kind::kUploadHeader:
          log.push_back("upload:" + f.name + ":" + std::to_string(f.size));
          payload = static_cast<uint64_t>(f.size) % 4096;  // keep the model's skips short
          if (payload == 0) log.push_back("payload-end");
          want = Want::kWord;
          break;
        case Frame::Kind::kName:
          log.push_back("name:" + f.name);
          want = verb == Verb::kRm         ? Want::kConfirm
                 : verb == Verb::kDownload ? Want::kAck
                                           : Want::kWord;
          break;
        case Frame::Kind::kAck:
          log.push_back("ack");
          want = Want::kWord;
          break;
        case Frame::Kind::kConfirm:
          log.push_back(f.yes ? "Y" : "N");
          want = Want::kWord;
          break;
      }
    }
    return pos;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  for (Want want : kWants) {
    Frame full = next_frame(in, want);
    check(full.consumed <= in.size());
    if (full.kind != Frame::Kind::kNeedMore && full.kind != Frame::Kind::kError) {
      check(full.consumed > 0);
    }
    if (full.kind == Frame::Kind::kName || full.kind == Frame::Kind::kUploadHeader) {
      check(!full.name.empty() && full.name.size() <= static_cast<size_t>(kMaxNameBytes));
    }
    if (full.kind == Frame::Kind::kUploadHeader) check(full.size >= 0);
    size_t limit = std::min<size_t>(in.size(), 300);
    for (size_t k = 0; k < limit; ++k) {
      Frame part = next_frame(in.substr(0, k), want);
      if (part.kind == Frame::Kind::kNeedMore) {
        check(part.consumed <= k);
        // (An error consumes nothing: the connection closes.)
        if (full.kind != Frame::Kind::kNeedMore && full.kind != Frame::Kind::kError) {
          check(part.consumed <= full.consumed);
        }
        continue;
      }
      // A prefix gave an answer: the longer input must give the same one.
      check(same(part, full));
    }
  }

  Model whole;
  size_t pos = whole.run(in, 0);
  check(pos <= in.size());

  Model bytewise;
  std::string buf;
  size_t start = 0;
  for (size_t i = 0; i < in.size() && !bytewise.stopped; ++i) {
    buf.push_back(in[i]);
    start = bytewise.run(buf, start);
  }
  check(whole.log == bytewise.log);

  // The struct encoders are little-endian.
  int32_t v = static_cast<int32_t>(size * 2654435761u);
  std::string p = pack_i32(v);
  check(p.size() == 4 &&
        static_cast<uint32_t>(static_cast<uint8_t>(p[0]) | (static_cast<uint8_t>(p[1]) << 8) |
                              (static_cast<uint8_t>(p[2]) << 16) |
                              (static_cast<uint32_t>(static_cast<uint8_t>(p[3])) << 24)) ==
            static_cast<uint32_t>(v));
  return 0;
}
