#include "fsrv/reactor/deadlines.hpp"

#include <utility>

#include "fsrv/reactor/connection.hpp"

namespace fsrv::reactor {

void DeadlineQueue::arm(uv_loop_t* loop, Connection* c, uint64_t due_ms) {
  loop_ = loop;
  if (c->deadline_slot_ != kNone) {
    if (c->deadline_due_ms_ <= due_ms) return;  // already due as early
    c->deadline_due_ms_ = due_ms;
    up(c->deadline_slot_);
  } else {
    c->deadline_due_ms_ = due_ms;
    c->deadline_slot_ = static_cast<uint32_t>(heap_.size());
    heap_.push_back(c);
    up(c->deadline_slot_);
  }
  if (!firing_ && heap_.front() == c) start_timer(due_ms);
}

void DeadlineQueue::remove(Connection* c) {
  const uint32_t i = c->deadline_slot_;
  if (i == kNone) return;
  c->deadline_slot_ = kNone;
  Connection* last = heap_.back();
  heap_.pop_back();
  if (i < heap_.size()) {
    place(i, last);
    down(i);
    up(last->deadline_slot_);
  }
  if (heap_.empty() && !firing_) close_timer();
}

void DeadlineQueue::start_timer(uint64_t due_ms) {
  if (!timer_) {
    timer_ = new uv_timer_t;
    uv_timer_init(loop_, timer_);
    timer_->data = this;
  } else if (uv_is_active(reinterpret_cast<uv_handle_t*>(timer_)) && timer_due_ms_ <= due_ms) {
    return;
  }
  const uint64_t now = uv_now(loop_);
  timer_due_ms_ = due_ms;
  uv_timer_start(timer_, on_timer, due_ms > now ? due_ms - now : 0, 0);
}

void DeadlineQueue::close_timer() {
  if (!timer_) return;
  uv_close(reinterpret_cast<uv_handle_t*>(timer_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  timer_ = nullptr;
}

void DeadlineQueue::on_timer(uv_timer_t* t) { static_cast<DeadlineQueue*>(t->data)->fire(); }

// Takes every connection due by now off the heap first (each held by a
// reference), then calls them: a connection re-arming for a deadline
// already past waits for the next timer pass instead of looping here.
void DeadlineQueue::fire() {
  const uint64_t now = uv_now(loop_);
  std::vector<ConnRef> due;
  firing_ = true;  // the timer stays while the heap empties here
  while (!heap_.empty() && heap_.front()->deadline_due_ms_ <= now) {
    Connection* c = heap_.front();
    due.emplace_back(c);
    remove(c);
  }
  for (const ConnRef& c : due) Connection::on_deadline(c.get());
  firing_ = false;
  if (heap_.empty()) {
    close_timer();
  } else {
    start_timer(heap_.front()->deadline_due_ms_);
  }
}

void DeadlineQueue::place(uint32_t i, Connection* c) {
  heap_[i] = c;
  c->deadline_slot_ = i;
}

void DeadlineQueue::up(uint32_t i) {
  Connection* c = heap_[i];
  while (i > 0) {
    const uint32_t parent = (i - 1) / 2;
    if (heap_[parent]->deadline_due_ms_ <= c->deadline_due_ms_) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, c);
}

void DeadlineQueue::down(uint32_t i) {
  Connection* c = heap_[i];
  const uint32_t n = static_cast<uint32_t>(heap_.size());
  for (;;) {
    uint32_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && heap_[child + 1]->deadline_due_ms_ < heap_[child]->deadline_due_ms_) {
      ++child;
    }
    if (c->deadline_due_ms_ <= heap_[child]->deadline_due_ms_) break;
    place(i, heap_[child]);
    i = child;
  }
  place(i, c);
}

}  // namespace fsrv::reactor
