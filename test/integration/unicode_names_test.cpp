// Pure-ASCII replies (docs/services/file-interop.md), from our own side:
// the server's replies are pure ASCII (non-ASCII names escaped as \uXXXX,
// surrogate pairs above U+FFFF), and the client library and bin/filecli
// decode the escapes back to UTF-8.

#include <cjson/cJSON.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "../support/client_for.hpp"
#include "../support/server_process.hpp"

namespace fsrv::test {
namespace {

// é (2 bytes), CJK (3 bytes), an emoji above U+FFFF (4 bytes).
const std::string kName = "caf\xc3\xa9-\xe6\x96\x87-\xf0\x9f\x98\x80.txt";

TEST(UnicodeNames, WireIsAsciiAndClientDecodesBack) {
  TempDir root;
  ServerProcess server({"--log-level", "warn"}, root.path());
  auto c = client_for(server.port());
  ASSERT_TRUE(c);
  std::string data = "hello";
  size_t off = 0;
  auto up = c->upload(kName, data.size(), [&](std::span<uint8_t> out) -> long {
    size_t n = std::min(out.size(), data.size() - off);
    std::memcpy(out.data(), data.data() + off, n);
    off += n;
    return static_cast<long>(n);
  });
  ASSERT_TRUE(up.ok()) << up.message;
  EXPECT_EQ(slurp(root.file(kName)), "hello");
  // On the wire: escapes only.
  std::string wire = request(server.port(), "LIST");
  EXPECT_EQ(wire,
            "{\"status\":\"OK\",\"data\":[\"caf\\u00e9-\\u6587-\\ud83d\\ude00.txt\"]}\r\n\r\n");
  // Through the client library: UTF-8 again.
  auto list = c->command("LIST");
  ASSERT_TRUE(list.ok());
  cJSON* j = cJSON_Parse(list.json.c_str());
  ASSERT_NE(j, nullptr);
  cJSON* first = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "data"), 0);
  ASSERT_TRUE(cJSON_IsString(first));
  EXPECT_EQ(std::string(first->valuestring), kName);
  cJSON_Delete(j);
  std::string got;
  auto g = c->get(kName, [&](std::span<const uint8_t> d) {
    got.append(reinterpret_cast<const char*>(d.data()), d.size());
    return true;
  });
  EXPECT_TRUE(g.ok()) << g.message;
  EXPECT_EQ(got, "hello");
  auto missing = c->command("SIZE \"" + kName + "x\"");
  EXPECT_EQ(missing.message, "no such file: " + kName + "x");
  // bin/filecli list prints the UTF-8 name.
  std::string cmd = bin_dir() + "/filecli -p " + std::to_string(server.port()) + " list";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[512];
  std::string out;
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0);
  EXPECT_EQ(out, kName + "\n");
}

}  // namespace
}  // namespace fsrv::test
