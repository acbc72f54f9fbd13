#pragma once
// The stream-session kit's AUTH: one account check for every line dialect
// (file, file-marker, file-raw) through the serving process's
// auth::Authenticator (the per-address failure throttle, the hashing
// threads, the cache of recent logins). The session words the outcome in
// its own protocol and keeps the role it got (docs/SECURITY.md).

#include <functional>
#include <string>
#include <string_view>

#include "fsrv/auth/authenticator.hpp"
#include "fsrv/reactor/connection.hpp"
#include "fsrv/services/service.hpp"

namespace fsrv::services::kit {

/// Why an AUTH was not started: the listener has no `,auth=` (or the server
/// no --users).
inline constexpr std::string_view kNoAccounts = "this listener takes no accounts";

/// Checks `user`/`password` from `conn`'s peer address against the accounts
/// of `service`'s serving process. Returns false, starting nothing, when the
/// listener takes no accounts (the session answers kNoAccounts). Else
/// `done(outcome)` runs later on the loop thread (never inside this call,
/// never once `conn` is closing; a ConnRef keeps it alive meanwhile): the
/// session marks its request in progress (RequestLoop::begin) and pauses
/// reading until then.
bool start_login(reactor::Connection& conn, Service& service, std::string user,
                 std::string password, std::function<void(auth::LoginOutcome)> done);

}  // namespace fsrv::services::kit
