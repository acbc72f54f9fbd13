#pragma once
// Passwords: libsodium's Argon2id strings (crypto_pwhash_str: algorithm,
// salt and cost inside the string), made and checked here for every account
// the server keeps (the --users file, the chat's users). Verification is
// slow on purpose (about 0.1 s and 64 MiB at the interactive limits): call
// it from auth::HashPool, never from the loop or the file executor.
// Source: https://doc.libsodium.org/password_hashing/default_phf

#include <cstddef>
#include <string>
#include <string_view>

#include "fsrv/core/result.hpp"

namespace fsrv::auth {

/// libsodium's interactive limits (crypto_pwhash_OPSLIMIT_INTERACTIVE = 2,
/// crypto_pwhash_MEMLIMIT_INTERACTIVE = 64 MiB): the recommended cost for
/// online logins; use these to make a users file.
inline constexpr unsigned long long kOpsLimitInteractive = 2;
inline constexpr size_t kMemLimitInteractive = 64u << 20;

/// Hashes `password` with crypto_pwhash_str at the given cost. Error
/// message if libsodium cannot initialise or runs out of memory.
Result<std::string> hash_password(std::string_view password, unsigned long long opslimit,
                                  size_t memlimit);

/// True iff `password` matches `hash` (crypto_pwhash_str_verify: constant
/// time in the password; false too for a malformed hash).
bool verify_password(const std::string& hash, std::string_view password);

/// Whether `hash` looks like a crypto_pwhash_str string this libsodium can
/// verify ("$argon2id$" or "$argon2i$" prefix, shorter than
/// crypto_pwhash_STRBYTES, NUL-free). Used to reject bad users files early.
bool is_password_hash(std::string_view hash);

}  // namespace fsrv::auth
