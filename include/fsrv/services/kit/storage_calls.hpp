#pragma once
// The kit's storage calls for a TransferPeer (a TFTP transfer; a
// StreamSession has its own, which also pauses reading): run on the serving
// process's executor and answered on the loop thread while the peer
// lives. The peer is kept alive by a PeerRef
// meanwhile, and the answer is dropped once it is closing (STYLE.md: every
// in-flight work request holds a strong reference; after_work runs after a
// close).

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "fsrv/core/result.hpp"
#include "fsrv/reactor/connection.hpp"
#include "fsrv/services/service.hpp"
#include "fsrv/storage/storage.hpp"

namespace fsrv::services::kit {

/// Runs `work()` on the serving process's executor (a storage call: it
/// touches no peer), then `done(result)` on the loop thread unless `peer`
/// is closing by then. T is what `work` returns (a Result, a Status...),
/// held between the two.
template <class T>
void call_storage(reactor::TransferPeer& peer, Shared& shared, std::function<T()> work,
                  std::function<void(T&)> done) {
  auto result = std::make_shared<T>();
  reactor::PeerRef ref(&peer);
  shared.executor->submit([result, work = std::move(work)] { *result = work(); },
                          [ref, &peer, result, done = std::move(done)] {
                            if (!peer.peer_closing()) done(*result);
                          });
}

/// Opens `name` for reading (storage::Root::open_read: the name is
/// validated, no symlink is followed), then `done(file)` on the loop
/// unless `peer` closed; the caller moves the ReadFile into its GET engine.
inline void open_read(reactor::TransferPeer& peer, Shared& shared, std::string name,
                      std::function<void(Result<storage::ReadFile>&)> done) {
  const storage::Root* root = shared.root;
  call_storage<Result<storage::ReadFile>>(
      peer, shared, [root, name = std::move(name)] { return root->open_read(name); },
      std::move(done));
}

}  // namespace fsrv::services::kit
