// A listener's policy: who may read, write and delete (listener_policy.hpp).

#include "fsrv/core/listener_policy.hpp"

namespace fsrv {

Refusal ListenerPolicy::refuse(Access access, Role role) const {
  if (read_only && access != Access::kRead) return Refusal::kReadOnly;
  if (auth == AuthScope::kNone) return Refusal::kNone;
  if (role == Role::kAnonymous) {
    return access == Access::kRead && auth == AuthScope::kWrite ? Refusal::kNone : Refusal::kLogin;
  }
  switch (access) {
    case Access::kRead:
      return Refusal::kNone;
    case Access::kWrite:
      return role == Role::kWrite || role == Role::kAdmin ? Refusal::kNone : Refusal::kForbidden;
    case Access::kDelete:
      return role == Role::kAdmin ? Refusal::kNone : Refusal::kForbidden;
  }
  return Refusal::kForbidden;
}

std::string ListenerPolicy::text() const {
  std::string out = read_only ? "ro" : "";
  if (auth != AuthScope::kNone) {
    out += out.empty() ? "" : ", ";
    out += auth == AuthScope::kWrite ? "auth=write" : "auth=all";
  }
  return out;
}

std::string_view role_name(Role role) {
  switch (role) {
    case Role::kRead:
      return "read";
    case Role::kWrite:
      return "write";
    case Role::kAdmin:
      return "admin";
    case Role::kAnonymous:
      break;
  }
  return "anonymous";
}

bool parse_role(std::string_view name, Role& out) {
  for (Role r : {Role::kRead, Role::kWrite, Role::kAdmin}) {
    if (name == role_name(r)) {
      out = r;
      return true;
    }
  }
  return false;
}

std::string refusal_text(Refusal why, Access access) {
  const char* what = access == Access::kDelete  ? "delete"
                     : access == Access::kWrite ? "upload"
                                                : "read";
  switch (why) {
    case Refusal::kNone:
      return "";
    case Refusal::kReadOnly:
      return std::string("read-only listener: ") + what + " refused";
    case Refusal::kLogin:
      return std::string("authentication required: ") + what +
             " needs an account (AUTH user password)";
    case Refusal::kForbidden:
      return std::string("permission denied: your role may not ") + what;
  }
  return "";
}

}  // namespace fsrv
