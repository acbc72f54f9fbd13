// The tftp service's write (WRQ) transfer: WriteTransfer (see tftp_transfer.hpp).

#include <deque>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "fsrv/services/kit/storage_calls.hpp"
#include "fsrv/services/tftp/tftp_request_port.hpp"
#include "fsrv/services/tftp/tftp_transfer.hpp"
#include "fsrv/storage/storage.hpp"
#include "fsrv/transfer/upload_sink.hpp"

namespace fsrv::services::tftp {

namespace {

/// A write request through the upload engine (transfer::UploadSink): DATA
/// in order goes into the sink's buffers; what does not fit is held, and
/// beyond kMaxHeldWrite the ACK closing the window waits for the sink's
/// space. A block out of order is answered with an ACK of the last block in
/// order, once per position (RFC 7440 section 4). The short last block is
/// acknowledged only after the commit (fsync, rename); then the transfer
/// dallies to re-ACK a retransmitted last block.
class WriteTransfer final : public Transfer {
 public:
  using Transfer::Transfer;
  ~WriteTransfer() override {
    if (sink_) sink_->cancel();  // uncommitted: the temporary file goes
  }

 private:
  enum class State { kOpening, kReceiving, kCommitting, kDallying };

  void begin() override {
    if (n_.tsize && n_.tsize_value > config_.max_upload) {
      fail(ErrorCode::kDiskFull, "file too large: " + std::to_string(n_.tsize_value) +
                                     " bytes, the limit is " + std::to_string(config_.max_upload));
      return;
    }
    if (!options_.no_overwrite) {
      open_sink();
      return;
    }
    // Refused before any data moves (the commit would refuse it too).
    const storage::Root* root = service_.shared().root;
    kit::call_storage<bool>(
        *this, service_.shared(), [root, name = name_] { return root->size(name).ok(); },
        [this](bool& exists) {
          if (exists) {
            fail(ErrorCode::kExists, "file exists");
            return;
          }
          open_sink();
        });
  }

  // Starts the upload (its temporary file opens on the executor while the
  // first window arrives) and answers the request.
  void open_sink() {
    transfer::UploadSink::Options o;
    o.name = name_;
    o.replace = !options_.no_overwrite;
    o.early_writeback = true;  // the final ACK waits for the fsync
    sink_ = transfer::UploadSink::start(
        *this, *service_.shared().executor, *service_.shared().root, std::move(o),
        [this] { on_space(); }, [this](Status status, uint64_t) { on_committed(status); });
    state_ = State::kReceiving;
    last_ack_ = n_.accepted.empty() ? ack_packet(0) : oack_packet(n_.accepted);
    send(last_ack_);
    arm_timer();
  }

  void on_packet(uint16_t wire, std::span<const char> packet) override {
    const std::span<const char> payload = packet.subspan(kHeaderSize);
    if (state_ == State::kDallying) {
      if (wire == static_cast<uint16_t>(expected_ - 1)) send(last_ack_);  // our final ACK was lost
      return;
    }
    if (state_ != State::kReceiving) return;  // opening or committing: the client will resend
    if (payload.size() > n_.blksize) {
      fail(ErrorCode::kIllegal, "DATA larger than the negotiated blksize");
      return;
    }
    if (wire != static_cast<uint16_t>(expected_)) {
      // A retransmission or a gap: tell the client where we are, once per
      // position (and always in lock-step, where a duplicate means our ACK
      // was lost), but never while an ACK waits for the disk.
      if (ack_owed_) return;
      if (n_.windowsize == 1 || recovery_ack_ != expected_ - 1) {
        recovery_ack_ = expected_ - 1;
        in_window_ = 0;
        send_ack(expected_ - 1);
      }
      return;
    }
    if (!sink_->error().ok()) {  // the temporary file could not be made, or a write failed
      fail(sink_->error());
      return;
    }
    progress();
    recovery_ack_ = std::numeric_limits<uint64_t>::max();
    const uint64_t k = expected_++;
    const bool last = payload.size() < n_.blksize;
    const bool window_end = !last && ++in_window_ >= n_.windowsize;
    if (window_end) in_window_ = 0;
    // The ACK goes out before the block is copied when it surely fits (in
    // what may be held, and under --max-upload: netascii decoding appends
    // at most the block's size plus a held CR), so the client prepares the
    // next window while we copy (the payload stays valid until this returns).
    bool acked = false;
    if (window_end && held_bytes_ + payload.size() + 1 <= kMaxHeldWrite &&
        stored_ + payload.size() + 1 <= config_.max_upload) {
      send_ack(k);
      acked = true;
    }
    bytes_ += payload.size();
    service_.count(service_.bytes_received_, payload.size());
    std::string_view data(payload.data(), payload.size());
    if (request_.mode == Mode::kNetascii) {
      decoded_.clear();
      decoder_.decode(payload, decoded_);
      if (last) decoder_.finish(decoded_);
      data = decoded_;
    }
    stored_ += data.size();
    if (stored_ > config_.max_upload) {
      fail(ErrorCode::kDiskFull,
           "file too large: the limit is " + std::to_string(config_.max_upload) + " bytes");
      return;
    }
    if (held_bytes_ == 0) data.remove_prefix(sink_->feed(data));
    if (!data.empty()) {  // what the sink could not take yet, in order
      held_.emplace_back(data);
      held_bytes_ += data.size();
    }
    if (last) {
      state_ = State::kCommitting;
      final_block_ = k;
      stop_timer();
      if (held_bytes_ == 0) sink_->end();  // else on_space ends it
      return;
    }
    if (window_end && !acked) {
      if (held_bytes_ <= kMaxHeldWrite) {
        send_ack(k);
      } else {
        ack_owed_ = k;  // flow control: the ACK waits for the disk (on_space)
      }
    }
    arm_timer();
  }

  // The sink has room again: what was held goes in, then the owed ACK (or
  // the end of the data). A block leaves held_ once the sink took all of it.
  void on_space() {
    if (held_bytes_ == 0) return;
    while (!held_.empty()) {
      const std::string_view front = std::string_view(held_.front()).substr(held_front_);
      const size_t taken = sink_->feed(front);
      held_front_ += taken;
      held_bytes_ -= taken;
      if (taken < front.size()) break;
      held_.pop_front();
      held_front_ = 0;
    }
    if (held_bytes_ == 0 && state_ == State::kCommitting) {
      sink_->end();
      return;
    }
    if (ack_owed_ && held_bytes_ <= kMaxHeldWrite) {
      send_ack(*ack_owed_);
      ack_owed_.reset();
      arm_timer();
    }
  }

  // The sink's end: committed (fsync, rename) or failed.
  void on_committed(const Status& status) {
    sink_.reset();
    if (!status.ok()) {
      fail(status);
      return;
    }
    state_ = State::kDallying;
    send_ack(final_block_);
    count_result(true);  // the file is in place; dallying is a courtesy
    if (service_.stopping()) {
      finish(true);  // no dally during a shutdown (see RequestPort::on_stop)
    } else {
      arm_timer(kDallyTimeouts * timeout_ms());
    }
  }

  void on_timer() override {
    if (state_ == State::kDallying) {
      finish(true);
      return;
    }
    if (state_ != State::kReceiving) return;
    if (ack_owed_) {  // the disk, not the network, is late
      arm_timer();
      return;
    }
    if (!retry()) return;
    send(last_ack_);
    arm_timer();
  }

  void send_ack(uint64_t k) {
    last_ack_ = ack_packet(static_cast<uint16_t>(k));
    send(last_ack_);
  }

  State state_ = State::kOpening;
  std::shared_ptr<transfer::UploadSink> sink_;
  /// Blocks received in order that the sink has not taken yet (from
  /// held_front_ on in the first), held_bytes_ in all: bounded by
  /// kMaxHeldWrite and a window, since a block leaves when it is taken.
  std::deque<std::string> held_;
  size_t held_front_ = 0;
  size_t held_bytes_ = 0;
  std::string decoded_;  ///< netascii: the block decoded
  uint64_t stored_ = 0;  ///< bytes of the file received (after netascii decoding)
  NetasciiDecoder decoder_;
  uint64_t expected_ = 1;  ///< next block in order
  uint32_t in_window_ = 0;
  uint64_t final_block_ = 0;
  uint64_t recovery_ack_ = std::numeric_limits<uint64_t>::max();
  std::optional<uint64_t> ack_owed_;
  std::string last_ack_;  ///< resent on timeout (ACK or OACK)
};

}  // namespace

std::unique_ptr<Transfer> make_write_transfer(TransferArgs args) {
  return std::make_unique<WriteTransfer>(std::move(args));
}

}  // namespace fsrv::services::tftp
