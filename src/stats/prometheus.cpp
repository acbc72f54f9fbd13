#include "fsrv/stats/prometheus.hpp"

#include <cstdio>
#include <map>
#include <vector>

#include "fsrv/stats/duration.hpp"

namespace fsrv::stats {

namespace {

/// A label value as the text format wants it: backslash, double quote and
/// line feed escaped.
std::string label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

/// A metric name part: [a-zA-Z0-9_] only.
std::string name_part(std::string_view v) {
  std::string out;
  for (char c : v) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    out += ok ? c : '_';
  }
  return out;
}

std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    parts.push_back(path.substr(start, slash - start));
    if (slash == std::string_view::npos) return parts;
    start = slash + 1;
  }
}

/// Samples grouped by metric family, each family with its HELP and TYPE.
class Families {
 public:
  void add(const std::string& name, const char* type, const std::string& help,
           const std::string& labels, double value) {
    auto [it, fresh] = by_name_.try_emplace(name);
    if (fresh) {
      order_.push_back(name);
      it->second.head = "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    }
    char num[32];
    snprintf(num, sizeof num, "%.17g", value);
    it->second.samples += name + (labels.empty() ? "" : "{" + labels + "}") + " " + num + "\n";
  }
  std::string text() const {
    std::string out;
    for (const std::string& n : order_) {
      const Family& f = by_name_.at(n);
      out += f.head + f.samples;
    }
    return out;
  }

 private:
  struct Family {
    std::string head, samples;
  };
  std::map<std::string, Family> by_name_;
  std::vector<std::string> order_;
};

}  // namespace

std::string render_prometheus(const StatsTable& table, const Schema& schema, const BuildInfo& build,
                              double uptime_s) {
  SlotTotals sum(schema.size());
  for (int i = 0; i < table.size(); ++i) sum.add(table.slot(i));
  const std::vector<uint64_t>& cells = sum.cells;
  Families f;
  f.add("fsrv_build_info", "gauge", "Version and git commit of the running server.",
        "version=\"" + label(build.version) + "\",commit=\"" + label(build.commit) + "\",mode=\"" +
            label(build.mode) + "\"",
        1);
  f.add("fsrv_uptime_seconds", "gauge", "Seconds since the server started.", "", uptime_s);
  // The server-wide families without labels, in this order.
  const struct {
    const char* name;
    const char* type;
    const char* help;
    double value;
  } server_wide[] = {
      {"fsrv_connections_open", "gauge", "Client connections open now (every service).",
       static_cast<double>(sum.active)},
      {"fsrv_connections_total", "counter", "Client connections accepted.",
       static_cast<double>(sum.total)},
      {"fsrv_connections_refused_total", "counter",
       "Client connections refused (over --max-conns or shutting down).",
       static_cast<double>(sum.rejected)},
      {"fsrv_connections_lost_total", "counter", "Connections held by a worker process that died.",
       static_cast<double>(sum.lost)},
      {"fsrv_received_bytes_total", "counter", "Bytes read from client sockets.",
       static_cast<double>(sum.in)},
      {"fsrv_sent_bytes_total", "counter", "Bytes written to client sockets.",
       static_cast<double>(sum.out)},
      {"fsrv_worker_restarts_total", "counter", "Worker processes forked again after dying.",
       static_cast<double>(sum.restarts)},
      {"fsrv_executor_queue_depth", "gauge",
       "Executor tasks (file IO, hashing) submitted and not yet done, every process.",
       static_cast<double>(sum.executor_pending)},
  };
  for (const auto& m : server_wide) f.add(m.name, m.type, m.help, "", m.value);
  // Request-duration histograms (stats/duration.hpp), one per service.
  std::string histograms;
  std::vector<std::string> with_duration;
  for (size_t c = 0; c < cells.size(); ++c) {
    std::vector<std::string_view> p = split(schema.path(static_cast<int>(c)));
    if (p.size() == 3 && p[1] == "duration" && p[2] == "count") {
      with_duration.emplace_back(p[0]);
    }
  }
  for (const std::string& svc : with_duration) {
    Duration d = Duration::of(schema, svc);
    const std::string l = "service=\"" + label(svc) + "\"";
    auto cell = [&](Counter k) { return k.index >= 0 ? cells[static_cast<size_t>(k.index)] : 0; };
    uint64_t cumulative = 0;
    for (int i = 0; i < kDurationBuckets; ++i) {
      cumulative += cell(d.buckets[i]);
      char le[32];
      snprintf(le, sizeof le, "%g", kDurationBounds[i]);
      histograms += "fsrv_request_duration_seconds_bucket{" + l + ",le=\"" + le + "\"} " +
                    std::to_string(cumulative) + "\n";
    }
    histograms += "fsrv_request_duration_seconds_bucket{" + l + ",le=\"+Inf\"} " +
                  std::to_string(cell(d.count)) + "\n";
    char sum[64];
    snprintf(sum, sizeof sum, "%.6f", static_cast<double>(cell(d.sum_us)) / 1e6);
    histograms += "fsrv_request_duration_seconds_sum{" + l + "} " + sum + "\n";
    histograms +=
        "fsrv_request_duration_seconds_count{" + l + "} " + std::to_string(cell(d.count)) + "\n";
  }
  for (size_t c = 0; c < cells.size(); ++c) {
    std::vector<std::string_view> p = split(schema.path(static_cast<int>(c)));
    if (p.size() < 2 || p[1] == "duration") continue;
    const std::string service = "service=\"" + label(p[0]) + "\"";
    const double v = static_cast<double>(cells[c]);
    const std::string_view last = p.back();
    if (p.size() >= 3 && (last == "ok" || last == "failed")) {
      size_t first = p[1] == "commands" ? 2 : 1;
      std::string verb;
      for (size_t k = first; k + 1 < p.size(); ++k)
        verb += (verb.empty() ? "" : "/") + std::string(p[k]);
      f.add("fsrv_requests_total", "counter", "Requests finished, by service, verb and result.",
            service + ",verb=\"" + label(verb) + "\",result=\"" + std::string(last) + "\"", v);
    } else if (p.size() == 3 && p[1] == "connections" && last == "total") {
      f.add("fsrv_service_connections_total", "counter", "Connections accepted, by service.",
            service, v);
    } else if (p.size() == 3 && p[1] == "connections" && last == "active") {
      f.add("fsrv_service_connections_open", "gauge", "Connections open now, by service.", service,
            static_cast<double>(static_cast<int64_t>(cells[c])));
    } else if (p.size() == 3 && p[1] == "status") {
      f.add("fsrv_responses_total", "counter", "Responses sent, by service and status code.",
            service + ",code=\"" + label(last) + "\"", v);
    } else if (p.size() == 3 && p[1] == "bytes") {
      f.add("fsrv_" + name_part(p[0]) + "_" + name_part(last) + "_bytes_total", "counter",
            std::string(p[0]) + ": payload bytes " + std::string(last) + ".", "", v);
    } else {
      // A counter of one service only: its name carries the service.
      std::string name = "fsrv_" + name_part(p[0]);
      for (size_t k = 1; k < p.size(); ++k) name += "_" + name_part(p[k]);
      f.add(name + "_total", "counter",
            std::string(p[0]) + ": " + std::string(schema.path(static_cast<int>(c))) + ".", "", v);
    }
  }
  std::string text = f.text();
  if (!histograms.empty()) {
    text +=
        "# HELP fsrv_request_duration_seconds Time from a request's start to its end "
        "(a whole transfer for GET and UPLOAD), by service.\n"
        "# TYPE fsrv_request_duration_seconds histogram\n" +
        histograms;
  }
  return text;
}

}  // namespace fsrv::stats
