// The file-marker service's connection handler (seed 001's dialect; wire
// format in docs/services/file-marker.md).

#include <cctype>
#include <string>
#include <vector>

#include "fsrv/codec/base64.hpp"
#include "fsrv/core/limits.hpp"
#include "fsrv/services/file_marker/file_marker_service.hpp"
#include "fsrv/services/file_marker/marker_protocol.hpp"
#include "fsrv/services/kit/file_dialect.hpp"
#include "fsrv/services/kit/verb_counters.hpp"

namespace fsrv::services::file_marker {

namespace {

/// Longest command text kept while waiting for its end: a verb and a name
/// of at most limits::kMaxName bytes fit many times over.
constexpr size_t kMaxCommand = limits::kMaxLine;

/// How long a client must stay silent before its unterminated command is
/// taken (the seed's client sends "UPLOAD name" bare and waits for READY),
/// when --legacy-idle-ms is 0 (the file service's rule is then off, but
/// this dialect cannot work without one).
constexpr int kFallbackSilenceMs = limits::kDefaultLegacyIdleMs;

using Counters = kit::VerbCounters<kit::dialect_verb_name, kit::kDialectVerbCount>;
class MarkerSession;
using MarkerService = kit::VerbService<MarkerSession, Counters, info>;

class MarkerSession final : public kit::FileDialect<Verb, Counters> {
 public:
  using FileDialect::FileDialect;

  void on_timer() override {
    if (loop_.busy() || in_.blank()) return;
    // The client went silent after an unterminated command: it is complete.
    Command cmd = parse_command(in_.view());
    in_.clear();
    run_now(cmd);
    process_input();
  }

 private:
  void process_input() override {
    if (!loop_.pump([this] { return next_command(); })) return;
    if (in_.blank()) conn_.request_head_done();
    if (in_.view().size() > kMaxCommand) {
      answer(Verb::kUnknown, false, "Command too long");
      conn_.close_when_flushed();
      return;
    }
    // A last unterminated command before the half-close is run.
    int ms = config_.legacy_idle_ms > 0 ? config_.legacy_idle_ms : kFallbackSilenceMs;
    end_of_input(ms, [this](std::string_view rest) { run_now(parse_command(rest)); });
  }
  bool next_command() {
    for (;;) {
      std::string_view in = in_.view();
      size_t nl = in.find('\n');
      if (nl == std::string_view::npos) return false;
      std::string_view line = in.substr(0, nl);  // a terminated command: take it now
      if (line.find_first_not_of(" \t\r") == std::string_view::npos) {
        in_.consume(nl + 1);  // blank
        continue;
      }
      Command cmd = parse_command(line);
      in_.consume(nl + 1);
      run_now(cmd);
      return true;
    }
  }
  void run_now(const Command& cmd) {
    conn_.stop_timer();
    conn_.request_head_done();
    run(cmd);
  }
  void upload(const Command& cmd) override {
    if (std::string why = upload_fault(cmd.name); !why.empty()) {
      answer(Verb::kUpload, false, fail(Verb::kUpload, why));  // before READY: no payload comes
      return;
    }
    conn_.write_owned(kReady);
    transfer::UploadSink::Options o;
    o.transform = transfer::Transform::kBase64;
    o.base64_segments = true;  // the seed encodes each 1 MiB chunk on its own
    o.codec = config_.codec;
    // Base64 has no '_': the first one starts the marker, or breaks the stream.
    receive(cmd.name, std::move(o), kit::PayloadEnd::marker(kEndMarker));
  }
  // A '_' that does not start "__END__": the stream cannot be framed again
  // (the sink was cancelled; its callback will not run).
  void payload_step(kit::PayloadReader::Step step) override {
    if (step != kit::PayloadReader::Step::kBadMarker) return;
    answer(Verb::kUpload, false, fail(Verb::kUpload, "invalid byte '_' in the base64 stream"));
    conn_.close_when_flushed();
  }

  // The seed's words: plain sentences, no status word or terminator.
  std::string ok(std::string_view text) const override {
    std::string s(text);
    if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
    return s;
  }
  std::string fail(Verb verb, std::string_view text) const override {
    static constexpr std::string_view kPrefix[kit::kDialectVerbCount] = {
        "Error: ", "Upload failed: ", "Error: ", "Authentication failed: ", ""};
    return std::string(kPrefix[static_cast<int>(verb)]) + std::string(text);
  }
  // The seed answers "File not found" for a missing download.
  std::string failure(Verb verb, const Status& s, const std::string&) const override {
    if (verb == Verb::kGet && s.code == Errc::kNotFound) return std::string(kNotFound);
    return fail(verb, verb == Verb::kUpload && s.code == Errc::kNoSpace ? "disk full" : s.error);
  }
  std::string listing(const std::vector<std::string>& names) const override {
    return names.empty() ? std::string(kNoFiles) : kit::joined(names);
  }
  transfer::SendOptions get_options(const std::string&, const storage::ReadFile&) const override {
    transfer::SendOptions o;
    o.suffix = std::string(kEndMarker);
    o.transform = transfer::Transform::kBase64;
    o.encoder = &codec::encoder(config_.codec);
    return o;
  }
  std::string uploaded(const std::string&, uint64_t) const override {
    return std::string(kUploadOk);
  }
  std::string interrupted() const override { return "connection closed before __END__"; }
};

}  // namespace

const ServiceInfo& info() {
  static const ServiceInfo kInfo = kit::dialect_info<MarkerService>(
      "file-marker",
      "seed 001's file dialect: LIST, UPLOAD (READY, base64 chunks, __END__), DOWNLOAD", 8995,
      "printf 'LIST' | nc -q1 127.0.0.1 {port}",
      [](reactor::Refusal why, int limit) { return "Error: " + busy_text(why, limit); });
  return kInfo;
}

}  // namespace fsrv::services::file_marker
