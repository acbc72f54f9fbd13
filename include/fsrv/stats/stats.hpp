#pragma once
// Server counters. Owns the counter slots and their JSON/text rendering.
//
// One StatsSlot per serving process (thread mode: one; process mode: one per
// worker plus one for the master), laid out in one array that process mode
// maps MAP_SHARED before fork, so any process can sum every slot. Fields are
// lock-free atomics, so sharing them across processes is well defined.

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace fsrv::stats {

/// Commands counted separately; kUnknown covers anything unparseable.
enum class Cmd { kList, kGet, kUpload, kDelete, kSize, kStats, kPing, kQuit, kUnknown, kCount };

inline constexpr int kCmdCount = static_cast<int>(Cmd::kCount);

/// Upper-case protocol name of a command ("GET", ...; "UNKNOWN").
std::string_view cmd_name(Cmd cmd);

/// Counters of one process. Cache-line aligned so workers never share a line.
struct alignas(64) StatsSlot {
  std::atomic<uint64_t> ok[kCmdCount];
  std::atomic<uint64_t> failed[kCmdCount];
  std::atomic<uint64_t> bytes_in;        ///< bytes read from client sockets
  std::atomic<uint64_t> bytes_out;       ///< bytes written to client sockets
  std::atomic<int64_t> conns_active;     ///< connections open now
  std::atomic<uint64_t> conns_total;     ///< connections accepted since start
  std::atomic<uint64_t> conns_rejected;  ///< refused with "server busy"
  std::atomic<uint64_t> conns_lost;      ///< held by a worker that died (process mode)
  std::atomic<int64_t> pid;              ///< process owning the slot (0 = unused)
  std::atomic<uint64_t> restarts;        ///< times this worker slot was re-forked

  /// Counts one finished request.
  void count(Cmd cmd, bool success) {
    (success ? ok : failed)[static_cast<int>(cmd)].fetch_add(1, std::memory_order_relaxed);
  }
};

/// A fixed array of slots, either heap (thread mode) or shared memory
/// (process mode). Not copyable; lives for the whole server.
class StatsTable {
 public:
  /// Allocates `slots` zeroed slots; `shared` maps them MAP_SHARED|MAP_ANONYMOUS
  /// so forked children see the same memory. Throws std::system_error on
  /// mmap failure (start-up only).
  StatsTable(int slots, bool shared);
  ~StatsTable();
  StatsTable(const StatsTable&) = delete;
  StatsTable& operator=(const StatsTable&) = delete;

  int size() const { return slots_; }
  StatsSlot& slot(int i) { return base_[i]; }
  const StatsSlot& slot(int i) const { return base_[i]; }

  /// The STATS reply's "data" object as JSON text: totals over all slots,
  /// plus "workers": one object per slot from `first_worker` on (process
  /// mode; pass size() for none). `mode` and `pool_size` are echoed.
  std::string to_json(std::string_view mode, int pool_size, double uptime_s,
                      int first_worker) const;
  /// One line for the log: "stats mode=thread workers=4 conns=1/10 ...
  /// GET=3/0 ... in=.. out=.." (active/total connections, ok/failed).
  std::string to_line(std::string_view mode, int pool_size) const;

 private:
  int slots_;
  bool shared_;
  StatsSlot* base_;
};

}  // namespace fsrv::stats
