#pragma once
// Chat users: the account records (username, full name, country, password
// hash), the course's three demo users, the JSON users file, and password
// hashing/verification with libsodium. Owns no state.
//
// Passwords are never stored or compared in clear: only strings made by
// libsodium's crypto_pwhash_str (Argon2id, salt and cost parameters inside
// the string) are kept, and checked with crypto_pwhash_str_verify, which
// recomputes the hash and compares in constant time
// (https://doc.libsodium.org/password_hashing/default_phf).
//
// Every function here may block (Argon2 is deliberately slow and
// memory-hungry): call them at start-up or from an executor thread.

#include <cstddef>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "fsrv/auth/password.hpp"
#include "fsrv/core/result.hpp"

namespace fsrv::services::chat {

/// One account. Field names follow the course's Python server (`nama` =
/// full name, shown in msg_from/msg_to; `negara` = country).
struct ChatUser {
  std::string username;       ///< login name, no whitespace, unique
  std::string nama;           ///< full name
  std::string negara;         ///< country
  std::string password_hash;  ///< a crypto_pwhash_str string ("$argon2id$...")
};

/// Cost of hashing the built-in demo users' password: libsodium's minimum
/// (1 pass, 8 KiB). The demo password is public ("surabaya", printed in the
/// course text), so a costly hash would protect nothing; hashing at all
/// only keeps one verification path for every user. Each of the (up to
/// many) worker processes and every test hashes the three demo users at
/// start-up, which at the interactive limits (2 passes over 64 MiB, about
/// 0.1 s each) would cost seconds and 64 MiB peaks for nothing. Real
/// accounts come from a users file hashed with hash_password() and
/// kOpsLimitInteractive / kMemLimitInteractive.
inline constexpr unsigned long long kDemoOpsLimit = 1;  // crypto_pwhash_OPSLIMIT_MIN
inline constexpr size_t kDemoMemLimit = 8192;           // crypto_pwhash_MEMLIMIT_MIN

// The password primitives live in auth/ (shared with the --users accounts).
using auth::hash_password;
using auth::is_password_hash;
using auth::kMemLimitInteractive;
using auth::kOpsLimitInteractive;
using auth::verify_password;

/// Largest users file accepted, in bytes: a few thousand accounts at most;
/// a bigger file is a mistake, not a user list.
inline constexpr size_t kMaxUsersFile = 16u << 20;

/// Why `username` cannot be a chat login name, or "" if it can. Refused:
/// empty, longer than 64 bytes, any byte that is ASCII whitespace or a
/// control character (the protocol splits on spaces, so such a name could
/// never be addressed), invalid UTF-8.
std::string validate_username(std::string_view username);

/// Why `user` cannot be in a users list, or "" if it can: its username is
/// invalid (validate_username) or in `seen` (the usernames before it; its
/// own is added), or its password_hash is not a crypto_pwhash_str string.
std::string check_user(const ChatUser& user, std::set<std::string, std::less<>>& seen);

/// The course's three users (messi "Lionel Messi" Argentina, henderson
/// "Jordan Henderson" Inggris, lineker "Gary Lineker" Inggris), password
/// "surabaya", hashed now at kDemoOpsLimit/kDemoMemLimit (fresh salts, so
/// every call gives different hashes that all verify).
Result<std::vector<ChatUser>> demo_users();

/// Parses a users file's text: a JSON array of objects, each with string
/// fields "username", "nama", "negara" and "password_hash" (other fields
/// ignored). Errors (with the element index): not JSON, not an array,
/// empty array, an element that is not an object, a missing or non-string
/// field, a user check_user refuses.
Result<std::vector<ChatUser>> parse_users_json(std::string_view text);

/// Reads and parses the users file at `path` (parse_users_json), with the
/// path in every error message. Also an error: unreadable, larger than
/// kMaxUsersFile.
Result<std::vector<ChatUser>> load_users_file(const std::string& path);

}  // namespace fsrv::services::chat
