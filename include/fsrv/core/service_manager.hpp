#pragma once
// Notifications to the service manager (systemd's Type=notify protocol,
// sd_notify(3) from libsystemd): ready once every listener is bound,
// reloading around a SIGHUP, stopping when the drain starts. Each call is a
// no-op when the process was not started by a service manager (no
// NOTIFY_SOCKET in the environment).

#include <string>

namespace fsrv::service_manager {

/// READY=1 with a STATUS= line: every listener is bound and serving. Only
/// the process that sends it later sends RELOADING/STOPPING (prefork
/// workers inherit NOTIFY_SOCKET but are not the unit's main process).
void notify_ready(const std::string& status);
/// RELOADING=1 before a configuration reload, READY=1 after it (sd_notify(3)).
void notify_reloading();
void notify_reloaded(const std::string& status);
/// STOPPING=1: the drain began (systemd then waits up to TimeoutStopSec=).
void notify_stopping();

}  // namespace fsrv::service_manager
