// The file service's connection (docs/PROTOCOL.md): a kit::FileDialect
// whose framing is request.cpp's (a bad UPLOAD's line dropped up to its
// end, the legacy clients' silence rule), whose replies are reply.cpp's
// JSON, and which streams LIST from a shared snapshot, runs SIZE and DELETE
// on the executor and writes an access log line per request.

#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "fsrv/codec/base64.hpp"
#include "fsrv/core/limits.hpp"
#include "fsrv/services/file/file_service.hpp"
#include "fsrv/services/file/reply.hpp"
#include "fsrv/services/file/request.hpp"
#include "fsrv/services/kit/file_dialect.hpp"
#include "fsrv/services/kit/verb_counters.hpp"

namespace fsrv::services::file {

namespace {

using Counters = kit::VerbCounters<cmd_name, kCmdCount>;
class FileSession;
using FileService = kit::VerbService<FileSession, Counters, info>;

/// A streamed LIST is written in pieces of about this many bytes, and at
/// most kListBytesPerTurn per loop turn (then it yields, or waits for the
/// socket when congested): a 10 MB listing never sits in one buffer.
constexpr size_t kListPiece = 16 * 1024;
constexpr size_t kListBytesPerTurn = 256 * 1024;

/// The file protocol's UPLOAD payload ends with its line.
const kit::PayloadEnd kLineEnd = kit::PayloadEnd::terminator("\r\n");
/// An UPLOAD cut by the client's EOF before its line ended.
constexpr std::string_view kInterrupted =
    "upload interrupted: connection closed before the end of the line";

/// One connection speaking the file protocol: one request at a time, at
/// most kit::kRequestsPerTurn per loop turn; replies are JSON objects ended
/// by "\r\n\r\n".
class FileSession final : public kit::FileDialect<Cmd, Counters> {
 public:
  using FileDialect::FileDialect;

  void observe_payload(std::string_view bytes) override {
    if (head_.size() < kUploadLookahead) {
      head_.append(bytes.substr(0, kUploadLookahead - head_.size()));
    }
  }
  void on_timer() override {
    if (loop_.busy() || in_.blank()) return;
    // The course's original client sends "LIST" or "GET name" with no
    // terminator and waits for the reply (docs/PROTOCOL.md, legacy clients;
    // hardening point 8: on_silence).
    Request req;
    if (on_silence(in_.view(), &req) == Silence::kWait) return;
    in_.clear();
    handle_request(req);
    process_input();
  }
  void on_idle_timeout() override { abort_request(kit::idle_words(config_)); }
  // The payload or reply moved slower than --min-rate over its window.
  void on_too_slow() override {
    char why[128];
    snprintf(why, sizeof why, "too slow: under %.0f bytes/s over %.0f s", config_.min_rate,
             config_.min_rate_window_s);
    abort_request(why);
  }
  // A request line not complete within --request-timeout of its first byte
  // (slowloris): the client is told, the connection closes.
  void on_request_timeout() override {
    if (in_payload() && !dropping_) return;  // a transfer: min_rate's business
    conn_.stop_timer();
    if (!loop_.busy()) begin(Cmd::kUnknown);
    abort_request(kit::request_timeout_words(config_));
  }
  void on_drain() override { list_ ? pump_list() : process_input(); }
  void on_close() override {
    if (request_open_) finish(current_, false, 0);
    list_.reset();
    FileDialect::on_close();
  }

 private:
  void process_input() override {
    if (!loop_.pump([this] { return next_request(); })) return;
    end_of_input(config_.legacy_idle_ms, [this](std::string_view rest) {
      // A final unterminated request before the client's half-close (it
      // starts non-blank: next_frame skipped blanks).
      bool upload =
          command_from_verb(rest.substr(0, rest.find_first_of(" \t\r\n"))) == Cmd::kUpload;
      handle_request(upload ? Request{Cmd::kUpload, {}, std::string(kInterrupted)}
                            : parse_line(rest));
    });
  }
  bool next_request() {
    Frame f = next_frame(in_.view());
    if (f.kind == Frame::kNeedMore) {
      in_.consume(f.consumed);
      // A request line must be complete within --request-timeout of its
      // first byte (the connection's request timer: on_request_timeout).
      if (in_.empty()) conn_.request_head_done();
      return false;
    }
    conn_.request_head_done();
    if (f.kind == Frame::kTooLong) {
      // Answered now, not once the line ends (it can be megabytes of base64
      // a client sends before it reads); the rest is dropped silently.
      begin(Cmd::kUnknown);
      answer(Cmd::kUnknown, false,
             error_text(!f.error.empty() ? f.error
                                         : "request line too long (limit " +
                                               std::to_string(limits::kMaxLine) + " bytes)"));
      drop("", kLineEnd);
    } else if (f.kind == Frame::kUploadHeader) {
      in_.consume(f.consumed);
      start_upload(std::move(f.name));
    } else {
      Request req = parse_line(f.line);
      in_.consume(f.consumed);
      handle_request(req);
    }
    return true;
  }
  void handle_request(const Request& req) {
    begin(req.cmd, req.args.empty() ? std::string() : req.args[0]);
    if (!req.error.empty()) return answer(req.cmd, false, error_text(req.error));
    if (req.cmd == Cmd::kAuth) return start_auth(req.args[0], req.args[1]);
    if (req.cmd != Cmd::kPing && req.cmd != Cmd::kQuit) {
      Access access = req.cmd == Cmd::kDelete ? Access::kDelete : Access::kRead;
      if (std::string why = refused(access); !why.empty()) {
        return answer(req.cmd, false, error_text(why));
      }
    }
    switch (req.cmd) {
      case Cmd::kList:
        return stream_list();
      case Cmd::kGet:
        return start_get(req.args[0]);
      case Cmd::kSize:
        return run_simple(Cmd::kSize, [name = req.args[0]](const storage::Root& root) {
          auto r = root.size(name);
          return r.ok() ? std::pair{true, ok_size(name, r.value)}
                        : std::pair{false, error_text(kit::storage_words(r.status(), name))};
        });
      case Cmd::kDelete:
        return run_simple(Cmd::kDelete, [name = req.args[0]](const storage::Root& root) {
          Status s = root.remove(name);
          return s.ok() ? std::pair{true, ok_text(name + " deleted")}
                        : std::pair{false, error_text(kit::storage_words(s, name))};
        });
      case Cmd::kStats:
        return answer(Cmd::kStats, true, ok_json(shared_.stats_json()));
      case Cmd::kPing:
        return answer(Cmd::kPing, true, ok_text("connected"));
      case Cmd::kQuit:
        answer(Cmd::kQuit, true, ok_text("bye"));
        return loop_.quit();
      default:
        // next_frame() turns every "UPLOAD name <payload>" into a streamed
        // upload; a whole UPLOAD line only reaches here through the legacy or
        // half-close paths, which refuse uploads before calling us.
        return answer(req.cmd, false, error_text("UPLOAD must end with \\r\\n"));
    }
  }
  /// Opens the request (its access log record, about `name`).
  void begin(Cmd cmd, std::string name = {}) {
    current_ = cmd;
    log_name_ = std::move(name);
    request_open_ = true;
    begin_record();
    conn_.stop_timer();
  }
  /// Ends the open request: counted, and its access log line written with
  /// `reply_bytes` more (a reply about to be queued).
  void finish(Cmd cmd, bool ok, size_t reply_bytes) {
    conn_.set_transfer(false);
    if (!request_open_) return;
    request_open_ = false;
    counters_.count(cmd, ok);
    end_record(service_, cmd_name(cmd), log_name_, ok, reply_bytes);
    log_name_.clear();
  }
  // Ends the connection on a limit: the request in progress fails, the client
  // is told why (unless a reply is already streaming: an ERROR object cannot
  // be spliced into it), the connection closes.
  void abort_request(const std::string& why) {
    if ((get_ && get_->sent() > 0) || list_) {
      conn_.close();
      return;
    }
    cancel_payload();
    answer(current_, false, error_text(why));
    conn_.close_when_flushed();
  }
  /// SIZE, DELETE: `work` on the executor gives the outcome and the reply.
  void run_simple(Cmd cmd, std::function<std::pair<bool, std::string>(const storage::Root&)> work) {
    call_storage<std::pair<bool, std::string>>(
        shared_, std::move(work), [this, cmd](std::pair<bool, std::string>& result) {
          answer(cmd, result.first, std::move(result.second));
          request_done();
        });
  }
  // LIST streams (hardening issue, point 5): the listing is a snapshot shared
  // by every connection listing the same unchanged directory
  // (Root::list_shared), written as JSON in pieces while the socket keeps up.
  void stream_list() {
    using Listing = Result<std::shared_ptr<const std::vector<std::string>>>;
    call_storage<Listing>(
        shared_, [](const storage::Root& root) { return root.list_shared(); },
        [this](Listing& listing) {
          if (!listing.ok()) {
            answer(Cmd::kList, false, error_text(kit::storage_words(listing.status(), "")));
            request_done();
            return;
          }
          conn_.set_transfer(true);
          list_ = std::move(listing.value);
          list_next_ = 0;
          conn_.write_owned(kListPrefix);
          pump_list();
        });
  }
  void pump_list() {
    const std::vector<std::string>& names = *list_;
    size_t produced = 0;
    std::string piece;
    while (list_next_ < names.size() && !conn_.congested() && produced < kListBytesPerTurn) {
      piece.clear();
      while (piece.size() < kListPiece && list_next_ < names.size()) {
        if (list_next_ > 0) piece += ',';
        piece += json_quoted(names[list_next_++]);
      }
      conn_.write_owned(piece);
      produced += piece.size();
    }
    if (list_next_ == names.size()) {
      list_.reset();
      answer(Cmd::kList, true, std::string(kListSuffix));
      request_done();
      return;
    }
    if (!conn_.congested()) conn_.yield_turn();  // either way, on_drain continues
  }
  // Streamed into a transfer::UploadSink (base64) up to the end of its line;
  // an invalid name or a refusal drops the payload, then answers.
  void start_upload(std::string name) {
    begin(Cmd::kUpload, name);
    if (std::string why = upload_fault(name); !why.empty()) return drop(why, kLineEnd);
    head_.clear();
    transfer::UploadSink::Options o;
    o.transform = transfer::Transform::kBase64;
    o.codec = config_.codec;
    receive(name, std::move(o), kLineEnd);
  }

  std::string ok(std::string_view text) const override { return ok_text(text); }
  std::string fail(Cmd cmd, std::string_view text) const override {
    return error_text(cmd == Cmd::kAuth ? "AUTH: " + std::string(text) : std::string(text));
  }
  // "UPLOAD my file.txt <base64>" is an unquoted name with a space.
  std::string failure(Cmd cmd, const Status& s, const std::string& name) const override {
    if (cmd == Cmd::kUpload && s.code == Errc::kBadData && payload_has_more_words(head_)) {
      return error_text("too many arguments for UPLOAD (quote a name that has spaces)");
    }
    return FileDialect::failure(cmd, s, name);
  }
  transfer::SendOptions get_options(const std::string& name,
                                    const storage::ReadFile&) const override {
    transfer::SendOptions o;
    o.prefix = get_prefix(name);
    o.suffix = std::string(kGetSuffix);
    o.transform = transfer::Transform::kBase64;
    o.encoder = &codec::encoder(config_.codec);
    return o;
  }
  std::string interrupted() const override { return dropping_ ? drop_ : std::string(kInterrupted); }
  void count(Cmd cmd, bool ok, size_t reply_bytes) override { finish(cmd, ok, reply_bytes); }

  bool request_open_ = false;
  Cmd current_ = Cmd::kUnknown;
  /// A LIST being streamed: the shared snapshot and the next name to write.
  std::shared_ptr<const std::vector<std::string>> list_;
  size_t list_next_ = 0;
  /// The UPLOAD payload's first kUploadLookahead bytes: why a decode failed.
  std::string head_;
  std::string log_name_;  ///< the open request's name, for the access log
};

}  // namespace

const ServiceInfo& info() {
  static const ServiceInfo kInfo = kit::dialect_info<FileService>(
      "file", "the course file protocol: LIST, GET, UPLOAD (base64), DELETE, SIZE; JSON replies",
      6666, "printf 'LIST\\r\\n' | nc -q1 127.0.0.1 {port}",
      [](reactor::Refusal why, int limit) { return error_text(busy_text(why, limit)); });
  return kInfo;
}

}  // namespace fsrv::services::file
