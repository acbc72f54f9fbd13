#include "fsrv/transfer/file_sender.hpp"

#include <algorithm>

#include "fsrv/core/limits.hpp"
#include "fsrv/core/log.hpp"
#include "fsrv/reactor/buffer.hpp"

namespace fsrv::transfer {

namespace {

using reactor::Buffer;
using reactor::PeerRef;

constexpr int kChunks = limits::kGetChunksInFlight;

/// Raw bytes read per chunk: a multiple of 3 so every base64 chunk but the
/// last encodes without padding (limits::kGetChunk).
constexpr size_t kRawChunk = limits::kGetChunk;
/// The first chunk of a base64 GET, in raw bytes (a multiple of 3): 48 KiB
/// is 64 KiB on the wire. Each chunk the socket takes at once (nothing
/// left queued in libuv) doubles the next, up to kRawChunk, so a reader
/// that keeps up reaches full-size chunks after five; a chunk that had to
/// queue (the client is not reading) brings the size back here, and the
/// larger buffers are given back as they come free. A stalled connection
/// then holds the chunk stuck in its socket plus one small one.
constexpr size_t kFirstRawChunk = 48 * 1024;
static_assert(kFirstRawChunk % 3 == 0 && kRawChunk % 3 == 0);

class Sender final : public FileSender, public std::enable_shared_from_this<Sender> {
 public:
  Sender(reactor::TransferPeer& peer, reactor::Executor& ex, storage::ReadFile file, SendOptions o,
         std::function<void(Status)> done)
      : peer_(peer), ex_(ex), file_(std::move(file)), o_(std::move(o)), done_(std::move(done)) {
    uint64_t size = file_.size();
    o_.offset = std::min(o_.offset, size);
    o_.length = std::min(o_.length, size - o_.offset);
    next_ = o_.offset;
    end_ = o_.offset + o_.length;
  }

  void begin() {
    // The reply's rate is measured against --min-rate (a client that stops
    // reading is cut after one window, whatever the service's idle policy).
    peer_.peer_payload(true);
    if (o_.chunk != 0) chunk_ = o_.first_chunk != 0 ? o_.first_chunk : o_.chunk;
    if (o_.length == 0) {
      std::string all = o_.prefix + o_.suffix;
      write_framing(std::move(all), true);
      return;
    }
    bool transformed = o_.transform == Transform::kBase64;
    if ((o_.transform == Transform::kIdentity || transformed) &&
        peer_.body_can_send_file(transformed)) {
      // Without TLS the base64 body goes the same way as identity's: each
      // executor item preads, encodes and sends on one thread (the encoded
      // chunk is still in that core's cache when send(2) copies it, and
      // thread mode hands nothing between threads per chunk).
      if (!o_.prefix.empty()) peer_.body_write_owned(o_.prefix);
      const reactor::SendTransform* t = nullptr;
      if (transformed) {
        const codec::Encoder* enc = o_.encoder;
        transform_ = {
            [enc](std::span<const uint8_t> in, char* out) { return enc->encode(in, out); },
            &codec::encoded_size, limits::kGetSendChunk};
        t = &transform_;
      }
      auto self = shared_from_this();
      peer_.body_send_file(
          file_.fd(), o_.offset, o_.length, ex_,
          [self](int status, uint64_t sent) { self->sendfile_done(status, sent); }, t);
      return;
    }
    pump();  // TLS, TFTP: chunks the peer borrows (body_write)
  }

  void cancel() override {
    cancelled_ = true;
    done_ = nullptr;
  }
  uint64_t sent() const override { return sent_; }
  void proceed() override { pump(); }

 private:
  bool alive() const { return !cancelled_ && !peer_.peer_closing(); }

  void finish(Status s) {
    if (!alive()) return;
    peer_.peer_payload(false);
    auto done = std::move(done_);
    done_ = nullptr;
    if (done) done(std::move(s));
  }

  // Writes framing bytes; if `last`, the transfer completes with that write.
  void write_framing(std::string bytes, bool last) {
    if (!last) {
      peer_.body_write_owned(bytes);
      return;
    }
    auto self = shared_from_this();
    framing_ = std::move(bytes);
    if (framing_.empty()) {
      finish({});
      return;
    }
    uv_buf_t b = uv_buf_init(framing_.data(), static_cast<unsigned>(framing_.size()));
    peer_.body_write(&b, 1, true, [self](int status) {
      if (status == 0) self->finish({});
    });
  }

  void sendfile_done(int status, uint64_t sent) {
    sent_ = sent;
    if (!alive()) return;
    if (status == UV_EOF) {
      // The file shrank under us: the announced framing cannot be kept.
      peer_.body_abort();
      return;
    }
    if (status != 0) return;  // the connection closed (write error, reset)
    write_framing(o_.suffix, true);
  }

  // Starts reading+encoding the next chunk if a buffer is free. Called at
  // the start, when a chunk was encoded and when the socket took one.
  void pump() {
    if (!alive() || reading_ || next_ >= end_ || !peer_.body_wants_more()) return;
    int i = 0;
    while (i < kChunks && busy_[i]) ++i;
    if (i == kChunks) return;  // every chunk in flight: wait for the socket
    const size_t chunk = chunk_;
    if (bufs_[i].capacity() < out_size(chunk) || bufs_[i].capacity() > out_size(chunk) * 2) {
      bufs_[i] = Buffer(out_size(chunk));  // grown, or a big one given back
    }
    busy_[i] = true;
    reading_ = true;
    uint64_t off = next_;
    size_t want = static_cast<size_t>(std::min<uint64_t>(chunk, end_ - off));
    auto self = shared_from_this();
    PeerRef ref(&peer_);
    ex_.submit(
        [self, i, off, want] {
          if (self->o_.transform == Transform::kIdentity) {  // no sendfile: straight in
            auto r = self->file_.read_at({self->bufs_[i].bytes(), want}, off);
            if (!r.ok()) {
              self->task_error_ = r.status();
              return;
            }
            self->raw_[i] = self->len_[i] = r.value;
            return;
          }
          Buffer& raw = reactor::thread_scratch(std::max(kRawChunk, want));
          auto r = self->file_.read_at({raw.bytes(), want}, off);
          if (!r.ok()) {
            self->task_error_ = r.status();
            return;
          }
          self->raw_[i] = r.value;
          self->len_[i] =
              self->o_.transform == Transform::kCustom
                  ? self->o_.custom({raw.bytes(), r.value}, self->bufs_[i].data())
                  : self->o_.encoder->encode({raw.bytes(), r.value}, self->bufs_[i].data());
        },
        [self, ref, i, want] { self->chunk_ready(i, want); });
  }

  void chunk_ready(int i, size_t want) {
    reading_ = false;
    if (!alive()) return;
    if (!task_error_.ok()) {
      FSRV_LOG_WARN("send: read failed: %s", task_error_.error.c_str());
      peer_.body_abort();  // mid-stream: the framing cannot turn into an error
      return;
    }
    bool first = next_ == o_.offset;
    next_ += raw_[i];
    bool last = raw_[i] < want || next_ >= end_;
    if (last && next_ < end_) {
      // The file shrank: the announced framing cannot be kept.
      peer_.body_abort();
      return;
    }
    uv_buf_t bufs[3];
    unsigned n = 0;
    if (first && !o_.prefix.empty()) {
      bufs[n++] = uv_buf_init(o_.prefix.data(), static_cast<unsigned>(o_.prefix.size()));
    }
    bufs[n++] = uv_buf_init(bufs_[i].data(), static_cast<unsigned>(len_[i]));
    if (last && !o_.suffix.empty()) {
      bufs[n++] = uv_buf_init(o_.suffix.data(), static_cast<unsigned>(o_.suffix.size()));
    }
    auto self = shared_from_this();
    uint64_t raw = raw_[i];
    peer_.body_write(bufs, n, last, [self, i, last, raw](int status) {
      self->busy_[i] = false;
      if (status != 0) return;  // closing: the handler's on_close counts it
      // A big buffer the current (shrunk) chunk size does not need goes.
      if (self->bufs_[i].capacity() > self->out_size(self->chunk_) * 2) {
        self->bufs_[i] = Buffer();
      }
      self->sent_ += raw;
      if (last) {
        self->finish({});
      } else {
        self->pump();
      }
    });
    // The client keeps up when the socket took the whole chunk at once and
    // the kernel holds no more than this chunk (the earlier ones reached
    // the client): the next may be twice as big. A chunk that had to queue
    // brings the size back to small.
    if (o_.chunk != 0) {
      chunk_ = o_.chunk;  // fixed by the peer
    } else if (peer_.body_queued() > 0) {
      chunk_ = kFirstRawChunk;
    } else if (peer_.body_unacked() <= len_[i]) {
      chunk_ = std::min(chunk_ * 2, kRawChunk);
    }
    pump();  // encode the next chunk while this one is written
  }

  /// Bytes of chunk buffer that `raw` file bytes need after the transform.
  size_t out_size(size_t raw) const {
    switch (o_.transform) {
      case Transform::kBase64:
        return codec::encoded_size(raw);
      case Transform::kCustom:
        return raw * o_.expansion;
      default:
        return raw;
    }
  }

  reactor::TransferPeer& peer_;  ///< the peer the chunks go to
  reactor::Executor& ex_;
  storage::ReadFile file_;
  SendOptions o_;
  std::function<void(Status)> done_;
  std::string framing_;
  reactor::SendTransform transform_;  ///< base64 without TLS: send_file's encoder
  Buffer bufs_[kChunks];
  bool busy_[kChunks] = {};
  size_t raw_[kChunks] = {};
  size_t len_[kChunks] = {};
  Status task_error_;
  size_t chunk_ = kFirstRawChunk;  ///< raw bytes of the next chunk
  uint64_t next_ = 0;              ///< next file offset to read
  uint64_t end_ = 0;
  uint64_t sent_ = 0;
  bool reading_ = false;
  bool cancelled_ = false;
};

}  // namespace

std::shared_ptr<FileSender> send_file(reactor::TransferPeer& peer, reactor::Executor& executor,
                                      storage::ReadFile file, SendOptions options,
                                      std::function<void(Status)> done) {
  auto s = std::make_shared<Sender>(peer, executor, std::move(file), std::move(options),
                                    std::move(done));
  s->begin();
  return s;
}

}  // namespace fsrv::transfer
