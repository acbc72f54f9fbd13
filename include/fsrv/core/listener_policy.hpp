#pragma once
// What a listener lets its clients do (--listen SERVICE=PORT[,ro][,auth=write|all]):
// the policy each service consults at the verb that reads, writes or deletes,
// and the roles of the accounts in the --users file (fsrv/auth/users.hpp).
// Pure data and one decision function, so the listener table (core/config.hpp)
// can carry it and every service words the refusal in its own protocol
// (docs/SECURITY.md).

#include <string>
#include <string_view>

namespace fsrv {

/// What a request does to the root.
enum class Access {
  kRead,    ///< list, download, size, stats
  kWrite,   ///< upload (create or replace a file)
  kDelete,  ///< delete a file
};

/// Who is asking: no account yet, or an account's role from the users file.
/// write = upload; admin = upload and delete.
enum class Role { kAnonymous, kRead, kWrite, kAdmin };

/// `,auth=` of a listener: which requests need an account.
enum class AuthScope {
  kNone,   ///< no account asked (the course's clients)
  kWrite,  ///< writes and deletes need one; reads are open
  kAll,    ///< every request needs one
};

/// Why a request is refused.
enum class Refusal {
  kNone,       ///< allowed
  kReadOnly,   ///< the listener is `ro`: no write or delete, whoever asks
  kLogin,      ///< an account is needed first (auth=write|all)
  kForbidden,  ///< the account's role does not allow it
};

/// One listener's policy. The default (open, no accounts) allows everything.
struct ListenerPolicy {
  bool read_only = false;  ///< `,ro`
  AuthScope auth = AuthScope::kNone;

  /// Whether `role` may do `access` here. Read-only wins over any role;
  /// on an auth listener, a role that does not cover the access is kForbidden
  /// (read: reads only; write: reads and uploads; admin: everything).
  Refusal refuse(Access access, Role role) const;
  /// "" (open), or the keys as written: "ro", "auth=write", "ro, auth=all".
  std::string text() const;
  bool open() const { return !read_only && auth == AuthScope::kNone; }
  bool operator==(const ListenerPolicy&) const = default;
};

/// "read", "write", "admin" (and "anonymous").
std::string_view role_name(Role role);
/// The role called `name` ("read", "write" or "admin"); false if none is.
bool parse_role(std::string_view name, Role& out);

/// The refusal words every protocol shares (each adds its own framing).
std::string refusal_text(Refusal why, Access access);

}  // namespace fsrv
