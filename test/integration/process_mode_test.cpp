// Process mode specifics (src/process/): fd passing really spreads clients
// over workers, a killed worker is replaced without hurting the others, and
// no process is left behind however the master stops. The whole protocol
// suite also runs against process mode (file_protocol_test.cpp, kModes).

#include <cjson/cJSON.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <xxhash.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "../support/client_for.hpp"
#include "../support/server_process.hpp"
#include "fsrv/client/client.hpp"

namespace fsrv::test {
namespace {

namespace fs = std::filesystem;

/// The "workers" array of a STATS reply: (pid, restarts, connections.total).
struct WorkerInfo {
  pid_t pid;
  int restarts;
  int total;
};

std::vector<WorkerInfo> workers_of(int port) {
  std::string reply = request(port, "STATS");
  std::vector<WorkerInfo> out;
  cJSON* root = cJSON_ParseWithLength(reply.data(), reply.size() >= 4 ? reply.size() - 4 : 0);
  cJSON* ws = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "data"), "workers");
  cJSON* w;
  cJSON_ArrayForEach(w, ws) {
    out.push_back(
        {static_cast<pid_t>(cJSON_GetObjectItem(w, "pid")->valuedouble),
         static_cast<int>(cJSON_GetObjectItem(w, "restarts")->valuedouble),
         static_cast<int>(
             cJSON_GetObjectItem(cJSON_GetObjectItem(w, "connections"), "total")->valuedouble)});
  }
  cJSON_Delete(root);
  return out;
}

// The state letter of /proc/PID/stat (R, S, T, Z...), or 0 once it is gone.
// `pid` may name a thread: /proc/PID/task/TID/stat.
char state_of(pid_t pid, pid_t tid = 0) {
  std::ifstream st("/proc/" + std::to_string(pid) +
                   (tid ? "/task/" + std::to_string(tid) : std::string()) + "/stat");
  if (!st) return 0;
  std::string line;
  std::getline(st, line);
  auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() ? line[paren + 2] : 0;
}

// A zombie still has /proc/PID: alive means there and not a zombie.
bool alive(pid_t pid) {
  char s = state_of(pid);
  return s != 0 && s != 'Z';
}

// True once every thread of `pid` has exited, so its descriptors are
// closed. The leader alone is not enough: it shows Z as soon as it exits,
// while another thread (TSan's background thread in a sanitized worker)
// still holds the shared descriptor table, and the channel, open.
bool all_threads_gone(pid_t pid) {
  std::error_code ec;
  for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    char s = state_of(pid, static_cast<pid_t>(std::stol(t.path().filename().string())));
    if (s != 0 && s != 'Z' && s != 'X') return false;
  }
  return true;
}

bool wait_all_gone(const std::vector<pid_t>& pids, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    bool any = false;
    for (pid_t p : pids) any |= alive(p);
    if (!any) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

/// Sends `size` bytes of a repeated byte through the client.
client::Result upload_fill(client::Client& c, const std::string& name, uint64_t size,
                           uint8_t byte) {
  uint64_t left = size;
  return c.upload(name, size, [&](std::span<uint8_t> out) {
    size_t n = std::min<uint64_t>(left, out.size());
    std::memset(out.data(), byte, n);
    left -= n;
    return static_cast<long>(n);
  });
}

TEST(ProcessMode, FiftyClientsSpreadOverWorkersByFdPassing) {
  TempDir root;
  ServerProcess server({"--mode", "process", "--workers", "5"}, root.path());
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&, i] {
      auto c = client_for(server.port());
      if (!c) return;
      std::string name = "p" + std::to_string(i);
      if (upload_fill(*c, name, 64 << 10, static_cast<uint8_t>(i)).ok()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 50);
  auto ws = workers_of(server.port());
  ASSERT_EQ(ws.size(), 5u);
  std::set<pid_t> pids;
  int busy_workers = 0;
  for (auto& w : ws) {
    pids.insert(w.pid);
    busy_workers += w.total > 0;
    EXPECT_NE(w.pid, server.pid());
  }
  EXPECT_EQ(pids.size(), 5u);
  EXPECT_GE(busy_workers, 3) << "connections were not spread over the workers";
}

TEST(ProcessMode, KilledWorkerIsReplacedAndOthersFinish) {
  TempDir root;
  const uint64_t size = small_mode() ? (4u << 20) : (40u << 20);
  ServerProcess server({"--mode", "process", "--workers", "3"}, root.path());
  auto before = workers_of(server.port());
  ASSERT_EQ(before.size(), 3u);
  // Transfers on several connections; then one worker is SIGKILLed mid-way.
  std::vector<std::thread> threads;
  std::vector<int> ok(6, 0);
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      auto c = client_for(server.port());
      if (c && upload_fill(*c, "k" + std::to_string(i), size, static_cast<uint8_t>('a' + i)).ok())
        ok[i] = 1;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  pid_t victim = before[0].pid;
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  for (auto& t : threads) t.join();
  // Every transfer that succeeded stored exactly its content.
  int succeeded = 0;
  for (int i = 0; i < 6; ++i) {
    if (!ok[i]) continue;
    ++succeeded;
    std::string path = root.file("k" + std::to_string(i));
    ASSERT_EQ(fs::file_size(path), size);
    std::ifstream in(path, std::ios::binary);
    std::vector<char> buf(1 << 20);
    bool same = true;
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      for (std::streamsize k = 0; k < in.gcount(); ++k)
        same &= buf[k] == static_cast<char>('a' + i);
    }
    EXPECT_TRUE(same) << "k" << i;
  }
  EXPECT_GE(succeeded, 3);  // the other workers' clients were not hurt
  // A replacement appears within a second, in the same slot.
  std::vector<WorkerInfo> after;
  for (int i = 0; i < 50; ++i) {
    after = workers_of(server.port());
    if (after.size() == 3 && after[0].pid != victim && alive(after[0].pid)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(after.size(), 3u);
  EXPECT_NE(after[0].pid, victim);
  EXPECT_EQ(after[0].restarts, 1);
  // New requests succeed on every worker.
  for (int i = 0; i < 6; ++i) {
    EXPECT_NE(request(server.port(), "PING").find("\"OK\""), std::string::npos);
  }
  // The file service's open-connections gauge forgot the dead worker's
  // connections: once the others are closed, only the STATS one is open.
  EXPECT_TRUE(eventually([&] {
    std::string r = request(server.port(), "STATS");
    cJSON* root = cJSON_Parse(r.c_str());
    const cJSON* active = cJSON_GetObjectItem(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "data"), "services"),
                                "file"),
            "connections"),
        "active");
    bool one = cJSON_IsNumber(active) && active->valuedouble == 1;
    cJSON_Delete(root);
    return one;
  })) << "file.connections.active still counts the killed worker's connections";
}

// Clients accepted in the moment after a worker died, before the master
// handled its SIGCHLD, go to a live worker: a pass to the dead one lands in
// its channel, whose worker end the master keeps open, and the master reads
// it back and passes it on instead of dropping it. The master is stopped
// (SIGSTOP) while the clients connect and then the worker is killed, so it
// wakes with the listener ready before the death is handled. The master is
// seen stopped in /proc before the clients connect (kill() returns before
// the stop takes effect), and it continues once every thread of the killed
// worker is gone (under TSan a worker has a second thread, and its leader
// shows Z while that thread still runs).
TEST(ProcessMode, ClientsAcceptedAsAWorkerDiesGoToALiveOne) {
  TempDir root;
  ServerProcess server({"--mode", "process", "--workers", "2"}, root.path());
  auto before = workers_of(server.port());
  ASSERT_EQ(before.size(), 2u);
  ASSERT_EQ(kill(server.pid(), SIGSTOP), 0);
  ASSERT_TRUE(eventually([&] { return state_of(server.pid()) == 'T'; }));
  std::vector<int> fds;
  for (int i = 0; i < 8; ++i) {
    int fd = connect_to(server.port());  // the kernel completes it: the backlog
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, "PING\r\n"));
    fds.push_back(fd);
  }
  ASSERT_EQ(kill(before[0].pid, SIGKILL), 0);
  ASSERT_TRUE(eventually([&] { return all_threads_gone(before[0].pid); }));
  ASSERT_EQ(kill(server.pid(), SIGCONT), 0);
  int answered = 0;
  for (int fd : fds) {
    std::string reply = read_reply(fd);
    answered += reply.find("\"OK\"") != std::string::npos;
    close(fd);
  }
  EXPECT_EQ(answered, 8) << "clients accepted while a worker was dead were dropped";
  EXPECT_NE(request(server.port(), "PING").find("\"OK\""), std::string::npos);
}

// Descriptors open in process `pid` (entries of /proc/PID/fd).
size_t open_fds(pid_t pid) {
  std::error_code ec;
  size_t n = 0;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

// Sockets passed to a worker that dies before taking them are not lost:
// the master keeps the worker's end of the channel open, reads the passes
// left in it when the worker dies, and passes those clients again. The
// victim is stopped (SIGSTOP) first so the clients it is given wait in its
// channel; with 2 workers they go to the other one, with 1 to its
// replacement. With `queued_in_master` > 0 there are more clients than the
// channel holds (about 2,700 passes in its 1 MiB send buffer on Linux 6):
// the rest wait in libuv's write queue, each socket still open in the
// master, and the test first sees at least that many more descriptors open
// in the master; at the worker's death those writes are cancelled
// (UV_ECANCELED) and their clients must be passed again too.
void expect_queued_clients_survive(int workers, int clients, size_t queued_in_master = 0) {
  TempDir root;
  std::vector<std::string> args = {"--mode", "process", "--workers", std::to_string(workers)};
  if (queued_in_master > 0) {
    rlimit rl{};
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;  // this process holds every client socket
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
    ASSERT_GT(rl.rlim_cur, static_cast<rlim_t>(clients + 200))
        << "RLIMIT_NOFILE too low for " << clients << " clients";
    const std::string limit = std::to_string(clients + 100);
    args.insert(args.end(), {"--max-conns", limit, "--max-conns-per-address", limit});
  }
  ServerProcess server(args, root.path());
  const size_t master_fds = open_fds(server.pid());
  auto before = workers_of(server.port());
  ASSERT_EQ(before.size(), static_cast<size_t>(workers));
  const pid_t victim = before[0].pid;
  ASSERT_EQ(kill(victim, SIGSTOP), 0);
  ASSERT_TRUE(eventually([&] { return state_of(victim) == 'T'; }));
  std::vector<int> fds;
  for (int i = 0; i < clients; ++i) {
    int fd = connect_to(server.port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, "PING\r\n"));
    fds.push_back(fd);
  }
  // The master has passed them all (some into the stopped worker's channel)
  // once the other worker answered its share; with one worker, at once.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  if (queued_in_master > 0) {
    // 20 s: a sanitized master under a loaded CI takes seconds for 4,000 accepts.
    ASSERT_TRUE(
        eventually([&] { return open_fds(server.pid()) >= master_fds + queued_in_master; }, 20000))
        << "the channel took every pass: " << open_fds(server.pid()) - master_fds
        << " sockets held by the master";
  }
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  int answered = 0;
  for (int fd : fds) {
    answered += read_reply(fd).find("\"OK\"") != std::string::npos;
    close(fd);
  }
  EXPECT_EQ(answered, clients) << "clients queued for the killed worker were dropped";
  EXPECT_NE(request(server.port(), "PING").find("\"OK\""), std::string::npos);
}

TEST(ProcessMode, ClientsQueuedForAWorkerThatDiesGoToAnother) {
  expect_queued_clients_survive(2, 8);
}

TEST(ProcessMode, ClientsQueuedForTheOnlyWorkerWaitForItsReplacement) {
  expect_queued_clients_survive(1, 4);
}

// Past the channel's capacity: passes waiting in libuv's write queue when
// the only worker dies are cancelled, and those clients wait for the
// replacement as well.
TEST(ProcessMode, ClientsQueuedPastAFullChannelWaitForTheReplacement) {
  expect_queued_clients_survive(1, 4000, 500);
}

TEST(ProcessMode, SigtermLeavesNoProcessBehind) {
  TempDir root;
  ServerProcess server({"--mode", "process", "--workers", "4"}, root.path());
  std::vector<pid_t> pids = {server.pid()};
  for (auto& w : workers_of(server.port())) pids.push_back(w.pid);
  ASSERT_EQ(pids.size(), 5u);
  int st = server.stop(SIGTERM);
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0);
  EXPECT_TRUE(wait_all_gone(pids, std::chrono::seconds(5)));
}

TEST(ProcessMode, WorkersExitWhenMasterIsKilled) {
  TempDir root;
  ServerProcess server({"--mode", "process", "--workers", "3"}, root.path());
  std::vector<pid_t> workers;
  for (auto& w : workers_of(server.port())) workers.push_back(w.pid);
  ASSERT_EQ(workers.size(), 3u);
  server.stop(SIGKILL);
  EXPECT_TRUE(wait_all_gone(workers, std::chrono::seconds(10)));
}

TEST(ProcessMode, ConcurrentUploadsOfOneNameNeverShowAPartialFile) {
  TempDir root;
  const uint64_t size = 2u << 20;
  ServerProcess server({"--mode", "process", "--workers", "4"}, root.path());
  std::atomic<bool> done{false};
  std::atomic<int> bad_reads{0}, reads{0};
  std::thread reader([&] {
    auto c = client_for(server.port());
    while (!done) {
      std::set<uint8_t> seen;
      uint64_t got = 0;
      client::Result r = c->get("same.bin", [&](std::span<const uint8_t> d) {
        for (uint8_t b : d) seen.insert(b);
        got += d.size();
        return true;
      });
      if (!r.ok()) continue;  // not there yet
      ++reads;
      if (got != size || seen.size() != 1) ++bad_reads;
    }
  });
  std::vector<std::thread> writers;
  for (int i = 0; i < 8; ++i) {
    writers.emplace_back([&, i] {
      for (int round = 0; round < 3; ++round) {
        auto c = client_for(server.port());
        EXPECT_TRUE(upload_fill(*c, "same.bin", size, static_cast<uint8_t>(i * 3 + round)).ok());
      }
    });
  }
  for (auto& t : writers) t.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  done = true;
  reader.join();
  EXPECT_EQ(bad_reads.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(fs::file_size(root.file("same.bin")), size);
  std::vector<std::string> names;
  for (auto& e : fs::directory_iterator(root.path())) names.push_back(e.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"same.bin"});
}

}  // namespace
}  // namespace fsrv::test
