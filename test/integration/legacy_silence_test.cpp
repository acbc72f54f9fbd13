// The silence rule (docs/services/file-interop.md) over real sockets,
// thread and process modes: when the legacy silence timer (--legacy-idle-ms,
// 200 ms) fires on an unterminated line that cannot succeed, its ERROR is
// answered at once (not after the 60 s idle timeout); a line that can still
// become `UPLOAD name <payload>` keeps waiting; LIST/GET/SIZE still run on
// silence.

#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <thread>

#include "../support/server_process.hpp"

namespace fsrv::test {
namespace {

class LegacySilence : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    std::vector<std::string> args = GetParam().args;
    args.insert(args.end(), {"--idle-timeout", "60"});
    server = std::make_unique<ServerProcess>(args, root.path());
  }
  /// Sends `line` with no terminator, returns the reply and the seconds it took.
  std::pair<std::string, double> silent(const std::string& line) {
    int fd = connect_to(server->port());
    auto t0 = std::chrono::steady_clock::now();
    send_all(fd, line);
    std::string r = read_reply(fd);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    close(fd);
    return {r, s};
  }
  static std::string error_reply(const std::string& text) {
    return "{\"status\":\"ERROR\",\"data\":\"" + text + "\"}\r\n\r\n";
  }
  /// `line`, sent with no terminator, is answered with ERROR `text` at once
  /// (well before the 60 s idle timeout).
  void expect_error_at_once(const std::string& line, const std::string& text) {
    auto [reply, s] = silent(line);
    EXPECT_EQ(reply, error_reply(text)) << line;
    EXPECT_LT(s, 5.0) << line;
  }
  TempDir root;
  std::unique_ptr<ServerProcess> server;
};

TEST_P(LegacySilence, UnknownCommandIsAnsweredAtOnce) {
  expect_error_at_once("DOWNLOAD x", "unknown command: DOWNLOAD");
}

TEST_P(LegacySilence, MissingArgumentIsAnsweredAtOnce) {
  expect_error_at_once("GET ", "missing argument: GET needs a file name");
  expect_error_at_once("DELETE", "missing argument: DELETE needs a file name");
}

TEST_P(LegacySilence, TooManyArgumentsIsAnsweredAtOnce) {
  expect_error_at_once("SIZE a b", "too many arguments for SIZE (quote a name that has spaces)");
  expect_error_at_once("LIST all", "too many arguments for LIST");
}

TEST_P(LegacySilence, SizeRunsOnSilence) {
  spit(root.file("a.txt"), "abcde");
  auto [reply, s] = silent("SIZE a.txt");
  EXPECT_NE(reply.find("\"bytes\":5"), std::string::npos) << reply;
  EXPECT_LT(s, 5.0);
}

TEST_P(LegacySilence, LineThatCanStillBecomeAnUploadWaits) {
  for (std::string head : {"UPLOAD f.txt", "UPLOAD", "UPL"}) {
    SCOPED_TRACE(head);
    int fd = connect_to(server->port());
    send_all(fd, head);
    pollfd p{fd, POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 600), 0) << "answered before the line could end";
    std::string rest = head == "UPLOAD f.txt" ? " QUJD\r\n"
                       : head == "UPLOAD"     ? " f.txt QUJD\r\n"
                                              : "OAD f.txt QUJD\r\n";
    send_all(fd, rest);
    EXPECT_EQ(read_reply(fd), "{\"status\":\"OK\",\"data\":\"f.txt uploaded (3 bytes)\"}\r\n\r\n");
    close(fd);
    EXPECT_EQ(slurp(root.file("f.txt")), "ABC");
  }
}

TEST_P(LegacySilence, ConnectionKeepsServingAfterAnError) {
  spit(root.file("a.txt"), "abc");
  int fd = connect_to(server->port());
  send_all(fd, "FROB");
  EXPECT_EQ(read_reply(fd), error_reply("unknown command: FROB"));
  send_all(fd, "GET a.txt");
  EXPECT_NE(read_reply(fd).find("\"data_file\":\"YWJj\""), std::string::npos);
  close(fd);
}

const Mode kModes[] = {
    {"thread", {"--mode", "thread", "--log-level", "warn"}},
    {"process2", {"--mode", "process", "--workers", "2", "--log-level", "warn"}},
};

INSTANTIATE_TEST_SUITE_P(Modes, LegacySilence, ::testing::ValuesIn(kModes), mode_label);

}  // namespace
}  // namespace fsrv::test
