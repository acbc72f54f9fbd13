#pragma once
// The accounts of --users FILE: one line per account,
//
//     NAME:HASH:ROLE
//
// NAME 1..64 bytes of [A-Za-z0-9._-]; HASH a crypto_pwhash_str string
// (auth/password.hpp; `fileserver hash-password NAME ROLE` prints the line);
// ROLE read | write | admin (core/listener_policy.hpp). Blank lines and
// lines starting with '#' are skipped. Read at start (a bad file: exit 2
// naming file and line) and again on SIGHUP (a bad file keeps the old table).

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "fsrv/core/listener_policy.hpp"
#include "fsrv/core/result.hpp"

namespace fsrv::auth {

/// Largest users file read, in bytes: thousands of accounts fit; more is a
/// mistake, not a class list.
inline constexpr size_t kMaxUsersFileBytes = 4u << 20;
/// Longest account name.
inline constexpr size_t kMaxUserName = 64;

/// One account.
struct Account {
  std::string name;
  std::string hash;  ///< crypto_pwhash_str string
  Role role = Role::kRead;
};

/// The accounts of one users file (immutable once loaded; shared by pointer
/// so a reload swaps the whole table).
class Users {
 public:
  /// Parses the file's text; errors say "FILE:LINE: why".
  static Result<std::shared_ptr<const Users>> parse(std::string_view text, const std::string& file);
  /// Reads and parses `path`.
  static Result<std::shared_ptr<const Users>> load(const std::string& path);
  /// The account called `name`, or null.
  const Account* find(std::string_view name) const;
  size_t size() const { return accounts_.size(); }

 private:
  std::unordered_map<std::string, Account> accounts_;
};

/// Why `name` cannot be an account name, or "".
std::string validate_user_name(std::string_view name);

/// The users-file line for `name` with `role` and `password` hashed at the
/// interactive limits ("NAME:$argon2id$...:ROLE").
Result<std::string> make_users_line(std::string_view name, Role role, std::string_view password);

}  // namespace fsrv::auth
