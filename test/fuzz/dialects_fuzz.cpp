// libFuzzer target for the two file dialects' pure parts (make fuzz-dialects
// [FUZZ_SECONDS=60]). The first byte picks the part, the next two a split
// point; the rest is the input.
//  0: segmented base64 (file-marker uploads): the input cut into segments
//     (lengths from the input itself), each encoded on its own and
//     concatenated, decodes back to the input whole and cut at the split;
//     the raw input decodes to the same outcome whole and split.
//  1: file-raw lines: framing whole equals framing in two reads; every
//     parsed UPLOAD has a name and a size, every error a message.
//  2: file-marker commands: parse_command never fails silently.
// (file-marker's "__END__" is found by kit::PayloadReader, tested in
// test/services/kit/payload_reader_test.cpp.)

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fsrv/codec/base64.hpp"
#include "fsrv/core/limits.hpp"
#include "fsrv/services/file_marker/marker_protocol.hpp"
#include "fsrv/services/file_raw/raw_protocol.hpp"

using namespace fsrv;
namespace fm = fsrv::services::file_marker;
namespace fr = fsrv::services::file_raw;

namespace {

void check(bool ok) {
  if (!ok) abort();
}

struct Decoded {
  bool ok;
  std::string bytes;
};

Decoded segmented(std::string_view text, size_t split) {
  auto d = codec::make_segmented_decoder(codec::Base64Kind::kFast);
  std::string out(codec::decode_capacity(text.size()) + 8, '\0');
  auto* o = reinterpret_cast<uint8_t*>(out.data());
  size_t w = 0;
  codec::DecodeStatus a = d->update({text.data(), split}, o);
  if (!a.ok) return {false, ""};
  w += a.written;
  codec::DecodeStatus b = d->update({text.data() + split, text.size() - split}, o + w);
  if (!b.ok) return {false, ""};
  w += b.written;
  codec::DecodeStatus c = d->finish(o + w);
  if (!c.ok) return {false, ""};
  out.resize(w);
  return {true, out};
}

std::vector<std::string> raw_lines(const std::vector<std::string_view>& pieces) {
  std::vector<std::string> out;
  std::string buf;
  for (std::string_view p : pieces) {
    buf.append(p);
    for (;;) {
      fr::RawLine l = fr::next_raw_line(buf, 64);
      if (l.kind == fr::RawLine::kTooLong) {
        out.push_back("<too long>");
        return out;
      }
      std::string line(l.line);  // l.line points into buf: copy before erasing
      buf.erase(0, l.consumed);
      if (l.kind == fr::RawLine::kNeedMore) break;
      out.push_back(line);
      fr::RawRequest r = fr::parse_raw_line(line);
      if (r.error.empty() && r.verb == fr::RawCmd::kUpload) check(!r.name.empty());
      if (r.error.empty()) check(r.verb != fr::RawCmd::kUnknown);
      if (r.fatal) check(!r.error.empty());
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  int mode = data[0] % 3;
  std::string_view in(reinterpret_cast<const char*>(data) + 3, size - 3);
  size_t split = (static_cast<size_t>(data[1]) << 8 | data[2]) % (in.size() + 1);

  if (mode == 0) {
    // Segments of the input, lengths taken from its own bytes.
    std::string text;
    const codec::Encoder& enc = codec::encoder(codec::Base64Kind::kFast);
    for (size_t off = 0; off < in.size();) {
      size_t n = std::min<size_t>(in.size() - off, 1 + static_cast<uint8_t>(in[off]) % 17);
      std::string part(codec::encoded_size(n), '\0');
      enc.encode({reinterpret_cast<const uint8_t*>(in.data()) + off, n}, part.data());
      text += part;
      off += n;
    }
    size_t cut = text.empty() ? 0 : split % (text.size() + 1);
    Decoded whole = segmented(text, text.size());
    Decoded two = segmented(text, cut);
    check(whole.ok && two.ok && whole.bytes == in && two.bytes == in);
    // Arbitrary text: the same verdict and bytes whole or split.
    Decoded a = segmented(in, in.size());
    Decoded b = segmented(in, split);
    check(a.ok == b.ok && (!a.ok || a.bytes == b.bytes));
  } else if (mode == 1) {
    check(raw_lines({in}) == raw_lines({in.substr(0, split), in.substr(split)}));
  } else {
    fm::Command c = fm::parse_command(in);
    if (c.error.empty()) check(c.verb == fm::Verb::kList || !c.name.empty());
  }
  return 0;
}
