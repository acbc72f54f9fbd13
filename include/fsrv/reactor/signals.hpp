#pragma once
// Signals as loop events through a signalfd (signalfd(2)), instead of
// uv_signal_t. The signals are blocked in the calling thread, and so in every
// thread and child created after it, then read from the fd by a uv_poll_t.
// Why not uv_signal_t: closing a uv_signal_t restores the default (fatal)
// disposition, so a signal arriving between the end of a graceful shutdown
// and exit kills a clean exit; and a child forked from a process with
// uv_signal_t watchers still has them registered in its copied memory, so a
// signal sent to the child would be reported to the parent's loop. A blocked
// signal that nobody reads is simply discarded at exit.

#include <uv.h>

#include <functional>
#include <vector>

namespace fsrv::reactor {

/// Delivers the given signals to a callback on the loop thread.
/// Not copyable or movable (libuv keeps the poll handle's address).
class SignalWatcher {
 public:
  /// Blocks `signals` in the calling thread (call before any other thread
  /// starts: libuv's pool threads inherit the mask) and watches them.
  /// Throws std::system_error if the signalfd cannot be made (start-up only).
  SignalWatcher(uv_loop_t* loop, const std::vector<int>& signals,
                std::function<void(int)> on_signal);
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  /// Stops watching (idempotent); the signals stay blocked. The object must
  /// outlive the loop run that processes the close.
  void close();

 private:
  static void on_readable(uv_poll_t* poll, int status, int events);
  uv_poll_t poll_;
  int fd_ = -1;
  bool open_ = false;
  std::function<void(int)> on_signal_;
};

}  // namespace fsrv::reactor
