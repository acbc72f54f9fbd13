// kit::VerbCounters: the paths it registers are the ones it counts, and
// Service keeps its registration to word refusals.

#include "fsrv/services/kit/verb_counters.hpp"

#include <gtest/gtest.h>

namespace fsrv::test {
namespace {

enum class Verb { kGet, kPut, kCount };
std::string_view verb_name(Verb v) { return v == Verb::kGet ? "GET" : "PUT"; }
using Counters = services::kit::VerbCounters<verb_name, 2>;

class NoHandlers final : public services::Service {
 public:
  using Service::Service;

 protected:
  std::unique_ptr<reactor::ConnectionHandler> create_handler(reactor::Connection&) override {
    return nullptr;
  }
};

const services::ServiceInfo kInfo{
    "demo",
    "a test service",
    {},
    "",
    [](stats::Schema& schema) { Counters::register_stats(schema, "demo"); },
    [](reactor::Refusal why, int limit) { return "! " + services::busy_text(why, limit); },
    nullptr};

TEST(VerbCounters, CountsUnderThePathsItRegistered) {
  stats::Schema schema;
  kInfo.register_stats(schema);
  ASSERT_EQ(schema.size(), 4u);
  EXPECT_EQ(schema.path(0), "demo/commands/GET/ok");
  EXPECT_EQ(schema.path(3), "demo/commands/PUT/failed");
  stats::StatsTable table{1, false, schema};
  services::Shared shared;
  shared.schema = &schema;
  shared.stats = &table.slot(0);
  NoHandlers service(shared, kInfo);
  Counters counters(service);
  counters.count(Verb::kGet, true);
  counters.count(Verb::kGet, true);
  counters.count(Verb::kPut, false);
  EXPECT_EQ(table.slot(0).cells[0].load(), 2u);
  EXPECT_EQ(table.slot(0).cells[1].load(), 0u);
  EXPECT_EQ(table.slot(0).cells[3].load(), 1u);
}

TEST(ServiceBase, RefusalsAreWordedByTheRegistrationWithOneBusyText) {
  stats::Schema schema;
  stats::StatsTable table{1, false, schema};
  services::Shared shared;
  shared.schema = &schema;
  shared.stats = &table.slot(0);
  NoHandlers service(shared, kInfo);
  EXPECT_EQ(service.name(), "demo");
  EXPECT_EQ(service.refusal(reactor::Refusal::kBusy, 7),
            "! server busy: too many connections (limit 7)");
  EXPECT_EQ(service.refusal(reactor::Refusal::kShuttingDown, 7), "! server shutting down");
}

}  // namespace
}  // namespace fsrv::test
