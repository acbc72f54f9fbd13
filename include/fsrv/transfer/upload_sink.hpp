#pragma once
// The UPLOAD engine, protocol- and transport-neutral (one write-behind
// pipeline for the TCP services and TFTP's write requests): the protocol
// places payload bytes in the sink's chunk buffers (read straight from the
// socket: space() and produced(); or copied: feed()), the executor transforms a full buffer (base64
// decode or identity) and pwrites it to a temporary file while the other buffer fills, and end()
// commits atomically (fsync, link, rename: storage::UploadFile). With both buffers busy, space() is
// empty and the protocol stops reading until on_space: the disk, not memory, absorbs the
// difference.
//
// After the first error (bad base64, over the size limit, disk full) nothing
// more is transformed or written, but space() keeps offering a buffer so the
// protocol can read and drop the rest of the payload up to its framing's end;
// end() then reports that first error and the temporary file is removed.

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "fsrv/codec/base64.hpp"
#include "fsrv/core/result.hpp"
#include "fsrv/reactor/buffer.hpp"
#include "fsrv/reactor/executor.hpp"
#include "fsrv/reactor/transfer_peer.hpp"
#include "fsrv/storage/storage.hpp"
#include "fsrv/transfer/file_sender.hpp"

namespace fsrv::transfer {

class UploadSink {
 public:
  struct Options {
    std::string name;  ///< target name (validated by the caller)
    Transform transform = Transform::kIdentity;
    codec::Base64Kind codec = codec::Base64Kind::kFast;  ///< kBase64: which decoder
    uint64_t max_bytes = UINT64_MAX;                     ///< limit on stored bytes
    /// kBase64: the payload is concatenated, independently padded segments
    /// (codec::make_segmented_decoder; the file-marker dialect).
    bool base64_segments = false;
    /// false: the commit keeps an existing file and fails with kExists.
    bool replace = true;
    /// Starts each chunk's writeback as soon as it is written
    /// (storage::UploadFile::start_writeback), so the commit's fsync waits
    /// for the last chunk only: for a protocol that acknowledges the end
    /// only after the commit (TFTP's final ACK).
    bool early_writeback = false;
  };
  /// Made by start(); use through the shared_ptr only.
  UploadSink(reactor::TransferPeer& peer, reactor::Executor& executor, Options options);

  /// Creates the temporary file in `root` (on the executor) and returns the
  /// sink. `on_space` runs on the loop whenever space() became non-empty
  /// after being empty; `done(status, bytes_stored)` once, after end().
  /// Neither runs after the peer closed (TransferPeer::peer_closing) or
  /// cancel(). The peer is a reactor::Connection or a datagram transfer.
  static std::shared_ptr<UploadSink> start(reactor::TransferPeer& peer, reactor::Executor& executor,
                                           const storage::Root& root, Options options,
                                           std::function<void()> on_space,
                                           std::function<void(Status, uint64_t)> done);

  /// Where the next payload bytes may be written; empty while both buffers
  /// are busy (stop reading until on_space).
  std::span<char> space();
  /// `n` payload bytes were written at the start of the last space().
  void produced(size_t n);
  /// Bytes feed() would take now: what is left of the filling buffer, plus
  /// a whole buffer if the other one is free (0 after end()). A datagram
  /// protocol drops a datagram that does not fit whole.
  size_t room() const;
  /// Copies payload bytes (e.g. read together with the request head) into
  /// the buffers; returns how many fit (less than data.size() when full).
  size_t feed(std::string_view data);
  /// The payload is complete: transform what is left, finish, commit.
  void end();
  /// Drops the upload: no callback runs, the temporary file is removed.
  void cancel();

  uint64_t received() const { return received_; }
  /// The first error so far (ok while none).
  const Status& error() const { return error_; }
  /// In done() after success: the commit replaced an existing file.
  bool replaced() const { return replaced_; }

 private:
  enum BufState { kFree, kFilling, kFull, kBusy };
  void progress();
  void submit_transform(int i);
  void submit_finish();
  void fail(Status s);
  bool alive() const;

  reactor::TransferPeer& peer_;
  reactor::Executor& executor_;
  Options options_;
  std::weak_ptr<UploadSink> self_;
  std::unique_ptr<storage::UploadFile> file_;
  std::unique_ptr<codec::Decoder> decoder_;
  reactor::Buffer bufs_[2];
  size_t fill_[2] = {};
  BufState st_[2] = {kFree, kFree};
  int filling_ = -1;
  int full_[2] = {-1, -1};  ///< FIFO of full buffers (at most two)
  bool opening_ = true;
  bool working_ = false;  ///< a transform or finish task is in flight
  bool ended_ = false;
  bool finishing_ = false;
  bool cancelled_ = false;
  bool space_wanted_ = false;
  bool replaced_ = false;
  uint64_t received_ = 0;
  uint64_t written_ = 0;
  Status error_;
  std::function<void()> on_space_;
  std::function<void(Status, uint64_t)> done_;
  // Task results (written by the task, read in its done callback).
  Status task_status_;
  size_t task_written_ = 0;
};

}  // namespace fsrv::transfer
