#include "fsrv/runtime/runtime.hpp"

#include <cstdio>
#include <stdexcept>

namespace fsrv::runtime {

std::vector<ListenSpec> listeners_of(const ServerConfig& config) {
  if (!config.listeners.empty()) return config.listeners;
  return {ListenSpec{"file", Endpoint{config.host, config.port}}};
}

Status check_listeners(const std::vector<ListenSpec>& listeners) {
  for (size_t i = 0; i < listeners.size(); ++i) {
    const ListenSpec& l = listeners[i];
    if (!services::find(l.service)) {
      return Status::failure(Errc::kBadRequest, "unknown service '" + l.service +
                                                    "' (fileserver --services lists them)");
    }
    for (size_t k = 0; k < i; ++k) {
      const Endpoint& a = listeners[k].endpoint;
      if (a.port != 0 && a.port == l.endpoint.port && a.host == l.endpoint.host) {
        return Status::failure(Errc::kBadRequest,
                               "duplicate address " + l.endpoint.text() + " (" +
                                   listeners[k].service + " and " + l.service + ")");
      }
    }
  }
  return {};
}

void register_stats(const std::vector<ListenSpec>& listeners, stats::Schema& schema) {
  services::register_stats(listeners, schema);
}

Status listen_all(uv_loop_t* loop, const std::vector<ListenSpec>& specs,
                  std::vector<std::unique_ptr<reactor::Listener>>& out,
                  std::function<void(reactor::Listener&)> on_connection) {
  for (size_t i = 0; i < specs.size(); ++i) {
    out.push_back(std::make_unique<reactor::Listener>(loop, static_cast<int>(i),
                                                      specs[i].service, specs[i].endpoint));
    int rc = out.back()->listen(on_connection);
    if (rc < 0) {
      for (auto& l : out) l->close();
      return Status::failure(Errc::kIo, "cannot listen " + specs[i].service + " on " +
                                            specs[i].endpoint.text() + ": " + uv_strerror(rc));
    }
  }
  return {};
}

void print_listening(const std::vector<std::unique_ptr<reactor::Listener>>& listeners) {
  for (const auto& l : listeners) {
    Endpoint e = l->endpoint();
    e.port = l->port();
    printf("listening %s on %s\n", l->service().c_str(), e.text().c_str());
  }
  fflush(stdout);
}

ServingProcess::ServingProcess(uv_loop_t* loop, const ServerConfig& config,
                               std::vector<ListenSpec> listeners, const stats::Schema& schema,
                               stats::StatsSlot& slot, reactor::Executor& executor,
                               std::function<std::string()> stats_json)
    : listeners_(std::move(listeners)) {
  std::string error;
  root_ = storage::Root::open(config.root, &error);
  if (!root_) throw std::runtime_error(error);
  shared_.config = &config;
  shared_.root = root_.get();
  shared_.executor = &executor;
  shared_.schema = &schema;
  shared_.stats = &slot;
  shared_.stats_json = std::move(stats_json);
  reactor_.loop = loop;
  reactor_.idle_timeout_s = config.idle_timeout_s;
  reactor_.max_conns = config.max_conns;
  reactor_.stats = &slot;
  services_ = std::make_unique<services::ServiceSet>(listeners_, shared_);
}

}  // namespace fsrv::runtime
