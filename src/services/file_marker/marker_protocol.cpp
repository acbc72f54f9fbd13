#include "fsrv/services/file_marker/marker_protocol.hpp"

#include <algorithm>

#include "fsrv/codec/ascii.hpp"

namespace fsrv::services::file_marker {

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string_view verb_name(Verb verb) {
  static constexpr std::string_view kNames[kVerbCount] = {"LIST", "UPLOAD", "DOWNLOAD", "AUTH",
                                                          "UNKNOWN"};
  return kNames[static_cast<int>(verb)];
}

Command parse_command(std::string_view text) {
  Command c;
  text = trim(text);
  size_t end = 0;
  while (end < text.size() && !is_space(text[end])) ++end;
  std::string_view verb = text.substr(0, end);
  std::string_view rest = trim(text.substr(end));
  if (codec::iequals_ascii(verb, "LIST")) {
    c.verb = Verb::kList;
    if (!rest.empty()) c.error = "LIST takes no argument";
    return c;
  }
  if (codec::iequals_ascii(verb, "AUTH")) {
    c.verb = Verb::kAuth;
    size_t cut = 0;
    while (cut < rest.size() && !is_space(rest[cut])) ++cut;
    std::string_view password = trim(rest.substr(cut));
    bool one_word = std::none_of(password.begin(), password.end(), is_space);
    if (cut == 0 || password.empty() || !one_word) {
      c.error = "usage: AUTH user password";
      return c;
    }
    c.name = std::string(rest.substr(0, cut));
    c.password = std::string(password);
    return c;
  }
  if (codec::iequals_ascii(verb, "UPLOAD")) {
    c.verb = Verb::kUpload;
  } else if (codec::iequals_ascii(verb, "DOWNLOAD")) {
    c.verb = Verb::kDownload;
  } else {
    c.error = std::string(kUnknown);
    return c;
  }
  if (rest.empty()) c.error = "Missing file name";
  c.name = std::string(rest);
  return c;
}

}  // namespace fsrv::services::file_marker
