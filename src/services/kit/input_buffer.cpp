#include "fsrv/services/kit/input_buffer.hpp"

#include <cstring>

namespace fsrv::services::kit {

void InputBuffer::compact() {
  if (start_ == 0) return;
  std::memmove(data_.data(), data_.data() + start_, end_ - start_);
  end_ -= start_;
  start_ = 0;
}

std::span<char> InputBuffer::space(size_t min_room) {
  compact();
  if (data_.size() < end_ + min_room) data_.resize(end_ + min_room);
  return {data_.data() + end_, data_.size() - end_};
}

void InputBuffer::append(std::string_view data) {
  std::span<char> room = space(data.size());
  std::memcpy(room.data(), data.data(), data.size());
  produced(data.size());
}

bool InputBuffer::blank() const {
  for (char c : view()) {
    if (c != '\r' && c != '\n' && c != ' ' && c != '\t') return false;
  }
  return true;
}

}  // namespace fsrv::services::kit
