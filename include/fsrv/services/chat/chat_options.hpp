#pragma once
// The chat service's own options (--chat-*, `[services.chat]` in the
// configuration file), declared here rather than in core's ServerConfig:
// the service registers them through its ServiceInfo::add_options (with
// the checks of the users file and the database URL) and reads them from
// ServerConfig::services.

#include <string>
#include <string_view>
#include <vector>

#include "fsrv/core/config.hpp"

namespace CLI {
class App;
}

namespace fsrv::services::chat {

struct Options : ServiceOptionsOf<Options> {
  static constexpr std::string_view kService = "chat";
  /// --chat-users: JSON users file (chat_users.hpp); "" = the course's demo users.
  std::string users;
  /// --chat-session-ttl: idle seconds before a chat session expires (the
  /// default is chat::kDefaultSessionTtlS, an hour).
  double session_ttl_s = 3600.0;
  /// --chat-db: "sqlite:PATH", "postgresql://..." or "" (SQLite under the root).
  std::string db;

  /// --chat-session-ttl needs a restart.
  void restart_needed(const ServiceOptions& fresh,
                      std::vector<std::string>& restart) const override;
  /// SIGHUP: the users file's path (ChatService::reload reads it again).
  void apply_live(const ServiceOptions& fresh) override;
};

/// Adds --chat-users, --chat-db and --chat-session-ttl to `app`, bound to
/// config.services' chat::Options; the users file and the database URL are
/// checked as the service will read them.
void add_options(CLI::App& app, ServerConfig& config);

}  // namespace fsrv::services::chat
