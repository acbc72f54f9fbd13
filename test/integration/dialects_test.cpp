// The two other file dialects end to end over real sockets, thread and
// process modes: file-marker (seed 001: READY,
// separately padded base64 chunks, "__END__") and file-raw (seed 000: raw
// bytes with a size line). Byte-exact replies per docs/services/*.md.

#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "../support/server_process.hpp"
#include "fsrv/codec/base64.hpp"

namespace fsrv::test {
namespace {

std::string b64(std::string_view raw) {
  std::string out(codec::encoded_size(raw.size()), '\0');
  codec::encoder(codec::Base64Kind::kFast)
      .encode({reinterpret_cast<const uint8_t*>(raw.data()), raw.size()}, out.data());
  return out;
}

std::string random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

/// Reads exactly `n` bytes (or less at EOF/timeout).
std::string read_exactly(int fd, size_t n) {
  std::string out;
  char buf[65536];
  while (out.size() < n) {
    ssize_t r = recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
    if (r <= 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

/// Reads until `suffix` ends what was read (or EOF/timeout).
std::string read_until(int fd, std::string_view suffix) {
  std::string out;
  char buf[65536];
  while (out.size() < suffix.size() ||
         out.compare(out.size() - suffix.size(), suffix.size(), suffix) != 0) {
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r <= 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

/// Reads what arrives within `ms` of silence (the marker dialect has no
/// terminators on short replies).
std::string read_for(int fd, int ms) {
  std::string out;
  char buf[65536];
  pollfd p{fd, POLLIN, 0};
  while (poll(&p, 1, ms) == 1) {
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r <= 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

/// Buffered reads: pipelined replies may arrive in one recv().
struct Reader {
  int fd;
  std::string buf;
  bool fill() {
    char tmp[65536];
    ssize_t r = recv(fd, tmp, sizeof tmp, 0);
    if (r <= 0) return false;
    buf.append(tmp, static_cast<size_t>(r));
    return true;
  }
  /// Up to and including the first `suffix` (or what came before EOF).
  std::string until(std::string_view suffix) {
    size_t at;
    while ((at = buf.find(suffix)) == std::string::npos && fill()) {
    }
    size_t n = at == std::string::npos ? buf.size() : at + suffix.size();
    std::string out = buf.substr(0, n);
    buf.erase(0, n);
    return out;
  }
  std::string exactly(size_t n) {
    while (buf.size() < n && fill()) {
    }
    std::string out = buf.substr(0, n);
    buf.erase(0, std::min(n, buf.size()));
    return out;
  }
};

class Dialects : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    std::vector<std::string> args = GetParam().args;
    args.insert(args.end(), {"--listen", "file-marker=0", "--listen", "file-raw=0"});
    server = std::make_unique<ServerProcess>(args, root.path());
  }
  int marker_port() const { return server->ports()[0]; }
  int raw_port() const { return server->ports()[1]; }
  TempDir root;
  std::unique_ptr<ServerProcess> server;
};

// ---------------------------------------------------------------- file-marker

TEST_P(Dialects, MarkerListIsNamesJoinedByNewlineOrNoFiles) {
  int fd = connect_to(marker_port());
  send_all(fd, "LIST");  // no terminator, as the seed's client sends it
  EXPECT_EQ(read_exactly(fd, 15), "No files found.");
  close(fd);
  spit(root.file("b.txt"), "b");
  spit(root.file("a.txt"), "a");
  fd = connect_to(marker_port());
  send_all(fd, "LIST");
  EXPECT_EQ(read_exactly(fd, 11), "a.txt\nb.txt");
  close(fd);
}

TEST_P(Dialects, MarkerUploadOfSeparatelyPaddedChunksWithSplitEndMarker) {
  // Three chunks whose sizes are not multiples of 3: '=' mid-stream.
  std::string raw = random_bytes(3 * 100000 + 7, 1);
  int fd = connect_to(marker_port());
  send_all(fd, "UPLOAD up.bin");
  EXPECT_EQ(read_exactly(fd, 5), "READY");
  for (size_t off = 0; off < raw.size(); off += 100000) {
    send_all(fd, b64(std::string_view(raw).substr(off, 100000)));
  }
  send_all(fd, "__EN");  // the marker split across two sends
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  send_all(fd, "D__");
  EXPECT_EQ(read_exactly(fd, 17), "Upload successful");
  close(fd);
  EXPECT_EQ(slurp(root.file("up.bin")), raw);
}

TEST_P(Dialects, MarkerDownloadIsBase64ThenEndMarker) {
  std::string raw = random_bytes(200001, 2);
  spit(root.file("d.bin"), raw);
  int fd = connect_to(marker_port());
  send_all(fd, "DOWNLOAD d.bin");
  EXPECT_EQ(read_until(fd, "__END__"), b64(raw) + "__END__");
  send_all(fd, "DOWNLOAD nope.bin");  // the connection keeps serving
  EXPECT_EQ(read_exactly(fd, 14), "File not found");
  close(fd);
}

TEST_P(Dialects, MarkerErrorsAreTextAndTheServerKeepsServing) {
  int fd = connect_to(marker_port());
  send_all(fd, "FROB x");
  EXPECT_EQ(read_exactly(fd, 15), "Unknown command");
  send_all(fd, "UPLOAD ../evil");
  EXPECT_EQ(read_for(fd, 600).rfind("Upload failed: invalid name", 0), 0u);
  send_all(fd, "UPLOAD bad.bin");
  EXPECT_EQ(read_exactly(fd, 5), "READY");
  send_all(fd, "QU*D__END__");
  EXPECT_EQ(read_for(fd, 600).rfind("Upload failed: invalid base64 character 0x2a at offset 2", 0),
            0u);
  send_all(fd, "LIST");
  EXPECT_EQ(read_exactly(fd, 15), "No files found.");
  close(fd);
  EXPECT_TRUE(std::filesystem::is_empty(root.path()));
}

TEST_P(Dialects, MarkerUploadCutShortLeavesNothing) {
  spit(root.file("keep.bin"), "old");
  int fd = connect_to(marker_port());
  send_all(fd, "UPLOAD keep.bin\n");  // a terminated command is taken at once
  EXPECT_EQ(read_exactly(fd, 5), "READY");
  send_all(fd, "QUJD");
  shutdown(fd, SHUT_WR);
  EXPECT_EQ(read_for(fd, 2000), "Upload failed: connection closed before __END__");
  close(fd);
  EXPECT_EQ(slurp(root.file("keep.bin")), "old");
}

// ---------------------------------------------------------------- file-raw

TEST_P(Dialects, RawUploadDownloadListOnOnePersistentConnection) {
  std::string raw = random_bytes(1 << 20, 3);
  raw[5] = '\n';  // raw bytes: line breaks and NULs are payload
  raw[6] = '\0';
  int fd = connect_to(raw_port());
  Reader in{fd, ""};
  send_all(fd, "UPLOAD r.bin " + std::to_string(raw.size()) + "\r\n" + raw);
  EXPECT_EQ(in.until("\r\n"), "OK r.bin uploaded (1048576 bytes)\r\n");
  EXPECT_EQ(slurp(root.file("r.bin")), raw);
  send_all(fd, "UPLOAD e.bin 0\r\nLIST\r\n");  // pipelined: an empty file, then LIST
  EXPECT_EQ(in.until("\r\n"), "OK e.bin uploaded (0 bytes)\r\n");
  EXPECT_EQ(in.until("\r\n\r\n"), "e.bin\nr.bin\r\n\r\n");
  send_all(fd, "DOWNLOAD r.bin\r\n");
  EXPECT_EQ(in.until("\r\n"), "1048576\r\n");
  EXPECT_EQ(in.exactly(raw.size()), raw);
  send_all(fd, "DOWNLOAD e.bin\r\n");
  EXPECT_EQ(in.until("\r\n"), "0\r\n");
  close(fd);
}

TEST_P(Dialects, RawEveryFailureIsAnErrorLine) {
  int fd = connect_to(raw_port());
  Reader in{fd, ""};
  send_all(fd, "LIST\r\n");
  EXPECT_EQ(in.until("\r\n\r\n"), "\r\n\r\n");
  send_all(fd, "DOWNLOAD nope\r\n");
  EXPECT_EQ(in.until("\r\n"), "ERROR no such file: nope\r\n");
  send_all(fd, "FROB\r\n");
  EXPECT_EQ(in.until("\r\n"), "ERROR unknown command: FROB\r\n");
  send_all(fd, "DOWNLOAD\r\n");
  EXPECT_EQ(in.until("\r\n"), "ERROR usage: DOWNLOAD name\r\n");
  // An invalid name with a known size: the payload is dropped, then ERROR.
  send_all(fd, "UPLOAD ../x 5\r\nhelloLIST\r\n");
  EXPECT_EQ(in.until("\r\n"), "ERROR invalid name: names may not contain '/' or '\\'\r\n");
  EXPECT_EQ(in.until("\r\n\r\n"), "\r\n\r\n");
  // Without a readable size the stream cannot be framed: ERROR, then close.
  send_all(fd, "UPLOAD x.bin lots\r\n");
  EXPECT_EQ(in.until("\r\n"), "ERROR usage: UPLOAD name size (size in decimal bytes)\r\n");
  char c;
  EXPECT_EQ(recv(fd, &c, 1, 0), 0);
  close(fd);
  EXPECT_TRUE(std::filesystem::is_empty(root.path()));
}

TEST_P(Dialects, RawUploadCutShortLeavesNothing) {
  spit(root.file("keep.bin"), "old");
  int fd = connect_to(raw_port());
  send_all(fd, "UPLOAD keep.bin 10\r\nabc");
  shutdown(fd, SHUT_WR);
  EXPECT_EQ(read_until(fd, "\r\n"),
            "ERROR upload interrupted: connection closed after 3 of 10 bytes\r\n");
  close(fd);
  EXPECT_EQ(slurp(root.file("keep.bin")), "old");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(root.path()), {}), 1);
}

const Mode kModes[] = {
    {"thread", {"--mode", "thread", "--log-level", "warn"}},
    {"process2", {"--mode", "process", "--workers", "2", "--log-level", "warn"}},
};

INSTANTIATE_TEST_SUITE_P(Modes, Dialects, ::testing::ValuesIn(kModes), mode_label);

}  // namespace
}  // namespace fsrv::test
