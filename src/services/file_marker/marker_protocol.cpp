#include "fsrv/services/file_marker/marker_protocol.hpp"

#include <algorithm>

namespace fsrv::services::file_marker {

namespace {

using kit::is_space;

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

Command parse_command(std::string_view text) {
  Command c;
  text = trim(text);
  size_t end = 0;
  while (end < text.size() && !is_space(text[end])) ++end;
  std::string_view rest = trim(text.substr(end));
  c.verb = kit::verb_of<Verb>(text.substr(0, end), kit::dialect_verb_name);
  if (c.verb == Verb::kUnknown) {
    c.error = std::string(kUnknown);
  } else if (c.verb == Verb::kList) {
    if (!rest.empty()) c.error = "LIST takes no argument";
  } else if (c.verb == Verb::kAuth) {
    size_t cut = 0;
    while (cut < rest.size() && !is_space(rest[cut])) ++cut;
    std::string_view password = trim(rest.substr(cut));
    if (cut == 0 || password.empty() || std::any_of(password.begin(), password.end(), is_space)) {
      c.error = "usage: AUTH user password";
    } else {
      c.name = std::string(rest.substr(0, cut));
      c.password = std::string(password);
    }
  } else {  // UPLOAD, DOWNLOAD
    if (rest.empty()) c.error = "Missing file name";
    c.name = std::string(rest);
  }
  return c;
}

}  // namespace fsrv::services::file_marker
