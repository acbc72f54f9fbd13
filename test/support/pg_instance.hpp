#pragma once
// Test support: a throwaway PostgreSQL 15 server for the tests of the
// PostgreSQL chat store. initdb in a fresh temporary directory as the
// `postgres` user (PostgreSQL refuses to run as root), the server listening
// only on a Unix socket in that directory (no TCP port, so parallel runs
// never collide), stopped and its directory removed when the object goes.
// A test process that dies without running destructors still takes the
// server with it: the server is our child with PR_SET_PDEATHSIG = SIGQUIT
// (PostgreSQL's immediate shutdown), and the next start removes temporary
// directories whose owning test process is gone.
//
//   PgInstance* pg = PgInstance::shared();   // null (and why) if unavailable
//   std::string url = pg->create_database(); // postgresql:///t3?host=...
//
// Header-only, like server_process.hpp.

#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

namespace fsrv::test {

/// Where Debian's PostgreSQL 15 server programs are.
inline constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin";

class PgInstance {
 public:
  /// Makes and starts a new server (initdb about 1 s). Throws
  /// std::runtime_error with the reason when it cannot.
  PgInstance() {
    sweep_stale();
    std::string tmpl = (std::filesystem::temp_directory_path() /
                        ("fsrv-pg-" + std::to_string(getpid()) + "-XXXXXX"))
                           .string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    const passwd* pw = getpwnam("postgres");
    if (pw == nullptr) throw std::runtime_error("no postgres user");
    uid_ = pw->pw_uid;
    gid_ = pw->pw_gid;
    if (chown(dir_.c_str(), uid_, gid_) != 0) throw std::runtime_error("chown failed");
    // -A trust: only local sockets in a directory of our own reach it.
    std::string cmd = "runuser -u postgres -- " + std::string(kPgBin) +
                      "/initdb -A trust -U postgres --no-sync -D " + data_dir() + " >" + dir_ +
                      "/initdb.log 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      throw std::runtime_error("initdb failed (see " + dir_ + "/initdb.log)");
    }
    start();
  }

  ~PgInstance() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  PgInstance(const PgInstance&) = delete;
  PgInstance& operator=(const PgInstance&) = delete;

  /// The process-wide instance, started on first call; null when this
  /// machine cannot run one (not root, no PostgreSQL 15), with the reason
  /// in `why`. Call from the main thread (the server dies with the thread
  /// that started it).
  static PgInstance* shared(std::string* why = nullptr) {
    static std::string error;
    static std::unique_ptr<PgInstance> instance = []() -> std::unique_ptr<PgInstance> {
      if (geteuid() != 0) {
        error = "PostgreSQL tests need root (initdb runs as the postgres user)";
        return nullptr;
      }
      if (access((std::string(kPgBin) + "/postgres").c_str(), X_OK) != 0) {
        error = std::string("no PostgreSQL 15 server in ") + kPgBin;
        return nullptr;
      }
      try {
        return std::make_unique<PgInstance>();
      } catch (const std::exception& e) {
        error = e.what();
        return nullptr;
      }
    }();
    if (why) *why = error;
    return instance.get();
  }

  /// Starts the server on the existing data directory (crash recovery if it
  /// was stopped hard) and waits until it accepts connections (30 s at most).
  void start() {
    if (pid_ > 0) return;
    const std::string log = dir_ + "/postgres.log";
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      // Child: become postgres, then ask to die with the test process (the
      // parent-death signal is cleared by a credential change, so it is set
      // after setuid).
      if (setgroups(0, nullptr) != 0 || setgid(gid_) != 0 || setuid(uid_) != 0) _exit(127);
      prctl(PR_SET_PDEATHSIG, SIGQUIT);
      FILE* f = freopen(log.c_str(), "a", stderr);
      (void)f;
      execl((std::string(kPgBin) + "/postgres").c_str(), "postgres", "-D", data_dir().c_str(), "-k",
            dir_.c_str(), "-c", "listen_addresses=", "-c", "fsync=off", "-c", "max_connections=200",
            nullptr);
      _exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (PQping(admin_url().c_str()) != PQPING_OK) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("postgres exited at start (see " + log + ")");
      }
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("postgres not ready in 30 s (see " + log + ")");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  /// Stops the server: SIGQUIT (immediate shutdown, as a crash would) when
  /// `immediate`, else SIGINT (fast shutdown); waits for it.
  void stop(bool immediate = false) {
    if (pid_ <= 0) return;
    kill(pid_, immediate ? SIGQUIT : SIGINT);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  /// A libpq URI of database `db` on this server (Unix socket).
  std::string url(const std::string& db) const {
    return "postgresql:///" + db + "?host=" + dir_ + "&user=postgres";
  }
  std::string admin_url() const { return url("postgres"); }

  /// A new empty database; returns its URI.
  std::string create_database() {
    const std::string name = "t" + std::to_string(++databases_);
    PGconn* c = PQconnectdb(admin_url().c_str());
    PGresult* r = PQexec(c, ("CREATE DATABASE " + name).c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    std::string err = PQerrorMessage(c);
    PQclear(r);
    PQfinish(c);
    if (!ok) throw std::runtime_error("CREATE DATABASE failed: " + err);
    return url(name);
  }

  const std::string& dir() const { return dir_; }

 private:
  std::string data_dir() const { return dir_ + "/data"; }

  // Removes /tmp/fsrv-pg-PID-* of test processes that are gone.
  static void sweep_stale() {
    std::error_code ec;
    for (const auto& e :
         std::filesystem::directory_iterator(std::filesystem::temp_directory_path(), ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("fsrv-pg-", 0) != 0) continue;
      const int pid = std::atoi(name.c_str() + 8);
      if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) {
        std::filesystem::remove_all(e.path(), ec);
      }
    }
  }

  std::string dir_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  pid_t pid_ = -1;
  int databases_ = 0;
};

}  // namespace fsrv::test
