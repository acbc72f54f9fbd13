#pragma once
// Process mode (prefork, as nginx's master/workers): the master owns every
// listening socket and its loop, accepts each client and passes the socket to
// the least-loaded worker over a socketpair opened as a libuv IPC pipe
// (uv_write2, SCM_RIGHTS underneath) with a typed message naming the
// listener (channel.hpp). Each worker builds the same services as thread
// mode (runtime::ServingProcess) on its own fresh loop, running the blocking
// chunks inline (InlineExecutor): the worker process is the pool.
//
// Counters live in one shared anonymous mapping made before any fork: slot 0
// is the master's, slot i (1..N) worker i's, so any process answers STATS
// for the whole server. A worker that dies is reaped (SIGCHLD), its open
// connections are counted as lost, and a new worker is forked into the same
// slot. Workers exit when the master's end of their pipe closes (also when
// the master is SIGKILLed) after finishing in-flight transfers.
//
// libuv pitfalls handled here: the pipe is opened with ipc=1; uv_write2
// carries the typed message; the master closes its copy of the client only in the
// uv_write2 callback; children never touch the master's loop: right after
// fork they close every inherited descriptor but their pipe and build a fresh
// loop. Signals are read from signalfds (reactor::SignalWatcher) in master
// and workers, blocked from before the first fork, so no libuv signal
// watcher state is ever copied into a child.

#include <sys/types.h>

#include <utility>
#include <vector>

#include "fsrv/core/config.hpp"
#include "fsrv/services/service.hpp"
#include "fsrv/stats/stats.hpp"

namespace fsrv::process {

/// Runs a worker in a freshly forked child: serves client sockets received on
/// `channel_fd` (a socketpair end) until the channel closes or SIGTERM/SIGINT,
/// counting into `table.slot(slot)`. `listeners` are the master's, resolved
/// once (runtime::resolve_listeners) and inherited across fork. `datagrams` are the UDP sockets
/// (listener index, inherited fd) this worker receives on: all of them for
/// slot 1, none for the others. Never returns: calls _exit.
[[noreturn]] void worker_main(const ServerConfig& config,
                              const std::vector<services::Listening>& listeners,
                              const stats::Schema& schema, stats::StatsTable& table, int slot,
                              int channel_fd, pid_t master_pid, double started_unix,
                              const std::vector<std::pair<int, int>>& datagrams = {});

/// Runs the master: forks config.workers workers, accepts, passes sockets,
/// re-forks dead workers, and on SIGINT/SIGTERM stops them gracefully.
/// Prints one "listening SERVICE on HOST:PORT" line per listener first.
/// Returns the exit code (2 for a configuration error).
int run_master(const ServerConfig& config);

}  // namespace fsrv::process
