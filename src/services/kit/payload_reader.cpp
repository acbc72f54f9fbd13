#include "fsrv/services/kit/payload_reader.hpp"

#include <algorithm>

#include "fsrv/core/limits.hpp"
#include "fsrv/services/kit/parse.hpp"

namespace fsrv::services::kit {

void PayloadReader::start(std::shared_ptr<transfer::UploadSink> sink, PayloadEnd end) {
  sink_ = std::move(sink);
  end_ = end;
  active_ = true;
  into_sink_ = false;
  held_ = 0;
  taken_ = 0;
}

size_t PayloadReader::end_start(std::string_view data) const {
  switch (end_.kind) {
    case PayloadEnd::kCount:
      return end_.bytes - taken_ < data.size() ? static_cast<size_t>(end_.bytes - taken_)
                                               : std::string_view::npos;
    case PayloadEnd::kTerminator:
      return find_any(data, end_.text);
    case PayloadEnd::kMarker:
      return data.find(end_.text.front());
  }
  return std::string_view::npos;
}

std::span<char> PayloadReader::read_space() {
  into_sink_ = false;
  if (sink_ && in_.empty() && held_ == 0) {
    std::span<char> s = sink_->space();
    if (!s.empty()) {
      into_sink_ = true;
      if (end_.kind == PayloadEnd::kCount) {
        return s.first(static_cast<size_t>(std::min<uint64_t>(s.size(), end_.bytes - taken_)));
      }
      return s;
    }
  }
  return in_.space(limits::kLineBuffer);
}

void PayloadReader::take(std::string_view part) {
  taken_ += part.size();
  if (observe && !part.empty()) observe(part);
}

PayloadReader::Step PayloadReader::on_read(size_t n) {
  if (!into_sink_) {
    in_.produced(n);
    return feed();
  }
  into_sink_ = false;
  std::span<char> s = sink_->space();  // the span the read landed in
  std::string_view landed(s.data(), n);
  size_t t = end_start(landed);
  if (end_.kind == PayloadEnd::kCount || t == std::string_view::npos) {
    take(landed);
    sink_->produced(n);
    if (end_.kind == PayloadEnd::kCount && taken_ == end_.bytes) return finish();
    if (sink_->space().empty()) conn_.pause_reading();  // on_space -> feed()
    return Step::kMore;
  }
  // The end starts in this read: it and what follows go through the input
  // buffer (what follows the end is the next request).
  in_.append(landed.substr(t));
  take(landed.substr(0, t));
  sink_->produced(t);
  return feed();
}

PayloadReader::Step PayloadReader::feed() {
  while (active_) {
    if (end_.kind == PayloadEnd::kCount && taken_ == end_.bytes) return finish();
    std::string_view in = in_.view();
    if (in.empty()) break;
    if (held_ == 0) {
      size_t t = end_start(in);
      std::string_view part = in.substr(0, t == std::string_view::npos ? in.size() : t);
      size_t used = sink_ && !part.empty() ? sink_->feed(part) : part.size();
      take(part.substr(0, used));
      in_.consume(used);
      if (used < part.size()) {
        conn_.pause_reading();  // both buffers busy: on_space comes back here
        return Step::kMore;
      }
      if (t == std::string_view::npos || end_.kind == PayloadEnd::kCount) continue;
      if (end_.kind == PayloadEnd::kTerminator) {
        in_.consume(1);
        return finish();
      }
      in = in_.view();
    }
    // kMarker: match the marker, which may arrive in pieces.
    size_t n = std::min(in.size(), end_.text.size() - held_);
    if (in.substr(0, n) != end_.text.substr(held_, n)) {
      cancel();
      return Step::kBadMarker;
    }
    in_.consume(n);
    held_ += n;
    if (held_ == end_.text.size()) return finish();
  }
  if (active_) conn_.resume_reading();
  return Step::kMore;
}

PayloadReader::Step PayloadReader::finish() {
  active_ = false;
  held_ = 0;
  conn_.pause_reading();
  if (sink_) sink_->end();
  return Step::kDone;
}

void PayloadReader::cancel() {
  active_ = false;
  if (sink_) sink_->cancel();
  sink_.reset();
}

}  // namespace fsrv::services::kit
