#pragma once
// The connections' deadlines on one loop (idle timeout, request head,
// min_rate check: Connection::arm_deadlines): one uv_timer_t for the loop
// and a binary min-heap of connections by due time, instead of a 152-byte
// uv_timer_t in every connection (idle memory). nginx keeps every
// connection's timers in one red-black tree per worker the same way
// (src/event/ngx_event_timer.c). The timer handle exists only while a
// deadline is set: an empty queue holds no open handle, so a loop whose
// connections are all gone closes cleanly (uv_loop_close() == 0).

#include <uv.h>

#include <cstdint>
#include <vector>

namespace fsrv::reactor {

class Connection;

class DeadlineQueue {
 public:
  /// A connection's slot when it has no deadline set.
  static constexpr uint32_t kNone = UINT32_MAX;

  DeadlineQueue() = default;
  DeadlineQueue(const DeadlineQueue&) = delete;
  DeadlineQueue& operator=(const DeadlineQueue&) = delete;

  /// Makes `c`'s deadline fire by `due_ms` (loop time): kept if one as
  /// early is already set (then nothing is done: progress costs no heap or
  /// timer operation), else moved earlier. The loop's timer is restarted
  /// only when this deadline is due before it.
  void arm(uv_loop_t* loop, Connection* c, uint64_t due_ms);
  /// Forgets `c`'s deadline (close()). The timer may then fire early, find
  /// nothing due and re-arm for the earliest deadline left.
  void remove(Connection* c);
  /// Connections with a deadline set.
  size_t size() const { return heap_.size(); }

 private:
  static void on_timer(uv_timer_t* t);
  void fire();
  void start_timer(uint64_t due_ms);
  void close_timer();
  void up(uint32_t i);
  void down(uint32_t i);
  void place(uint32_t i, Connection* c);

  std::vector<Connection*> heap_;  ///< by due time, earliest first
  uv_loop_t* loop_ = nullptr;
  uv_timer_t* timer_ = nullptr;  ///< made when the first deadline is set
  uint64_t timer_due_ms_ = 0;    ///< when timer_ fires (while active)
  bool firing_ = false;          ///< fire() is calling the connections
};

}  // namespace fsrv::reactor
