// The session protocol's commands that do work: ls, size and rm through
// storage on the executor, download through transfer::send_file, upload
// through the kit's PayloadReader (a byte count) into a
// transfer::UploadSink (session_session.hpp).

#include <string>
#include <utility>
#include <vector>

#include "fsrv/core/log.hpp"
#include "fsrv/services/session/session_session.hpp"
#include "fsrv/storage/storage.hpp"
#include "fsrv/transfer/upload_sink.hpp"

namespace fsrv::services::session {

namespace {

/// `bytes` as an `i` field, or -1 (logged) for a file of 2 GiB or more.
int32_t wire_size(uint64_t bytes, const char* verb, const std::string& name) {
  if (bytes <= kMaxWireSize) return static_cast<int32_t>(bytes);
  FSRV_LOG_WARN("session: %s %s: %llu bytes, over int32: -1", verb, name.c_str(),
                static_cast<unsigned long long>(bytes));
  return -1;
}

}  // namespace

// ---------------------------------------------------------------- ls

void SessionConn::start_ls() {
  call_storage<Result<std::vector<Entry>>>(
      shared_,
      [](const storage::Root& root) -> Result<std::vector<Entry>> {
        auto names = root.list();
        if (!names.ok()) return Result<std::vector<Entry>>::failure(names.status());
        Result<std::vector<Entry>> out;
        for (std::string& n : names.value) {
          auto size = root.size(n);
          if (!size.ok()) continue;  // removed since the listing
          int32_t wire = wire_size(size.value, "ls", n);
          out.value.push_back(Entry{std::move(n), wire});
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
  call_storage<Result<uint64_t>>(
      shared_, [name](const storage::Root& root) { return root.size(name); },
      [this, name](Result<uint64_t>& size) {
        if (!size.ok()) FSRV_LOG_INFO("session: size %s: %s", name.c_str(), size.error.c_str());
        int32_t v = size.ok() ? wire_size(size.value, "size", name) : -1;
        finish(Verb::kSize, v >= 0, pack_i32(v));
      });
}

void SessionConn::run_rm() {
  call_storage<Status>(
      shared_, [name = name_](const storage::Root& root) { return root.remove(name); },
      [this](Status& status) {
        if (!status.ok()) FSRV_LOG_INFO("session: rm %s: %s", name_.c_str(), status.error.c_str());
        finish(Verb::kRm, status.ok(), pack_i32(status.ok() ? 1 : -1));
      });
}

// ---------------------------------------------------------------- download

void SessionConn::start_download(std::string name) {
  started_ = Clock::now();
  name_ = std::move(name);
  call_storage<Result<storage::ReadFile>>(
      shared_, [name = name_](const storage::Root& root) { return root.open_read(name); },
      [this](Result<storage::ReadFile>& opened) {
        if (!opened.ok())
          FSRV_LOG_INFO("session: download %s: %s", name_.c_str(), opened.error.c_str());
        if (!opened.ok() || wire_size(opened.value.size(), "download", name_) < 0) {
          finish(Verb::kDownload, false, pack_i32(-1));
          return;
        }
        transfer::SendOptions o;
        o.prefix = pack_i32(static_cast<int32_t>(opened.value.size()));
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
  name_ = name;
  expected_ = static_cast<uint64_t>(size);
  started_ = Clock::now();
  transfer::UploadSink::Options o;
  o.name = std::move(name);
  o.max_bytes = shared_.config->max_upload;
  // The payload is `size` bytes; what follows is the next command. Then
  // "received" and the float.
  take_upload(shared_, std::move(o), kit::PayloadEnd::count(expected_), [this](Status s, uint64_t) {
    if (!s.ok()) {
      // The protocol has no error reply for an upload: log and close.
      count_request(Verb::kUpload, false);
      fail("upload " + name_ + ": " + std::string(errc_name(s.code)) + ": " + s.error);
      return;
    }
    conn_.write_owned("received");
    send_float_later();
  });
}

}  // namespace fsrv::services::session
