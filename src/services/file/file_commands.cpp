// The file service's commands that outlive one reply: SIZE and DELETE on
// the executor, AUTH through the kit's login, LIST streamed from a shared
// snapshot, GET through transfer::send_file, UPLOAD through the kit's
// PayloadReader into a transfer::UploadSink (base64, ended by its line).

#include <string>
#include <vector>

#include "fsrv/auth/authenticator.hpp"
#include "fsrv/codec/base64.hpp"
#include "fsrv/services/file/file_session.hpp"
#include "fsrv/services/file/reply.hpp"
#include "fsrv/services/kit/login.hpp"
#include "fsrv/services/kit/storage_calls.hpp"
#include "fsrv/storage/storage.hpp"
#include "fsrv/transfer/upload_sink.hpp"

namespace fsrv::services::file {

namespace {

/// A streamed LIST is written in pieces of about this many bytes, and at
/// most kListBytesPerTurn per loop turn (then it yields, or waits for the
/// socket when congested): a 10 MB listing never sits in one buffer.
constexpr size_t kListPiece = 16 * 1024;
constexpr size_t kListBytesPerTurn = 256 * 1024;

}  // namespace

void FileSession::run_simple(Cmd cmd, std::function<std::pair<bool, std::string>()> work) {
  begin(cmd);
  state_ = State::kBusy;
  conn_.pause_reading();
  kit::call_storage<std::pair<bool, std::string>>(
      conn_, shared_, std::move(work), [this, cmd](std::pair<bool, std::string>& result) {
        finish(cmd, result.first, result.second.size());
        conn_.write_owned(result.second);
        request_done();
      });
}

// ---------------------------------------------------------------- AUTH

void FileSession::start_auth(const std::string& user, const std::string& password) {
  bool started =
      kit::start_login(conn_, service_, user, password, [this, user](auth::LoginOutcome outcome) {
        bool ok = outcome.error.empty();
        if (ok) role_ = outcome.role;
        std::string reply = ok ? ok_text("authenticated as " + user + " (role " +
                                         std::string(role_name(role_)) + ")")
                               : error_text("AUTH: " + outcome.error);
        finish(Cmd::kAuth, ok, reply.size());
        conn_.write_owned(std::move(reply));
        request_done();
      });
  if (!started) {
    reply_now(Cmd::kAuth, false, error_text("AUTH: " + std::string(kit::kNoAccounts)));
    return;
  }
  begin(Cmd::kAuth);
  state_ = State::kBusy;
  conn_.pause_reading();
}

// ---------------------------------------------------------------- LIST

// LIST streams (hardening issue, point 5): the listing is a snapshot shared
// by every connection listing the same unchanged directory
// (Root::list_shared), written as JSON in pieces while the socket keeps up.
void FileSession::start_list() {
  begin(Cmd::kList);
  state_ = State::kBusy;
  conn_.pause_reading();
  using Listing = Result<std::shared_ptr<const std::vector<std::string>>>;
  const storage::Root* root = shared_.root;
  kit::call_storage<Listing>(
      conn_, shared_, [root] { return root->list_shared(); },
      [this](Listing& listing) {
        if (!listing.ok()) {
          finish(Cmd::kList, false);
          conn_.write_owned(error_text(error_message(listing.status(), "")));
          request_done();
          return;
        }
        conn_.set_transfer(true);
        list_ = std::make_unique<ListStream>();
        list_->names = std::move(listing.value);
        conn_.write_owned(kListPrefix);
        pump_list();
      });
}

void FileSession::pump_list() {
  const std::vector<std::string>& names = *list_->names;
  size_t produced = 0;
  std::string piece;
  while (list_->next < names.size() && !conn_.congested() && produced < kListBytesPerTurn) {
    piece.clear();
    while (piece.size() < kListPiece && list_->next < names.size()) {
      if (list_->next > 0) piece += ',';
      piece += json_quoted(names[list_->next++]);
    }
    conn_.write_owned(piece);
    produced += piece.size();
  }
  if (list_->next == names.size()) {
    list_.reset();
    finish(Cmd::kList, true);
    conn_.write_owned(kListSuffix);
    request_done();
    return;
  }
  if (!conn_.congested()) conn_.yield_turn();  // either way, on_drain continues
}

// ---------------------------------------------------------------- GET

void FileSession::start_get(const std::string& name) {
  begin(Cmd::kGet);
  state_ = State::kBusy;
  conn_.pause_reading();
  kit::open_read(conn_, shared_, name, [this, name](Result<storage::ReadFile>& opened) {
    if (!opened.ok()) {
      finish(Cmd::kGet, false);
      conn_.write_owned(error_text(error_message(opened.status(), name)));
      request_done();
      return;
    }
    conn_.set_transfer(true);
    transfer::SendOptions o;
    o.prefix = get_prefix(name);
    o.suffix = std::string(kGetSuffix);
    o.transform = transfer::Transform::kBase64;
    o.encoder = &codec::encoder(config_.codec);
    get_ = transfer::send_file(conn_, *shared_.executor, std::move(opened.value), std::move(o),
                               [this](Status s) {
                                 get_.reset();
                                 finish(Cmd::kGet, s.ok());
                                 request_done();
                               });
  });
}

// ---------------------------------------------------------------- UPLOAD

void FileSession::start_upload(std::string name) {
  log_name_ = name;
  if (std::string why = storage::validate_name(name); !why.empty()) {
    start_discard(Cmd::kUpload, "invalid name: " + why);
    process_input();
    return;
  }
  if (Refusal r = service_.policy().refuse(Access::kWrite, role_); r != Refusal::kNone) {
    start_discard(Cmd::kUpload, refusal_text(r, Access::kWrite));  // the payload is dropped
    process_input();
    return;
  }
  begin(Cmd::kUpload);
  conn_.set_transfer(true);
  state_ = State::kPayload;
  upload().name = name;
  upload_->head.clear();
  transfer::UploadSink::Options o;
  o.name = std::move(name);
  o.transform = transfer::Transform::kBase64;
  o.codec = config_.codec;
  o.max_bytes = config_.max_upload;
  auto sink = transfer::UploadSink::start(
      conn_, *shared_.executor, *shared_.root, std::move(o),
      [this] {
        if (payload_active()) payload_step(upload_->payload.feed());
      },
      [this](Status s, uint64_t bytes) {
        upload_->payload.reset();
        finish(Cmd::kUpload, s.ok());
        if (s.ok()) {
          conn_.write_owned(
              ok_text(upload_->name + " uploaded (" + std::to_string(bytes) + " bytes)"));
        } else if (s.code == Errc::kBadData && payload_has_more_words(upload_->head)) {
          conn_.write_owned(
              error_text("too many arguments for UPLOAD (quote a name that has spaces)"));
        } else {
          conn_.write_owned(error_text(error_message(s, upload_->name)));
        }
        request_done();
      });
  // The base64 ends with its line: the first CR or LF (find_terminator).
  upload_->payload.start(std::move(sink), kit::PayloadEnd::terminator("\r\n"));
  payload_step(upload_->payload.feed());
}

// The payload's terminator arrived: no more reading until the sink's reply.
// A sink that had already failed (over --max-upload while streaming) replies
// within the terminator's own step, and request_done() has then made the
// session idle again: that state stands.
void FileSession::payload_step(kit::PayloadReader::Step step) {
  if (step == kit::PayloadReader::Step::kDone && state_ == State::kPayload) state_ = State::kBusy;
}

}  // namespace fsrv::services::file
