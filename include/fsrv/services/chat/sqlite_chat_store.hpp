#pragma once
// The chat state in one SQLite database file that several worker processes
// (prefork mode) or threads of one machine share: the embedded default
// (`--chat-db sqlite:PATH`, or `<root>/.chat/chat.db`). Owns one sqlite3
// connection. See chat_store.hpp for the interface and its promises.
//
// Consistency (https://www.sqlite.org/wal.html, /lang_transaction.html):
// - journal_mode=WAL: readers never block the writer, and the mode is
//   stored in the file, so every process sees it.
// - busy_timeout: a connection that finds the write lock taken waits (up to
//   ChatStoreOptions::busy_timeout_ms) instead of failing with SQLITE_BUSY.
// - Every operation is one BEGIN IMMEDIATE transaction: it takes the write
//   lock before reading, so two connections never act on the same snapshot
//   (no SQLITE_BUSY_SNAPSHOT, no lost update). inbox selects and deletes the
//   user's messages in one such transaction.
// - synchronous=FULL by default (ChatStoreOptions::durability): "Message
//   Sent" is only answered after the WAL is fsync'ed, so an acknowledged
//   message survives a process crash, an OS crash and a power cut. NORMAL
//   in WAL mode survives process crashes only (the last commits can roll
//   back on power loss) for one fsync less per commit; at chat rates the
//   fsync costs nothing we would notice and we run off the event loop
//   anyway, so the stronger promise wins.
// - The schema version is kept in PRAGMA user_version; a newer file is
//   refused rather than misread.
//
// SQLite's locks are file locks: they do not hold across machines on a
// network file system (https://www.sqlite.org/useovernet.html), so a
// cluster keeps chat in PostgreSQL (pg_chat_store.hpp), not in the shared root.

#include "fsrv/services/chat/chat_store.hpp"

namespace fsrv::services::chat {

/// The chat state behind one SQLite connection (ChatStore's operations on
/// it). Not copyable or movable.
class SqliteChatStore final : public ChatStore {
 public:
  /// `location` is the file path; creates the parent directory (mode 0700)
  /// and the file if missing, sets WAL/busy_timeout/synchronous. Errors as
  /// ChatStore::open, plus busy timeout. Until it succeeds every operation
  /// answers kStoreError.
  Status open(const std::string& location, const std::vector<ChatUser>& users,
              double session_ttl_s = kDefaultSessionTtlS, ChatStoreOptions options = {}) override;
};

}  // namespace fsrv::services::chat
