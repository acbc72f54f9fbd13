// The session protocol's commands that do work: ls, size and rm through
// storage on the executor, download through transfer::send_file, upload
// through the kit's PayloadReader (a byte count) into a
// transfer::UploadSink (session_session.hpp).

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fsrv/core/log.hpp"
#include "fsrv/services/kit/storage_calls.hpp"
#include "fsrv/services/session/session_session.hpp"
#include "fsrv/storage/storage.hpp"
#include "fsrv/transfer/upload_sink.hpp"

namespace fsrv::services::session {

// ---------------------------------------------------------------- ls

void SessionConn::start_ls() {
  loop_.begin();
  conn_.pause_reading();
  const storage::Root* root = shared_.root;
  kit::call_storage<Result<std::vector<Entry>>>(
      conn_, shared_,
      [root]() -> Result<std::vector<Entry>> {
        auto names = root->list();
        if (!names.ok()) return Result<std::vector<Entry>>::failure(names.status());
        Result<std::vector<Entry>> out;
        for (std::string& n : names.value) {
          auto size = root->size(n);
          if (!size.ok()) continue;  // removed since the listing
          Entry e{std::move(n), -1};
          if (size.value <= kMaxWireSize) {
            e.size = static_cast<int32_t>(size.value);
          } else {
            FSRV_LOG_WARN("session: ls: %s has %llu bytes, more than an int32 can say: size -1",
                          e.name.c_str(), static_cast<unsigned long long>(size.value));
          }
          out.value.push_back(std::move(e));
        }
        return out;
      },
      [this](Result<std::vector<Entry>>& listed) {
        if (!listed.ok()) FSRV_LOG_ERROR("session: ls: %s", listed.error.c_str());
        entries_ = std::move(listed.value);
        total_ = 0;
        for (const Entry& e : entries_) total_ += e.size > 0 ? e.size : 0;
        next_entry_ = 0;
        conn_.write_owned(pack_i32(static_cast<int32_t>(entries_.size())));
        send_ls_entry();
        request_done();
      });
}

// Sends entry next_entry_ and waits for its ack, or the total after the last.
void SessionConn::send_ls_entry() {
  if (next_entry_ < entries_.size()) {
    const Entry& e = entries_[next_entry_];
    conn_.write_owned(pack_i32(static_cast<int32_t>(e.name.size())) + e.name + pack_i32(e.size));
    want_ = Want::kAck;
    return;
  }
  int32_t total = total_ <= static_cast<int64_t>(kMaxWireSize) ? static_cast<int32_t>(total_) : -1;
  if (total < 0)
    FSRV_LOG_WARN("session: ls: total %lld bytes does not fit an int32: -1",
                  static_cast<long long>(total_));
  conn_.write_owned(pack_i32(total));
  entries_.clear();
  count_request(Verb::kLs, true);
  back_to_word();
}

// ---------------------------------------------------------------- size, rm

void SessionConn::run_size(std::string name) {
  loop_.begin();
  conn_.pause_reading();
  const storage::Root* root = shared_.root;
  kit::call_storage<Result<uint64_t>>(
      conn_, shared_, [root, name] { return root->size(name); },
      [this, name](Result<uint64_t>& size) {
        int32_t v = -1;
        if (!size.ok()) {
          FSRV_LOG_INFO("session: size %s: %s", name.c_str(), size.error.c_str());
        } else if (size.value > kMaxWireSize) {
          FSRV_LOG_WARN("session: size %s: %llu bytes, over int32: -1", name.c_str(),
                        static_cast<unsigned long long>(size.value));
        } else {
          v = static_cast<int32_t>(size.value);
        }
        finish(Verb::kSize, v >= 0, pack_i32(v));
      });
}

void SessionConn::run_rm() {
  loop_.begin();
  conn_.pause_reading();
  const storage::Root* root = shared_.root;
  kit::call_storage<Status>(
      conn_, shared_, [root, name = name_] { return root->remove(name); },
      [this](Status& status) {
        if (!status.ok()) FSRV_LOG_INFO("session: rm %s: %s", name_.c_str(), status.error.c_str());
        finish(Verb::kRm, status.ok(), pack_i32(status.ok() ? 1 : -1));
      });
}

// ---------------------------------------------------------------- download

void SessionConn::start_download(std::string name) {
  loop_.begin();
  conn_.pause_reading();
  started_ = Clock::now();
  name_ = std::move(name);
  kit::open_read(conn_, shared_, name_, [this](Result<storage::ReadFile>& opened) {
    if (!opened.ok() || opened.value.size() > kMaxWireSize) {
      if (opened.ok()) {
        FSRV_LOG_WARN("session: download %s: %llu bytes, over int32: -1", name_.c_str(),
                      static_cast<unsigned long long>(opened.value.size()));
      } else {
        FSRV_LOG_INFO("session: download %s: %s", name_.c_str(), opened.error.c_str());
      }
      finish(Verb::kDownload, false, pack_i32(-1));
      return;
    }
    transfer::SendOptions o;
    o.prefix = pack_i32(static_cast<int32_t>(opened.value.size()));
    o.transform = transfer::Transform::kIdentity;
    get_ = transfer::send_file(conn_, *shared_.executor, std::move(opened.value), std::move(o),
                               [this](Status s) {
                                 get_.reset();
                                 if (!s.ok()) {
                                   count_request(Verb::kDownload, false);
                                   return;  // the sender closed the connection
                                 }
                                 // The client acks the bytes with '1', then
                                 // reads the seconds.
                                 want_ = Want::kAck;
                                 request_done();
                               });
  });
}

// ---------------------------------------------------------------- upload

void SessionConn::start_upload(std::string name, int32_t size) {
  std::string refused;  // why the upload cannot start
  if (Refusal r = service_.policy().refuse(Access::kWrite, Role::kAnonymous); r != Refusal::kNone) {
    refused = "upload " + name + ": " + refusal_text(r, Access::kWrite);
  } else if (std::string why = storage::validate_name(name); !why.empty()) {
    refused = "upload: invalid name: " + why;
  } else if (static_cast<uint64_t>(size) > shared_.config->max_upload) {
    refused = "upload " + name + ": " + std::to_string(size) + " bytes is over --max-upload " +
              std::to_string(shared_.config->max_upload);
  }
  if (!refused.empty()) {
    // No error frame for an upload: closed before any byte is stored.
    count_request(Verb::kUpload, false);
    fail(refused);
    return;
  }
  loop_.begin();  // the payload, then "received" and the float
  name_ = name;
  expected_ = static_cast<uint64_t>(size);
  started_ = Clock::now();
  transfer::UploadSink::Options o;
  o.name = std::move(name);
  o.transform = transfer::Transform::kIdentity;
  o.max_bytes = shared_.config->max_upload;
  auto sink = transfer::UploadSink::start(
      conn_, *shared_.executor, *shared_.root, std::move(o), sink_space(),
      [this](Status s, uint64_t) {
        payload_.reset();
        if (!s.ok()) {
          // The protocol has no error reply for an upload: log and close.
          count_request(Verb::kUpload, false);
          fail("upload " + name_ + ": " + std::string(errc_name(s.code)) + ": " + s.error);
          return;
        }
        conn_.write_owned("received");
        send_float_later(Verb::kUpload);
      });
  // The payload is `size` bytes; what follows is the next command.
  payload_.start(std::move(sink), kit::PayloadEnd::count(expected_));
  payload_step(payload_.feed());
}

}  // namespace fsrv::services::session
