#include "fsrv/reactor/signals.hpp"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace fsrv::reactor {

SignalWatcher::SignalWatcher(uv_loop_t* loop, const std::vector<int>& signals,
                             std::function<void(int)> on_signal)
    : on_signal_(std::move(on_signal)) {
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : signals) sigaddset(&mask, s);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "signalfd");
  uv_poll_init(loop, &poll_, fd_);
  poll_.data = this;
  uv_poll_start(&poll_, UV_READABLE, on_readable);
  open_ = true;
}

SignalWatcher::~SignalWatcher() {
  if (fd_ >= 0) ::close(fd_);
}

void SignalWatcher::on_readable(uv_poll_t* poll, int status, int /*events*/) {
  auto* self = static_cast<SignalWatcher*>(poll->data);
  if (status < 0) return;
  signalfd_siginfo info;
  while (self->open_ && read(self->fd_, &info, sizeof info) == sizeof info) {
    self->on_signal_(static_cast<int>(info.ssi_signo));
  }
}

void SignalWatcher::close() {
  if (!open_) return;
  open_ = false;
  // The fd is closed in the destructor, after libuv let go of it.
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), [](uv_handle_t*) {});
}

}  // namespace fsrv::reactor
