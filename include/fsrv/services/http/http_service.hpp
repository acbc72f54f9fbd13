#pragma once
// The HTTP service: the course's HTTP file server (seed 004,
// tugas 6-8) as an HTTP/1.1 server (RFC 9110, RFC 9112) on the same storage
// root and name rules as the file protocol. This header owns its
// registration (info()), the per-process HttpService, the web pages and
// the reply wording (the status of a storage error, error bodies, the
// Server field, the fields every reply head starts with: head_fields,
// http_reply.cpp). Each connection is an
// HttpSession (http_session.hpp): it drives a RequestParser (llhttp),
// answers one request at a time (pipelined requests wait, the parser
// pauses after each message), sends file bodies with sendfile(2) through
// transfer::send_file and streams uploads (POST /upload/{name}, PUT
// /{name}) into a transfer::UploadSink. Routes, limits and status codes:
// docs/services/http.md.

#include <array>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fsrv/core/version.hpp"
#include "fsrv/services/http/http_options.hpp"
#include "fsrv/services/http/http_util.hpp"
#include "fsrv/services/service.hpp"
#include "fsrv/storage/small_file_cache.hpp"

namespace fsrv::services::http {

/// The `http` service's registration (src/services/registry.cpp); course
/// default ports 8885 (the seed's thread-pool HTTP server), 10001 and
/// 10002 (tugas 6 and 8).
const ServiceInfo& info();

/// One file of the web UI's list (as GET /listdir reports it).
struct ListedFile {
  std::string name;      ///< as stored (valid per storage::validate_name)
  uint64_t size = 0;     ///< bytes
  int64_t mtime_ns = 0;  ///< modification time, ns since the epoch
};

/// The web UI served at GET / (src/services/http/web_page.cpp): one
/// self-contained HTML page (CSS and JS embedded, no CDN) whose heading is
/// `<h1>SERVER HTTP</h1>` (tugas 6): file list, upload with progress and
/// drag and drop, delete with confirmation. `files` is rendered into the
/// page's table (names HTML-escaped, links percent-encoded), so a client
/// without JavaScript sees the list; the page's script only refreshes it
/// after an upload or a delete.
std::string web_page(const std::vector<ListedFile>& files);

/// The course's form page of tugas 8 (GET /sending.html): one text field
/// `kirim`, method post.
std::string_view sending_page();

/// Socket read size: one typical read; the parser keeps a partial head
/// itself (up to kMaxHeadBytes), so the buffer never has to hold more.
/// A connection holds one only from the moment its socket is readable until
/// its input is parsed (nginx's model): an idle keep-alive connection holds
/// none.
inline constexpr size_t kReadBuffer = 64 * 1024;

/// Read buffers a loop keeps for reuse once connections give them back
/// (1 MiB): taking one is then a pointer move, not a 64 KiB allocation and
/// clearing per request; beyond this many, returned buffers are freed.
inline constexpr size_t kSpareReadBuffers = 16;

/// Status codes counted as "http/status/<code>" in STATS and /stats.
inline constexpr int kCountedStatuses[] = {100, 200, 201, 204, 206, 304, 400, 403, 404, 405, 408,
                                           411, 413, 414, 416, 431, 500, 501, 503, 505, 507};

/// The Server field (RFC 9110 section 10.2.4): "fsrv/VERSION".
inline const std::string kServer = server_token();

/// The type of the service's own text bodies (errors, confirmations).
inline constexpr std::string_view kText = "text/plain; charset=utf-8";

/// A reply's head up to its Connection field: status line, Date (`date`),
/// Server, `extra` (complete field lines), Content-Type unless `type` is
/// empty, Content-Length unless `length` < 0. `reserve`: bytes the caller
/// appends after it (reserved, so no reallocation).
std::string head_fields(int status, std::string_view date, std::string_view type, int64_t length,
                        std::string_view extra = {}, size_t reserve = 0);

/// HTTP status for a storage failure (the file protocol words the same
/// codes as text, src/services/file/reply.cpp).
int status_for(Errc code);

/// Short text body of the status_for(s.code) that answers the storage
/// failure `s` (`name`: the file concerned).
std::string error_body(const Status& s, const std::string& name);

/// The http service of one serving process (one per listener policy):
/// counts statuses, requests and upload bytes, keeps the Date and access
/// log clocks, lends read buffers, holds the small-file cache and the form
/// bodies' budget; makes one HttpSession per connection.
class HttpService final : public Service {
 public:
  explicit HttpService(Shared& shared) : Service(shared, info()) {
    for (int s : kCountedStatuses)
      status_[static_cast<size_t>(s)] = counter("status/" + std::to_string(s));
    requests_ = counter("requests");
    uploads_ = counter("uploads/bytes");
  }
  /// Counts one reply of `status` ("http/status/CODE"; every final status
  /// is also one of "http/requests").
  void count(int status) {
    if (status != 100) shared_.stats->add(requests_);  // 100 precedes the final status
    if (status >= 0 && status < static_cast<int>(status_.size())) {
      shared_.stats->add(status_[static_cast<size_t>(status)]);
    }
  }
  /// Counts the bytes of one stored upload ("http/uploads/bytes").
  void count_upload(uint64_t bytes) { shared_.stats->add(uploads_, bytes); }
  /// Takes `n` bytes of the form bodies' memory budget (kFormBodyBudget,
  /// shared by every connection of this process); false if over it.
  bool take_form_bytes(size_t n) {
    if (form_bytes_ + n > kFormBodyBudget) return false;
    form_bytes_ += n;
    return true;
  }
  /// Gives back `n` bytes taken with take_form_bytes.
  void give_form_bytes(size_t n) { form_bytes_ -= n; }

  /// The Date field value (RFC 9110 section 6.6.1) and the access log's
  /// time, recomputed once per second.
  const std::string& date() {
    refresh_time();
    return date_;
  }
  const std::string& log_time() {
    refresh_time();
    return log_time_;
  }
  /// A kReadBuffer-sized read buffer (a spare one when there is one).
  std::vector<char> take_read_buffer() {
    if (spare_reads_.empty()) return std::vector<char>(kReadBuffer);
    std::vector<char> b = std::move(spare_reads_.back());
    spare_reads_.pop_back();
    return b;
  }
  /// Returns a buffer from take_read_buffer (kept for reuse up to
  /// kSpareReadBuffers; grown or surplus buffers are freed).
  void give_read_buffer(std::vector<char>&& b) {
    if (b.size() == kReadBuffer && spare_reads_.size() < kSpareReadBuffers) {
      spare_reads_.push_back(std::move(b));
    }
    b = std::vector<char>();
  }
  /// Small files of the root kept by this loop (GET answers them without
  /// an executor hop); made at first use.
  storage::SmallFileCache& file_cache() {
    if (!file_cache_) {
      const double valid_s = shared_.config->services.get<Options>().file_cache_valid_s;
      file_cache_ = std::make_unique<storage::SmallFileCache>(
          *shared_.root, storage::SmallFileCache::kDefaultBudget,
          static_cast<int64_t>(valid_s * 1e9));
    }
    return *file_cache_;
  }

 protected:
  std::unique_ptr<reactor::ConnectionHandler> create_handler(reactor::Connection& conn) override;

 private:
  /// Form echo bodies (tugas 8) are held whole to be parsed: 64 MiB for
  /// all connections of a process (64 bodies at kMaxMultipartBody), so 400
  /// clients posting 1 MB each get 503, not 400 MB of RSS.
  static constexpr size_t kFormBodyBudget = 64 << 20;
  size_t form_bytes_ = 0;

  void refresh_time() {
    time_t now = time(nullptr);
    if (now == date_second_) return;
    date_second_ = now;
    date_ = format_http_date(now);
    tm t{};
    gmtime_r(&now, &t);
    char buf[64];
    strftime(buf, sizeof buf, "%d/%b/%Y:%H:%M:%S +0000", &t);
    log_time_ = buf;
  }

  std::array<stats::Counter, 600> status_{};
  stats::Counter requests_, uploads_;
  time_t date_second_ = -1;
  std::string date_, log_time_;
  std::unique_ptr<storage::SmallFileCache> file_cache_;
  std::vector<std::vector<char>> spare_reads_;
};

}  // namespace fsrv::services::http
