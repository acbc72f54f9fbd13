#include "fsrv/stats/stats.hpp"

#include <cjson/cJSON.h>
#include <sys/mman.h>

#include <cerrno>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>
#include <system_error>

#include "fsrv/core/version.hpp"

namespace fsrv::stats {

namespace {

/// The object at `path`'s parent inside `root`, created on the way.
cJSON* parent_of(cJSON* root, std::string_view path, std::string* leaf) {
  cJSON* at = root;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      *leaf = std::string(path.substr(start));
      return at;
    }
    std::string part(path.substr(start, slash - start));
    cJSON* next = cJSON_GetObjectItemCaseSensitive(at, part.c_str());
    if (!next) next = cJSON_AddObjectToObject(at, part.c_str());
    at = next;
    start = slash + 1;
  }
}

void add_counters(cJSON* obj, const SlotTotals& s, const Schema& schema) {
  cJSON* conns = cJSON_AddObjectToObject(obj, "connections");
  cJSON_AddNumberToObject(conns, "active", static_cast<double>(s.active));
  cJSON_AddNumberToObject(conns, "total", static_cast<double>(s.total));
  cJSON_AddNumberToObject(conns, "rejected", static_cast<double>(s.rejected));
  cJSON_AddNumberToObject(conns, "lost", static_cast<double>(s.lost));
  cJSON_AddNumberToObject(obj, "executor_pending", static_cast<double>(s.executor_pending));
  cJSON_AddNumberToObject(obj, "bytes_in", static_cast<double>(s.in));
  cJSON_AddNumberToObject(obj, "bytes_out", static_cast<double>(s.out));
  cJSON* services = cJSON_AddObjectToObject(obj, "services");
  for (size_t c = 0; c < schema.size(); ++c) {
    // Duration histograms (stats/duration.hpp) are for /metrics only.
    if (schema.path(static_cast<int>(c)).find("/duration/") != std::string::npos) continue;
    std::string leaf;
    cJSON* parent = parent_of(services, schema.path(static_cast<int>(c)), &leaf);
    // Gauges are kept as wrapping unsigned sums of signed deltas.
    cJSON_AddNumberToObject(parent, leaf.c_str(),
                            static_cast<double>(static_cast<int64_t>(s.cells[c])));
  }
}

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

}  // namespace

Counter Schema::add(std::string_view path, Kind kind) {
  for (size_t i = 0; i < paths_.size(); ++i) {
    if (paths_[i] == path) return Counter{static_cast<int>(i)};
  }
  if (paths_.size() >= static_cast<size_t>(kMaxCells)) {
    throw std::length_error("too many stats counters (kMaxCells)");
  }
  paths_.emplace_back(path);
  kinds_.push_back(kind);
  return Counter{static_cast<int>(paths_.size() - 1)};
}

void Schema::zero_held(StatsSlot& slot) const {
  for (size_t i = 0; i < kinds_.size(); ++i) {
    if (kinds_[i] == Kind::kHeld) slot.cells[i].store(0, std::memory_order_relaxed);
  }
}

void SlotTotals::add(const StatsSlot& s) {
  for (size_t c = 0; c < cells.size(); ++c) cells[c] += s.cells[c].load(std::memory_order_relaxed);
  in += s.bytes_in.load(std::memory_order_relaxed);
  out += s.bytes_out.load(std::memory_order_relaxed);
  active += s.conns_active.load(std::memory_order_relaxed);
  total += s.conns_total.load(std::memory_order_relaxed);
  rejected += s.conns_rejected.load(std::memory_order_relaxed);
  lost += s.conns_lost.load(std::memory_order_relaxed);
  restarts += s.restarts.load(std::memory_order_relaxed);
  executor_pending += s.executor_pending.load(std::memory_order_relaxed);
}

SlotTotals StatsTable::totals() const {
  SlotTotals sum(schema_.size());
  for (int i = 0; i < slots_; ++i) sum.add(base_[i]);
  return sum;
}

StatsTable::StatsTable(int slots, bool shared, const Schema& schema)
    : slots_(slots), shared_(shared), schema_(schema) {
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
    for (auto& c : s->cells) c.store(0);
    s->bytes_in = 0;
    s->bytes_out = 0;
    s->conns_active = 0;
    s->conns_total = 0;
    s->conns_rejected = 0;
    s->conns_taken = 0;
    s->conns_lost = 0;
    s->pid = 0;
    s->restarts = 0;
    s->executor_pending = 0;
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
  const SlotTotals sum = totals();
  cJSON* root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "mode", std::string(mode).c_str());
  cJSON_AddStringToObject(root, "version", std::string(version()).c_str());
  cJSON_AddNumberToObject(root, "pool_size", pool_size);
  cJSON_AddNumberToObject(root, "uptime_s", uptime_s);
  add_counters(root, sum, schema_);
  cJSON* workers = cJSON_AddArrayToObject(root, "workers");
  for (int i = first_worker; i < slots_; ++i) {
    SlotTotals one(schema_.size());
    one.add(base_[i]);
    cJSON* w = cJSON_CreateObject();
    cJSON_AddNumberToObject(w, "pid", static_cast<double>(base_[i].pid.load()));
    cJSON_AddNumberToObject(w, "restarts", static_cast<double>(base_[i].restarts.load()));
    add_counters(w, one, schema_);
    cJSON_AddItemToArray(workers, w);
  }
  char* text = cJSON_PrintUnformatted(root);
  std::string out(text ? text : "{}");
  cJSON_free(text);
  cJSON_Delete(root);
  return out;
}

std::string StatsTable::to_line(std::string_view mode, int pool_size) const {
  const SlotTotals sum = totals();
  std::string line = "stats mode=" + std::string(mode) + " workers=" + std::to_string(pool_size) +
                     " conns=" + std::to_string(sum.active) + "/" + std::to_string(sum.total) +
                     " rejected=" + std::to_string(sum.rejected) +
                     " lost=" + std::to_string(sum.lost);
  // "file/commands/GET/ok" + ".../failed" -> "file.GET=ok/failed".
  std::map<std::string, std::pair<uint64_t, uint64_t>> pairs;
  std::vector<std::string> order;
  for (size_t c = 0; c < schema_.size(); ++c) {
    std::string p = schema_.path(static_cast<int>(c));
    if (p.find("/duration/") != std::string::npos) continue;  // histograms: /metrics only
    if (auto g = p.find("/commands/"); g != std::string::npos) p.erase(g, 9);
    for (char& ch : p) ch = ch == '/' ? '.' : ch;
    int which = ends_with(p, ".ok") ? 0 : ends_with(p, ".failed") ? 1 : 2;
    if (which == 2) {
      if (sum.cells[c] != 0) {
        line += " " + p + "=" + std::to_string(static_cast<int64_t>(sum.cells[c]));
      }
      continue;
    }
    std::string key = p.substr(0, p.rfind('.'));
    if (!pairs.count(key)) order.push_back(key);
    (which == 0 ? pairs[key].first : pairs[key].second) += sum.cells[c];
  }
  for (const std::string& key : order) {
    auto [ok, failed] = pairs[key];
    if (ok == 0 && failed == 0) continue;
    line += " " + key + "=" + std::to_string(ok) + "/" + std::to_string(failed);
  }
  line += " in=" + std::to_string(sum.in) + " out=" + std::to_string(sum.out);
  return line;
}

}  // namespace fsrv::stats
