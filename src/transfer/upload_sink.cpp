#include "fsrv/transfer/upload_sink.hpp"

#include <cstring>

#include "fsrv/core/limits.hpp"
#include "fsrv/core/log.hpp"

namespace fsrv::transfer {

namespace {
/// Payload bytes gathered before one transform+pwrite work item; two such
/// buffers per upload (one filling from the socket, one being written).
constexpr size_t kChunk = limits::kUploadChunk;
}  // namespace

UploadSink::UploadSink(reactor::TransferPeer& peer, reactor::Executor& executor, Options options)
    : peer_(peer), executor_(executor), options_(std::move(options)) {
  if (options_.transform == Transform::kBase64) {
    decoder_ = options_.base64_segments ? codec::make_segmented_decoder(options_.codec)
                                        : codec::make_decoder(options_.codec);
  }
  bufs_[0] = reactor::Buffer(kChunk);
  st_[0] = kFilling;
  filling_ = 0;
}

std::shared_ptr<UploadSink> UploadSink::start(reactor::TransferPeer& peer,
                                              reactor::Executor& executor,
                                              const storage::Root& root, Options options,
                                              std::function<void()> on_space,
                                              std::function<void(Status, uint64_t)> done) {
  auto sink = std::make_shared<UploadSink>(peer, executor, std::move(options));
  sink->self_ = sink;
  // The payload's rate is measured against --min-rate until end() (every
  // service's upload, from one place).
  peer.peer_payload(true);
  sink->on_space_ = std::move(on_space);
  sink->done_ = std::move(done);
  const storage::Root* r = &root;
  reactor::PeerRef ref(&peer);
  executor.submit(
      [sink, r] {
        auto f = r->begin_upload();
        if (f.ok()) {
          sink->file_ = std::move(f.value);
        } else {
          sink->task_status_ = f.status();
        }
      },
      [sink, ref] {
        sink->opening_ = false;
        if (!sink->task_status_.ok()) sink->fail(sink->task_status_);
        sink->progress();
      });
  return sink;
}

bool UploadSink::alive() const { return !cancelled_ && !peer_.peer_closing(); }

std::span<char> UploadSink::space() {
  if (filling_ < 0 || ended_) {
    space_wanted_ = true;
    return {};
  }
  reactor::Buffer& b = bufs_[filling_];
  return {b.data() + fill_[filling_], b.capacity() - fill_[filling_]};
}

void UploadSink::produced(size_t n) {
  if (n == 0 || filling_ < 0) return;
  received_ += n;
  int i = filling_;
  if (!error_.ok()) {  // after an error the payload is read and dropped
    fill_[i] = 0;
    return;
  }
  fill_[i] += n;
  // Checked while streaming: base64 stores 3 bytes per 4 characters.
  uint64_t stored = options_.transform == Transform::kBase64 ? received_ / 4 * 3 : received_;
  // base64: up to 2 bytes of slack for the last quantum's padding (the
  // exact size is known at the end); saturating, so "no limit" (UINT64_MAX)
  // stays no limit.
  const uint64_t slack = options_.transform == Transform::kBase64 ? 2 : 0;
  if (stored > options_.max_bytes && stored - options_.max_bytes > slack) {
    fail(Status::failure(Errc::kTooLarge, "upload too large: limit " +
                                              std::to_string(options_.max_bytes) + " bytes"));
    fill_[i] = 0;
    return;
  }
  if (fill_[i] == bufs_[i].capacity()) {
    st_[i] = kFull;
    (full_[0] < 0 ? full_[0] : full_[1]) = i;
    filling_ = -1;
    int other = 1 - i;
    if (st_[other] == kFree) {
      if (bufs_[other].empty()) bufs_[other] = reactor::Buffer(kChunk);
      st_[other] = kFilling;
      fill_[other] = 0;
      filling_ = other;
    }
    progress();
  }
}

size_t UploadSink::room() const {
  if (filling_ < 0 || ended_) return 0;
  size_t r = bufs_[filling_].capacity() - fill_[filling_];
  if (st_[1 - filling_] == kFree) r += kChunk;
  return r;
}

size_t UploadSink::feed(std::string_view data) {
  size_t used = 0;
  while (used < data.size()) {
    std::span<char> s = space();
    if (s.empty()) break;
    size_t k = std::min(s.size(), data.size() - used);
    std::memcpy(s.data(), data.data() + used, k);
    produced(k);
    used += k;
  }
  return used;
}

void UploadSink::end() {
  if (ended_) return;
  ended_ = true;
  peer_.peer_payload(false);
  if (filling_ >= 0) {
    int i = filling_;
    filling_ = -1;
    if (fill_[i] > 0 && error_.ok()) {
      st_[i] = kFull;
      (full_[0] < 0 ? full_[0] : full_[1]) = i;
    } else {
      st_[i] = kFree;
      fill_[i] = 0;
    }
  }
  progress();
}

void UploadSink::cancel() {
  if (!cancelled_ && !ended_) peer_.peer_payload(false);
  cancelled_ = true;
  on_space_ = nullptr;
  done_ = nullptr;
  // The temporary file goes when the last task lets go of the sink.
}

void UploadSink::fail(Status s) {
  if (!error_.ok()) return;
  error_ = std::move(s);
  FSRV_LOG_INFO("upload %s failed: %s", options_.name.c_str(), error_.error.c_str());
  for (int k = 0; k < 2; ++k) {  // drop what waits: nothing more is written
    int i = full_[k];
    if (i >= 0) {
      st_[i] = kFree;
      fill_[i] = 0;
    }
    full_[k] = -1;
  }
}

// Moves the upload forward: transform the oldest full buffer, refill a free
// one, finish once ended and idle.
void UploadSink::progress() {
  if (!alive()) return;
  if (!working_ && !opening_ && error_.ok() && full_[0] >= 0) {
    int i = full_[0];
    full_[0] = full_[1];
    full_[1] = -1;
    submit_transform(i);
  }
  if (filling_ < 0 && !ended_) {
    for (int i = 0; i < 2; ++i) {
      if (st_[i] == kFree) {
        if (bufs_[i].empty()) bufs_[i] = reactor::Buffer(kChunk);
        st_[i] = kFilling;
        fill_[i] = 0;
        filling_ = i;
        break;
      }
    }
    if (filling_ >= 0 && space_wanted_) {
      space_wanted_ = false;
      if (on_space_) on_space_();
      if (!alive()) return;
    }
  }
  if (ended_ && !working_ && !opening_ && full_[0] < 0 && !finishing_) {
    if (!error_.ok()) {
      finishing_ = true;
      file_.reset();  // removes the temporary file
      auto done = std::move(done_);
      if (done) done(error_, 0);
    } else {
      submit_finish();
    }
  }
}

void UploadSink::submit_transform(int i) {
  auto self = self_.lock();
  st_[i] = kBusy;
  working_ = true;
  size_t n = fill_[i];
  uint64_t offset = written_;
  uint64_t max = options_.max_bytes;
  reactor::PeerRef ref(&peer_);
  executor_.submit(
      [self, i, n, offset, max] {
        UploadSink& w = *self;
        w.task_written_ = 0;
        std::span<const uint8_t> out;
        if (w.decoder_) {
          reactor::Buffer& scratch = reactor::thread_scratch(codec::decode_capacity(kChunk));
          codec::DecodeStatus ds = w.decoder_->update({w.bufs_[i].data(), n}, scratch.bytes());
          if (!ds.ok) {
            w.task_status_ = Status::failure(Errc::kBadData, ds.error);
            return;
          }
          out = {scratch.bytes(), ds.written};
        } else {
          out = {w.bufs_[i].bytes(), n};
        }
        if (offset + out.size() > max) {
          w.task_status_ = Status::failure(
              Errc::kTooLarge, "upload too large: limit " + std::to_string(max) + " bytes");
        } else if (Status s = w.file_->write_at(out, offset); !s.ok()) {
          w.task_status_ = s;
        } else {
          w.task_written_ = out.size();
          if (w.options_.early_writeback) w.file_->start_writeback(offset, out.size());
        }
      },
      [self, ref, i] {
        UploadSink& u = *self;
        u.working_ = false;
        u.st_[i] = kFree;
        u.fill_[i] = 0;
        u.written_ += u.task_written_;
        if (!u.task_status_.ok()) u.fail(u.task_status_);
        if (!u.alive()) return;
        u.peer_.peer_progress();
        u.progress();
      });
}

void UploadSink::submit_finish() {
  auto self = self_.lock();
  finishing_ = true;
  working_ = true;
  reactor::PeerRef ref(&peer_);
  executor_.submit(
      [self] {
        UploadSink& w = *self;
        if (w.decoder_) {
          uint8_t tail[4];
          codec::DecodeStatus ds = w.decoder_->finish(tail);
          if (!ds.ok) {
            w.task_status_ = Status::failure(Errc::kBadData, ds.error);
            return;
          }
        }
        w.task_status_ = w.file_->commit(w.options_.name, w.options_.replace);
      },
      [self, ref] {
        UploadSink& u = *self;
        u.working_ = false;
        if (!u.alive()) return;
        auto done = std::move(u.done_);
        if (!done) return;
        if (u.task_status_.ok()) {
          u.replaced_ = u.file_->replaced();
          done({}, u.written_);
        } else {
          u.file_.reset();
          done(u.task_status_, 0);
        }
      });
}

}  // namespace fsrv::transfer
