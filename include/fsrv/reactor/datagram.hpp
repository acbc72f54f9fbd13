#pragma once
// A bound UDP socket, the datagram sibling of reactor::Listener: owns its
// uv_udp_t, knows its service (name and index in the configuration), reads
// in batches (recvmmsg through libuv's UV_UDP_RECVMMSG) into one buffer it
// owns, and hands each datagram to a DatagramHandler on the loop thread.
// Lifecycle's stop_accepting closes it like a TCP listener; the handler's
// on_stop() then finishes what it holds (the udp-sink commits its files).

#include <uv.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "fsrv/core/config.hpp"

namespace fsrv::reactor {

class DatagramListener;

/// What a datagram service implements. Every call runs on the loop thread.
class DatagramHandler {
 public:
  virtual ~DatagramHandler() = default;
  /// Called once the socket is bound, before the first datagram.
  virtual void on_start(DatagramListener& listener) { (void)listener; }
  /// One datagram of `data.size()` bytes (possibly 0) from `from`. `data`
  /// is valid only during the call.
  virtual void on_datagram(DatagramListener& listener, const sockaddr& from,
                           std::span<const char> data) = 0;
  /// The listener stopped receiving (shutdown): finish and release what is
  /// held; the loop keeps running until queued executor work is done.
  virtual void on_stop(DatagramListener& listener) { (void)listener; }
  /// The socket's uv_close completed: libuv no longer points at the
  /// listener, so the handler may destroy it now (and nothing after).
  virtual void on_closed(DatagramListener& listener) { (void)listener; }
};

/// Sizing of one datagram socket.
struct DatagramOptions {
  /// Datagrams per recvmmsg batch; 1 reads one datagram per call into a
  /// single 64 KiB buffer (a TFTP transfer's socket: one peer, lock-step).
  size_t batch = 20;
  /// SO_RCVBUF asked of the kernel (granted_rcvbuf() reports the result).
  int rcvbuf = 8 * 1024 * 1024;
  /// SO_SNDBUF asked of the kernel, 0 = the system default. A sender of
  /// whole windows (TFTP windowsize) needs room for a window, or
  /// uv_udp_try_send drops its tail.
  int sndbuf = 0;
};

class DatagramListener {
 public:
  /// Receive buffer asked of the kernel (SO_RCVBUF): 8 MiB holds ~200k
  /// small datagrams while the loop is busy (the course's client
  /// sends 6766 one-byte datagrams at full speed). The kernel caps it at
  /// net.core.rmem_max; granted_rcvbuf() reports what we got.
  static constexpr int kRequestedRcvBuf = 8 * 1024 * 1024;
  /// Largest UDP payload (65535 - 8 UDP - 20 IPv4 header).
  static constexpr size_t kMaxDatagram = 65507;
  /// Datagrams read per recvmmsg call; libuv slices the buffer into 64 KiB
  /// chunks and caps a batch at 20 (libuv src/unix/udp.c).
  static constexpr size_t kBatch = 20;

  /// `index` is the listener's position in the server's configuration.
  DatagramListener(uv_loop_t* loop, int index, std::string service, Endpoint endpoint,
                   DatagramOptions options = {});
  ~DatagramListener();
  DatagramListener(const DatagramListener&) = delete;
  DatagramListener& operator=(const DatagramListener&) = delete;

  /// bind() then start(handler). Returns the bound port, or a negative
  /// libuv error (UV_EADDRINUSE, UV_EINVAL for a bad address...).
  int listen(DatagramHandler& handler);
  /// Binds and sets SO_RCVBUF without receiving (the prefork master binds,
  /// worker slot 1 receives). Returns the bound port or a libuv error.
  int bind();
  /// Takes an already bound UDP socket `fd` (inherited from the master)
  /// instead of bind(). Returns its port or a libuv error.
  int adopt(int fd);
  /// Starts receiving into `handler` (which must outlive the listener's
  /// close) after bind() or adopt(). Returns 0 or a libuv error.
  int start(DatagramHandler& handler);
  /// The socket's descriptor (after bind() or adopt()), or -1.
  int fd() const;
  /// Stops receiving and closes the socket (idempotent); calls the
  /// handler's on_stop() first and its on_closed() when libuv is done with
  /// the handle. The object must live until on_closed().
  void close();
  /// Sends `data` to `to` from this socket (uv_udp_try_send: a datagram
  /// the kernel cannot queue now is dropped, as UDP allows). Returns bytes
  /// sent or a negative libuv error.
  int send_to(const sockaddr& to, std::span<const char> data);
  /// Sends `head` then `body` as one datagram (sendmsg with two iovecs: no
  /// copy into a packet buffer). Same results as send_to above.
  int send_to(const sockaddr& to, std::span<const char> head, std::span<const char> body);

  uv_udp_t* udp() { return &udp_; }
  int index() const { return index_; }
  const std::string& service() const { return service_; }
  const Endpoint& endpoint() const { return endpoint_; }
  /// The bound port (after a successful listen()).
  int port() const { return port_; }
  /// SO_RCVBUF as granted by the kernel (Linux reports twice the usable
  /// size), 0 before listen().
  int granted_rcvbuf() const { return rcvbuf_; }

 private:
  /// Sets rcvbuf_ and port_ from the bound socket `fd`; returns the port.
  int record_bound(int fd);
  uv_udp_t udp_;
  int index_;
  std::string service_;
  Endpoint endpoint_;
  int port_ = 0;
  int rcvbuf_ = 0;
  bool open_ = true;
  bool started_ = false;  ///< handler's on_start ran (on_stop is owed)
  DatagramOptions options_;
  DatagramHandler* handler_ = nullptr;
  /// kBatch slots of 64 KiB: one recvmmsg batch.
  std::unique_ptr<char[]> buf_;
  size_t buf_len_ = 0;
};

/// "IP" of an IPv4/IPv6 address, and its port.
std::string address_ip(const sockaddr& addr);
int address_port(const sockaddr& addr);

}  // namespace fsrv::reactor
