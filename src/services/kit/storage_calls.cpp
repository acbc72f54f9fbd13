// Storage calls on the executor, answered on the loop (storage_calls.hpp).

#include "fsrv/services/kit/storage_calls.hpp"

namespace fsrv::services::kit {

void open_read(reactor::TransferPeer& peer, Shared& shared, std::string name,
               std::function<void(Result<storage::ReadFile>&)> done) {
  const storage::Root* root = shared.root;
  call_storage<Result<storage::ReadFile>>(
      peer, shared, [root, name = std::move(name)] { return root->open_read(name); },
      std::move(done));
}

}  // namespace fsrv::services::kit
