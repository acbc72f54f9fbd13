// Form bodies (see http_form.hpp for the RFC of each): urlencoded and
// small multipart/form-data bodies, the multipart boundary and one part's
// head.

#include "fsrv/services/http/http_form.hpp"

#include <string>
#include <vector>

#include "fsrv/services/http/multipart_reader.hpp"

namespace fsrv::services::http {

namespace {

// Form decoding of one name or value: '+' -> SP, %XX once, bad % literal.
std::string form_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%' && percent_escape_at(s, i) >= 0) {
      out.push_back(static_cast<char>(percent_escape_at(s, i)));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c)) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Parameters of a header value after its first ';' (RFC 9110 section
// 5.6.6): name (lower-cased) and value (quoted-string unescaped). False on
// malformed syntax.
struct Param {
  std::string name;
  std::string value;
};

bool parse_params(std::string_view s, std::vector<Param>& out) {
  size_t i = 0;
  auto skip_ows = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  };
  while (true) {
    skip_ows();
    if (i == s.size()) return true;
    if (s[i] != ';') return false;
    ++i;
    skip_ows();
    if (i == s.size()) return true;  // trailing ';'
    Param p;
    while (i < s.size() && is_tchar(s[i])) p.name.push_back(ascii_lower(s[i++]));
    if (p.name.empty() || i == s.size() || s[i] != '=') return false;
    ++i;
    if (i < s.size() && s[i] == '"') {  // quoted-string: '\\' escapes the next byte
      for (++i; i < s.size() && s[i] != '"'; ++i) {
        if (s[i] == '\\' && ++i == s.size()) return false;
        p.value.push_back(s[i]);
      }
      if (i++ == s.size()) return false;  // no closing quote
    } else {
      while (i < s.size() && is_tchar(s[i])) p.value.push_back(s[i++]);
      if (p.value.empty()) return false;
    }
    out.push_back(std::move(p));
  }
}

// Splits "type/subtype; params" into the lower-cased media type and params.
bool parse_media_type(std::string_view value, std::string& type, std::vector<Param>& params) {
  value = trim_ows(value);
  size_t semi = value.find(';');
  std::string_view t = trim_ows(value.substr(0, semi));
  type.clear();
  for (char c : t) type.push_back(ascii_lower(c));
  params.clear();
  return semi == std::string_view::npos || parse_params(value.substr(semi), params);
}

}  // namespace

std::vector<FormField> parse_urlencoded(std::string_view body) {
  std::vector<FormField> out;
  while (!body.empty() && out.size() < kMaxFormFields) {
    const std::string_view pair = next_item(body, "&");
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    FormField f;
    f.name = form_decode(pair.substr(0, eq));
    if (eq != std::string_view::npos) f.value = form_decode(pair.substr(eq + 1));
    out.push_back(std::move(f));
  }
  return out;
}

Result<std::string> multipart_boundary(std::string_view content_type) {
  std::string type;
  std::vector<Param> params;
  if (!parse_media_type(content_type, type, params)) {
    return Result<std::string>::failure(Errc::kBadRequest, "malformed Content-Type");
  }
  if (type != "multipart/form-data")
    return Result<std::string>::failure(Errc::kBadRequest, "not multipart/form-data");
  for (const Param& p : params) {
    if (p.name != "boundary") continue;
    // bcharsnospace etc.: 1-70 characters, not ending in a space (RFC 2046
    // section 5.1.1); CR/LF would break the framing.
    if (p.value.empty() || p.value.size() > 70 || p.value.back() == ' ' ||
        p.value.find_first_of("\r\n") != std::string::npos) {
      return Result<std::string>::failure(Errc::kBadRequest, "invalid multipart boundary");
    }
    return {p.value, Errc::kOk, {}};
  }
  return Result<std::string>::failure(Errc::kBadRequest, "missing multipart boundary");
}

Result<FormField> parse_part_head(std::string_view lines) {
  using R = Result<FormField>;
  R out;
  FormField& field = out.value;
  bool have_disposition = false;
  while (!lines.empty()) {
    const std::string_view line = next_item(lines, "\r\n");
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return R::failure(Errc::kBadRequest, "malformed part header");
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim_ows(line.substr(colon + 1));
    if (iequals(name, "content-disposition")) {
      std::string type;
      std::vector<Param> params;
      if (!parse_media_type(value, type, params) || type != "form-data") {
        return R::failure(Errc::kBadRequest, "part is not form-data");
      }
      have_disposition = true;
      for (Param& p : params) {
        if (p.name == "name") {
          field.name = std::move(p.value);
        } else if (p.name == "filename") {
          field.filename = std::move(p.value);
          field.is_file = true;
        }
      }
    } else if (iequals(name, "content-type")) {
      field.content_type = std::string(value);
    }
  }
  if (!have_disposition) return R::failure(Errc::kBadRequest, "part without Content-Disposition");
  if (field.name.empty()) return R::failure(Errc::kBadRequest, "part without a name");
  return out;
}

namespace {

// Keeps every part of a whole body, its value included (parse_multipart).
struct PartList final : MultipartHandler {
  std::vector<FormField> fields;
  void on_part(const FormField& part) override { fields.push_back(part); }
  void on_part_data(std::string_view piece) override { fields.back().value.append(piece); }
  void on_part_end() override {}
};

}  // namespace

Result<std::vector<FormField>> parse_multipart(std::string_view body, std::string_view boundary) {
  using R = Result<std::vector<FormField>>;
  if (body.size() > kMaxMultipartBody)
    return R::failure(Errc::kTooLarge, "multipart body too large");
  if (boundary.empty()) return R::failure(Errc::kBadRequest, "empty boundary");
  MultipartReader reader(boundary, kMaxMultipartBody);  // no part head is over the body
  PartList parts;
  if (!reader.feed(body, parts)) return R::failure(Errc::kBadRequest, reader.error());
  if (!reader.done())
    return R::failure(Errc::kBadRequest, "body ended before the closing boundary");
  return {std::move(parts.fields), Errc::kOk, {}};
}

}  // namespace fsrv::services::http
