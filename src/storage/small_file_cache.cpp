// Small files kept in memory by one event loop, revalidated by a stat
// outside their validity window (include/fsrv/storage/small_file_cache.hpp).

#include "fsrv/storage/small_file_cache.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <ctime>

namespace fsrv::storage {

namespace {

FileStamp stamp_of(const struct stat& st) {
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
          static_cast<uint32_t>(st.st_mode), static_cast<uint64_t>(st.st_size),
          int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec};
}

int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

/// The coarse monotonic clock (the vDSO's, no system call; a few ms of
/// resolution, enough for a window of a second).
int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

}  // namespace

std::shared_ptr<const CachedFile> SmallFileCache::find(const std::string& name) {
  auto it = map_.find(name);
  if (it == map_.end()) return nullptr;
  Slot& slot = it->second;
  // The count is read before the stat: a change the stat misses bumps it
  // after, so the next lookup stats again.
  const uint64_t changes = changes_anywhere();
  const int64_t now = monotonic_ns();
  if (slot.checked_ns < 0 || slot.seen_changes != changes || now - slot.checked_ns >= valid_ns_) {
    struct stat st;
    if (fstatat(root_.fd(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !(stamp_of(st) == slot.file->stamp)) {
      drop(it);
      return nullptr;
    }
    slot.checked_ns = now;
    slot.seen_changes = changes;
  }
  lru_.splice(lru_.begin(), lru_, slot.lru);
  return slot.file;
}

std::shared_ptr<const CachedFile> SmallFileCache::load(const ReadFile& f) {
  if (!f.is_open() || f.size() > kMaxFileBytes) return nullptr;
  auto out = std::make_shared<CachedFile>();
  out->data.resize(f.size());
  auto r = f.read_at({reinterpret_cast<uint8_t*>(out->data.data()), out->data.size()}, 0);
  struct stat st;
  if (!r.ok() || r.value != out->data.size() || fstat(f.fd(), &st) != 0) return nullptr;
  out->stamp = stamp_of(st);
  // Unchanged while read (the stamp taken at open), and settled.
  if (out->stamp.size != f.size() || out->stamp.mtime_ns != f.mtime_ns() || !S_ISREG(st.st_mode) ||
      now_ns() - out->stamp.mtime_ns < kSettleNs) {
    return nullptr;
  }
  return out;
}

void SmallFileCache::insert(const std::string& name, std::shared_ptr<const CachedFile> file) {
  if (!file || file->data.size() > budget_) return;
  if (auto it = map_.find(name); it != map_.end()) drop(it);
  lru_.push_front(name);
  bytes_ += file->data.size();
  map_.emplace(name, Slot{std::move(file), lru_.begin()});
  while (bytes_ > budget_ && !lru_.empty()) drop(map_.find(lru_.back()));
}

void SmallFileCache::erase(const std::string& name) {
  if (auto it = map_.find(name); it != map_.end()) drop(it);
}

void SmallFileCache::drop(std::unordered_map<std::string, Slot>::iterator it) {
  bytes_ -= it->second.file->data.size();
  lru_.erase(it->second.lru);
  map_.erase(it);
}

}  // namespace fsrv::storage
