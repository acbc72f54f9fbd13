#pragma once
// One client connection: the TCP handle, its idle and legacy timers and its
// write queue. Owns the libuv handles and the protocol handler; knows bytes,
// not requests. The protocol handler (ConnectionHandler) decides what the
// bytes mean and where reads land, so an upload's payload is read straight
// into its chunk buffer.
//
// Lifetime (libuv pitfalls 4 and 5): a Connection is reference counted. The
// open handle holds one reference, dropped in the last close callback; every
// write request and every executor task holds one (ConnRef). So nothing is
// freed while libuv or a pool thread still points at it, and close() can be
// called any time, any number of times.

#include <uv.h>

#include <functional>
#include <memory>
#include <span>
#include <string>

namespace fsrv::reactor {

class Connection;
struct ServerContext;
struct WriteReq;

/// The protocol side of a connection. All calls come on the loop thread.
class ConnectionHandler {
 public:
  virtual ~ConnectionHandler() = default;
  /// Where the next socket read may write (non-empty).
  virtual std::span<char> read_space() = 0;
  /// `n` bytes were read into the span read_space() returned.
  virtual void on_read(size_t n) = 0;
  /// The client half-closed (EOF); the connection may still write.
  virtual void on_eof() = 0;
  /// The legacy timer armed with Connection::arm_legacy_timer fired.
  virtual void on_legacy_timer() = 0;
  /// No read or write progress for the idle timeout.
  virtual void on_idle_timeout() = 0;
  /// The write queue fell below the low watermark after being above the high one.
  virtual void on_drain() = 0;
  /// The server is shutting down: finish the current request, then close.
  virtual void on_shutdown() = 0;
  /// The connection is closing (error, EOF, close()); drop pending work.
  virtual void on_close() = 0;
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

class Connection {
 public:
  /// Write-queue watermarks for small replies, in bytes: above kHighWater
  /// the handler stops producing and reading; on_drain() fires below kLowWater.
  static constexpr size_t kHighWater = 1 << 20;
  static constexpr size_t kLowWater = 256 << 10;

  /// Creates a connection whose TCP handle is initialised on ctx's loop but
  /// not yet connected; accept into tcp() then call start().
  static Connection* create(ServerContext& ctx);

  uv_tcp_t* tcp() { return &tcp_; }
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }
  ServerContext& context() { return ctx_; }

  /// Installs the handler, tunes the socket, starts reading and the idle timer.
  void start(std::unique_ptr<ConnectionHandler> handler);
  /// Sends `message` (a complete reply) and closes: used for "server busy".
  void reject(std::string message);

  /// Queues `n` buffers; they must stay valid until `cb(status)` runs
  /// (status 0, or a libuv error such as UV_ECANCELED when closing).
  void write(const uv_buf_t* bufs, unsigned n, std::function<void(int)> cb);
  /// Queues a reply the connection owns until written.
  void write_owned(std::string bytes);
  /// Bytes queued in libuv and not yet written to the socket.
  size_t queued_bytes() const;
  /// True when the handler should stop producing (write queue above kHighWater).
  bool congested();

  void pause_reading();
  void resume_reading();
  /// (Re)starts the one-shot legacy timer; on_legacy_timer() when it fires.
  void arm_legacy_timer(uint64_t ms);
  void cancel_legacy_timer();
  /// Restarts the idle timer (call on progress other than reads and writes).
  void touch();

  /// Closes after every queued write completed (uv_shutdown, then close).
  void close_when_flushed();
  /// Closes now; pending writes complete with UV_ECANCELED. Idempotent.
  void close();
  bool closing() const { return closing_; }
  /// Tells the handler the server is draining (or closes if it has none).
  void shutdown_gracefully();

  void retain() { ++refs_; }
  void release();

 private:
  explicit Connection(ServerContext& ctx);
  ~Connection();
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_handle_closed(uv_handle_t* h);
  static void on_written(uv_write_t* req, int status);
  void queue_write(WriteReq* w, const uv_buf_t* bufs, unsigned n);

  ServerContext& ctx_;
  uv_tcp_t tcp_;
  uv_timer_t idle_timer_;
  uv_timer_t legacy_timer_;
  std::unique_ptr<ConnectionHandler> handler_;
  int refs_ = 1;          ///< the handles' reference, dropped when all closed
  int open_handles_ = 3;  ///< tcp + two timers
  bool closing_ = false;
  bool reading_ = false;
  bool shutting_down_ = false;
  bool congested_ = false;
};

}  // namespace fsrv::reactor
