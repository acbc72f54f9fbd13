#include "fsrv/services/kit/login.hpp"

namespace fsrv::services::kit {

bool start_login(reactor::Connection& conn, Service& service, std::string user,
                 std::string password, std::function<void(auth::LoginOutcome)> done) {
  auth::Authenticator* auth = service.shared().auth;
  if (!auth || service.policy().auth == AuthScope::kNone) return false;
  reactor::ConnRef ref(&conn);
  auth->check(std::move(user), std::move(password), conn.peer_text(),
              [ref, done = std::move(done)](auth::LoginOutcome outcome) {
                if (ref->closing()) return;
                done(std::move(outcome));
              });
  return true;
}

}  // namespace fsrv::services::kit
