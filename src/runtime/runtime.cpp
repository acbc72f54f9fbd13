#include "fsrv/runtime/runtime.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "fsrv/core/limits.hpp"
#include "fsrv/core/log.hpp"
#include "fsrv/core/service_manager.hpp"
#include "fsrv/reactor/tls.hpp"

namespace fsrv::runtime {

std::vector<ListenSpec> listeners_of(const ServerConfig& config) {
  if (!config.listeners.empty()) return config.listeners;
  return {ListenSpec{"file", Endpoint{config.host, config.port}}};
}

Result<std::vector<services::Listening>> resolve_listeners(const std::vector<ListenSpec>& specs) {
  using Out = Result<std::vector<services::Listening>>;
  std::vector<services::Listening> out;
  for (const ListenSpec& l : specs) {
    const services::ServiceInfo* info = services::find(l.service);
    if (!info) {
      return Out::failure(Errc::kBadRequest,
                          "unknown service '" + l.service + "' (fileserver --services lists them)");
    }
    services::Listening resolved{l, info};
    if (std::string why = services::check_policy(resolved); !why.empty()) {
      return Out::failure(Errc::kBadRequest, why);
    }
    for (const services::Listening& earlier : out) {
      const Endpoint& a = earlier.spec.endpoint;
      // TCP and UDP ports are separate spaces.
      if (earlier.datagram() != resolved.datagram()) continue;
      if (a.port != 0 && a.port == l.endpoint.port && a.host == l.endpoint.host) {
        return Out::failure(Errc::kBadRequest, "duplicate address " + l.endpoint.text() + " (" +
                                                   earlier.spec.service + " and " + l.service +
                                                   ")");
      }
    }
    out.push_back(std::move(resolved));
  }
  Out ok;
  ok.value = std::move(out);
  return ok;
}

void register_stats(const std::vector<services::Listening>& listeners, stats::Schema& schema) {
  services::register_stats(listeners, schema);
  // Closes the connection layer decided (reactor::Connection), all services.
  for (const char* p :
       {"limits/closed/request_timeout", "limits/closed/too_slow", "limits/closed/idle"}) {
    schema.add(p);
  }
  if (any_tls(listeners)) {
    for (const char* p : {"tls/handshakes/ok", "tls/handshakes/failed", "tls/sends/userspace"}) {
      schema.add(p);
    }
  }
}

bool any_tls(const std::vector<services::Listening>& listeners) {
  return std::any_of(listeners.begin(), listeners.end(),
                     [](const services::Listening& l) { return l.spec.tls; });
}

std::string listen_notes(const ListenSpec& spec) {
  std::string notes = spec.policy.text();  // "ro", "auth=write", ...
  if (spec.tls) notes += notes.empty() ? "tls" : ", tls";
  return notes.empty() ? "" : " (" + notes + ")";
}

Status listen_datagrams(uv_loop_t* loop, const std::vector<services::Listening>& listeners,
                        std::vector<std::unique_ptr<reactor::DatagramListener>>& out,
                        const std::function<reactor::DatagramHandler&(size_t)>& handler_for) {
  for (size_t i = 0; i < listeners.size(); ++i) {
    if (!listeners[i].datagram()) continue;
    const ListenSpec& spec = listeners[i].spec;
    out.push_back(std::make_unique<reactor::DatagramListener>(loop, static_cast<int>(i),
                                                              spec.service, spec.endpoint));
    int rc = handler_for ? out.back()->listen(handler_for(i)) : out.back()->bind();
    if (rc < 0) {
      for (auto& l : out) l->close();
      return Status::failure(Errc::kIo, "cannot bind " + spec.service + " on udp " +
                                            spec.endpoint.text() + ": " + uv_strerror(rc));
    }
    FSRV_LOG_INFO("%s: SO_RCVBUF %d bytes granted (%d asked)", spec.service.c_str(),
                  out.back()->granted_rcvbuf(), reactor::DatagramListener::kRequestedRcvBuf);
  }
  return {};
}

Status listen_all(uv_loop_t* loop, const std::vector<services::Listening>& listeners,
                  std::vector<std::unique_ptr<reactor::Listener>>& out,
                  std::function<void(reactor::Listener&)> on_connection, bool polled) {
  for (size_t i = 0; i < listeners.size(); ++i) {
    if (listeners[i].datagram()) continue;
    const ListenSpec& spec = listeners[i].spec;
    out.push_back(std::make_unique<reactor::Listener>(loop, static_cast<int>(i), spec.service,
                                                      spec.endpoint));
    int rc = polled ? out.back()->listen_polled(on_connection) : out.back()->listen(on_connection);
    if (rc < 0) {
      for (auto& l : out) l->close();
      return Status::failure(Errc::kIo, "cannot listen " + spec.service + " on " +
                                            spec.endpoint.text() + ": " + uv_strerror(rc));
    }
  }
  return {};
}

void print_listening(const std::vector<std::unique_ptr<reactor::Listener>>& listeners,
                     const std::vector<std::unique_ptr<reactor::DatagramListener>>& datagrams,
                     const std::vector<services::Listening>& specs) {
  if (any_tls(specs)) FSRV_LOG_INFO("%s", reactor::tls_send_path_text().c_str());
  // In configuration order, TCP and UDP interleaved.
  std::vector<std::pair<int, std::string>> lines;
  for (const auto& l : listeners) {
    Endpoint e = l->endpoint();
    e.port = l->port();
    auto at = static_cast<size_t>(l->index());
    lines.emplace_back(l->index(), "listening " + l->service() + " on " + e.text() +
                                       (at < specs.size() ? listen_notes(specs[at].spec) : ""));
  }
  for (const auto& l : datagrams) {
    Endpoint e = l->endpoint();
    e.port = l->port();
    auto at = static_cast<size_t>(l->index());
    lines.emplace_back(l->index(), "listening " + l->service() + " on " + e.text() +
                                       (at < specs.size() ? listen_notes(specs[at].spec) : ""));
  }
  std::sort(lines.begin(), lines.end());
  for (const auto& [index, line] : lines) printf("%s\n", line.c_str());
  fflush(stdout);
  // Both modes print these lines once everything is bound: that is readiness.
  service_manager::notify_ready("serving " + std::to_string(lines.size()) + " listener(s)");
}

int raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1 << 20;
  if (rl.rlim_cur < rl.rlim_max) {
    rlim_t before = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) getrlimit(RLIMIT_NOFILE, &rl);
    FSRV_LOG_DEBUG("file descriptor limit raised from %llu to %llu",
                   static_cast<unsigned long long>(before),
                   static_cast<unsigned long long>(rl.rlim_cur));
  }
  long long fds = rl.rlim_cur == RLIM_INFINITY ? (1 << 20) : static_cast<long long>(rl.rlim_cur);
  long long cap = (fds - limits::kReservedFds) / limits::kFdsPerConnection;
  return static_cast<int>(std::max<long long>(1, std::min<long long>(cap, 1 << 20)));
}

int effective_max_conns(int max_conns, int fd_cap, int processes) {
  long long fd_total = static_cast<long long>(fd_cap) * std::max(1, processes);
  if (fd_total >= max_conns) return max_conns;
  FSRV_LOG_WARN(
      "--max-conns %d lowered to %lld by the file descriptor limit (ulimit -n): "
      "clients beyond it get the busy reply",
      max_conns, fd_total);
  return static_cast<int>(fd_total);
}

std::vector<reactor::ListenerShare> plan_shares(const std::vector<services::Listening>& listeners,
                                                int max_conns) {
  std::vector<int> asked;
  for (const services::Listening& l : listeners) {
    asked.push_back(l.datagram() ? -1 : l.spec.max_conns);
  }
  return reactor::ConnectionLimits::plan(max_conns, asked);
}

namespace {

stats::Counter counter_of(const stats::Schema& schema, const std::string& path) {
  for (size_t i = 0; i < schema.size(); ++i) {
    if (schema.path(static_cast<int>(i)) == path) return stats::Counter{static_cast<int>(i)};
  }
  return {};
}

}  // namespace

void configure_limits(reactor::Reactor& reactor, const std::vector<services::Listening>& listeners,
                      const ServerConfig& config, int max_conns, const stats::Schema& schema,
                      stats::StatsSlot& slot) {
  std::vector<reactor::ShareCounters> counters;
  std::vector<reactor::ListenerShare> shares = plan_shares(listeners, max_conns);
  for (size_t i = 0; i < listeners.size(); ++i) {
    const ListenSpec& spec = listeners[i].spec;
    const std::string name(listeners[i].service->name);
    const std::string base = name + "/connections/";
    counters.push_back(
        {counter_of(schema, base + "refused/share"), counter_of(schema, base + "refused/address")});
    // STATS: how many of the service's listeners have each policy key.
    const ListenerPolicy& p = spec.policy;
    if (p.read_only) slot.add(counter_of(schema, name + "/listeners/ro"));
    if (p.auth == AuthScope::kWrite) slot.add(counter_of(schema, name + "/listeners/auth_write"));
    if (p.auth == AuthScope::kAll) slot.add(counter_of(schema, name + "/listeners/auth_all"));
    if (shares[i].max_conns == 0) continue;
    slot.add(counter_of(schema, base + "share"), static_cast<uint64_t>(shares[i].max_conns));
    FSRV_LOG_INFO("%s on %s: up to %d connections, %d kept for it; %d per address", name.c_str(),
                  spec.endpoint.text().c_str(), shares[i].max_conns, shares[i].reserved,
                  config.max_conns_per_address > 0 ? config.max_conns_per_address : max_conns);
  }
  reactor.limits.configure(max_conns, std::move(shares), config.max_conns_per_address,
                           std::move(counters), &slot);
}

void replan_limits(reactor::Reactor& reactor, const std::vector<services::Listening>& listeners,
                   const ServerConfig& config, int max_conns) {
  reactor.limits.replan(max_conns, plan_shares(listeners, max_conns), config.max_conns_per_address);
}

ServingProcess::ServingProcess(uv_loop_t* loop, const ServerConfig& config,
                               std::vector<services::Listening> listeners,
                               const stats::Schema& schema, stats::StatsSlot& slot,
                               reactor::Executor& executor, std::function<std::string()> stats_json)
    : listeners_(std::move(listeners)), config_(config) {
  std::string error;
  root_ = storage::Root::open(config.root, &error);
  if (!root_) throw std::runtime_error(error);
  shared_.config = &config_;
  shared_.root = root_.get();
  shared_.executor = &executor;
  executor.set_gauge(&slot.executor_pending);
  shared_.schema = &schema;
  shared_.stats = &slot;
  shared_.stats_json = std::move(stats_json);
  shared_.loop = loop;
  reactor_.loop = loop;
  reactor_.idle_timeout_s = config.idle_timeout_s;
  reactor_.max_conns = config.max_conns;
  reactor_.min_rate = config.min_rate;
  reactor_.min_rate_window_s = config.min_rate_window_s;
  reactor_.request_timeout_s = config.request_timeout_s;
  if (!config.node_id.empty()) root_->set_node_id(config.node_id);
  if (int stale = root_->remove_stale_temporaries(); stale > 0) {
    FSRV_LOG_WARN("removed %d stale upload temporar%s left by a crashed server", stale,
                  stale == 1 ? "y" : "ies");
  }
  reactor_.stats = &slot;
  shared_.node_id = root_->node_id();
  reactor_.closed_request_timeout = counter_of(schema, "limits/closed/request_timeout");
  reactor_.closed_too_slow = counter_of(schema, "limits/closed/too_slow");
  reactor_.closed_idle = counter_of(schema, "limits/closed/idle");
  if (any_tls(listeners_)) {
    // Built in each serving process (after fork in process mode): the
    // certificate was checked by main, so a failure here is a file changed
    // under our feet.
    std::shared_ptr<reactor::TlsContext> tls =
        reactor::TlsContext::load(config.tls_cert, config.tls_key, &error);
    if (!tls) throw std::runtime_error(error);
    for (const services::Listening& l : listeners_) {
      reactor_.tls.push_back(l.spec.tls ? tls : nullptr);
    }
    reactor_.tls_handshakes_ok = counter_of(schema, "tls/handshakes/ok");
    reactor_.tls_handshakes_failed = counter_of(schema, "tls/handshakes/failed");
    reactor_.tls_sends_userspace = counter_of(schema, "tls/sends/userspace");
  }
  if (!config.users_file.empty()) {
    auto users = auth::Users::load(config.users_file);
    if (!users.ok()) throw std::runtime_error(users.error);
    auth_ = std::make_unique<auth::Authenticator>(loop, users.value);
    shared_.auth = auth_.get();
  }
  shared_.listening = &listeners_;
  services_ = std::make_unique<services::ServiceSet>(listeners_, shared_);
}

void ServingProcess::reload_users() {
  if (!auth_) return;
  auto users = auth::Users::load(config_.users_file);
  if (!users.ok()) {
    FSRV_LOG_ERROR("SIGHUP: %s; the accounts in force stay", users.error.c_str());
    return;
  }
  FSRV_LOG_INFO("SIGHUP: %s reloaded: %zu account(s)", config_.users_file.c_str(),
                users.value->size());
  auth_->replace(users.value);
}

void ServingProcess::reload_tls() {
  if (reactor_.tls.empty()) return;
  // As nginx on SIGHUP: the files are read again; new handshakes take the
  // new pair, open connections keep theirs (each SSL holds a reference to
  // the SSL_CTX it was made from: SSL_new(3)), and a bad or missing file
  // keeps the pair in force.
  std::string error;
  std::shared_ptr<reactor::TlsContext> fresh =
      reactor::TlsContext::load(config_.tls_cert, config_.tls_key, &error);
  if (!fresh) {
    FSRV_LOG_ERROR("SIGHUP: %s; the certificate in force stays", error.c_str());
    return;
  }
  for (auto& ctx : reactor_.tls) {
    if (ctx) ctx = fresh;
  }
  FSRV_LOG_INFO("SIGHUP: TLS certificate %s and key %s reloaded", config_.tls_cert.c_str(),
                config_.tls_key.c_str());
}

void ServingProcess::apply_live(const ServerConfig& fresh) {
  config_.idle_timeout_s = fresh.idle_timeout_s;
  config_.request_timeout_s = fresh.request_timeout_s;
  config_.min_rate = fresh.min_rate;
  config_.min_rate_window_s = fresh.min_rate_window_s;
  config_.max_upload = fresh.max_upload;
  config_.legacy_idle_ms = fresh.legacy_idle_ms;
  config_.max_conns = fresh.max_conns;
  reactor_.idle_timeout_s = fresh.idle_timeout_s;
  reactor_.min_rate = fresh.min_rate;
  reactor_.min_rate_window_s = fresh.min_rate_window_s;
  config_.services.apply_live(fresh.services);  // chat: its users file
  services_->reload();
}

namespace {
ConfigSource& config_source() {
  static ConfigSource source;
  return source;
}
}  // namespace

void set_config_source(ConfigSource source) { config_source() = std::move(source); }

std::string reload_config(const ServerConfig& running, ServerConfig& out,
                          std::vector<std::string>& restart) {
  if (!config_source()) return "no configuration source";
  if (std::string why = config_source()(out, restart); !why.empty()) return why;
  // Options read once at start-up (sockets, root, processes, the services'
  // own settings): a change is reported, not applied.
  auto differs = [&](const char* name, bool changed) {
    if (changed) restart.emplace_back(name);
  };
  differs("host", running.host != out.host);
  differs("port", running.port != out.port);
  differs("root", running.root != out.root);
  differs("workers", running.workers != out.workers);
  differs("loops", running.loops != out.loops);
  differs("grace", running.grace_s != out.grace_s);
  differs("stats-interval", running.stats_interval_s != out.stats_interval_s);
  running.services.restart_needed(out.services, restart);  // each service's own
  // The files are read again on every SIGHUP (reload_tls); their paths are not.
  differs("tls-cert", running.tls_cert != out.tls_cert);
  differs("tls-key", running.tls_key != out.tls_key);
  return "";
}

void report_reload(const std::string& error, const std::vector<std::string>& restart,
                   const ServerConfig& fresh) {
  if (!error.empty()) {
    FSRV_LOG_ERROR("SIGHUP: %s; the running configuration stays", error.c_str());
    service_manager::notify_reloaded("reload failed: " + error);
    return;
  }
  for (const std::string& name : restart) {
    FSRV_LOG_WARN("SIGHUP: %s changed: it takes effect after a restart", name.c_str());
  }
  FSRV_LOG_INFO(
      "SIGHUP: configuration reloaded: max-conns %d, idle-timeout %.1f s, "
      "request-timeout %.1f s, min-rate %.0f B/s over %.0f s, max-upload %llu",
      fresh.max_conns, fresh.idle_timeout_s, fresh.request_timeout_s, fresh.min_rate,
      fresh.min_rate_window_s, static_cast<unsigned long long>(fresh.max_upload));
  service_manager::notify_reloaded("configuration reloaded");
}

reactor::DatagramHandler& ServingProcess::datagram_handler(size_t index) {
  return services_->datagram_for_listener(index);
}

void ServingProcess::join_shutdown(reactor::Lifecycle::Hooks& hooks) {
  auto busy = std::move(hooks.busy);
  hooks.busy = [this, busy = std::move(busy)] {
    return services_->datagram_busy() || (busy && busy());
  };
  auto force = std::move(hooks.force);
  hooks.force = [this, force = std::move(force)] {
    services_->force_datagrams();
    if (force) force();
  };
}

void ServingProcess::notify_work_done(reactor::Lifecycle& life) {
  shared_.work_done = [&life] { life.check_done_later(); };
}

}  // namespace fsrv::runtime
