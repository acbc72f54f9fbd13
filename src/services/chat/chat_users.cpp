// Chat accounts: demo users, users file, libsodium password hashes (see
// chat_users.hpp).

#include "fsrv/services/chat/chat_users.hpp"

#include <cjson/cJSON.h>
#include <sodium.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <utility>

#include "fsrv/codec/utf8.hpp"

namespace fsrv::services::chat {

static_assert(kDemoOpsLimit == crypto_pwhash_OPSLIMIT_MIN);
static_assert(kDemoMemLimit == crypto_pwhash_MEMLIMIT_MIN);

namespace {

// Longest username: far above any real login, small enough to keep the
// listuser reply and the database tidy.
constexpr size_t kMaxUsername = 64;

// The course's demo password (tugas 5 chat.py), public by design.
constexpr std::string_view kDemoPassword = "surabaya";

}  // namespace

std::string validate_username(std::string_view username) {
  if (username.empty()) return "empty username";
  if (username.size() > kMaxUsername) return "username longer than 64 bytes";
  size_t i = 0;
  while (i < username.size()) {
    const auto c = static_cast<unsigned char>(username[i]);
    if (c <= 0x20 || c == 0x7F) return "username contains whitespace or a control character";
    const codec::Utf8Step step = codec::utf8_next(username, i);
    if (!step.valid) return "username is not valid UTF-8";
    // Non-ASCII whitespace would be stripped by the line parser too
    // (Python's str.strip); U+0085 and U+00A0 are the likely ones.
    if (step.code_point == 0x85 || step.code_point == 0xA0) {
      return "username contains whitespace or a control character";
    }
    i += step.size;
  }
  return "";
}

std::string check_user(const ChatUser& user, std::set<std::string, std::less<>>& seen) {
  if (std::string why = validate_username(user.username); !why.empty()) return why;
  if (!seen.insert(user.username).second) return "duplicate username \"" + user.username + "\"";
  if (!is_password_hash(user.password_hash)) {
    return "password_hash is not a crypto_pwhash_str string ($argon2id$...)";
  }
  return "";
}

Result<std::vector<ChatUser>> demo_users() {
  using R = Result<std::vector<ChatUser>>;
  R result;
  result.value = {{"messi", "Lionel Messi", "Argentina", ""},
                  {"henderson", "Jordan Henderson", "Inggris", ""},
                  {"lineker", "Gary Lineker", "Inggris", ""}};
  for (ChatUser& u : result.value) {
    Result<std::string> hash = hash_password(kDemoPassword, kDemoOpsLimit, kDemoMemLimit);
    if (!hash.ok()) return R::failure(hash.status());
    u.password_hash = std::move(hash.value);
  }
  return result;
}

Result<std::vector<ChatUser>> parse_users_json(std::string_view text) {
  using R = Result<std::vector<ChatUser>>;
  std::unique_ptr<cJSON, decltype(&cJSON_Delete)> root(
      cJSON_ParseWithLength(text.data(), text.size()), cJSON_Delete);
  if (!root) return R::failure(Errc::kBadRequest, "users file is not valid JSON");
  if (!cJSON_IsArray(root.get()))
    return R::failure(Errc::kBadRequest, "users file must be a JSON array of users");
  R result;
  std::set<std::string, std::less<>> seen;
  int index = 0;
  const cJSON* item = nullptr;
  cJSON_ArrayForEach(item, root.get()) {
    const std::string where = "user #" + std::to_string(index) + ": ";
    if (!cJSON_IsObject(item)) return R::failure(Errc::kBadRequest, where + "not an object");
    ChatUser user;
    const std::pair<const char*, std::string*> fields[] = {{"username", &user.username},
                                                           {"nama", &user.nama},
                                                           {"negara", &user.negara},
                                                           {"password_hash", &user.password_hash}};
    for (const auto& [name, out] : fields) {
      const cJSON* v = cJSON_GetObjectItemCaseSensitive(item, name);
      if (v == nullptr) return R::failure(Errc::kBadRequest, where + "missing \"" + name + "\"");
      if (!cJSON_IsString(v) || v->valuestring == nullptr) {
        return R::failure(Errc::kBadRequest, where + "\"" + name + "\" must be a string");
      }
      *out = v->valuestring;
    }
    if (std::string why = check_user(user, seen); !why.empty()) {
      return R::failure(Errc::kBadRequest, where + why);
    }
    result.value.push_back(std::move(user));
    ++index;
  }
  if (result.value.empty()) return R::failure(Errc::kBadRequest, "users file has no users");
  return result;
}

Result<std::vector<ChatUser>> load_users_file(const std::string& path) {
  using R = Result<std::vector<ChatUser>>;
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return R::failure(Errc::kBadRequest,
                      "cannot open users file " + path + ": " + std::strerror(errno));
  std::string text;
  char buf[64 * 1024];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxUsersFile) {
      return R::failure(Errc::kBadRequest, "users file " + path + " is larger than 16 MiB");
    }
  }
  if (in.bad()) return R::failure(Errc::kBadRequest, "cannot read users file " + path);
  R result = parse_users_json(text);
  if (!result.ok()) result.error = path + ": " + result.error;
  return result;
}

}  // namespace fsrv::services::chat
