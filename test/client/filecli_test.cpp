// End-to-end tests of bin/filecli: exit codes and output against nothing,
// against the scripted peer, and against the real server. Binaries are found
// through $FSRV_BIN (a directory); cases whose binary is missing skip.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../support/server_process.hpp"
#include "peer_server.hpp"

extern char** environ;

namespace fsrv::client {
namespace {

namespace fs = std::filesystem;
using testing::PeerServer;
using testing::Step;

constexpr std::string_view kEnd = "\r\n\r\n";

/// $FSRV_BIN/<name>, or "" if FSRV_BIN is unset or the file is missing.
std::string program(const char* name) {
  const char* dir = std::getenv("FSRV_BIN");
  if (dir == nullptr || *dir == '\0') return "";
  std::string path = std::string(dir) + "/" + name;
  return ::access(path.c_str(), X_OK) == 0 ? path : "";
}

/// A fresh directory removed at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "filecli-test-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path)) out.push_back(e.path().filename().string());
    return out;
  }
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary);
  out << data;
}

/// Exit code and captured output of one filecli run.
struct CliRun {
  int code = -1;
  std::string out;
  std::string err;
};

/// Starts filecli with args, stdout/stderr to files in `scratch`; returns
/// its pid or -1.
pid_t spawn_filecli(const std::vector<std::string>& args, const fs::path& scratch) {
  std::string bin = program("filecli");
  std::vector<std::string> argv_s = {bin};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  fs::path out = scratch / "stdout.txt", err = scratch / "stderr.txt";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  if (posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

/// Waits for a spawned filecli; returns its exit code or 128 + signal.
int wait_exit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/// Runs filecli with args; stdout/stderr go through files in `scratch`.
CliRun run_filecli(const std::vector<std::string>& args, const fs::path& scratch) {
  fs::path out = scratch / "stdout.txt", err = scratch / "stderr.txt";
  CliRun r;
  pid_t pid = spawn_filecli(args, scratch);
  if (pid > 0) r.code = wait_exit(pid);
  r.out = read_file(out);
  r.err = read_file(err);
  fs::remove(out);
  fs::remove(err);
  return r;
}

/// A port with nothing listening (bound, then released).
uint16_t free_port() {
  PeerServer probe({});
  uint16_t port = probe.port();
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);  // let the probe's accept() return
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  (void)::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::close(fd);
  return port;
}

#define REQUIRE_FILECLI() \
  if (program("filecli").empty()) GTEST_SKIP() << "no $FSRV_BIN/filecli yet"

TEST(FilecliUsage, BadUsageExitsTwo) {
  REQUIRE_FILECLI();
  TempDir d;
  for (std::vector<std::string> args :
       std::vector<std::vector<std::string>>{{},
                                             {"get"},
                                             {"bogus"},
                                             {"-p", "notaport", "ping"},
                                             {"-p", "70000", "ping"},
                                             {"--codec", "nope", "ping"},
                                             {"upload"},
                                             {"list", "extra"}}) {
    CliRun r = run_filecli(args, d.path);
    EXPECT_EQ(r.code, 2) << "args: " << ::testing::PrintToString(args) << " stderr: " << r.err;
    EXPECT_FALSE(r.err.empty());
  }
}

TEST(FilecliUsage, HelpExitsZero) {
  REQUIRE_FILECLI();
  TempDir d;
  CliRun r = run_filecli({"--help"}, d.path);
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("upload"), std::string::npos);
}

TEST(FilecliConnection, NothingListeningExitsThree) {
  REQUIRE_FILECLI();
  TempDir d;
  std::string port = std::to_string(free_port());
  CliRun r = run_filecli({"-p", port, "ping"}, d.path);
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("connect"), std::string::npos) << r.err;
  CliRun g = run_filecli({"-p", port, "get", "x", "-o", d.path.string()}, d.path);
  EXPECT_EQ(g.code, 3);
  EXPECT_TRUE(d.entries().empty());
}

TEST(FilecliPeer, TruncatedGetExitsThreeAndLeavesNoTempFile) {
  REQUIRE_FILECLI();
  TempDir d;
  Step s{{"{\"status\":\"OK\",\"data_namafile\":\"x\",\"data_file\":\"", std::string(400000, 'A')}};
  s.close_after = true;
  PeerServer peer({s});
  CliRun r =
      run_filecli({"-p", std::to_string(peer.port()), "get", "x", "-o", d.path.string()}, d.path);
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_TRUE(d.entries().empty()) << ::testing::PrintToString(d.entries());
}

TEST(FilecliPeer, ServerErrorExitsOneWithMessage) {
  REQUIRE_FILECLI();
  TempDir d;
  PeerServer peer(
      {Step{{"{\"status\":\"ERROR\",\"data\":\"file not found: x\"}" + std::string(kEnd)}}});
  CliRun r =
      run_filecli({"-p", std::to_string(peer.port()), "get", "x", "-o", d.path.string()}, d.path);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("file not found: x"), std::string::npos) << r.err;
  EXPECT_TRUE(d.entries().empty());
}

TEST(FilecliPeer, GetWritesTheFileAndOutputs) {
  REQUIRE_FILECLI();
  TempDir d;
  PeerServer peer(
      {Step{{"{\"status\":\"OK\",\"data_namafile\":\"h.txt\",\"data_file\":\"aGVsbG8gd29ybGQ=\"}" +
             std::string(kEnd)}}});
  CliRun r = run_filecli({"-p", std::to_string(peer.port()), "get", "h.txt", "-o", d.path.string()},
                         d.path);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_file(d.path / "h.txt"), "hello world");
  EXPECT_EQ(d.entries(), std::vector<std::string>{"h.txt"});
}

TEST(FilecliPeer, SizeAndListFormatting) {
  REQUIRE_FILECLI();
  TempDir d;
  {
    PeerServer peer(
        {Step{{"{\"status\":\"OK\",\"data\":{\"name\":\"a b\",\"bytes\":1500000,\"mb\":1.43}}" +
               std::string(kEnd)}}});
    CliRun r = run_filecli({"-p", std::to_string(peer.port()), "size", "a b"}, d.path);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "a b 1500000 bytes (1.43 MB)\n");
    peer.join();
    EXPECT_EQ(peer.requests(), std::vector<std::string>{"SIZE \"a b\"\r\n"});
  }
  {
    PeerServer peer(
        {Step{{"{\"status\":\"OK\",\"data\":[\"a.jpg\",\"b c.pdf\"]}" + std::string(kEnd)}}});
    CliRun r = run_filecli({"-p", std::to_string(peer.port()), "list"}, d.path);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "a.jpg\nb c.pdf\n");
  }
  {
    PeerServer peer({Step{{"{\"status\":\"OK\",\"data\":\"surprise\"}" + std::string(kEnd)}}});
    CliRun r = run_filecli({"-p", std::to_string(peer.port()), "list"}, d.path);
    EXPECT_EQ(r.code, 3);
  }
}

TEST(FilecliPeer, DashWritesToStdoutAndDevNullStaysADevice) {
  REQUIRE_FILECLI();
  TempDir d;
  std::string reply =
      "{\"status\":\"OK\",\"data_namafile\":\"h\",\"data_file\":\"aGVsbG8gd29ybGQ=\"}" +
      std::string(kEnd);
  {
    PeerServer peer({Step{{reply}}});
    CliRun r = run_filecli({"-p", std::to_string(peer.port()), "get", "h", "-o", "-"}, d.path);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "hello world");
  }
  {
    PeerServer peer({Step{{reply}}});
    CliRun r =
        run_filecli({"-p", std::to_string(peer.port()), "get", "h", "-o", "/dev/null"}, d.path);
    ASSERT_EQ(r.code, 0) << r.err;
    struct stat st {};
    ASSERT_EQ(::stat("/dev/null", &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
  }
}

TEST(FilecliPeer, InterruptedGetLeavesNoTempFile) {
  REQUIRE_FILECLI();
  TempDir d, scratch;
  // Half a reply, then silence: filecli sits in the middle of the download.
  PeerServer peer({Step{
      {"{\"status\":\"OK\",\"data_namafile\":\"x\",\"data_file\":\"", std::string(4000, 'A')}}});
  pid_t pid = spawn_filecli(
      {"-p", std::to_string(peer.port()), "get", "x", "-o", (d.path / "x").string()}, scratch.path);
  ASSERT_GT(pid, 0);
  bool started = false;
  for (int i = 0; i < 500 && !started; ++i) {  // up to 5 s for the temp file to appear
    started = !d.entries().empty();
    if (!started) ::usleep(10000);
  }
  EXPECT_TRUE(started);
  ::usleep(50000);  // let it write the first bytes
  ::kill(pid, SIGINT);
  EXPECT_EQ(wait_exit(pid), 128 + SIGINT);
  EXPECT_TRUE(d.entries().empty()) << ::testing::PrintToString(d.entries());
}

/// Fixture with the real server serving a fresh root.
class FilecliServer : public ::testing::Test {
 protected:
  void SetUp() override {
    if (program("filecli").empty() || program("fileserver").empty()) {
      GTEST_SKIP() << "no $FSRV_BIN/filecli or $FSRV_BIN/fileserver yet";
    }
    try {
      server_ = std::make_unique<fsrv::test::ServerProcess>(std::vector<std::string>{},
                                                            root_.path.string());
    } catch (const std::exception& e) {
      FAIL() << e.what();
    }
  }
  CliRun cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"-p", std::to_string(server_->port())});
    return run_filecli(args, scratch_.path);
  }
  TempDir root_, scratch_, local_;
  std::unique_ptr<fsrv::test::ServerProcess> server_;
};

TEST_F(FilecliServer, Ping) {
  CliRun r = cli({"ping"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "connected\n");
}

TEST_F(FilecliServer, UploadGetRoundTripByteForByte) {
  std::mt19937 rng(42);
  std::string data((3 << 20) + 1, '\0');  // 3 MiB + 1: several chunks and a partial quantum
  for (char& c : data) c = static_cast<char>(rng());
  fs::path src = local_.path / "src.bin";
  write_file(src, data);
  const std::string name = "round trip.bin";
  for (auto [up, down] : {std::pair{"fast", "libb64"}, std::pair{"libb64", "fast"}}) {
    SCOPED_TRACE(std::string(up) + " -> " + down);
    CliRun u = cli({"--codec", up, "upload", src.string(), "--as", name});
    ASSERT_EQ(u.code, 0) << u.err;
    CliRun l = cli({"list"});
    ASSERT_EQ(l.code, 0) << l.err;
    EXPECT_NE(l.out.find(name + "\n"), std::string::npos) << l.out;
    CliRun s = cli({"size", name});
    ASSERT_EQ(s.code, 0) << s.err;
    EXPECT_EQ(s.out.rfind(name + " 3145729 bytes (", 0), 0u) << s.out;
    fs::path out = local_.path / "down.bin";
    CliRun g = cli({"--codec", down, "get", name, "-o", out.string()});
    ASSERT_EQ(g.code, 0) << g.err;
    std::string back = read_file(out);
    ASSERT_EQ(back.size(), data.size());
    EXPECT_TRUE(back == data);
    fs::remove(out);
  }
  EXPECT_EQ(local_.entries(), std::vector<std::string>{"src.bin"});  // no temp files left
}

TEST_F(FilecliServer, MissingFileExitsOneAndLeavesNoTempFile) {
  CliRun r = cli({"get", "no-such-file.txt", "-o", local_.path.string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_FALSE(r.err.empty());
  EXPECT_TRUE(local_.entries().empty()) << ::testing::PrintToString(local_.entries());
  EXPECT_EQ(cli({"size", "no-such-file.txt"}).code, 1);
  EXPECT_EQ(cli({"delete", "no-such-file.txt"}).code, 1);
}

TEST_F(FilecliServer, DeleteThenGetFails) {
  fs::path src = local_.path / "small.txt";
  write_file(src, "small file\n");
  ASSERT_EQ(cli({"upload", src.string()}).code, 0);
  CliRun d = cli({"delete", "small.txt"});
  EXPECT_EQ(d.code, 0) << d.err;
  EXPECT_EQ(cli({"get", "small.txt", "-o", (local_.path / "back.txt").string()}).code, 1);
  EXPECT_FALSE(fs::exists(local_.path / "back.txt"));
}

TEST_F(FilecliServer, StatsIsPrettyJson) {
  CliRun r = cli({"stats"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("{", 0), 0u) << r.out;
}

TEST_F(FilecliServer, MissingLocalFileExitsOne) {
  CliRun r = cli({"upload", (local_.path / "absent").string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("absent"), std::string::npos);
}

}  // namespace
}  // namespace fsrv::client
