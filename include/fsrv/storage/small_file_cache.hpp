#pragma once
// Storage: small files kept in memory by one event loop, so a GET of a
// small, unchanged file costs no system call (or one fstatat(2)) on the
// loop instead of an executor round trip for open, fstat, pread and close
// (nginx's open_file_cache plays the same part).
//
// An entry is served only while the file on disk is still the one it was
// read from: a lookup stats the name (no symlink followed) and compares
// device, inode, mode, size and modification time. A lookup skips that
// stat while the entry was checked less than the cache's validity window
// ago (--http-file-cache-valid; nginx's open_file_cache_valid) and nothing
// was uploaded or deleted through the server since (changes_anywhere(): a
// counter every worker process shares). So a change made through any
// service, loop or worker is seen by the next request; a change made on
// disk by another program (or another machine on a shared root) is seen
// within the window; a window of 0 stats every lookup. An upload replaces
// the file by rename (a new inode) and a delete makes the stat fail; the
// owner also erases names it uploads or deletes itself. A file modified
// less than kSettleNs ago is not cached (the kernel's mtime advances by
// clock ticks: a second write within one tick would leave the same stamp).
//
// Bounded in bytes (least recently used entries are dropped first). Not
// thread-safe: one cache per event loop; load() alone runs on the executor.

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>

#include "fsrv/core/result.hpp"
#include "fsrv/storage/storage.hpp"

namespace fsrv::storage {

/// What identifies one version of a file (stat(2) fields).
struct FileStamp {
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint32_t mode = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;  ///< nanoseconds since the epoch
  bool operator==(const FileStamp&) const = default;
};

/// One cached file: its bytes and the stamp they were read under.
struct CachedFile {
  FileStamp stamp;
  std::string data;
  /// Text the cache's user derives from the stamp, made once at its first
  /// use (the http service: its ETag and Last-Modified values). Loop thread.
  mutable std::string derived;
};

class SmallFileCache {
 public:
  /// Largest file cached: the http service's inline reply size, so a
  /// cached file never takes more memory than the reply built from it.
  static constexpr uint64_t kMaxFileBytes = 64 * 1024;
  /// Bytes of file data per cache (per loop): 8 MiB holds 2,048 files of
  /// 4 KiB, a site's static assets, and stays small beside a transfer's
  /// chunk buffers.
  static constexpr size_t kDefaultBudget = 8 << 20;
  /// Files modified this recently are not cached (mtime granularity: one
  /// clock tick, at most 10 ms at HZ=100; one second is generous).
  static constexpr int64_t kSettleNs = 1000000000;
  /// Default validity window: a checked entry is served without a stat for
  /// this long unless the server changed a file meanwhile. One second: a
  /// file another program rewrites is served fresh within a second, and the
  /// stat is gone from all but one request per file, loop and second.
  static constexpr int64_t kDefaultValidNs = 1000000000;

  /// `valid_ns`: the validity window in nanoseconds (0: stat every lookup).
  explicit SmallFileCache(const Root& root, size_t budget = kDefaultBudget,
                          int64_t valid_ns = kDefaultValidNs)
      : root_(root), budget_(budget), valid_ns_(valid_ns) {}
  SmallFileCache(const SmallFileCache&) = delete;
  SmallFileCache& operator=(const SmallFileCache&) = delete;

  /// The cached file `name` if it is still the file on disk, checked by one
  /// fstatat(2) (AT_SYMLINK_NOFOLLOW, on the calling thread: served from
  /// the dentry and inode caches for a hot file) unless the entry is inside
  /// its validity window (above); null otherwise, the stale entry dropped.
  /// Loop thread.
  std::shared_ptr<const CachedFile> find(const std::string& name);

  /// Reads the opened file `f` (Root::open_read: the name is validated)
  /// whole for the cache: one pread, then an fstat. Returns null if the
  /// file is larger than kMaxFileBytes, changed while being read, was
  /// modified less than kSettleNs ago, or cannot be read (the caller then
  /// reads it its own way and reports errors). Blocking: executor thread.
  static std::shared_ptr<const CachedFile> load(const ReadFile& f);

  /// Keeps `file` under `name` (replacing an older entry), then drops the
  /// least recently used entries until the data fits the budget. Loop thread.
  void insert(const std::string& name, std::shared_ptr<const CachedFile> file);
  /// Drops `name` (after an upload or delete through the owner). Loop thread.
  void erase(const std::string& name);

  size_t bytes() const { return bytes_; }
  size_t entries() const { return map_.size(); }

 private:
  using Lru = std::list<std::string>;  ///< names, most recently used first
  struct Slot {
    std::shared_ptr<const CachedFile> file;
    Lru::iterator lru;
    int64_t checked_ns = -1;    ///< CLOCK_MONOTONIC of the last stat that matched; -1: none yet
    uint64_t seen_changes = 0;  ///< changes_anywhere() read just before that stat
  };
  void drop(std::unordered_map<std::string, Slot>::iterator it);

  const Root& root_;
  size_t budget_;
  int64_t valid_ns_;
  size_t bytes_ = 0;
  Lru lru_;
  std::unordered_map<std::string, Slot> map_;
};

}  // namespace fsrv::storage
