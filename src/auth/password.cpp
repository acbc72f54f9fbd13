// Argon2id password strings through libsodium (see password.hpp).

#include "fsrv/auth/password.hpp"

#include <sodium.h>

namespace fsrv::auth {

static_assert(kOpsLimitInteractive == crypto_pwhash_OPSLIMIT_INTERACTIVE);
static_assert(kMemLimitInteractive == crypto_pwhash_MEMLIMIT_INTERACTIVE);

Result<std::string> hash_password(std::string_view password, unsigned long long opslimit,
                                  size_t memlimit) {
  if (sodium_init() < 0)
    return Result<std::string>::failure(Errc::kIo, "libsodium: sodium_init failed");
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), opslimit, memlimit) != 0) {
    return Result<std::string>::failure(
        Errc::kIo, "libsodium: crypto_pwhash_str failed (out of memory or bad limits)");
  }
  Result<std::string> r;
  r.value = out;
  return r;
}

bool verify_password(const std::string& hash, std::string_view password) {
  if (sodium_init() < 0 || !is_password_hash(hash)) return false;
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

bool is_password_hash(std::string_view hash) {
  if (hash.size() >= crypto_pwhash_STRBYTES) return false;
  if (hash.find('\0') != std::string_view::npos) return false;
  return hash.starts_with("$argon2id$v=") || hash.starts_with("$argon2i$v=");
}

}  // namespace fsrv::auth
