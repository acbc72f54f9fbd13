#pragma once
// The `chat` service (course "tugas 5", default port 8889): the course's
// chat protocol (chat_protocol.hpp) on a persistent connection. Lines are
// framed with find_line_end; each is run on a database thread (never on the
// loop thread: the store blocks on the database and Argon2), one request at
// a time per connection (pipelined lines wait in the input buffer, and
// reading pauses meanwhile); the reply is exactly what execute() returns. A
// line over kMaxLineBytes gets reply_line_too_long() and the connection
// closes.
//
// State: the SQLite file `<root>/.chat/chat.db` (default_db_path) or the
// PostgreSQL database of --chat-db, opened lazily by one ChatStore per
// database thread (db_workers.hpp) of every serving process. Every process
// and thread thus shares users, sessions and inboxes through the database.
// Users: --chat-users FILE, or the course's three demo users.

#include "fsrv/services/service.hpp"

namespace fsrv::services::chat {

/// The `chat` service's registration (src/services/registry.cpp).
const ServiceInfo& info();

}  // namespace fsrv::services::chat
