// The tftp service: the request port (TftpService) and one Transfer per
// RRQ/WRQ, each with its own socket and timer (see tftp_service.hpp).
//
// Block numbers are 16 bits on the wire and roll over 65535 -> 0 (the
// convention of tftp-hpa, curl and atftp for files over 32 MiB at 512-byte
// blocks); inside a transfer every block has a 64-bit number and a wire
// number is resolved against the window it can belong to.

#include "fsrv/services/tftp/tftp_service.hpp"

#include <netinet/in.h>
#include <uv.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "fsrv/core/access_log.hpp"
#include "fsrv/core/log.hpp"
#include "fsrv/services/tftp/tftp_packet.hpp"
#include "fsrv/storage/storage.hpp"

namespace fsrv::services::tftp {

namespace {

/// Transfers at once per serving process; a request beyond gets ERROR 0
/// "server busy" (each transfer holds a socket, a timer and up to a window
/// plus two read chunks of memory).
constexpr size_t kMaxTransfers = 512;
/// Transfers one source address (any port) may have at once: one client
/// alone cannot take the table (a course client runs one at a time; a
/// parallel bench a handful).
constexpr size_t kMaxTransfersPerAddress = 32;
/// Transfers of one address that have not yet heard from their peer: the
/// bytes sent to an address that never answers (a spoofed source, a
/// reflection victim) are bounded by this many first packets, each sent
/// at most 1 + kUnheardRetries times.
constexpr size_t kMaxUnheardPerAddress = 4;
/// Retransmissions of a transfer's first packet while its peer was never
/// heard (at the default 1 s timeout it ends after 1 + 2 + 4 + 8 = 15 s,
/// not after --tftp-retries' full minute of backoff): a request never
/// followed by an ACK costs four packets. Three retransmissions keep a
/// client behind 5% loss each way failing its start once in 10,000.
constexpr int kUnheardRetries = 3;
/// ERROR replies to garbage and to refused requests on the request port,
/// per second (the rest are dropped and counted): a forged-source flood
/// cannot turn the port into a reflector.
constexpr int kErrorRepliesPerSecond = 50;
/// Bytes read per executor task for an RRQ, and written per task for a WRQ:
/// 64 blocks, within 256 KiB..1 MiB, so the executor round trip (a thread
/// handoff in thread mode) is amortised over many blocks at every blksize.
constexpr size_t kMinIoChunk = 256 * 1024;
constexpr size_t kMaxIoChunk = 1024 * 1024;
size_t io_chunk(size_t blksize) {
  return std::clamp<size_t>(64 * blksize, kMinIoChunk, kMaxIoChunk);
}
/// Received bytes held while a write is on the executor; above this the
/// ACK that lets the client go on waits for the disk (flow control: TFTP
/// has no other way to slow a sender down).
constexpr size_t kMaxPendingWrite = 8 * 1024 * 1024;
/// Socket buffers of a transfer: two windows, at least 256 KiB, at most
/// 8 MiB (a 65464-byte datagram costs ~128 KiB of buffer accounting).
constexpr int kMinSocketBuffer = 256 * 1024;
constexpr int kMaxSocketBuffer = 8 * 1024 * 1024;
/// After the final ACK of a write, the transfer keeps its port this many
/// timeouts to ACK a retransmitted last block (RFC 1350 section 6, the
/// "dallying" of the side that sends the final ACK).
constexpr int kDallyTimeouts = 2;
/// Upper bound of the backed-off retransmission timeout (tftpd-hpa stops
/// doubling at about the same point).
constexpr uint64_t kMaxBackoffMs = 60'000;

std::string peer_key(const sockaddr& addr) {
  return reactor::address_ip(addr) + ":" + std::to_string(reactor::address_port(addr));
}

bool same_peer(const sockaddr_storage& a, const sockaddr& b) {
  if (a.ss_family != b.sa_family) return false;
  if (b.sa_family == AF_INET) {
    const auto& x = reinterpret_cast<const sockaddr_in&>(a);
    const auto& y = reinterpret_cast<const sockaddr_in&>(b);
    return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
  }
  if (b.sa_family == AF_INET6) {
    const auto& x = reinterpret_cast<const sockaddr_in6&>(a);
    const auto& y = reinterpret_cast<const sockaddr_in6&>(b);
    return x.sin6_port == y.sin6_port &&
           std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof x.sin6_addr) == 0;
  }
  return false;
}

/// The TFTP error for a storage failure (RFC 1350 error codes).
ErrorCode error_code(Errc code) {
  switch (code) {
    case Errc::kNotFound:
      return ErrorCode::kNotFound;
    case Errc::kInvalidName:
    case Errc::kNotRegular:
    case Errc::kPermission:
      return ErrorCode::kAccess;
    case Errc::kNoSpace:
    case Errc::kTooLarge:
      return ErrorCode::kDiskFull;
    case Errc::kExists:
      return ErrorCode::kExists;
    default:
      return ErrorCode::kUndefined;
  }
}

std::string error_text(const Status& s) {
  switch (s.code) {
    case Errc::kNotFound:
      return "file not found";
    case Errc::kInvalidName:
      return "access violation: " + s.error;
    case Errc::kNotRegular:
      return "access violation: not a regular file";
    case Errc::kPermission:
      return "access violation: permission denied";
    case Errc::kNoSpace:
      return "disk full";
    case Errc::kExists:
      return "file already exists";
    default:
      return s.error.empty() ? std::string("server error") : s.error;
  }
}

class TftpService;

/// One RRQ or WRQ: its socket (an ephemeral port, the server's transfer
/// ID), the peer's address (the client's TID), the retransmission timer and
/// the executor work in flight. Owned by TftpService; destroyed once both
/// handles are closed and no executor task points at it.
class Transfer : public reactor::DatagramHandler {
 public:
  Transfer(TftpService& service, const sockaddr& peer, Request request, Negotiated negotiated,
           std::string request_bytes);
  ~Transfer() override = default;
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;

  /// Binds the transfer's port and begins. False if no port could be had
  /// (the transfer is then already finishing).
  bool start(const std::string& host);
  /// Ends the transfer with ERROR 0 `why` (server shutdown).
  void abort(std::string_view why);
  /// Counted as a success already: a write that committed and dallies.
  bool succeeded() const { return counted_; }

  const std::string& key() const { return key_; }
  /// The peer's IP (the per-address caps' key).
  const std::string& ip() const { return ip_; }
  /// True once the peer sent anything to this transfer's port.
  bool heard() const { return heard_; }
  /// True once it ended (its handles may still be closing).
  bool ended() const { return finished_; }
  /// True while the peer has not yet spoken to this transfer's port: an
  /// identical request from it is then a retransmission of this one.
  bool is_retransmission(std::string_view request_bytes) const {
    return !heard_ && !finished_ && request_bytes == request_bytes_;
  }

 protected:
  // The direction: first step, one datagram from the peer, a timeout.
  virtual void begin() = 0;
  virtual void on_packet(uint16_t op, std::span<const char> packet) = 0;
  virtual void on_timeout() = 0;
  virtual const char* direction() const = 0;

  void send(std::span<const char> packet);
  void send(const std::string& packet) { send(std::span<const char>(packet)); }
  /// One datagram of `head` then `body` (no copy).
  void send(std::span<const char> head, std::span<const char> body);
  /// Sends ERROR `code` and finishes the transfer as failed.
  void fail(ErrorCode code, std::string_view message);
  /// (Re)starts the timer for `ms` (default: the transfer's timeout).
  void arm_timer(uint64_t ms = 0);
  void stop_timer() { uv_timer_stop(&timer_); }
  /// The retransmission timeout now: the transfer's timeout doubled per
  /// retry since the last progress (RFC 1123 4.2.3.2: "at least an
  /// exponential backoff of retransmission timeout is necessary"), at most
  /// kMaxBackoffMs. A client that re-ACKs only after its own timeout of
  /// silence (atftp 0.8.0: 1 s) is thereby heard within a few retries.
  uint64_t timeout_ms() const {
    return std::min<uint64_t>(timeout_ms_ << std::min(retries_, 16),
                              std::max<uint64_t>(timeout_ms_, kMaxBackoffMs));
  }
  /// Timeouts since the last progress.
  int retries() const { return retries_; }
  /// A timeout happened: false (after ERROR 0 and finish) once the retry
  /// limit is used up; true means retransmit now.
  bool retry();
  /// The peer made progress: the retry count starts over.
  void progress() { retries_ = 0; }
  /// Ends the transfer: counts it (unless count_result ran), closes the
  /// socket and the timer.
  void finish(bool ok);
  /// Counts and logs the outcome now (once per transfer).
  void count_result(bool ok);
  /// Runs `work` on the executor and `done` on the loop, unless the
  /// transfer finished meanwhile. Keeps the transfer alive until then.
  void run(reactor::Executor::Fn work, reactor::Executor::Fn done);
  bool finished() const { return finished_; }

  TftpService& service_;
  const ServerConfig& config_;
  Request request_;
  Negotiated n_;
  std::string name_;  ///< the storage name (leading '/' removed)
  uint64_t bytes_ = 0;
  uint64_t started_ms_ = 0;

 private:
  void on_datagram(reactor::DatagramListener& listener, const sockaddr& from,
                   std::span<const char> data) override;
  void on_closed(reactor::DatagramListener& listener) override;
  void release_if_done();

  sockaddr_storage peer_{};
  std::string key_;
  std::string ip_;
  std::string request_bytes_;
  std::unique_ptr<reactor::DatagramListener> sock_;
  uv_timer_t timer_;
  uint64_t timeout_ms_;
  int retries_ = 0;
  int handles_open_ = 0;  ///< socket and timer until their close callbacks
  int work_ = 0;          ///< executor tasks in flight
  bool heard_ = false;
  bool finished_ = false;
  bool released_ = false;
  bool counted_ = false;
};

/// The request port: parses RRQ/WRQ and starts transfers.
class TftpService final : public DatagramService {
 public:
  explicit TftpService(Shared& shared)
      : DatagramService(shared, "tftp"),
        rrq_ok_(counter("rrq/ok")),
        rrq_failed_(counter("rrq/failed")),
        wrq_ok_(counter("wrq/ok")),
        wrq_failed_(counter("wrq/failed")),
        retransmits_(counter("retransmits")),
        bad_packets_(counter("bad_packets")),
        bytes_sent_(counter("bytes/sent")),
        bytes_received_(counter("bytes/received")),
        refused_address_(counter("refused/address")),
        refused_unheard_(counter("refused/unheard")),
        errors_dropped_(counter("errors_dropped")) {}

  void on_start(reactor::DatagramListener& listener) override {
    loop_ = listener.udp()->loop;
    ++listeners_;
  }

  void on_datagram(reactor::DatagramListener& listener, const sockaddr& from,
                   std::span<const char> data) override;

  /// Shutdown: no new requests (the request port is closed); transfers in
  /// progress go on on their own ports within the grace period (busy()).
  /// A write already committed, only dallying for a lost final ACK, ends
  /// now rather than hold the shutdown for two timeouts.
  void on_stop(reactor::DatagramListener&) override {
    if (--listeners_ > 0) return;
    stopping_ = true;
    abort_transfers(/*committed_only=*/true);
    if (!transfers_.empty()) {
      FSRV_LOG_INFO("tftp: %zu transfer(s) finishing", transfers_.size());
    }
  }
  bool busy() const override { return stopping_ && !transfers_.empty(); }
  /// Grace over: every transfer ends with ERROR 0 (an upload in progress
  /// keeps the old file); busy() turns false once their handles are closed.
  void force_stop() override { abort_transfers(/*committed_only=*/false); }

  /// A transfer is done with every handle and task: destroy it.
  void release(Transfer* t) {
    auto k = by_peer_.find(t->key());
    if (k != by_peer_.end() && k->second == t) by_peer_.erase(k);
    transfers_.erase(t);
    if (stopping_ && transfers_.empty() && shared_.work_done) shared_.work_done();
  }
  /// The transfer no longer answers retransmitted requests.
  void forget_peer(Transfer* t) {
    auto k = by_peer_.find(t->key());
    if (k != by_peer_.end() && k->second == t) by_peer_.erase(k);
  }

  uv_loop_t* loop() const { return loop_; }
  bool stopping() const { return stopping_; }
  Shared& shared() { return shared_; }
  void count(stats::Counter c, uint64_t n = 1) { shared_.stats->add(c, n); }
  void count_bad() { count(bad_packets_); }

  stats::Counter rrq_ok_, rrq_failed_, wrq_ok_, wrq_failed_, retransmits_, bad_packets_,
      bytes_sent_, bytes_received_, refused_address_, refused_unheard_, errors_dropped_;

 private:
  /// Ends every transfer (or only writes already committed and dallying)
  /// with Transfer::abort; collected first, as an abort may release one.
  void abort_transfers(bool committed_only) {
    std::vector<Transfer*> chosen;
    for (auto& [t, owned] : transfers_) {
      if (!committed_only || t->succeeded()) chosen.push_back(t);
    }
    for (Transfer* t : chosen) t->abort("server shutting down");
  }

  /// Sends ERROR `message` from the request port unless kErrorRepliesPerSecond
  /// went out this second (then dropped and counted).
  void reply_error(reactor::DatagramListener& listener, const sockaddr& to, ErrorCode code,
                   std::string_view message) {
    const uint64_t now = uv_now(loop_);
    if (now - error_second_ms_ >= 1000) {
      error_second_ms_ = now;
      errors_this_second_ = 0;
    }
    if (++errors_this_second_ > kErrorRepliesPerSecond) {
      count(errors_dropped_);
      return;
    }
    listener.send_to(to, error_packet(code, message));
  }
  /// Why `ip` may not start one more transfer now ("" = it may).
  std::string over_address_caps(const std::string& ip) const {
    size_t mine = 0, unheard = 0;
    for (const auto& [t, owned] : transfers_) {
      if (t->ip() != ip || t->ended()) continue;
      ++mine;
      if (!t->heard()) ++unheard;
    }
    if (mine >= kMaxTransfersPerAddress) {
      return "server busy: " + std::to_string(kMaxTransfersPerAddress) +
             " transfers from your address already";
    }
    if (unheard >= kMaxUnheardPerAddress) return "unheard";
    return "";
  }

  uv_loop_t* loop_ = nullptr;
  int listeners_ = 0;
  bool stopping_ = false;
  uint64_t error_second_ms_ = 0;
  int errors_this_second_ = 0;
  std::unordered_map<Transfer*, std::unique_ptr<Transfer>> transfers_;
  std::unordered_map<std::string, Transfer*> by_peer_;  ///< latest transfer of each peer
};

// ---------------------------------------------------------------- Transfer

Transfer::Transfer(TftpService& service, const sockaddr& peer, Request request,
                   Negotiated negotiated, std::string request_bytes)
    : service_(service),
      config_(*service.shared().config),
      request_(std::move(request)),
      n_(std::move(negotiated)),
      name_(storage_name(request_.filename)),
      key_(peer_key(peer)),
      ip_(reactor::address_ip(peer)),
      request_bytes_(std::move(request_bytes)) {
  std::memcpy(&peer_, &peer,
              peer.sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
  timeout_ms_ = n_.timeout_s > 0
                    ? static_cast<uint64_t>(n_.timeout_s) * 1000
                    : std::max<uint64_t>(1, static_cast<uint64_t>(config_.tftp_timeout_s * 1000.0));
  uv_timer_init(service_.loop(), &timer_);
  timer_.data = this;
  handles_open_ = 1;
  started_ms_ = uv_now(service_.loop());
}

bool Transfer::start(const std::string& host) {
  const size_t window_bytes = static_cast<size_t>(n_.windowsize) * (n_.blksize + 64);
  reactor::DatagramOptions options;
  options.batch = 1;
  options.rcvbuf =
      static_cast<int>(std::clamp<size_t>(2 * window_bytes, kMinSocketBuffer, kMaxSocketBuffer));
  options.sndbuf = options.rcvbuf;
  sock_ = std::make_unique<reactor::DatagramListener>(service_.loop(), 0, "tftp", Endpoint{host, 0},
                                                      options);
  ++handles_open_;
  const int rc = sock_->listen(*this);
  if (rc < 0) {
    FSRV_LOG_WARN("tftp: no transfer port for %s: %s", key_.c_str(), uv_strerror(rc));
    finish(false);
    return false;
  }
  begin();
  return true;
}

void Transfer::abort(std::string_view why) {
  if (finished_) return;
  if (counted_) {  // already succeeded (a write dallying after its final ACK)
    finish(true);
    return;
  }
  fail(ErrorCode::kUndefined, why);
}

void Transfer::on_datagram(reactor::DatagramListener&, const sockaddr& from,
                           std::span<const char> data) {
  if (finished_) return;
  if (!same_peer(peer_, from)) {
    // RFC 1350 section 4: a packet from another TID gets ERROR 5 and does
    // not disturb the transfer.
    service_.count_bad();
    const std::string e = error_packet(ErrorCode::kUnknownTid, "unknown transfer ID");
    sock_->send_to(from, e);
    return;
  }
  if (data.size() < kHeaderSize) {  // too short for any packet but a bare ERROR
    if (data.size() >= 2 && read_u16(data.data()) == static_cast<uint16_t>(Opcode::kError)) {
      finish(false);
      return;
    }
    service_.count_bad();
    return;
  }
  if (!heard_) {
    heard_ = true;
    service_.forget_peer(this);
  }
  const uint16_t op = read_u16(data.data());
  if (op == static_cast<uint16_t>(Opcode::kError)) {
    FSRV_LOG_INFO("tftp: %s %s from %s: the client ended it with ERROR %u", direction(),
                  name_.c_str(), key_.c_str(), read_u16(data.data() + 2));
    finish(false);
    return;
  }
  on_packet(op, data);
}

void Transfer::send(std::span<const char> packet) {
  if (sock_ && !finished_) sock_->send_to(reinterpret_cast<const sockaddr&>(peer_), packet);
}

void Transfer::send(std::span<const char> head, std::span<const char> body) {
  if (sock_ && !finished_) {
    sock_->send_to(reinterpret_cast<const sockaddr&>(peer_), head, body);
  }
}

void Transfer::fail(ErrorCode code, std::string_view message) {
  if (finished_) return;
  FSRV_LOG_INFO("tftp: %s %s from %s failed: ERROR %d %.*s", direction(), name_.c_str(),
                key_.c_str(), static_cast<int>(code), static_cast<int>(message.size()),
                message.data());
  send(error_packet(code, message));
  finish(false);
}

void Transfer::arm_timer(uint64_t ms) {
  if (finished_) return;
  uv_timer_start(
      &timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<Transfer*>(t->data);
        if (!self->finished_) self->on_timeout();
      },
      ms ? ms : timeout_ms(), 0);
}

bool Transfer::retry() {
  // A peer never heard gets a shorter life (kUnheardRetries).
  const int limit = heard_ ? config_.tftp_retries : std::min(config_.tftp_retries, kUnheardRetries);
  if (++retries_ > limit) {
    fail(ErrorCode::kUndefined, "timed out after " + std::to_string(limit) + " retransmissions" +
                                    (heard_ ? "" : " (the client never answered)"));
    return false;
  }
  service_.count(service_.retransmits_);
  return true;
}

void Transfer::finish(bool ok) {
  if (finished_) return;
  finished_ = true;
  count_result(ok);
  service_.forget_peer(this);
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* h) {
    auto* self = static_cast<Transfer*>(h->data);
    --self->handles_open_;
    self->release_if_done();
  });
  if (sock_) sock_->close();  // on_closed follows
}

void Transfer::count_result(bool ok) {
  if (counted_) return;
  counted_ = true;
  const bool read = request_.op == Opcode::kRrq;
  service_.count(ok ? (read ? service_.rrq_ok_ : service_.wrq_ok_)
                    : (read ? service_.rrq_failed_ : service_.wrq_failed_));
  service_.observe_duration(static_cast<double>(uv_now(service_.loop()) - started_ms_) / 1000.0);
  if (log::access_enabled()) {
    log::access_request("tftp", key_, read ? "RRQ" : "WRQ", name_, ok, bytes_,
                        static_cast<double>(uv_now(service_.loop()) - started_ms_) / 1000.0);
  }
  if (ok) {
    const double secs = static_cast<double>(uv_now(service_.loop()) - started_ms_) / 1000.0;
    FSRV_LOG_INFO("tftp: %s %s %s %s: %llu bytes in %.3f s (blksize %zu, windowsize %u)",
                  direction(), name_.c_str(), read ? "to" : "from", key_.c_str(),
                  static_cast<unsigned long long>(bytes_), secs, n_.blksize, n_.windowsize);
  }
}

void Transfer::on_closed(reactor::DatagramListener&) {
  --handles_open_;
  release_if_done();
}

void Transfer::release_if_done() {
  if (finished_ && handles_open_ == 0 && work_ == 0 && !released_) {
    released_ = true;
    service_.release(this);  // destroys this
  }
}

void Transfer::run(reactor::Executor::Fn work, reactor::Executor::Fn done) {
  ++work_;
  service_.shared().executor->submit(std::move(work), [this, done = std::move(done)] {
    --work_;
    if (!finished_) {
      done();
      return;
    }
    release_if_done();  // may destroy this
  });
}

// ---------------------------------------------------------------- RRQ

/// A read request: the file streams from the executor in kIoChunk reads
/// into a queue of chunks covering at least the unacknowledged window; a
/// window of `windowsize` DATA packets is sent, and an ACK of block k
/// starts the next window at k + 1 (RFC 7440 section 4; with windowsize 1
/// this is RFC 1350's lock-step). A duplicate ACK is ignored (no Sorcerer's
/// Apprentice: RFC 1350 section 4 note, RFC 1123 4.2.3.1); a timeout resends
/// the window.
class ReadTransfer final : public Transfer {
 public:
  using Transfer::Transfer;

 private:
  struct Chunk {
    uint64_t start;  ///< stream offset of data[0]
    std::string data;
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
          file_ = std::make_shared<storage::ReadFile>(std::move(file->value));
          if (n_.accepted.empty()) {
            state_ = State::kData;
            pump();
            return;
          }
          for (auto& [name, value] : n_.accepted) {
            if (name == "tsize") value = std::to_string(file_->size());
          }
          oack_ = oack_packet(n_.accepted);
          state_ = State::kOack;
          send(oack_);
          arm_timer();
          maybe_read();
        });
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
      spare_ = std::move(chunks_.front().data);  // its pages are reused by the next read
      chunks_.pop_front();
    }
    pump();
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

  /// Sends what the window allows and the buffer holds; reads ahead.
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
    maybe_read();
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

  /// Reads the next chunk when less than a window plus a chunk is buffered
  /// ahead of the window's start.
  void maybe_read() {
    if (reading_ || eof_ || !file_) return;
    const uint64_t window = static_cast<uint64_t>(n_.windowsize) * n_.blksize;
    uint64_t read_size = std::max<uint64_t>(io_chunk(n_.blksize), window);
    if (!acked_) {
      // Buffers at need: until the client ACKs anything, only the first
      // block (a request that is never followed up costs one block).
      if (buffered_end_ >= n_.blksize) return;
      read_size = n_.blksize;
    } else if (buffered_end_ >= (base_ - 1) * n_.blksize + window + read_size) {
      return;
    }
    // Never more than the file still holds (+1 byte to see its end): a
    // small file costs its size, not a whole chunk.
    const uint64_t size = file_->size();
    const uint64_t left = size > file_offset_ ? size - file_offset_ : 0;
    read_size = std::min<uint64_t>(read_size, left + 1);
    reading_ = true;
    auto chunk = std::make_shared<std::string>();
    auto result = std::make_shared<Result<size_t>>();
    auto file = file_;
    const uint64_t offset = file_offset_;
    const bool netascii = request_.mode == Mode::kNetascii;
    auto raw = std::make_shared<std::string>(std::move(spare_));
    spare_.clear();
    run(
        [file, chunk, raw, result, offset, read_size, netascii] {
          // A recycled buffer already has the size: no zero-fill, no new pages.
          if (raw->size() < read_size) raw->resize(static_cast<size_t>(read_size));
          *result = file->read_at(
              {reinterpret_cast<uint8_t*>(raw->data()), static_cast<size_t>(read_size)}, offset);
          if (!result->ok()) return;
          raw->resize(result->value);
          if (netascii) {
            netascii_encode(*raw, *chunk);
          } else {
            *chunk = std::move(*raw);
          }
        },
        [this, chunk, result] {
          reading_ = false;
          if (!result->ok()) {
            fail(ErrorCode::kUndefined, "read error: " + result->error);
            return;
          }
          if (result->value == 0) {
            eof_ = true;
            last_block_ = buffered_end_ / n_.blksize + 1;
          } else {
            file_offset_ += result->value;
            const uint64_t start = buffered_end_;
            buffered_end_ += chunk->size();
            chunks_.push_back({start, std::move(*chunk)});
          }
          if (state_ == State::kData) {
            pump();
          } else {
            maybe_read();
          }
        });
  }

  State state_ = State::kOpening;
  std::shared_ptr<storage::ReadFile> file_;
  std::string oack_;
  std::string packet_;  ///< scratch: a DATA packet straddling two chunks
  std::string spare_;   ///< an acknowledged chunk's buffer, for the next read
  std::deque<Chunk> chunks_;
  uint64_t buffered_end_ = 0;  ///< stream offset after the last chunk
  uint64_t file_offset_ = 0;   ///< next raw file offset to read
  bool reading_ = false;
  bool acked_ = false;  ///< the client ACKed something: read ahead in full chunks
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

// ---------------------------------------------------------------- WRQ

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
    if (config_.tftp_read_only || service_.policy().read_only) {
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
    const bool no_overwrite = config_.tftp_no_overwrite;
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
    const bool replace = !config_.tftp_no_overwrite;
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
            finish(true);  // no dally during a shutdown (see TftpService::on_stop)
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

// ---------------------------------------------------------------- service

void TftpService::on_datagram(reactor::DatagramListener& listener, const sockaddr& from,
                              std::span<const char> data) {
  if (stopping_) return;
  if (data.size() < 2) {
    count_bad();
    return;
  }
  if (read_u16(data.data()) == static_cast<uint16_t>(Opcode::kError)) {
    count_bad();  // never answer an ERROR (RFC 1350 section 7)
    return;
  }
  RequestError error;
  std::optional<Request> request = parse_request(data, error);
  if (!request) {
    count_bad();
    if (!error.drop) reply_error(listener, from, error.code, error.message);
    return;
  }
  const std::string key = peer_key(from);
  const std::string_view bytes(data.data(), data.size());
  if (auto it = by_peer_.find(key); it != by_peer_.end() && it->second->is_retransmission(bytes)) {
    return;  // the client resent its request: the transfer's timer answers
  }
  if (transfers_.size() >= kMaxTransfers) {
    reply_error(listener, from, ErrorCode::kUndefined, "server busy: too many transfers");
    return;
  }
  if (std::string why = over_address_caps(reactor::address_ip(from)); !why.empty()) {
    if (why == "unheard") {
      // Its earlier transfers never heard back: nothing more is sent to
      // it, not even an ERROR (anti-amplification, RFC 9000 section 8's
      // idea: an unverified address gets a bounded number of bytes).
      count(refused_unheard_);
      return;
    }
    count(refused_address_);
    reply_error(listener, from, ErrorCode::kUndefined, why);
    return;
  }
  Negotiated n = negotiate(*request);
  const bool read = request->op == Opcode::kRrq;
  std::unique_ptr<Transfer> t;
  if (read) {
    t = std::make_unique<ReadTransfer>(*this, from, std::move(*request), std::move(n),
                                       std::string(bytes));
  } else {
    t = std::make_unique<WriteTransfer>(*this, from, std::move(*request), std::move(n),
                                        std::string(bytes));
  }
  Transfer* raw = t.get();
  transfers_.emplace(raw, std::move(t));
  by_peer_[key] = raw;
  raw->start(listener.endpoint().host);
}

}  // namespace

const ServiceInfo& info() {
  static const ServiceInfo kInfo{
      "tftp",
      "tftp (RFC 1350 + options): TFTP server on the storage root",
      {6969},
      "curl -s tftp://127.0.0.1:{port}/NAME -o NAME",
      [](stats::Schema& schema) {
        for (const char* p : {"rrq/ok", "rrq/failed", "wrq/ok", "wrq/failed", "retransmits",
                              "bad_packets", "bytes/sent", "bytes/received", "refused/address",
                              "refused/unheard", "errors_dropped"}) {
          schema.add(std::string("tftp/") + p);
        }
      },
      [](reactor::Refusal, int) { return std::string(); },
      nullptr,
      Transport::kDatagram,
      [](Shared& shared) -> std::unique_ptr<DatagramService> {
        return std::make_unique<TftpService>(shared);
      },
      kPolicyReadOnly};
  return kInfo;
}

}  // namespace fsrv::services::tftp
