// filecli: command-line client for the course file server.
//
//   filecli [-H host] [-p port] [--codec fast|libb64] [--timeout-ms MS] [--sockbuf BYTES]
//           list | get NAME [-o PATH] | upload PATH [--as NAME]
//           | delete NAME | size NAME | stats | ping | shell [-c "cmd; cmd"]
//
// `shell` is an interactive session on one connection
// (docs/services/session.md): ls, get/download, put/upload, rm (Y/N), size,
// ping/connme, stats, lls, lcd, help, quit/byebye, with libedit line
// editing, history and completion of commands and remote names; it reads
// commands from stdin when that is not a terminal, or from -c. Its exit
// code is that of the last command that failed (0 if none did).
//
// Transfers stream both ways (nothing holds a whole file). Downloads go to a
// temporary file beside the destination, renamed into place on success and
// removed on any failure (Ctrl-C included); `-o -` and existing special
// files (/dev/null, fifos) are written directly. A progress bar is drawn on
// stderr only when stderr is a terminal.
//
// Exit codes: 0 ok, 1 server ERROR or local file failure (message on
// stderr), 2 usage, 3 connection or protocol failure.

#include <cjson/cJSON.h>
#include <dirent.h>
#include <editline/readline.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "fsrv/client/client.hpp"

namespace {

using fsrv::client::Client;
using fsrv::client::ErrorKind;
using fsrv::client::Result;

constexpr int kExitOk = 0;
constexpr int kExitServer = 1;
constexpr int kExitUsage = 2;
constexpr int kExitConnection = 3;
/// How often the progress bar is redrawn: often enough to look live, rarely
/// enough to cost nothing next to the transfer.
constexpr auto kProgressInterval = std::chrono::milliseconds(100);
constexpr double kMB = 1e6;  ///< progress and size figures are in decimal MB

/// Exit code of a failed request (header: kServer/kLocal -> 1, else 3).
int exit_code(const Result& r) {
  switch (r.kind) {
    case ErrorKind::kNone:
      return kExitOk;
    case ErrorKind::kServer:
    case ErrorKind::kLocal:
      return kExitServer;
    case ErrorKind::kConnection:
    case ErrorKind::kProtocol:
      return kExitConnection;
  }
  return kExitConnection;
}

/// Prints a failed result on stderr and returns its exit code.
int report(const Result& r) {
  const char* what = r.kind == ErrorKind::kServer       ? "server error"
                     : r.kind == ErrorKind::kLocal      ? "error"
                     : r.kind == ErrorKind::kConnection ? "connection error"
                                                        : "protocol error";
  std::fprintf(stderr, "filecli: %s: %s\n", what, r.message.c_str());
  return exit_code(r);
}

/// Progress bar on stderr (bytes, MB/s, ETA); silent unless stderr is a tty.
class ProgressBar {
 public:
  explicit ProgressBar(std::string label)
      : label_(std::move(label)), enabled_(::isatty(STDERR_FILENO) == 1) {}
  /// Redraws at most every kProgressInterval; total 0 means unknown.
  void update(uint64_t done, uint64_t total) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    if (drawn_ && now - last_ < kProgressInterval && done != total) return;
    last_ = now;
    drawn_ = true;
    double secs = std::chrono::duration<double>(now - start_).count();
    double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
    char line[256];
    if (total > 0) {
      double frac = static_cast<double>(done) / static_cast<double>(total);
      constexpr int kWidth = 24;  // bar cells
      char bar[kWidth + 1];
      int filled = static_cast<int>(frac * kWidth);
      for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '#' : '.';
      bar[kWidth] = '\0';
      double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0;
      std::snprintf(line, sizeof line, "\r%s [%s] %3.0f%% %.1f/%.1f MB %.1f MB/s ETA %d:%02d\033[K",
                    label_.c_str(), bar, frac * 100, done / kMB, total / kMB, rate / kMB,
                    static_cast<int>(eta) / 60, static_cast<int>(eta) % 60);
    } else {
      std::snprintf(line, sizeof line, "\r%s %.1f MB %.1f MB/s\033[K", label_.c_str(), done / kMB,
                    rate / kMB);
    }
    std::fputs(line, stderr);
  }
  /// Ends the bar's line, if one was drawn.
  void finish() {
    if (drawn_) std::fputc('\n', stderr);
    drawn_ = false;
  }

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_{};
};

// The temporary download file, removed by the signal handler if the user
// interrupts a GET. A fixed buffer: only async-signal-safe calls touch it.
char g_temp_path[4096];
volatile sig_atomic_t g_temp_active = 0;

extern "C" void on_fatal_signal(int sig) {
  if (g_temp_active) ::unlink(g_temp_path);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

std::string base_name(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string dir_name(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

/// Writes all of `data` to fd; false on error (errno set).
bool write_all(int fd, const uint8_t* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

/// Parses the small reply's JSON and returns its "data" (owned by *root).
const cJSON* reply_data(const Result& r, cJSON** root) {
  *root = cJSON_ParseWithLength(r.json.data(), r.json.size());
  return *root ? cJSON_GetObjectItemCaseSensitive(*root, "data") : nullptr;
}

int protocol_failure(const std::string& what) {
  std::fprintf(stderr, "filecli: protocol error: %s\n", what.c_str());
  return kExitConnection;
}

int do_list(Client& c) {
  Result r = c.command("LIST");
  if (!r.ok()) return report(r);
  cJSON* root = nullptr;
  const cJSON* data = reply_data(r, &root);
  int rc = kExitOk;
  if (!cJSON_IsArray(data)) {
    rc = protocol_failure("LIST reply has no data array");
  } else {
    const cJSON* item = nullptr;
    cJSON_ArrayForEach(item, data) {
      if (cJSON_IsString(item)) std::printf("%s\n", item->valuestring);
    }
  }
  cJSON_Delete(root);
  return rc;
}

int do_stats(Client& c) {
  Result r = c.command("STATS");
  if (!r.ok()) return report(r);
  cJSON* root = nullptr;
  const cJSON* data = reply_data(r, &root);
  int rc = kExitOk;
  if (data == nullptr) {
    rc = protocol_failure("STATS reply has no data");
  } else {
    char* text = cJSON_Print(data);
    std::printf("%s\n", text ? text : "null");
    cJSON_free(text);
  }
  cJSON_Delete(root);
  return rc;
}

/// DELETE and PING: prints the server's data text.
int do_simple(Client& c, const std::string& line) {
  Result r = c.command(line);
  if (!r.ok()) return report(r);
  cJSON* root = nullptr;
  const cJSON* data = reply_data(r, &root);
  if (cJSON_IsString(data)) {
    std::printf("%s\n", data->valuestring);
  } else if (data != nullptr) {
    char* text = cJSON_PrintUnformatted(data);
    std::printf("%s\n", text ? text : "");
    cJSON_free(text);
  }
  cJSON_Delete(root);
  return kExitOk;
}

/// SIZE name: returns the byte count through *bytes (for progress) or the
/// failed Result.
Result query_size(Client& c, const std::string& name, uint64_t* bytes, double* mb) {
  Result r = c.command("SIZE " + fsrv::client::quote_name(name));
  if (!r.ok()) return r;
  cJSON* root = nullptr;
  const cJSON* data = reply_data(r, &root);
  const cJSON* b = cJSON_GetObjectItemCaseSensitive(data, "bytes");
  const cJSON* m = cJSON_GetObjectItemCaseSensitive(data, "mb");
  if (!cJSON_IsNumber(b) || b->valuedouble < 0) {
    r.kind = ErrorKind::kProtocol;
    r.message = "SIZE reply has no data.bytes number";
  } else {
    *bytes = static_cast<uint64_t>(b->valuedouble);
    *mb = cJSON_IsNumber(m) ? m->valuedouble : static_cast<double>(*bytes) / kMB;
  }
  cJSON_Delete(root);
  return r;
}

int do_size(Client& c, const std::string& name) {
  uint64_t bytes = 0;
  double mb = 0;
  Result r = query_size(c, name, &bytes, &mb);
  if (!r.ok()) return report(r);
  std::printf("%s %llu bytes (%g MB)\n", name.c_str(), static_cast<unsigned long long>(bytes), mb);
  return kExitOk;
}

/// GET into `out_opt`: "" -> ./NAME, a directory -> DIR/NAME, "-" -> stdout,
/// an existing non-regular file (/dev/null, a fifo) -> written in place,
/// else the path. Regular files go through a temporary file + rename.
int do_get(Client& c, const std::string& name, const std::string& out_opt) {
  std::string base = base_name(name);
  if (out_opt.empty() && (base.empty() || base == "." || base == "..")) {
    std::fprintf(stderr, "filecli: cannot derive a local file name from \"%s\"; use -o\n",
                 name.c_str());
    return kExitUsage;
  }
  std::string out = out_opt.empty() ? base : out_opt;
  struct stat st {};
  bool exists = out != "-" && ::stat(out.c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) {
    if (base.empty() || base == "." || base == "..") {
      std::fprintf(stderr, "filecli: cannot derive a local file name from \"%s\"\n", name.c_str());
      return kExitUsage;
    }
    out += "/" + base;
    exists = ::stat(out.c_str(), &st) == 0;
  }
  const bool direct = out == "-" || (exists && !S_ISREG(st.st_mode));  // no temp file, no rename

  ProgressBar bar("get " + name);
  uint64_t total = 0;
  if (::isatty(STDERR_FILENO) == 1) {
    double mb = 0;
    Result sr = query_size(c, name, &total, &mb);  // only for the ETA
    if (!sr.ok()) return report(sr);
  }

  int fd = -1;
  if (out == "-") {
    fd = STDOUT_FILENO;
  } else if (direct) {
    fd = ::open(out.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      std::fprintf(stderr, "filecli: cannot open %s: %s\n", out.c_str(), std::strerror(errno));
      return kExitServer;
    }
  } else {
    std::string tmpl = dir_name(out) + "/." + base_name(out) + ".part-XXXXXX";
    if (tmpl.size() >= sizeof g_temp_path) {
      std::fprintf(stderr, "filecli: destination path too long\n");
      return kExitServer;
    }
    std::memcpy(g_temp_path, tmpl.c_str(), tmpl.size() + 1);
    fd = ::mkstemp(g_temp_path);
    if (fd < 0) {
      std::fprintf(stderr, "filecli: cannot create a temporary file in %s: %s\n",
                   dir_name(out).c_str(), std::strerror(errno));
      return kExitServer;
    }
    g_temp_active = 1;
  }
  // Closes fd (unless stdout) and removes the temporary file, if any.
  auto discard = [&] {
    if (fd != STDOUT_FILENO) ::close(fd);
    if (g_temp_active) ::unlink(g_temp_path);
    g_temp_active = 0;
  };

  int write_errno = 0;
  auto sink = [&](std::span<const uint8_t> bytes) {
    if (write_all(fd, bytes.data(), bytes.size())) return true;
    write_errno = errno;
    return false;
  };
  auto t0 = std::chrono::steady_clock::now();
  Result r = c.get(name, sink, [&](uint64_t done, uint64_t) { bar.update(done, total); });
  bar.finish();
  if (!r.ok()) {
    discard();
    if (write_errno != 0) r.message = "writing " + out + ": " + std::strerror(write_errno);
    return report(r);
  }
  if (!direct) {
    mode_t mask = ::umask(0);
    ::umask(mask);
    int rc = ::fchmod(fd, 0666 & ~mask);
    if (rc == 0) rc = ::close(fd);
    fd = -1;
    if (rc == 0) rc = ::rename(g_temp_path, out.c_str());
    if (rc != 0) {
      int err = errno;
      ::unlink(g_temp_path);
      g_temp_active = 0;
      std::fprintf(stderr, "filecli: saving %s: %s\n", out.c_str(), std::strerror(err));
      return kExitServer;
    }
    g_temp_active = 0;
  } else if (fd != STDOUT_FILENO && ::close(fd) != 0) {
    std::fprintf(stderr, "filecli: writing %s: %s\n", out.c_str(), std::strerror(errno));
    return kExitServer;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(out == "-" ? stderr : stdout, "%s -> %s (%llu bytes)\n", name.c_str(), out.c_str(),
               static_cast<unsigned long long>(r.bytes));
  if (::isatty(STDERR_FILENO) == 1 && secs > 0)
    std::fprintf(stderr, "%.1f MB/s\n", r.bytes / kMB / secs);
  return kExitOk;
}

int do_upload(Client& c, const std::string& path, const std::string& as) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::fprintf(stderr, "filecli: cannot open %s: %s\n", path.c_str(), std::strerror(errno));
    return kExitServer;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    std::fprintf(stderr, "filecli: %s is not a regular file\n", path.c_str());
    ::close(fd);
    return kExitServer;
  }
  std::string name = as.empty() ? base_name(path) : as;
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);  // a hint; failure is harmless
  ProgressBar bar("upload " + name);
  auto source = [&](std::span<uint8_t> buf) -> long {
    for (;;) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      return static_cast<long>(n);
    }
  };
  auto t0 = std::chrono::steady_clock::now();
  Result r = c.upload(name, static_cast<uint64_t>(st.st_size), source,
                      [&](uint64_t done, uint64_t total) { bar.update(done, total); });
  bar.finish();
  ::close(fd);
  if (!r.ok()) return report(r);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  cJSON* root = nullptr;
  const cJSON* data = reply_data(r, &root);
  std::printf("%s\n", cJSON_IsString(data) ? data->valuestring : r.json.c_str());
  cJSON_Delete(root);
  if (::isatty(STDERR_FILENO) == 1 && secs > 0)
    std::fprintf(stderr, "%.1f MB/s\n", r.bytes / kMB / secs);
  return kExitOk;
}

// ---------------------------------------------------------------- shell
// `filecli shell`: the seed 003 session experience over
// the file protocol on one persistent connection. Line editing, history
// and completion from libedit's readline interface; commands also come from
// stdin (not a terminal) or -c "cmd; cmd".

/// A connection idle longer than this is checked with PING (and reopened
/// if the server closed it) before the next command: the server's default
/// --idle-timeout is 60 s.
constexpr auto kShellRecheckAfter = std::chrono::seconds(20);

const char* const kShellCommands[] = {"ls",   "get",  "download", "put",   "upload", "rm",
                                      "size", "ping", "connme",   "stats", "lls",    "lcd",
                                      "help", "quit", "byebye",   nullptr};

/// Splits a shell line into words: blanks separate, "..." or '...' quote.
std::vector<std::string> shell_words(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (char ch : line) {
    if (quote) {
      if (ch == quote) {
        quote = 0;
      } else {
        cur += ch;
      }
    } else if (ch == '"' || ch == '\'') {
      quote = ch;
      in_word = true;
    } else if (ch == ' ' || ch == '\t') {
      if (in_word) out.push_back(cur);
      cur.clear();
      in_word = false;
    } else {
      cur += ch;
      in_word = true;
    }
  }
  if (in_word) out.push_back(cur);
  return out;
}

class Shell {
 public:
  Shell(std::unique_ptr<Client>& client, fsrv::client::Options opt, bool interactive)
      : client_(client), opt_(std::move(opt)), interactive_(interactive) {}

  std::string prompt() const {
    return "file@" + opt_.host + ":" + std::to_string(opt_.port) + "> ";
  }

  /// Runs one line; false after quit. `rc` keeps the last failure's exit code.
  bool run(const std::string& line) {
    std::vector<std::string> w = shell_words(line);
    if (w.empty()) return true;
    const std::string& cmd = w[0];
    auto arg = [&](size_t i) { return i < w.size() ? w[i] : std::string(); };
    if (cmd == "quit" || cmd == "byebye" || cmd == "exit") {
      if (client_) client_->command("QUIT");
      return false;
    }
    if (cmd == "help") {
      help();
      return true;
    }
    if (cmd == "lls") return note(local_list(w.size() > 1 ? w[1] : "."));
    if (cmd == "lcd") {
      std::string dir = w.size() > 1 ? w[1] : (getenv("HOME") ? getenv("HOME") : "/");
      if (::chdir(dir.c_str()) != 0) {
        std::fprintf(stderr, "lcd: %s: %s\n", dir.c_str(), std::strerror(errno));
        return note(kExitServer);
      }
      char cwd[4096];
      std::printf("local directory: %s\n", ::getcwd(cwd, sizeof cwd) ? cwd : dir.c_str());
      return true;
    }
    bool known = false;
    for (const char* const* c = kShellCommands; *c; ++c) known = known || cmd == *c;
    if (!known) {
      std::fprintf(stderr, "unknown command: %s (try help)\n", cmd.c_str());
      return note(kExitUsage);
    }
    if (!ensure_connected()) return note(kExitConnection);
    Client& c = *client_;
    int rc = kExitOk;
    if (cmd == "ls") {
      rc = remote_list(c);
    } else if (cmd == "get" || cmd == "download") {
      if (w.size() < 2) return usage("get NAME [LOCAL]");
      rc = do_get(c, w[1], arg(2));
    } else if (cmd == "put" || cmd == "upload") {
      if (w.size() < 2) return usage("put PATH [NAME]");
      rc = do_upload(c, w[1], arg(2));
      names_stale_ = true;
    } else if (cmd == "rm") {
      bool force = false;
      std::string name;
      for (size_t i = 1; i < w.size(); ++i) {
        if (w[i] == "-f") {
          force = true;
        } else {
          name = w[i];
        }
      }
      if (name.empty()) return usage("rm [-f] NAME");
      if (!force && !confirm("delete " + name + " on the server? (Y/N) ")) {
        std::printf("not deleted\n");
        return true;
      }
      rc = do_simple(c, "DELETE " + fsrv::client::quote_name(name));
      names_stale_ = true;
    } else if (cmd == "size") {
      if (w.size() < 2) return usage("size NAME");
      rc = do_size(c, w[1]);
    } else if (cmd == "ping" || cmd == "connme") {
      rc = do_simple(c, "PING");
    } else if (cmd == "stats") {
      rc = do_stats(c);
    }
    if (rc == kExitConnection) client_.reset();  // reconnect next time
    last_used_ = std::chrono::steady_clock::now();
    return note(rc);
  }

  int rc() const { return rc_; }

  /// Remote names for completion (LIST, cached until a change).
  const std::vector<std::string>& remote_names() {
    if (names_stale_ && ensure_connected()) {
      Result r = client_->command("LIST");
      cJSON* root = nullptr;
      const cJSON* data = r.ok() ? reply_data(r, &root) : nullptr;
      if (cJSON_IsArray(data)) {
        names_.clear();
        const cJSON* item = nullptr;
        cJSON_ArrayForEach(item, data) {
          if (cJSON_IsString(item)) names_.push_back(item->valuestring);
        }
        names_stale_ = false;
      }
      cJSON_Delete(root);
    }
    return names_;
  }

 private:
  bool note(int rc) {
    if (rc != kExitOk) rc_ = rc;
    std::fflush(stdout);
    return true;
  }
  bool usage(const char* text) {
    std::fprintf(stderr, "usage: %s\n", text);
    return note(kExitUsage);
  }
  static void help() {
    std::printf(
        "ls                      remote files with sizes and the total\n"
        "get|download NAME [LOCAL]  download (LOCAL: file or directory)\n"
        "put|upload PATH [NAME]  upload a local file\n"
        "rm [-f] NAME            delete (asks Y/N unless -f)\n"
        "size NAME               size in bytes and MB\n"
        "ping|connme             check the connection\n"
        "stats                   server counters\n"
        "lls [DIR]               local files;  lcd DIR  change local directory\n"
        "help;  quit|byebye      leave\n");
  }
  /// Reconnects if needed; after a long pause checks the connection first.
  bool ensure_connected() {
    if (client_ && std::chrono::steady_clock::now() - last_used_ > kShellRecheckAfter) {
      if (!client_->command("PING").ok()) client_.reset();
    }
    if (!client_) {
      std::string error;
      client_ = Client::connect(opt_, &error);
      if (!client_) {
        std::fprintf(stderr, "filecli: cannot connect: %s\n", error.c_str());
        return false;
      }
    }
    last_used_ = std::chrono::steady_clock::now();
    return true;
  }
  bool confirm(const std::string& question) {
    std::string answer;
    if (interactive_) {
      char* raw = readline(question.c_str());
      if (raw) answer = raw;
      std::free(raw);
    } else {
      std::printf("%s", question.c_str());
      std::fflush(stdout);
      if (!std::getline(std::cin, answer)) answer.clear();
      std::printf("%s\n", answer.c_str());
    }
    return !answer.empty() && (answer[0] == 'Y' || answer[0] == 'y');
  }
  /// LIST, then SIZE per name on the same connection.
  int remote_list(Client& c) {
    Result r = c.command("LIST");
    if (!r.ok()) return report(r);
    cJSON* root = nullptr;
    const cJSON* data = reply_data(r, &root);
    if (!cJSON_IsArray(data)) {
      cJSON_Delete(root);
      return protocol_failure("LIST reply has no data array");
    }
    names_.clear();
    const cJSON* item = nullptr;
    cJSON_ArrayForEach(item, data) {
      if (cJSON_IsString(item)) names_.push_back(item->valuestring);
    }
    cJSON_Delete(root);
    names_stale_ = false;
    uint64_t total = 0;
    for (const std::string& n : names_) {
      uint64_t bytes = 0;
      double mb = 0;
      Result sr = query_size(c, n, &bytes, &mb);
      if (!sr.ok() && sr.kind != ErrorKind::kServer) return report(sr);
      if (sr.ok()) {
        std::printf("  %-40s %14llu bytes\n", n.c_str(), static_cast<unsigned long long>(bytes));
        total += bytes;
      } else {
        std::printf("  %-40s %14s\n", n.c_str(), "?");  // deleted meanwhile
      }
    }
    std::printf("%zu file%s, %llu bytes (%.2f MB)\n", names_.size(), names_.size() == 1 ? "" : "s",
                static_cast<unsigned long long>(total), total / kMB);
    return kExitOk;
  }
  static int local_list(const std::string& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) {
      std::fprintf(stderr, "lls: %s: %s\n", dir.c_str(), std::strerror(errno));
      return kExitServer;
    }
    std::vector<std::pair<std::string, uint64_t>> files;
    while (dirent* e = ::readdir(d)) {
      struct stat st {};
      std::string path = dir + "/" + e->d_name;
      if (e->d_name[0] == '.' || ::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      files.emplace_back(e->d_name, static_cast<uint64_t>(st.st_size));
    }
    ::closedir(d);
    std::sort(files.begin(), files.end());
    for (const auto& [name, size] : files) {
      std::printf("  %-40s %14llu bytes\n", name.c_str(), static_cast<unsigned long long>(size));
    }
    std::printf("%zu local file%s\n", files.size(), files.size() == 1 ? "" : "s");
    return kExitOk;
  }

  std::unique_ptr<Client>& client_;
  fsrv::client::Options opt_;
  bool interactive_;
  int rc_ = kExitOk;
  std::vector<std::string> names_;
  bool names_stale_ = true;
  std::chrono::steady_clock::time_point last_used_ = std::chrono::steady_clock::now();
};

Shell* g_shell = nullptr;  // for the completion callbacks

/// Completion candidates for the word being completed, by generator state.
std::vector<std::string> g_matches;

char* match_generator(const char*, int state) {
  static size_t next;
  if (state == 0) next = 0;
  return next < g_matches.size() ? strdup(g_matches[next++].c_str()) : nullptr;
}

/// First word: commands. After get/download/rm/size: remote names. After
/// put/upload/lls/lcd: libedit's file-name completion.
char** shell_complete(const char* text, int start, int) {
  std::string before(rl_line_buffer, static_cast<size_t>(start));
  std::vector<std::string> words = shell_words(before);
  std::string prefix(text);
  g_matches.clear();
  if (words.empty()) {
    for (const char* const* c = kShellCommands; *c; ++c) {
      if (std::string_view(*c).substr(0, prefix.size()) == prefix) g_matches.push_back(*c);
    }
  } else if (words[0] == "get" || words[0] == "download" || words[0] == "rm" ||
             words[0] == "size") {
    for (const std::string& n : g_shell->remote_names()) {
      if (n.compare(0, prefix.size(), prefix) == 0) g_matches.push_back(n);
    }
  } else {
    return nullptr;  // local paths: libedit's default file-name completion
  }
  rl_attempted_completion_over = 1;
  return rl_completion_matches(text, match_generator);
}

/// Splits -c's text on ';' (outside quotes).
std::vector<std::string> split_commands(const std::string& text) {
  std::vector<std::string> out(1);
  char quote = 0;
  for (char ch : text) {
    if (quote) {
      if (ch == quote) quote = 0;
    } else if (ch == '"' || ch == '\'') {
      quote = ch;
    } else if (ch == ';') {
      out.emplace_back();
      continue;
    }
    out.back() += ch;
  }
  return out;
}

int run_shell(std::unique_ptr<Client>& client, const fsrv::client::Options& opt,
              const std::string& commands, bool have_commands) {
  bool interactive = !have_commands && ::isatty(STDIN_FILENO) == 1;
  Shell shell(client, opt, interactive);
  g_shell = &shell;
  if (have_commands) {
    for (const std::string& line : split_commands(commands)) {
      if (!shell.run(line)) break;
    }
    return shell.rc();
  }
  if (!interactive) {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (!shell.run(line)) break;
    }
    return shell.rc();
  }
  rl_attempted_completion_function = shell_complete;
  std::printf("connected to %s:%d; type help\n", opt.host.c_str(), opt.port);
  while (true) {
    char* raw = readline(shell.prompt().c_str());
    if (!raw) {
      std::printf("\n");
      break;
    }
    std::string line = raw;
    std::free(raw);
    if (!shell_words(line).empty()) add_history(line.c_str());
    if (!shell.run(line)) break;
  }
  return shell.rc();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Client for the course file server"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the subcommand

  fsrv::client::Options opt;
  std::string codec_name = "fast";
  app.add_option("-H,--host", opt.host, "server host")->capture_default_str();
  app.add_option("-p,--port", opt.port, "server port")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  app.add_option("--codec", codec_name, "base64 codec")
      ->capture_default_str()
      ->check(CLI::IsMember({"fast", "libb64"}));
  app.add_option("--timeout-ms", opt.timeout_ms, "per send/receive timeout")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600 * 1000));
  std::string user;
  app.add_option(
      "--user", user,
      "send AUTH USER PASSWORD first (auth= listeners); the password comes from "
      "$FSRV_PASSWORD, else the first line of standard input (the shell does not send it "
      "again after a reconnect)");
  app.add_option("--sockbuf", opt.socket_buffer_bytes,
                 "SO_SNDBUF/SO_RCVBUF bytes (0: kernel autotuning)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 30));

  std::string name, path, out, as;
  CLI::App* list = app.add_subcommand("list", "list the server's files");
  CLI::App* get = app.add_subcommand("get", "download a file");
  get->add_option("NAME", name, "file name on the server")->required();
  get->add_option("-o,--output", out, "local file, directory, or - for stdout (default: ./NAME)");
  CLI::App* upload = app.add_subcommand("upload", "upload a local file");
  upload->add_option("PATH", path, "local file")->required();
  upload->add_option("--as", as, "name on the server (default: the file's base name)");
  CLI::App* del = app.add_subcommand("delete", "delete a file");
  del->add_option("NAME", name, "file name on the server")->required();
  CLI::App* size = app.add_subcommand("size", "show a file's size");
  size->add_option("NAME", name, "file name on the server")->required();
  CLI::App* stats = app.add_subcommand("stats", "show the server's counters");
  CLI::App* ping = app.add_subcommand("ping", "check the connection");
  std::string shell_commands;
  CLI::App* shell = app.add_subcommand(
      "shell", "interactive session: ls, get, put, rm, size, ping, stats, lls, lcd (help)");
  shell->add_option("-c,--command", shell_commands, "run these ';'-separated commands and exit");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);  // prints help (rc 0) or the error
    return rc == 0 ? kExitOk : kExitUsage;
  }
  if (!fsrv::codec::parse_base64_kind(codec_name, opt.codec))
    return kExitUsage;  // IsMember already checked

  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGINT, on_fatal_signal);
  std::signal(SIGTERM, on_fatal_signal);
  std::signal(SIGHUP, on_fatal_signal);

  std::string error;
  std::unique_ptr<Client> client = Client::connect(opt, &error);
  if (!client) {
    std::fprintf(stderr, "filecli: cannot connect: %s\n", error.c_str());
    return kExitConnection;
  }
  if (!user.empty()) {
    // Never on the command line, where ps shows it.
    std::string password;
    if (const char* env = std::getenv("FSRV_PASSWORD")) {
      password = env;
    } else {
      for (int c = std::getchar(); c != EOF && c != '\n'; c = std::getchar()) {
        password += static_cast<char>(c);
      }
      if (!password.empty() && password.back() == '\r') password.pop_back();
    }
    fsrv::client::Result r = client->command("AUTH " + fsrv::client::quote_name(user) + " " +
                                             fsrv::client::quote_name(password));
    if (!r.ok()) {
      std::fprintf(stderr, "filecli: %s\n", r.message.c_str());
      return r.kind == fsrv::client::ErrorKind::kServer ? kExitServer : kExitConnection;
    }
  }
  if (list->parsed()) return do_list(*client);
  if (get->parsed()) return do_get(*client, name, out);
  if (upload->parsed()) return do_upload(*client, path, as);
  if (del->parsed()) return do_simple(*client, "DELETE " + fsrv::client::quote_name(name));
  if (size->parsed()) return do_size(*client, name);
  if (stats->parsed()) return do_stats(*client);
  if (ping->parsed()) return do_simple(*client, "PING");
  if (shell->parsed()) return run_shell(client, opt, shell_commands, shell->count("-c") > 0);
  return kExitUsage;
}
