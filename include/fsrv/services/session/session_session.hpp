#pragma once
// One connection of the session service (SessionConn) and the per-process
// SessionService it counts in. A kit::StreamSession: its InputBuffer holds
// the bytes session_framer has not framed yet, its RequestLoop takes one
// frame at a time (at most kit::kRequestsPerTurn a turn) and waits while a
// storage call, a download, a payload or a delayed float is in progress,
// and its PayloadReader takes an upload's bytes by count into the
// transfer::UploadSink. Member functions are defined beside their concern:
// session_session.cpp the framing and the dialogue state (which frame comes
// next, end of stream, shutdown), session_commands.cpp the commands' work
// (ls, size, rm, download, upload).

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "fsrv/reactor/connection.hpp"
#include "fsrv/services/kit/stream_session.hpp"
#include "fsrv/services/kit/verb_counters.hpp"
#include "fsrv/services/service.hpp"
#include "fsrv/services/session/session_framer.hpp"
#include "fsrv/services/session/session_service.hpp"

namespace fsrv::services::session {

/// Delay before the `f` seconds field that follows "received" (and the
/// end of a download). The seed's client reads "received" with recv(1024):
/// sent together, that recv would swallow the float too, and the client's
/// next recv(4) would block forever. 50 ms apart, they arrive as two reads
/// (i10.md section 2).
inline constexpr uint64_t kFloatDelayMs = 50;

/// The largest size the `i` (int32) fields can carry; a file of 2 GiB or
/// more is answered with -1 (and logged) instead of a wrong number.
inline constexpr uint64_t kMaxWireSize = INT32_MAX;

/// Bytes asked for per socket read outside payloads (words and headers are
/// tiny; payload bytes go straight into the upload sink's buffers).
inline constexpr size_t kReadChunk = 16 * 1024;

/// The session service's per-verb counters
/// ("session/commands/VERB/{ok,failed}"; seven verbs).
using Counters = kit::VerbCounters<verb_name, 7>;
class SessionConn;
/// The session service: one per serving process, shared by its listeners.
using SessionService = kit::VerbService<SessionConn, Counters, info>;

/// One `ls` line: name and its size as sent (-1 when it does not fit `i`).
struct Entry {
  std::string name;
  int32_t size = -1;
};

/// One connection speaking seed 003's session protocol (see above).
class SessionConn final : public kit::StreamSession {
 public:
  SessionConn(reactor::Connection& conn, SessionService& service)
      : StreamSession(conn, kReadChunk), service_(service), shared_(service.shared()) {}

  void on_eof() override;
  void on_timer() override;
  void on_shutdown() override;
  /// The seed's client keeps one connection for a whole interactive
  /// session and never reconnects: a user may pause between commands (a
  /// frame trickled, or a payload slower than --min-rate, is still cut).
  reactor::IdlePolicy idle_policy() const override { return reactor::IdlePolicy::kKeep; }

 private:
  using Clock = std::chrono::steady_clock;

  void process_input() override;
  void payload_step(kit::PayloadReader::Step step) override;
  /// Frames and handles one frame; false when none is complete (or the
  /// connection is closing).
  bool next_request();
  /// A protocol error: logged, counted, the connection closed.
  void fail(std::string why);
  /// The command is over: the next frame is a command word (and a
  /// shutdown that waited for this closes now).
  void back_to_word();
  /// A command ends: writes `reply` (nothing when empty), counts it, and
  /// takes the next command word.
  void finish(Verb verb, bool ok, std::string_view reply);
  /// Counts a finished command and writes its access log line.
  void count_request(Verb verb, bool ok);

  void on_word(Verb verb);
  void on_name(std::string name);
  void on_ack();
  void on_confirm(bool yes);

  void start_ls();
  void send_ls_entry();
  void start_upload(std::string name, int32_t size);
  void start_download(std::string name);
  void run_size(std::string name);
  void run_rm();
  void send_float_later();

  SessionService& service_;
  Shared& shared_;
  Want want_ = Want::kWord;
  Verb verb_ = Verb::kConnme;  ///< the command in progress
  /// The server is shutting down: close at the next command word (the
  /// seed's client cannot tell a cut mid-command from a broken server).
  bool shutdown_ = false;
  uint64_t expected_ = 0;      ///< the upload's size
  std::string name_;           ///< upload / download / rm target
  Clock::time_point started_;  ///< the transfer's start, for its seconds
  std::string later_;          ///< the float waiting for the timer
  // ls
  std::vector<Entry> entries_;
  int64_t total_ = 0;
  size_t next_entry_ = 0;
};

}  // namespace fsrv::services::session
