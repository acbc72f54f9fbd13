// bin/stress-grid: runs the course's stress table (docs/STRESS.md).
//
// Combinations: server mode {thread, process} x operation {download, upload}
// x volume {10, 50, 100} MB x client pool {1, 5, 50} x server pool {1, 5, 50}
// = 54 rows per server mode. Rows are numbered (Nomor 1..54 per mode) and
// run in table order. For each (server mode, server pool size) the driver
// starts its own bin/fileserver on 127.0.0.1, a free port and a fresh temp
// root, and stops it (SIGTERM) once the mode is done. Each row is one
// bin/stress run appending to grid.csv; at the end the driver writes
// grid.md, run.json and gnuplot PNGs into results/stress-<timestamp>/.
//
// Bounded: every wait has a deadline, every row has a timeout, Ctrl-C stops
// the servers and removes the temp roots.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>
#include <xxhash.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "csv.hpp"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

/// The course's MB: 10^6 bytes.
constexpr uint64_t kMB = 1000000;
/// How long a fresh server may take to print "listening file on HOST:PORT".
constexpr auto kServerStartTimeout = std::chrono::seconds(10);
/// How long a server may take to exit after SIGTERM before SIGKILL.
constexpr auto kServerStopTimeout = std::chrono::seconds(10);
/// Grace between SIGTERM and SIGKILL for a stress run that overran.
constexpr auto kChildKillGrace = std::chrono::seconds(3);
/// Poll interval of the bounded waits.
constexpr auto kPollInterval = std::chrono::milliseconds(20);
/// Row timeout = kRowBaseTimeout + bytes moved / kRowMinRate: generous (a
/// 50 x 100 MB row on 2 shared cores moves 5 GB at a few hundred MB/s) yet
/// bounded, so a wedged server cannot hang the grid.
constexpr double kRowBaseTimeoutS = 120;
constexpr double kRowMinRate = 2e6;  // B/s
/// Restarts allowed per server if it dies mid-grid.
constexpr int kMaxServerRestarts = 2;
/// A progress line for a long row every this often.
constexpr auto kProgressInterval = std::chrono::seconds(15);

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

/// One cell of the grid.
struct Combo {
  std::string mode;  ///< server mode: "thread" or "process"
  int nomor = 0;     ///< row number in its mode's table, 1-based
  std::string op;    ///< "download" or "upload"
  uint64_t volume_mb = 0;
  int clients = 0;
  int server_pool = 0;
};

/// Grid dimensions (from options; defaults are the course's).
struct GridSpec {
  std::vector<std::string> modes{"thread", "process"};
  std::vector<std::string> ops{"download", "upload"};
  std::vector<uint64_t> volumes_mb{10, 50, 100};
  std::vector<int> clients{1, 5, 50};
  std::vector<int> server_pools{1, 5, 50};
};

/// Every combination, in run order: mode, then the table order operation >
/// volume > client pool > server pool, numbered 1.. within each mode.
std::vector<Combo> make_combos(const GridSpec& g) {
  std::vector<Combo> out;
  for (const auto& mode : g.modes) {
    int n = 0;
    for (const auto& op : g.ops)
      for (uint64_t v : g.volumes_mb)
        for (int c : g.clients)
          for (int s : g.server_pools) out.push_back({mode, ++n, op, v, c, s});
  }
  return out;
}

/// Bytes a row moves over the network (download rows also upload the file
/// once first); used for the ETA and the row timeout.
double row_bytes(const Combo& c) {
  double v = double(c.volume_mb * kMB);
  return v * c.clients + (c.op == "download" ? v : 0);
}

/// Runs a shell command and returns its stdout (at most `limit` bytes),
/// trimmed; "" on failure. Only used for fixed informational commands.
std::string capture(const std::string& cmd, size_t limit = 4096) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>/dev/null").c_str(), "r");
  if (!p) return out;
  char buf[512];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0 && out.size() < limit) out.append(buf, n);
  ::pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

/// Escapes a string for a JSON string literal (without the quotes).
std::string json_escape(const std::string& s) {
  std::string o;
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        o += "\\\"";
        break;
      case '\\':
        o += "\\\\";
        break;
      case '\n':
        o += "\\n";
        break;
      case '\r':
        o += "\\r";
        break;
      case '\t':
        o += "\\t";
        break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          o += b;
        } else {
          o += char(c);
        }
    }
  }
  return o;
}
/// A JSON string literal.
std::string jstr(const std::string& s) { return "\"" + json_escape(s) + "\""; }

/// Local time formatted with strftime.
std::string timestamp(const char* format) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

/// Seconds as "1m05s" or "2h03m"; "?" when unknown.
std::string duration_text(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  long t = std::lround(s);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}

using fsrv::bench::Csv;
using fsrv::bench::read_csv;

/// A CSV number; NaN for an empty or non-numeric field.
double num(const std::string& s) {
  if (s.empty()) return NAN;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  return end == s.c_str() ? NAN : v;
}

/// `v` with `digits` decimals; "" for NaN (empty table cell).
std::string fixed(double v, int digits) {
  if (!std::isfinite(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

/// A child process started by the driver (server or stress).
struct Child {
  pid_t pid = -1;
  /// Reaps it if it has exited; returns true while it runs.
  bool alive(int* status = nullptr) {
    if (pid <= 0) return false;
    int st = 0;
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == 0) return true;
    if (status) *status = st;
    pid = -1;
    return false;
  }
  /// SIGTERM, wait up to `grace`, then SIGKILL; always reaps. Returns the
  /// wait status.
  int stop(std::chrono::milliseconds grace) {
    int st = 0;
    if (pid <= 0) return 0;
    ::kill(pid, SIGTERM);
    auto deadline = Clock::now() + grace;
    while (alive(&st)) {
      if (Clock::now() >= deadline) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &st, 0);
        pid = -1;
        break;
      }
      std::this_thread::sleep_for(kPollInterval);
    }
    return st;
  }
};

/// fork+exec `argv` with stdout and stderr appended to the given files
/// ("" = inherit). The child dies with the driver (PR_SET_PDEATHSIG).
/// Throws std::runtime_error if fork fails.
Child spawn(const std::vector<std::string>& argv, const fs::path& out, const fs::path& err) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGHUP, SIG_DFL);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    if (!out.empty()) {
      int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) ::dup2(fd, 1);
    }
    if (!err.empty()) {
      int fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) ::dup2(fd, 2);
    }
    ::execv(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  return Child{pid};
}

/// Text of a file from byte `from` on (bounded to the last `limit` bytes).
std::string tail_from(const fs::path& path, uintmax_t from, size_t limit = 2000) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  auto size = uintmax_t(in.tellg());
  if (size <= from) return "";
  uintmax_t start = std::max<uintmax_t>(from, size > limit ? size - limit : 0);
  in.seekg(std::streamoff(start));
  std::string s(size_t(size - start), '\0');
  in.read(s.data(), std::streamsize(s.size()));
  return s;
}

/// Last non-empty line of a text, without a log prefix such as
/// "05:45:37.596 [9131] error: " (time, [pid], level).
std::string last_line(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  auto pos = s.rfind('\n');
  std::string line = pos == std::string::npos ? s : s.substr(pos + 1);
  size_t i = line.find_first_not_of("0123456789:.");
  if (i == 0 || i == std::string::npos || line.compare(i, 2, " [") != 0) return line;
  size_t close = line.find("] ", i);
  if (close == std::string::npos) return line;
  if (line.substr(i + 2, close - i - 2).find_first_not_of("0123456789") != std::string::npos)
    return line;
  size_t colon = line.find(": ", close + 2);
  if (colon == std::string::npos ||
      line.substr(close + 2, colon - close - 2).find(' ') != std::string::npos)
    return line;
  return line.substr(colon + 2);
}

/// Size of a file in bytes, 0 if it does not exist.
uintmax_t file_size_or0(const fs::path& p) {
  std::error_code ec;
  auto n = fs::file_size(p, ec);
  return ec ? 0 : n;
}

/// Driver options (CLI).
struct Options {
  bool dry_run = false;
  bool quick = false;
  std::string client_pool = "thread";
  std::vector<std::string> modes{"thread", "process"};
  std::string codec = "fast";
  std::string bin_dir;
  std::string out_parent = "results";
  std::string root_parent;
  bool verify_uploads = false;
  bool no_plots = false;
};

/// A server for one (mode, pool size): its process, port, root and logs.
class Server {
 public:
  Server(const Options& o, fs::path bin, fs::path log_dir, std::string mode, int workers)
      : opt_(o),
        bin_(std::move(bin)),
        log_dir_(std::move(log_dir)),
        mode_(std::move(mode)),
        workers_(workers) {}
  ~Server() { stop(); }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Starts it (fresh temp root, port 0). Returns "" or why it failed.
  std::string start() {
    stop();
    std::string tmpl = (fs::path(opt_.root_parent) / "fsrv-stress-root-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) return std::string("mkdtemp: ") + std::strerror(errno);
    root_ = tmpl;
    std::string base = "server-" + mode_ + "-" + std::to_string(workers_);
    out_ = log_dir_ / (base + ".out");
    err_ = log_dir_ / (base + ".err");
    uintmax_t out_from = file_size_or0(out_), err_from = file_size_or0(err_);
    std::vector<std::string> argv = {(bin_ / "fileserver").string(),
                                     "--host",
                                     "127.0.0.1",
                                     "--port",
                                     "0",
                                     "--root",
                                     root_.string(),
                                     "--workers",
                                     std::to_string(workers_),
                                     "--mode",
                                     mode_,
                                     "--codec",
                                     opt_.codec};
    try {
      child_ = spawn(argv, out_, err_);
    } catch (const std::exception& e) {
      return e.what();
    }
    auto deadline = Clock::now() + kServerStartTimeout;
    for (;;) {
      std::string out = tail_from(out_, out_from, 4096);
      auto pos = out.find("listening file on ");
      auto eol = pos == std::string::npos ? pos : out.find('\n', pos);
      if (eol != std::string::npos) {
        std::string addr = out.substr(pos + 18, eol - pos - 18);
        auto colon = addr.rfind(':');
        port_ = colon == std::string::npos ? 0 : std::atoi(addr.c_str() + colon + 1);
        if (port_ > 0 && port_ < 65536) return "";
        stop();
        return "cannot parse the server's first line: " + out.substr(pos, eol - pos);
      }
      int status = 0;
      if (!child_.alive(&status)) {
        std::string why = last_line(tail_from(err_, err_from));
        if (why.empty()) why = last_line(tail_from(out_, out_from));
        std::string how = WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                            : "signal " + std::to_string(WTERMSIG(status));
        stop();
        return "fileserver --mode " + mode_ + " did not start (" + how + ")" +
               (why.empty() ? "" : ": " + why);
      }
      if (Clock::now() >= deadline || g_stop) {
        stop();
        return "fileserver did not print 'listening file on' within " +
               std::to_string(
                   std::chrono::duration_cast<std::chrono::seconds>(kServerStartTimeout).count()) +
               " s";
      }
      std::this_thread::sleep_for(kPollInterval);
    }
  }

  /// SIGTERM (then SIGKILL after a bounded wait) and removes the temp root.
  /// Returns a note if the server did not exit cleanly, else "".
  std::string stop() {
    std::string note;
    if (child_.pid > 0) {
      int st =
          child_.stop(std::chrono::duration_cast<std::chrono::milliseconds>(kServerStopTimeout));
      if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        note = WIFEXITED(st) ? "server exited with status " + std::to_string(WEXITSTATUS(st))
                             : "server ended by signal " + std::to_string(WTERMSIG(st));
    }
    if (!root_.empty()) {
      std::error_code ec;
      fs::remove_all(root_, ec);
      root_.clear();
    }
    return note;
  }

  bool alive() { return child_.alive(); }
  int port() const { return port_; }
  int restarts = 0;
  std::string failure;  ///< set when the server cannot be (re)started

 private:
  const Options& opt_;
  fs::path bin_, log_dir_;
  std::string mode_;
  int workers_;
  Child child_;
  fs::path root_, out_, err_;
  int port_ = 0;
};

/// Machine, versions and options as JSON (run.json).
std::string run_json(const Options& o, const GridSpec& g, size_t rows, const std::string& started,
                     const std::string& finished, double elapsed_s,
                     const std::vector<std::string>& notes) {
  std::string cpu = capture("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'");
  std::string mem_kib = capture("awk '/MemTotal/ {print $2}' /proc/meminfo");
  utsname u{};
  ::uname(&u);
  std::string root_parent = o.root_parent;
  std::string mount = capture("findmnt -n -o SOURCE,FSTYPE,TARGET --target '" + root_parent + "'");
  std::string source = capture("findmnt -n -o SOURCE --target '" + root_parent + "'");
  std::string fstype = capture("findmnt -n -o FSTYPE --target '" + root_parent + "'");
  std::string rota, model, medium = "unknown";
  if (source.rfind("/dev/", 0) == 0) {
    rota = capture("lsblk -ndo ROTA '" + source + "' | tr -d ' '");
    if (rota.empty()) rota = capture("lsblk -no ROTA '" + source + "' | tail -1 | tr -d ' '");
    model = capture("lsblk -ndo MODEL '" + source + "'");
    medium = rota == "0"   ? "non-rotational (SSD/NVMe/RAM)"
             : rota == "1" ? "rotational (HDD, or a virtual disk reporting ROTA=1)"
                           : "unknown";
  } else if (fstype == "tmpfs" || fstype == "ramfs") {
    medium = "RAM (" + fstype + ")";
  }
  auto list = [](const auto& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) {
      std::ostringstream os;
      os << v[i];
      s += (i ? ", " : "") +
           (std::is_arithmetic_v<std::decay_t<decltype(v[i])>> ? os.str() : jstr(os.str()));
    }
    return s + "]";
  };
  std::string nl = list(notes);
  std::ostringstream j;
  j << "{\n"
    << "  \"started\": " << jstr(started) << ",\n"
    << "  \"finished\": " << jstr(finished) << ",\n"
    << "  \"elapsed_s\": " << fixed(elapsed_s, 1) << ",\n"
    << "  \"rows\": " << rows << ",\n"
    << "  \"units\": {\"Volume\": \"MB = 10^6 bytes\", \"Waktu\": \"seconds\", \"Throughput\": "
       "\"bytes per second\"},\n"
    << "  \"machine\": {\n"
    << "    \"cpu_model\": " << jstr(cpu) << ",\n"
    << "    \"cores_online\": " << ::sysconf(_SC_NPROCESSORS_ONLN) << ",\n"
    << "    \"memory_total_bytes\": "
    << (mem_kib.empty() ? "null" : std::to_string(std::atoll(mem_kib.c_str()) * 1024)) << ",\n"
    << "    \"kernel\": "
    << jstr(std::string(u.sysname) + " " + u.release + " " + u.version + " " + u.machine) << ",\n"
    << "    \"server_root_parent\": " << jstr(root_parent) << ",\n"
    << "    \"storage\": {\"mount\": " << jstr(mount) << ", \"source\": " << jstr(source)
    << ", \"fstype\": " << jstr(fstype) << ", \"rota\": " << jstr(rota)
    << ", \"model\": " << jstr(model) << ", \"medium\": " << jstr(medium) << "}\n"
    << "  },\n"
    << "  \"versions\": {\n"
    << "    \"compiler\": " << jstr(__VERSION__) << ",\n"
    << "    \"libuv\": " << jstr(uv_version_string()) << ",\n"
    << "    \"xxhash\": " << XXH_versionNumber() << ",\n"
    << "    \"git_commit\": " << jstr(capture("git rev-parse HEAD")) << ",\n"
    << "    \"git_dirty\": "
    << (capture("git status --porcelain --untracked-files=no | head -1").empty() ? "false" : "true")
    << ",\n"
    << "    \"gnuplot\": " << jstr(capture("gnuplot --version")) << "\n"
    << "  },\n"
    << "  \"options\": {\n"
    << "    \"quick\": " << (o.quick ? "true" : "false") << ",\n"
    << "    \"client_pool\": " << jstr(o.client_pool) << ",\n"
    << "    \"server_modes\": " << list(g.modes) << ",\n"
    << "    \"operations\": " << list(g.ops) << ",\n"
    << "    \"volumes_mb\": " << list(g.volumes_mb) << ",\n"
    << "    \"client_pools\": " << list(g.clients) << ",\n"
    << "    \"server_pools\": " << list(g.server_pools) << ",\n"
    << "    \"codec\": " << jstr(o.codec) << ",\n"
    << "    \"verify_uploads\": " << (o.verify_uploads ? "true" : "false") << ",\n"
    << "    \"bin_dir\": " << jstr(o.bin_dir) << "\n"
    << "  },\n"
    << "  \"notes\": " << nl << "\n"
    << "}\n";
  return j.str();
}

/// grid.md: one Markdown table per server mode, human units.
std::string grid_markdown(const Csv& csv, const Options& o, const std::string& started) {
  std::ostringstream md;
  md << "# Stress test " << started << "\n\n"
     << "Volume: MB = 10^6 bytes. Waktu = seconds (mean over the row's client workers; p50/max "
        "likewise). "
     << "Throughput per client = bytes a client transferred successfully / its own duration, mean "
        "over the "
     << "row's clients; aggregate = all bytes transferred / row wall time; both in MB/s (10^6 "
        "B/s). "
     << "Client pool mode: " << o.client_pool
     << ". Server sukses/gagal = STATS delta. Details: run.json.\n";
  std::vector<std::string> modes;
  for (size_t i = 0; i < csv.rows.size(); ++i) {
    std::string m = csv.get(i, "Server mode");
    if (std::find(modes.begin(), modes.end(), m) == modes.end()) modes.push_back(m);
  }
  for (const auto& mode : modes) {
    md << "\n## Server mode: " << mode << "\n\n"
       << "| Nomor | Operasi | Volume | Jumlah client worker pool | Jumlah server worker pool | "
          "Waktu total per client (s) | Throughput per client (MB/s) | Client sukses | Client "
          "gagal | "
          "Server sukses | Server gagal | p50 (s) | max (s) | Throughput agregat (MB/s) | Catatan "
          "|\n"
       << "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
    for (size_t i = 0; i < csv.rows.size(); ++i) {
      if (csv.get(i, "Server mode") != mode) continue;
      std::string note = csv.get(i, "Alasan gagal");
      if (csv.get(i, "Status") == "skipped") note = "skipped: " + note;
      for (auto& ch : note)
        if (ch == '|' || ch == '\n') ch = ' ';
      md << "| " << csv.get(i, "Nomor") << " | " << csv.get(i, "Operasi") << " | "
         << csv.get(i, "Volume") << " | " << csv.get(i, "Jumlah client worker pool") << " | "
         << csv.get(i, "Jumlah server worker pool") << " | "
         << fixed(num(csv.get(i, "Waktu total per client")), 3) << " | "
         << fixed(num(csv.get(i, "Throughput per client")) / 1e6, 2) << " | "
         << csv.get(i, "Client sukses") << " | " << csv.get(i, "Client gagal") << " | "
         << csv.get(i, "Server sukses") << " | " << csv.get(i, "Server gagal") << " | "
         << fixed(num(csv.get(i, "Waktu p50 per client")), 3) << " | "
         << fixed(num(csv.get(i, "Waktu max per client")), 3) << " | "
         << fixed(num(csv.get(i, "Throughput agregat")) / 1e6, 2) << " | " << note << " |\n";
    }
  }
  return md.str();
}

/// Writes plot.dat + plot.gp and runs gnuplot: for each metric a PNG with one
/// panel per (operation, volume), x = client pool (log), one line per
/// (server mode, server pool). Returns "" or a warning.
std::string make_plots(const Csv& csv, const fs::path& dir) {
  if (capture("command -v gnuplot").empty())
    return "gnuplot not found: plots skipped (apt-get install gnuplot-nox)";
  struct Point {
    double clients, time_s, thr_mbs;
  };
  using Series = std::pair<std::string, int>;  // mode, server pool
  std::map<std::pair<std::string, double>, std::map<Series, std::vector<Point>>>
      panels;  // (op, volume MB)
  std::vector<std::string> ops;
  std::set<double> volumes, client_pools;
  for (size_t i = 0; i < csv.rows.size(); ++i) {
    if (csv.get(i, "Status") != "ok") continue;
    std::string op = csv.get(i, "Operasi");
    double vol = num(csv.get(i, "Volume bytes")) / double(kMB);
    Point p{num(csv.get(i, "Jumlah client worker pool")), num(csv.get(i, "Waktu total per client")),
            num(csv.get(i, "Throughput per client")) / 1e6};
    if (!std::isfinite(p.clients) || !std::isfinite(vol)) continue;
    if (std::find(ops.begin(), ops.end(), op) == ops.end()) ops.push_back(op);
    volumes.insert(vol);
    client_pools.insert(p.clients);
    panels[{op, vol}]
          [{csv.get(i, "Server mode"), int(num(csv.get(i, "Jumlah server worker pool")))}]
              .push_back(p);
  }
  if (panels.empty()) return "no measured rows: plots skipped";
  std::ofstream dat(dir / "plot.dat");
  std::ostringstream gp;
  int index = 0;
  std::map<std::pair<std::string, double>, std::vector<std::pair<int, std::string>>> blocks;
  for (auto& [panel, series] : panels) {
    for (auto& [s, pts] : series) {
      std::sort(pts.begin(), pts.end(),
                [](const Point& a, const Point& b) { return a.clients < b.clients; });
      dat << "# " << panel.first << " " << panel.second << " MB, server " << s.first << " pool "
          << s.second << "\n";
      for (const auto& p : pts) dat << p.clients << " " << p.time_s << " " << p.thr_mbs << "\n";
      dat << "\n\n";
      blocks[panel].push_back({index++, s.first + " server, pool " + std::to_string(s.second)});
    }
  }
  dat.close();
  struct Metric {
    const char* file;
    const char* title;
    const char* ylabel;
    int column;
    const char* key;  ///< where the legend hides the fewest points
  };
  const Metric metrics[] = {
      {"throughput-per-client.png", "Throughput per client", "MB/s (10^6 B/s)", 3, "top right"},
      {"time-per-client.png", "Waktu total per client", "seconds", 2, "top left"}};
  gp << "# Generated by stress-grid; re-run with: gnuplot plot.gp (in this folder)\n"
     << "set datafile separator whitespace\n";
  int cols = int(volumes.size()), rows = int(ops.size());
  std::string xtics;
  for (double c : client_pools) xtics += (xtics.empty() ? "" : ", ") + fixed(c, 0);
  // Log x with a margin either side so the first and last points are visible.
  std::string xmin = fixed(*client_pools.begin() / 1.3, 2),
              xmax = fixed(*client_pools.rbegin() * 1.3, 2);
  for (const auto& m : metrics) {
    gp << "set terminal pngcairo size " << 520 * cols << "," << 420 * rows << " font ',10'\n"
       << "set output '" << m.file << "'\n"
       << "set multiplot layout " << rows << "," << cols << " title '" << m.title
       << " vs client pool size (lines: server mode and pool)'\n"
       << "set logscale x\nset xrange [" << xmin << ":" << xmax << "]\nset xtics (" << xtics
       << ")\nset xlabel 'client worker pool'\nset ylabel '" << m.ylabel << "'\nset key " << m.key
       << " font ',8'\nset grid\n";
    for (const auto& op : ops) {
      for (double v : volumes) {
        gp << "set title '" << op << " " << v << " MB'\n";
        auto it = blocks.find({op, v});
        if (it == blocks.end()) {
          gp << "set multiplot next\n";
          continue;
        }
        gp << "plot ";
        for (size_t k = 0; k < it->second.size(); ++k)
          gp << (k ? ", " : "") << "'plot.dat' index " << it->second[k].first
             << " using 1:" << m.column << " with linespoints title '" << it->second[k].second
             << "'";
        gp << "\n";
      }
    }
    gp << "unset multiplot\n";
  }
  std::ofstream(dir / "plot.gp") << gp.str();
  std::string cmd = "cd '" + dir.string() + "' && gnuplot plot.gp >plot.log 2>&1";
  if (std::system(cmd.c_str()) != 0)
    return "gnuplot failed (see " + (dir / "plot.log").string() + ")";
  return "";
}

/// Folder of this executable (from /proc/self/exe).
fs::path self_dir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path(".") : p.parent_path();
}

}  // namespace

/// Parses the options (see --help), then dry-runs or runs the grid.
int main(int argc, char** argv) {
  Options o;
  GridSpec g;
  CLI::App app{
      "Runs the stress grid (54 rows per server mode) and writes results/stress-<timestamp>/."};
  app.add_flag("--dry-run", o.dry_run, "list the combinations (numbered, in run order) and exit");
  app.add_flag("--quick", o.quick, "reduced grid: volumes 1 and 5 MB, pools {1, 5}");
  app.add_option("--client-pool", o.client_pool, "stress workers as threads or processes")
      ->check(CLI::IsMember({"thread", "process"}))
      ->capture_default_str();
  app.add_option("--server-modes", o.modes, "server modes to run")
      ->delimiter(',')
      ->check(CLI::IsMember({"thread", "process"}))
      ->capture_default_str();
  app.add_option("--codec", o.codec, "base64 codec (server and client)")
      ->check(CLI::IsMember({"fast", "libb64"}))
      ->capture_default_str();
  app.add_option("--bin", o.bin_dir,
                 "folder with fileserver and stress (default: this program's folder)");
  app.add_option("--out", o.out_parent, "parent folder of stress-<timestamp>/")
      ->capture_default_str();
  app.add_option("--root-parent", o.root_parent,
                 "where the servers' temp roots go (default $TMPDIR or /tmp)");
  app.add_flag("--verify-uploads", o.verify_uploads,
               "GET every upload back after its row and check its xxHash");
  app.add_flag("--no-plots", o.no_plots, "skip the gnuplot PNGs");
  CLI11_PARSE(app, argc, argv);

  if (o.quick) {
    g.volumes_mb = {1, 5};
    g.clients = {1, 5};
    g.server_pools = {1, 5};
  }
  g.modes = o.modes;
  if (o.bin_dir.empty()) o.bin_dir = self_dir().string();
  if (o.root_parent.empty()) {
    const char* t = std::getenv("TMPDIR");
    o.root_parent = t && *t ? t : "/tmp";
  }
  auto combos = make_combos(g);

  if (o.dry_run) {
    std::printf("# %zu rows: server modes", combos.size());
    for (const auto& m : g.modes) std::printf(" %s", m.c_str());
    std::printf("; client pool %s; columns: k mode nomor operation volume_mb clients server_pool\n",
                o.client_pool.c_str());
    for (size_t k = 0; k < combos.size(); ++k) {
      const auto& c = combos[k];
      std::printf("%zu\t%s\t%d\t%s\t%llu\t%d\t%d\n", k + 1, c.mode.c_str(), c.nomor, c.op.c_str(),
                  (unsigned long long)c.volume_mb, c.clients, c.server_pool);
    }
    return 0;
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGHUP, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  fs::path bin(o.bin_dir);
  for (const char* prog : {"fileserver", "stress"}) {
    if (::access((bin / prog).c_str(), X_OK) != 0) {
      std::fprintf(stderr, "stress-grid: %s not found or not executable (build it: make all)\n",
                   (bin / prog).c_str());
      return 2;
    }
  }
  std::string started = timestamp("%Y-%m-%dT%H:%M:%S%z");
  fs::path dir = fs::path(o.out_parent) / ("stress-" + timestamp("%Y%m%d-%H%M%S"));
  for (int n = 2; fs::exists(dir) && n < 100; ++n)
    dir =
        fs::path(o.out_parent) / ("stress-" + timestamp("%Y%m%d-%H%M%S") + "-" + std::to_string(n));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "stress-grid: cannot create %s: %s\n", dir.c_str(), ec.message().c_str());
    return 2;
  }
  fs::path csv_path = dir / "grid.csv", log = dir / "stress.log";
  std::vector<std::string> notes;
  std::map<std::pair<std::string, int>, std::unique_ptr<Server>> servers;

  double total_bytes = 0;
  for (const auto& c : combos) total_bytes += row_bytes(c);
  double done_bytes = 0, measured_s = 0;
  std::map<std::string, double> op_bytes, op_seconds;  // measured rows, per operation
  auto t0 = Clock::now();
  std::fprintf(stderr, "stress-grid: %zu rows into %s\n", combos.size(), dir.c_str());

  auto skip_row = [&](const Combo& c, const std::string& reason) {
    Child ch =
        spawn({(bin / "stress").string(), "--op", c.op, "--size", std::to_string(c.volume_mb * kMB),
               "--clients", std::to_string(c.clients), "--pool", o.client_pool, "--server-workers",
               std::to_string(c.server_pool), "--mode-label", c.mode, "--row",
               std::to_string(c.nomor), "--csv", csv_path.string(), "--skip-reason", reason},
              log, log);
    int st = 0;
    ::waitpid(ch.pid, &st, 0);
  };

  std::string current_mode;
  for (size_t k = 0; k < combos.size() && !g_stop; ++k) {
    const Combo& c = combos[k];
    if (c.mode != current_mode) {  // a mode is done: stop its servers
      for (auto& [key, s] : servers)
        if (std::string note = s->stop(); !note.empty())
          notes.push_back(key.first + " pool " + std::to_string(key.second) + ": " + note);
      servers.clear();
      current_mode = c.mode;
    }
    auto& srv = servers[{c.mode, c.server_pool}];
    if (!srv) {
      srv = std::make_unique<Server>(o, bin, dir, c.mode, c.server_pool);
      srv->failure = srv->start();
      if (!srv->failure.empty()) {
        std::fprintf(stderr, "stress-grid: %s\n", srv->failure.c_str());
        notes.push_back(srv->failure);
      }
    } else if (srv->failure.empty() && !srv->alive()) {
      std::string note = c.mode + " server pool " + std::to_string(c.server_pool) +
                         " died before row " + std::to_string(c.nomor);
      if (srv->restarts++ < kMaxServerRestarts) {
        srv->failure = srv->start();
        note += srv->failure.empty() ? "; restarted" : "; restart failed: " + srv->failure;
      } else {
        srv->failure = "server died too often";
      }
      std::fprintf(stderr, "stress-grid: %s\n", note.c_str());
      notes.push_back(note);
    }

    std::fprintf(stderr, "[%zu/%zu] %s server %d, %s %llu MB x %d clients (%s)...\n", k + 1,
                 combos.size(), c.mode.c_str(), c.server_pool, c.op.c_str(),
                 (unsigned long long)c.volume_mb, c.clients, o.client_pool.c_str());
    if (!srv->failure.empty()) {
      std::fprintf(stderr, "    -> skipped: %s\n", srv->failure.c_str());
      skip_row(c, srv->failure);
      continue;
    }
    size_t rows_before = read_csv(csv_path).rows.size();
    uintmax_t log_from = file_size_or0(log);
    std::vector<std::string> args = {(bin / "stress").string(),
                                     "--host",
                                     "127.0.0.1",
                                     "--port",
                                     std::to_string(srv->port()),
                                     "--op",
                                     c.op,
                                     "--size",
                                     std::to_string(c.volume_mb * kMB),
                                     "--clients",
                                     std::to_string(c.clients),
                                     "--pool",
                                     o.client_pool,
                                     "--server-workers",
                                     std::to_string(c.server_pool),
                                     "--codec",
                                     o.codec,
                                     "--csv",
                                     csv_path.string(),
                                     "--row",
                                     std::to_string(c.nomor),
                                     "--mode-label",
                                     c.mode};
    if (o.verify_uploads) args.push_back("--verify-uploads");
    auto row_start = Clock::now();
    double timeout_s = kRowBaseTimeoutS + row_bytes(c) / kRowMinRate;
    Child ch = spawn(args, log, log);
    int st = 0;
    bool timed_out = false;
    auto next_progress = row_start + kProgressInterval;
    while (ch.alive(&st)) {
      auto now = Clock::now();
      double el = std::chrono::duration<double>(now - row_start).count();
      if (g_stop || el > timeout_s) {
        timed_out = !g_stop;
        st = ch.stop(std::chrono::duration_cast<std::chrono::milliseconds>(kChildKillGrace));
        break;
      }
      if (now >= next_progress) {
        std::fprintf(stderr, "    row %zu/%zu still running (%s)\n", k + 1, combos.size(),
                     duration_text(el).c_str());
        next_progress = now + kProgressInterval;
      }
      std::this_thread::sleep_for(kPollInterval);
    }
    if (g_stop) break;
    double row_s = std::chrono::duration<double>(Clock::now() - row_start).count();
    Csv csv = read_csv(csv_path);
    if (csv.rows.size() == rows_before) {
      std::string why = timed_out ? "row timed out after " + duration_text(timeout_s)
                                  : "stress failed (" +
                                        (WIFEXITED(st) ? "exit " + std::to_string(WEXITSTATUS(st))
                                                       : "signal " + std::to_string(WTERMSIG(st))) +
                                        "): " + last_line(tail_from(log, log_from));
      std::fprintf(stderr, "    -> %s\n", why.c_str());
      skip_row(c, why);
    } else {
      size_t i = csv.rows.size() - 1;
      done_bytes += row_bytes(c);
      measured_s += row_s;
      op_bytes[c.op] += row_bytes(c);
      op_seconds[c.op] += row_s;
      // Remaining bytes at the rate measured so far for their operation
      // (uploads are slower than downloads), else the overall rate.
      double eta = 0;
      for (size_t j = k + 1; j < combos.size(); ++j) {
        const std::string& op = combos[j].op;
        double rate = op_seconds[op] > 0 ? op_bytes[op] / op_seconds[op] : done_bytes / measured_s;
        eta += rate > 0 ? row_bytes(combos[j]) / rate : NAN;
      }
      std::fprintf(stderr,
                   "    -> %.1f MB/s aggregate, %.1f MB/s per client, clients ok %s/%d, server ok "
                   "%s; %s; ETA %s\n",
                   num(csv.get(i, "Throughput agregat")) / 1e6,
                   num(csv.get(i, "Throughput per client")) / 1e6,
                   csv.get(i, "Client sukses").c_str(), c.clients,
                   csv.get(i, "Server sukses").c_str(), duration_text(row_s).c_str(),
                   duration_text(eta).c_str());
    }
  }
  for (auto& [key, s] : servers)
    if (std::string note = s->stop(); !note.empty())
      notes.push_back(key.first + " pool " + std::to_string(key.second) + ": " + note);
  servers.clear();
  double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  if (g_stop) notes.push_back("interrupted by a signal");
  (void)total_bytes;

  Csv csv = read_csv(csv_path);
  std::ofstream(dir / "grid.md") << grid_markdown(csv, o, started);
  if (!o.no_plots) {
    if (std::string w = make_plots(csv, dir); !w.empty()) {
      std::fprintf(stderr, "stress-grid: warning: %s\n", w.c_str());
      notes.push_back(w);
    }
  }
  std::ofstream(dir / "run.json") << run_json(o, g, csv.rows.size(), started,
                                              timestamp("%Y-%m-%dT%H:%M:%S%z"), elapsed, notes);
  std::fprintf(stderr, "stress-grid: %zu rows in %s\n", csv.rows.size(),
               duration_text(elapsed).c_str());
  std::printf("%s\n", dir.c_str());
  return g_stop ? 130 : 0;
}
