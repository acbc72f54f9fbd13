// Blocking client for the course file protocol; see fsrv/client/client.hpp.
//
// The socket is non-blocking and every wait goes through poll() with the
// per-operation timeout, so a stalled server turns into kConnection instead
// of a hang. One receive buffer (kRecvBufferBytes) serves every reply: small
// replies accumulate in it; a GET's base64 is decoded straight out of it into
// one reusable output buffer. An UPLOAD encodes straight into one reusable
// send buffer. Nothing grows with the file size.

#include "fsrv/client/client.hpp"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

namespace fsrv::client {
namespace {

/// Receive buffer: 256 KiB, so it and the GET's decoded output (192 KiB)
/// stay in a core's L2 between the kernel's copy, the decode and the write
/// of each piece. At 4 MiB (one recv() draining a loopback queue) every
/// pass went to memory, and a one-shot filecli paid ~1,800 page faults to
/// zero its 7 MiB: a 100 MB GET from a memory server went at 1,219 MB/s
/// against 1,748 now (medians of 9, docs/PERFORMANCE.md). A longer small
/// reply (a LIST) spills into a string as before.
constexpr size_t kRecvBufferBytes = 256u << 10;
/// Raw file bytes encoded per UPLOAD chunk: a multiple of 3 (so chunks
/// concatenate to one valid base64 stream) of about 1.5 MiB, which makes a
/// 2 MiB base64 send buffer.
constexpr size_t kUploadChunkBytes = 3u * 512u * 1024u;
static_assert(kUploadChunkBytes % 3 == 0, "upload chunks must be whole base64 quanta");
/// Longest GET reply prefix (everything before the base64): the status and
/// the file name; anything longer is not a GET reply we understand.
constexpr size_t kMaxGetPrefixBytes = 64u * 1024u;
/// Longest small (non-GET) reply: a LIST of many thousands of names fits;
/// past this we give up rather than grow without bound.
constexpr size_t kMaxReplyBytes = 64u << 20;
/// How long we keep listening for the server's explanation after it stopped
/// reading our UPLOAD (it usually sent an ERROR reply and closed).
constexpr int kLateReplyTimeoutMs = 2000;

constexpr std::string_view kReplyEnd = "\r\n\r\n";
constexpr std::string_view kDataFileKey = "\"data_file\"";

/// Deletes a cJSON tree at scope exit.
struct JsonDeleter {
  void operator()(cJSON* json) const { cJSON_Delete(json); }
};
using JsonPtr = std::unique_ptr<cJSON, JsonDeleter>;

Result make_error(ErrorKind kind, std::string message) {
  Result r;
  r.kind = kind;
  r.message = std::move(message);
  return r;
}

std::string errno_text(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

/// Milliseconds left until `deadline`, never negative.
int ms_left(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

/// Shortens `text` for error messages (a reply may be megabytes).
std::string excerpt(std::string_view text) {
  constexpr size_t kMaxExcerpt = 200;  // enough to recognise the reply
  std::string out(text.substr(0, kMaxExcerpt));
  if (text.size() > kMaxExcerpt) out += "...";
  return out;
}

/// Turns one complete JSON reply (without the "\r\n\r\n") into a Result:
/// status OK -> kNone, ERROR -> kServer with its data text, else kProtocol.
Result parse_small_reply(std::string_view text) {
  JsonPtr root(cJSON_ParseWithLength(text.data(), text.size()));
  if (!root || !cJSON_IsObject(root.get())) {
    return make_error(ErrorKind::kProtocol, "reply is not a JSON object: " + excerpt(text));
  }
  const cJSON* status = cJSON_GetObjectItemCaseSensitive(root.get(), "status");
  if (!cJSON_IsString(status)) {
    return make_error(ErrorKind::kProtocol, "reply has no \"status\" string: " + excerpt(text));
  }
  Result r;
  r.json = std::string(text);
  std::string_view st = status->valuestring;
  if (st == "OK") return r;
  if (st == "ERROR") {
    const cJSON* data = cJSON_GetObjectItemCaseSensitive(root.get(), "data");
    r.kind = ErrorKind::kServer;
    if (cJSON_IsString(data)) {
      r.message = data->valuestring;
    } else if (data != nullptr) {
      char* printed = cJSON_PrintUnformatted(data);
      r.message = printed ? printed : "server error";
      cJSON_free(printed);
    } else {
      r.message = "server error (no message)";
    }
    return r;
  }
  return make_error(ErrorKind::kProtocol, "unknown reply status \"" + std::string(st) + "\"");
}

/// True if `name` can travel in a request line at all.
bool name_is_sendable(std::string_view name) {
  return name.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

class SocketClient final : public Client {
 public:
  SocketClient(int fd, const Options& options)
      : fd_(fd), options_(options), recv_(kRecvBufferBytes) {}
  ~SocketClient() override {
    if (fd_ >= 0) ::close(fd_);
  }
  SocketClient(const SocketClient&) = delete;
  SocketClient& operator=(const SocketClient&) = delete;

  Result command(std::string_view line) override {
    if (Result r = usable(); !r.ok()) return r;
    if (line.find_first_of("\r\n") != std::string_view::npos) {
      return make_error(ErrorKind::kLocal, "request line contains a line break");
    }
    std::string request(line);
    request += "\r\n";
    if (Result r = send_all(request.data(), request.size()); !r.ok()) return fail(std::move(r));
    return read_small_reply(kMaxReplyBytes);
  }

  Result get(std::string_view name, const SinkFn& sink, const ProgressFn& progress) override {
    if (Result r = usable(); !r.ok()) return r;
    if (!name_is_sendable(name))
      return make_error(ErrorKind::kLocal, "file name contains a line break or NUL");
    std::string request = "GET " + quote_name(name) + "\r\n";
    if (Result r = send_all(request.data(), request.size()); !r.ok()) return fail(std::move(r));

    // 1. The prefix: either a small reply (an error) or `..."data_file":"`.
    size_t body = 0;  // offset in recv_ of the first base64 character
    for (;;) {
      std::string_view have = buffered();
      size_t key = have.find(kDataFileKey);
      size_t end = have.find(kReplyEnd);
      if (end != std::string_view::npos && (key == std::string_view::npos || end < key)) {
        Result r = take_small_reply(end);
        if (r.ok())
          return fail(
              make_error(ErrorKind::kProtocol, "GET reply has no data_file: " + excerpt(r.json)));
        return r;
      }
      if (key != std::string_view::npos) {
        // Skip `:` and the opening quote, tolerating JSON whitespace.
        size_t i = key + kDataFileKey.size();
        auto skip_ws = [&] {
          while (i < have.size() &&
                 (have[i] == ' ' || have[i] == '\t' || have[i] == '\r' || have[i] == '\n'))
            ++i;
        };
        skip_ws();
        bool complete = false;
        if (i < have.size()) {
          if (have[i] != ':')
            return fail(make_error(ErrorKind::kProtocol, "malformed GET reply near data_file"));
          ++i;
          skip_ws();
          if (i < have.size()) {
            if (have[i] != '"') {
              return fail(
                  make_error(ErrorKind::kProtocol, "data_file is not a string in the GET reply"));
            }
            complete = true;
          }
        }
        if (complete) {
          // The prefix + `""}` must be a valid object saying status OK.
          std::string head(have.substr(0, i + 1));
          head += "\"}";
          Result check = parse_small_reply(head);
          if (check.kind == ErrorKind::kServer) {
            return fail(
                make_error(ErrorKind::kProtocol, "GET reply carries data_file with status ERROR"));
          }
          if (!check.ok())
            return fail(
                make_error(ErrorKind::kProtocol, "malformed GET reply prefix: " + excerpt(head)));
          body = begin_ + i + 1;
          break;
        }
      }
      if (have.size() > kMaxGetPrefixBytes) {
        return fail(make_error(
            ErrorKind::kProtocol,
            "GET reply prefix longer than " + std::to_string(kMaxGetPrefixBytes) + " bytes"));
      }
      if (Result r = fill(); !r.ok()) return fail(std::move(r));
    }
    begin_ = body;

    // 2. The base64, decoded as it arrives, up to the closing quote.
    std::unique_ptr<codec::Decoder> decoder = codec::make_decoder(options_.codec);
    if (decoded_.size() < codec::decode_capacity(kRecvBufferBytes)) {
      decoded_.resize(codec::decode_capacity(kRecvBufferBytes));
    }
    uint64_t total = 0;
    for (;;) {
      if (begin_ == end_) {
        if (Result r = fill(); !r.ok()) return fail(std::move(r));
      }
      const char* start = recv_.data() + begin_;
      size_t avail = end_ - begin_;
      const void* quote = std::memchr(start, '"', avail);
      size_t n = quote ? static_cast<size_t>(static_cast<const char*>(quote) - start) : avail;
      codec::DecodeStatus st = decoder->update(std::span<const char>(start, n), decoded_.data());
      if (!st.ok)
        return fail(make_error(ErrorKind::kProtocol, "bad base64 in data_file: " + st.error));
      begin_ += n;
      if (st.written > 0) {
        if (!sink(std::span<const uint8_t>(decoded_.data(), st.written))) {
          return fail(make_error(ErrorKind::kLocal, "download aborted by the sink"));
        }
        total += st.written;
        if (progress) progress(total, 0);
      }
      if (quote) {
        ++begin_;  // the closing quote
        break;
      }
    }
    codec::DecodeStatus fin = decoder->finish(decoded_.data());
    if (!fin.ok)
      return fail(make_error(ErrorKind::kProtocol, "bad base64 in data_file: " + fin.error));

    // 3. The tail: `}` and the reply terminator.
    constexpr std::string_view kTail = "}\r\n\r\n";
    while (end_ - begin_ < kTail.size()) {
      if (Result r = fill(); !r.ok()) return fail(std::move(r));
    }
    if (buffered().substr(0, kTail.size()) != kTail) {
      return fail(make_error(ErrorKind::kProtocol,
                             "GET reply does not end with }\\r\\n\\r\\n after data_file"));
    }
    begin_ += kTail.size();
    compact();
    Result r;
    r.bytes = total;
    return r;
  }

  Result upload(std::string_view name, uint64_t size, const SourceFn& source,
                const ProgressFn& progress) override {
    if (Result r = usable(); !r.ok()) return r;
    if (!name_is_sendable(name))
      return make_error(ErrorKind::kLocal, "file name contains a line break or NUL");
    std::string head = "UPLOAD " + quote_name(name) + " ";
    if (Result r = send_or_reply(head.data(), head.size()); !r.ok()) return r;

    if (raw_.size() < kUploadChunkBytes) raw_.resize(kUploadChunkBytes);
    if (encoded_.size() < codec::encoded_size(kUploadChunkBytes))
      encoded_.resize(codec::encoded_size(kUploadChunkBytes));
    const codec::Encoder& enc = codec::encoder(options_.codec);
    uint64_t done = 0;
    while (done < size) {
      // Fill a whole chunk (sources may return short counts) so that only
      // the last chunk can be a partial base64 quantum.
      size_t want = static_cast<size_t>(std::min<uint64_t>(kUploadChunkBytes, size - done));
      size_t got = 0;
      while (got < want) {
        long n = source(std::span<uint8_t>(raw_.data() + got, want - got));
        if (n < 0) return fail(make_error(ErrorKind::kLocal, "reading the upload source failed"));
        if (n == 0) {
          return fail(make_error(ErrorKind::kLocal, "upload source ended after " +
                                                        std::to_string(done + got) + " of " +
                                                        std::to_string(size) + " bytes"));
        }
        got += static_cast<size_t>(n);
      }
      size_t chars = enc.encode(std::span<const uint8_t>(raw_.data(), got), encoded_.data());
      if (Result r = send_or_reply(encoded_.data(), chars); !r.ok()) return r;
      done += got;
      if (progress) progress(done, size);
    }
    if (Result r = send_or_reply("\r\n", 2); !r.ok()) return r;
    Result r = read_small_reply(kMaxReplyBytes);
    if (r.ok()) r.bytes = size;
    return r;
  }

 private:
  /// Bytes received but not consumed yet.
  std::string_view buffered() const {
    return std::string_view(recv_.data() + begin_, end_ - begin_);
  }

  /// Moves unconsumed bytes to the front of the receive buffer.
  void compact() {
    if (begin_ == end_) {
      begin_ = end_ = 0;
    } else if (begin_ > 0) {
      std::memmove(recv_.data(), recv_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
  }

  /// Refuses further requests once a reply was left half-read.
  Result usable() const {
    if (broken_)
      return make_error(ErrorKind::kConnection, "connection unusable after an earlier failure");
    return {};
  }

  /// Marks the connection unusable (the stream position is unknown) and
  /// passes the result through.
  Result fail(Result r) {
    broken_ = true;
    return r;
  }

  /// Waits up to timeout_ms for `events` on the socket.
  Result wait(short events, int timeout_ms, short* revents) {
    pollfd p{fd_, events, 0};
    for (;;) {
      int n = ::poll(&p, 1, timeout_ms);
      if (n > 0) {
        *revents = p.revents;
        return {};
      }
      if (n == 0) {
        return make_error(ErrorKind::kConnection, "timed out after " + std::to_string(timeout_ms) +
                                                      " ms waiting for the server");
      }
      if (errno != EINTR) return make_error(ErrorKind::kConnection, errno_text("poll", errno));
    }
  }

  /// Receives more bytes after end_ (compacting first when the buffer's
  /// tail is full). EOF and errors are kConnection.
  Result fill() {
    if (end_ == recv_.size()) compact();
    if (end_ == recv_.size())
      return make_error(ErrorKind::kProtocol, "reply does not fit the receive buffer");
    for (;;) {
      ssize_t n = ::recv(fd_, recv_.data() + end_, recv_.size() - end_, 0);
      if (n > 0) {
        end_ += static_cast<size_t>(n);
        return {};
      }
      if (n == 0)
        return make_error(ErrorKind::kConnection,
                          "server closed the connection in the middle of a reply");
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        return make_error(ErrorKind::kConnection, errno_text("recv", errno));
      short revents = 0;
      if (Result r = wait(POLLIN, options_.timeout_ms, &revents); !r.ok()) return r;
    }
  }

  /// Parses the reply that ends at offset `end` of buffered() and consumes it.
  Result take_small_reply(size_t end) {
    std::string_view text = buffered().substr(0, end);
    Result r = parse_small_reply(text);
    begin_ += end + kReplyEnd.size();
    compact();
    if (r.kind == ErrorKind::kProtocol) broken_ = true;
    return r;
  }

  /// Reads one reply ended by "\r\n\r\n" of at most `limit` bytes. Replies
  /// larger than the receive buffer are collected in a string.
  Result read_small_reply(size_t limit) {
    size_t searched = 0;  // bytes of buffered() already searched
    std::string big;      // only for replies larger than the receive buffer
    for (;;) {
      std::string_view have = buffered();
      size_t from = searched >= 3 ? searched - 3 : 0;
      size_t end = have.find(kReplyEnd, from);
      if (end != std::string_view::npos) {
        if (big.empty()) return take_small_reply(end);
        big.append(have.substr(0, end));
        begin_ += end + kReplyEnd.size();
        compact();
        Result r = parse_small_reply(big);
        if (r.kind == ErrorKind::kProtocol) broken_ = true;
        return r;
      }
      searched = have.size();
      if (big.size() + have.size() > limit) {
        return fail(make_error(ErrorKind::kProtocol,
                               "reply longer than " + std::to_string(limit) + " bytes"));
      }
      if (begin_ == 0 && end_ == recv_.size()) {
        // Move all but the last 3 bytes (a terminator may straddle) out.
        size_t move = have.size() - 3;
        big.append(have.substr(0, move));
        begin_ += move;
        searched = 3;
      }
      if (Result r = fill(); !r.ok()) return fail(std::move(r));
    }
  }

  /// Sends every byte or fails with kConnection.
  Result send_all(const char* data, size_t size) { return send_bytes(data, size, false); }

  /// Like send_all, but for an UPLOAD body: if the server answers before we
  /// are done (it refused the upload) or stops reading, returns its reply
  /// (usually kServer) instead of a bare send error. Any non-OK return has
  /// already marked the connection broken.
  Result send_or_reply(const char* data, size_t size) { return send_bytes(data, size, true); }

  /// The send loop of both: poll for POLLOUT (and, for an upload body,
  /// POLLIN: the server's early reply) whenever the socket is full.
  Result send_bytes(const char* data, size_t size, bool upload_body) {
    const short events = upload_body ? (POLLOUT | POLLIN) : POLLOUT;
    while (size > 0) {
      ssize_t n = ::send(fd_, data, size, MSG_NOSIGNAL);
      if (n > 0) {
        data += n;
        size -= static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        Result e = make_error(ErrorKind::kConnection, errno_text("send", errno));
        return upload_body ? early_reply(std::move(e)) : e;
      }
      short revents = 0;
      if (Result r = wait(events, options_.timeout_ms, &revents); !r.ok()) {
        return upload_body ? fail(std::move(r)) : r;
      }
      if (upload_body && (revents & POLLIN) && !(revents & POLLOUT)) {
        return early_reply(
            make_error(ErrorKind::kProtocol, "server replied before the upload was complete"));
      }
    }
    return {};
  }

  /// The server spoke (or hung up) in the middle of our upload: read its
  /// reply if one comes soon; otherwise report `fallback`.
  Result early_reply(Result fallback) {
    int saved = options_.timeout_ms;
    options_.timeout_ms = kLateReplyTimeoutMs;
    Result r = read_small_reply(kMaxGetPrefixBytes);
    options_.timeout_ms = saved;
    broken_ = true;  // the server's view of our request line is unknowable
    if (r.kind == ErrorKind::kServer) return r;
    if (r.ok())
      return make_error(ErrorKind::kProtocol, "server replied OK before the upload was complete");
    return fallback;
  }

  int fd_;
  Options options_;
  std::vector<char> recv_;
  size_t begin_ = 0;              ///< first unconsumed byte in recv_
  size_t end_ = 0;                ///< one past the last received byte in recv_
  std::vector<uint8_t> decoded_;  ///< GET: decoder output, reused
  std::vector<uint8_t> raw_;      ///< UPLOAD: file bytes of one chunk, reused
  std::vector<char> encoded_;     ///< UPLOAD: base64 of one chunk, reused
  bool broken_ = false;
};

/// Non-blocking connect to one address within timeout_ms. Returns the fd
/// or -1 with *error set.
int connect_one(const addrinfo* ai, int timeout_ms, int buffer_bytes, std::string* error) {
  int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
  if (fd < 0) {
    *error = errno_text("socket", errno);
    return -1;
  }
  if (buffer_bytes > 0) {
    (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer_bytes,
                       sizeof buffer_bytes);  // best effort: capped
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof buffer_bytes);
  }
  if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) return fd;
  if (errno != EINPROGRESS) {
    *error = errno_text("connect", errno);
    ::close(fd);
    return -1;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  pollfd p{fd, POLLOUT, 0};
  for (;;) {
    int n = ::poll(&p, 1, ms_left(deadline));
    if (n > 0) break;
    if (n == 0) {
      *error = "connect: timed out after " + std::to_string(timeout_ms) + " ms";
      ::close(fd);
      return -1;
    }
    if (errno != EINTR) {
      *error = errno_text("poll", errno);
      ::close(fd);
      return -1;
    }
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) {
    *error = errno_text("connect", err);
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

std::unique_ptr<Client> Client::connect(const Options& options, std::string* error) {
  std::string scratch;
  if (error == nullptr) error = &scratch;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* list = nullptr;
  std::string port = std::to_string(options.port);
  int rc = ::getaddrinfo(options.host.c_str(), port.c_str(), &hints, &list);
  if (rc != 0) {
    *error = "cannot resolve " + options.host + ": " + ::gai_strerror(rc);
    return nullptr;
  }
  std::string last = "no address for " + options.host;
  int fd = -1;
  for (const addrinfo* ai = list; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = connect_one(ai, options.timeout_ms, options.socket_buffer_bytes, &last);
  }
  ::freeaddrinfo(list);
  if (fd < 0) {
    *error = options.host + ":" + port + ": " + last;
    return nullptr;
  }
  return std::make_unique<SocketClient>(fd, options);
}

std::string quote_name(std::string_view name) {
  // shlex.split (POSIX mode, whitespace_split) only treats whitespace,
  // quotes and backslash specially; everything else is a word character.
  constexpr std::string_view kSpecial = " \t\n\r\v\f'\"\\";
  if (!name.empty() && name.find_first_of(kSpecial) == std::string_view::npos)
    return std::string(name);
  // Inside double quotes shlex unescapes only \" and \\.
  std::string out = "\"";
  for (char c : name) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace fsrv::client
