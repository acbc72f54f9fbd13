#include "fsrv/protocol/file_session.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "fsrv/codec/base64.hpp"
#include "fsrv/core/limits.hpp"
#include "fsrv/core/log.hpp"
#include "fsrv/protocol/reply.hpp"
#include "fsrv/protocol/request.hpp"
#include "fsrv/reactor/buffer.hpp"
#include "fsrv/storage/storage.hpp"

namespace fsrv::protocol {

namespace {

using reactor::Buffer;
using reactor::Connection;
using reactor::ConnRef;
using reactor::ServerContext;
using stats::Cmd;

constexpr int kGetBuffers = limits::kGetChunksInFlight;

/// Scratch needed by one work item: raw bytes of a GET chunk, or the bytes
/// decoded from an UPLOAD chunk.
constexpr size_t kScratch =
    std::max(limits::kGetChunk, codec::decode_capacity(limits::kUploadChunk));

/// A GET in progress. Shared between the session and its executor tasks.
struct GetJob {
  std::string name;
  storage::ReadFile file;
  std::string open_error;
  std::string prefix;
  uint64_t offset = 0;  ///< file bytes already handed to the socket
  Buffer bufs[kGetBuffers];
  bool busy[kGetBuffers] = {};
  size_t raw[kGetBuffers] = {};  ///< file bytes encoded into bufs[i]
  size_t len[kGetBuffers] = {};  ///< base64 characters in bufs[i]
  std::string io_error;
  bool reading = false;  ///< a read+encode task is in flight
  bool all_read = false;
  ~GetJob() {
    if (file.fd >= 0) close(file.fd);
  }
};

/// An UPLOAD in progress. Shared between the session and its executor tasks;
/// a task touches only the buffer it was given, decoder and file, and never
/// while another task of the same job runs.
struct UploadJob {
  enum BufState { kFree, kFilling, kFull, kDecoding };
  std::string name;
  std::unique_ptr<storage::UploadFile> file;
  std::unique_ptr<codec::Decoder> decoder;
  Buffer bufs[2];
  size_t fill[2] = {};
  BufState st[2] = {kFree, kFree};
  int filling = -1;      ///< buffer the socket reads into, -1 if none free
  std::deque<int> full;  ///< full buffers waiting to be decoded, oldest first
  bool opening = true;   ///< the temporary file is being created
  bool decoding = false;
  bool terminated = false;  ///< the payload's '\r' or '\n' arrived
  bool finishing = false;
  uint64_t chars = 0;    ///< payload characters received
  uint64_t written = 0;  ///< decoded bytes written to the file
  std::string error;     ///< first failure; later payload is dropped
  // Results of the task in flight (written by the task, read after done).
  std::string task_error;
  size_t task_written = 0;
};

class FileSession final : public reactor::ConnectionHandler {
 public:
  explicit FileSession(Connection& conn) : conn_(conn), ctx_(conn.context()) {}

  std::span<char> read_space() override;
  void on_read(size_t n) override;
  void on_eof() override;
  void on_legacy_timer() override;
  void on_idle_timeout() override;
  void on_drain() override { process_input(); }
  void on_shutdown() override;
  void on_close() override;

 private:
  enum class State { kIdle, kBusy, kPayload, kDiscard };

  // Input buffer: unconsumed bytes are in_[in_start_, in_end_).
  std::string_view input() const { return {in_.data() + in_start_, in_end_ - in_start_}; }
  void consume(size_t n) { in_start_ += n; }
  /// Compacts the input buffer and makes room for `extra` more bytes.
  void reserve_input(size_t extra);
  bool input_blank() const;

  void process_input();
  void handle_request(const Request& req);
  void begin(Cmd cmd);
  void finish(Cmd cmd, bool ok);
  void reply_now(Cmd cmd, bool ok, std::string reply);
  void request_done();
  void start_discard(Cmd cmd, std::string error);

  void run_simple(Cmd cmd, std::function<std::pair<bool, std::string>()> work);

  void start_get(const std::string& name);
  void pump_get();

  void start_upload(std::string name);
  size_t payload_bytes(size_t n);
  void feed_from_input();
  void upload_progress();
  void submit_decode(int i);
  void submit_finish();
  void end_upload(bool ok, std::string reply);

  Connection& conn_;
  ServerContext& ctx_;
  State state_ = State::kIdle;
  std::vector<char> in_;
  size_t in_start_ = 0;
  size_t in_end_ = 0;
  bool eof_ = false;
  bool quit_ = false;
  bool request_open_ = false;
  Cmd current_ = Cmd::kUnknown;
  std::string discard_error_;
  std::shared_ptr<GetJob> get_;
  std::shared_ptr<UploadJob> up_;
};

// ---------------------------------------------------------------- input

bool FileSession::input_blank() const {
  for (char c : input()) {
    if (c != '\r' && c != '\n' && c != ' ' && c != '\t') return false;
  }
  return true;
}

std::span<char> FileSession::read_space() {
  if (state_ == State::kPayload && up_ && up_->filling >= 0) {
    UploadJob& u = *up_;
    Buffer& b = u.bufs[u.filling];
    return {b.data() + u.fill[u.filling], b.capacity() - u.fill[u.filling]};
  }
  reserve_input(limits::kLineBuffer);
  return {in_.data() + in_end_, in_.size() - in_end_};
}

void FileSession::reserve_input(size_t extra) {
  if (in_start_ > 0) {  // compact
    std::memmove(in_.data(), in_.data() + in_start_, in_end_ - in_start_);
    in_end_ -= in_start_;
    in_start_ = 0;
  }
  if (in_.size() < in_end_ + extra) in_.resize(in_end_ + extra);
}

void FileSession::on_read(size_t n) {
  if (state_ == State::kPayload && up_ && up_->filling >= 0) {
    UploadJob& u = *up_;
    char* start = u.bufs[u.filling].data() + u.fill[u.filling];
    size_t used = payload_bytes(n);
    if (used < n) {
      // Bytes after the terminator are the next requests: keep them.
      reserve_input(n - used);
      std::memcpy(in_.data() + in_end_, start + used, n - used);
      in_end_ += n - used;
    }
    upload_progress();
    return;
  }
  in_end_ += n;
  process_input();
}

void FileSession::on_eof() {
  eof_ = true;
  if (state_ == State::kPayload || state_ == State::kDiscard) {
    // An UPLOAD is complete only when its terminator arrives: however valid
    // its base64 so far, one cut short by EOF is interrupted and discarded.
    std::string why = state_ == State::kDiscard
                          ? discard_error_
                          : "upload interrupted: connection closed before the end of the line";
    up_.reset();
    finish(current_, false);
    conn_.write_owned(error_text(why));
    conn_.close_when_flushed();
    return;
  }
  if (state_ == State::kIdle) process_input();
}

void FileSession::on_legacy_timer() {
  if (state_ != State::kIdle || input_blank()) return;
  // The course's original client sends "LIST" or "GET name" with no
  // terminator and waits for the reply (docs/PROTOCOL.md, legacy clients).
  Request req = parse_line(input());
  if (!legacy_complete(req)) return;
  consume(input().size());
  handle_request(req);
  process_input();
}

void FileSession::on_idle_timeout() {
  if (get_ && !get_->prefix.empty() && get_->offset > 0) {
    conn_.close();  // mid-stream: an ERROR object cannot be spliced in
    return;
  }
  if (request_open_) finish(current_, false);
  up_.reset();
  conn_.write_owned(error_text("idle timeout: no data for " +
                               std::to_string(static_cast<int>(ctx_.config->idle_timeout_s)) +
                               " s"));
  conn_.close_when_flushed();
}

void FileSession::on_shutdown() {
  quit_ = true;
  if (state_ == State::kIdle) conn_.close_when_flushed();
}

void FileSession::on_close() {
  if (request_open_) finish(current_, false);
  get_.reset();
  up_.reset();  // the temporary file goes when the last task lets go of it
}

// ---------------------------------------------------------------- requests

void FileSession::begin(Cmd cmd) {
  current_ = cmd;
  request_open_ = true;
  conn_.cancel_legacy_timer();
}

void FileSession::finish(Cmd cmd, bool ok) {
  if (!request_open_) return;
  request_open_ = false;
  ctx_.stats->count(cmd, ok);
}

void FileSession::reply_now(Cmd cmd, bool ok, std::string reply) {
  begin(cmd);
  conn_.write_owned(std::move(reply));
  finish(cmd, ok);
}

void FileSession::request_done() {
  state_ = State::kIdle;
  if (conn_.closing()) return;
  if (quit_) {
    conn_.close_when_flushed();
    return;
  }
  process_input();
}

void FileSession::start_discard(Cmd cmd, std::string error) {
  begin(cmd);
  state_ = State::kDiscard;
  discard_error_ = std::move(error);
}

void FileSession::process_input() {
  while (!conn_.closing() && !quit_) {
    if (state_ == State::kDiscard) {
      size_t t = find_terminator(input());
      if (t == std::string_view::npos) {
        consume(input().size());
        break;
      }
      consume(t + 1);
      state_ = State::kIdle;
      conn_.write_owned(error_text(discard_error_));
      finish(current_, false);
      continue;
    }
    if (state_ != State::kIdle) return;
    if (conn_.congested()) {
      conn_.pause_reading();  // on_drain() resumes
      return;
    }
    Frame f = next_frame(input());
    if (f.kind == Frame::kNeedMore) {
      consume(f.consumed);
      break;
    }
    if (f.kind == Frame::kTooLong) {
      conn_.cancel_legacy_timer();
      start_discard(Cmd::kUnknown,
                    "request line too long (limit " + std::to_string(limits::kMaxLine) + " bytes)");
      continue;
    }
    if (f.kind == Frame::kUploadHeader) {
      consume(f.consumed);
      start_upload(std::move(f.name));
      return;
    }
    Request req = parse_line(f.line);
    consume(f.consumed);
    handle_request(req);
  }
  if (conn_.closing() || quit_ || state_ != State::kIdle) return;
  if (eof_) {
    if (!input_blank()) {
      // A final unterminated request before the client's half-close.
      std::string_view rest = input();  // starts non-blank: next_frame skipped blanks
      if (command_from_verb(rest.substr(0, rest.find_first_of(" \t\r\n"))) == Cmd::kUpload) {
        consume(rest.size());
        reply_now(Cmd::kUpload, false,
                  error_text("upload interrupted: connection closed before the end of the line"));
      } else {
        Request req = parse_line(rest);
        consume(rest.size());
        handle_request(req);
        if (state_ != State::kIdle) return;  // request_done() comes back here
      }
    }
    conn_.close_when_flushed();
    return;
  }
  if (!input_blank() && ctx_.config->legacy_idle_ms > 0) {
    conn_.arm_legacy_timer(static_cast<uint64_t>(ctx_.config->legacy_idle_ms));
  }
  conn_.resume_reading();
}

void FileSession::handle_request(const Request& req) {
  if (!req.error.empty()) {
    reply_now(req.cmd, false, error_text(req.error));
    return;
  }
  const storage::Root* root = ctx_.root;
  switch (req.cmd) {
    case Cmd::kList:
      run_simple(Cmd::kList, [root] {
        auto r = root->list();
        return r.ok() ? std::pair{true, ok_list(r.value)} : std::pair{false, error_text(r.error)};
      });
      return;
    case Cmd::kGet:
      start_get(req.args[0]);
      return;
    case Cmd::kSize:
      run_simple(Cmd::kSize, [root, name = req.args[0]] {
        auto r = root->size(name);
        return r.ok() ? std::pair{true, ok_size(name, r.value)}
                      : std::pair{false, error_text(r.error)};
      });
      return;
    case Cmd::kDelete:
      run_simple(Cmd::kDelete, [root, name = req.args[0]] {
        auto r = root->remove(name);
        return r.ok() ? std::pair{true, ok_text(name + " deleted")}
                      : std::pair{false, error_text(r.error)};
      });
      return;
    case Cmd::kStats:
      reply_now(Cmd::kStats, true, ok_json(ctx_.stats_json()));
      return;
    case Cmd::kPing:
      reply_now(Cmd::kPing, true, ok_text("connected"));
      return;
    case Cmd::kQuit:
      reply_now(Cmd::kQuit, true, ok_text("bye"));
      quit_ = true;
      conn_.close_when_flushed();
      return;
    case Cmd::kUpload:
      // next_frame() turns every "UPLOAD name <payload>" into a streamed
      // upload; a whole UPLOAD line only reaches here through the legacy or
      // half-close paths, which refuse uploads before calling us.
      reply_now(Cmd::kUpload, false, error_text("UPLOAD must end with \\r\\n"));
      return;
    default:
      reply_now(Cmd::kUnknown, false, error_text("unknown command"));
      return;
  }
}

void FileSession::run_simple(Cmd cmd, std::function<std::pair<bool, std::string>()> work) {
  begin(cmd);
  state_ = State::kBusy;
  conn_.pause_reading();
  auto result = std::make_shared<std::pair<bool, std::string>>();
  ConnRef ref(&conn_);
  ctx_.executor->submit([result, work = std::move(work)] { *result = work(); },
                        [this, ref, result, cmd] {
                          if (conn_.closing()) return;
                          conn_.write_owned(std::move(result->second));
                          finish(cmd, result->first);
                          request_done();
                        });
}

// ---------------------------------------------------------------- GET

void FileSession::start_get(const std::string& name) {
  begin(Cmd::kGet);
  state_ = State::kBusy;
  conn_.pause_reading();
  auto job = std::make_shared<GetJob>();
  job->name = name;
  get_ = job;
  const storage::Root* root = ctx_.root;
  ConnRef ref(&conn_);
  ctx_.executor->submit(
      [job, root] {
        auto r = root->open_read(job->name);
        if (r.ok()) {
          job->file = r.value;
        } else {
          job->open_error = r.error;
        }
      },
      [this, ref, job] {
        if (conn_.closing() || get_ != job) return;
        if (!job->open_error.empty()) {
          conn_.write_owned(error_text(job->open_error));
          get_.reset();
          finish(Cmd::kGet, false);
          request_done();
          return;
        }
        job->prefix = get_prefix(job->name);
        if (job->file.size == 0) {
          job->prefix += kGetSuffix;
          conn_.write_owned(std::move(job->prefix));
          get_.reset();
          finish(Cmd::kGet, true);
          request_done();
          return;
        }
        pump_get();
      });
}

// Starts reading+encoding the next chunk if a buffer is free. Called when
// the GET starts, when a chunk was encoded and when the socket took one.
void FileSession::pump_get() {
  if (!get_ || conn_.closing()) return;
  std::shared_ptr<GetJob> job = get_;
  GetJob& j = *job;
  if (j.reading || j.all_read) return;
  int i = 0;
  while (i < kGetBuffers && j.busy[i]) ++i;
  if (i == kGetBuffers) return;  // both chunks in flight: wait for the socket
  if (j.bufs[i].empty()) j.bufs[i] = Buffer(codec::encoded_size(limits::kGetChunk));
  j.busy[i] = true;
  j.reading = true;
  uint64_t off = j.offset;
  size_t want = static_cast<size_t>(std::min<uint64_t>(limits::kGetChunk, j.file.size - off));
  const codec::Encoder* enc = &codec::encoder(ctx_.config->codec);
  ConnRef ref(&conn_);
  ctx_.executor->submit(
      [job, i, off, want, enc] {
        Buffer& raw = reactor::thread_scratch(kScratch);
        size_t got = 0;
        while (got < want) {
          ssize_t n =
              pread(job->file.fd, raw.data() + got, want - got, static_cast<off_t>(off + got));
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) {
            job->io_error = std::strerror(errno);
            return;
          }
          if (n == 0) break;  // the file shrank meanwhile: end here
          got += static_cast<size_t>(n);
        }
        job->raw[i] = got;
        job->len[i] = enc->encode({raw.bytes(), got}, job->bufs[i].data());
      },
      [this, ref, job, i, want] {
        GetJob& j = *job;
        j.reading = false;
        if (conn_.closing() || get_ != job) return;
        if (!j.io_error.empty()) {
          FSRV_LOG_WARN("GET %s: read failed: %s", j.name.c_str(), j.io_error.c_str());
          conn_.close();  // mid-stream: the reply cannot turn into an ERROR
          return;
        }
        bool first = j.offset == 0;
        j.offset += j.raw[i];
        bool last = j.raw[i] < want || j.offset >= j.file.size;
        j.all_read = last;
        uv_buf_t bufs[3];
        unsigned n = 0;
        if (first) bufs[n++] = uv_buf_init(j.prefix.data(), static_cast<unsigned>(j.prefix.size()));
        bufs[n++] = uv_buf_init(j.bufs[i].data(), static_cast<unsigned>(j.len[i]));
        if (last) bufs[n++] = uv_buf_init(const_cast<char*>(kGetSuffix.data()), kGetSuffix.size());
        conn_.write(bufs, n, [this, job, i, last](int status) {
          job->busy[i] = false;
          if (status != 0 || get_ != job) return;  // closing: on_close counts it
          if (last) {
            get_.reset();
            finish(Cmd::kGet, true);
            request_done();
          } else {
            pump_get();
          }
        });
        pump_get();  // encode the next chunk while this one is written
      });
}

// ---------------------------------------------------------------- UPLOAD

void FileSession::start_upload(std::string name) {
  if (std::string why = storage::validate_name(name); !why.empty()) {
    start_discard(Cmd::kUpload, "invalid name: " + why);
    process_input();
    return;
  }
  begin(Cmd::kUpload);
  state_ = State::kPayload;
  auto job = std::make_shared<UploadJob>();
  job->name = std::move(name);
  job->decoder = codec::make_decoder(ctx_.config->codec);
  job->bufs[0] = Buffer(limits::kUploadChunk);
  job->st[0] = UploadJob::kFilling;
  job->filling = 0;
  up_ = job;
  const storage::Root* root = ctx_.root;
  ConnRef ref(&conn_);
  ctx_.executor->submit(
      [job, root] {
        auto r = root->begin_upload();
        if (r.ok()) {
          job->file = std::move(r.value);
        } else {
          job->task_error = r.error;
        }
      },
      [this, ref, job] {
        job->opening = false;
        if (!job->task_error.empty() && job->error.empty()) job->error = job->task_error;
        if (conn_.closing() || up_ != job) return;
        upload_progress();
      });
  feed_from_input();
  upload_progress();
}

// Accounts for `n` payload bytes just placed at the filling buffer's end.
// Returns how many of them belong to the payload plus its terminator; the
// rest belong to the next request.
size_t FileSession::payload_bytes(size_t n) {
  UploadJob& u = *up_;
  int i = u.filling;
  char* p = u.bufs[i].data() + u.fill[i];
  size_t t = find_terminator({p, n});
  size_t payload = t == std::string_view::npos ? n : t;
  u.fill[i] += payload;
  u.chars += payload;
  if (u.error.empty() && (u.chars / 4) * 3 > ctx_.config->max_upload + 2) {
    u.error = "upload too large: limit " + std::to_string(ctx_.config->max_upload) + " bytes";
  }
  if (t != std::string_view::npos) u.terminated = true;
  if (u.terminated || u.fill[i] == u.bufs[i].capacity()) {
    if (u.fill[i] > 0) {
      u.st[i] = UploadJob::kFull;
      u.full.push_back(i);
    } else {
      u.st[i] = UploadJob::kFree;
    }
    u.filling = -1;
    int other = 1 - i;
    if (!u.terminated && u.st[other] == UploadJob::kFree) {
      if (u.bufs[other].empty()) u.bufs[other] = Buffer(limits::kUploadChunk);
      u.st[other] = UploadJob::kFilling;
      u.fill[other] = 0;
      u.filling = other;
    }
    if (u.filling < 0) conn_.pause_reading();
  }
  return t == std::string_view::npos ? n : t + 1;
}

// Moves payload bytes already sitting in the input buffer (read together
// with the UPLOAD header) into the chunk buffers.
void FileSession::feed_from_input() {
  while (state_ == State::kPayload && up_ && !up_->terminated && up_->filling >= 0 &&
         !input().empty()) {
    UploadJob& u = *up_;
    Buffer& b = u.bufs[u.filling];
    size_t k = std::min(input().size(), b.capacity() - u.fill[u.filling]);
    std::memcpy(b.data() + u.fill[u.filling], input().data(), k);
    consume(payload_bytes(k));
  }
}

void FileSession::upload_progress() {
  if (!up_ || conn_.closing()) return;
  std::shared_ptr<UploadJob> job = up_;
  UploadJob& u = *job;
  feed_from_input();
  if (!u.error.empty()) {  // drop what waits: nothing more is decoded
    for (int i : u.full) {
      u.st[i] = UploadJob::kFree;
      u.fill[i] = 0;
    }
    u.full.clear();
  }
  if (!u.decoding && !u.opening && u.error.empty() && !u.full.empty()) {
    int i = u.full.front();
    u.full.pop_front();
    submit_decode(i);
  }
  if (u.filling < 0 && !u.terminated) {
    for (int i = 0; i < 2; ++i) {
      if (u.st[i] == UploadJob::kFree) {
        if (u.bufs[i].empty()) u.bufs[i] = Buffer(limits::kUploadChunk);
        u.st[i] = UploadJob::kFilling;
        u.fill[i] = 0;
        u.filling = i;
        break;
      }
    }
    feed_from_input();
  }
  if (u.terminated) {
    conn_.pause_reading();
    if (!u.decoding && !u.opening && u.full.empty() && !u.finishing) {
      if (!u.error.empty()) {
        end_upload(false, error_text(u.error));
      } else {
        submit_finish();
      }
    }
    return;
  }
  if (u.filling >= 0 && input().empty()) {
    conn_.resume_reading();
  } else {
    conn_.pause_reading();
  }
}

void FileSession::submit_decode(int i) {
  std::shared_ptr<UploadJob> job = up_;
  UploadJob& u = *job;
  u.st[i] = UploadJob::kDecoding;
  u.decoding = true;
  size_t n = u.fill[i];
  uint64_t offset = u.written;
  uint64_t max = ctx_.config->max_upload;
  ConnRef ref(&conn_);
  ctx_.executor->submit(
      [job, i, n, offset, max] {
        UploadJob& w = *job;
        Buffer& out = reactor::thread_scratch(kScratch);
        codec::DecodeStatus ds = w.decoder->update({w.bufs[i].data(), n}, out.bytes());
        w.task_written = 0;
        if (!ds.ok) {
          w.task_error = ds.error;
        } else if (offset + ds.written > max) {
          w.task_error = "upload too large: limit " + std::to_string(max) + " bytes";
        } else if (Status s = w.file->write_at({out.bytes(), ds.written}, offset); !s.ok()) {
          w.task_error = s.error;
        } else {
          w.task_written = ds.written;
        }
      },
      [this, ref, job, i] {
        UploadJob& u = *job;
        u.decoding = false;
        u.st[i] = UploadJob::kFree;
        u.fill[i] = 0;
        u.written += u.task_written;
        if (!u.task_error.empty() && u.error.empty()) {
          u.error = u.task_error;
          FSRV_LOG_INFO("UPLOAD %s failed: %s", u.name.c_str(), u.error.c_str());
        }
        if (conn_.closing() || up_ != job) return;
        conn_.touch();
        upload_progress();
      });
}

void FileSession::submit_finish() {
  std::shared_ptr<UploadJob> job = up_;
  job->finishing = true;
  ConnRef ref(&conn_);
  ctx_.executor->submit(
      [job] {
        UploadJob& w = *job;
        uint8_t tail[4];
        codec::DecodeStatus ds = w.decoder->finish(tail);
        if (!ds.ok) {
          w.task_error = ds.error;
          return;
        }
        Status s = w.file->commit(w.name);
        if (!s.ok()) w.task_error = s.error;
      },
      [this, ref, job] {
        if (conn_.closing() || up_ != job) return;
        UploadJob& u = *job;
        if (!u.task_error.empty()) {
          end_upload(false, error_text(u.task_error));
        } else {
          end_upload(true, ok_text(u.name + " uploaded (" + std::to_string(u.written) + " bytes)"));
        }
      });
}

void FileSession::end_upload(bool ok, std::string reply) {
  up_.reset();  // an uncommitted temporary file is removed with the job
  conn_.write_owned(std::move(reply));
  finish(Cmd::kUpload, ok);
  request_done();
}

}  // namespace

std::unique_ptr<reactor::ConnectionHandler> make_file_session(Connection& conn) {
  return std::make_unique<FileSession>(conn);
}

}  // namespace fsrv::protocol
