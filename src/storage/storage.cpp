#include "fsrv/storage/storage.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>  // renameat2, RENAME_NOREPLACE (glibc 2.28)
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "fsrv/codec/utf8.hpp"
#include "fsrv/core/limits.hpp"

namespace fsrv::storage {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

/// The word behind changes_anywhere(): shared with forked children, or
/// this process's own if the mapping cannot be made.
std::atomic<uint64_t>& change_counter() {
  static std::atomic<uint64_t>* counter = [] {
    static_assert(std::atomic<uint64_t>::is_always_lock_free);  // usable across processes
    void* p = mmap(nullptr, sizeof(std::atomic<uint64_t>), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    static std::atomic<uint64_t> local{0};
    return p == MAP_FAILED ? &local : new (p) std::atomic<uint64_t>(0);
  }();
  return *counter;
}

/// Maps an errno of open/stat to a typed error (detail without the name:
/// each protocol words it, see include/fsrv/core/result.hpp).
Status lookup_error(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return Status::failure(Errc::kNotFound, "no such file");
    case ELOOP:
      return Status::failure(Errc::kNotRegular, "not a regular file");  // a symlink: never followed
    case EACCES:
    case EPERM:
      return Status::failure(Errc::kPermission, "permission denied");
    default:
      return Status::failure(Errc::kIo, "cannot open: " + errno_text(err));
  }
}

/// Maps a write-side errno to a typed error.
Status write_error(int err) {
  if (err == ENOSPC || err == EDQUOT) return Status::failure(Errc::kNoSpace, "disk full");
  return Status::failure(Errc::kIo, std::string("write failed: ") + errno_text(err));
}

/// Stats `name` without following links and checks it is a regular file.
Result<struct stat> stat_regular(int root_fd, const std::string& name) {
  if (std::string why = validate_name(name); !why.empty()) {
    return Result<struct stat>::failure(Errc::kInvalidName, why);
  }
  Result<struct stat> r;
  if (fstatat(root_fd, name.c_str(), &r.value, AT_SYMLINK_NOFOLLOW) != 0) {
    return Result<struct stat>::failure(lookup_error(errno));
  }
  if (!S_ISREG(r.value.st_mode)) {
    return Result<struct stat>::failure(Errc::kNotRegular, "not a regular file");
  }
  return r;
}

/// Maps an errno of creating an upload's temporary file to a typed error.
Status temp_error(int err) {
  if (err == ENOSPC || err == EDQUOT) return Status::failure(Errc::kNoSpace, "disk full");
  return Status::failure(Errc::kIo, "cannot create temporary file: " + errno_text(err));
}

std::atomic<uint64_t> g_temp_counter{0};

#if defined(__SANITIZE_THREAD__)
// In the runtime, not declared by GCC 12's sanitizer headers.
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
extern "C" void __sanitizer_syscall_pre_impl_close(long fd);
#endif

// ThreadSanitizer models a descriptor number as a memory word, but GCC 12's
// runtime does not intercept openat and libuv closes its sockets with
// syscall(SYS_close): TSan sees neither a client socket's number freed by
// one event loop nor its reuse by openat on a pool thread. With several
// loops (thread mode's --loops) no lock orders that loop before a pool
// thread serving another loop, so the file's fstat, pread or close was
// reported as racing with the first loop's last use of the old socket. The
// kernel orders them (the number is free before openat returns it). Under
// TSan, opened() tells the runtime the number starts afresh (its close
// model, unchecked) and close_opened() leaves its own close(2) unchecked;
// nothing else is ignored.

/// `fd` from openat(2), after telling TSan it is a new descriptor.
int opened(int fd) {
#if defined(__SANITIZE_THREAD__)
  if (fd >= 0) {
    __tsan_ignore_thread_begin();
    __sanitizer_syscall_pre_impl_close(fd);
    __tsan_ignore_thread_end();
  }
#endif
  return fd;
}

/// Closes a descriptor this module opened with openat(2) (see above).
void close_opened(int fd) {
#if defined(__SANITIZE_THREAD__)
  __tsan_ignore_thread_begin();
#endif
  ::close(fd);
#if defined(__SANITIZE_THREAD__)
  __tsan_ignore_thread_end();
#endif
}

/// A fresh hidden temporary name, ".upload-NODE-PID-N.tmp": the leading dot
/// keeps it out of LIST and out of reach of any request (validate_name
/// refuses it); NODE says which machine's PID it is (several nodes share
/// one root on a cluster file system).
std::string temp_name(const std::string& node) {
  return ".upload-" + node + "-" + std::to_string(getpid()) + "-" +
         std::to_string(++g_temp_counter) + ".tmp";
}

/// A node id as it appears in temporary names: bytes outside
/// [A-Za-z0-9_.] become '_', so the name never holds a '-' or a '/'
/// and parses back unambiguously.
std::string sanitize_node(std::string_view id) {
  std::string out;
  for (char c : id.substr(0, kMaxNodeIdBytes)) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.';
    out.push_back(ok ? c : '_');
  }
  return out.empty() ? std::string("node") : out;
}

}  // namespace

std::string validate_name(std::string_view name) {
  if (name.empty()) return "empty name";
  if (name == "." || name == "..") return "'.' and '..' are not file names";
  if (name.size() > limits::kMaxName) return "name longer than 255 bytes";
  for (char ch : name) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '/' || c == '\\') return "names may not contain '/' or '\\'";
    if (c < 0x20 || c == 0x7F) return "names may not contain control characters";
  }
  if (name[0] == '.') return "names may not start with '.'";
  if (!codec::valid_utf8(name)) return "name is not valid UTF-8";
  return "";
}

/// The kernel stamps directory mtimes with a coarse clock (a few ms): a
/// snapshot taken within this much of the mtime could miss a later change
/// stamped with the same time, so it is not reused.
constexpr int64_t kListingSettleNs = 50'000'000;

struct Root::ListingCache {
  std::mutex mu;
  std::shared_ptr<const std::vector<std::string>> names;
  struct timespec mtime {};
  int64_t taken_ns = 0;
  uint64_t generation = 0;  ///< changes_anywhere() when taken
};

// ---------------------------------------------------------------- ReadFile

ReadFile::~ReadFile() {
  if (fd_ >= 0) close_opened(fd_);
}

ReadFile& ReadFile::operator=(ReadFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close_opened(fd_);
    fd_ = std::exchange(o.fd_, -1);
    size_ = std::exchange(o.size_, 0);
    mtime_ns_ = std::exchange(o.mtime_ns_, 0);
  }
  return *this;
}

Result<size_t> ReadFile::read_at(std::span<uint8_t> out, uint64_t offset) const {
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = pread(fd_, out.data() + got, out.size() - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Result<size_t>::failure(Errc::kIo, "read failed: " + errno_text(errno));
    if (n == 0) break;  // end of file (it may have shrunk since open)
    got += static_cast<size_t>(n);
  }
  Result<size_t> r;
  r.value = got;
  return r;
}

// ---------------------------------------------------------------- UploadFile

UploadFile::UploadFile(int root_fd, int fd, std::string temp_name, const Root* owner)
    : root_fd_(root_fd), fd_(fd), temp_name_(std::move(temp_name)), owner_(owner) {}

UploadFile::~UploadFile() { abort(); }

Status UploadFile::write_at(std::span<const uint8_t> data, uint64_t offset) {
  while (!data.empty()) {
    ssize_t n = pwrite(fd_, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return write_error(errno);
    }
    data = data.subspan(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return {};
}

void UploadFile::start_writeback(uint64_t offset, uint64_t len) {
  if (fd_ >= 0) {
    sync_file_range(fd_, static_cast<off_t>(offset), static_cast<off_t>(len),
                    SYNC_FILE_RANGE_WRITE);
  }
}

Status UploadFile::commit(const std::string& name, bool replace) {
  if (fd_ < 0) return Status::failure(Errc::kIo, "upload already finished");
  if (fsync(fd_) != 0) return write_error(errno);
  std::string temp = temp_name_;
  if (temp.empty()) {
    // O_TMPFILE: give the inode a hidden name first, then rename it over the
    // target (linkat cannot replace an existing name; renameat can, atomically).
    temp = temp_name(owner_ ? owner_->node_id() : default_node_id());
    std::string proc = "/proc/self/fd/" + std::to_string(fd_);
    if (linkat(AT_FDCWD, proc.c_str(), root_fd_, temp.c_str(), AT_SYMLINK_FOLLOW) != 0 &&
        linkat(fd_, "", root_fd_, temp.c_str(), AT_EMPTY_PATH) != 0) {
      return write_error(errno);
    }
    temp_name_ = temp;  // from here on abort() must unlink it
  }
  // RENAME_NOREPLACE first: its EEXIST tells whether the name existed, and
  // only then (replace) the plain rename puts the file over it.
  // A file system without the flag (EINVAL, e.g. some FUSE mounts) falls
  // back to a stat before the plain rename: right unless another upload
  // of the same name lands in between.
  int rc = renameat2(root_fd_, temp.c_str(), root_fd_, name.c_str(), RENAME_NOREPLACE);
  if (rc != 0 && replace && (errno == EEXIST || errno == EINVAL)) {
    struct stat st;
    bool existed =
        errno == EEXIST || fstatat(root_fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    rc = renameat2(root_fd_, temp.c_str(), root_fd_, name.c_str(), 0);
    replaced_ = rc == 0 && existed;
  }
  if (rc != 0) {
    int err = errno;
    if (err == EEXIST) return Status::failure(Errc::kExists, "file exists");
    return err == EISDIR ? Status::failure(Errc::kNotRegular, "cannot replace a directory")
                         : write_error(err);
  }
  temp_name_.clear();
  if (owner_) owner_->changed();
  fsync(root_fd_);  // make the rename durable (best effort: some fs refuse)
  close_opened(fd_);
  fd_ = -1;
  return {};
}

void UploadFile::abort() {
  if (!temp_name_.empty()) {
    unlinkat(root_fd_, temp_name_.c_str(), 0);
    temp_name_.clear();
  }
  if (fd_ >= 0) {
    close_opened(fd_);
    fd_ = -1;
  }
}

// ---------------------------------------------------------------- Root

uint64_t changes_anywhere() { return change_counter().load(); }

std::unique_ptr<Root> Root::open(const std::string& path, std::string* error) {
  change_counter();  // made before the prefork master forks
  if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    *error = "cannot create " + path + ": " + errno_text(errno);
    return nullptr;
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    *error = "cannot open " + path + ": " + errno_text(errno);
    return nullptr;
  }
  return std::unique_ptr<Root>(new Root(fd, path));
}

Root::Root(int fd, std::string path)
    : fd_(fd),
      path_(std::move(path)),
      node_id_(default_node_id()),
      cache_(std::make_unique<ListingCache>()) {}

void Root::set_node_id(std::string_view id) { node_id_ = sanitize_node(id); }

std::string default_node_id() {
  static const std::string id = [] {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "host");
    // The boot id changes at every boot (proc(5): /proc/sys/kernel/random/boot_id).
    std::string boot;
    if (FILE* f = std::fopen("/proc/sys/kernel/random/boot_id", "r")) {
      char buf[64] = {};
      if (std::fgets(buf, sizeof buf, f)) boot.assign(buf, std::strcspn(buf, "-\n"));
      std::fclose(f);
    }
    return sanitize_node(std::string(host) + "_" + boot);
  }();
  return id;
}

Root::~Root() { close(fd_); }

void Root::changed() const { change_counter().fetch_add(1); }

Result<std::shared_ptr<const std::vector<std::string>>> Root::list_shared() const {
  using R = Result<std::shared_ptr<const std::vector<std::string>>>;
  struct stat st;
  if (fstat(fd_, &st) != 0) return R::failure(Errc::kIo, "cannot list: " + errno_text(errno));
  ListingCache& c = *cache_;
  uint64_t gen = changes_anywhere();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    int64_t mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
    if (c.names && c.generation == gen && c.mtime.tv_sec == st.st_mtim.tv_sec &&
        c.mtime.tv_nsec == st.st_mtim.tv_nsec && c.taken_ns - mtime_ns > kListingSettleNs) {
      R r;
      r.value = c.names;
      return r;
    }
  }
  struct timespec now {};
  clock_gettime(CLOCK_REALTIME, &now);
  auto fresh = list();
  if (!fresh.ok()) return R::failure(fresh.status());
  auto names = std::make_shared<const std::vector<std::string>>(std::move(fresh.value));
  {
    std::lock_guard<std::mutex> lock(c.mu);
    c.names = names;
    c.mtime = st.st_mtim;
    c.taken_ns = int64_t{now.tv_sec} * 1000000000 + now.tv_nsec;
    c.generation = gen;
  }
  R r;
  r.value = std::move(names);
  return r;
}

Result<std::vector<std::string>> Root::list() const {
  Result<std::vector<std::string>> r;
  int dfd = opened(openat(fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  DIR* dir = dfd < 0 ? nullptr : fdopendir(dfd);
  if (!dir) {
    if (dfd >= 0) close_opened(dfd);
    return Result<std::vector<std::string>>::failure(Errc::kIo,
                                                     "cannot list: " + errno_text(errno));
  }
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;  // hidden, temporary, "." and ".."
    if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN) continue;
    struct stat st;
    if (fstatat(fd_, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
    if (!validate_name(e->d_name).empty()) continue;  // not servable anyway
    r.value.emplace_back(e->d_name);
  }
  closedir(dir);
  std::sort(r.value.begin(), r.value.end());
  return r;
}

Result<ReadFile> Root::open_read(const std::string& name) const {
  if (std::string why = validate_name(name); !why.empty()) {
    return Result<ReadFile>::failure(Errc::kInvalidName, why);
  }
  // O_NONBLOCK so a FIFO planted in the root cannot hang a pool thread.
  int fd =
      opened(openat(fd_, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (fd < 0) return Result<ReadFile>::failure(lookup_error(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close_opened(fd);
    return Result<ReadFile>::failure(Errc::kNotRegular, "not a regular file");
  }
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  Result<ReadFile> r;
  r.value = ReadFile(fd, static_cast<uint64_t>(st.st_size),
                     int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec);
  return r;
}

Result<uint64_t> Root::size(const std::string& name) const {
  auto st = stat_regular(fd_, name);
  if (!st.ok()) return Result<uint64_t>::failure(st.status());
  Result<uint64_t> r;
  r.value = static_cast<uint64_t>(st.value.st_size);
  return r;
}

Status Root::remove(const std::string& name) const {
  auto st = stat_regular(fd_, name);
  if (!st.ok()) return st.status();
  if (unlinkat(fd_, name.c_str(), 0) != 0) return lookup_error(errno);
  changed();
  return {};
}

int Root::remove_stale_temporaries() const {
  int dfd = opened(openat(fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  DIR* dir = dfd < 0 ? nullptr : fdopendir(dfd);
  if (!dir) {
    if (dfd >= 0) close_opened(dfd);
    return 0;
  }
  int removed = 0;
  while (dirent* e = readdir(dir)) {
    // Only our own pattern: ".upload-" NODE "-" PID "-" N ".tmp"
    // (temp_name()), or ".upload-" PID "-" N ".tmp" of older versions (taken
    // as this node's). Another node's PID means nothing here: its files stay.
    std::string_view n = e->d_name;
    constexpr std::string_view kPrefix = ".upload-", kSuffix = ".tmp";
    if (n.substr(0, kPrefix.size()) != kPrefix || n.size() <= kPrefix.size() + kSuffix.size() ||
        n.substr(n.size() - kSuffix.size()) != kSuffix) {
      continue;
    }
    std::string_view mid = n.substr(kPrefix.size(), n.size() - kPrefix.size() - kSuffix.size());
    const size_t last = mid.rfind('-');
    if (last == std::string_view::npos || last == 0) continue;
    const size_t before = mid.rfind('-', last - 1);
    std::string_view pid_text = mid.substr(0, last);
    if (before != std::string_view::npos) {
      if (mid.substr(0, before) != node_id_) continue;  // another node's
      pid_text = mid.substr(before + 1, last - before - 1);
    }
    std::string_view counter = mid.substr(last + 1);
    if (pid_text.empty() || counter.empty() ||
        pid_text.find_first_not_of("0123456789") != std::string_view::npos ||
        counter.find_first_not_of("0123456789") != std::string_view::npos) {
      continue;
    }
    long pid = std::strtol(std::string(pid_text).c_str(), nullptr, 10);
    if (pid <= 0 || (kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH)) continue;
    struct stat st;
    if (fstatat(fd_, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
        st.st_uid != geteuid()) {
      continue;
    }
    if (unlinkat(fd_, e->d_name, 0) == 0) ++removed;
  }
  closedir(dir);
  return removed;
}

Result<std::unique_ptr<UploadFile>> Root::begin_upload() const {
  using R = Result<std::unique_ptr<UploadFile>>;
  // FSRV_NO_TMPFILE=1 forces the named-temporary path (tests cover both).
  static const bool kNoTmpfile = getenv("FSRV_NO_TMPFILE") != nullptr;
  int fd = -1;
  if (!kNoTmpfile) fd = opened(openat(fd_, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0644));
  if (fd >= 0) {
    R r;
    r.value = std::make_unique<UploadFile>(fd_, fd, "", this);
    return r;
  }
  if (!kNoTmpfile && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
    return R::failure(temp_error(errno));
  }
  std::string temp = temp_name(node_id_);
  fd = opened(openat(fd_, temp.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (fd < 0) {
    return R::failure(temp_error(errno));
  }
  R r;
  r.value = std::make_unique<UploadFile>(fd_, fd, temp, this);
  return r;
}

}  // namespace fsrv::storage
