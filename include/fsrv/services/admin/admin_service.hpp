#pragma once
// The `admin` service (no course port; `--listen admin=PORT`): a minimal
// HTTP/1.1 endpoint for load balancers and operators, so a health check of
// the file, chat, session, echo or dialect services does not depend on
// their wire formats (HAProxy: `option httpchk GET /healthz/SERVICE` with
// `check port ADMIN_PORT` on a tcp backend).
//
//   GET /healthz -> 200 when every service of this node is ready, 503 when
//   one is not or the node is draining (from the stop signal on, see
//   Lifecycle::set_drain_delay). Body: one JSON object
//   {"node": ID, "ready": BOOL, "draining": BOOL,
//    "services": {"chat": {"ready": BOOL, "detail": TEXT}, "file": {...}}}
//   A service without a readiness probe is ready while the node is not
//   draining; chat's probe is one round trip to its database (chat: DB
//   reachable), run on its database threads, never on the loop.
//   GET /healthz/SERVICE -> 200 "ok node=ID" when this node serves SERVICE
//   and is not draining, else 503 (404: no such listener here). What the
//   balancer checks: node-local state only, no shared dependency (see
//   docs/CLUSTER.md, "Health checks").
//   Anything else -> 404; a malformed or oversized head -> 400. One request
//   per connection (Connection: close). Not logged as access traffic.

#include "fsrv/services/service.hpp"

namespace fsrv::services::admin {

/// The `admin` service's registration (src/services/registry.cpp).
const ServiceInfo& info();

}  // namespace fsrv::services::admin
