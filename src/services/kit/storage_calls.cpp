// Storage calls on the executor, answered on the loop (storage_calls.hpp).

#include "fsrv/services/kit/storage_calls.hpp"

#include <memory>
#include <utility>

namespace fsrv::services::kit {

void list_root(reactor::Connection& conn, Shared& shared,
               std::function<void(Result<std::vector<std::string>>&)> done) {
  auto result = std::make_shared<Result<std::vector<std::string>>>();
  const storage::Root* root = shared.root;
  reactor::ConnRef ref(&conn);
  shared.executor->submit([result, root] { *result = root->list(); },
                          [ref, &conn, result, done = std::move(done)] {
                            if (!conn.closing()) done(*result);
                          });
}

void open_read(reactor::Connection& conn, Shared& shared, std::string name,
               std::function<void(Result<storage::ReadFile>&)> done) {
  auto opened = std::make_shared<Result<storage::ReadFile>>();
  const storage::Root* root = shared.root;
  reactor::ConnRef ref(&conn);
  shared.executor->submit(
      [opened, root, name = std::move(name)] { *opened = root->open_read(name); },
      [ref, &conn, opened, done = std::move(done)] {
        if (!conn.closing()) done(*opened);
      });
}

}  // namespace fsrv::services::kit
