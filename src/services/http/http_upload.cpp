// Bodies of the http service (HttpSession members): PUT /{name} and POST
// /upload/{name} stream into a transfer::UploadSink, POST /upload takes the
// first file part of a multipart/form-data body (MultipartReader), and the
// form echo of tugas 8 holds its body in memory under the service's
// budget (HttpService::take_form_bytes).

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "fsrv/services/http/http_form.hpp"
#include "fsrv/services/http/http_session.hpp"
#include "fsrv/services/http/http_util.hpp"

namespace fsrv::services::http {

void HttpSession::on_body(std::string_view piece) {
  if (state_ != State::kBody) return;
  switch (body_to_) {
    case BodyTo::kDiscard:
      return;
    case BodyTo::kMemory: {
      // Charged by the memory the body takes (its string's capacity), so
      // the budget bounds what the process really holds.
      std::string& body = rq_->form_body;
      const size_t want = body.size() + piece.size();
      if (want > kMaxMultipartBody) {
        fail_now(413, "Form body too large: limit " + std::to_string(kMaxMultipartBody) + " bytes");
        return;
      }
      const size_t need = want <= body.capacity()
                              ? body.capacity()
                              : std::min(std::max(want, 2 * body.capacity()), kMaxMultipartBody);
      const size_t grow = need > form_charged_ ? need - form_charged_ : 0;
      if (!service_.take_form_bytes(grow)) {
        release_form();
        fail_now(503, "Service Unavailable: form bodies are over their memory budget; retry",
                 "Retry-After: 1\r\n");
        return;
      }
      form_charged_ += grow;
      if (body.capacity() < want) body.reserve(need);
      body.append(piece);
      return;
    }
    case BodyTo::kSink:
      if (rq_->form) {
        if (!rq_->form->feed(piece, *this) && state_ == State::kBody) {
          fail_now(400, "Bad multipart body: " + rq_->form->error());
        }
        return;
      }
      sink_piece(piece);
      return;
  }
}

void HttpSession::sink_piece(std::string_view piece) {
  if (!sink_) return;
  if (rq_->overflow.empty()) piece.remove_prefix(sink_->feed(piece));
  rq_->overflow.append(piece);
  if (!sink_->error().ok())
    fail_now(status_for(sink_->error().code), error_body(sink_->error(), rq_->name));
}

// POST /upload: the first part with a (non-empty) filename is the file,
// stored under that name once it passes the name rules.
void HttpSession::on_part(const FormField& part) {
  if (state_ != State::kBody || file_seen_ || !part.is_file || part.filename.empty()) return;
  file_seen_ = true;
  rq_->name = part.filename;
  if (std::string why = storage::validate_name(rq_->name); !why.empty()) {
    fail_now(403, "Invalid file name: " + why);
    return;
  }
  in_file_ = true;
  start_upload();
}

void HttpSession::on_part_data(std::string_view piece) {
  if (state_ == State::kBody && in_file_) sink_piece(piece);
}

// ---------------------------------------------------------------- uploads

void HttpSession::start_upload() {
  if (rq_->head.framing == BodyFraming::kContentLength &&
      rq_->head.content_length > shared_.config->max_upload) {
    fail_now(413,
             "Upload too large: limit " + std::to_string(shared_.config->max_upload) + " bytes");
    return;
  }
  body_to_ = BodyTo::kSink;
  rq_->overflow.clear();
  transfer::UploadSink::Options o;
  o.name = rq_->name;
  o.max_bytes = shared_.config->max_upload;
  sink_ = transfer::UploadSink::start(
      conn_, *shared_.executor, *shared_.root, std::move(o),
      [this] {
        if (state_ == State::kBody && body_to_ == BodyTo::kSink) process_input();
      },
      [this](Status s, uint64_t bytes) { upload_done(std::move(s), bytes); });
}

// POST /upload: the body must be multipart/form-data; the sink starts
// with its file part (on_part). Anything else is refused from the head.
void HttpSession::start_form_upload() {
  const Header* ct = rq_->head.find("Content-Type");
  Result<std::string> boundary = multipart_boundary(ct ? ct->value : std::string());  // "": fails
  if (!boundary.ok()) {
    reject(400, std::string(kFormUploadHelp));
    return;
  }
  rq_->form = std::make_unique<MultipartReader>(boundary.value);
  body_to_ = BodyTo::kSink;  // pump_sink and the reply wait for the sink
  rq_->overflow.clear();
}

// Moves held-back body bytes into the sink and ends the upload once the
// message is complete. False while the sink has no room (reading stops;
// on_space calls process_input again).
bool HttpSession::pump_sink() {
  if (!sink_) return true;
  if (!rq_->overflow.empty()) rq_->overflow.erase(0, sink_->feed(rq_->overflow));
  if (!sink_->error().ok()) {
    fail_now(status_for(sink_->error().code), error_body(sink_->error(), rq_->name));
    return true;
  }
  if (!rq_->overflow.empty()) return false;
  if (body_complete_) {
    state_ = State::kResponding;
    sink_->end();
  }
  return true;
}

void HttpSession::upload_done(Status s, uint64_t bytes) {
  // PUT: the commit replaced a file (204, not 201), learnt from the rename
  // itself (storage::UploadFile::replaced).
  const bool replaced = sink_ && sink_->replaced();
  sink_.reset();
  if (s.ok()) service_.count_upload(bytes);
  service_.file_cache().erase(rq_->name);  // replaced (the stamp would tell too)
  if (state_ != State::kResponding) return;
  if (!s.ok()) {
    reply(status_for(s.code), kText, error_body(s, rq_->name));
    return;
  }
  std::string msg = "File " + rq_->name + " uploaded successfully";
  if (route_ == Route::kUploadPost || route_ == Route::kUploadForm) {
    reply(200, kText, msg);
  } else if (replaced) {  // RFC 9110 section 9.3.4: 204 replaced, 201 created
    reply(204, {}, {});
  } else {
    reply(201, kText, msg, "Location: /" + rq_->name + "\r\n");
  }
}

// tugas 8: each decoded field as name=value on its own line, a blank line,
// then every header line of the request exactly as received.
void HttpSession::reply_form() {
  std::vector<FormField> fields;
  const Header* ct = rq_->head.find("Content-Type");
  if (ct && iequals(ct->value.substr(0, 19), "multipart/form-data")) {
    Result<std::string> boundary = multipart_boundary(ct->value);
    Result<std::vector<FormField>> parts =
        boundary.ok() ? parse_multipart(rq_->form_body, boundary.value)
                      : Result<std::vector<FormField>>::failure(boundary.status());
    if (!parts.ok()) {
      release_form();
      reply(400, kText, "Bad form body: " + parts.error);
      return;
    }
    fields = std::move(parts.value);
  } else {
    fields = parse_urlencoded(rq_->form_body);
  }
  std::string body;
  for (const FormField& f : fields)
    body.append(f.name).append("=").append(f.is_file ? f.filename : f.value).append("\r\n");
  body += "\r\n";
  for (size_t i = 1; i < rq_->head.raw_lines.size(); ++i)
    body.append(rq_->head.raw_lines[i]).append("\r\n");
  release_form();
  reply(200, kText, body);
}

}  // namespace fsrv::services::http
