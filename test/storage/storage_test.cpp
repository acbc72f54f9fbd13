// Storage (src/storage/storage.cpp) on a real temporary directory: name
// rules, symlink refusal, atomic uploads with and without O_TMPFILE.

#include "fsrv/storage/storage.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "../support/server_process.hpp"

namespace fsrv::storage {
namespace {

using test::slurp;
using test::spit;

TEST(StorageNames, RefusesEverySpellingOfEscape) {
  for (const std::string& bad :
       std::vector<std::string>{"", ".", "..", "../x", "a/b", "a\\b", "/etc/passwd", ".hidden",
                                std::string("a\0b", 3), "a\nb", "tab\there", std::string(256, 'a'),
                                std::string("\xff\xfe"), std::string("\xc0\xaf")}) {
    EXPECT_NE(validate_name(bad), "") << "accepted: " << bad;
  }
  for (const std::string& good : std::vector<std::string>{
           "a.txt", "My File (1).pdf", std::string(255, 'b'), "caf\xc3\xa9.txt", "%2e%2e"}) {
    EXPECT_EQ(validate_name(good), "") << "refused: " << good;
  }
}

TEST(StorageRoot, ListsRegularVisibleFilesSorted) {
  test::TempDir dir;
  spit(dir.file("b.txt"), "b");
  spit(dir.file("a.txt"), "a");
  spit(dir.file(".hidden"), "h");
  std::filesystem::create_directory(dir.file("sub"));
  std::filesystem::create_symlink("/etc/passwd", dir.file("link"));
  std::string err;
  auto root = Root::open(dir.path(), &err);
  ASSERT_TRUE(root) << err;
  auto l = root->list();
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l.value, (std::vector<std::string>{"a.txt", "b.txt"}));
}

TEST(StorageRoot, SymlinkInRootIsNeverFollowed) {
  test::TempDir dir, outside;
  spit(outside.file("secret"), "top secret");
  std::filesystem::create_symlink(outside.file("secret"), dir.file("link"));
  std::string err;
  auto root = Root::open(dir.path(), &err);
  ASSERT_TRUE(root);
  auto r = root->open_read("link");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.code, Errc::kNotRegular);
  EXPECT_EQ(r.error, "not a regular file");  // the name is the protocol's to add
  EXPECT_EQ(root->size("link").code, Errc::kNotRegular);
  EXPECT_EQ(root->remove("link").code, Errc::kNotRegular);
  EXPECT_EQ(root->open_read("missing").code, Errc::kNotFound);
  EXPECT_EQ(root->open_read("../x").code, Errc::kInvalidName);
  EXPECT_TRUE(std::filesystem::exists(outside.file("secret")));
}

class UploadModes : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      setenv("FSRV_NO_TMPFILE", "1", 1);
    } else {
      unsetenv("FSRV_NO_TMPFILE");
    }
  }
  void TearDown() override { unsetenv("FSRV_NO_TMPFILE"); }
};

// begin_upload reads FSRV_NO_TMPFILE once per process, so within one run
// only one of the two params really switches path; the named-temporary path
// is exercised for real by the integration suite (it runs the server with
// FSRV_NO_TMPFILE=1 in one instance).
TEST_P(UploadModes, AbortLeavesOldContentAndNoTemporary) {
  test::TempDir dir;
  spit(dir.file("f.bin"), "old");
  std::string err;
  auto root = Root::open(dir.path(), &err);
  auto up = root->begin_upload();
  ASSERT_TRUE(up.ok()) << up.error;
  std::string data = "new content";
  ASSERT_TRUE(
      up.value->write_at({reinterpret_cast<const uint8_t*>(data.data()), data.size()}, 0).ok());
  up.value.reset();  // abort
  EXPECT_EQ(slurp(dir.file("f.bin")), "old");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
}

TEST_P(UploadModes, CommitReplacesAtomically) {
  test::TempDir dir;
  spit(dir.file("f.bin"), "old");
  std::string err;
  auto root = Root::open(dir.path(), &err);
  auto up = root->begin_upload();
  ASSERT_TRUE(up.ok());
  std::string data = "brand new content";
  ASSERT_TRUE(
      up.value->write_at({reinterpret_cast<const uint8_t*>(data.data()), data.size()}, 0).ok());
  ASSERT_TRUE(up.value->commit("f.bin").ok());
  EXPECT_TRUE(up.value->replaced());
  EXPECT_EQ(slurp(dir.file("f.bin")), data);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
}

// HTTP's 201 against 204 comes from the commit itself: a new name is not
// "replaced", an existing one is, and a refused no-replace commit leaves it.
TEST_P(UploadModes, CommitTellsCreatedFromReplaced) {
  test::TempDir dir;
  std::string err;
  auto root = Root::open(dir.path(), &err);
  auto upload = [&](const std::string& name, bool replace, bool* replaced) {
    auto up = root->begin_upload();
    EXPECT_TRUE(up.ok());
    std::string data = name + (replace ? "+r" : "-n");
    EXPECT_TRUE(
        up.value->write_at({reinterpret_cast<const uint8_t*>(data.data()), data.size()}, 0).ok());
    Status s = up.value->commit(name, replace);
    *replaced = up.value->replaced();
    return s;
  };
  bool replaced = true;
  ASSERT_TRUE(upload("n.bin", true, &replaced).ok());
  EXPECT_FALSE(replaced);
  ASSERT_TRUE(upload("n.bin", true, &replaced).ok());
  EXPECT_TRUE(replaced);
  Status s = upload("n.bin", false, &replaced);
  EXPECT_EQ(s.code, Errc::kExists);
  EXPECT_FALSE(replaced);
  EXPECT_EQ(slurp(dir.file("n.bin")), "n.bin+r");
}

INSTANTIATE_TEST_SUITE_P(TmpfileAndNamed, UploadModes, ::testing::Values(false, true));

// Several nodes share one root on a cluster file system: a temporary of
// another node whose PID happens to be dead here is that node's upload in
// progress, not a leftover. Start-up clean-up removes only this node's.
TEST(StorageNodeId, StartUpCleanupRemovesOnlyThisNodesStaleTemporaries) {
  test::TempDir dir;
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  waitpid(dead, nullptr, 0);
  const std::string d = std::to_string(dead);
  const std::string me = std::to_string(getpid());
  spit(dir.file(".upload-nodeA-" + d + "-1.tmp"), "mine, owner dead");
  spit(dir.file(".upload-nodeA-" + me + "-2.tmp"), "mine, owner alive");
  spit(dir.file(".upload-nodeB-" + d + "-3.tmp"), "another node's upload");
  spit(dir.file(".upload-nodeAA-" + d + "-4.tmp"), "a node whose id only starts alike");
  spit(dir.file(".upload-" + d + "-5.tmp"), "older naming, taken as mine");
  std::string error;
  auto root = Root::open(dir.path(), &error);
  ASSERT_TRUE(root) << error;
  root->set_node_id("nodeA");
  EXPECT_EQ(root->remove_stale_temporaries(), 2);
  EXPECT_FALSE(std::filesystem::exists(dir.file(".upload-nodeA-" + d + "-1.tmp")));
  EXPECT_TRUE(std::filesystem::exists(dir.file(".upload-nodeA-" + me + "-2.tmp")));
  EXPECT_TRUE(std::filesystem::exists(dir.file(".upload-nodeB-" + d + "-3.tmp")));
  EXPECT_TRUE(std::filesystem::exists(dir.file(".upload-nodeAA-" + d + "-4.tmp")));
  EXPECT_FALSE(std::filesystem::exists(dir.file(".upload-" + d + "-5.tmp")));
  // Node B, starting on the same root, takes its own.
  root->set_node_id("nodeB");
  EXPECT_EQ(root->remove_stale_temporaries(), 1);
  EXPECT_FALSE(std::filesystem::exists(dir.file(".upload-nodeB-" + d + "-3.tmp")));
}

TEST(StorageNodeId, NodeIdIsSanitisedAndDefaultsToHostAndBoot) {
  test::TempDir dir;
  std::string error;
  auto root = Root::open(dir.path(), &error);
  ASSERT_TRUE(root) << error;
  EXPECT_EQ(root->node_id(), default_node_id());
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof host - 1), 0);
  EXPECT_EQ(default_node_id().find('-'), std::string::npos) << default_node_id();
  EXPECT_GT(default_node_id().size(), std::string(host).size());  // + "_" + boot id
  root->set_node_id("a-b/c d");
  EXPECT_EQ(root->node_id(), "a_b_c_d");
}

}  // namespace
}  // namespace fsrv::storage
