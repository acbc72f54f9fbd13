// Base64 module glue: kind parsing, the factories, and the streaming
// decoder skeleton every kind shares (validation, padding, error offsets).

#include "fsrv/codec/base64.hpp"

#include <cstdio>

#include "fsrv/codec/base64_detail.hpp"
#include "fsrv/codec/base64_fast.hpp"

namespace fsrv::codec {

bool parse_base64_kind(std::string_view text, Base64Kind& out) {
  if (text == "fast") {
    out = Base64Kind::kFast;
    return true;
  }
  if (text == "libb64") {
    out = Base64Kind::kLibb64;
    return true;
  }
  return false;
}

std::string_view to_string(Base64Kind kind) {
  return kind == Base64Kind::kLibb64 ? "libb64" : "fast";
}

const Encoder& encoder(Base64Kind kind) {
  if (kind == Base64Kind::kLibb64) return detail::libb64_encoder();
  return fast_encoder(best_isa());
}

std::unique_ptr<Decoder> make_decoder(Base64Kind kind) {
  if (kind == Base64Kind::kLibb64) return detail::make_libb64_decoder();
  return make_fast_decoder(best_isa());
}

namespace detail {

namespace {

std::string hex_byte(char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned>(static_cast<uint8_t>(c)));
  return buf;
}

}  // namespace

DecodeStatus StreamDecoder::fail(uint64_t offset, std::string message) {
  failed_ = true;
  failure_ = DecodeStatus{};
  failure_.ok = false;
  failure_.error_offset = offset;
  failure_.error = std::move(message) + " at offset " + std::to_string(offset);
  return failure_;
}

bool StreamDecoder::push_char(char c, uint8_t* out, size_t* written) {
  const uint64_t offset = consumed_;
  if (done_ || (pad_pending_ && c != kPad)) {
    fail(pad_offset_, "misplaced padding");
    return false;
  }
  const uint8_t v = kCharValue[static_cast<uint8_t>(c)];
  if (v == kBadValue) {
    fail(offset, "invalid base64 character " + hex_byte(c));
    return false;
  }
  if (v == kPadValue && carry_n_ < 2) {
    fail(offset, "misplaced padding");
    return false;
  }
  ++consumed_;
  carry_[carry_n_++] = c;
  if (v == kPadValue && !pad_pending_) {
    pad_pending_ = true;
    pad_offset_ = offset;
  }
  if (carry_n_ == kQuantumChars) {
    if (pad_pending_) {
      *written += decode_padded(carry_, out + *written);
      done_ = true;
      pad_pending_ = false;
    } else {
      // All four characters were validated above, so this cannot stop.
      *written += kQuantumBytes * decode_bulk(carry_, 1, out + *written);
    }
    carry_n_ = 0;
  }
  return true;
}

DecodeStatus StreamDecoder::update(std::span<const char> in, uint8_t* out) {
  if (failed_) {
    DecodeStatus s = failure_;
    s.written = 0;
    return s;
  }
  size_t written = 0;
  size_t pos = 0;
  const size_t n = in.size();
  // Complete a quantum carried over from the previous call.
  while (carry_n_ > 0 && pos < n) {
    if (!push_char(in[pos++], out, &written)) {
      failure_.written = written;
      return failure_;
    }
  }
  // Bulk: whole quanta straight from the caller's buffer.
  if (!done_ && carry_n_ == 0) {
    const size_t quanta = (n - pos) / kQuantumChars;
    const size_t done = decode_bulk(in.data() + pos, quanta, out + written);
    written += done * kQuantumBytes;
    pos += done * kQuantumChars;
    consumed_ += done * kQuantumChars;
  }
  // The tail (< 4 chars), or the quantum the bulk path stopped at and what
  // follows it; the state machine fails within a few characters there.
  while (pos < n) {
    if (!push_char(in[pos++], out, &written)) {
      failure_.written = written;
      return failure_;
    }
  }
  DecodeStatus s;
  s.written = written;
  return s;
}

DecodeStatus StreamDecoder::finish(uint8_t* /*out*/) {
  if (failed_) {
    DecodeStatus s = failure_;
    s.written = 0;
    return s;
  }
  if (carry_n_ != 0) {
    failed_ = true;
    failure_ = DecodeStatus{};
    failure_.ok = false;
    failure_.error_offset = consumed_;
    failure_.error = "truncated base64 (" + std::to_string(consumed_) + " characters)";
    return failure_;
  }
  return DecodeStatus{};
}

}  // namespace detail
}  // namespace fsrv::codec
