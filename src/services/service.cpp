#include "fsrv/services/service.hpp"

#include <algorithm>

namespace fsrv::services {

std::string busy_text(reactor::Refusal why, int limit) {
  return why == reactor::Refusal::kShuttingDown
             ? std::string("server shutting down")
             : "server busy: too many connections (limit " + std::to_string(limit) + ")";
}

std::string Service::refusal(reactor::Refusal why, int limit) const {
  return info_->refusal(why, limit);
}

ServiceBase::ServiceBase(Shared& shared, std::string_view name)
    : shared_(shared), name_(name), duration_(stats::Duration::of(*shared.schema, name_)) {}

Service::Service(Shared& shared, const ServiceInfo& info)
    : ServiceBase(shared, info.name), info_(&info) {
  conns_total_ = counter("connections/total");
  conns_active_ = counter("connections/active");
}

stats::Counter ServiceBase::counter(std::string_view path) const {
  const std::string full = name_ + "/" + std::string(path);
  const stats::Schema& schema = *shared_.schema;
  for (size_t i = 0; i < schema.size(); ++i) {
    if (schema.path(static_cast<int>(i)) == full) return stats::Counter{static_cast<int>(i)};
  }
  return {};  // not registered: counting is a no-op
}

std::unique_ptr<reactor::ConnectionHandler> Service::make_handler(reactor::Connection& conn) {
  shared_.stats->add(conns_total_);
  shared_.stats->add_signed(conns_active_, 1);
  stats::StatsSlot* slot = shared_.stats;
  stats::Counter active = conns_active_;
  conn.on_gone = [slot, active] { slot->add_signed(active, -1); };
  return create_handler(conn);
}

const ServiceInfo* find(std::string_view name) {
  auto it = std::ranges::find(registry(), name, &ServiceInfo::name);
  return it == registry().end() ? nullptr : &*it;
}

void register_stats(const std::vector<Listening>& listeners, stats::Schema& schema) {
  for (const Listening& listening : listeners) {
    const ListenSpec& l = listening.spec;
    const ServiceInfo* info = listening.service;
    std::string base(info->name);
    if (info->transport == Transport::kStream) {
      // active: the connections this process holds; share: the listeners'
      // max-conns (a gauge, set by the master).
      for (const char* c : {"total", "active", "share", "refused/share", "refused/address"}) {
        schema.add(base + "/connections/" + c, std::string_view(c) == "active"
                                                   ? stats::Schema::Kind::kHeld
                                                   : stats::Schema::Kind::kCount);
      }
    }
    // Listeners with a policy (a gauge each, set by runtime::configure_limits).
    if (l.policy.read_only) schema.add(base + "/listeners/ro");
    if (l.policy.auth == AuthScope::kWrite) schema.add(base + "/listeners/auth_write");
    if (l.policy.auth == AuthScope::kAll) schema.add(base + "/listeners/auth_all");
    if (info->register_stats) info->register_stats(schema);
    stats::Duration::register_cells(schema, base);
  }
}

std::string check_policy(const Listening& listening) {
  const ListenSpec& listener = listening.spec;
  const ServiceInfo* info = listening.service;
  std::string why;
  if (listener.policy.read_only && !(info->policy_keys & kPolicyReadOnly)) {
    why = "the service does not honour ',ro'";
  } else if (listener.policy.auth != AuthScope::kNone && !(info->policy_keys & kPolicyAuth)) {
    why = "the service has no way to carry an account: ',auth=' refused";
  }
  if (why.empty()) return "";
  return listener.service + " on " + listener.endpoint.text() + ": " + why +
         " (fileserver --services lists the keys each service honours)";
}

std::string policy_keys_text(const ServiceInfo& info) {
  static constexpr const char* kText[] = {"open only", "ro", "auth", "ro, auth"};
  return kText[info.policy_keys & (kPolicyReadOnly | kPolicyAuth)];
}

bool ServiceSet::datagram_busy() const {
  return std::ranges::any_of(owned_datagram_, [](const auto& d) { return d->busy(); });
}

void ServiceSet::force_datagrams() {
  for (auto& d : owned_datagram_) d->force_stop();
}

void ServiceSet::reload() {
  for (auto& s : owned_) s->reload();
}

ServiceSet::ServiceSet(const std::vector<Listening>& listeners, Shared& shared) {
  // The instance of `info` with `policy` in `owned` (from[k] is the
  // registration owned[k] was made from), made by `create` if none yet.
  std::vector<const ServiceInfo*> made, datagram_made;
  auto instance = [&](auto& owned, auto& from, const ServiceInfo* info,
                      const ListenerPolicy& policy, auto create) {
    for (size_t k = 0; k < from.size(); ++k) {
      if (from[k] == info && owned[k]->policy() == policy) return owned[k].get();
    }
    owned.push_back(create(shared));
    owned.back()->set_policy(policy);
    from.push_back(info);
    return owned.back().get();
  };
  for (const Listening& l : listeners) {
    bool datagram = l.datagram();
    by_listener_.push_back(
        datagram ? nullptr : instance(owned_, made, l.service, l.spec.policy, l.service->create));
    datagram_by_listener_.push_back(datagram ? instance(owned_datagram_, datagram_made, l.service,
                                                        l.spec.policy, l.service->create_datagram)
                                             : nullptr);
  }
}

}  // namespace fsrv::services
