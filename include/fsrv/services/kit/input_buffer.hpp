#pragma once
// The stream-session kit: what every TCP service's connection handler does
// the same way (buffering input, diverting an upload's payload into a
// transfer::UploadSink, the per-turn request loop, per-verb counters). A
// service keeps only its parser and its replies.
//
// InputBuffer: the bytes a connection read but its parser has not taken yet.

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

namespace fsrv::services::kit {

/// Input bytes not parsed yet: the next read lands after them (space), the
/// parser looks at view() and consumes what it took from the front. Taken
/// bytes are reclaimed lazily (compact), so consuming is O(1).
class InputBuffer {
 public:
  /// Room for the next read, at least `min_room` bytes: compacts first (the
  /// unparsed bytes move to the front), then grows if needed.
  std::span<char> space(size_t min_room);
  /// `n` bytes were read into the last space().
  void produced(size_t n) { end_ += n; }
  /// Appends `data` (bytes that were read elsewhere, e.g. past a payload's end).
  void append(std::string_view data);
  /// The unparsed bytes.
  std::string_view view() const { return {data_.data() + start_, end_ - start_}; }
  size_t size() const { return end_ - start_; }
  bool empty() const { return end_ == start_; }
  /// Drops the first `n` unparsed bytes (n <= size()).
  void consume(size_t n) { start_ += n; }
  /// Drops every unparsed byte.
  void clear() { start_ = end_ = 0; }
  /// True when only spaces, tabs, CR and LF are unparsed (nothing to answer).
  bool blank() const;
  /// Moves the unparsed bytes to the front of the storage.
  void compact();

 private:
  std::vector<char> data_;
  size_t start_ = 0;
  size_t end_ = 0;
};

}  // namespace fsrv::services::kit
