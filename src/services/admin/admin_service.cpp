// The admin service: /healthz for load balancers (see admin_service.hpp).

#include "fsrv/services/admin/admin_service.hpp"

#include <cjson/cJSON.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>

#include "fsrv/services/kit/input_buffer.hpp"

namespace fsrv::services::admin {

namespace {

/// Longest request head accepted: a health check sends one short line and
/// a few fields; 8 KiB bounds what a stray client makes us buffer.
constexpr size_t kMaxHead = 8 * 1024;

/// Bytes asked for per socket read.
constexpr size_t kReadChunk = 2048;

/// The HTTP reply bytes for `status` with a body.
std::string http_reply(int status, std::string_view type, std::string_view body) {
  const char* reason = status == 200   ? "OK"
                       : status == 503 ? "Service Unavailable"
                       : status == 404 ? "Not Found"
                                       : "Bad Request";
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: " + std::string(type) +
         "\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n" + std::string(body);
}

/// One /healthz answer being gathered: every probe replies on the loop
/// thread, in any order; the last one writes the reply.
struct Gather {
  reactor::ConnRef conn;
  std::string node;
  bool draining = false;
  size_t waiting = 0;
  std::map<std::string, std::pair<bool, std::string>> services;

  void finish() {
    if (conn.get() == nullptr || conn->closing()) return;
    bool ready = !draining;
    cJSON* root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "node", node.c_str());
    cJSON* svc = cJSON_CreateObject();
    for (const auto& [name, state] : services) {
      ready = ready && state.first;
      cJSON* one = cJSON_AddObjectToObject(svc, name.c_str());
      cJSON_AddBoolToObject(one, "ready", state.first);
      cJSON_AddStringToObject(one, "detail", state.second.c_str());
    }
    cJSON_AddBoolToObject(root, "ready", ready);
    cJSON_AddBoolToObject(root, "draining", draining);
    cJSON_AddItemToObject(root, "services", svc);
    char* text = cJSON_PrintUnformatted(root);
    std::string body = std::string(text ? text : "{}") + "\n";
    cJSON_free(text);
    cJSON_Delete(root);
    conn->write_owned(http_reply(ready ? 200 : 503, "application/json", body));
    conn->close_when_flushed();
  }
};

class AdminSession final : public reactor::ConnectionHandler {
 public:
  AdminSession(reactor::Connection& conn, Shared& shared) : conn_(conn), shared_(shared) {}

  std::span<char> read_space() override { return in_.space(kReadChunk); }
  void on_read(size_t n) override {
    in_.produced(n);
    const std::string_view got = in_.view();
    if (got.find("\r\n\r\n") == std::string_view::npos &&
        got.find("\n\n") == std::string_view::npos) {
      if (got.size() > kMaxHead) answer(400, "request head too large\n");
      return;
    }
    conn_.pause_reading();
    respond(got.substr(0, got.find('\n')));
  }
  void on_eof() override { conn_.close_when_flushed(); }
  void on_drain() override {}
  void on_shutdown() override {
    if (!waiting_) conn_.close_when_flushed();
  }
  void on_close() override {}

 private:
  void answer(int status, std::string_view body, std::string_view type = "text/plain") {
    conn_.pause_reading();
    conn_.write_owned(http_reply(status, type, body));
    conn_.close_when_flushed();
  }

  void respond(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const bool get = line.starts_with("GET ") || line.starts_with("HEAD ");
    const size_t sp = line.find(' ');
    const size_t sp2 = line.find(' ', sp + 1);
    if (!get || sp2 == std::string_view::npos) {
      answer(400, "bad request\n");
      return;
    }
    const std::string_view target = line.substr(sp + 1, sp2 - sp - 1);
    const bool draining = conn_.reactor().health_failing;
    constexpr std::string_view kOne = "/healthz/";
    if (target.starts_with(kOne)) {
      // The balancer's check of one service: this node serves it and is not
      // draining. No shared dependency (the database) here: when it fails,
      // it fails for every node alike, and taking them all out would turn
      // chat's clear "database unavailable" reply into refused connections.
      const std::string_view name = target.substr(kOne.size());
      if (std::ranges::none_of(*shared_.listening,
                               [&](const Listening& l) { return l.service->name == name; })) {
        answer(404, "no such service on this node\n");
      } else {
        answer(draining ? 503 : 200,
               std::string(draining ? "draining" : "ok") + " node=" + shared_.node_id + "\n");
      }
      return;
    }
    if (target == "/metrics" && shared_.metrics_text) {
      // Prometheus text format 0.0.4, the same text as http's /metrics.
      answer(200, shared_.metrics_text(), "text/plain; version=0.0.4; charset=utf-8");
      return;
    }
    if (target != "/healthz") {
      answer(404, "only /healthz, /healthz/SERVICE and /metrics here\n");
      return;
    }
    auto g = std::make_shared<Gather>();
    g->conn = reactor::ConnRef(&conn_);
    g->node = shared_.node_id;
    g->draining = draining;
    // Every configured service, ready unless a probe says otherwise.
    for (const Listening& l : *shared_.listening) {
      g->services[std::string(l.service->name)] = {!draining, draining ? "draining" : "listening"};
    }
    g->waiting = shared_.readiness.size() + 1;
    waiting_ = true;
    for (auto& [name, probe] : shared_.readiness) {
      probe([g, name = name](bool ready, std::string detail) {
        g->services[name] = {ready && !g->draining, std::move(detail)};
        if (--g->waiting == 0) g->finish();
      });
    }
    if (--g->waiting == 0) g->finish();
  }

  reactor::Connection& conn_;
  Shared& shared_;
  kit::InputBuffer in_;   ///< the request head so far
  bool waiting_ = false;  ///< probes running
};

class AdminService final : public Service {
 public:
  explicit AdminService(Shared& shared) : Service(shared, info()) {}

 protected:
  std::unique_ptr<reactor::ConnectionHandler> create_handler(reactor::Connection& conn) override {
    return std::make_unique<AdminSession>(conn, shared_);
  }
};

}  // namespace

const ServiceInfo& info() {
  static const ServiceInfo kInfo{
      "admin",
      "admin (cluster): GET /healthz, each service's readiness for load balancers; GET /metrics",
      {},
      "curl -s http://127.0.0.1:{port}/healthz",
      [](stats::Schema&) {},
      [](reactor::Refusal why, int) {
        return http_reply(503, "text/plain",
                          why == reactor::Refusal::kShuttingDown ? "draining\n" : "busy\n");
      },
      [](Shared& shared) -> std::unique_ptr<Service> {
        return std::make_unique<AdminService>(shared);
      },
      Transport::kStream,
      nullptr,
      kPolicyReadOnly};
  return kInfo;
}

}  // namespace fsrv::services::admin
