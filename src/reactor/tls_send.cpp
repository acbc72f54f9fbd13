// A file range sent over a TLS connection: sendfile(2) would put plaintext
// on the wire, so the file is read by executor tasks, one chunk at a time,
// and each chunk is encrypted and written on the loop through
// Connection::write (the session is the loop's alone: OpenSSL's SSL object
// is not thread-safe). The producer is pulled: a chunk is read only when
// fewer than two are in hand (h2o's file generator and its `proceed`).

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <vector>

#include "fsrv/reactor/connection.hpp"
#include "fsrv/reactor/executor.hpp"
#include "fsrv/reactor/tls.hpp"

namespace fsrv::reactor {

namespace {

/// Chunks in hand at once: one being written while the next is read.
constexpr int kChunksInHand = 2;
/// File bytes read and encrypted per step: large enough that the executor
/// round trip and the write's bookkeeping are small beside the encryption,
/// and two in hand (2 MiB plus their records) stay near the clear-text
/// GET's two chunk buffers per connection.
constexpr size_t kTlsFileChunk = 1 << 20;

struct TlsSendJob {
  ConnRef conn;
  int fd;
  uint64_t offset;  ///< next byte to read
  uint64_t left;    ///< bytes still to read
  uint64_t sent = 0;
  Executor* executor;
  std::function<void(int, uint64_t)> done;
  std::vector<char> chunk[kChunksInHand];
  bool busy[kChunksInHand] = {false, false};
  bool reading = false;
  int writes = 0;  ///< chunk writes not yet completed
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

// Reads the next chunk into a free buffer on the executor; on the loop,
// encrypts and writes it, then asks for the next.
void read_next(const std::shared_ptr<TlsSendJob>& job, int slot) {
  job->reading = true;
  job->busy[slot] = true;
  std::vector<char>& buf = job->chunk[slot];
  if (buf.empty()) buf.resize(kTlsFileChunk);
  size_t want = static_cast<size_t>(std::min<uint64_t>(job->left, kTlsFileChunk));
  auto got = std::make_shared<ssize_t>(0);
  auto err = std::make_shared<int>(0);
  uint64_t at = job->offset;
  job->executor->submit(
      [fd = job->fd, data = buf.data(), want, at, got, err] {
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
        Connection* c = job->conn.get();
        if (job->finished) return;
        if (c->closing()) {
          job->busy[slot] = false;
          if (job->status == 0) job->status = UV_ECANCELED;
          step(job);
          return;
        }
        if (*err != 0 || static_cast<size_t>(*got) < want) {
          job->busy[slot] = false;
          if (job->status == 0) job->status = *err != 0 ? uv_translate_sys_error(*err) : UV_EOF;
          step(job);
          return;
        }
        job->offset += want;
        job->left -= want;
        ++job->writes;
        uv_buf_t b = uv_buf_init(job->chunk[slot].data(), static_cast<unsigned>(want));
        c->write(&b, 1, [job, slot, want](int status) {
          --job->writes;
          job->busy[slot] = false;
          if (status == 0) {
            job->sent += want;
          } else if (job->status == 0) {
            job->status = status;
          }
          step(job);
        });
        step(job);
      });
}

// Starts the next read if a buffer is free, or finishes once nothing is in
// flight (all sent, or an error met).
void step(const std::shared_ptr<TlsSendJob>& job) {
  if (job->finished) return;
  bool idle = !job->reading && job->writes == 0;
  if (job->status != 0 || job->left == 0) {
    if (idle) finish(job, job->status);
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
