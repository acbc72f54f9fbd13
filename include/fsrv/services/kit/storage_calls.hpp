#pragma once
// The stream-session kit's storage calls: the two every file dialect makes
// before it answers (list the root, open a file for a GET), run on the
// serving process's executor and answered on the loop thread while the
// connection lives. The connection is kept alive by a ConnRef meanwhile,
// and the answer is dropped once it is closing (STYLE.md: every in-flight
// work request holds a strong reference; after_work runs after a close).

#include <functional>
#include <string>
#include <vector>

#include "fsrv/core/result.hpp"
#include "fsrv/reactor/connection.hpp"
#include "fsrv/services/service.hpp"
#include "fsrv/storage/storage.hpp"

namespace fsrv::services::kit {

/// The root's file names (storage::Root::list: sorted, only regular files
/// with valid names), then `done(names)` on the loop unless `conn` closed.
void list_root(reactor::Connection& conn, Shared& shared,
               std::function<void(Result<std::vector<std::string>>&)> done);

/// Opens `name` for reading (storage::Root::open_read: the name is
/// validated, no symlink is followed), then `done(file)` on the loop
/// unless `conn` closed; the caller moves the ReadFile into its GET engine.
void open_read(reactor::Connection& conn, Shared& shared, std::string name,
               std::function<void(Result<storage::ReadFile>&)> done);

}  // namespace fsrv::services::kit
