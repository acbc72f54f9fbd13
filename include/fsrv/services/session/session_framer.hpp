#pragma once
// Framing of the FTP-like session protocol (seed 003; docs/services/session.md):
// a pure function from "bytes received so far" and "what the session waits
// for" to the next frame. No sockets, no storage, no state of its own, so
// the session handler and the fuzzer (test/fuzz/session_frame_fuzz.cpp)
// drive the same code.
//
// The seed's client sends command words bare, with no terminator, and its
// struct fields little-endian (`h` int16, `i` int32). So a word may arrive
// split over reads or glued to the bytes before or after it ("N" then "ls"
// in one read): frames are recognised from the known words and field sizes,
// never from read boundaries. None of the seven words is a prefix of
// another, so the first complete word decides.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace fsrv::services::session {

/// Longest name a request may carry, in bytes (NAME_MAX; storage refuses
/// longer names anyway). A longer `h` length is a malformed frame.
inline constexpr int kMaxNameBytes = 255;

/// The command words of seed 003.
enum class Verb { kConnme, kByebye, kUpload, kLs, kDownload, kRm, kSize };

/// The wire spelling of a verb ("connme", ...).
std::string_view verb_name(Verb verb);

/// What the session waits for next.
enum class Want {
  kWord,          ///< a command word (stray '1' acks before it are skipped)
  kUploadHeader,  ///< `h` name length, name, `i` size (after upload's "ready")
  kName,          ///< `h` name length, name (download, rm, size)
  kAck,           ///< the client's '1' (ls per file, download's end)
  kConfirm,       ///< rm's answer: 'Y' or 'N' (either case)
};

/// One framing step.
struct Frame {
  enum class Kind {
    kNeedMore,      ///< incomplete: drop `consumed` bytes (skipped acks), read more
    kWord,          ///< `verb`
    kUploadHeader,  ///< `name`, `size` (0 .. INT32_MAX bytes of payload follow)
    kName,          ///< `name`
    kAck,           ///< one '1'
    kConfirm,       ///< `yes`
    kError,         ///< malformed: `error` says why; log it and close
  };
  Kind kind = Kind::kNeedMore;
  size_t consumed = 0;  ///< bytes of the input this frame used
  Verb verb = Verb::kConnme;
  std::string name;  ///< raw bytes as sent (the caller validates it)
  int32_t size = 0;
  bool yes = false;
  std::string error;
};

/// The next frame at the start of `input` for `want`. Total and pure: any
/// bytes give a frame; `consumed` <= input.size(); a kNeedMore answer on a
/// prefix never contradicts the answer on the longer input. Errors: an
/// unknown word (a byte sequence that no word starts with), a name length
/// outside 1..kMaxNameBytes, a negative upload size, an ack other than '1',
/// a confirmation other than Y/N.
Frame next_frame(std::string_view input, Want want);

/// Little-endian encodings of the seed's struct formats ("<i", "<f").
std::string pack_i32(int32_t v);
std::string pack_f32(float v);

}  // namespace fsrv::services::session
