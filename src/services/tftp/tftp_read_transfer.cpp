// The tftp service's read (RRQ) transfer: ReadTransfer (see tftp_transfer.hpp).

#include <algorithm>
#include <deque>
#include <functional>

#include "fsrv/services/kit/storage_calls.hpp"
#include "fsrv/services/tftp/tftp_request_port.hpp"
#include "fsrv/services/tftp/tftp_transfer.hpp"
#include "fsrv/storage/storage.hpp"
#include "fsrv/transfer/file_sender.hpp"

namespace fsrv::services::tftp {

namespace {

/// A read request: the GET engine (transfer::FileSender) lends chunks of
/// the file (netascii encoded if asked) until the client acknowledged their
/// last byte; windows of DATA are cut out of them, and an ACK of block k
/// starts the next window at k + 1 (RFC 7440 section 4; windowsize 1 is RFC
/// 1350's lock-step). A duplicate ACK is ignored (Sorcerer's Apprentice,
/// RFC 1123 4.2.3.1); a timeout resends the window from the chunks held.
class ReadTransfer final : public Transfer {
 public:
  using Transfer::Transfer;

 private:
  /// A chunk the engine lent: its bytes are the engine's buffer until
  /// `give_back(0)` (every block in it acknowledged).
  struct Chunk {
    uint64_t start;  ///< stream offset of data[0]
    std::span<const char> data;
    std::function<void(int)> give_back;
  };
  enum class State { kOpening, kOack, kData };

  void begin() override {
    kit::open_read(*this, service_.shared(), name_, [this](Result<storage::ReadFile>& file) {
      if (!file.ok()) {
        fail(file.status());
        return;
      }
      for (auto& [name, value] : n_.accepted) {
        if (name == "tsize") value = std::to_string(file.value.size());
      }
      state_ = n_.accepted.empty() ? State::kData : State::kOack;
      transfer::SendOptions o;
      if (request_.mode == Mode::kNetascii) {
        o.transform = transfer::Transform::kCustom;
        o.custom = netascii_encode;
        o.expansion = 2;  // LF -> CR LF, CR -> CR NUL
      }
      const size_t window = static_cast<size_t>(n_.windowsize) * n_.blksize;
      o.chunk = std::max(std::clamp(64 * n_.blksize, kMinIoChunk, kMaxIoChunk), window);
      // Buffers at need: until the client ACKs anything, one block (a
      // request that is never followed up costs one block).
      o.first_chunk = n_.blksize;
      get_ = transfer::send_file(*this, *service_.shared().executor, std::move(file.value),
                                 std::move(o), [this](Status) { body_end(); });
      if (state_ == State::kOack) {
        oack_ = oack_packet(n_.accepted);
        send(oack_);
        arm_timer();
      }
    });
  }

  // TransferPeer: the GET engine's chunks.
  void body_write(const uv_buf_t* bufs, unsigned n, bool last,
                  std::function<void(int)> done) override {
    for (unsigned i = 0; i < n; ++i) {
      chunks_.push_back({buffered_end_, {bufs[i].base, bufs[i].len}, nullptr});
      buffered_end_ += bufs[i].len;
    }
    if (!chunks_.empty()) chunks_.back().give_back = std::move(done);
    if (last) body_end();
    if (state_ == State::kData) pump();
  }
  bool body_wants_more() const override { return acked_ || buffered_end_ == 0; }
  void body_abort() override { fail(ErrorCode::kUndefined, "read error"); }

  /// The body is complete (its last chunk came, or the file is empty).
  void body_end() {
    if (eof_) return;
    eof_ = true;
    last_block_ = buffered_end_ / n_.blksize + 1;
    if (state_ == State::kData) pump();
  }

  void on_packet(uint16_t wire, std::span<const char>) override {
    acked_ = true;
    if (state_ == State::kOack) {
      if (wire != 0) {
        service_.count_bad();
        return;
      }
      state_ = State::kData;
      progress();
      pump();
      get_->proceed();
      return;
    }
    if (state_ != State::kData) return;
    // The block this ACK can name: base_ - 1 (a duplicate) up to sent_.
    const uint64_t k = base_ - 1 + static_cast<uint16_t>(wire - static_cast<uint16_t>(base_ - 1));
    if (k > sent_) {  // a block never sent: ignored (tftp-hpa does the same)
      service_.count_bad();
      return;
    }
    if (k == base_ - 1) return;  // duplicate ACK: never answered (Sorcerer's Apprentice)
    progress();
    const double sample = static_cast<double>(uv_now(loop()) - last_send_ms_);
    srtt_ms_ = 0.875 * srtt_ms_ + 0.125 * sample;  // RFC 6298 section 2 weights
    base_ = k + 1;
    if (eof_ && k == last_block_) {
      finish(true);
      return;
    }
    sent_ = k;  // RFC 7440: the next window starts after the acknowledged block
    while (!chunks_.empty() &&
           chunks_.front().start + chunks_.front().data.size() <= (base_ - 1) * n_.blksize) {
      auto give_back = std::move(chunks_.front().give_back);
      chunks_.pop_front();
      if (give_back) give_back(0);  // the engine reads the next chunk into it
    }
    pump();
    get_->proceed();
  }

  void on_timer() override {
    if (state_ == State::kOack) {
      if (retry()) {
        send(oack_);
        arm_timer();
      }
      return;
    }
    if (sent_ < base_) {  // nothing outstanding: waiting for the disk
      arm_timer();
      return;
    }
    if (probe_wait_ms_ > 0 && probe_waited_ms_ < timeout_ms()) {
      // Tail loss probe (after RFC 8985): the window's last block again at
      // PTO, 2 PTO, 4 PTO... within the retransmission timeout, no retry
      // counted. A receiver that lost the tail sees a block out of order and
      // ACKs what it has (RFC 7440 section 4): a round trip, not a timeout.
      service_.count(service_.retransmits_);
      send_block(sent_);
      probe_wait_ms_ = std::min(probe_wait_ms_ * 2, timeout_ms() - probe_waited_ms_);
      probe_waited_ms_ += probe_wait_ms_;
      arm_timer(probe_wait_ms_);
      return;
    }
    probe_wait_ms_ = 0;
    if (!retry()) return;
    sent_ = base_ - 1;
    pump();
  }

  /// True once block k's bytes are all buffered (or it is the short last one).
  bool available(uint64_t k) const {
    if (eof_) return k <= last_block_;
    return buffered_end_ >= k * n_.blksize;
  }

  /// Sends what the window allows and the chunks hold.
  void pump() {
    const uint64_t window_end = base_ + n_.windowsize - 1;
    bool sent_any = false;
    while (sent_ < window_end && available(sent_ + 1)) {
      send_block(++sent_);
      sent_any = true;
    }
    if (sent_any) {
      last_send_ms_ = uv_now(loop());
      // Probes only for windows (in lock-step a probe is only an early
      // duplicate whenever the client is a little slow) and before the first
      // timeout: after one, the backed-off timeout alone paces
      // retransmissions (as TCP's TLP precedes RTO).
      if (n_.windowsize > 1 && retries() == 0) {
        // Probe timeout: twice the smoothed round trip, at least 1 ms (libuv's
        // timer resolution), at most half the retransmission timeout.
        probe_wait_ms_ = std::clamp<uint64_t>(static_cast<uint64_t>(2 * srtt_ms_) + 1, 1,
                                              std::max<uint64_t>(1, timeout_ms() / 2));
        probe_waited_ms_ = probe_wait_ms_;
        arm_timer(probe_wait_ms_);
      } else {
        arm_timer();
      }
    }
  }

  void send_block(uint64_t k) {
    const uint64_t begin = (k - 1) * n_.blksize;
    const uint64_t end = std::min<uint64_t>(k * n_.blksize, buffered_end_);
    const size_t len = end > begin ? static_cast<size_t>(end - begin) : 0;
    if (k > max_sent_) {
      max_sent_ = k;
      bytes_ += len;
      service_.count(service_.bytes_sent_, len);
    }
    char header[kHeaderSize];
    put_data_header(header, static_cast<uint16_t>(k));
    for (const Chunk& c : chunks_) {  // the block within one chunk: no copy
      if (begin >= c.start && end <= c.start + c.data.size()) {
        send(header, {c.data.data() + (begin - c.start), len});
        return;
      }
    }
    packet_.assign(header, kHeaderSize);  // straddles two chunks: assembled
    for (const Chunk& c : chunks_) {
      const uint64_t from = std::max(begin, c.start);
      const uint64_t to = std::min(end, c.start + c.data.size());
      if (from < to) packet_.append(c.data.data() + (from - c.start), to - from);
    }
    send(packet_);
  }

  State state_ = State::kOpening;
  std::shared_ptr<transfer::FileSender> get_;  ///< the GET engine, once the file is open
  std::string oack_;
  std::string packet_;         ///< scratch: a DATA packet straddling two chunks
  std::deque<Chunk> chunks_;   ///< lent by the engine, not yet all acknowledged
  uint64_t buffered_end_ = 0;  ///< stream offset after the last chunk
  bool acked_ = false;         ///< the client ACKed something: read ahead in full chunks
  bool eof_ = false;
  uint64_t last_block_ = 0;  ///< once eof_: the final (short) block
  uint64_t base_ = 1;        ///< first unacknowledged block
  uint64_t sent_ = 0;        ///< last block sent in the current window
  uint64_t max_sent_ = 0;    ///< highest block ever sent (byte count)
  double srtt_ms_ = 1.0;     ///< smoothed burst-to-ACK time
  uint64_t last_send_ms_ = 0;
  uint64_t probe_wait_ms_ = 0;    ///< the probe timer's current wait (0: none)
  uint64_t probe_waited_ms_ = 0;  ///< probe waits so far since the last send
};

}  // namespace

std::unique_ptr<Transfer> make_read_transfer(TransferArgs args) {
  return std::make_unique<ReadTransfer>(std::move(args));
}

}  // namespace fsrv::services::tftp
