#pragma once
// The stream-session kit's per-verb counters: "SERVICE/commands/VERB/ok"
// and ".../failed" for every verb of a service's enum, registered and
// counted from one table, so each path is spelled once; and VerbService,
// the Service that holds them and makes its sessions.

#include <memory>
#include <string>
#include <string_view>

#include "fsrv/services/service.hpp"
#include "fsrv/stats/stats.hpp"

namespace fsrv::services::kit {

/// The counters of verbs 0..N-1 of an enum whose wire names NameOf(verb)
/// gives (e.g. VerbCounters<file::cmd_name, file::kCmdCount>).
template <auto NameOf, int N>
class VerbCounters {
 public:
  /// "commands/VERB/ok" or "commands/VERB/failed" for verb number `v`.
  static std::string path(int v, bool ok) {
    using Verb = decltype(verb_type(NameOf));
    return "commands/" + std::string(NameOf(static_cast<Verb>(v))) + (ok ? "/ok" : "/failed");
  }
  /// Registers "SERVICE/" + path(v, ok) for every verb (ServiceInfo::
  /// register_stats, before any fork).
  static void register_stats(stats::Schema& schema, std::string_view service) {
    for (int v = 0; v < N; ++v) {
      for (bool ok : {true, false}) schema.add(std::string(service) + "/" + path(v, ok));
    }
  }
  /// Finds the counters `service` registered.
  explicit VerbCounters(Service& service) : service_(service) {
    for (int v = 0; v < N; ++v) {
      ok_[v] = service.counter(path(v, true));
      failed_[v] = service.counter(path(v, false));
    }
  }
  /// Counts one request of `verb` that succeeded or failed.
  template <class Verb>
  void count(Verb verb, bool ok) {
    service_.count((ok ? ok_ : failed_)[static_cast<int>(verb)]);
  }

 private:
  template <class Verb>
  static Verb verb_type(std::string_view (*)(Verb));

  Service& service_;
  stats::Counter ok_[N], failed_[N];
};

/// A stream service whose connections are `Session(conn, *this)` and that
/// counts their requests in `counters`; `Info` is its registration.
template <class Session, class Counters, const ServiceInfo& (*Info)()>
class VerbService final : public Service {
 public:
  explicit VerbService(Shared& shared) : Service(shared, Info()), counters(*this) {}
  /// ServiceInfo::create.
  static std::unique_ptr<Service> create(Shared& shared) {
    return std::make_unique<VerbService>(shared);
  }
  /// ServiceInfo::register_stats: the counters of every verb.
  static void register_stats(stats::Schema& schema) {
    Counters::register_stats(schema, Info().name);
  }
  Counters counters;

 protected:
  std::unique_ptr<reactor::ConnectionHandler> create_handler(reactor::Connection& conn) override {
    return std::make_unique<Session>(conn, *this);
  }
};

}  // namespace fsrv::services::kit
