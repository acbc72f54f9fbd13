// The chat service's command-line options and configuration keys (see
// chat_options.hpp).

#include "fsrv/services/chat/chat_options.hpp"

#include <CLI/CLI.hpp>

#include "fsrv/services/chat/chat_store.hpp"
#include "fsrv/services/chat/chat_users.hpp"

namespace fsrv::services::chat {

void Options::restart_needed(const ServiceOptions& fresh_options,
                             std::vector<std::string>& restart) const {
  const auto& fresh = static_cast<const Options&>(fresh_options);
  if (session_ttl_s != fresh.session_ttl_s) restart.emplace_back("chat-session-ttl");
}

void Options::apply_live(const ServiceOptions& fresh) {
  users = static_cast<const Options&>(fresh).users;
}

void add_options(CLI::App& app, ServerConfig& config) {
  Options& o = config.services.get<Options>();
  app.add_option("--chat-users", o.users,
                 "chat: JSON users file (username, nama, negara, password_hash); default: "
                 "the course's demo users")
      ->check([](const std::string& path) {
        auto users = load_users_file(path);
        return users.ok() ? std::string() : users.error;
      });
  app.add_option("--chat-db", o.db,
                 "chat: where the state lives: sqlite:PATH (default <root>/.chat/chat.db) "
                 "or postgresql://... (a libpq URI, shared by every node of a cluster)")
      ->check([](const std::string& url) {
        auto db = parse_chat_db(url, "");
        return db.ok() ? std::string() : db.error;
      });
  app.add_option("--chat-session-ttl", o.session_ttl_s,
                 "chat: seconds of inactivity before a session token expires")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
}

}  // namespace fsrv::services::chat
