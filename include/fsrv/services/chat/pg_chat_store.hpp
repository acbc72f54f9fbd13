#pragma once
// The chat state in PostgreSQL (`--chat-db postgresql://...`), for nodes of
// a cluster that share users, sessions and inboxes: a token issued through
// one node works on every other, listuser sees every node's sessions. Owns
// one libpq connection (PGconn). See chat_store.hpp for the interface.
//
// Consistency (PostgreSQL 15 docs, chapter 13, READ COMMITTED):
// - every operation is one transaction; a session check is one
//   `UPDATE ... RETURNING` (renew if alive), so two nodes never disagree on
//   whether a token is live;
// - inbox is one `DELETE ... RETURNING` of the user's messages: a second
//   DELETE running at the same moment (another thread, process or node)
//   waits for the first one's row locks, then finds those rows gone and
//   skips them (section 13.2.1), so each message is delivered exactly once;
// - commits are durable when "Message Sent" is answered (synchronous_commit
//   on, the server's default).
// - the schema is created and migrated at open through the
//   `chat_schema_version` table, under a transaction-level advisory lock so
//   nodes starting together do not race; a newer version is refused.
//
// Failure: a refused or broken connection makes every call answer
// Outcome::kUnavailable at once; the next call after a backoff (from
// kPgRetryMinMs doubling to kPgRetryMaxMs) connects again, so chat recovers
// by itself when the database is back. libpq's connect_timeout bounds one
// attempt (ChatStoreOptions::connect_timeout_s).

#include "fsrv/services/chat/chat_store.hpp"

namespace fsrv::services::chat {

/// First wait before reconnecting after a failed attempt, in ms: short, so a
/// restarted database is used again within a fraction of a second.
inline constexpr int kPgRetryMinMs = 100;
/// Longest wait between reconnect attempts, in ms: a database down for
/// minutes costs one connection attempt per thread per 2 s, not one per request.
inline constexpr int kPgRetryMaxMs = 2000;

/// The chat state behind one PostgreSQL connection (ChatStore's
/// operations on it). Not copyable or movable.
class PgChatStore final : public ChatStore {
 public:
  /// `location` is a libpq connection URI or key=value string. Checks the
  /// arguments and the location's syntax (those errors leave the store
  /// closed), then connects and sets the schema and users up; when that
  /// fails the store stays configured (is_open() is true), the error is
  /// returned, and later calls connect again.
  Status open(const std::string& location, const std::vector<ChatUser>& users,
              double session_ttl_s = kDefaultSessionTtlS, ChatStoreOptions options = {}) override;
};

}  // namespace fsrv::services::chat
