// Concatenated, independently padded base64 segments (see
// make_segmented_decoder in include/fsrv/codec/base64.hpp).

#include <cstring>
#include <string>

#include "fsrv/codec/base64.hpp"

namespace fsrv::codec {

namespace {

/// Wraps one plain Decoder per segment: a segment ends with the quantum that
/// holds its first '=' (RFC 4648 section 4: padding only in the last
/// quantum), then a fresh decoder starts the next one.
class SegmentedDecoder final : public Decoder {
 public:
  explicit SegmentedDecoder(Base64Kind kind) : kind_(kind), inner_(make_decoder(kind)) {}

  DecodeStatus update(std::span<const char> in, uint8_t* out) override {
    DecodeStatus total;
    if (!failed_.ok) return failed_;
    size_t i = 0;
    while (i < in.size()) {
      size_t avail = in.size() - i;
      size_t take = avail;
      if (pad_left_ > 0) {  // inside a padded quantum split across calls
        take = std::min(pad_left_, avail);
      } else if (const void* eq = std::memchr(in.data() + i, '=', avail)) {
        uint64_t pos =
            seg_chars_ + static_cast<size_t>(static_cast<const char*>(eq) - in.data() - i);
        uint64_t need = (pos / 4 + 1) * 4 - seg_chars_;  // up to the end of that quantum
        pad_left_ = static_cast<size_t>(need);
        take = std::min(pad_left_, avail);
      }
      DecodeStatus ds = inner_->update(in.subspan(i, take), out + total.written);
      if (!ds.ok) return fail(ds, total.written);
      total.written += ds.written;
      seg_chars_ += take;
      i += take;
      if (pad_left_ > 0) {
        pad_left_ -= take;
        if (pad_left_ == 0) {  // the padded quantum is complete: end the segment
          DecodeStatus f = inner_->finish(out + total.written);
          if (!f.ok) return fail(f, total.written);
          total.written += f.written;
          base_ += seg_chars_;
          seg_chars_ = 0;
          inner_ = make_decoder(kind_);
        }
      }
    }
    return total;
  }

  DecodeStatus finish(uint8_t* out) override {
    if (!failed_.ok) return failed_;
    DecodeStatus f = inner_->finish(out);
    if (!f.ok) return fail(f, 0);
    return f;
  }

  uint64_t consumed() const override { return base_ + seg_chars_; }

 private:
  /// Records the inner failure with its offset moved to the whole stream.
  DecodeStatus fail(DecodeStatus ds, size_t written) {
    uint64_t global = base_ + ds.error_offset;
    std::string from = "offset " + std::to_string(ds.error_offset);
    if (size_t at = ds.error.rfind(from); at != std::string::npos) {
      ds.error.replace(at, from.size(), "offset " + std::to_string(global));
    }
    ds.error_offset = global;
    ds.written = written;
    failed_ = ds;
    return ds;
  }

  Base64Kind kind_;
  std::unique_ptr<Decoder> inner_;
  uint64_t base_ = 0;       ///< characters of the segments already ended
  uint64_t seg_chars_ = 0;  ///< characters given to inner_
  size_t pad_left_ = 0;     ///< characters left in the padded quantum being read
  DecodeStatus failed_;     ///< ok until the first failure, then that failure
};

}  // namespace

std::unique_ptr<Decoder> make_segmented_decoder(Base64Kind kind) {
  return std::make_unique<SegmentedDecoder>(kind);
}

}  // namespace fsrv::codec
