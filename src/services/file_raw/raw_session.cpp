// The file-raw service's connection handler (seed 000's raw-bytes dialect;
// wire format in docs/services/file-raw.md).

#include <string>

#include "fsrv/core/limits.hpp"
#include "fsrv/services/file_raw/file_raw_service.hpp"
#include "fsrv/services/file_raw/raw_protocol.hpp"
#include "fsrv/services/kit/file_dialect.hpp"
#include "fsrv/services/kit/verb_counters.hpp"

namespace fsrv::services::file_raw {

namespace {

using Counters = kit::VerbCounters<kit::dialect_verb_name, kit::kDialectVerbCount>;
class RawSession;
using RawService = kit::VerbService<RawSession, Counters, info>;

/// "ERROR <text>\r\n".
std::string error_line(std::string_view text) {
  return "ERROR " + std::string(text) + std::string(kEol);
}

class RawSession final : public kit::FileDialect<RawCmd, Counters> {
 public:
  using FileDialect::FileDialect;

  void on_idle_timeout() override {
    if (get_ && get_->sent() > 0) {
      conn_.close();  // mid-stream: an ERROR line cannot be spliced in
      return;
    }
    cancel_payload();
    conn_.write_owned(error_line(kit::idle_words(config_)));
    conn_.close_when_flushed();
  }
  // A request line not complete within --request-timeout of its first byte.
  void on_request_timeout() override {
    if (loop_.busy()) {
      conn_.close();
      return;
    }
    answer(RawCmd::kUnknown, false, error_line(kit::request_timeout_words(config_)));
    conn_.close_when_flushed();
  }

 private:
  void process_input() override {
    if (!loop_.pump([this] { return next_request(); })) return;
    if (eof_) {
      conn_.close_when_flushed();  // an unterminated last line is not a request here
      return;
    }
    conn_.resume_reading();
  }
  bool next_request() {
    RawLine l = next_raw_line(in_.view(), limits::kMaxLine);
    in_.consume(l.consumed);
    if (l.kind != RawLine::kNeedMore || in_.empty()) conn_.request_head_done();
    if (l.kind == RawLine::kNeedMore) return false;
    if (l.kind == RawLine::kTooLong) {
      answer(RawCmd::kUnknown, false,
             error_line("request line too long (limit " + std::to_string(limits::kMaxLine) +
                        " bytes)"));
      conn_.close_when_flushed();
      return false;
    }
    run(parse_raw_line(l.line));
    return true;
  }
  void upload(const RawRequest& req) override {
    expected_ = req.size;
    if (req.size > config_.max_upload) {
      // Reading and dropping that many bytes would only waste the link.
      answer(RawCmd::kUpload, false,
             error_line("upload too large: " + std::to_string(req.size) + " bytes (limit " +
                        std::to_string(config_.max_upload) + ")"));
      conn_.close_when_flushed();
      return;
    }
    // The size is known: a refused payload is dropped, then answered.
    std::string why = refused(Access::kWrite);
    if (why.empty()) why = upload_fault(req.name);
    if (!why.empty()) return drop(why, kit::PayloadEnd::count(req.size));
    transfer::UploadSink::Options o;
    o.transform = transfer::Transform::kIdentity;
    receive(req.name, std::move(o), kit::PayloadEnd::count(req.size));
  }

  // "OK ...\r\n" or "ERROR ...\r\n" (AUTH's failures: "ERROR AUTH: ...").
  std::string ok(std::string_view text) const override {
    return "OK " + std::string(text) + std::string(kEol);
  }
  std::string fail(RawCmd cmd, std::string_view text) const override {
    return error_line(cmd == RawCmd::kAuth ? "AUTH: " + std::string(text) : std::string(text));
  }
  std::string listing(const std::vector<std::string>& names) const override {
    return kit::joined(names) + std::string(kListEnd);
  }
  transfer::SendOptions get_options(const std::string&,
                                    const storage::ReadFile& file) const override {
    transfer::SendOptions o;
    o.prefix = std::to_string(file.size()) + std::string(kEol);
    o.transform = transfer::Transform::kIdentity;  // sendfile(2)
    o.length = file.size();                        // the size announced, even if the file grows
    return o;
  }
  std::string interrupted() const override {
    return "upload interrupted: connection closed after " + std::to_string(payload_taken()) +
           " of " + std::to_string(expected_) + " bytes";
  }

  uint64_t expected_ = 0;  ///< the UPLOAD's size
};

}  // namespace

const ServiceInfo& info() {
  static const ServiceInfo kInfo = kit::dialect_info<RawService>(
      "file-raw",
      "seed 000's raw-bytes file dialect: LIST, UPLOAD name size + bytes, DOWNLOAD (sendfile)",
      9000, "printf 'LIST\\r\\n' | nc -q1 127.0.0.1 {port}",
      [](reactor::Refusal why, int limit) { return error_line(busy_text(why, limit)); });
  return kInfo;
}

}  // namespace fsrv::services::file_raw
