#pragma once
// Chunk buffers for the transfer path. mmap-backed so their pages go back to
// the kernel when freed: the server's RSS tracks the chunks alive now, not
// the largest burst malloc ever saw.

#include <sys/mman.h>

#include <cstddef>
#include <new>
#include <utility>

namespace fsrv::reactor {

/// A fixed-size byte buffer of `capacity()` bytes; movable, not copyable.
class Buffer {
 public:
  Buffer() = default;
  /// Maps `capacity` bytes; throws std::bad_alloc if the kernel refuses.
  explicit Buffer(size_t capacity) : capacity_(capacity) {
    if (capacity == 0) return;
    void* p = mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    data_ = static_cast<char*>(p);
  }
  ~Buffer() {
    if (data_) munmap(data_, capacity_);
  }
  Buffer(Buffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), capacity_(std::exchange(other.capacity_, 0)) {}
  Buffer& operator=(Buffer&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(capacity_, other.capacity_);
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  char* data() { return data_; }
  const char* data() const { return data_; }
  unsigned char* bytes() { return reinterpret_cast<unsigned char*>(data_); }
  size_t capacity() const { return capacity_; }
  bool empty() const { return data_ == nullptr; }

 private:
  char* data_ = nullptr;
  size_t capacity_ = 0;
};

/// A per-thread scratch buffer of at least `capacity` bytes, for work
/// functions (raw file bytes before encoding, decoded bytes before pwrite).
/// One per pool thread, so it never crosses threads.
inline Buffer& thread_scratch(size_t capacity) {
  thread_local Buffer scratch;
  if (scratch.capacity() < capacity) scratch = Buffer(capacity);
  return scratch;
}

}  // namespace fsrv::reactor
