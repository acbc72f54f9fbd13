// The file protocol end to end over real sockets against a real
// bin/fileserver child (docs/PROTOCOL.md). The suite is parameterised by the
// server's pool mode, so every case runs against each mode listed in
// kModes.

#include <cjson/cJSON.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <xxhash.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "../support/client_for.hpp"
#include "../support/server_process.hpp"
#include "fsrv/client/client.hpp"

namespace fsrv::test {
namespace {

namespace fs = std::filesystem;

/// Parses a reply (terminator included) and returns the JSON root (owned).
struct Json {
  explicit Json(const std::string& reply) {
    EXPECT_GE(reply.size(), 4u);
    EXPECT_EQ(reply.substr(reply.size() >= 4 ? reply.size() - 4 : 0), "\r\n\r\n") << reply;
    root = cJSON_ParseWithLength(reply.data(), reply.size() >= 4 ? reply.size() - 4 : 0);
    EXPECT_NE(root, nullptr) << "not JSON: " << reply.substr(0, 200);
  }
  ~Json() { cJSON_Delete(root); }
  std::string status() const { return str("status"); }
  std::string str(const char* key) const {
    cJSON* v = root ? cJSON_GetObjectItemCaseSensitive(root, key) : nullptr;
    return cJSON_IsString(v) ? v->valuestring : "";
  }
  cJSON* get(const char* key) const {
    return root ? cJSON_GetObjectItemCaseSensitive(root, key) : nullptr;
  }
  cJSON* root = nullptr;
};

/// STATS data -> services.file.commands.
cJSON* file_commands(cJSON* data) {
  return cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(data, "services"), "file"),
                             "commands");
}

std::string b64(const std::string& raw) {
  std::string out(codec::encoded_size(raw.size()), '\0');
  codec::encoder(codec::Base64Kind::kLibb64)
      .encode({reinterpret_cast<const uint8_t*>(raw.data()), raw.size()}, out.data());
  return out;
}

/// Deterministic pseudo-random bytes, generated in pieces (never whole).
struct RandomSource {
  uint64_t left;
  std::mt19937_64 rng;
  XXH3_state_t* hash = XXH3_createState();
  RandomSource(uint64_t n, uint64_t seed) : left(n), rng(seed) { XXH3_64bits_reset(hash); }
  ~RandomSource() { XXH3_freeState(hash); }
  long operator()(std::span<uint8_t> out) {
    size_t n = std::min<uint64_t>(left, out.size()) & ~size_t{7};
    if (n == 0) n = std::min<uint64_t>(left, out.size());
    for (size_t i = 0; i < n; i += 8) {
      uint64_t v = rng();
      std::memcpy(out.data() + i, &v, std::min<size_t>(8, n - i));
    }
    XXH3_64bits_update(hash, out.data(), n);
    left -= n;
    return static_cast<long>(n);
  }
  uint64_t digest() const { return XXH3_64bits_digest(hash); }
};

uint64_t hash_file(const std::string& path) {
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  std::ifstream in(path, std::ios::binary);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    XXH3_64bits_update(st, buf.data(), static_cast<size_t>(in.gcount()));
  }
  uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

/// Files in `dir`, hidden ones included.
std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> v;
  for (auto& e : fs::directory_iterator(dir)) v.push_back(e.path().filename().string());
  std::sort(v.begin(), v.end());
  return v;
}

class FileProtocol : public ::testing::TestWithParam<Mode> {
 protected:
  /// Starts the server of this mode with `extra` options.
  void start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = GetParam().args;
    args.insert(args.end(), extra.begin(), extra.end());
    server = std::make_unique<ServerProcess>(args, root.path());
  }
  void SetUp() override { start(); }
  int port() const { return server->port(); }

  TempDir root;
  std::unique_ptr<ServerProcess> server;
};

TEST_P(FileProtocol, ByteExactRepliesForEveryCommand) {
  spit(root.file("a.txt"), "abc");
  EXPECT_EQ(request(port(), "PING"), "{\"status\":\"OK\",\"data\":\"connected\"}\r\n\r\n");
  EXPECT_EQ(request(port(), "LIST"), "{\"status\":\"OK\",\"data\":[\"a.txt\"]}\r\n\r\n");
  EXPECT_EQ(request(port(), "GET a.txt"),
            "{\"status\":\"OK\",\"data_namafile\":\"a.txt\",\"data_file\":\"YWJj\"}\r\n\r\n");
  EXPECT_EQ(request(port(), "UPLOAD b.txt aGVsbG8="),
            "{\"status\":\"OK\",\"data\":\"b.txt uploaded (5 bytes)\"}\r\n\r\n");
  EXPECT_EQ(slurp(root.file("b.txt")), "hello");
  EXPECT_EQ(request(port(), "SIZE b.txt"),
            "{\"status\":\"OK\",\"data\":{\"name\":\"b.txt\",\"bytes\":5,\"mb\":0}}\r\n\r\n");
  EXPECT_EQ(request(port(), "DELETE b.txt"),
            "{\"status\":\"OK\",\"data\":\"b.txt deleted\"}\r\n\r\n");
  EXPECT_FALSE(fs::exists(root.file("b.txt")));
  EXPECT_EQ(request(port(), "GET b.txt"),
            "{\"status\":\"ERROR\",\"data\":\"no such file: b.txt\"}\r\n\r\n");
  EXPECT_EQ(request(port(), "CONNME"), "{\"status\":\"OK\",\"data\":\"connected\"}\r\n\r\n");
  Json unknown(request(port(), "FROB"));
  EXPECT_EQ(unknown.status(), "ERROR");
  EXPECT_EQ(unknown.str("data"), "unknown command: FROB");
}

TEST_P(FileProtocol, StatsCountsRequests) {
  spit(root.file("a.txt"), "abc");
  request(port(), "GET a.txt");
  request(port(), "GET nope.txt");
  request(port(), "LIST");
  // A worker counts a request once its reply is written, and the next
  // connection (STATS) may reach another worker first: wait for the count.
  EXPECT_TRUE(eventually([&] {
    Json s(request(port(), "STATS"));
    cJSON* c = file_commands(s.get("data"));
    auto count = [&](const char* verb, const char* field) {
      cJSON* v = cJSON_GetObjectItem(c, verb);
      return v ? cJSON_GetObjectItem(v, field)->valuedouble : -1;
    };
    return count("GET", "ok") == 1 && count("GET", "failed") == 1 && count("LIST", "ok") == 1;
  }));
  Json stats(request(port(), "STATS"));
  ASSERT_EQ(stats.status(), "OK");
  cJSON* cmds = file_commands(stats.get("data"));
  cJSON* get = cJSON_GetObjectItem(cmds, "GET");
  EXPECT_EQ(cJSON_GetObjectItem(get, "ok")->valuedouble, 1);
  EXPECT_EQ(cJSON_GetObjectItem(get, "failed")->valuedouble, 1);
  EXPECT_EQ(cJSON_GetObjectItem(cJSON_GetObjectItem(cmds, "LIST"), "ok")->valuedouble, 1);
  cJSON* conns = cJSON_GetObjectItem(stats.get("data"), "connections");
  EXPECT_GE(cJSON_GetObjectItem(conns, "total")->valuedouble, 4);
  EXPECT_GT(cJSON_GetObjectItem(stats.get("data"), "bytes_out")->valuedouble, 0);
}

TEST_P(FileProtocol, QuotedNamesAndJsonEscaping) {
  Json up(request(port(), "UPLOAD \"my \\\"odd\\\" file.txt\" QUJD"));
  EXPECT_EQ(up.status(), "OK") << up.str("data");
  EXPECT_EQ(slurp(root.file("my \"odd\" file.txt")), "ABC");
  Json list(request(port(), "LIST"));
  ASSERT_TRUE(cJSON_IsArray(list.get("data")));
  EXPECT_EQ(std::string(cJSON_GetArrayItem(list.get("data"), 0)->valuestring),
            "my \"odd\" file.txt");
  Json get(request(port(), "get \"my \\\"odd\\\" file.txt\""));
  EXPECT_EQ(get.str("data_namafile"), "my \"odd\" file.txt");
  EXPECT_EQ(get.str("data_file"), "QUJD");
}

TEST_P(FileProtocol, PipelinedRequestsAnsweredInOrder) {
  spit(root.file("a.txt"), "abc");
  int fd = connect_to(port());
  ASSERT_GE(fd, 0);
  send_all(fd, "PING\r\n\r\nUPLOAD p.txt QUJD\r\n\r\nGET a.txt\r\nLIST\nQUIT\r\n");
  std::string rest;
  EXPECT_EQ(Json(read_reply(fd, &rest)).str("data"), "connected");
  EXPECT_EQ(Json(read_reply(fd, &rest)).str("data"), "p.txt uploaded (3 bytes)");
  EXPECT_EQ(Json(read_reply(fd, &rest)).str("data_file"), "YWJj");
  Json list(read_reply(fd, &rest));
  EXPECT_EQ(cJSON_GetArraySize(list.get("data")), 2);
  EXPECT_EQ(Json(read_reply(fd, &rest)).status(), "OK");
  char c;
  EXPECT_EQ(recv(fd, &c, 1, 0), 0);  // QUIT closed the connection
  close(fd);
}

/// Peak RSS in KiB of the server and its worker processes.
std::vector<long> server_peak_rss_kib(pid_t server) { return server_status_kib(server, "VmHWM"); }

// A client that pipelines a flood of requests and reads nothing until it has
// sent them all: the server stops reading while its write queue is above the
// high watermark (Connection::kHighWater) instead of buffering every reply,
// and answers every request once the client reads.
TEST_P(FileProtocol, PipelinedFloodIsAnsweredWithBoundedMemory) {
  // 1M requests make 41 MB of replies: far above what the server may buffer.
  const int kRequests = small_mode() ? 100000 : 1000000;
  int fd = connect_to(port());
  ASSERT_GE(fd, 0);
  std::thread sender([fd, kRequests] {
    std::string batch;
    for (int i = 0; i < 1000; ++i) batch += "PING\r\n";
    for (int i = 0; i < kRequests / 1000; ++i) send_all(fd, batch);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let the queue fill
  const std::string one = "{\"status\":\"OK\",\"data\":\"connected\"}\r\n\r\n";
  size_t want = one.size() * kRequests, got = 0;
  std::string tail;
  char buf[1 << 16];
  bool all_same = true;
  while (got < want) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    tail.append(buf, static_cast<size_t>(n));
    size_t whole = tail.size() / one.size() * one.size();
    for (size_t k = 0; k < whole; k += one.size())
      all_same &= tail.compare(k, one.size(), one) == 0;
    tail.erase(0, whole);
    got += static_cast<size_t>(n);
  }
  sender.join();
  close(fd);
  EXPECT_EQ(got, want);
  EXPECT_TRUE(all_same);
  // Every process of the server stayed small: peak RSS well under the
  // replies' total size (the write queue was bounded, not the kernel).
  // Without the watermark thread mode peaks at ~350 MB here. Sanitizer
  // builds (small mode) have their own RSS overhead: not checked there.
  if (small_mode()) return;
  for (long kib : server_peak_rss_kib(server->pid())) EXPECT_LT(kib, 32 * 1024);
}

// GET pulls: a client that reads nothing for a while makes the server stop
// after the chunks in flight, whatever the file size. Without that
// backpressure the whole base64 (341 MiB here) would sit in the server.
TEST_P(FileProtocol, SlowReaderOfHugeGetKeepsServerMemoryBounded) {
  const uint64_t size = small_mode() ? (32u << 20) : (256u << 20);
  {
    std::ofstream f(root.file("huge.bin"), std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size - 1));
    f.put('z');  // sparse: cheap to make, still read and encoded in full
  }
  int fd = connect_to(port());
  send_all(fd, "GET huge.bin\r\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  if (!small_mode()) {
    for (long kib : server_peak_rss_kib(server->pid())) EXPECT_LT(kib, 48 * 1024);
  }
  // Now read it all: the reply is complete and ends with the right bytes.
  const std::string prefix = "{\"status\":\"OK\",\"data_namafile\":\"huge.bin\",\"data_file\":\"";
  const uint64_t want = prefix.size() + codec::encoded_size(size) + 6;
  uint64_t got = 0;
  std::string head, last;
  std::vector<char> buf(1 << 20);
  while (got < want) {
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    if (head.size() < prefix.size()) head.append(buf.data(), std::min<size_t>(n, prefix.size()));
    last = (last + std::string(buf.data(), static_cast<size_t>(n)));
    if (last.size() > 32) last.erase(0, last.size() - 32);
    got += static_cast<uint64_t>(n);
  }
  close(fd);
  EXPECT_EQ(got, want);
  EXPECT_EQ(head.substr(0, prefix.size()), prefix);
  // The file ends with zeros and one 'z': encode its last whole quanta.
  std::string tail_raw(size % 3 == 0 ? 6 : 3 + size % 3, '\0');
  tail_raw.back() = 'z';
  const std::string tail = b64(tail_raw) + "\"}\r\n\r\n";
  ASSERT_GE(last.size(), tail.size());
  EXPECT_EQ(last.substr(last.size() - tail.size()), tail);
}

// UPLOAD reads into two chunk buffers and pauses while both wait for the
// disk: a client pushing a large payload as fast as it can never makes the
// server buffer it.
TEST_P(FileProtocol, FastUploaderKeepsServerMemoryBounded) {
  const uint64_t size = small_mode() ? (24u << 20) : (240u << 20);  // multiple of 3
  int fd = connect_to(port());
  send_all(fd, "UPLOAD flood.bin ");
  const std::string chunk(4 << 20, 'Q');  // "QQQQ" decodes to 0x41 0x04 0x10
  for (uint64_t sent = 0; sent < codec::encoded_size(size); sent += chunk.size()) {
    ASSERT_TRUE(send_all(fd, chunk));
  }
  send_all(fd, "\r\n");
  Json r(read_reply(fd));
  close(fd);
  EXPECT_EQ(r.str("data"), "flood.bin uploaded (" + std::to_string(size) + " bytes)");
  EXPECT_EQ(fs::file_size(root.file("flood.bin")), size);
  if (!small_mode()) {
    for (long kib : server_peak_rss_kib(server->pid())) EXPECT_LT(kib, 48 * 1024);
  }
}

// A client that stops reading in the middle of a GET is closed after the
// idle timeout (no write progress), and the GET counts as failed.
TEST_P(FileProtocol, StalledGetReaderIsClosedAfterIdleTimeout) {
  start({"--idle-timeout", "0.5"});
  {
    std::ofstream f(root.file("big.bin"), std::ios::binary);
    f.seekp((64 << 20) - 1);
    f.put('z');
  }
  // 85 MB of base64 is far more than both kernels' socket buffers hold
  // (a few MB), so the server's writes stall while we do not read.
  int fd = connect_to(port());
  send_all(fd, "GET big.bin\r\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  uint64_t got = 0;
  std::vector<char> buf(1 << 20);
  for (ssize_t n; (n = recv(fd, buf.data(), buf.size(), 0)) > 0;) got += static_cast<uint64_t>(n);
  close(fd);
  EXPECT_LT(got, codec::encoded_size(64 << 20));  // cut short: the server closed it
  Json stats(request(port(), "STATS"));
  cJSON* get = cJSON_GetObjectItem(file_commands(stats.get("data")), "GET");
  EXPECT_EQ(cJSON_GetObjectItem(get, "failed")->valuedouble, 1);
  EXPECT_EQ(cJSON_GetObjectItem(get, "ok")->valuedouble, 0);
}

TEST_P(FileProtocol, BigFileRoundTripKeepsContent) {
  const uint64_t size = small_mode() ? (8u << 20) : (100u << 20);
  auto c = client_for(port());
  ASSERT_TRUE(c);
  RandomSource src(size, 42);
  client::Result up = c->upload("big.bin", size, std::ref(src));
  ASSERT_TRUE(up.ok()) << up.message;
  EXPECT_EQ(fs::file_size(root.file("big.bin")), size);
  EXPECT_EQ(hash_file(root.file("big.bin")), src.digest());
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  uint64_t got = 0;
  client::Result down = c->get("big.bin", [&](std::span<const uint8_t> d) {
    XXH3_64bits_update(st, d.data(), d.size());
    got += d.size();
    return true;
  });
  ASSERT_TRUE(down.ok()) << down.message;
  EXPECT_EQ(got, size);
  EXPECT_EQ(XXH3_64bits_digest(st), src.digest());
  XXH3_freeState(st);
}

TEST_P(FileProtocol, FiftyConcurrentClientsAllSucceed) {
  constexpr int kClients = 50;
  const uint64_t size = small_mode() ? (256u << 10) : (10u << 20);
  std::atomic<int> ok{0};
  std::vector<std::string> errors(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      auto c = client_for(port());
      if (!c) return;
      std::string name = "c" + std::to_string(i) + ".bin";
      RandomSource src(size, 1000 + i);
      client::Result up = c->upload(name, size, std::ref(src));
      if (!up.ok()) {
        errors[i] = "upload: " + up.message;
        return;
      }
      XXH3_state_t* st = XXH3_createState();
      XXH3_64bits_reset(st);
      client::Result down = c->get(name, [&](std::span<const uint8_t> d) {
        XXH3_64bits_update(st, d.data(), d.size());
        return true;
      });
      uint64_t h = XXH3_64bits_digest(st);
      XXH3_freeState(st);
      if (!down.ok()) {
        errors[i] = "get: " + down.message;
      } else if (h != src.digest()) {
        errors[i] = "content differs";
      } else {
        ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) EXPECT_EQ(errors[i], "") << "client " << i;
  EXPECT_EQ(ok.load(), kClients);
}

TEST_P(FileProtocol, LegacyClientWithoutTerminatorIsServed) {
  spit(root.file("a.txt"), "abc");
  int fd = connect_to(port());
  send_all(fd, "LIST");
  Json list(read_reply(fd));
  EXPECT_EQ(list.status(), "OK");
  send_all(fd, "GET a.txt");
  EXPECT_EQ(Json(read_reply(fd)).str("data_file"), "YWJj");
  close(fd);
}

TEST_P(FileProtocol, FinalUnterminatedRequestBeforeHalfCloseIsServed) {
  spit(root.file("a.txt"), "abc");
  int fd = connect_to(port());
  send_all(fd, "GET a.txt");
  shutdown(fd, SHUT_WR);
  EXPECT_EQ(Json(read_reply(fd)).str("data_file"), "YWJj");
  char c;
  EXPECT_EQ(recv(fd, &c, 1, 0), 0);
  close(fd);
}

TEST_P(FileProtocol, UploadCutShortByEofIsDiscardedEvenIfValid) {
  spit(root.file("f.txt"), "old");
  int fd = connect_to(port());
  send_all(fd, "UPLOAD f.txt QUJD");  // valid base64, but no terminator
  shutdown(fd, SHUT_WR);
  Json r(read_reply(fd));
  EXPECT_EQ(r.status(), "ERROR");
  EXPECT_NE(r.str("data").find("interrupted"), std::string::npos);
  close(fd);
  EXPECT_EQ(slurp(root.file("f.txt")), "old");
}

TEST_P(FileProtocol, PathTraversalRefusedInEverySpelling) {
  TempDir outside;
  spit(outside.file("secret"), "s");
  std::string rel = fs::relative(outside.file("secret"), root.path()).string();
  for (std::string name : {std::string("../secret"), rel, outside.file("secret"),
                           std::string("..\\\\secret"), std::string(".."), std::string(".")}) {
    SCOPED_TRACE(name);
    Json g(request(port(), "GET \"" + name + "\""));
    EXPECT_EQ(g.status(), "ERROR");
    Json d(request(port(), "DELETE \"" + name + "\""));
    EXPECT_EQ(d.status(), "ERROR");
    Json u(request(port(), "UPLOAD \"" + name + "\" QUJD"));
    EXPECT_EQ(u.status(), "ERROR");
  }
  EXPECT_EQ(slurp(outside.file("secret")), "s");
  EXPECT_EQ(entries(outside.path()), std::vector<std::string>{"secret"});
  EXPECT_TRUE(entries(root.path()).empty());
  // The protocol does no percent-decoding: "%2e%2e%2f" is a literal name
  // and lands inside the root like any other.
  EXPECT_EQ(Json(request(port(), "UPLOAD %2e%2e%2fsecret QUJD")).status(), "OK");
  EXPECT_EQ(entries(root.path()), std::vector<std::string>{"%2e%2e%2fsecret"});
}

TEST_P(FileProtocol, SymlinkInRootCannotEscape) {
  TempDir outside;
  spit(outside.file("secret"), "top secret");
  fs::create_symlink(outside.file("secret"), root.file("link"));
  fs::create_symlink(outside.path(), root.file("dirlink"));
  EXPECT_EQ(Json(request(port(), "GET link")).status(), "ERROR");
  EXPECT_EQ(Json(request(port(), "SIZE link")).status(), "ERROR");
  EXPECT_EQ(Json(request(port(), "GET dirlink")).status(), "ERROR");
  EXPECT_EQ(Json(request(port(), "DELETE link")).status(), "ERROR");
  Json list(request(port(), "LIST"));
  EXPECT_EQ(cJSON_GetArraySize(list.get("data")), 0);
  // Uploading over the link replaces the link itself, never the target.
  EXPECT_EQ(Json(request(port(), "UPLOAD link QUJD")).status(), "OK");
  EXPECT_EQ(slurp(outside.file("secret")), "top secret");
  EXPECT_FALSE(fs::is_symlink(root.file("link")));
}

TEST_P(FileProtocol, DisconnectMidUploadLeavesOldContentAndNoTemporary) {
  const std::string old = "old content";
  spit(root.file("f.bin"), old);
  int fd = connect_to(port());
  send_all(fd, "UPLOAD f.bin ");
  std::string chunk = b64(std::string(3 << 20, 'x'));
  send_all(fd, chunk);  // 4 MiB of valid base64, then the client vanishes
  close(fd);
  // The server notices the reset; give it a moment, then check.
  for (int i = 0; i < 100; ++i) {
    Json s(request(port(), "STATS"));
    cJSON* up =
        cJSON_GetObjectItem(cJSON_GetObjectItem(file_commands(s.get("data")), "UPLOAD"), "failed");
    if (up && up->valuedouble >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(slurp(root.file("f.bin")), old);
  EXPECT_EQ(entries(root.path()), std::vector<std::string>{"f.bin"});
}

TEST_P(FileProtocol, InvalidBase64GivesErrorAndConnectionKeepsServing) {
  spit(root.file("f.bin"), "old");
  int fd = connect_to(port());
  send_all(fd, "UPLOAD f.bin QUJDRA*=\r\n\r\nPING\r\n");
  std::string rest;
  Json bad(read_reply(fd, &rest));
  EXPECT_EQ(bad.status(), "ERROR");
  EXPECT_NE(bad.str("data").find("offset 6"), std::string::npos) << bad.str("data");
  EXPECT_EQ(Json(read_reply(fd, &rest)).str("data"), "connected");
  send_all(fd, "UPLOAD g.bin QQ==QUJD\r\n");
  Json pad(read_reply(fd, &rest));
  EXPECT_EQ(pad.status(), "ERROR");
  close(fd);
  EXPECT_EQ(slurp(root.file("f.bin")), "old");
  EXPECT_EQ(entries(root.path()), std::vector<std::string>{"f.bin"});
}

TEST_P(FileProtocol, UploadOfAnUnquotedNameWithASpaceSaysQuoteIt) {
  // As GET and DELETE already say: not "invalid base64 character 0x2e".
  int fd = connect_to(port());
  send_all(fd, "UPLOAD my file.txt " + b64("hello") + "\r\nPING\r\n");
  std::string rest;
  Json bad(read_reply(fd, &rest));
  EXPECT_EQ(bad.status(), "ERROR");
  EXPECT_EQ(bad.str("data"), "too many arguments for UPLOAD (quote a name that has spaces)");
  EXPECT_EQ(Json(read_reply(fd, &rest)).str("data"), "connected");
  // Quoted, the same name uploads.
  send_all(fd, "UPLOAD \"my file.txt\" " + b64("hello") + "\r\n");
  EXPECT_EQ(Json(read_reply(fd, &rest)).status(), "OK");
  close(fd);
  EXPECT_EQ(entries(root.path()), std::vector<std::string>{"my file.txt"});
}

TEST_P(FileProtocol, LongUploadLineWithoutTheSpaceIsToldBeforeItEnds) {
  // A client that joins name and base64 with a comma: the answer comes
  // while the line is still being sent, and names the two likely causes.
  int fd = connect_to(port());
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string payload = b64(std::string(3 << 20, 'z'));
  send_all(fd, "UPLOAD f.bin," + payload.substr(0, 65536));
  std::string rest;
  Json bad(read_reply(fd, &rest));
  EXPECT_EQ(bad.status(), "ERROR");
  EXPECT_EQ(bad.str("data"),
            "UPLOAD: the file name is over 255 bytes, or the space before the base64 is missing");
  // The rest of the line is dropped; the next request is answered.
  send_all(fd, payload.substr(65536) + "\r\nPING\r\n");
  EXPECT_EQ(Json(read_reply(fd, &rest)).str("data"), "connected");
  close(fd);
  EXPECT_TRUE(entries(root.path()).empty());
}

TEST_P(FileProtocol, OverlongLineRejectedAndConnectionKeepsServing) {
  int fd = connect_to(port());
  send_all(fd, "GET " + std::string(20000, 'a') + "\r\nPING\r\n");
  std::string rest;
  Json bad(read_reply(fd, &rest));
  EXPECT_EQ(bad.status(), "ERROR");
  EXPECT_NE(bad.str("data").find("too long"), std::string::npos);
  EXPECT_EQ(Json(read_reply(fd, &rest)).str("data"), "connected");
  close(fd);
}

TEST_P(FileProtocol, UploadOverLimitRefusedWhileStreaming) {
  start({"--max-upload", "1000"});
  spit(root.file("f.bin"), "old");
  int fd = connect_to(port());
  send_all(fd, "UPLOAD f.bin " + b64(std::string(3000, 'z')) + "\r\nPING\r\n");
  std::string rest;
  Json r(read_reply(fd, &rest));
  EXPECT_EQ(r.status(), "ERROR");
  EXPECT_NE(r.str("data").find("too large"), std::string::npos) << r.str("data");
  EXPECT_EQ(Json(read_reply(fd, &rest)).str("data"), "connected");
  close(fd);
  EXPECT_EQ(slurp(root.file("f.bin")), "old");
}

// The same refusal when the head comes alone and the base64 follows in its
// own reads, so it lands in the upload's buffers directly (the zero-copy
// path, where the limit is checked as bytes arrive): the reply then comes
// as soon as the line ends, within the terminator's own read, and the
// connection must go on serving (it once stayed stuck, read but never
// answered, until the idle timeout, and a client's close went unseen).
TEST_P(FileProtocol, UploadOverLimitInItsOwnReadsLeavesTheConnectionServing) {
  start({"--max-upload", "100000"});
  spit(root.file("f.bin"), "old");
  int fd = connect_to(port());
  send_all(fd, "UPLOAD f.bin ");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the head is read alone
  send_all(fd, b64(std::string(400000, 'z')));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  send_all(fd, "\r\n");
  std::string rest;
  Json r(read_reply(fd, &rest));
  EXPECT_EQ(r.status(), "ERROR");
  EXPECT_NE(r.str("data").find("too large"), std::string::npos) << r.str("data");
  send_all(fd, "PING\r\n");
  EXPECT_EQ(Json(read_reply(fd, &rest)).str("data"), "connected");
  close(fd);
  EXPECT_EQ(slurp(root.file("f.bin")), "old");
}

TEST_P(FileProtocol, BeyondMaxConnsClientsGetServerBusy) {
  start({"--max-conns", "2"});
  int a = connect_to(port()), b = connect_to(port());
  send_all(a, "PING\r\n");
  send_all(b, "PING\r\n");
  EXPECT_EQ(Json(read_reply(a)).status(), "OK");
  EXPECT_EQ(Json(read_reply(b)).status(), "OK");
  for (int i = 0; i < 4; ++i) {  // each loop of a multi-loop server refuses
    int c = connect_to(port());
    Json busy(read_reply(c));
    EXPECT_EQ(busy.status(), "ERROR");
    EXPECT_NE(busy.str("data").find("server busy"), std::string::npos);
    close(c);
  }
  close(a);
  // A slot frees up: new clients are served again.
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    served = Json(request(port(), "PING")).status() == "OK";
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(served);
  close(b);
}

// With --loops 2 the clients land on either loop: the cap is the
// process's, counted in the one table both loops admit against.
TEST_P(FileProtocol, BeyondMaxConnsPerAddressClientsGetServerBusy) {
  start({"--max-conns-per-address", "3"});
  std::vector<int> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(connect_to(port()));
    send_all(held.back(), "PING\r\n");
    EXPECT_EQ(Json(read_reply(held.back())).status(), "OK");
  }
  // Several tries, so that each loop of a multi-loop server refuses one.
  for (int i = 0; i < 6; ++i) {
    int c = connect_to(port());
    Json busy(read_reply(c));
    EXPECT_EQ(busy.status(), "ERROR");
    EXPECT_NE(busy.str("data").find("server busy"), std::string::npos) << busy.str("data");
    close(c);
  }
  for (int fd : held) close(fd);
}

TEST_P(FileProtocol, IdleClientIsToldAndClosed) {
  start({"--idle-timeout", "0.3"});
  int fd = connect_to(port());
  Json r(read_reply(fd));
  EXPECT_EQ(r.status(), "ERROR");
  EXPECT_NE(r.str("data").find("idle timeout"), std::string::npos);
  char c;
  EXPECT_EQ(recv(fd, &c, 1, 0), 0);
  close(fd);
}

TEST_P(FileProtocol, SigtermFinishesInFlightUploadThenExitsZero) {
  int fd = connect_to(port());
  send_all(fd, "UPLOAD late.bin " + b64(std::string(30000, 'q')));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  kill(server->pid(), SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  send_all(fd, b64(std::string(3000, 'r')) + "\r\n");
  Json r(read_reply(fd));
  EXPECT_EQ(r.status(), "OK") << r.str("data");
  close(fd);
  int st = server->stop(SIGTERM);
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0);
  EXPECT_EQ(fs::file_size(root.file("late.bin")), 33000u);
}

const Mode kModes[] = {
    {"thread", {"--mode", "thread", "--workers", "4"}},
    {"thread_loops2", {"--mode", "thread", "--workers", "4", "--loops", "2"}},
    {"process1", {"--mode", "process", "--workers", "1"}},
    {"process5", {"--mode", "process", "--workers", "5"}},
};

INSTANTIATE_TEST_SUITE_P(Modes, FileProtocol, ::testing::ValuesIn(kModes), mode_label);

// Thread mode only: --workers must reach libuv before its pool starts.
TEST(ThreadMode, WorkersOptionSizesTheLibuvPool) {
  TempDir root;
  ServerProcess server({"--workers", "7"}, root.path());
  request(server.port(), "LIST");  // the pool starts with the first work item
  size_t threads = 0;
  for (auto& e : fs::directory_iterator("/proc/" + std::to_string(server.pid()) + "/task")) {
    (void)e;
    ++threads;
  }
  EXPECT_GE(threads, 8u);   // the loop thread + 7 pool threads
  EXPECT_LT(threads, 12u);  // not libuv's default of 4 + extras, nor more
}

// The named-temporary fallback (filesystems without O_TMPFILE) must leave
// nothing behind either.
TEST(ThreadMode, NamedTemporaryFallbackLeavesNothingOnDisconnect) {
  TempDir root;
  spit(root.file("f.bin"), "old");
  setenv("FSRV_NO_TMPFILE", "1", 1);
  ServerProcess server({}, root.path());
  unsetenv("FSRV_NO_TMPFILE");
  int fd = connect_to(server.port());
  send_all(fd, "UPLOAD f.bin " + b64(std::string(3 << 20, 'x')));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  bool saw_temp = false;
  for (auto& n : entries(root.path())) saw_temp |= n.rfind(".upload-", 0) == 0;
  EXPECT_TRUE(saw_temp);  // the fallback really is in use
  close(fd);
  std::vector<std::string> left;
  for (int i = 0; i < 100; ++i) {
    left = entries(root.path());
    if (left.size() == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(left, std::vector<std::string>{"f.bin"});
  EXPECT_EQ(slurp(root.file("f.bin")), "old");
  EXPECT_EQ(Json(request(server.port(), "UPLOAD g.bin QUJD")).status(), "OK");
  EXPECT_EQ(entries(root.path()), (std::vector<std::string>{"f.bin", "g.bin"}));
}

}  // namespace
}  // namespace fsrv::test
