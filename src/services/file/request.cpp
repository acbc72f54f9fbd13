#include "fsrv/services/file/request.hpp"

#include "fsrv/codec/ascii.hpp"
#include "fsrv/core/limits.hpp"
#include "fsrv/services/kit/parse.hpp"

namespace fsrv::services::file {

namespace {

using kit::is_space;

const std::string_view kCmdNames[kCmdCount] = {"LIST",  "GET",  "UPLOAD", "DELETE", "SIZE",
                                               "STATS", "PING", "QUIT",   "AUTH",   "UNKNOWN"};

/// Reads one shlex token starting at `i` (not on whitespace). Returns the
/// index after it, or npos with *error set.
size_t read_token(std::string_view s, size_t i, std::string& out, std::string* error) {
  char quote = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (quote == '\'') {
      if (c == '\'')
        quote = 0;
      else
        out += c;
    } else if (quote == '"') {
      if (c == '"') {
        quote = 0;
      } else if (c == '\\' && i + 1 < s.size() && (s[i + 1] == '"' || s[i + 1] == '\\')) {
        out += s[++i];
      } else {
        out += c;
      }
    } else if (is_space(c)) {
      return i;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '\\') {
      if (i + 1 >= s.size()) {
        *error = "no escaped character";
        return std::string_view::npos;
      }
      out += s[++i];
    } else {
      out += c;
    }
  }
  if (quote) {
    *error = "unterminated quote";
    return std::string_view::npos;
  }
  return i;
}

}  // namespace

std::string_view cmd_name(Cmd cmd) { return kCmdNames[static_cast<int>(cmd)]; }

Cmd command_from_verb(std::string_view verb) {
  if (codec::iequals_ascii(verb, "CONNME")) return Cmd::kPing;
  if (codec::iequals_ascii(verb, "BYEBYE")) return Cmd::kQuit;
  return kit::verb_of<Cmd>(verb, cmd_name);
}

bool split_args(std::string_view line, std::vector<std::string>& out, std::string* error) {
  size_t i = 0;
  while (true) {
    while (i < line.size() && is_space(line[i])) ++i;
    if (i >= line.size()) return true;
    std::string token;
    i = read_token(line, i, token, error);
    if (i == std::string_view::npos) return false;
    out.push_back(std::move(token));
  }
}

Request parse_line(std::string_view line) {
  Request r;
  std::vector<std::string> words;
  if (!split_args(line, words, &r.error)) {
    r.error = "bad request: " + r.error;
    return r;
  }
  if (words.empty()) {
    r.error = "empty request";
    return r;
  }
  r.cmd = command_from_verb(words[0]);
  r.args.assign(words.begin() + 1, words.end());
  if (r.cmd == Cmd::kUnknown) {
    r.error = "unknown command: " + words[0].substr(0, 64);
    return r;
  }
  // The arguments each command takes, in Cmd's order (AUTH user password:
  // our extension, docs/PROTOCOL.md).
  static constexpr size_t kWant[kCmdCount] = {0, 1, 2, 1, 1, 0, 0, 0, 2, 0};
  size_t want = kWant[static_cast<int>(r.cmd)];
  const char* what = r.cmd == Cmd::kAuth     ? "a user name and a password"
                     : r.cmd == Cmd::kUpload ? "a file name and the base64 content"
                                             : "a file name";
  if (r.args.size() < want) {
    r.error = "missing argument: " + std::string(cmd_name(r.cmd)) + " needs " + what;
  } else if (r.args.size() > want) {
    r.error = "too many arguments for " + std::string(cmd_name(r.cmd)) +
              (want ? " (quote a name that has spaces)" : "");
  }
  return r;
}

Silence on_silence(std::string_view line, Request* request) {
  size_t start = 0;
  while (start < line.size() && is_space(line[start])) ++start;
  line.remove_prefix(start);
  size_t verb_end = 0;
  while (verb_end < line.size() && !is_space(line[verb_end])) ++verb_end;
  std::string_view verb = line.substr(0, verb_end);
  constexpr std::string_view kUpload = "UPLOAD";
  bool upload_prefix = verb_end == line.size() && !verb.empty() && verb.size() < kUpload.size() &&
                       codec::iequals_ascii(verb, kUpload.substr(0, verb.size()));
  if (upload_prefix || codec::iequals_ascii(verb, kUpload)) return Silence::kWait;
  *request = parse_line(line);
  // The parsed verb too: shlex makes `UPLO"AD"` and `DEL"ETE"` the verbs
  // UPLOAD and DELETE (found by make fuzz-file).
  if (request->cmd == Cmd::kUpload) return Silence::kWait;
  if (!request->error.empty()) return Silence::kAnswer;
  if (request->cmd == Cmd::kDelete) return Silence::kWait;
  return Silence::kRun;
}

Frame next_frame(std::string_view input) {
  Frame f;
  size_t start = 0;
  while (start < input.size() && is_space(input[start])) ++start;
  f.consumed = start;
  std::string_view rest = input.substr(start);
  if (rest.empty()) return f;

  // UPLOAD: the frame ends after "UPLOAD <name> " so the payload can stream.
  size_t verb_end = 0;
  while (verb_end < rest.size() && !is_space(rest[verb_end])) ++verb_end;
  if (verb_end < rest.size() && codec::iequals_ascii(rest.substr(0, verb_end), "UPLOAD")) {
    // The header never crosses a line end: a quoted name spanning "\r\n"
    // would otherwise frame differently whole and split across reads
    // (found by make fuzz-file).
    size_t term = find_terminator(rest);
    std::string_view head = rest.substr(0, term == std::string_view::npos ? rest.size() : term);
    size_t i = verb_end;
    while (i < head.size() && (head[i] == ' ' || head[i] == '\t')) ++i;
    if (i < head.size()) {
      std::string name, error;
      size_t end = read_token(head, i, name, &error);
      if (name.size() > limits::kMaxName) {
        // No valid name is this long: most likely the client joined name
        // and base64 with something other than a blank. Said now, not after
        // megabytes of payload have been read.
        f.kind = Frame::kTooLong;
        f.error = "UPLOAD: the file name is over " + std::to_string(limits::kMaxName) +
                  " bytes, or the space before the base64 is missing";
        return f;
      }
      if (end != std::string_view::npos && end < head.size() &&
          (head[end] == ' ' || head[end] == '\t')) {
        while (end < head.size() && (head[end] == ' ' || head[end] == '\t')) ++end;
        if (end > limits::kMaxLine) {
          f.kind = Frame::kTooLong;
          return f;
        }
        f.kind = Frame::kUploadHeader;
        f.consumed = start + end;
        f.name = std::move(name);
        return f;
      }
      // Otherwise the name is not complete yet, or the line ends right after
      // it: fall through to line framing ("missing argument").
    }
  }

  size_t nl = rest.find('\n');
  if (nl == std::string_view::npos) {
    if (rest.size() > limits::kMaxLine) f.kind = Frame::kTooLong;
    return f;
  }
  if (nl > limits::kMaxLine) {
    f.kind = Frame::kTooLong;
    return f;
  }
  std::string_view line = rest.substr(0, nl);
  while (!line.empty() && is_space(line.back())) line.remove_suffix(1);
  f.kind = Frame::kLine;
  f.line = line;
  f.consumed = start + nl + 1;
  return f;
}

bool payload_has_more_words(std::string_view payload_head) {
  payload_head = payload_head.substr(0, kUploadLookahead);
  payload_head = payload_head.substr(0, find_terminator(payload_head));
  size_t blank = payload_head.find_first_of(" \t");
  return blank != std::string_view::npos &&
         payload_head.find_first_not_of(" \t", blank) != std::string_view::npos;
}

size_t find_terminator(std::string_view payload) { return kit::find_any(payload, "\r\n"); }

}  // namespace fsrv::services::file
