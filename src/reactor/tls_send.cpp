// A file range sent over a TLS connection: sendfile(2) would put plaintext
// on the wire, so the file is read by executor tasks, one chunk at a time,
// and each chunk is encrypted and written on the loop through
// Connection::write (the session is the loop's alone: OpenSSL's SSL object
// is not thread-safe). The producer is pulled (h2o's file generator and its
// `proceed`): a chunk is read only into a free buffer of the two, so the
// next chunk is read while one is written, and a slow reader stops the
// reading.
//
// One chunk is written at a time: its records go straight to the socket
// while it takes them (TlsSession::encrypt's direct path), the rest are
// held in one ciphertext buffer that the next chunk reuses (the connection
// keeps a completed write's buffer while a transfer is on), so a transfer
// maps no fresh pages per chunk. The kernel's send buffer keeps the client
// fed while the next chunk is encrypted.

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "fsrv/reactor/connection.hpp"
#include "fsrv/reactor/executor.hpp"
#include "fsrv/reactor/tls.hpp"

namespace fsrv::reactor {

namespace {

/// Chunks in hand at once: one being written while the next is read.
constexpr int kChunksInHand = 2;
/// File bytes read and encrypted per step: the connection's high watermark,
/// so a transfer holds at most two of them in plaintext (and one in
/// ciphertext while the socket is full), and a chunk and its records stay
/// within the core's cache between the read, the encryption and the write.
constexpr size_t kTlsFileChunk = Connection::kHighWater;

struct TlsSendJob {
  ConnRef conn;
  int fd;
  uint64_t offset;  ///< next byte to read
  uint64_t left;    ///< bytes still to read
  uint64_t sent = 0;
  Executor* executor;
  std::function<void(int, uint64_t)> done;
  /// Plaintext buffers (not zeroed: pread fills what is sent).
  std::unique_ptr<char[]> chunk[kChunksInHand];
  size_t size[kChunksInHand] = {0, 0};  ///< bytes read into a ready chunk
  bool busy[kChunksInHand] = {false, false};
  int order[kChunksInHand] = {-1, -1};  ///< ready chunks, file order
  int ready = 0;                        ///< entries in order
  bool reading = false;
  bool writing = false;
  int status = 0;  ///< the first error (or UV_EOF: the file shrank)
  bool finished = false;
};

void step(const std::shared_ptr<TlsSendJob>& job);

void finish(const std::shared_ptr<TlsSendJob>& job, int status) {
  if (job->finished) return;
  job->finished = true;
  Connection* c = job->conn.get();
  if (status != 0 && status != UV_ECANCELED && status != UV_EOF) c->close();
  auto done = std::move(job->done);
  uint64_t sent = job->sent;
  job->conn = ConnRef();
  done(status, sent);
}

// Encrypts and writes the oldest chunk read; the write's completion frees
// its buffer and asks for the next step.
void write_ready(const std::shared_ptr<TlsSendJob>& job) {
  int slot = job->order[0];
  job->order[0] = job->order[1];
  job->order[1] = -1;
  --job->ready;
  job->writing = true;
  size_t n = job->size[slot];
  uv_buf_t b = uv_buf_init(job->chunk[slot].get(), static_cast<unsigned>(n));
  job->conn->write(&b, 1, [job, slot, n](int status) {
    job->writing = false;
    job->busy[slot] = false;
    if (status == 0) {
      job->sent += n;
    } else if (job->status == 0) {
      job->status = status;
    }
    step(job);
  });
}

// Reads the next chunk into a free buffer on the executor; on the loop it
// joins the ready chunks.
void read_next(const std::shared_ptr<TlsSendJob>& job, int slot) {
  job->reading = true;
  job->busy[slot] = true;
  if (!job->chunk[slot]) job->chunk[slot].reset(new char[kTlsFileChunk]);
  size_t want = static_cast<size_t>(std::min<uint64_t>(job->left, kTlsFileChunk));
  auto got = std::make_shared<ssize_t>(0);
  auto err = std::make_shared<int>(0);
  uint64_t at = job->offset;
  job->offset += want;
  job->left -= want;
  job->executor->submit(
      [fd = job->fd, data = job->chunk[slot].get(), want, at, got, err] {
        size_t have = 0;
        while (have < want) {
          ssize_t n = pread(fd, data + have, want - have, static_cast<off_t>(at + have));
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) {
            *err = errno;
            break;
          }
          if (n == 0) break;  // end of file: it shrank
          have += static_cast<size_t>(n);
        }
        *got = static_cast<ssize_t>(have);
      },
      [job, slot, want, got, err] {
        job->reading = false;
        if (job->finished) return;
        if (job->conn->closing()) {
          job->busy[slot] = false;
          if (job->status == 0) job->status = UV_ECANCELED;
        } else if (*err != 0 || static_cast<size_t>(*got) < want) {
          job->busy[slot] = false;
          if (job->status == 0) job->status = *err != 0 ? uv_translate_sys_error(*err) : UV_EOF;
        } else {
          job->size[slot] = want;
          job->order[job->ready++] = slot;
        }
        step(job);
      });
}

// Writes a ready chunk if none is being written, starts the next read if a
// buffer is free, or finishes once nothing is in flight: all sent, the file
// shrank (what was read is still sent first), or an error (chunks read but
// not written are dropped).
void step(const std::shared_ptr<TlsSendJob>& job) {
  if (job->finished) return;
  bool failed = job->status != 0 && job->status != UV_EOF;
  if (!failed && !job->writing && job->ready > 0) write_ready(job);
  if (job->finished) return;  // the write failed at once
  if (job->status != 0 || job->left == 0) {
    if (!job->reading && !job->writing && (failed || job->ready == 0)) finish(job, job->status);
    return;
  }
  if (job->reading) return;
  for (int slot = 0; slot < kChunksInHand; ++slot) {
    if (!job->busy[slot]) {
      read_next(job, slot);
      return;
    }
  }
}

}  // namespace

void tls_send_file(Connection& conn, int file_fd, uint64_t offset, uint64_t length,
                   Executor& executor, std::function<void(int, uint64_t)> done) {
  auto job = std::make_shared<TlsSendJob>();
  job->conn = ConnRef(&conn);
  job->fd = file_fd;
  job->offset = offset;
  job->left = length;
  job->executor = &executor;
  job->done = std::move(done);
  if (conn.closing()) job->status = UV_ECANCELED;
  step(job);
}

}  // namespace fsrv::reactor
