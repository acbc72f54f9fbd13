// bin/stress: one row of the course's stress table (docs/STRESS.md).
//
// One run = one combination of operation x volume x client pool x server
// pool. It prepares a deterministic random file of the exact size (cached),
// starts C client workers (threads or forked processes) that each open their
// own connection and do one full GET or UPLOAD through the real protocol
// (fsrv::client), checks every transfer (xxHash of the content for downloads,
// the server's byte count for uploads), reads the server's STATS before and
// after, and prints one human line plus, with --csv, one CSV row.
//
// Volumes are in bytes; the course's "MB" is 10^6 bytes.
//
// --protocol raw runs the workers against the file-raw service (seed 000's
// raw-bytes dialect, --raw-port) instead of the base64 file protocol, so the
// grid can show what base64 costs; STATS, the preparatory upload, the
// verification and the clean-up still go through the file protocol on
// --port (both listeners serve the same root).

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fsrv/client/client.hpp"
#include "fsrv/codec/base64.hpp"

namespace {

namespace fs = std::filesystem;
using fsrv::client::Client;

/// Size of the chunks used to generate, hash and read the test file: big
/// enough to amortise syscalls, small enough to keep memory bounded.
constexpr size_t kChunkBytes = 1 << 20;
/// Longest failure reason kept per worker (the result lives in shared memory,
/// so it is a fixed-size array).
constexpr size_t kReasonBytes = 240;
/// Upper bound on --clients: 50 is the course's largest pool; 1000 leaves
/// room for experiments without risking fd or pid exhaustion.
constexpr int kMaxClients = 1000;
/// How long to wait for every worker to be spawned and parked at the start
/// barrier before giving up.
constexpr auto kSpawnTimeout = std::chrono::seconds(30);
/// After a row, how long the server may take to close the workers'
/// connections and count their commands in STATS.
constexpr auto kStatsSettleTimeout = std::chrono::seconds(5);
/// Once the server's active connections are back to the baseline, how long
/// to keep waiting for late command counts (failures counted after the
/// client already gave up).
constexpr auto kStatsGrace = std::chrono::milliseconds(500);
/// Poll interval of the bounded waits above.
constexpr auto kPollInterval = std::chrono::milliseconds(20);

/// Columns of the CSV row: the course's names first, then ours. Values are
/// raw numbers in the units docs/STRESS.md gives (s, B/s, bytes).
const std::vector<std::string> kCsvColumns = {
    "Nomor",
    "Operasi",
    "Volume",
    "Jumlah client worker pool",
    "Jumlah server worker pool",
    "Waktu total per client",
    "Throughput per client",
    "Client sukses",
    "Client gagal",
    "Server sukses",
    "Server gagal",
    "Server mode",
    "Client pool mode",
    "Volume bytes",
    "Waktu p50 per client",
    "Waktu max per client",
    "Throughput agregat",
    "Waktu row",
    "Status",
    "Alasan gagal",
};

/// Monotonic clock in nanoseconds; CLOCK_MONOTONIC is system-wide, so the
/// values of forked workers compare with the parent's.
int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

/// One worker's outcome. Plain data: in --pool process it lives in a shared
/// anonymous mapping written by the child.
struct WorkerResult {
  int32_t done = 0;                ///< 1 once the worker wrote its result
  int32_t ok = 0;                  ///< 1 if the transfer succeeded and was verified
  uint64_t bytes = 0;              ///< bytes successfully transferred (0 on failure)
  int64_t start_ns = 0;            ///< just before connect
  int64_t end_ns = 0;              ///< after the reply (or the failure)
  char reason[kReasonBytes] = {};  ///< empty on success
};

/// Start-barrier state, shared with forked workers: how many workers are
/// parked, and whether they must give up instead of starting (set when the
/// row cannot be started, e.g. a failed fork, before the release).
struct Barrier {
  std::atomic<int> ready{0};
  std::atomic<int> abort{0};
};

/// Shared state of one row, in one anonymous shared mapping (visible to
/// forked workers): the barrier, then `clients` results.
struct SharedBlock {
  Barrier* barrier = nullptr;
  WorkerResult* results = nullptr;
};
static_assert(std::atomic<int>::is_always_lock_free,
              "the barrier counter must work across processes");
static_assert(sizeof(Barrier) <= 64);
/// Offset of the results in the mapping (one cache line after the barrier).
constexpr size_t kResultsOffset = 64;

/// Stores a failure reason, truncated to kReasonBytes - 1 characters.
void set_reason(WorkerResult& r, const std::string& text) {
  std::snprintf(r.reason, sizeof r.reason, "%s", text.c_str());
}

/// Deterministic generator of the test content: splitmix64 seeded by the
/// size, so a size always maps to the same bytes (and xxHash).
class ContentGenerator {
 public:
  explicit ContentGenerator(uint64_t size)
      : state_(size * 0x9E3779B97F4A7C15ULL + 0x5354524553ULL) {}
  /// Fills `out` with the next bytes of the stream.
  void fill(std::span<uint8_t> out) {
    size_t i = 0;
    while (i < out.size()) {
      uint64_t v = next();
      size_t n = std::min<size_t>(8, out.size() - i);
      std::memcpy(out.data() + i, &v, n);
      i += n;
    }
  }

 private:
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  uint64_t state_;
};

/// xxHash3-64 of the generated content of `size` bytes (without a file).
uint64_t generated_hash(uint64_t size) {
  ContentGenerator gen(size);
  std::vector<uint8_t> buf(kChunkBytes);
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  for (uint64_t done = 0; done < size;) {
    size_t n = size_t(std::min<uint64_t>(kChunkBytes, size - done));
    gen.fill({buf.data(), n});
    XXH3_64bits_update(st, buf.data(), n);
    done += n;
  }
  uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

/// xxHash3-64 of a file's content; nullopt if it cannot be read.
std::optional<uint64_t> file_hash(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::vector<uint8_t> buf(kChunkBytes);
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  bool ok = true;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ok = false;
      break;
    }
    if (n == 0) break;
    XXH3_64bits_update(st, buf.data(), size_t(n));
  }
  ::close(fd);
  uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  if (!ok) return std::nullopt;
  return h;
}

/// The cache folder: --cache-dir, else $XDG_CACHE_HOME/fsrv-stress, else
/// /tmp/fsrv-stress-cache.
fs::path cache_dir(const std::string& option) {
  if (!option.empty()) return option;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return fs::path(xdg) / "fsrv-stress";
  return "/tmp/fsrv-stress-cache";
}

/// Test file of `size` bytes and its xxHash. Reuses the cached file when its
/// size and hash match the deterministic content, else (re)writes it through
/// a temporary name and rename(), so concurrent runs never see half a file.
/// Throws std::runtime_error on I/O failure.
struct TestFile {
  fs::path path;
  uint64_t size = 0;
  uint64_t hash = 0;
};

TestFile prepare_file(const fs::path& dir, uint64_t size) {
  TestFile tf{dir / ("stress-" + std::to_string(size) + ".bin"), size, generated_hash(size)};
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create cache dir " + dir.string() + ": " + ec.message());
  if (fs::exists(tf.path, ec) && fs::file_size(tf.path, ec) == size && !ec) {
    if (auto h = file_hash(tf.path); h && *h == tf.hash) return tf;
  }
  fs::path tmp = tf.path;
  tmp += ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw std::runtime_error("cannot write " + tmp.string() + ": " + std::strerror(errno));
  ContentGenerator gen(size);
  std::vector<uint8_t> buf(kChunkBytes);
  for (uint64_t done = 0; done < size;) {
    size_t n = size_t(std::min<uint64_t>(kChunkBytes, size - done));
    gen.fill({buf.data(), n});
    for (size_t off = 0; off < n;) {
      ssize_t w = ::write(fd, buf.data() + off, n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        int e = errno;
        ::close(fd);
        fs::remove(tmp, ec);
        throw std::runtime_error("cannot write " + tmp.string() + ": " + std::strerror(e));
      }
      off += size_t(w);
    }
    done += n;
  }
  ::close(fd);
  fs::rename(tmp, tf.path, ec);
  if (ec) throw std::runtime_error("cannot rename " + tmp.string() + ": " + ec.message());
  return tf;
}

/// What one row needs to know; filled from the command line.
struct Config {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string op;  ///< "download" or "upload"
  uint64_t size = 0;
  int clients = 1;
  std::string pool = "thread";  ///< client pool: "thread" or "process"
  int server_workers = 0;       ///< 0: take pool_size from STATS
  std::string codec_name = "fast";
  fsrv::codec::Base64Kind codec = fsrv::codec::Base64Kind::kFast;
  std::string csv;
  int row = 0;
  std::string mode_label;  ///< server mode; empty: take it from STATS
  std::string cache;
  int io_timeout_ms = 60000;
  bool verify_uploads = false;
  bool keep_uploads = false;
  std::string skip_reason;
  bool prepare_only = false;
  std::string protocol = "file";  ///< the workers' protocol: "file" (base64) or "raw"
  uint16_t raw_port = 0;          ///< --protocol raw: the file-raw listener
};

/// Client options (address, codec, per-I/O timeout) of every connection.
fsrv::client::Options client_options(const Config& c) {
  fsrv::client::Options o;
  o.host = c.host;
  o.port = c.port;
  o.codec = c.codec;
  o.timeout_ms = c.io_timeout_ms;
  return o;
}

/// Short name of an error kind, used as the prefix of failure reasons.
std::string kind_name(fsrv::client::ErrorKind k) {
  switch (k) {
    case fsrv::client::ErrorKind::kNone:
      return "ok";
    case fsrv::client::ErrorKind::kServer:
      return "server";
    case fsrv::client::ErrorKind::kConnection:
      return "connection";
    case fsrv::client::ErrorKind::kProtocol:
      return "protocol";
    case fsrv::client::ErrorKind::kLocal:
      return "local";
  }
  return "?";
}

/// Name under which the download rows' source file lives on the server.
std::string download_name(uint64_t size) { return "stress-dl-" + std::to_string(size) + ".bin"; }

/// The stress run's pid, taken once in main(): forked workers must name
/// their uploads after the run, not after themselves.
pid_t g_run_pid = 0;

/// Distinct upload name of worker i of this run (no two workers race, nor
/// two concurrent stress runs).
std::string upload_name(uint64_t size, int i) {
  return "stress-up-" + std::to_string(size) + "-" + std::to_string(g_run_pid) + "-" +
         std::to_string(i) + ".bin";
}

/// Reads a file's bytes as an upload source; counts what it gave.
fsrv::client::SourceFn file_source(int fd) {
  return [fd](std::span<uint8_t> out) -> long {
    for (;;) {
      ssize_t n = ::read(fd, out.data(), out.size());
      if (n < 0 && errno == EINTR) continue;
      return n < 0 ? -1 : long(n);
    }
  };
}

/// Extracts N from the upload reply's data "name uploaded (N bytes)" (the
/// last "(N bytes)" in it). No std::regex: GCC 12 warns inside it under ASan.
std::optional<uint64_t> uploaded_bytes(const std::string& json) {
  std::string data = json;
  if (cJSON* root = cJSON_Parse(json.c_str())) {
    if (const cJSON* d = cJSON_GetObjectItemCaseSensitive(root, "data"); cJSON_IsString(d))
      data = d->valuestring;
    cJSON_Delete(root);
  }
  static constexpr std::string_view kSuffix = " bytes)";
  auto end = data.rfind(kSuffix);
  if (end == std::string::npos) return std::nullopt;
  auto open = data.rfind('(', end);
  if (open == std::string::npos || open + 1 == end) return std::nullopt;
  std::string digits = data.substr(open + 1, end - open - 1);
  if (digits.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::strtoull(digits.c_str(), nullptr, 10);
}

/// GETs `name` streaming, hashing as bytes arrive. Returns "" when the
/// content is exactly the expected size and hash, else the reason.
std::string get_and_verify(Client& client, const std::string& name, uint64_t size, uint64_t hash,
                           uint64_t* bytes_out) {
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  uint64_t got = 0;
  auto result = client.get(name, [&](std::span<const uint8_t> data) {
    XXH3_64bits_update(st, data.data(), data.size());
    got += data.size();
    return got <= size;  // more than the size: abort, it cannot be right
  });
  uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  if (!result.ok()) return kind_name(result.kind) + ": " + result.message;
  if (got != size)
    return "wrong size: got " + std::to_string(got) + " of " + std::to_string(size) + " bytes";
  if (h != hash) return "content hash mismatch";
  *bytes_out = got;
  return "";
}

// ---------------------------------------------------------------- file-raw

/// A blocking connection to the file-raw service (docs/services/file-raw.md)
/// with per-I/O timeouts; -1 with *error set on failure.
int raw_connect(const Config& cfg, std::string* error) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(cfg.raw_port);
  if (int rc = ::getaddrinfo(cfg.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    *error = gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = res; a; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  if (fd < 0) {
    *error = std::string("connect: ") + std::strerror(errno);
    return -1;
  }
  timeval tv{cfg.io_timeout_ms / 1000, (cfg.io_timeout_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

/// Sends every byte; false on error.
bool raw_send(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(size_t(n));
  }
  return true;
}

/// Reads one "\r\n"-ended line into *line; bytes read past it stay in *rest.
std::string raw_read_line(int fd, std::string* line, std::string* rest) {
  char buf[4096];
  for (;;) {
    if (size_t at = rest->find("\r\n"); at != std::string::npos) {
      *line = rest->substr(0, at);
      rest->erase(0, at + 2);
      return "";
    }
    if (rest->size() > 4096) return "protocol: reply line too long";
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return "connection: closed before the end of a reply line";
    if (n < 0) return std::string("connection: ") + std::strerror(errno);
    rest->append(buf, size_t(n));
  }
}

/// DOWNLOADs `name` from file-raw, hashing as bytes arrive. Returns "" when
/// the content is exactly the expected size and hash, else the reason.
std::string raw_download(const Config& cfg, const std::string& name, uint64_t size, uint64_t hash,
                         uint64_t* bytes_out) {
  std::string error;
  int fd = raw_connect(cfg, &error);
  if (fd < 0) return "connect: " + error;
  std::string line, rest;
  std::string why = raw_send(fd, "DOWNLOAD " + name + "\r\n")
                        ? raw_read_line(fd, &line, &rest)
                        : std::string("connection: send failed");
  if (why.empty() && (line.empty() || line.find_first_not_of("0123456789") != std::string::npos))
    why = "server: " + line;
  if (why.empty() && std::strtoull(line.c_str(), nullptr, 10) != size)
    why = "wrong size: server announced " + line + " of " + std::to_string(size) + " bytes";
  if (!why.empty()) {
    ::close(fd);
    return why;
  }
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  uint64_t got = std::min<uint64_t>(rest.size(), size);
  XXH3_64bits_update(st, rest.data(), size_t(got));
  std::vector<char> buf(kChunkBytes);
  while (got < size) {
    ssize_t n = ::recv(fd, buf.data(), size_t(std::min<uint64_t>(buf.size(), size - got)), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      why = n == 0 ? "connection: closed mid-file"
                   : std::string("connection: ") + std::strerror(errno);
      break;
    }
    XXH3_64bits_update(st, buf.data(), size_t(n));
    got += uint64_t(n);
  }
  ::close(fd);
  uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  if (!why.empty()) return why;
  if (h != hash) return "content hash mismatch";
  *bytes_out = got;
  return "";
}

/// UPLOADs the test file to file-raw with sendfile(2); returns "" when the
/// server's reply counts every byte, else the reason.
std::string raw_upload(const Config& cfg, const std::string& name, const TestFile& tf) {
  int file = ::open(tf.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file < 0) return std::string("local: cannot open test file: ") + std::strerror(errno);
  std::string error;
  int fd = raw_connect(cfg, &error);
  if (fd < 0) {
    ::close(file);
    return "connect: " + error;
  }
  std::string why;
  if (!raw_send(fd, "UPLOAD " + name + " " + std::to_string(tf.size) + "\r\n")) {
    why = "connection: send failed";
  }
  off_t off = 0;
  while (why.empty() && uint64_t(off) < tf.size) {
    ssize_t n =
        ::sendfile(fd, file, &off, size_t(std::min<uint64_t>(tf.size - uint64_t(off), 1 << 30)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      why = std::string("connection: sendfile: ") + (n == 0 ? "file shrank" : std::strerror(errno));
  }
  ::close(file);
  std::string line, rest;
  if (why.empty()) why = raw_read_line(fd, &line, &rest);
  ::close(fd);
  if (!why.empty()) return why;
  if (line.rfind("OK ", 0) != 0) return "server: " + line;
  auto n = uploaded_bytes(line);
  if (!n) return "protocol: upload reply without a byte count: " + line.substr(0, 100);
  if (*n != tf.size)
    return "server stored " + std::to_string(*n) + " of " + std::to_string(tf.size) + " bytes";
  return "";
}

/// One worker's operation over file-raw.
void run_raw_worker(const Config& cfg, const TestFile& tf, int i, WorkerResult* r) {
  if (cfg.op == "download") {
    uint64_t bytes = 0;
    std::string why = raw_download(cfg, download_name(cfg.size), tf.size, tf.hash, &bytes);
    if (why.empty()) {
      r->ok = 1;
      r->bytes = bytes;
    } else {
      set_reason(*r, why);
    }
    return;
  }
  std::string why = raw_upload(cfg, upload_name(cfg.size, i), tf);
  if (why.empty()) {
    r->ok = 1;
    r->bytes = tf.size;
  } else {
    set_reason(*r, why);
  }
}

/// Runs worker i: waits at the start barrier (EOF on go_fd), then connects
/// and does one operation, writing the outcome into *r.
void run_worker(const Config& cfg, const TestFile& tf, int i, int go_fd, Barrier& barrier,
                WorkerResult* r) {
  barrier.ready.fetch_add(1);
  char c;
  while (::read(go_fd, &c, 1) < 0 && errno == EINTR) {
  }
  r->start_ns = now_ns();
  if (barrier.abort.load()) {
    set_reason(*r, "aborted before the start");
    r->end_ns = r->start_ns;
    r->done = 1;
    return;
  }
  if (cfg.protocol == "raw") {
    run_raw_worker(cfg, tf, i, r);
    r->end_ns = now_ns();
    r->done = 1;
    return;
  }
  std::string error;
  auto client = Client::connect(client_options(cfg), &error);
  if (!client) {
    set_reason(*r, "connect: " + error);
  } else if (cfg.op == "download") {
    uint64_t bytes = 0;
    std::string why = get_and_verify(*client, download_name(cfg.size), tf.size, tf.hash, &bytes);
    if (why.empty()) {
      r->ok = 1;
      r->bytes = bytes;
    } else {
      set_reason(*r, why);
    }
  } else {
    int fd = ::open(tf.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      set_reason(*r, std::string("local: cannot open test file: ") + std::strerror(errno));
    } else {
      auto result = client->upload(upload_name(cfg.size, i), tf.size, file_source(fd));
      ::close(fd);
      if (!result.ok()) {
        set_reason(*r, kind_name(result.kind) + ": " + result.message);
      } else if (auto n = uploaded_bytes(result.json); !n) {
        set_reason(*r,
                   "protocol: upload reply without a byte count: " + result.json.substr(0, 100));
      } else if (*n != tf.size) {
        set_reason(*r, "server stored " + std::to_string(*n) + " of " + std::to_string(tf.size) +
                           " bytes");
      } else {
        r->ok = 1;
        r->bytes = tf.size;
      }
    }
  }
  client.reset();  // close before taking the end time: the connection is part of the cost
  r->end_ns = now_ns();
  r->done = 1;
}

/// Command counters and connection count read from STATS.
struct Stats {
  bool ok = false;
  std::string error;
  std::string mode;
  int pool_size = 0;
  long long active = 0;
  long long cmd_ok = 0;
  long long cmd_failed = 0;
};

/// One STATS request on a fresh connection; `command` picks the counters
/// ("GET", "UPLOAD"; "DOWNLOAD" of file-raw) of the workers' service.
Stats read_stats(const Config& cfg, const std::string& command) {
  Stats s;
  auto client = Client::connect(client_options(cfg), &s.error);
  if (!client) return s;
  auto result = client->command("STATS");
  if (!result.ok()) {
    s.error = "STATS: " + kind_name(result.kind) + ": " + result.message;
    return s;
  }
  cJSON* root = cJSON_Parse(result.json.c_str());
  if (!root) {
    s.error = "STATS: reply is not JSON";
    return s;
  }
  const cJSON* data = cJSON_GetObjectItemCaseSensitive(root, "data");
  auto number = [](const cJSON* obj, const char* key, long long* out) {
    const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v)) return false;
    *out = (long long)v->valuedouble;
    return true;
  };
  const cJSON* conns = cJSON_GetObjectItemCaseSensitive(data, "connections");
  // The workers' service's counters (docs/PROTOCOL.md, STATS).
  const cJSON* services = cJSON_GetObjectItemCaseSensitive(data, "services");
  const char* service = cfg.protocol == "raw" ? "file-raw" : "file";
  const cJSON* cmds = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(services, service), "commands");
  const cJSON* cmd = cJSON_GetObjectItemCaseSensitive(cmds, command.c_str());
  long long pool = 0;
  if (number(conns, "active", &s.active) && number(cmd, "ok", &s.cmd_ok) &&
      number(cmd, "failed", &s.cmd_failed)) {
    s.ok = true;
  } else {
    s.error = "STATS: reply lacks connections.active or commands." + command + ".ok/failed";
  }
  if (number(data, "pool_size", &pool)) s.pool_size = int(pool);
  if (const cJSON* m = cJSON_GetObjectItemCaseSensitive(data, "mode"); cJSON_IsString(m))
    s.mode = m->valuestring;
  cJSON_Delete(root);
  return s;
}

/// Reads STATS after a row: waits (bounded) until the server's active
/// connections are back to `baseline.active` and its counters account for
/// every client, or the grace period after the connections settled expires.
Stats settled_stats(const Config& cfg, const std::string& command, const Stats& baseline) {
  auto deadline = std::chrono::steady_clock::now() + kStatsSettleTimeout;
  std::optional<std::chrono::steady_clock::time_point> settled_at;
  Stats s;
  for (;;) {
    s = read_stats(cfg, command);
    auto now = std::chrono::steady_clock::now();
    if (s.ok && s.active <= baseline.active) {
      long long counted = (s.cmd_ok - baseline.cmd_ok) + (s.cmd_failed - baseline.cmd_failed);
      if (counted >= cfg.clients) return s;
      if (!settled_at) settled_at = now;
      if (now - *settled_at >= kStatsGrace) return s;
    }
    if (now >= deadline) return s;
    std::this_thread::sleep_for(kPollInterval);
  }
}

/// Quotes a CSV field when it needs it (RFC 4180).
std::string csv_field(const std::string& v) {
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

/// Appends one row to `path`, writing the header first if the file is new or
/// empty. Throws std::runtime_error on I/O failure.
void append_csv(const std::string& path, const std::map<std::string, std::string>& row) {
  std::error_code ec;
  bool need_header = !fs::exists(path, ec) || fs::file_size(path, ec) == 0;
  std::ofstream out(path, std::ios::app);
  if (!out) throw std::runtime_error("cannot append to " + path);
  auto line = [&](auto value_of) {
    for (size_t i = 0; i < kCsvColumns.size(); ++i)
      out << (i ? "," : "") << csv_field(value_of(kCsvColumns[i]));
    out << "\n";
  };
  if (need_header) line([](const std::string& name) { return name; });
  line([&](const std::string& name) {
    auto it = row.find(name);
    return it == row.end() ? std::string() : it->second;
  });
  out.flush();
  if (!out) throw std::runtime_error("cannot write " + path);
}

/// `v` with `digits` decimals (CSV numbers).
std::string fmt(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

/// "10 MB" for multiples of 10^6 bytes, else "N B".
std::string volume_label(uint64_t size) {
  if (size % 1000000 == 0) return std::to_string(size / 1000000) + " MB";
  return std::to_string(size) + " B";
}

/// The row's identifying columns, shared by measured and skipped rows.
std::map<std::string, std::string> row_keys(const Config& c, int server_workers,
                                            const std::string& mode) {
  return {
      {"Nomor", std::to_string(c.row)},
      {"Operasi", c.op},
      {"Volume", volume_label(c.size)},
      {"Volume bytes", std::to_string(c.size)},
      {"Jumlah client worker pool", std::to_string(c.clients)},
      {"Jumlah server worker pool", server_workers > 0 ? std::to_string(server_workers) : ""},
      {"Server mode", mode},
      {"Client pool mode", c.pool},
  };
}

/// Groups identical failure reasons: "3x connect: refused; 1x ...".
std::string summarize_reasons(const std::vector<std::string>& reasons) {
  std::map<std::string, int> count;
  for (const auto& r : reasons) count[r]++;
  std::string out;
  for (const auto& [reason, n] : count)
    out += (out.empty() ? "" : "; ") + std::to_string(n) + "x " + reason;
  return out;
}

/// Spawns the workers (threads or processes), releases them together and
/// waits for all. Fills `results` (clients entries); returns the go time.
/// Throws std::runtime_error if the workers cannot be started.
int64_t run_workers(const Config& cfg, const TestFile& tf, const SharedBlock& shared) {
  int go[2];
  if (::pipe2(go, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  WorkerResult* results = shared.results;
  std::vector<std::thread> threads;
  std::vector<pid_t> children;
  auto release_and_fail = [&](const std::string& what) {
    shared.barrier->abort.store(1);
    ::close(go[1]);
    for (auto& t : threads) t.join();
    for (pid_t p : children) {
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, 0);
    }
    ::close(go[0]);
    throw std::runtime_error(what);
  };
  for (int i = 0; i < cfg.clients; ++i) {
    if (cfg.pool == "thread") {
      try {
        threads.emplace_back(run_worker, std::cref(cfg), std::cref(tf), i, go[0],
                             std::ref(*shared.barrier), &results[i]);
      } catch (const std::system_error& e) {
        release_and_fail(std::string("cannot start worker thread: ") + e.what());
      }
    } else {
      std::fflush(nullptr);
      pid_t pid = ::fork();
      if (pid < 0) release_and_fail(std::string("fork: ") + std::strerror(errno));
      if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        ::close(go[1]);
        run_worker(cfg, tf, i, go[0], *shared.barrier, &results[i]);
        ::_exit(0);
      }
      children.push_back(pid);
    }
  }
  auto spawn_deadline = std::chrono::steady_clock::now() + kSpawnTimeout;
  while (shared.barrier->ready.load() < cfg.clients) {
    if (std::chrono::steady_clock::now() >= spawn_deadline)
      release_and_fail("workers did not start in time");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  int64_t go_ns = now_ns();
  ::close(go[1]);  // EOF on go[0]: every worker starts now
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < children.size(); ++i) {
    int status = 0;
    while (::waitpid(children[i], &status, 0) < 0 && errno == EINTR) {
    }
    WorkerResult& r = results[i];
    if (!r.done) {
      r.ok = 0;
      r.bytes = 0;
      if (!r.end_ns) r.end_ns = now_ns();
      if (!r.start_ns) r.start_ns = go_ns;
      set_reason(r, WIFSIGNALED(status)
                        ? "worker process killed by signal " + std::to_string(WTERMSIG(status))
                        : "worker process exited without a result");
    }
  }
  ::close(go[0]);
  return go_ns;
}

/// Percentile (nearest rank) of a non-empty sorted vector, q in [0, 1].
double percentile(const std::vector<double>& sorted, double q) {
  size_t idx = size_t(q * double(sorted.size() - 1) + 0.5);
  return sorted[std::min(idx, sorted.size() - 1)];
}

/// Runs the row. Returns the process exit code: 0 when the row was measured
/// and recorded (whatever the failure counts), 1 when it could not be run.
int run_row(Config& cfg) {
  const std::string command =
      cfg.op == "download" ? (cfg.protocol == "raw" ? "DOWNLOAD" : "GET") : "UPLOAD";
  TestFile tf = prepare_file(cache_dir(cfg.cache), cfg.size);
  if (cfg.prepare_only) {
    std::printf("%s\n", tf.path.c_str());
    return 0;
  }

  // Download rows need the file on the server first (not timed).
  if (cfg.op == "download") {
    std::string error;
    auto client = Client::connect(client_options(cfg), &error);
    if (!client)
      throw std::runtime_error("cannot connect to " + cfg.host + ":" + std::to_string(cfg.port) +
                               ": " + error);
    int fd = ::open(tf.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot open " + tf.path.string());
    auto r = client->upload(download_name(cfg.size), tf.size, file_source(fd));
    ::close(fd);
    if (!r.ok())
      throw std::runtime_error("preparatory upload failed: " + kind_name(r.kind) + ": " +
                               r.message);
  }

  Stats before = read_stats(cfg, command);
  if (!before.ok) throw std::runtime_error("cannot read STATS: " + before.error);
  int server_workers = cfg.server_workers > 0 ? cfg.server_workers : before.pool_size;
  std::string mode = !cfg.mode_label.empty() ? cfg.mode_label : before.mode;

  size_t map_bytes = kResultsOffset + sizeof(WorkerResult) * size_t(cfg.clients);
  void* mem = ::mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) throw std::runtime_error(std::string("mmap: ") + std::strerror(errno));
  SharedBlock shared;
  shared.barrier = new (mem) Barrier();
  shared.results = reinterpret_cast<WorkerResult*>(static_cast<char*>(mem) + kResultsOffset);
  for (int i = 0; i < cfg.clients; ++i) new (&shared.results[i]) WorkerResult();

  int64_t go_ns;
  try {
    go_ns = run_workers(cfg, tf, shared);
  } catch (...) {
    ::munmap(mem, map_bytes);
    throw;
  }
  std::vector<WorkerResult> results(shared.results, shared.results + cfg.clients);
  ::munmap(mem, map_bytes);

  Stats after = settled_stats(cfg, command, before);

  // Optional full check of uploads: read each one back (not timed).
  if (cfg.op == "upload" && cfg.verify_uploads) {
    for (int i = 0; i < cfg.clients; ++i) {
      WorkerResult& r = results[size_t(i)];
      if (!r.ok) continue;
      std::string error;
      auto client = Client::connect(client_options(cfg), &error);
      uint64_t bytes = 0;
      std::string why =
          client ? get_and_verify(*client, upload_name(cfg.size, i), tf.size, tf.hash, &bytes)
                 : "connect: " + error;
      if (!why.empty()) {
        r.ok = 0;
        r.bytes = 0;
        set_reason(r, "verify: " + why);
      }
    }
  }
  if (cfg.op == "upload" && !cfg.keep_uploads) {
    std::string error;
    if (auto client = Client::connect(client_options(cfg), &error)) {
      for (int i = 0; i < cfg.clients; ++i)
        client->command("DELETE " + fsrv::client::quote_name(upload_name(cfg.size, i)));
    }
  }

  // Row figures.
  std::vector<double> durations;
  std::vector<std::string> reasons;
  double thr_sum = 0;
  uint64_t total_bytes = 0;
  int64_t last_end = go_ns;
  int ok = 0;
  for (const auto& r : results) {
    double d = double(r.end_ns - r.start_ns) / 1e9;
    durations.push_back(d);
    last_end = std::max(last_end, r.end_ns);
    if (r.ok) {
      ++ok;
      total_bytes += r.bytes;
      if (d > 0) thr_sum += double(r.bytes) / d;
    } else {
      reasons.emplace_back(r.reason[0] ? r.reason : "unknown failure");
    }
  }
  double mean = 0;
  for (double d : durations) mean += d;
  mean /= double(durations.size());
  std::sort(durations.begin(), durations.end());
  double p50 = percentile(durations, 0.5), dmax = durations.back();
  double wall = double(last_end - go_ns) / 1e9;
  double thr_client = thr_sum / double(cfg.clients);
  double aggregate = wall > 0 ? double(total_bytes) / wall : 0;
  int failed = cfg.clients - ok;
  std::string server_ok = "", server_failed = "";
  if (after.ok) {
    server_ok = std::to_string(after.cmd_ok - before.cmd_ok);
    server_failed = std::to_string(after.cmd_failed - before.cmd_failed);
  } else {
    reasons.push_back("after-row STATS failed: " + after.error);
  }
  std::string reason_text = summarize_reasons(reasons);

  std::printf(
      "row %d: %s%s %s, clients %d (%s), server %d (%s): time/client mean %.3f s p50 %.3f max "
      "%.3f; "
      "throughput/client %.2f MB/s; aggregate %.2f MB/s; client ok %d failed %d; server ok %s "
      "failed %s%s%s\n",
      cfg.row, cfg.protocol == "raw" ? "raw " : "", cfg.op.c_str(), volume_label(cfg.size).c_str(),
      cfg.clients, cfg.pool.c_str(), server_workers, mode.c_str(), mean, p50, dmax,
      thr_client / 1e6, aggregate / 1e6, ok, failed, server_ok.empty() ? "?" : server_ok.c_str(),
      server_failed.empty() ? "?" : server_failed.c_str(),
      reason_text.empty() ? "" : "; failures: ", reason_text.c_str());
  std::fflush(stdout);

  if (!cfg.csv.empty()) {
    auto row = row_keys(cfg, server_workers, mode);
    row["Waktu total per client"] = fmt(mean, 6);
    row["Throughput per client"] = fmt(thr_client, 0);
    row["Client sukses"] = std::to_string(ok);
    row["Client gagal"] = std::to_string(failed);
    row["Server sukses"] = server_ok;
    row["Server gagal"] = server_failed;
    row["Waktu p50 per client"] = fmt(p50, 6);
    row["Waktu max per client"] = fmt(dmax, 6);
    row["Throughput agregat"] = fmt(aggregate, 0);
    row["Waktu row"] = fmt(wall, 6);
    row["Status"] = "ok";
    row["Alasan gagal"] = reason_text;
    append_csv(cfg.csv, row);
  }
  return 0;
}

}  // namespace

/// Parses the options (see --help), then runs, skips or prepares the row.
int main(int argc, char** argv) {
  Config cfg;
  CLI::App app{
      "Runs one row of the stress table: C concurrent clients each GET or UPLOAD one file of SIZE "
      "bytes."};
  app.add_option("--host", cfg.host, "server address")->capture_default_str();
  app.add_option("--port", cfg.port, "server port");
  app.add_option("--op", cfg.op, "download or upload")
      ->check(CLI::IsMember({"download", "upload"}));
  app.add_option("--size", cfg.size, "file size in bytes (the course's MB = 1000000 bytes)")
      ->check(CLI::Range(uint64_t(1), uint64_t(1) << 40));
  app.add_option("--clients", cfg.clients, "concurrent client workers")
      ->check(CLI::Range(1, kMaxClients))
      ->capture_default_str();
  app.add_option("--pool", cfg.pool, "client pool: workers as threads or forked processes")
      ->check(CLI::IsMember({"thread", "process"}))
      ->capture_default_str();
  app.add_option("--server-workers", cfg.server_workers,
                 "server pool size for the table (default: from STATS)");
  app.add_option("--codec", cfg.codec_name, "base64 codec of the client")
      ->check(CLI::IsMember({"fast", "libb64"}))
      ->capture_default_str();
  app.add_option("--csv", cfg.csv, "append the row to this CSV file (header written if new)");
  app.add_option("--row", cfg.row, "row number (Nomor) for the table");
  app.add_option("--mode-label", cfg.mode_label, "server mode for the table (default: from STATS)")
      ->check(CLI::IsMember({"thread", "process"}));
  app.add_option("--cache-dir", cfg.cache,
                 "test file cache (default $XDG_CACHE_HOME/fsrv-stress or /tmp/fsrv-stress-cache)");
  app.add_option("--io-timeout-ms", cfg.io_timeout_ms, "client timeout per send/receive")
      ->check(CLI::Range(100, 3600000))
      ->capture_default_str();
  app.add_flag("--verify-uploads", cfg.verify_uploads,
               "after the row, GET every upload back and check its xxHash");
  app.add_flag("--keep-uploads", cfg.keep_uploads,
               "do not DELETE the uploaded files after the row");
  app.add_option("--skip-reason", cfg.skip_reason,
                 "do not run: record the row as skipped with this reason");
  app.add_flag("--prepare-only", cfg.prepare_only,
               "only create the cached test file and print its path");
  app.add_option("--protocol", cfg.protocol,
                 "the workers' protocol: file (base64, --port) or raw (file-raw, --raw-port)")
      ->check(CLI::IsMember({"file", "raw"}))
      ->capture_default_str();
  app.add_option("--raw-port", cfg.raw_port, "the file-raw listener (--protocol raw)");
  CLI11_PARSE(app, argc, argv);

  if (!fsrv::codec::parse_base64_kind(cfg.codec_name, cfg.codec)) {
    std::fprintf(stderr, "stress: unknown codec %s\n", cfg.codec_name.c_str());
    return 2;
  }
  if (cfg.size == 0 || (cfg.op.empty() && !cfg.prepare_only)) {
    std::fprintf(stderr, "stress: --size and --op are required\n");
    return 2;
  }
  if (!cfg.skip_reason.empty()) {
    if (cfg.csv.empty()) {
      std::fprintf(stderr, "stress: --skip-reason needs --csv\n");
      return 2;
    }
    auto row = row_keys(cfg, cfg.server_workers, cfg.mode_label);
    row["Status"] = "skipped";
    row["Alasan gagal"] = cfg.skip_reason;
    try {
      append_csv(cfg.csv, row);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "stress: %s\n", e.what());
      return 1;
    }
    std::printf("row %d: skipped: %s\n", cfg.row, cfg.skip_reason.c_str());
    return 0;
  }
  if (cfg.port == 0 && !cfg.prepare_only) {
    std::fprintf(stderr, "stress: --port is required\n");
    return 2;
  }
  if (cfg.protocol == "raw" && cfg.raw_port == 0 && !cfg.prepare_only) {
    std::fprintf(stderr, "stress: --protocol raw needs --raw-port\n");
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  g_run_pid = ::getpid();
  try {
    return run_row(cfg);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stress: row %d: %s\n", cfg.row, e.what());
    return 1;
  }
}
