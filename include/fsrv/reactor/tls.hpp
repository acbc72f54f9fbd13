#pragma once
// TLS under a connection (OpenSSL 3, memory BIOs): the certificate and key
// a TLS listener serves (TlsContext), one connection's TLS state
// (TlsSession), and a file sent over TLS (tls_send_file). The reactor owns
// the socket; OpenSSL never touches it: ciphertext read by libuv goes into
// the session's read BIO, SSL_read yields plaintext for the protocol
// handler; SSL_write fills the write BIO, whose ciphertext libuv writes
// (the model of OpenSSL's BIO_s_mem(3) and the libuv + OpenSSL examples).
// Knows bytes, not protocols: every service gets TLS unchanged.

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

struct ssl_ctx_st;
struct ssl_st;
struct bio_st;

namespace fsrv::reactor {

class Connection;
class Executor;
struct WriteReq;  // fsrv/reactor/connection.cpp

/// The TLS versions served: 1.2 and 1.3 only (RFC 8996 deprecates 1.0 and
/// 1.1; the handshake of an older client fails with protocol_version).
inline constexpr const char* kTlsVersions = "TLSv1.2, TLSv1.3";

/// One certificate chain and private key, loaded from PEM files, with the
/// server's TLS settings. Built once per serving process (thread mode, each
/// prefork worker) and shared by every TLS listener of it.
class TlsContext {
 public:
  /// Loads `cert_file` (a PEM chain: the leaf first) and `key_file` (PEM)
  /// and checks that they match. On failure returns null and sets `error`
  /// to a message naming the file ("--tls-key /x.pem: no such file").
  static std::unique_ptr<TlsContext> load(const std::string& cert_file, const std::string& key_file,
                                          std::string* error);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  ssl_ctx_st* get() const { return ctx_; }

 private:
  explicit TlsContext(ssl_ctx_st* ctx) : ctx_(ctx) {}
  ssl_ctx_st* ctx_;
};

/// Whether the kernel offers kernel TLS (/proc/sys/net/ipv4/tcp_available_ulp
/// lists "tls"), read at run time.
bool ktls_offered();
/// The line the server logs at start about how TLS replies are sent.
std::string tls_send_path_text();

/// One server-side TLS connection over memory BIOs (the write side a sink
/// BIO appending straight into the caller's buffer: one copy fewer). Not thread-safe: used
/// on the loop thread only (the executor reads files, the loop encrypts).
class TlsSession {
 public:
  /// Ciphertext read from the socket per read: one whole TLS record (16 KiB
  /// of plaintext plus its header and tag, RFC 8446 section 5.2) fits.
  static constexpr size_t kCipherReadSize = 17 << 10;

  explicit TlsSession(const TlsContext& ctx);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  /// Where the next socket read lands (kCipherReadSize bytes).
  std::span<char> cipher_space();
  /// `n` bytes were read into cipher_space(): hands them to OpenSSL.
  void feed(size_t n);

  enum class Step { kWant, kDone, kFailed };
  /// Advances the handshake with the ciphertext fed so far: kWant (more
  /// bytes needed), kDone (established), kFailed (error() says why).
  Step handshake();
  bool established() const { return established_; }

  /// Result of read() besides a byte count.
  static constexpr ptrdiff_t kWant = 0;    ///< no whole record buffered
  static constexpr ptrdiff_t kEof = -1;    ///< the peer sent close_notify
  static constexpr ptrdiff_t kError = -2;  ///< a bad record: error() says why
  /// Decrypts into `out`: a byte count > 0, or kWant, kEof, kError.
  ptrdiff_t read(std::span<char> out);
  /// Whether read() would yield plaintext now, taking none: a byte count
  /// > 0 (at least that many are ready), or kWant, kEof, kError as read().
  /// The reader's buffer is asked for only then: a handler that lends its
  /// read buffer per read (http) holds none while a connection waits.
  ptrdiff_t ready();
  /// True while plaintext or unread ciphertext is buffered (a paused reader
  /// must be handed it when it resumes: no socket event will say so).
  bool has_buffered() const;

  /// Encrypts `n` buffers and appends their records to `out`. False on error.
  /// With `direct` (a stream with nothing queued in libuv), records go
  /// straight to its socket with uv_try_write while it takes them whole,
  /// saving their copy into `out`; `out` keeps the rest in order, always at
  /// least the last record, so the caller's uv_write of `out` completes the
  /// write (its callback) after every byte before it was taken.
  bool encrypt(const uv_buf_t* bufs, unsigned n, std::string& out, uv_stream_t* direct = nullptr);
  /// Queues close_notify (RFC 8446 section 6.1) in the output.
  void close_notify();
  /// Moves the ciphertext OpenSSL produced (handshake flights, alerts,
  /// tickets) into `out` (appended). Returns the bytes moved.
  size_t take_output(std::string& out);
  /// The last error, from OpenSSL's error queue.
  const std::string& error() const { return error_; }

  // The Connection's side of TLS, kept here so a plaintext connection does
  // not carry it (idle memory). Used by Connection only.
  /// Writes queued before the handshake completed. The Connection owns
  /// them: it encrypts and queues them when the handshake ends, or cancels
  /// them in close(), which always runs before the session is destroyed.
  std::vector<WriteReq*> held;
  /// A completed write's buffer, reused by the next while a transfer is on
  /// (each chunk would otherwise map fresh pages); freed when it ends.
  std::string spare;
  bool eof = false;       ///< close_notify or EOF read
  bool eof_told = false;  ///< the handler's on_eof() called for it

 private:
  void set_error(const char* what);
  /// read()'s result for SSL_read's or SSL_peek's return code `rc`.
  ptrdiff_t read_result(int rc);
  ssl_st* ssl_ = nullptr;
  bio_st* rbio_ = nullptr;         ///< ciphertext in (owned by ssl_)
  bio_st* wbio_ = nullptr;         ///< ciphertext out (owned by ssl_): appends to *sink_
  std::string staged_;             ///< records OpenSSL wrote outside encrypt()
  std::string* sink_ = &staged_;   ///< where wbio_ appends (encrypt(): its `out`)
  uv_stream_t* direct_ = nullptr;  ///< encrypt()'s `direct` while it writes directly
  size_t reserve_ = 0;             ///< encrypt()'s estimate of its records' bytes
  friend struct TlsSinkBio;
  std::unique_ptr<char[]> cipher_in_;
  bool established_ = false;
  std::string error_;
};

/// Sends `length` bytes of `file_fd` from `offset` over a TLS connection
/// (sendfile(2) cannot encrypt): an `executor` task preads one chunk
/// (kTlsFileChunk in tls_send.cpp), the loop encrypts and writes it (Connection::write); the
/// next chunk is read while one is written, never more than two in hand
/// (backpressure: the socket taking a chunk releases the next read).
/// `done(status, sent)` runs on the loop once: 0, UV_EOF (the file
/// shrank), UV_ECANCELED (closing) or a libuv error (the connection is
/// closed). `file_fd` must stay open until done.
void tls_send_file(Connection& conn, int file_fd, uint64_t offset, uint64_t length,
                   Executor& executor, std::function<void(int, uint64_t)> done);

}  // namespace fsrv::reactor
