// Routing of the http service (HttpSession members): a parsed head to a
// Route (with the name rules, the cross-origin check and the listener's
// policy and accounts), the answers that need no body (pages, /stats,
// /whoami, /healthz, /metrics, OPTIONS), GET/HEAD of stored files (the
// small-file cache, Range, conditional GET), DELETE and the listings.

#include <cinttypes>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fsrv/auth/authenticator.hpp"
#include "fsrv/codec/json_py.hpp"
#include "fsrv/services/http/http_session.hpp"
#include "fsrv/services/http/http_util.hpp"
#include "fsrv/services/kit/storage_calls.hpp"
#include "fsrv/storage/small_file_cache.hpp"

namespace fsrv::services::http {

namespace {

/// The challenge of a 401 (RFC 7617 section 2: realm, and UTF-8 for the
/// user name and password).
constexpr const char* kChallenge = "WWW-Authenticate: Basic realm=\"fsrv\", charset=\"UTF-8\"\r\n";

/// Files up to this size are read by the open task and sent with the head
/// in one write (one syscall, no second pool hop: the small-file case of
/// `make bench-http`); larger ones stream with sendfile(2). 64 KiB is the
/// read buffer's size, so memory per connection stays bounded.
constexpr uint64_t kInlineFileMax = 64 * 1024;

/// Replies that are never cached (RFC 9111 section 5.2.2.5): live state.
constexpr std::string_view kNoStore = "Cache-Control: no-store\r\n";

/// Methods we implement: the Allow field of 405 (RFC 9110 section 15.5.6)
/// and OPTIONS.
constexpr std::string_view kAllow = "Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS\r\n";

/// Fields of every reply carrying a stored file: its bytes are never
/// sniffed into another type, and an HTML or SVG file opened in a browser
/// runs in a sandbox (no script, unique origin), so an uploaded page cannot
/// act on this server with the user's browser.
constexpr std::string_view kStoredFileFields =
    "X-Content-Type-Options: nosniff\r\nContent-Security-Policy: sandbox\r\n";

/// GET and HEAD paths (decoded, without the leading '/') of the pages.
constexpr std::pair<std::string_view, Route> kPages[] = {
    {"", Route::kIndex},         {"sending.html", Route::kSending}, {"listdir", Route::kListdir},
    {"stats", Route::kStats},    {"whoami", Route::kWhoami},        {"login", Route::kLogin},
    {"healthz", Route::kHealth}, {"metrics", Route::kMetrics},
};

/// True if If-None-Match's list matches the strong tag `etag` (RFC 9110
/// section 13.1.2: weak comparison, "*" matches any current file).
bool none_match(std::string_view field, std::string_view etag) {
  while (!field.empty()) {
    std::string_view item = trim_ows(next_item(field, ","));
    if (item.substr(0, 2) == "W/") item.remove_prefix(2);
    if (item == "*" || item == etag) return true;
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------- routing

void HttpSession::route() {
  Target t = split_target(rq_->head.target);
  std::string_view path = t.path;
  // Absolute-form (RFC 9112 section 3.2.2): a server must accept it.
  for (std::string_view scheme : {"http://", "https://"}) {
    if (path.size() >= scheme.size() && iequals(path.substr(0, scheme.size()), scheme)) {
      size_t slash = path.find('/', scheme.size());
      path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
    }
  }
  const std::string& m = rq_->head.method;
  // A browser sends Origin with a cross-site request; a write from another
  // site's page (or an opaque "null" origin) is refused, so a page
  // elsewhere cannot upload or delete through a visitor's browser. Clients
  // that send no Origin (curl, the course's) are not concerned.
  if (m == "PUT" || m == "POST" || m == "DELETE") {
    const Header* origin = rq_->head.find("Origin");
    const Header* host = rq_->head.find("Host");
    if (origin && !origin_matches_host(origin->value, host ? host->value : "")) {
      reject(403, "Cross-origin write refused: Origin " + origin->value +
                      " is not this server (Host " + (host ? host->value : "") + ")");
      return;
    }
  }
  if (m == "OPTIONS" && path == "*") {
    route_ = Route::kOptions;
    return;
  }
  if (path.empty() || path[0] != '/') {
    reject(400, "Bad request target");
    return;
  }
  Result<std::string> decoded = percent_decode_path(path.substr(1));  // decoded exactly once
  if (!decoded.ok()) {
    reject(400, "Bad request target: " + decoded.error);
    return;
  }
  const std::string& p = decoded.value;
  if (m == "GET" || m == "HEAD") {
    // The server's own pages by path (/metrics only when the process has
    // metrics); any other path names a stored file.
    route_ = Route::kFile;
    for (const auto& [page, to] : kPages) {
      if (p == page && (to != Route::kMetrics || shared_.metrics_text)) route_ = to;
    }
    if (route_ == Route::kFile) rq_->name = p;
  } else if (m == "POST") {
    if (p == "upload" || p == "upload/") {
      route_ = Route::kUploadForm;
    } else if (p.rfind("upload/", 0) == 0) {
      route_ = Route::kUploadPost;
      rq_->name = p.substr(7);
    } else {
      route_ = Route::kForm;
    }
  } else if (m == "PUT") {
    route_ = Route::kUploadPut;
    rq_->name = p;
  } else if (m == "DELETE") {
    route_ = Route::kDelete;
    rq_->name = p.rfind("delete/", 0) == 0 ? p.substr(7) : p;
  } else if (m == "OPTIONS") {
    route_ = Route::kOptions;
  } else {
    reject(405, "Method not allowed: " + m, std::string(kAllow));
    return;
  }
  if (route_ == Route::kFile || route_ == Route::kUploadPost || route_ == Route::kUploadPut ||
      route_ == Route::kDelete) {
    // The file protocol's name rules: no '/', no "..", no hidden names.
    if (std::string why = storage::validate_name(rq_->name); !why.empty()) {
      reject(403, "Invalid file name: " + why);
      return;
    }
  }
  authenticate();
}

// The listener's `,ro` / `,auth=`: 403 on a read-only listener or for a role
// that may not, 401 with a Basic challenge before an account (RFC 7617
// section 2).
void HttpSession::authenticate() {
  role_ = Role::kAnonymous;
  rq_->user.clear();
  const Header* h = rq_->head.find("Authorization");
  if (!h || !shared_.auth || service_.policy().auth == AuthScope::kNone) {
    refuse_by_policy();
    return;
  }
  std::string user, password;
  if (!parse_basic_credentials(h->value, user, password)) {
    reject(401, "Authorization: expected Basic credentials (RFC 7617)", kChallenge);
    return;
  }
  if (shared_.auth->cached(user, password, role_)) {
    rq_->user = user;
    refuse_by_policy();
    return;
  }
  // Held: the parser stops after this head until the check is back.
  auth_pending_ = true;
  conn_.pause_reading();
  ConnRef ref(&conn_);
  shared_.auth->check(user, password, peer_text(), [this, ref, user](auth::LoginOutcome outcome) {
    if (conn_.closing() || state_ != State::kBody) return;
    auth_pending_ = false;
    role_ = outcome.role;
    if (outcome.error.empty()) {
      rq_->user = user;
      refuse_by_policy();
    } else {
      reject(401, "Unauthorized: " + outcome.error, kChallenge);
    }
    if (state_ == State::kBody) begin_body();
    resume_after_hold_ = true;
    process_input();
  });
}

void HttpSession::refuse_by_policy() {
  Access access =
      route_ == Route::kDelete ? Access::kDelete
      : route_ == Route::kUploadPost || route_ == Route::kUploadPut || route_ == Route::kUploadForm
          ? Access::kWrite
          : Access::kRead;
  Refusal r = service_.policy().refuse(access, role_);
  if (r == Refusal::kLogin) {
    reject(401, "Authentication required: log in with an account of the users file", kChallenge);
  } else if (r != Refusal::kNone) {
    reject(403, "Forbidden: " + refusal_text(r, access));
  }
}

// A request we refuse from its head alone. Without a body, the reply waits
// for the (empty) message end and the connection stays open; with one, we
// answer now and close (RFC 9110 section 10.1.1 allows it for a client
// waiting on 100-continue; it saves reading a body we would drop).
void HttpSession::reject(int status, std::string text, std::string extra) {
  bool has_body =
      rq_->head.framing == BodyFraming::kChunked ||
      (rq_->head.framing == BodyFraming::kContentLength && rq_->head.content_length > 0);
  if (has_body) {
    fail_now(status, std::move(text), std::move(extra));
    return;
  }
  route_ = Route::kReject;
  reject_status_ = status;
  rq_->reject_text = std::move(text);
  rq_->reject_extra = std::move(extra);
}

void HttpSession::dispatch() {
  constexpr std::string_view kHtml = "text/html; charset=utf-8";
  switch (route_) {
    case Route::kReject:
      reply(reject_status_, kText, rq_->reject_text, rq_->reject_extra);
      return;
    case Route::kIndex:
    case Route::kListdir:
      start_listdir(route_ == Route::kIndex);
      return;
    case Route::kSending:
      reply(200, kHtml, sending_page());
      return;
    case Route::kStats:
      reply(200, "application/json", shared_.stats_json() + "\n", kNoStore);
      return;
    case Route::kWhoami: {
      // The user name holds only [A-Za-z0-9._-] (auth::validate_user_name).
      const ListenerPolicy& p = service_.policy();
      auto may = [&](Access a) { return p.refuse(a, role_) == Refusal::kNone ? "true" : "false"; };
      std::string body =
          "{\"user\":" + (rq_->user.empty() ? std::string("null") : "\"" + rq_->user + "\"") +
          ",\"role\":\"" + std::string(role_name(role_)) + "\",\"listener\":\"" + p.text() +
          "\",\"accounts\":" + (p.auth != AuthScope::kNone ? "true" : "false") +
          ",\"upload\":" + may(Access::kWrite) + ",\"delete\":" + may(Access::kDelete) + "}\n";
      reply(200, "application/json", body, kNoStore);
      return;
    }
    case Route::kLogin:
      if (service_.policy().auth != AuthScope::kNone && role_ == Role::kAnonymous) {
        reply(401, kText, "Log in with an account of this server\n", kChallenge);
      } else {
        reply(303, kText, "See /\n", "Location: /\r\n");
      }
      return;
    case Route::kHealth: {
      // 503 from the stop signal on, so HAProxy's `option httpchk` takes the
      // node out before its listeners close (--drain-delay).
      const bool failing = conn_.reactor().health_failing;
      reply(failing ? 503 : 200, kText,
            std::string(failing ? "draining" : "ok") + " node=" + shared_.node_id + "\n", kNoStore);
      return;
    }
    case Route::kMetrics:
      reply(200, "text/plain; version=0.0.4; charset=utf-8", shared_.metrics_text(), kNoStore);
      return;
    case Route::kFile:
      start_get(rq_->name, head_only_);
      return;
    case Route::kDelete:
      start_delete(rq_->name);
      return;
    case Route::kForm:
      reply_form();
      return;
    case Route::kOptions:
      reply(204, {}, {}, kAllow);
      return;
    case Route::kUploadPost:
    case Route::kUploadPut:
    case Route::kUploadForm:
      return;  // the sink's done callback replies
  }
}

// ---------------------------------------------------------------- GET / HEAD

void HttpSession::start_get(std::string name, bool head_only) {
  // A small file read before and unchanged since: no executor hop.
  storage::SmallFileCache& cache = service_.file_cache();
  if (auto hit = cache.find(name)) {
    answer_get(name, hit->stamp.size, hit->stamp.mtime_ns, &hit->data, nullptr, &hit->derived);
    return;
  }
  struct Opened {
    Result<storage::ReadFile> file;
    std::string data{};  ///< the whole file when it is at most kInlineFileMax
    bool inline_data = false;
    std::shared_ptr<const storage::CachedFile> cached{};  ///< read for the cache
  };
  const storage::Root* root = shared_.root;
  kit::call_storage<Opened>(
      conn_, shared_,
      [root, name, head_only] {
        Opened op{.file = root->open_read(name)};
        if (!op.file.ok() || head_only || op.file.value.size() > kInlineFileMax) return op;
        op.cached = storage::SmallFileCache::load(op.file.value);  // null when not cacheable
        if (op.cached) return op;
        op.data.resize(op.file.value.size());
        auto r =
            op.file.value.read_at({reinterpret_cast<uint8_t*>(op.data.data()), op.data.size()}, 0);
        if (!r.ok()) {
          op.file = Result<storage::ReadFile>::failure(r.status());
          return op;
        }
        op.data.resize(r.value);  // the file may have shrunk since open
        op.inline_data = true;
        return op;
      },
      [this, name, &cache](Opened& op) {
        if (!op.file.ok()) {
          reply(status_for(op.file.code), kText, error_body(op.file.status(), name));
          return;
        }
        if (op.cached) {
          cache.insert(name, op.cached);
          answer_get(name, op.cached->stamp.size, op.cached->stamp.mtime_ns, &op.cached->data,
                     nullptr, &op.cached->derived);
          return;
        }
        storage::ReadFile& f = op.file.value;
        answer_get(name, op.inline_data ? op.data.size() : f.size(), f.mtime_ns(),
                   op.inline_data ? &op.data : nullptr, &f);
      });
}

void HttpSession::answer_get(const std::string& name, uint64_t size, int64_t mtime_ns,
                             const std::string* data, storage::ReadFile* f,
                             std::string* validators) {
  int64_t mtime_s = mtime_ns / 1000000000;
  std::string made;
  if (!validators) validators = &made;
  if (validators->empty())
    *validators = make_etag(size, mtime_ns) + '\n' + format_http_date(mtime_s);
  std::string_view last_modified = *validators;
  const std::string_view etag = next_item(last_modified, "\n");
  std::string meta;
  meta.append("Last-Modified: ").append(last_modified).append("\r\nETag: ").append(etag);
  meta.append("\r\nAccept-Ranges: bytes\r\n").append(kStoredFileFields);
  // RFC 9110 section 13.2.2: If-None-Match first; If-Modified-Since
  // only without it.
  bool not_modified = false;
  if (const Header* inm = rq_->head.find("If-None-Match")) {
    not_modified = none_match(inm->value, etag);
  } else if (const Header* ims = rq_->head.find("If-Modified-Since")) {
    std::optional<int64_t> t = parse_http_date(ims->value);
    not_modified = t && mtime_s <= *t;
  }
  if (not_modified) {
    reply(304, {}, {}, meta);
    return;
  }
  std::string_view type = mime_type_for(name);
  const Header* range = rq_->head.find("Range");
  if (const Header* if_range = rq_->head.find("If-Range");
      range && if_range && if_range->value != etag && if_range->value != last_modified) {
    range = nullptr;  // RFC 9110 section 13.1.5: changed, send it whole
  }
  const RangeResult rr = range ? parse_range(range->value, size) : RangeResult{};
  if (rr.decision == RangeDecision::kUnsatisfiable) {
    reply(416, kText, "Range not satisfiable",
          meta + "Content-Range: " + content_range_unsatisfied(size) + "\r\n");
    return;
  }
  const bool partial = rr.decision == RangeDecision::kPartial;
  const int status = partial ? 206 : 200;
  const uint64_t offset = partial ? rr.range.first : 0;
  const uint64_t length = partial ? rr.range.length() : size;
  if (partial) meta += "Content-Range: " + content_range(rr.range, size) + "\r\n";
  count_once(status);
  if (head_only_) {
    conn_.write_owned(reply_head(status, type, static_cast<int64_t>(length), meta));
    finish(status, 0);
    return;
  }
  if (data) {
    reply(status, type, std::string_view(*data).substr(offset, length), meta);
    return;
  }
  transfer::SendOptions o;
  o.prefix = reply_head(status, type, static_cast<int64_t>(length), meta);
  o.offset = offset;
  o.length = length;
  get_ = transfer::send_file(conn_, *shared_.executor, std::move(*f), std::move(o),
                             [this, status, length](Status) {
                               get_.reset();
                               finish(status, length);
                             });
}

// ---------------------------------------------------------------- others

void HttpSession::start_delete(std::string name) {
  auto st = std::make_shared<Status>();
  const storage::Root* root = shared_.root;
  ConnRef ref(&conn_);
  shared_.executor->submit([st, root, name] { *st = root->remove(name); },
                           [this, ref, st, name] {
                             service_.file_cache().erase(name);
                             if (conn_.closing()) return;
                             if (st->ok()) {
                               reply(200, kText, "File " + name + " deleted successfully");
                             } else {
                               reply(status_for(st->code), kText, error_body(*st, name));
                             }
                           });
}

namespace {

// The JSON array of GET /listdir: each file's name, size in bytes and
// modification time in seconds since the epoch.
std::string listdir_json(const std::vector<ListedFile>& files) {
  std::string j = "[";
  for (const ListedFile& f : files) {
    if (j.size() > 1) j += ", ";
    j += "{\"name\": ";
    codec::append_json_string(j, f.name);
    char num[96];
    snprintf(num, sizeof num, ", \"size\": %" PRIu64 ", \"modified\": %.6f}", f.size,
             static_cast<double>(f.mtime_ns) / 1e9);
    j += num;
  }
  return j + "]";
}

// GET /'s page (`page`) or GET /listdir's JSON of the regular, non-hidden
// files of the root with size and mtime, sorted by name
// (storage::Root::list); names that vanish meanwhile are skipped. Runs on
// the pool.
Result<std::string> listing(const storage::Root& root, bool page) {
  auto names = root.list();
  if (!names.ok()) return Result<std::string>::failure(names.status());
  std::vector<ListedFile> files;
  for (const std::string& n : names.value) {
    auto f = root.open_read(n);  // size and mtime
    if (f.ok()) files.push_back({n, f.value.size(), f.value.mtime_ns()});
  }
  return {page ? web_page(files) : listdir_json(files), Errc::kOk, {}};
}

}  // namespace

// GET /listdir (JSON) and GET / (the page with the list in it).
void HttpSession::start_listdir(bool page) {
  const storage::Root* root = shared_.root;
  kit::call_storage<Result<std::string>>(
      conn_, shared_, [root, page] { return listing(*root, page); },
      [this, page](Result<std::string>& out) {
        if (!out.ok()) {
          reply(status_for(out.code), kText, error_body(out.status(), ""));
        } else if (page) {
          reply(200, "text/html; charset=utf-8", out.value, "Cache-Control: no-cache\r\n");
        } else {
          reply(200, "application/json", out.value, kNoStore);
        }
      });
}

}  // namespace fsrv::services::http
