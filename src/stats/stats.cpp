#include "fsrv/stats/stats.hpp"

#include <cjson/cJSON.h>
#include <sys/mman.h>

#include <cerrno>
#include <memory>
#include <new>
#include <system_error>

namespace fsrv::stats {

namespace {
const std::string_view kCmdNames[kCmdCount] = {"LIST",  "GET",  "UPLOAD", "DELETE", "SIZE",
                                               "STATS", "PING", "QUIT",   "UNKNOWN"};

/// Adds one slot's counters (or a sum) to a cJSON object.
void add_counters(cJSON* obj, const uint64_t* ok, const uint64_t* failed, uint64_t in, uint64_t out,
                  int64_t active, uint64_t total, uint64_t rejected, uint64_t lost) {
  cJSON* conns = cJSON_AddObjectToObject(obj, "connections");
  cJSON_AddNumberToObject(conns, "active", static_cast<double>(active));
  cJSON_AddNumberToObject(conns, "total", static_cast<double>(total));
  cJSON_AddNumberToObject(conns, "rejected", static_cast<double>(rejected));
  cJSON_AddNumberToObject(conns, "lost", static_cast<double>(lost));
  cJSON_AddNumberToObject(obj, "bytes_in", static_cast<double>(in));
  cJSON_AddNumberToObject(obj, "bytes_out", static_cast<double>(out));
  cJSON* cmds = cJSON_AddObjectToObject(obj, "commands");
  for (int c = 0; c < kCmdCount; ++c) {
    cJSON* one = cJSON_AddObjectToObject(cmds, std::string(kCmdNames[c]).c_str());
    cJSON_AddNumberToObject(one, "ok", static_cast<double>(ok[c]));
    cJSON_AddNumberToObject(one, "failed", static_cast<double>(failed[c]));
  }
}

struct Sum {
  uint64_t ok[kCmdCount] = {};
  uint64_t failed[kCmdCount] = {};
  uint64_t in = 0, out = 0, total = 0, rejected = 0, lost = 0;
  int64_t active = 0;
  void add(const StatsSlot& s) {
    for (int c = 0; c < kCmdCount; ++c) {
      ok[c] += s.ok[c].load(std::memory_order_relaxed);
      failed[c] += s.failed[c].load(std::memory_order_relaxed);
    }
    in += s.bytes_in.load(std::memory_order_relaxed);
    out += s.bytes_out.load(std::memory_order_relaxed);
    active += s.conns_active.load(std::memory_order_relaxed);
    total += s.conns_total.load(std::memory_order_relaxed);
    rejected += s.conns_rejected.load(std::memory_order_relaxed);
    lost += s.conns_lost.load(std::memory_order_relaxed);
  }
};
}  // namespace

std::string_view cmd_name(Cmd cmd) { return kCmdNames[static_cast<int>(cmd)]; }

StatsTable::StatsTable(int slots, bool shared) : slots_(slots), shared_(shared) {
  size_t bytes = sizeof(StatsSlot) * static_cast<size_t>(slots);
  void* mem;
  if (shared) {
    mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap stats");
  } else {
    mem = ::operator new (bytes, std::align_val_t{alignof(StatsSlot)});
  }
  base_ = static_cast<StatsSlot*>(mem);
  for (int i = 0; i < slots; ++i) {
    StatsSlot* s = new (&base_[i]) StatsSlot;
    for (int c = 0; c < kCmdCount; ++c) {
      s->ok[c].store(0);
      s->failed[c].store(0);
    }
    s->bytes_in = 0;
    s->bytes_out = 0;
    s->conns_active = 0;
    s->conns_total = 0;
    s->conns_rejected = 0;
    s->conns_lost = 0;
    s->pid = 0;
    s->restarts = 0;
  }
}

StatsTable::~StatsTable() {
  size_t bytes = sizeof(StatsSlot) * static_cast<size_t>(slots_);
  if (shared_) {
    munmap(base_, bytes);
  } else {
    ::operator delete (base_, std::align_val_t{alignof(StatsSlot)});
  }
}

std::string StatsTable::to_json(std::string_view mode, int pool_size, double uptime_s,
                                int first_worker) const {
  Sum sum;
  for (int i = 0; i < slots_; ++i) sum.add(base_[i]);
  cJSON* root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "mode", std::string(mode).c_str());
  cJSON_AddNumberToObject(root, "pool_size", pool_size);
  cJSON_AddNumberToObject(root, "uptime_s", uptime_s);
  add_counters(root, sum.ok, sum.failed, sum.in, sum.out, sum.active, sum.total, sum.rejected,
               sum.lost);
  cJSON* workers = cJSON_AddArrayToObject(root, "workers");
  for (int i = first_worker; i < slots_; ++i) {
    Sum one;
    one.add(base_[i]);
    cJSON* w = cJSON_CreateObject();
    cJSON_AddNumberToObject(w, "pid", static_cast<double>(base_[i].pid.load()));
    cJSON_AddNumberToObject(w, "restarts", static_cast<double>(base_[i].restarts.load()));
    add_counters(w, one.ok, one.failed, one.in, one.out, one.active, one.total, one.rejected,
                 one.lost);
    cJSON_AddItemToArray(workers, w);
  }
  char* text = cJSON_PrintUnformatted(root);
  std::string out(text ? text : "{}");
  cJSON_free(text);
  cJSON_Delete(root);
  return out;
}

std::string StatsTable::to_line(std::string_view mode, int pool_size) const {
  Sum sum;
  for (int i = 0; i < slots_; ++i) sum.add(base_[i]);
  std::string line = "stats mode=" + std::string(mode) + " workers=" + std::to_string(pool_size) +
                     " conns=" + std::to_string(sum.active) + "/" + std::to_string(sum.total) +
                     " rejected=" + std::to_string(sum.rejected) +
                     " lost=" + std::to_string(sum.lost);
  for (int c = 0; c < kCmdCount; ++c) {
    if (sum.ok[c] == 0 && sum.failed[c] == 0) continue;
    line += " " + std::string(kCmdNames[c]) + "=" + std::to_string(sum.ok[c]) + "/" +
            std::to_string(sum.failed[c]);
  }
  line += " in=" + std::to_string(sum.in) + " out=" + std::to_string(sum.out);
  return line;
}

}  // namespace fsrv::stats
