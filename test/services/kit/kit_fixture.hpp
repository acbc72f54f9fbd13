#pragma once
// The stream-session kit's tests: the reactor tests' loop and listener
// (test/reactor/reactor_fixture.hpp) with connections served by the handler
// a test makes, libuv's thread pool and a storage root in a temporary
// directory. Every test ends with no work pending and uv_loop_close() == 0.

#include <functional>
#include <memory>

#include "../../reactor/reactor_fixture.hpp"
#include "fsrv/reactor/executor.hpp"
#include "fsrv/storage/storage.hpp"

namespace fsrv::test {

/// Makes each connection's handler with `make`.
struct LambdaFactory : reactor::ConnectionFactory {
  std::function<std::unique_ptr<reactor::ConnectionHandler>(reactor::Connection&)> make;
  std::unique_ptr<reactor::ConnectionHandler> make_handler(reactor::Connection& c) override {
    return make(c);
  }
  std::string refusal(reactor::Refusal, int) const override { return {}; }
};

class KitTest : public ReactorTest {
 public:
  void SetUp() override {
    ReactorTest::SetUp();
    serving = &kit_factory;
    std::string error;
    root = storage::Root::open(dir.path(), &error);
    ASSERT_TRUE(root) << error;
    executor = std::make_unique<reactor::ThreadPoolExecutor>(&loop);
  }
  void TearDown() override {
    listener->close();  // idempotent: ReactorTest::TearDown closes it again
    reactor::close_all_connections(reactor);
    uv_run(&loop, UV_RUN_DEFAULT);  // finishes the work in flight
    EXPECT_EQ(executor->pending(), 0u);
    executor->close();
    ReactorTest::TearDown();
  }

  TempDir dir;
  std::unique_ptr<storage::Root> root;
  std::unique_ptr<reactor::ThreadPoolExecutor> executor;
  LambdaFactory kit_factory;
};

}  // namespace fsrv::test
