#pragma once
// One connection of the file service (FileSession) and the per-process
// FileService it counts in. Its member functions are defined beside their
// concern: file_session.cpp the framing (reads, the request loop with its
// discard of a bad UPLOAD's line, the legacy clients' silence, limits,
// end of stream) and the registration; file_commands.cpp the commands
// that go past one reply (AUTH, LIST, GET, UPLOAD, SIZE and DELETE on the
// executor).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fsrv/reactor/connection.hpp"
#include "fsrv/services/file/file_service.hpp"
#include "fsrv/services/file/request.hpp"
#include "fsrv/services/kit/input_buffer.hpp"
#include "fsrv/services/kit/payload_reader.hpp"
#include "fsrv/services/kit/verb_counters.hpp"
#include "fsrv/transfer/file_sender.hpp"

namespace fsrv::services::file {

using reactor::Connection;
using reactor::ConnRef;

/// The file service's per-verb counters ("file/commands/VERB/{ok,failed}").
using Counters = kit::VerbCounters<cmd_name, kCmdCount>;

/// The file service: one per serving process, shared by its listeners;
/// counts each request by verb and outcome.
class FileService final : public Service {
 public:
  explicit FileService(Shared& shared) : Service(shared, info()), counters_(*this) {}
  /// Counts one request of `cmd` that succeeded or failed.
  void count(Cmd cmd, bool ok) { counters_.count(cmd, ok); }

 protected:
  std::unique_ptr<reactor::ConnectionHandler> create_handler(Connection& conn) override;

 private:
  Counters counters_;
};

/// One connection speaking the file protocol (docs/PROTOCOL.md): one
/// request at a time, at most kit::kRequestsPerTurn per loop turn; replies
/// are JSON objects ended by "\r\n\r\n".
class FileSession final : public reactor::ConnectionHandler {
 public:
  FileSession(Connection& conn, FileService& service)
      : conn_(conn), service_(service), shared_(service.shared()), config_(*shared_.config) {}

  std::span<char> read_space() override;
  void on_read(size_t n) override;
  void on_eof() override;
  void on_timer() override;
  void on_idle_timeout() override;
  void on_too_slow() override;
  void on_request_timeout() override;
  void on_drain() override {
    if (list_) {
      pump_list();
    } else {
      process_input();
    }
  }
  void on_shutdown() override;
  void on_close() override;

 private:
  enum class State { kIdle, kBusy, kPayload, kDiscard };

  std::string_view input() const { return in_.view(); }
  void consume(size_t n) { in_.consume(n); }
  bool input_blank() const { return in_.blank(); }

  void process_input();
  void handle_request(const Request& req);
  void begin(Cmd cmd);
  /// Ends the open request: counted, and its access log line written with
  /// `reply_bytes` more (a reply about to be queued).
  void finish(Cmd cmd, bool ok, size_t reply_bytes = 0);
  void reply_now(Cmd cmd, bool ok, std::string reply);
  void request_done();
  void start_discard(Cmd cmd, std::string error);

  void run_simple(Cmd cmd, std::function<std::pair<bool, std::string>()> work);
  void start_get(const std::string& name);
  void start_list();
  void abort_request(const std::string& why);
  void pump_list();
  void start_upload(std::string name);
  /// AUTH user password: role_ once the --users account checks out.
  void start_auth(const std::string& user, const std::string& password);
  void payload_step(kit::PayloadReader::Step step);

  Connection& conn_;
  FileService& service_;
  Shared& shared_;
  const ServerConfig& config_;
  State state_ = State::kIdle;
  kit::InputBuffer in_;
  bool eof_ = false;
  bool quit_ = false;
  bool request_open_ = false;
  Cmd current_ = Cmd::kUnknown;
  std::string discard_error_;
  std::shared_ptr<transfer::FileSender> get_;
  /// A LIST being streamed: the shared snapshot and the next name to write.
  struct ListStream {
    std::shared_ptr<const std::vector<std::string>> names;
    size_t next = 0;
  };
  std::unique_ptr<ListStream> list_;
  /// What only an UPLOAD needs, made at the connection's first UPLOAD and
  /// kept until it closes (most connections never upload: an idle one
  /// does not carry it).
  struct Upload {
    Upload(Connection& conn, kit::InputBuffer& in) : payload(conn, in) {}
    kit::PayloadReader payload;  ///< the base64, up to its line's end
    std::string name;
    /// The payload's first kUploadLookahead bytes: why a decode failed.
    std::string head;
  };
  std::unique_ptr<Upload> upload_;
  bool payload_active() const { return upload_ && upload_->payload.active(); }
  void cancel_payload() {
    if (upload_) upload_->payload.cancel();
  }
  Upload& upload() {
    if (!upload_) {
      upload_ = std::make_unique<Upload>(conn_, in_);
      upload_->payload.observe = [this](std::string_view bytes) {
        std::string& head = upload_->head;
        if (head.size() < kUploadLookahead) {
          head.append(bytes.substr(0, kUploadLookahead - head.size()));
        }
      };
    }
    return *upload_;
  }
  /// The access log's view of the open request: its name, and the
  /// connection's byte counts and the time when it began.
  std::string log_name_;
  /// The account this connection authenticated as (AUTH), for the policy.
  Role role_ = Role::kAnonymous;
  uint64_t log_in_ = 0;
  uint64_t log_out_ = 0;
  std::chrono::steady_clock::time_point log_started_;
};

}  // namespace fsrv::services::file
