#pragma once
// Server counters. Owns the counter slots, the schema of per-service
// counters and their JSON/text rendering; knows no protocol.
//
// One StatsSlot per serving process (thread mode: one; process mode: one per
// worker plus one for the master), laid out in one array that process mode
// maps MAP_SHARED before fork, so any process can sum every slot. Fields are
// lock-free atomics, so sharing them across processes is well defined.
//
// Services register their own counters in a Schema at start-up, before any
// fork (so every process agrees on the layout): a counter is a path such as
// "file/commands/GET/ok", rendered as nested JSON objects under "services".

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fsrv::stats {

/// Counter cells per slot. Each service registers a few dozen at most; 512
/// cells are 4 KiB per process, fixed so the shared mapping never grows.
inline constexpr int kMaxCells = 512;

/// A registered counter: an index into StatsSlot::cells (-1 = unregistered,
/// counting into it is a no-op).
struct Counter {
  int index = -1;
};

struct StatsSlot;

/// The names of the counter cells. Built once at start-up (before fork),
/// read-only afterwards.
class Schema {
 public:
  /// What a cell counts. kHeld: something the process holds now (a
  /// service's open connections), so a process that dies takes it along
  /// and its slot's cell is zeroed (zero_held).
  enum class Kind { kCount, kHeld };
  /// Registers `path` ("service/group/name", '/'-separated, no empty part)
  /// and returns its counter; registering the same path again returns the
  /// same counter (with its first kind). Throws std::length_error past
  /// kMaxCells (start-up only).
  Counter add(std::string_view path, Kind kind = Kind::kCount);
  size_t size() const { return paths_.size(); }
  const std::string& path(int index) const { return paths_[static_cast<size_t>(index)]; }
  /// Zeroes the kHeld cells of `slot`: its process is gone (the prefork
  /// master, for a dead worker's slot).
  void zero_held(StatsSlot& slot) const;

 private:
  std::vector<std::string> paths_;
  std::vector<Kind> kinds_;  ///< by cell, beside paths_
};

/// Counters of one process. Cache-line aligned so workers never share a line.
struct alignas(64) StatsSlot {
  std::atomic<uint64_t> bytes_in;        ///< bytes read from client sockets
  std::atomic<uint64_t> bytes_out;       ///< bytes written to client sockets
  std::atomic<int64_t> conns_active;     ///< connections open now
  std::atomic<uint64_t> conns_total;     ///< connections accepted since start
  std::atomic<uint64_t> conns_rejected;  ///< refused (busy or shutting down)
  /// Connections made (served or refused), counted just before
  /// conns_active: the prefork master's load of a worker, conns_active +
  /// sockets sent - conns_taken, then never counts one twice.
  std::atomic<uint64_t> conns_taken;
  std::atomic<uint64_t> conns_lost;  ///< held by a worker that died (process mode)
  std::atomic<int64_t> pid;          ///< process owning the slot (0 = unused)
  std::atomic<uint64_t> restarts;    ///< times this worker slot was re-forked
  /// Executor tasks submitted and not yet done in this process (a gauge:
  /// the queue in front of the file pool; reactor::Executor keeps it).
  std::atomic<int64_t> executor_pending;
  std::atomic<uint64_t> cells[kMaxCells];  ///< per-service counters (Schema)

  /// Adds `n` to a registered counter.
  void add(Counter c, uint64_t n = 1) {
    if (c.index >= 0) cells[c.index].fetch_add(n, std::memory_order_relaxed);
  }
  /// Adds a signed delta (gauges such as a service's active connections).
  void add_signed(Counter c, int64_t delta) {
    if (c.index >= 0) {
      cells[c.index].fetch_add(static_cast<uint64_t>(delta), std::memory_order_relaxed);
    }
  }
};

/// Totals of one slot or of a sum of slots, read with relaxed loads (each
/// field a snapshot of its own; the STATS reply and /metrics add them up).
struct SlotTotals {
  std::vector<uint64_t> cells;  ///< per-service counters, by Schema index
  uint64_t in = 0, out = 0, total = 0, rejected = 0, lost = 0, restarts = 0;
  int64_t active = 0, executor_pending = 0;
  /// Zero totals for a schema of `cells` counters.
  explicit SlotTotals(size_t cells) : cells(cells, 0) {}
  /// Adds the counters of `s`.
  void add(const StatsSlot& s);
};

/// A fixed array of slots, either heap (thread mode) or shared memory
/// (process mode). Not copyable; lives for the whole server.
class StatsTable {
 public:
  /// Allocates `slots` zeroed slots; `shared` maps them MAP_SHARED|MAP_ANONYMOUS
  /// so forked children see the same memory. Throws std::system_error on
  /// mmap failure (start-up only). `schema` must outlive the table.
  StatsTable(int slots, bool shared, const Schema& schema);
  ~StatsTable();
  StatsTable(const StatsTable&) = delete;
  StatsTable& operator=(const StatsTable&) = delete;

  int size() const { return slots_; }
  StatsSlot& slot(int i) { return base_[i]; }
  const StatsSlot& slot(int i) const { return base_[i]; }
  /// The sum of every slot.
  SlotTotals totals() const;

  /// The STATS data object as JSON text: totals over all slots
  /// ("connections", "bytes_in", "bytes_out", "services": the registered
  /// counters nested by path), plus "workers": one object per slot from
  /// `first_worker` on (process mode; pass size() for none). `mode` and
  /// `pool_size` are echoed.
  std::string to_json(std::string_view mode, int pool_size, double uptime_s,
                      int first_worker) const;
  /// One line for the log: "stats mode=thread workers=4 conns=1/10
  /// rejected=0 lost=0 file.GET=3/0 echo.bytes=12 in=.. out=.." (active/total
  /// connections; ok/failed pairs joined; zero counters left out).
  std::string to_line(std::string_view mode, int pool_size) const;

 private:
  int slots_;
  bool shared_;
  const Schema& schema_;
  StatsSlot* base_;
};

}  // namespace fsrv::stats
