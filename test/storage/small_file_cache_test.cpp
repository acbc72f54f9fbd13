// The small-file cache (src/storage/small_file_cache.cpp) on a real
// temporary directory: an entry is served only while the file on disk is
// the one it was read from, whatever changed it (at once when the change
// went through a Root, in any process; after the validity window when
// another program made it); the byte budget holds.

#include "fsrv/storage/small_file_cache.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "../support/server_process.hpp"

namespace fsrv::storage {
namespace {

using test::slurp;
using test::spit;

/// Sets the file's mtime `secs` seconds in the past (settled for the cache).
void age(const std::string& path, int secs = 10) {
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  timespec times[2] = {st.st_atim, st.st_mtim};
  times[1].tv_sec -= secs;
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

/// Loads `name` through open_read as the http service does, and caches it.
std::shared_ptr<const CachedFile> load_into(SmallFileCache& cache, const Root& root,
                                            const std::string& name) {
  auto f = root.open_read(name);
  if (!f.ok()) return nullptr;
  auto c = SmallFileCache::load(f.value);
  if (c) cache.insert(name, c);
  return c;
}

struct Fixture {
  test::TempDir dir;
  std::string error;
  std::unique_ptr<Root> root = Root::open(dir.path(), &error);
  /// Writes `name` under the root, its mtime long enough ago to be cached.
  void put_aged(const std::string& name, const std::string& data) {
    spit(dir.file(name), data);
    age(dir.file(name));
  }
};

TEST(SmallFileCache, HitWhileUnchanged) {
  Fixture fx;
  fx.put_aged("a.txt", "one-one");
  SmallFileCache cache(*fx.root);
  EXPECT_EQ(cache.find("a.txt"), nullptr);
  ASSERT_NE(load_into(cache, *fx.root, "a.txt"), nullptr);
  auto hit = cache.find("a.txt");
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->data, "one-one");
  EXPECT_EQ(hit->stamp.size, 7u);
}

TEST(SmallFileCache, RecentlyModifiedFilesAreNotCached) {
  Fixture fx;
  spit(fx.dir.file("new.txt"), "fresh");
  SmallFileCache cache(*fx.root);
  EXPECT_EQ(load_into(cache, *fx.root, "new.txt"), nullptr);
  EXPECT_EQ(cache.entries(), 0u);
}

/// Rewrites `path` in place (same inode, same size).
void rewrite(const std::string& path, const char* text) {
  FILE* f = fopen(path.c_str(), "r+");
  ASSERT_NE(f, nullptr);
  fputs(text, f);
  fclose(f);
}

TEST(SmallFileCache, InPlaceRewriteOfTheSameSizeIsSeen) {
  Fixture fx;
  fx.put_aged("a.txt", "one-one");
  SmallFileCache cache(*fx.root, SmallFileCache::kDefaultBudget, 0);  // stat every lookup
  ASSERT_NE(load_into(cache, *fx.root, "a.txt"), nullptr);
  ASSERT_NE(cache.find("a.txt"), nullptr);
  rewrite(fx.dir.file("a.txt"), "two-two");
  EXPECT_EQ(cache.find("a.txt"), nullptr);
  EXPECT_EQ(cache.entries(), 0u);
}

// Inside the window a checked entry is served without a stat: a rewrite
// by another program goes unseen until the window ends, or until anything
// is changed through the server (changes_anywhere()).
TEST(SmallFileCache, InsideTheWindowOnlyAServerChangeForcesTheStat) {
  Fixture fx;
  fx.put_aged("a.txt", "one-one");
  SmallFileCache cache(*fx.root, SmallFileCache::kDefaultBudget, 600'000'000'000);
  ASSERT_NE(load_into(cache, *fx.root, "a.txt"), nullptr);
  ASSERT_NE(cache.find("a.txt"), nullptr);  // the first lookup stats
  rewrite(fx.dir.file("a.txt"), "two-two");
  auto hit = cache.find("a.txt");
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->data, "one-one");
  const uint64_t before = changes_anywhere();
  fx.root->changed();
  EXPECT_EQ(changes_anywhere(), before + 1);
  EXPECT_EQ(cache.find("a.txt"), nullptr);
}

TEST(SmallFileCache, AnOutsideRewriteIsSeenOnceTheWindowEnds) {
  Fixture fx;
  fx.put_aged("a.txt", "one-one");
  SmallFileCache cache(*fx.root, SmallFileCache::kDefaultBudget, 100'000'000);  // 100 ms
  ASSERT_NE(load_into(cache, *fx.root, "a.txt"), nullptr);
  ASSERT_NE(cache.find("a.txt"), nullptr);
  rewrite(fx.dir.file("a.txt"), "two-two");
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EXPECT_EQ(cache.find("a.txt"), nullptr);
}

// A delete through another process's Root (a prefork worker forked after
// the first Root was opened) is seen at once: the change counter is
// shared memory, not a per-process variable.
TEST(SmallFileCache, ADeleteInAForkedProcessIsSeenAtOnce) {
  Fixture fx;
  fx.put_aged("a.txt", "one-one");
  SmallFileCache cache(*fx.root, SmallFileCache::kDefaultBudget, 600'000'000'000);
  ASSERT_NE(load_into(cache, *fx.root, "a.txt"), nullptr);
  ASSERT_NE(cache.find("a.txt"), nullptr);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string error;
    auto own = Root::open(fx.dir.path(), &error);
    _exit(own && own->remove("a.txt").ok() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(cache.find("a.txt"), nullptr);
}

TEST(SmallFileCache, ReplacementWithTheSameSizeAndMtimeIsSeen) {
  Fixture fx;
  fx.put_aged("a.txt", "one-one");
  SmallFileCache cache(*fx.root);
  auto c = load_into(cache, *fx.root, "a.txt");
  ASSERT_NE(c, nullptr);
  // Another file, same size and mtime, renamed over it: only the inode differs.
  spit(fx.dir.file("b.tmp"), "333-333");
  timespec times[2] = {{0, UTIME_OMIT},
                       {c->stamp.mtime_ns / 1000000000, c->stamp.mtime_ns % 1000000000}};
  ASSERT_EQ(utimensat(AT_FDCWD, fx.dir.file("b.tmp").c_str(), times, 0), 0);
  ASSERT_EQ(rename(fx.dir.file("b.tmp").c_str(), fx.dir.file("a.txt").c_str()), 0);
  EXPECT_EQ(cache.find("a.txt"), nullptr);
}

TEST(SmallFileCache, DeletedOrSymlinkedFilesAreDropped) {
  Fixture fx;
  test::TempDir outside;
  spit(outside.file("secret.txt"), "SECRET!");
  for (const char* name : {"gone.txt", "link.txt"}) {
    fx.put_aged(name, "content");
  }
  SmallFileCache cache(*fx.root);
  ASSERT_NE(load_into(cache, *fx.root, "gone.txt"), nullptr);
  ASSERT_NE(load_into(cache, *fx.root, "link.txt"), nullptr);
  std::filesystem::remove(fx.dir.file("gone.txt"));
  std::filesystem::remove(fx.dir.file("link.txt"));
  std::filesystem::create_symlink(outside.file("secret.txt"), fx.dir.file("link.txt"));
  EXPECT_EQ(cache.find("gone.txt"), nullptr);
  EXPECT_EQ(cache.find("link.txt"), nullptr);
  EXPECT_EQ(cache.entries(), 0u);
}

TEST(SmallFileCache, BudgetDropsTheLeastRecentlyUsed) {
  Fixture fx;
  for (const char* name : {"a", "b", "c"}) {
    fx.put_aged(name, std::string(1000, name[0]));
  }
  SmallFileCache cache(*fx.root, 2500);
  ASSERT_NE(load_into(cache, *fx.root, "a"), nullptr);
  ASSERT_NE(load_into(cache, *fx.root, "b"), nullptr);
  ASSERT_NE(cache.find("a"), nullptr);  // a is now the most recent
  ASSERT_NE(load_into(cache, *fx.root, "c"), nullptr);
  EXPECT_EQ(cache.entries(), 2u);
  EXPECT_EQ(cache.bytes(), 2000u);
  EXPECT_NE(cache.find("a"), nullptr);
  EXPECT_EQ(cache.find("b"), nullptr);
  EXPECT_NE(cache.find("c"), nullptr);
}

TEST(SmallFileCache, LargerFilesAreNotLoaded) {
  Fixture fx;
  fx.put_aged("big", std::string(SmallFileCache::kMaxFileBytes + 1, 'x'));
  SmallFileCache cache(*fx.root);
  EXPECT_EQ(load_into(cache, *fx.root, "big"), nullptr);
}

}  // namespace
}  // namespace fsrv::storage
