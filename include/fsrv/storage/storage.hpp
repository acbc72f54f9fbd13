#pragma once
// Storage: the root directory and every file operation in it. Owns the
// root's directory fd and the temporary files of uploads; never sees a socket.
//
// Every call here blocks (open, pread, pwrite, fsync, rename): run them from
// an executor's work function, never on the event loop.
//
// Safety: names are validated (validate_name) and everything is opened
// relative to the root's fd with O_NOFOLLOW, so neither "../x" nor a symlink
// placed in the root reaches outside it. Uploads go to an anonymous
// O_TMPFILE (or, where the filesystem lacks it, a hidden ".upload-*" file)
// that is linked over the target only after fsync, so an interrupted upload
// never replaces or corrupts the old file.

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fsrv/core/result.hpp"

namespace fsrv::storage {

/// Why `name` is not an acceptable file name, or "" if it is. Refused:
/// empty, "." or "..", '/' or '\\', NUL or other control characters, a
/// leading dot (hidden and temporary files), more than 255 bytes, invalid
/// UTF-8 (replies must be valid JSON text).
std::string validate_name(std::string_view name);

/// An open regular file for reading (RAII: closes on destruction; movable,
/// not copyable), with its size and modification time at open time. The fd
/// is exposed for sendfile(2) by the transfer layer.
class ReadFile {
 public:
  ReadFile() = default;
  ReadFile(int fd, uint64_t size, int64_t mtime_ns) : fd_(fd), size_(size), mtime_ns_(mtime_ns) {}
  ~ReadFile();
  ReadFile(ReadFile&& o) noexcept { *this = std::move(o); }
  ReadFile& operator=(ReadFile&& o) noexcept;
  ReadFile(const ReadFile&) = delete;
  ReadFile& operator=(const ReadFile&) = delete;

  /// Reads up to out.size() bytes at `offset` (pread loop, EINTR retried).
  /// Returns the bytes read: fewer than asked only at end of file (the file
  /// may have shrunk since open). Errors: kIo with strerror.
  Result<size_t> read_at(std::span<uint8_t> out, uint64_t offset) const;
  int fd() const { return fd_; }
  bool is_open() const { return fd_ >= 0; }
  uint64_t size() const { return size_; }
  /// Modification time in nanoseconds since the epoch.
  int64_t mtime_ns() const { return mtime_ns_; }

 private:
  int fd_ = -1;
  uint64_t size_ = 0;
  int64_t mtime_ns_ = 0;
};

/// An upload in progress: a temporary file in the root. Destroying it
/// without commit() removes it. Not thread-safe; one work item at a time.
class UploadFile {
 public:
  /// `owner` (may be null) is told when the commit changed the directory.
  UploadFile(int root_fd, int fd, std::string temp_name, const class Root* owner = nullptr);
  ~UploadFile();
  UploadFile(const UploadFile&) = delete;
  UploadFile& operator=(const UploadFile&) = delete;

  /// Writes all of `data` at `offset` (pwrite loop). Errors: kNoSpace,
  /// kIo ("write failed: <strerror>").
  Status write_at(std::span<const uint8_t> data, uint64_t offset);
  /// Starts writeback of [offset, offset + len) now (sync_file_range
  /// SYNC_FILE_RANGE_WRITE, a hint that does not wait), so the fsync of
  /// commit() finds little left to write. Best effort: errors are ignored
  /// (commit's fsync reports them).
  void start_writeback(uint64_t offset, uint64_t len);
  /// fsyncs the data, then atomically puts it in place of `name` (link +
  /// renameat) and fsyncs the directory. After success the object is inert.
  /// With `replace` false an existing `name` is kept and the commit fails
  /// with kExists (renameat2 RENAME_NOREPLACE: no window between the check
  /// and the rename).
  Status commit(const std::string& name, bool replace = true);
  /// After a successful commit(): whether it replaced an existing `name`
  /// (learnt by the rename itself, so no other upload can race the answer;
  /// HTTP's 201 against 204, RFC 9110 section 9.3.4).
  bool replaced() const { return replaced_; }
  /// Removes the temporary file now (idempotent).
  void abort();

 private:
  int root_fd_;
  int fd_;
  std::string temp_name_;  ///< "" for O_TMPFILE (nothing to unlink)
  const class Root* owner_;
  bool replaced_ = false;
};

/// Longest node id kept in temporary names, in bytes: a host name (64)
/// plus a boot id prefix, well inside NAME_MAX (255) with the rest of the name.
inline constexpr size_t kMaxNodeIdBytes = 100;

/// This machine's default node id: host name + "_" + the first group of the
/// kernel's boot id (/proc/sys/kernel/random/boot_id), so a PID in a
/// temporary name is only ever compared on the machine and boot that made it.
std::string default_node_id();

/// How many uploads were committed and files deleted through any Root of
/// this server, in any of its processes: one counter in shared anonymous
/// memory (mmap(2) MAP_SHARED | MAP_ANONYMOUS) made at the first call, so
/// processes forked after it count into the same word (Root::open makes
/// it, and the prefork master opens a Root before forking its workers).
/// A cache that skips revalidating an entry for a while compares it, so a
/// change made through the server is seen at once by every loop and worker
/// (SmallFileCache). Thread- and process-safe.
uint64_t changes_anywhere();

/// The served directory.
class Root {
 public:
  /// Opens (creating if missing, mode 0755) the directory at `path`.
  /// Returns null and sets *error if it cannot be opened as a directory.
  static std::unique_ptr<Root> open(const std::string& path, std::string* error);
  ~Root();
  /// Counts a change of the directory in changes_anywhere(), which the
  /// listing cache and the small-file caches compare (uploads and deletes
  /// through this Root call it themselves).
  void changed() const;
  Root(const Root&) = delete;
  Root& operator=(const Root&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

  /// Regular, non-hidden file names, sorted bytewise.
  Result<std::vector<std::string>> list() const;
  /// The same listing as a shared, immutable snapshot: connections listing
  /// an unchanged directory share one copy instead of building their own
  /// (30 clients pipelining LIST of 50,000 files took 510 MB with a copy
  /// each). A snapshot is reused only while nothing can have changed since:
  /// no upload or delete through any Root (changes_anywhere()), the
  /// directory's mtime is the same, and it was taken over kListingSettleNs
  /// after that mtime (the kernel's mtime has jiffy granularity).
  /// Thread-safe.
  Result<std::shared_ptr<const std::vector<std::string>>> list_shared() const;
  /// Opens a regular file for reading. Errors (detail protocol-neutral; the
  /// caller adds the name): kInvalidName (detail: the rule broken),
  /// kNotFound ("no such file"), kNotRegular ("not a regular file"; also a
  /// symlink, never followed), kPermission ("permission denied"), kIo.
  Result<ReadFile> open_read(const std::string& name) const;
  /// Size in bytes of a regular file (same errors as open_read).
  Result<uint64_t> size(const std::string& name) const;
  /// Deletes a regular file (same errors as open_read).
  Status remove(const std::string& name) const;
  /// Removes `.upload-NODE-PID-N.tmp` files (the named-temporary fallback)
  /// of THIS node (node_id()) whose process PID is no longer alive and that
  /// belong to this user: what a crashed server left behind. Another node's
  /// temporaries on a shared root are left alone (its PIDs mean nothing
  /// here; it may be uploading now). Older `.upload-PID-N.tmp` names count
  /// as this node's. Returns how many were removed.
  int remove_stale_temporaries() const;
  /// This node's id in temporary names (default_node_id() until set;
  /// sanitised: bytes outside [A-Za-z0-9_.] become '_'). Set before serving.
  void set_node_id(std::string_view id);
  const std::string& node_id() const { return node_id_; }
  /// Starts an upload (the name is validated by the caller before the
  /// payload arrives; commit() takes it). Errors: kNoSpace, kIo.
  Result<std::unique_ptr<UploadFile>> begin_upload() const;

 private:
  Root(int fd, std::string path);
  int fd_;
  std::string path_;
  std::string node_id_;
  /// The cached listing (list_shared) and what it was taken under.
  struct ListingCache;
  std::unique_ptr<ListingCache> cache_;
};

}  // namespace fsrv::storage
