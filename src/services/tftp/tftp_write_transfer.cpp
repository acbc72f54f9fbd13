// The tftp service's write transfer (see tftp_write_transfer.hpp).

#include "fsrv/services/tftp/tftp_write_transfer.hpp"

#include <algorithm>
#include <cstring>
#include <deque>
#include <limits>
#include <optional>
#include <string_view>

#include "fsrv/core/log.hpp"
#include "fsrv/services/tftp/tftp_request_port.hpp"
#include "fsrv/storage/storage.hpp"

namespace fsrv::services::tftp {

namespace {

/// A write request: DATA in order is appended to a pending buffer written
/// to a storage::UploadFile on the executor in kIoChunk pieces; the ACK
/// closing each window (every block at windowsize 1) is held while more
/// than kMaxPendingWrite waits for the disk. A block out of order (a gap,
/// or a retransmission) is answered with an ACK of the last block received
/// in order, once per position (RFC 7440 section 4). The short last block
/// ends the data: the file is committed (fsync, rename) and only then
/// acknowledged; the transfer then dallies to re-ACK a retransmitted last
/// block.
class WriteTransfer final : public Transfer {
 public:
  using Transfer::Transfer;

 private:
  enum class State { kOpening, kReceiving, kCommitting, kDallying };

  const char* direction() const override { return "WRQ"; }

  void begin() override {
    if (options_.read_only || service_.policy().read_only) {
      fail(ErrorCode::kAccess, "access violation: this server is read-only");
      return;
    }
    if (std::string why = storage::validate_name(name_); !why.empty()) {
      fail(ErrorCode::kAccess, "access violation: " + why);
      return;
    }
    if (n_.tsize && n_.tsize_value > config_.max_upload) {
      fail(ErrorCode::kDiskFull, "file too large: " + std::to_string(n_.tsize_value) +
                                     " bytes, the limit is " + std::to_string(config_.max_upload));
      return;
    }
    storage::Root* root = service_.shared().root;
    const bool no_overwrite = options_.no_overwrite;
    std::string name = name_;
    auto file = file_;
    auto status = std::make_shared<Status>();
    run(
        [root, name, no_overwrite, file, status] {
          if (no_overwrite && root->size(name).ok()) {
            *status = Status::failure(Errc::kExists, "file exists");
            return;
          }
          auto upload = root->begin_upload();
          if (!upload.ok()) {
            *status = upload.status();
            return;
          }
          *file = std::move(upload.value);
        },
        [this, status] {
          if (!status->ok()) {
            fail(error_code(status->code), error_text(*status));
            return;
          }
          state_ = State::kReceiving;  // pending_ gets its buffer with the first DATA
          last_ack_ = n_.accepted.empty() ? ack_packet(0) : oack_packet(n_.accepted);
          send(last_ack_);
          arm_timer();
        });
  }

  void on_packet(uint16_t op, std::span<const char> packet) override {
    if (op != static_cast<uint16_t>(Opcode::kData)) {
      fail(ErrorCode::kIllegal, "expected DATA during a write transfer");
      return;
    }
    const uint16_t wire = read_u16(packet.data() + 2);
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
    progress();
    recovery_ack_ = std::numeric_limits<uint64_t>::max();
    const uint64_t k = expected_++;
    const bool last = payload.size() < n_.blksize;
    const bool window_end = !last && ++in_window_ >= n_.windowsize;
    if (window_end) in_window_ = 0;
    // The ACK goes out before the block is copied, so the client prepares
    // the next window while we copy (the payload stays valid until this
    // returns). Only when the block surely fits: payload.size() bounds
    // what netascii decoding appends.
    bool acked = false;
    if (window_end && pending_.size() + payload.size() <= kMaxPendingWrite &&
        written_ + pending_.size() + payload.size() <= config_.max_upload) {
      send_ack(k);
      acked = true;
    }
    bytes_ += payload.size();
    service_.count(service_.bytes_received_, payload.size());
    if (pending_.capacity() == 0) pending_ = take_buffer();
    if (request_.mode == Mode::kNetascii) {
      decoder_.decode(payload, pending_);
    } else {
      pending_.append(payload.data(), payload.size());
    }
    if (written_ + pending_.size() > config_.max_upload) {
      fail(ErrorCode::kDiskFull,
           "file too large: the limit is " + std::to_string(config_.max_upload) + " bytes");
      return;
    }
    if (last) {
      if (request_.mode == Mode::kNetascii) decoder_.finish(pending_);
      state_ = State::kCommitting;
      final_block_ = k;
      stop_timer();
      flush();
      return;
    }
    if (window_end && !acked) {
      if (pending_.size() > kMaxPendingWrite) {
        ack_owed_ = k;  // flow control: the ACK waits for the disk
      } else {
        send_ack(k);
      }
    }
    flush();
    arm_timer();
  }

  void on_timeout() override {
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

  /// A write chunk plus the block that crosses its end.
  size_t buffer_bytes() const { return io_chunk(n_.blksize) + n_.blksize; }
  /// An empty buffer for pending_: a written chunk's (its pages already
  /// mapped, so no page faults per MiB), else a new one reserved whole (no
  /// regrowth copies).
  std::string take_buffer() {
    std::string b = std::move(spare_);
    spare_ = std::string();
    b.clear();
    if (b.capacity() < buffer_bytes()) b.reserve(buffer_bytes());
    return b;
  }

  /// Starts the next write, or the commit once everything is written.
  void flush() {
    if (writing_) return;
    const bool last = state_ == State::kCommitting;
    if (!pending_.empty() && (pending_.size() >= io_chunk(n_.blksize) || last)) {
      writing_ = true;
      auto chunk = std::make_shared<std::string>(std::move(pending_));
      pending_ = take_buffer();
      const uint64_t offset = written_;
      written_ += chunk->size();
      auto file = file_;
      auto status = std::make_shared<Status>();
      run(
          [file, chunk, offset, status] {
            *status = (*file)->write_at(
                {reinterpret_cast<const uint8_t*>(chunk->data()), chunk->size()}, offset);
            // Writeback overlaps the transfer: the fsync before the final
            // ACK then waits for the last chunk only.
            if (status->ok()) (*file)->start_writeback(offset, chunk->size());
          },
          [this, status, chunk] {
            writing_ = false;
            if (!status->ok()) {
              fail(error_code(status->code), error_text(*status));
              return;
            }
            if (chunk->capacity() <= 2 * buffer_bytes()) {
              spare_ = std::move(*chunk);  // recycled: no fresh pages for the next chunk
            }
            if (ack_owed_ && pending_.size() <= kMaxPendingWrite) {
              send_ack(*ack_owed_);
              ack_owed_.reset();
              arm_timer();
            }
            flush();
          });
      return;
    }
    if (!last) return;
    writing_ = true;
    auto file = file_;
    auto status = std::make_shared<Status>();
    const bool replace = !options_.no_overwrite;
    std::string name = name_;
    run(
        [file, status, name, replace] {
          *status = (*file)->commit(name, replace);
          if (status->ok()) file->reset();
        },
        [this, status] {
          writing_ = false;
          if (!status->ok()) {
            fail(error_code(status->code), error_text(*status));
            return;
          }
          state_ = State::kDallying;
          send_ack(final_block_);
          count_result(true);  // the file is in place; dallying is a courtesy
          if (service_.stopping()) {
            finish(true);  // no dally during a shutdown (see RequestPort::on_stop)
            return;
          }
          arm_timer(kDallyTimeouts * timeout_ms());
        });
  }

  State state_ = State::kOpening;
  /// The upload; shared with executor tasks. Destroying it uncommitted
  /// removes the temporary file.
  std::shared_ptr<std::unique_ptr<storage::UploadFile>> file_ =
      std::make_shared<std::unique_ptr<storage::UploadFile>>();
  std::string pending_;   ///< received, not yet handed to a write
  std::string spare_;     ///< a written chunk's buffer, reused as the next pending_
  uint64_t written_ = 0;  ///< bytes handed to writes (the next offset)
  bool writing_ = false;
  NetasciiDecoder decoder_;
  uint64_t expected_ = 1;  ///< next block in order
  uint32_t in_window_ = 0;
  uint64_t final_block_ = 0;
  uint64_t recovery_ack_ = std::numeric_limits<uint64_t>::max();
  std::optional<uint64_t> ack_owed_;
  std::string last_ack_;  ///< resent on timeout (ACK or OACK)
};

}  // namespace

std::unique_ptr<Transfer> make_write_transfer(RequestPort& port, const sockaddr& peer,
                                              Request request, Negotiated negotiated,
                                              std::string request_bytes) {
  return std::make_unique<WriteTransfer>(port, peer, std::move(request), std::move(negotiated),
                                         std::move(request_bytes));
}

}  // namespace fsrv::services::tftp
