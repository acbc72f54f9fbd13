// core/config.hpp's ServiceOptionSet: each service's own options carried
// by ServerConfig without core knowing their type. A copy is deep, an
// assignment keeps the objects already held (the command-line parser binds
// to their members: main's SIGHUP source assigns a saved configuration
// back), and a SIGHUP asks each service which changes need a restart.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fsrv/core/config.hpp"

namespace fsrv {
namespace {

struct DemoOptions : ServiceOptionsOf<DemoOptions> {
  static constexpr std::string_view kService = "demo";
  int slots = 4;
  std::string users;
  void restart_needed(const ServiceOptions& fresh,
                      std::vector<std::string>& restart) const override {
    if (slots != static_cast<const DemoOptions&>(fresh).slots) restart.emplace_back("demo-slots");
  }
  void apply_live(const ServiceOptions& fresh) override {
    users = static_cast<const DemoOptions&>(fresh).users;
  }
};

TEST(ServiceOptionSet, DefaultsUntilMadeThenACopyIsDeep) {
  ServerConfig config;
  const ServerConfig& read = config;
  EXPECT_EQ(read.services.get<DemoOptions>().slots, 4);  // never made: the defaults
  config.services.get<DemoOptions>().slots = 7;
  ServerConfig copy = config;
  config.services.get<DemoOptions>().slots = 9;
  EXPECT_EQ(copy.services.get<DemoOptions>().slots, 7);
}

TEST(ServiceOptionSet, AssignmentKeepsTheBoundObjectInPlace) {
  ServerConfig config;
  int* bound = &config.services.get<DemoOptions>().slots;  // as CLI11 holds it
  const ServerConfig saved = config;
  *bound = 12;
  config = saved;
  EXPECT_EQ(&config.services.get<DemoOptions>().slots, bound);
  EXPECT_EQ(*bound, 4);
}

TEST(ServiceOptionSet, ReloadNamesRestartOnlyChangesAndAppliesLiveOnes) {
  ServerConfig running;
  running.services.get<DemoOptions>();
  ServerConfig fresh = running;
  std::vector<std::string> restart;
  running.services.restart_needed(fresh.services, restart);
  EXPECT_TRUE(restart.empty());
  fresh.services.get<DemoOptions>().slots = 5;
  fresh.services.get<DemoOptions>().users = "users.json";
  running.services.restart_needed(fresh.services, restart);
  EXPECT_EQ(restart, std::vector<std::string>{"demo-slots"});
  running.services.apply_live(fresh.services);
  EXPECT_EQ(running.services.get<DemoOptions>().users, "users.json");
  EXPECT_EQ(running.services.get<DemoOptions>().slots, 4);
}

}  // namespace
}  // namespace fsrv
