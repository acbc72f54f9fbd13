#pragma once
// Python-compatible JSON writing, the one JSON string writer of the
// project: produces exactly the bytes Python's `json.dumps(obj)` writes with
// its defaults (the course's chat server replies with json.dumps, its file
// server too, and our replies must match them byte for byte). Used by chat
// (PyJsonWriter), the file protocol (ascii_json over cJSON's output) and
// http's JSON listing. Owns nothing; no parsing.
//
// Python's defaults (Lib/json/encoder.py): item separator ", ", key
// separator ": ", no indentation, keys in insertion order, ensure_ascii=True:
// `"` and `\` escaped, \n \r \t \b \f as short escapes, other characters
// below U+0020 and U+007F as \u00XX, every non-ASCII character as \uXXXX in
// lower-case hex (above U+FFFF as a UTF-16 surrogate pair). '/' is not
// escaped. So the output is always pure printable ASCII.
//
// Only what the replies need: strings, objects with ordered keys, arrays.
// Input strings are UTF-8; invalid bytes are replaced by U+FFFD (written
// "\ufffd"), one per maximal invalid subpart, the policy of codec/utf8.hpp
// (Python's bytes.decode("utf-8", "replace")). The course servers would
// instead die with a UnicodeDecodeError on such input.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fsrv::codec {

/// Appends `text` (UTF-8) to `out` as a JSON string literal, quotes
/// included, exactly as Python's json.dumps (ensure_ascii=True) writes it.
/// Invalid UTF-8 becomes \ufffd (see above). Never fails.
void append_json_string(std::string& out, std::string_view text);

/// `json` with every non-ASCII character written as a JSON escape, as
/// Python's json.dumps(ensure_ascii=True) does: U+0080..U+FFFF as "\\uxxxx",
/// above U+FFFF as a UTF-16 surrogate pair (RFC 8259 section 7); invalid
/// UTF-8 as "\\ufffd" per maximal subpart (codec/utf8.hpp). For JSON text
/// whose non-ASCII bytes sit inside strings (any cJSON output). ASCII input
/// comes back unchanged.
std::string ascii_json(std::string_view json);

/// Streaming writer of one JSON document with Python's default layout.
/// Calls must nest correctly (an object alternates key() and a value); the
/// writer does not check this beyond debug assertions. Not thread-safe.
///
///   PyJsonWriter w;
///   w.begin_object(); w.key("status"); w.string("OK"); w.end_object();
///   w.str() == R"({"status": "OK"})"
class PyJsonWriter {
 public:
  /// Starts an object ("{") as a value.
  void begin_object();
  /// Ends the innermost object ("}").
  void end_object();
  /// Starts an array ("[") as a value.
  void begin_array();
  /// Ends the innermost array ("]").
  void end_array();
  /// Writes an object key followed by ": "; the next call writes its value.
  void key(std::string_view name);
  /// Writes a string value.
  void string(std::string_view value);
  /// Shorthand for key(name) then string(value).
  void field(std::string_view name, std::string_view value) {
    key(name);
    string(value);
  }
  /// The document so far.
  const std::string& str() const { return out_; }
  /// Moves the document out; the writer is empty afterwards.
  std::string take();
  /// Moves out the text written so far but keeps the open containers, so
  /// a long document goes out in pieces (the chat inbox reply).
  std::string drain() { return std::exchange(out_, std::string()); }

 private:
  // Writes ", " before every element but the first of a container.
  void before_value();

  std::string out_;
  // One entry per open container: true until its first element is written.
  std::vector<bool> first_;
  bool after_key_ = false;
};

}  // namespace fsrv::codec
