// stats/: the counter schema, the slot table (shared with a forked child as
// process mode shares it), the STATS JSON and log line, the duration
// histogram and the Prometheus rendering, checked on real tables.
#include "fsrv/stats/stats.hpp"

#include <cjson/cJSON.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <sstream>
#include <stdexcept>
#include <string>

#include "fsrv/stats/duration.hpp"
#include "fsrv/stats/prometheus.hpp"

namespace fsrv::stats {
namespace {

// A dead process's slot forgets what it held (its open connections) and
// keeps what it counted (its totals).
TEST(StatsSchema, ZeroHeldClearsOnlyTheHeldCells) {
  Schema schema;
  Counter total = schema.add("file/connections/total");
  Counter active = schema.add("file/connections/active", Schema::Kind::kHeld);
  StatsTable table(2, false, schema);
  StatsSlot& slot = table.slot(1);
  slot.add(total, 5);
  slot.add_signed(active, 3);
  table.slot(0).add_signed(active, 2);
  schema.zero_held(slot);
  EXPECT_EQ(slot.cells[total.index].load(), 5u);
  EXPECT_EQ(slot.cells[active.index].load(), 0u);
  EXPECT_EQ(table.slot(0).cells[active.index].load(), 2u);  // another slot: untouched
}

TEST(StatsSchema, SamePathSameCounterAndAFixedCapacity) {
  Schema schema;
  Counter a = schema.add("file/commands/GET/ok");
  Counter b = schema.add("file/commands/GET/failed");
  EXPECT_EQ(schema.add("file/commands/GET/ok").index, a.index);
  EXPECT_NE(a.index, b.index);
  EXPECT_EQ(schema.size(), 2u);
  EXPECT_EQ(schema.path(b.index), "file/commands/GET/failed");
  for (int i = 2; i < kMaxCells; ++i) schema.add("x/" + std::to_string(i));
  EXPECT_THROW(schema.add("one/too/many"), std::length_error);
  // An unregistered counter counts nowhere.
  Schema empty;
  StatsTable table(1, false, empty);
  table.slot(0).add(Counter{}, 5);
  EXPECT_EQ(table.to_line("thread", 1).find("=5"), std::string::npos);
}

TEST(StatsTable, SharedSlotsAreSummedAcrossAForkedChild) {
  Schema schema;
  Counter ok = schema.add("file/commands/GET/ok");
  Counter failed = schema.add("file/commands/GET/failed");
  Counter echo = schema.add("echo/bytes");
  StatsTable table(3, true, schema);  // master + two workers
  table.slot(0).add(ok, 1);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // a "worker" writes into its own slot
    table.slot(1).add(ok, 2);
    table.slot(1).add(failed, 1);
    table.slot(1).conns_total += 4;
    table.slot(1).conns_active += 1;
    table.slot(1).pid = getpid();
    table.slot(2).add(echo, 100);
    table.slot(2).bytes_in += 100;
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));

  EXPECT_EQ(table.to_line("process", 2),
            "stats mode=process workers=2 conns=1/4 rejected=0 lost=0 echo.bytes=100 "
            "file.GET=3/1 in=100 out=0");
  cJSON* json = cJSON_Parse(table.to_json("process", 2, 1.5, 1).c_str());
  ASSERT_NE(json, nullptr);
  cJSON* get = cJSON_GetObjectItem(
      cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(json, "services"), "file"),
                          "commands"),
      "GET");
  ASSERT_NE(get, nullptr);
  EXPECT_EQ(cJSON_GetObjectItem(get, "ok")->valuedouble, 3);
  EXPECT_EQ(cJSON_GetObjectItem(get, "failed")->valuedouble, 1);
  EXPECT_EQ(cJSON_GetObjectItem(cJSON_GetObjectItem(json, "connections"), "total")->valuedouble, 4);
  cJSON* workers = cJSON_GetObjectItem(json, "workers");
  ASSERT_EQ(cJSON_GetArraySize(workers), 2);  // slots 1 and 2, not the master
  EXPECT_EQ(cJSON_GetObjectItem(cJSON_GetArrayItem(workers, 0), "pid")->valuedouble, child);
  EXPECT_STREQ(cJSON_GetObjectItem(json, "mode")->valuestring, "process");
  cJSON_Delete(json);
}

TEST(StatsDuration, ObservationsLandInTheFirstBucketThatHoldsThem) {
  Schema schema;
  Duration::register_cells(schema, "file");
  Duration d = Duration::of(schema, "file");
  StatsTable table(1, false, schema);
  d.observe(table.slot(0), 0.0015);  // -> le 0.0025
  d.observe(table.slot(0), 0.0025);  // bound included
  d.observe(table.slot(0), 120);     // beyond 60 s: +Inf only
  d.observe(table.slot(0), -1);      // a clock step back: 0
  auto cell = [&](Counter c) { return table.slot(0).cells[c.index].load(); };
  EXPECT_EQ(cell(d.buckets[0]), 1u);  // the -1 clamped to 0
  EXPECT_EQ(cell(d.buckets[1]), 2u);
  EXPECT_EQ(cell(d.count), 4u);
  EXPECT_EQ(cell(d.sum_us), 1500u + 2500u + 120000000u);
  // Histograms stay out of the log line.
  EXPECT_EQ(table.to_line("thread", 1).find("duration"), std::string::npos);
}

/// {"name{labels}": value} of a scrape; checks each family is typed once,
/// before its samples.
std::map<std::string, double> samples(const std::string& text) {
  std::map<std::string, double> out;
  std::map<std::string, int> typed;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_EQ(++typed[name], 1) << name;
      continue;
    }
    if (line.rfind("# HELP ", 0) == 0) continue;
    size_t space = line.rfind(' ');
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

TEST(StatsPrometheus, PathsMapToConventionalFamilies) {
  Schema schema;
  Counter get_ok = schema.add("file/commands/GET/ok");
  Counter rrq_failed = schema.add("tftp/rrq/failed");
  Counter active = schema.add("chat/connections/active");
  Counter status = schema.add("http/status/404");
  Counter sent = schema.add("tftp/bytes/sent");
  Counter retrans = schema.add("tftp/retransmits");
  Duration::register_cells(schema, "file");
  StatsTable table(2, false, schema);
  table.slot(0).add(get_ok, 7);
  table.slot(1).add(get_ok, 3);
  table.slot(1).add(rrq_failed, 2);
  table.slot(0).add_signed(active, 2);
  table.slot(1).add_signed(active, -1);
  table.slot(0).add(status, 5);
  table.slot(0).add(sent, 4096);
  table.slot(0).add(retrans, 9);
  table.slot(1).executor_pending = 3;
  Duration::of(schema, "file").observe(table.slot(0), 0.003);
  Duration::of(schema, "file").observe(table.slot(1), 0.2);
  const std::string text = render_prometheus(table, schema, {"1.2.3", "abc", "thread"}, 12);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  std::map<std::string, double> m = samples(text);
  EXPECT_EQ(m[R"(fsrv_requests_total{service="file",verb="GET",result="ok"})"], 10);
  EXPECT_EQ(m[R"(fsrv_requests_total{service="tftp",verb="rrq",result="failed"})"], 2);
  EXPECT_EQ(m[R"(fsrv_service_connections_open{service="chat"})"], 1);
  EXPECT_EQ(m[R"(fsrv_responses_total{service="http",code="404"})"], 5);
  EXPECT_EQ(m["fsrv_tftp_sent_bytes_total"], 4096);
  EXPECT_EQ(m["fsrv_tftp_retransmits_total"], 9);
  EXPECT_EQ(m["fsrv_executor_queue_depth"], 3);
  EXPECT_EQ(m["fsrv_uptime_seconds"], 12);
  EXPECT_EQ(m[R"(fsrv_build_info{version="1.2.3",commit="abc",mode="thread"})"], 1);
  // Cumulative buckets: 0.003 s is in le=0.005 and above, 0.2 s in le=0.25.
  EXPECT_EQ(m[R"(fsrv_request_duration_seconds_bucket{service="file",le="0.0025"})"], 0);
  EXPECT_EQ(m[R"(fsrv_request_duration_seconds_bucket{service="file",le="0.005"})"], 1);
  EXPECT_EQ(m[R"(fsrv_request_duration_seconds_bucket{service="file",le="0.25"})"], 2);
  EXPECT_EQ(m[R"(fsrv_request_duration_seconds_bucket{service="file",le="+Inf"})"], 2);
  EXPECT_EQ(m[R"(fsrv_request_duration_seconds_count{service="file"})"], 2);
  EXPECT_NEAR(m[R"(fsrv_request_duration_seconds_sum{service="file"})"], 0.203, 1e-9);
  // Every counter family ends in _total.
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE ", 0) == 0 && line.ends_with(" counter")) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(name.ends_with("_total")) << name;
    }
  }
}

}  // namespace
}  // namespace fsrv::stats
