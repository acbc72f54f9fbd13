#pragma once
// Test support: a fsrv::client connection to a test server on 127.0.0.1.

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "fsrv/client/client.hpp"

namespace fsrv::test {

/// Connects to 127.0.0.1:port with default options; null (and a test
/// failure) if the connection fails.
inline std::unique_ptr<client::Client> client_for(int port) {
  client::Options o;
  o.port = static_cast<uint16_t>(port);
  std::string err;
  auto c = client::Client::connect(o, &err);
  EXPECT_TRUE(c) << err;
  return c;
}

}  // namespace fsrv::test
