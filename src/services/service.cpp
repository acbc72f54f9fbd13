#include "fsrv/services/service.hpp"

namespace fsrv::services {

std::string busy_text(reactor::Refusal why, int limit) {
  return why == reactor::Refusal::kShuttingDown
             ? std::string("server shutting down")
             : "server busy: too many connections (limit " + std::to_string(limit) + ")";
}

std::string Service::refusal(reactor::Refusal why, int limit) const {
  return info_->refusal(why, limit);
}

Service::Service(Shared& shared, const ServiceInfo& info)
    : shared_(shared), info_(&info), name_(info.name) {
  conns_total_ = counter("connections/total");
  conns_active_ = counter("connections/active");
  duration_ = stats::Duration::of(*shared_.schema, name_);
}

namespace {

stats::Counter find_counter(const Shared& shared, const std::string& full) {
  const stats::Schema& schema = *shared.schema;
  for (size_t i = 0; i < schema.size(); ++i) {
    if (schema.path(static_cast<int>(i)) == full) return stats::Counter{static_cast<int>(i)};
  }
  return {};  // not registered: counting is a no-op
}

}  // namespace

DatagramService::DatagramService(Shared& shared, std::string_view name)
    : shared_(shared), name_(name), duration_(stats::Duration::of(*shared.schema, name_)) {}

stats::Counter DatagramService::counter(std::string_view path) const {
  return find_counter(shared_, name_ + "/" + std::string(path));
}

stats::Counter Service::counter(std::string_view path) const {
  return find_counter(shared_, name_ + "/" + std::string(path));
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
  for (const ServiceInfo& s : registry()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

void register_stats(const std::vector<Listening>& listeners, stats::Schema& schema) {
  for (const Listening& listening : listeners) {
    const ListenSpec& l = listening.spec;
    const ServiceInfo* info = listening.service;
    std::string base(info->name);
    if (info->transport == Transport::kStream) {
      schema.add(base + "/connections/total");
      schema.add(base + "/connections/active");
      schema.add(base + "/connections/share");  // the listeners' max-conns (a gauge)
      schema.add(base + "/connections/refused/share");
      schema.add(base + "/connections/refused/address");
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
  const std::string at = listener.service + " on " + listener.endpoint.text() + ": ";
  if (listener.policy.read_only && !(info->policy_keys & kPolicyReadOnly)) {
    return at +
           "the service does not honour ',ro' (fileserver --services lists the keys each "
           "service honours)";
  }
  if (listener.policy.auth != AuthScope::kNone && !(info->policy_keys & kPolicyAuth)) {
    return at +
           "the service has no way to carry an account: ',auth=' refused (fileserver "
           "--services lists the keys each service honours)";
  }
  return "";
}

std::string policy_keys_text(const ServiceInfo& info) {
  if (info.policy_keys == (kPolicyReadOnly | kPolicyAuth)) return "ro, auth";
  if (info.policy_keys == kPolicyReadOnly) return "ro";
  if (info.policy_keys == kPolicyAuth) return "auth";
  return "open only";
}

bool ServiceSet::datagram_busy() const {
  for (const auto& d : owned_datagram_) {
    if (d->busy()) return true;
  }
  return false;
}

void ServiceSet::force_datagrams() {
  for (auto& d : owned_datagram_) d->force_stop();
}

void ServiceSet::reload() {
  for (auto& s : owned_) s->reload();
}

ServiceSet::ServiceSet(const std::vector<Listening>& listeners, Shared& shared) {
  // The registration each instance was made from, beside it.
  std::vector<const ServiceInfo*> made, datagram_made;
  for (const Listening& listening : listeners) {
    const ListenSpec& l = listening.spec;
    const ServiceInfo* info = listening.service;
    if (listening.datagram()) {
      DatagramService* d = nullptr;
      for (size_t k = 0; k < datagram_made.size(); ++k) {
        if (datagram_made[k] == info && owned_datagram_[k]->policy() == l.policy) {
          d = owned_datagram_[k].get();
        }
      }
      if (!d) {
        owned_datagram_.push_back(info->create_datagram(shared));
        owned_datagram_.back()->set_policy(l.policy);
        datagram_made.push_back(info);
        d = owned_datagram_.back().get();
      }
      by_listener_.push_back(nullptr);
      datagram_by_listener_.push_back(d);
      continue;
    }
    Service* s = nullptr;
    for (size_t k = 0; k < made.size(); ++k) {
      if (made[k] == info && owned_[k]->policy() == l.policy) s = owned_[k].get();
    }
    if (!s) {
      owned_.push_back(info->create(shared));
      owned_.back()->set_policy(l.policy);
      made.push_back(info);
      s = owned_.back().get();
    }
    by_listener_.push_back(s);
    datagram_by_listener_.push_back(nullptr);
  }
}

}  // namespace fsrv::services
