// The tftp service's read transfer (see tftp_read_transfer.hpp).

#include "fsrv/services/tftp/tftp_read_transfer.hpp"

#include <algorithm>
#include <cstring>
#include <deque>
#include <functional>

#include "fsrv/services/tftp/tftp_request_port.hpp"
#include "fsrv/storage/storage.hpp"
#include "fsrv/transfer/file_sender.hpp"

namespace fsrv::services::tftp {

namespace {

/// A read request: the GET engine (transfer::FileSender) reads the file
/// on the executor in chunks of at least a window (io_chunk), netascii
/// encoded if asked, and lends each to the transfer (body_write) until the
/// client has acknowledged its last byte; a window of `windowsize` DATA
/// packets is cut out of the chunks held, and an ACK of block k starts the
/// next window at k + 1 (RFC 7440 section 4; with windowsize 1 this is RFC
/// 1350's lock-step). A duplicate ACK is ignored (no Sorcerer's Apprentice:
/// RFC 1350 section 4 note, RFC 1123 4.2.3.1); a timeout resends the
/// window from the chunks still held.
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

  const char* direction() const override { return "RRQ"; }

  void begin() override {
    if (std::string why = storage::validate_name(name_); !why.empty()) {
      fail(ErrorCode::kAccess, "access violation: " + why);
      return;
    }
    auto file = std::make_shared<Result<storage::ReadFile>>();
    storage::Root* root = service_.shared().root;
    std::string name = name_;
    run([root, name, file] { *file = root->open_read(name); },
        [this, file] {
          if (!file->ok()) {
            fail(error_code(file->code), error_text(file->status()));
            return;
          }
          for (auto& [name, value] : n_.accepted) {
            if (name == "tsize") value = std::to_string(file->value.size());
          }
          state_ = n_.accepted.empty() ? State::kData : State::kOack;
          transfer::SendOptions o;
          if (request_.mode == Mode::kNetascii) {
            o.transform = transfer::Transform::kCustom;
            o.custom = [](std::span<const uint8_t> in, char* out) {
              return netascii_encode(in, out);
            };
            o.expansion = 2;  // LF -> CR LF, CR -> CR NUL
          }
          const size_t window = static_cast<size_t>(n_.windowsize) * n_.blksize;
          o.chunk = std::max(io_chunk(n_.blksize), window);
          // Buffers at need: until the client ACKs anything, one block (a
          // request that is never followed up costs one block).
          o.first_chunk = n_.blksize;
          get_ = transfer::send_file(*this, *service_.shared().executor, std::move(file->value),
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

  void on_packet(uint16_t op, std::span<const char> packet) override {
    if (op != static_cast<uint16_t>(Opcode::kAck)) {
      fail(ErrorCode::kIllegal, "expected an ACK during a read transfer");
      return;
    }
    const uint16_t wire = read_u16(packet.data() + 2);
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
    const double sample = static_cast<double>(uv_now(service_.loop()) - last_send_ms_);
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

  void on_timeout() override {
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
      // Tail loss probe (after RFC 8985's TLP): resend the window's last
      // block, at PTO, 2 PTO, 4 PTO... until the retransmission timeout is
      // used up. A receiver that lost the tail of a window sees a block out
      // of order and ACKs what it has (RFC 7440 section 4); a lock-step
      // receiver gets its lost block: recovery takes a round trip, not a
      // timeout. The timeout's retry count is untouched.
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
      last_send_ms_ = uv_now(service_.loop());
      // Probes only before the first timeout: after one, the backed-off
      // timeout alone paces retransmissions (as TCP's TLP precedes RTO).
      if (probes_allowed() && retries() == 0) {
        probe_wait_ms_ = probe_waited_ms_ = probe_ms();
        arm_timer(probe_wait_ms_);
      } else {
        arm_timer();
      }
    }
  }

  /// Probes serve windows (a lost tail is otherwise silent); in lock-step
  /// a probe is only an early duplicate whenever the client is a little
  /// slow, so there the retransmission timeout alone applies.
  bool probes_allowed() const { return n_.windowsize > 1; }
  /// Probe timeout: twice the smoothed round trip, at least 1 ms (libuv's
  /// timer resolution), at most half the retransmission timeout.
  uint64_t probe_ms() const {
    const auto pto = static_cast<uint64_t>(2 * srtt_ms_) + 1;
    return std::clamp<uint64_t>(pto, 1, std::max<uint64_t>(1, timeout_ms() / 2));
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
    packet_.resize(kHeaderSize + len);  // straddles two chunks: assembled
    std::memcpy(packet_.data(), header, kHeaderSize);
    size_t copied = 0;
    for (const Chunk& c : chunks_) {
      if (copied == len) break;
      const uint64_t at = begin + copied;
      if (at >= c.start + c.data.size()) continue;
      const size_t off = static_cast<size_t>(at - c.start);
      const size_t n = std::min(len - copied, c.data.size() - off);
      std::memcpy(packet_.data() + kHeaderSize + copied, c.data.data() + off, n);
      copied += n;
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
