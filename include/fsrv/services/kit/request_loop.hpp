#pragma once
// The stream-session kit's request loop: when a session may take its next
// request. One request at a time; while one is in progress (a storage call,
// a download, an upload's payload) no other is parsed. Between requests the
// loop pauses reading while the connection is congested (on_drain resumes),
// answers at most kRequestsPerTurn in one loop turn then yields it (so one
// client's pipelined flood cannot starve the others; Redis's
// NET_MAX_WRITES_PER_EVENT), and closes once the client quit or the server
// shuts down with no request in progress.

#include <utility>

#include "fsrv/reactor/connection.hpp"

namespace fsrv::services::kit {

/// Requests answered in one turn of the loop before yielding it.
inline constexpr int kRequestsPerTurn = 64;

/// A session's request loop (see above). Holds no input: the session's
/// `next` parses from its InputBuffer.
class RequestLoop {
 public:
  explicit RequestLoop(reactor::Connection& conn, int per_turn = kRequestsPerTurn)
      : conn_(conn), per_turn_(per_turn) {}

  /// Takes requests while idle: `next()` parses and starts one request and
  /// returns true, or returns false when no complete request is buffered.
  /// A request that goes on after `next` returns calls begin() there.
  /// Returns true when the caller should now wait for more bytes (idle, not
  /// closing, not quitting: handle EOF, then resume reading); false when
  /// the loop paused (congested), yielded the turn, or has nothing to wait
  /// for (a request in progress, closing, quitting).
  template <class Next>
  bool pump(Next&& next) {
    bool outer = std::exchange(pumping_, true);
    bool wait = take(next);
    pumping_ = outer;
    return wait;
  }
  /// A request goes on past the call that started it (stops parsing).
  void begin() { busy_ = true; }
  /// The request in progress finished. Closes after the replies when the
  /// client quit or the server is shutting down; returns true when the
  /// session should take its next request (pump again; false inside a
  /// pump, which goes on by itself: a request that ends within next()
  /// does not nest another pump).
  bool done() {
    busy_ = false;
    if (conn_.closing()) return false;
    if (quit_) {
      conn_.close_when_flushed();
      return false;
    }
    return !pumping_;
  }
  /// The server is shutting down (ConnectionHandler::on_shutdown): closes
  /// now if idle, else after the request in progress.
  void shutdown() {
    quit_ = true;
    if (!busy_ && !conn_.closing()) conn_.close_when_flushed();
  }
  /// The client asked to end (QUIT): as shutdown().
  void quit() { shutdown(); }
  bool busy() const { return busy_; }
  bool quitting() const { return quit_; }

 private:
  template <class Next>
  bool take(Next& next) {
    for (int handled = 0; may_take(); ++handled) {
      if (conn_.congested()) {
        conn_.pause_reading();  // on_drain comes back
        return false;
      }
      if (handled == per_turn_) {
        conn_.yield_turn();  // on_drain next turn
        return false;
      }
      if (!next()) break;
    }
    return may_take();
  }
  bool may_take() const { return !busy_ && !quit_ && !conn_.closing(); }

  reactor::Connection& conn_;
  int per_turn_;
  bool busy_ = false;
  bool quit_ = false;
  bool pumping_ = false;
};

}  // namespace fsrv::services::kit
