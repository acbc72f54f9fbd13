#pragma once
// One client connection: the TCP handle, its deadlines (idle, request head,
// min_rate: an entry in the reactor's DeadlineQueue, one timer per loop), a
// generic one-shot timer for the protocol, and its write queue. Owns the
// libuv handles and the protocol handler; knows bytes, not requests. The
// protocol handler (ConnectionHandler) decides what the bytes mean and where
// reads land, so an upload's payload is read straight into its chunk buffer.
//
// Lifetime (libuv pitfalls 4 and 5): a Connection is reference counted. The
// open handles hold one reference, dropped in the last close callback; every
// write request and every executor task holds one (ConnRef). So nothing is
// freed while libuv or a pool thread still points at it, and close() can be
// called any time, any number of times.
//
// Memory (hardening issue, point 1): small replies (write_owned) are
// coalesced into one outbox string while an earlier owned write is in
// flight, so a client that pipelines thousands of requests and never reads
// costs one buffer, not one write request per reply. pending_bytes() counts
// every byte handed to the connection whose write has not completed (queued
// in libuv, in the kernel's hands but not yet acknowledged by the write
// callback, or waiting in the outbox); congested() is true above kHighWater.

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "fsrv/reactor/transfer_peer.hpp"

namespace fsrv::reactor {

class Connection;
class Executor;
struct Reactor;
struct WriteReq;
struct SendFileJob;
class TlsSession;

/// What idle time between requests means for a service.
enum class IdlePolicy {
  kTimeout,  ///< closed after --idle-timeout with no read or write progress
  kKeep,     ///< kept (interactive clients that pause): bounded by the
             ///< connection limits and closed at shutdown
};

/// The protocol side of a connection: transport events only. All calls
/// come on the loop thread.
class ConnectionHandler {
 public:
  virtual ~ConnectionHandler() = default;
  /// Where the next socket read may write (non-empty).
  virtual std::span<char> read_space() = 0;
  /// `n` bytes were read into the span read_space() returned.
  virtual void on_read(size_t n) = 0;
  /// The client half-closed (EOF); the connection may still write.
  virtual void on_eof() = 0;
  /// The timer armed with Connection::start_timer fired.
  virtual void on_timer() {}
  /// No read or write progress for the idle timeout (IdlePolicy::kTimeout
  /// only). Default: close.
  virtual void on_idle_timeout();
  /// A transfer (Connection::set_transfer) moved fewer bytes than the
  /// reactor's min_rate over its window. Default: close.
  virtual void on_too_slow();
  /// A request head was not complete within the reactor's request
  /// timeout of its first byte. Default: close.
  virtual void on_request_timeout();
  /// The service's idle policy (the same for all its connections).
  virtual IdlePolicy idle_policy() const { return IdlePolicy::kTimeout; }
  /// False for a byte stream with no requests (echo): no request timeout.
  virtual bool has_requests() const { return true; }
  /// pending_bytes() fell below kLowWater after congested() had been true.
  virtual void on_drain() = 0;
  /// The server is shutting down: finish the current request, then close.
  virtual void on_shutdown() = 0;
  /// The connection is closing (error, EOF, close()); drop pending work.
  virtual void on_close() = 0;

  Connection* connection = nullptr;  ///< set by Connection::start
};

/// Strong reference to a Connection (retain on copy, release on destroy).
class ConnRef {
 public:
  ConnRef() = default;
  explicit ConnRef(Connection* c);
  ConnRef(const ConnRef& o);
  ConnRef& operator=(const ConnRef& o);
  ~ConnRef();
  Connection* operator->() const { return c_; }
  Connection* get() const { return c_; }

 private:
  Connection* c_ = nullptr;
};

class Connection final : public TransferPeer {
 public:
  /// Write watermarks in bytes of pending_bytes(): above kHighWater the
  /// handler stops producing and reading; on_drain() fires below kLowWater.
  /// 256 KiB of small replies is thousands of replies, enough to keep any
  /// pipelining client busy, and 100 such clients stay under 30 MB.
  static constexpr size_t kHighWater = 256 << 10;
  static constexpr size_t kLowWater = 64 << 10;
  /// File bytes one sendfile(2) work item sends at most before yielding, so
  /// one fast client cannot hold a pool thread for a whole large file.
  static constexpr uint64_t kSendfileSlice = 16 << 20;
  /// File bytes one transformed send_file work item reads, encodes and
  /// sends at most before yielding: encoding costs CPU that sendfile does
  /// not, and in process mode the item runs on the loop itself.
  static constexpr uint64_t kTransformSlice = 4 << 20;
  /// How long, in all, one send_file work item on a pool thread may wait
  /// in poll(2) for a full socket to take more before it hands the wait to
  /// the loop. A client reading at loopback speed frees room in a few
  /// microseconds each time, and the item goes on with no round trip
  /// through the loop (done callback, a poll registration, the next item:
  /// two thread hand-offs). The budget is per item, not per wait, so a
  /// client that reads just fast enough to free room now and then cannot
  /// keep a pool thread waiting for a whole slice: each item blocks its
  /// thread for at most this, and a stalled client costs it once per item.
  static constexpr int64_t kSendWaitNs = 4'000'000;

  /// Creates a connection whose TCP handle is initialised on the reactor's
  /// loop but not yet connected; accept into tcp() then call start().
  static Connection* create(Reactor& reactor);

  uv_tcp_t* tcp() { return &tcp_; }
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }
  Reactor& reactor() { return reactor_; }

  /// Installs the handler, tunes the socket, starts reading and the idle
  /// timer. On a TLS listener (Reactor::tls_for) the handler sees only
  /// plaintext once the handshake is done; the handshake counts against the
  /// request timeout from here.
  void start(std::unique_ptr<ConnectionHandler> handler);
  /// True when TLS runs under this connection.
  bool tls() const { return tls_ != nullptr; }
  /// Sends `message` (may be empty) and closes: refusals ("server busy").
  void reject(std::string message);

  /// Queues `n` buffers; they must stay valid until `cb(status)` runs
  /// (status 0, or a libuv error such as UV_ECANCELED when closing). Any
  /// write error other than cancellation closes the connection at once.
  void write(const uv_buf_t* bufs, unsigned n, std::function<void(int)> cb);
  /// Queues bytes the connection owns until written (coalesced with other
  /// owned writes queued behind an in-flight one; order is preserved).
  void write_owned(std::string_view bytes);
  /// The same, taking the string itself when nothing waits in the outbox.
  void write_owned_moved(std::string&& bytes);
  /// Sends `length` bytes of `file_fd` from `offset` with sendfile(2), run by
  /// `executor` (never on the loop: it may block on the disk), after every
  /// earlier write completed; waits for the socket to become writable in
  /// between. `done(status, sent)` runs on the loop: 0, or a negative libuv
  /// error (the connection is then closed). No write may be queued while it
  /// runs. `file_fd` must stay open until done. Under TLS the file is read
  /// and encrypted in chunks instead (tls_send_file).
  ///
  /// With a `transform` (never under TLS), each work item instead preads
  /// transform->chunk file bytes at a time, encodes them and send(2)s the
  /// result itself, so the bytes are produced and written on one thread
  /// while they are still in its cache; what the socket did not take waits
  /// in the job for the next item. `sent` then counts file bytes whose
  /// encoding was fully sent, the statistics count wire bytes.
  void send_file(int file_fd, uint64_t offset, uint64_t length, Executor& executor,
                 std::function<void(int, uint64_t)> done, const SendTransform* transform = nullptr);
  /// Bytes handed to the connection whose write has not completed.
  size_t pending_bytes() const { return pending_bytes_; }
  /// Bytes still queued in libuv (not yet taken by the kernel).
  size_t queued_in_libuv() const { return tcp_.write_queue_size; }
  /// Bytes in the kernel's send queue not yet acknowledged by the peer
  /// (ioctl SIOCOUTQ, tcp(7)); 0 if unknown.
  size_t unacked_in_kernel() const;
  /// Bytes read from the socket, and written to it (writes completed plus
  /// send_file), since the connection opened: access log lines take the
  /// difference over a request.
  uint64_t bytes_read() const { return bytes_read_; }
  uint64_t bytes_written() const { return bytes_written_; }
  /// The client's address as "IP:PORT" ("[IPV6]:PORT"; "-" if unknown).
  std::string peer() const;
  /// True when the handler should stop producing (pending_bytes() above
  /// kHighWater); stays true until on_drain().
  bool congested();

  void pause_reading();
  void resume_reading();
  /// (Re)starts the one-shot protocol timer: on_timer() after `ms`.
  void start_timer(uint64_t ms);
  void stop_timer();
  /// Gives the loop back: stops reading and calls the handler's on_drain()
  /// in the next loop iteration. A handler that has processed its share of
  /// pipelined requests calls this, so one busy connection cannot starve
  /// the others or the accept of new ones (Redis: NET_MAX_WRITES_PER_EVENT).
  void yield_turn();
  /// Marks a payload or reply in progress (or over): while on, bytes read
  /// and written are measured against the reactor's min_rate over each
  /// window (a timer: a client that sends nothing is measured too), and
  /// on_too_slow() fires below it (slowloris bodies; Apache's
  /// mod_reqtimeout MinRate). Turning it on ends the request head.
  void set_transfer(bool active);
  /// The request head that began with the first byte read while no head
  /// and no transfer was open (the connection opens it itself) is complete,
  /// or there is none: stops the request timer. A service calls this when
  /// it has parsed a whole request line, header block or frame header, and
  /// when its input is empty (nginx: client_header_timeout from the first
  /// byte; the time between requests is the idle policy's).
  void request_head_done();
  /// Closes now, logging `reason` at info level with the service and the
  /// peer ("closing chat connection from 127.0.0.1: idle 60 s"): every
  /// close the server decides goes through here or close_when_flushed_for.
  void close_for(std::string_view reason);
  /// close_when_flushed() with the reason logged, as close_for.
  void close_when_flushed_for(std::string_view reason);
  /// The service name, for log lines (set at accept). Not copied: it must
  /// outlive the connection (a listener factory's name() does).
  void set_label(std::string_view label) { label_ = label; }
  /// The loop's clock in milliseconds (uv_now).
  uint64_t now_ms() const;
  /// Progress for the idle timer (reads and writes call it themselves).
  void touch();

  /// Closes after every queued write completed (uv_shutdown, then close).
  void close_when_flushed();
  /// Closes now; pending writes complete with UV_ECANCELED. Idempotent.
  void close();
  bool closing() const { return closing_; }
  /// Tells the handler the server is draining (or closes if it has none).
  void shutdown_gracefully();
  /// Called once when the connection is gone (after every handle closed).
  std::function<void()> on_gone;
  /// Where it came from: the listener index, the peer address key
  /// (reactor::peer_key) and the prefork master's tag (0 = none). Set by
  /// accept_connection; `admitted` = already counted in
  /// Reactor::admission() (ConnectionLimits::admit_and_add), so the close
  /// counts it out.
  void set_origin(int listener, std::string peer, uint32_t tag, bool admitted);
  /// The peer address as text ("127.0.0.1"), for log lines.
  std::string peer_text() const;

  void retain() { ++refs_; }
  void release();

  // TransferPeer: what the transfer engines ask of a TCP connection.
  bool peer_closing() const override { return closing_; }
  void peer_payload(bool active) override { set_transfer(active); }
  void peer_progress() override { touch(); }
  void peer_retain() override { retain(); }
  void peer_release() override { release(); }
  void body_write(const uv_buf_t* bufs, unsigned n, bool, std::function<void(int)> done) override {
    write(bufs, n, std::move(done));
  }
  void body_write_owned(std::string_view bytes) override { write_owned(bytes); }
  size_t body_queued() const override { return queued_in_libuv(); }
  size_t body_unacked() const override { return unacked_in_kernel(); }
  // A transformed body (base64) is encoded and sent by the executor item
  // in clear text only; under TLS it goes through the chunk pump.
  bool body_can_send_file(bool transformed) const override { return !transformed || !tls(); }
  void body_send_file(int fd, uint64_t offset, uint64_t length, Executor& executor,
                      std::function<void(int, uint64_t)> done,
                      const SendTransform* transform) override {
    send_file(fd, offset, length, executor, std::move(done), transform);
  }
  void body_abort() override { close(); }

 private:
  explicit Connection(Reactor& reactor);
  ~Connection();
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_handle_closed(uv_handle_t* h);
  static void on_written(uv_write_t* req, int status);
  void queue_write(WriteReq* w, const uv_buf_t* bufs, unsigned n, size_t total);
  void flush_outbox();
  void write_done(size_t bytes);
  /// Makes on_deadline run by `due_ms` (loop time): the reactor's
  /// DeadlineQueue keeps an earlier deadline already set.
  void arm_deadlines(uint64_t due_ms);
  static void on_deadline(Connection* c);
  friend class DeadlineQueue;
  uint64_t rate_window_ms() const;
  void sendfile_step();
  void sendfile_finish(int status);
  void wait_writable();
  void open_head();
  static void on_turn(uv_idle_t* h);
  void fail_write(WriteReq* w, int rc);
  // TLS hooks (tls_ set): decrypt before the handler, encrypt on write.
  int tls_write(WriteReq* w, const uv_buf_t* bufs, unsigned n);
  void tls_pump();
  void tls_deliver();
  void tls_flush();
  void tls_release_held();

  void log_close(std::string_view reason) const;
  void check_rate();
  void count_progress(uint64_t bytes);

  // Members ordered by size, the flags packed into bits: every connection
  // carries these, an idle one too (idle memory). What only some connections
  // need is behind a pointer made at first use (timer_, turn_, writable_,
  // sendfile_, tls_).
  Reactor& reactor_;
  uv_tcp_t tcp_;
  /// start_timer()'s handle, and yield_turn()'s: an idle handle runs once
  /// per loop iteration (a zero-delay timer restarted from its own callback
  /// would run again in the same timer pass in libuv 1.44, starving
  /// everything else). Both are made at first use (most connections never
  /// use the timer, an idle one never yields: 272 bytes each connection
  /// does not carry), closed by close(), freed by the destructor (after
  /// their close callbacks).
  uv_timer_t* timer_ = nullptr;
  uv_idle_t* turn_ = nullptr;
  /// The turn handle, made on first use (never once closing).
  uv_idle_t* turn();
  uv_poll_t* writable_ = nullptr;  ///< send_file's writability watch (on a dup of the socket)
  std::unique_ptr<ConnectionHandler> handler_;
  std::string outbox_;  ///< owned bytes waiting for the in-flight owned write
  size_t pending_bytes_ = 0;
  uint64_t bytes_read_ = 0;
  uint64_t bytes_written_ = 0;
  std::shared_ptr<SendFileJob> sendfile_;
  /// TLS state, made by start() on a TLS listener only (it also holds the
  /// connection's TLS-only fields: writes held during the handshake, the
  /// spare ciphertext buffer, the EOF flags).
  std::unique_ptr<TlsSession> tls_;
  /// The service name for log lines: the listener factory's name(), which
  /// outlives its connections (set_label).
  std::string_view label_;
  std::string peer_;
  uint64_t window_start_ms_ = 0;
  uint64_t last_progress_ms_ = 0;  ///< loop time of the last touch()
  uint64_t head_deadline_ms_ = 0;  ///< while head_open_: when the head must be complete
  uint64_t rate_check_ms_ = 0;     ///< while a transfer is on: the next min_rate check
  uint64_t window_bytes_ = 0;
  /// The idle, request-head and min_rate deadlines share one entry in the
  /// reactor's DeadlineQueue (one uv_timer_t per loop): when it is due and
  /// the connection's place in the queue's heap.
  uint64_t deadline_due_ms_ = 0;
  uint32_t deadline_slot_ = UINT32_MAX;
  int writable_fd_ = -1;
  int refs_ = 1;          ///< the handles' reference, dropped when all closed
  int open_handles_ = 1;  ///< tcp (+ timer_, turn_, writable_ once made)
  int listener_ = -1;
  uint32_t tag_ = 0;
  bool owned_in_flight_ : 1 = false;
  bool yield_pending_ : 1 = false;  ///< yield_turn() waits for the turn handle
  bool closing_ : 1 = false;
  bool reading_ : 1 = false;
  bool shutting_down_ : 1 = false;
  bool congested_ : 1 = false;
  bool rejected_ : 1 = false;  ///< a refusal (counted in Reactor::refusing)
  bool transfer_ : 1 = false;  ///< set_transfer(true): rate measured
  bool head_open_ : 1 = false;
  bool admitted_ : 1 = false;
  bool idle_on_ : 1 = false;  ///< touch() ran: the idle deadline counts
};

}  // namespace fsrv::reactor
