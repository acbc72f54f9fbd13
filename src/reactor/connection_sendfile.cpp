// Connection::send_file: a file range to the socket with sendfile(2) in
// executor slices, or through the TLS layer when the connection has one.

#include <poll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <memory>
#include <utility>

#include "connection_internal.hpp"
#include "fsrv/core/log.hpp"
#include "fsrv/reactor/connection.hpp"
#include "fsrv/reactor/executor.hpp"
#include "fsrv/reactor/reactor.hpp"
#include "fsrv/reactor/tls.hpp"

namespace fsrv::reactor {

#if defined(__SANITIZE_THREAD__)
// In the runtime, not declared by GCC 12's sanitizer headers.
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
#endif

namespace {

// dup(2) of a socket for a send job. ThreadSanitizer models a descriptor
// number as a memory word, and libuv closes sockets with syscall(SYS_close),
// which it does not see: with several loops (--loops), the number dup
// returns may be one another loop's socket had, and the runtime reported
// dup's fresh use of it as racing with that loop's last epoll_ctl. The
// kernel orders them (the number is free before dup returns it), so under
// TSan the dup itself is left unchecked, as storage does for openat.
int dup_socket(int fd) {
#if defined(__SANITIZE_THREAD__)
  __tsan_ignore_thread_begin();
#endif
  int copy = ::dup(fd);
#if defined(__SANITIZE_THREAD__)
  __tsan_ignore_thread_end();
#endif
  return copy;
}

}  // namespace

void Connection::send_file(int file_fd, uint64_t offset, uint64_t length, Executor& executor,
                           std::function<void(int, uint64_t)> done,
                           const SendTransform* transform) {
  if (tls_ && transform) {  // the caller encodes and writes itself under TLS
    done(UV_ENOTSUP, 0);
    return;
  }
  if (tls_) {
    reactor_.stats->add(reactor_.tls_sends_userspace);
    tls_send_file(*this, file_fd, offset, length, executor, std::move(done));
    return;
  }
  uv_os_fd_t sock = -1;
  if (closing_ || uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &sock) != 0) {
    done(UV_ECANCELED, 0);
    return;
  }
  sock = dup_socket(sock);
  if (sock < 0) {
    int err = uv_translate_sys_error(errno);
    close();
    done(err, 0);
    return;
  }
  sendfile_ = std::make_shared<SendFileJob>();
  sendfile_->file_fd = file_fd;
  sendfile_->sock_fd = sock;
  sendfile_->offset = offset;
  sendfile_->left = length;
  sendfile_->executor = &executor;
  sendfile_->wait_in_task = executor.runs_off_loop();
  sendfile_->done = std::move(done);
  sendfile_->transform = transform;
  if (length == 0) {
    sendfile_finish(0);
    return;
  }
  if (pending_bytes_ == 0) sendfile_step();  // else write_done() starts it
}

namespace {

int64_t monotonic_ns() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

/// After EAGAIN on the job's socket: true if the task may go on because the
/// socket took room within what is left of the item's wait budget
/// (Connection::kSendWaitNs; only on a pool thread, Executor::runs_off_loop:
/// an inline task never blocks its loop).
bool socket_freed_room(SendFileJob& job) {
  if (!job.wait_in_task || job.wait_left_ns <= 0) return false;
  pollfd p{job.sock_fd, POLLOUT, 0};
  const int64_t start = monotonic_ns();
  const timespec wait{0, static_cast<long>(job.wait_left_ns)};
  int r;
  do {
    r = ::ppoll(&p, 1, &wait, nullptr);
  } while (r < 0 && errno == EINTR);
  job.wait_left_ns -= monotonic_ns() - start;
  return r > 0 && (p.revents & POLLOUT) != 0 && (p.revents & (POLLERR | POLLHUP)) == 0;
}

/// Sends the job's encoded bytes not sent yet; false with task_errno set
/// if the socket is full (EAGAIN, after the brief wait a pool thread may
/// make) or failed.
bool send_encoded(SendFileJob& job) {
  while (job.encoded_off < job.encoded_len) {
    ssize_t n = ::send(job.sock_fd, job.encoded.data() + job.encoded_off,
                       job.encoded_len - job.encoded_off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && socket_freed_room(job)) continue;
    if (n < 0) {
      job.task_errno = errno;
      return false;
    }
    job.encoded_off += static_cast<size_t>(n);
    job.wire_sent += static_cast<uint64_t>(n);
  }
  job.sent += job.encoded_raw;
  job.encoded_len = job.encoded_off = job.encoded_raw = 0;
  return true;
}

/// The work of a transformed send_file item: pread a chunk into the
/// thread's scratch, encode it into the job's buffer and send it, until
/// kTransformSlice file bytes went out, the file ended, or the socket is
/// full (the rest of the chunk stays in the job for the next item).
void transform_slice(SendFileJob& job, uint64_t slice) {
  const SendTransform& t = *job.transform;
  job.task_errno = 0;
  if (!send_encoded(job)) return;
  uint64_t budget = slice;
  while (job.left > 0 && budget > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(t.chunk, job.left));
    Buffer& raw = thread_scratch(t.chunk);
    ssize_t n;
    do {
      n = ::pread(job.file_fd, raw.bytes(), want, static_cast<off_t>(job.offset));
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      job.task_errno = errno;
      return;
    }
    if (n == 0) {  // the file shrank: nothing more to send
      job.task_errno = ENODATA;
      return;
    }
    if (job.encoded.capacity() < t.out_size(t.chunk)) job.encoded = Buffer(t.out_size(t.chunk));
    const auto got = static_cast<size_t>(n);
    job.encoded_len = t.encode({raw.bytes(), got}, job.encoded.data());
    job.encoded_off = 0;
    job.encoded_raw = got;
    job.offset += got;
    job.left -= got;
    budget -= std::min<uint64_t>(budget, got);
    if (got < want && job.left > 0) {  // a short read mid-file: it shrank
      job.task_errno = ENODATA;
      return;
    }
    if (!send_encoded(job)) return;
  }
}

}  // namespace

// One work item: sendfile(2) (or pread, encode and send(2) with a
// transform) until the slice is sent, the socket is full (EAGAIN: the
// socket is non-blocking) or an error.
void Connection::sendfile_step() {
  std::shared_ptr<SendFileJob> job = sendfile_;
  job->running = true;
  ConnRef ref(this);
  uint64_t wire_before = job->wire_sent;
  job->executor->submit(
      [job] {
        job->wait_left_ns = kSendWaitNs;
        if (job->transform) {
          transform_slice(*job, kTransformSlice);
          return;
        }
        uint64_t budget = std::min(job->left, kSendfileSlice);
        job->task_errno = 0;
        while (budget > 0) {
          off_t off = static_cast<off_t>(job->offset);
          ssize_t n = sendfile(job->sock_fd, job->file_fd, &off, budget);
          if (n < 0 && errno == EINTR) continue;
          if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && socket_freed_room(*job)) {
            continue;
          }
          if (n < 0) {
            job->task_errno = errno;
            return;
          }
          if (n == 0) {  // the file shrank: nothing more to send
            job->task_errno = ENODATA;
            return;
          }
          job->offset += static_cast<uint64_t>(n);
          job->left -= static_cast<uint64_t>(n);
          job->sent += static_cast<uint64_t>(n);
          job->wire_sent += static_cast<uint64_t>(n);
          budget -= static_cast<uint64_t>(n);
        }
      },
      [this, ref, job, wire_before] {
        job->running = false;
        if (closing_ || sendfile_ != job) {
          if (sendfile_ == job) sendfile_finish(UV_ECANCELED);
          return;
        }
        reactor_.stats->bytes_out.fetch_add(job->wire_sent - wire_before,
                                            std::memory_order_relaxed);
        count_progress(job->wire_sent - wire_before);
        touch();
        if (job->task_errno == EAGAIN || job->task_errno == EWOULDBLOCK) {
          wait_writable();
        } else if (job->task_errno == ENODATA) {
          sendfile_finish(UV_EOF);
        } else if (job->task_errno != 0) {
          sendfile_finish(uv_translate_sys_error(job->task_errno));
        } else if (job->left == 0 && job->encoded_len == 0) {
          sendfile_finish(0);
        } else {
          sendfile_step();
        }
      });
}

// Waits for the socket to take more bytes. libuv owns the socket's own
// epoll registration, so the watch is on a dup(2) of it (a separate
// registration of the same socket).
void Connection::wait_writable() {
  if (!writable_) {
    writable_fd_ = dup_socket(sendfile_->sock_fd);
    if (writable_fd_ < 0) {
      sendfile_finish(uv_translate_sys_error(errno));
      return;
    }
    writable_ = new uv_poll_t;
    uv_poll_init(reactor_.loop, writable_, writable_fd_);
    writable_->data = this;
    ++open_handles_;
  }
  uv_poll_start(writable_, UV_WRITABLE, [](uv_poll_t* p, int status, int) {
    auto* c = static_cast<Connection*>(p->data);
    uv_poll_stop(p);
    if (c->closing_ || !c->sendfile_) return;
    if (status < 0) {
      c->sendfile_finish(status);
    } else {
      c->sendfile_step();
    }
  });
}

void Connection::sendfile_finish(int status) {
  std::shared_ptr<SendFileJob> job = std::move(sendfile_);
  if (!job) return;
  ConnRef keep(this);
  if (status != 0 && status != UV_ECANCELED && status != UV_EOF) close();
  bytes_written_ += job->wire_sent;
  job->done(status, job->sent);
}

}  // namespace fsrv::reactor
