// The --users accounts file (see users.hpp).

#include "fsrv/auth/users.hpp"

#include <fstream>
#include <sstream>

#include "fsrv/auth/password.hpp"

namespace fsrv::auth {

using UsersResult = Result<std::shared_ptr<const Users>>;

std::string validate_user_name(std::string_view name) {
  if (name.empty()) return "empty user name";
  if (name.size() > kMaxUserName) return "user name longer than " + std::to_string(kMaxUserName);
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return "user name may hold only letters, digits, '.', '_' and '-'";
  }
  return "";
}

UsersResult Users::parse(std::string_view text, const std::string& file) {
  auto users = std::make_shared<Users>();
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    auto bad = [&](const std::string& why) {
      return UsersResult::failure(Errc::kBadRequest,
                                  file + ":" + std::to_string(line_no) + ": " + why);
    };
    size_t a = line.find(':');
    size_t b = line.rfind(':');
    if (a == std::string_view::npos || a == b) return bad("expected NAME:HASH:ROLE");
    Account acc;
    acc.name = std::string(line.substr(0, a));
    acc.hash = std::string(line.substr(a + 1, b - a - 1));
    std::string_view role = line.substr(b + 1);
    if (std::string why = validate_user_name(acc.name); !why.empty()) return bad(why);
    if (!is_password_hash(acc.hash)) {
      return bad(
          "the hash is not a crypto_pwhash_str string ($argon2id$...; "
          "make one with: fileserver hash-password NAME ROLE)");
    }
    if (!parse_role(role, acc.role)) {
      return bad("role '" + std::string(role) + "' (expected read, write or admin)");
    }
    if (users->accounts_.count(acc.name)) return bad("user '" + acc.name + "' appears twice");
    users->accounts_.emplace(acc.name, std::move(acc));
  }
  UsersResult out;
  out.value = std::move(users);
  return out;
}

UsersResult Users::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return UsersResult::failure(Errc::kIo, path + ": cannot open the users file");
  std::string text(kMaxUsersFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxUsersFileBytes) {
    return UsersResult::failure(
        Errc::kBadRequest,
        path + ": larger than " + std::to_string(kMaxUsersFileBytes) + " bytes: not a users file");
  }
  return parse(text, path);
}

const Account* Users::find(std::string_view name) const {
  auto it = accounts_.find(std::string(name));
  return it == accounts_.end() ? nullptr : &it->second;
}

Result<std::string> make_users_line(std::string_view name, Role role, std::string_view password) {
  if (std::string why = validate_user_name(name); !why.empty()) {
    return Result<std::string>::failure(Errc::kBadRequest, why);
  }
  Result<std::string> hash = hash_password(password, kOpsLimitInteractive, kMemLimitInteractive);
  if (!hash.ok()) return hash;
  hash.value = std::string(name) + ":" + hash.value + ":" + std::string(role_name(role));
  return hash;
}

}  // namespace fsrv::auth
