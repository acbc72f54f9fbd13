#pragma once
// The stream-session kit's file dialect: what the three dialects of the file
// protocol (file, file-marker, file-raw) do alike around their own words.
// LIST, GET and UPLOAD go through storage and the engines; AUTH through the
// serving process's auth::Authenticator (its per-address throttle, hashing
// threads and cache of recent logins); the listener's policy is asked for
// the connection's account; a refused upload's payload can be dropped so
// the stream stays in step. A dialect gives its parser, its words (the
// virtual functions below) and its end-of-stream and timeout rules.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fsrv/auth/authenticator.hpp"
#include "fsrv/core/result.hpp"
#include "fsrv/services/kit/parse.hpp"
#include "fsrv/services/kit/stream_session.hpp"
#include "fsrv/storage/storage.hpp"
#include "fsrv/transfer/file_sender.hpp"
#include "fsrv/transfer/upload_sink.hpp"

namespace fsrv::services::kit {

/// The file protocol's wording of a typed storage error about `name` (the
/// course server's: "no such file: x", "invalid name: ...", "disk full").
std::string storage_words(const Status& status, std::string_view name);
/// The names joined by '\n' (the dialects' LIST).
std::string joined(const std::vector<std::string>& names);
/// "idle timeout: no data for N s" (--idle-timeout).
std::string idle_words(const ServerConfig& config);
/// "request timeout: line not complete within N s" (--request-timeout).
std::string request_timeout_words(const ServerConfig& config);

/// The registration of a file dialect's service `S` (a VerbService): a
/// stream service on `port` whose listeners honour `,ro` and `auth=`, and
/// whose refused clients get `refusal`.
template <class S>
ServiceInfo dialect_info(std::string_view name, std::string_view description, int port,
                         std::string_view try_command,
                         std::string (*refusal)(reactor::Refusal why, int limit)) {
  ServiceInfo info{name, description, {port}, try_command, &S::register_stats, refusal, &S::create};
  info.policy_keys = kPolicyReadOnly | kPolicyAuth;
  return info;
}

/// A session of a file dialect (see above). `Verb` is its enum of verbs
/// (with kList, kGet, kUpload, kAuth and kUnknown), counted in `Counters`.
template <class Verb, class Counters>
class FileDialect : public StreamSession {
 public:
  /// `service` is the dialect's VerbService, which holds its `counters`.
  template <class S>
  FileDialect(reactor::Connection& conn, S& service)
      : StreamSession(conn),
        service_(service),
        shared_(service.shared()),
        config_(*shared_.config),
        counters_(service.counters) {}

  /// EOF inside a payload cuts the upload: interrupted() is answered.
  void on_eof() override {
    eof_ = true;
    if (in_payload()) {
      cancel_payload();
      if (std::string why = interrupted(); !why.empty()) {
        answer(Verb::kUpload, false, fail(Verb::kUpload, why));
      }
      conn_.close_when_flushed();
      return;
    }
    if (!loop_.busy()) process_input();
  }

 protected:
  /// A success reply carrying `text`.
  virtual std::string ok(std::string_view text) const = 0;
  /// A failure reply of `verb` carrying `text` (kUnknown: a request that
  /// could not run, e.g. a parse error).
  virtual std::string fail(Verb verb, std::string_view text) const = 0;
  /// A storage failure of `verb` about `name`.
  virtual std::string failure(Verb verb, const Status& s, const std::string& name) const {
    return fail(verb, storage_words(s, name));
  }
  /// LIST's reply.
  virtual std::string listing(const std::vector<std::string>& names) const { return joined(names); }
  /// How GET sends `file` (prefix, suffix, transform).
  virtual transfer::SendOptions get_options(const std::string& name,
                                            const storage::ReadFile& file) const = 0;
  /// The reply to an upload stored as `bytes` bytes.
  virtual std::string uploaded(const std::string& name, uint64_t bytes) const {
    return ok(name + " uploaded (" + std::to_string(bytes) + " bytes)");
  }
  /// What fail(kUpload) says when EOF cuts a payload ("": nothing).
  virtual std::string interrupted() const = 0;
  /// Counts one finished request (file: also its access log line, with
  /// `reply_bytes` about to be written).
  virtual void count(Verb verb, bool ok, size_t reply_bytes) {
    (void)reply_bytes;
    counters_.count(verb, ok);
  }
  /// A dialect's UPLOAD request (run() calls it).
  virtual void upload(const DialectRequest<Verb>&) {}

  /// What follows the complete requests: at EOF an unterminated rest is run
  /// by `last`, and the connection closes once it is answered; otherwise a
  /// rest starts the silence timer of `silence_ms` (0: none), and reading
  /// resumes.
  void end_of_input(int silence_ms, const std::function<void(std::string_view rest)>& last) {
    if (eof_) {
      if (!in_.blank()) {
        std::string rest(in_.view());
        in_.clear();
        last(rest);
        if (loop_.busy()) return;  // request_done() comes back
      }
      conn_.close_when_flushed();
      return;
    }
    if (!in_.blank() && silence_ms > 0) conn_.start_timer(static_cast<uint64_t>(silence_ms));
    conn_.resume_reading();
  }
  /// Counts one request of `verb` (first: a client that has its reply finds
  /// it counted), then writes `bytes` (nothing when empty).
  void answer(Verb verb, bool ok, std::string bytes) {
    count(verb, ok, bytes.size());
    if (!bytes.empty()) conn_.write_owned_moved(std::move(bytes));
  }
  /// Why the listener refuses `access` to this connection's account ("": it
  /// does not).
  std::string refused(Access access) const {
    Refusal r = service_.policy().refuse(access, role_);
    return r == Refusal::kNone ? std::string() : refusal_text(r, access);
  }
  /// Why `name` may not be uploaded: an invalid name, then the policy.
  std::string upload_fault(const std::string& name) const {
    if (std::string why = storage::validate_name(name); !why.empty()) return "invalid name: " + why;
    return refused(Access::kWrite);
  }

  /// Runs a parsed request: its error, AUTH, UPLOAD, then LIST and GET if
  /// the policy lets this account read.
  void run(const DialectRequest<Verb>& req) {
    if (!req.error.empty()) {
      answer(req.verb, false, fail(Verb::kUnknown, req.error));
      if (req.fatal) conn_.close_when_flushed();
    } else if (req.verb == Verb::kAuth) {
      start_auth(req.name, req.password);
    } else if (req.verb == Verb::kUpload) {
      upload(req);
    } else if (std::string why = refused(Access::kRead); !why.empty()) {
      answer(req.verb, false, fail(req.verb, why));  // auth=all
    } else if (req.verb == Verb::kList) {
      start_list();
    } else {
      start_get(req.name);
    }
  }

  /// LIST: the root's names (storage::Root::list), answered with listing().
  void start_list() {
    call_storage<Result<std::vector<std::string>>>(
        shared_, [](const storage::Root& root) { return root.list(); },
        [this](Result<std::vector<std::string>>& names) {
          answer(Verb::kList, names.ok(),
                 names.ok() ? listing(names.value) : failure(Verb::kList, names.status(), ""));
          request_done();
        });
  }

  /// GET: opens `name` and sends it as get_options() says; counted when the
  /// engine is done.
  void start_get(const std::string& name) {
    call_storage<Result<storage::ReadFile>>(
        shared_, [name](const storage::Root& root) { return root.open_read(name); },
        [this, name](Result<storage::ReadFile>& opened) {
          if (!opened.ok()) {
            answer(Verb::kGet, false, failure(Verb::kGet, opened.status(), name));
            request_done();
            return;
          }
          transfer::SendOptions o = get_options(name, opened.value);
          get_ = transfer::send_file(conn_, *shared_.executor, std::move(opened.value),
                                     std::move(o), [this](Status s) {
                                       get_.reset();
                                       answer(Verb::kGet, s.ok(), {});
                                       request_done();
                                     });
        });
  }

  /// UPLOAD: the payload up to `end` goes into a sink for `name` (`o` gives
  /// the transform), answered with uploaded() or failure().
  void receive(const std::string& name, transfer::UploadSink::Options o, PayloadEnd end) {
    o.name = name;
    o.max_bytes = config_.max_upload;
    take_upload(shared_, std::move(o), end, [this, name](Status s, uint64_t bytes) {
      answer(Verb::kUpload, s.ok(),
             s.ok() ? uploaded(name, bytes) : failure(Verb::kUpload, s, name));
      request_done();
    });
  }
  /// Drops a payload up to `end`, then answers fail(kUpload, why) (an
  /// empty `why`: nothing, the request was answered already).
  void drop(std::string why, PayloadEnd end) {
    loop_.begin();
    dropping_ = true;
    drop_ = std::move(why);
    payload().start(nullptr, end);
    payload_step(payload_->feed());
  }
  /// A dropped payload is answered at its end; a stored one by its sink.
  void payload_step(PayloadReader::Step step) override {
    if (step != PayloadReader::Step::kDone || !dropping_) return;
    dropping_ = false;
    if (!drop_.empty()) answer(Verb::kUpload, false, fail(Verb::kUpload, drop_));
    request_done();
  }

  /// AUTH user password: role_ once the --users account checks out.
  void start_auth(const std::string& user, std::string password) {
    auth::Authenticator* auth = shared_.auth;
    if (!auth || service_.policy().auth == AuthScope::kNone) {
      answer(Verb::kAuth, false, fail(Verb::kAuth, "this listener takes no accounts"));
      return;
    }
    loop_.begin();
    conn_.pause_reading();
    reactor::ConnRef ref(&conn_);
    auth->check(user, std::move(password), conn_.peer_text(),
                [this, ref, user](auth::LoginOutcome outcome) {
                  if (ref->closing()) return;
                  bool good = outcome.error.empty();
                  if (good) role_ = outcome.role;
                  answer(Verb::kAuth, good,
                         good ? ok("authenticated as " + user + " (role " +
                                   std::string(role_name(role_)) + ")")
                              : fail(Verb::kAuth, outcome.error));
                  request_done();
                });
  }

  Service& service_;
  Shared& shared_;
  const ServerConfig& config_;
  Counters& counters_;
  Role role_ = Role::kAnonymous;  ///< the account of AUTH, for the policy
  bool dropping_ = false;         ///< the payload is dropped (drop())
  std::string drop_;              ///< what a dropped payload is answered
};

}  // namespace fsrv::services::kit
