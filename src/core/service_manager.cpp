#include "fsrv/core/service_manager.hpp"

#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <atomic>

namespace fsrv::service_manager {

namespace {
/// The pid that sent READY=1 (0: none): a forked child has another pid and
/// stays silent.
std::atomic<pid_t> g_main{0};

bool is_main() { return g_main.load() == getpid(); }
}  // namespace

void notify_ready(const std::string& status) {
  g_main.store(getpid());
  sd_notifyf(0, "READY=1\nSTATUS=%s\nMAINPID=%d", status.c_str(), static_cast<int>(getpid()));
}

void notify_reloading() {
  if (is_main()) sd_notify(0, "RELOADING=1");
}

void notify_reloaded(const std::string& status) {
  if (is_main()) sd_notifyf(0, "READY=1\nSTATUS=%s", status.c_str());
}

void notify_stopping() {
  if (is_main()) sd_notify(0, "STOPPING=1\nSTATUS=draining");
}

}  // namespace fsrv::service_manager
