#include "fsrv/stats/duration.hpp"

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace fsrv::stats {

namespace {
/// Every cell path of `base`'s histogram, buckets first, then count, sum.
std::vector<std::string> cell_paths(std::string_view base) {
  std::vector<std::string> paths;
  std::string prefix = std::string(base) + "/duration/";
  for (int i = 0; i < kDurationBuckets; ++i) {
    char bound[32];
    snprintf(bound, sizeof bound, "%g", kDurationBounds[i]);
    paths.push_back(prefix + "le/" + bound);
  }
  paths.push_back(prefix + "count");
  paths.push_back(prefix + "sum_us");
  return paths;
}
}  // namespace

void Duration::register_cells(Schema& schema, std::string_view base) {
  for (const std::string& p : cell_paths(base)) schema.add(p);
}

Duration Duration::of(const Schema& schema, std::string_view base) {
  std::vector<std::string> paths = cell_paths(base);
  std::vector<Counter> found(paths.size());
  for (size_t i = 0; i < schema.size(); ++i) {
    for (size_t k = 0; k < paths.size(); ++k) {
      if (schema.path(static_cast<int>(i)) == paths[k]) found[k] = Counter{static_cast<int>(i)};
    }
  }
  Duration d;
  for (int i = 0; i < kDurationBuckets; ++i) d.buckets[i] = found[static_cast<size_t>(i)];
  d.count = found[kDurationBuckets];
  d.sum_us = found[kDurationBuckets + 1];
  return d;
}

void Duration::observe(StatsSlot& slot, double seconds) const {
  if (!(seconds >= 0)) seconds = 0;  // NaN or a clock step back
  for (int i = 0; i < kDurationBuckets; ++i) {
    if (seconds <= kDurationBounds[i]) {
      slot.add(buckets[i]);
      break;
    }
  }
  slot.add(count);
  slot.add(sum_us, static_cast<uint64_t>(std::llround(seconds * 1e6)));
}

}  // namespace fsrv::stats
