// file-marker command parsing (src/services/file_marker/marker_protocol.cpp):
// the AUTH command (our extension) beside the seed's verbs.

#include "fsrv/services/file_marker/marker_protocol.hpp"

#include <gtest/gtest.h>

namespace fsrv::services::file_marker {
namespace {

TEST(MarkerParse, AuthTakesExactlyAUserAndAPassword) {
  Command c = parse_command("  Auth alice\ts3cret \r");
  EXPECT_EQ(c.verb, Verb::kAuth);
  EXPECT_EQ(c.error, "");
  EXPECT_EQ(c.name, "alice");
  EXPECT_EQ(c.password, "s3cret");
  for (const char* bad : {"AUTH", "AUTH alice", "AUTH alice pass word"}) {
    c = parse_command(bad);
    EXPECT_EQ(c.verb, Verb::kAuth) << bad;
    EXPECT_EQ(c.error, "usage: AUTH user password") << bad;
  }
  EXPECT_EQ(kit::dialect_verb_name(Verb::kAuth), "AUTH");
  // The seed's verbs are unchanged: a name keeps its spaces.
  c = parse_command("UPLOAD my file.txt");
  EXPECT_EQ(c.verb, Verb::kUpload);
  EXPECT_EQ(c.name, "my file.txt");
}

}  // namespace
}  // namespace fsrv::services::file_marker
