#include "fsrv/services/file/reply.hpp"

#include <cjson/cJSON.h>

#include <cmath>

namespace fsrv::services::file {

namespace {

/// Prints an object unformatted, appends the reply end, frees the object.
std::string finish(cJSON* root) {
  char* text = cJSON_PrintUnformatted(root);
  std::string out = text ? ascii_json(text) : R"({"status":"ERROR","data":"out of memory"})";
  cJSON_free(text);
  cJSON_Delete(root);
  out += kReplyEnd;
  return out;
}

cJSON* with_status(const char* status) {
  cJSON* root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "status", status);
  return root;
}

/// A JSON string literal (quotes included) for `text`.
std::string json_string(std::string_view text) {
  cJSON* s = cJSON_CreateString(std::string(text).c_str());
  char* printed = cJSON_PrintUnformatted(s);
  std::string out = printed ? ascii_json(printed) : "\"\"";
  cJSON_free(printed);
  cJSON_Delete(s);
  return out;
}

/// Appends "\\uXXXX" (lower-case hex, as Python's json.dumps writes it).
void append_u16(std::string& out, uint32_t unit) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(unit >> shift) & 0xF];
}

/// Length of the valid UTF-8 sequence starting at s[i] and its code point,
/// or 0 if the bytes there are not valid UTF-8 (RFC 3629 section 4: no
/// overlong forms, no surrogates, nothing above U+10FFFF).
size_t utf8_sequence(std::string_view s, size_t i, uint32_t* cp) {
  auto at = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  unsigned char b0 = at(0);
  size_t len;
  uint32_t min;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2, min = 0x80, *cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3, min = 0x800, *cp = b0 & 0x0F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4, min = 0x10000, *cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((at(k) & 0xC0) != 0x80) return 0;
    *cp = (*cp << 6) | (at(k) & 0x3F);
  }
  if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF)) return 0;
  return len;
}

}  // namespace

std::string ascii_json(std::string_view json) {
  std::string out;
  out.reserve(json.size());
  size_t i = 0;
  while (i < json.size()) {
    auto b = static_cast<unsigned char>(json[i]);
    if (b < 0x80) {
      out += json[i++];
      continue;
    }
    uint32_t cp = 0;
    size_t len = utf8_sequence(json, i, &cp);
    if (len == 0) {
      cp = kReplacementChar;  // one invalid byte -> one U+FFFD
      len = 1;
    }
    if (cp > 0xFFFF) {  // UTF-16 surrogate pair (RFC 8259 section 7)
      cp -= 0x10000;
      append_u16(out, 0xD800 + (cp >> 10));
      append_u16(out, 0xDC00 + (cp & 0x3FF));
    } else {
      append_u16(out, cp);
    }
    i += len;
  }
  return out;
}

std::string json_quoted(std::string_view text) { return json_string(text); }

std::string ok_text(std::string_view text) {
  cJSON* root = with_status("OK");
  cJSON_AddStringToObject(root, "data", std::string(text).c_str());
  return finish(root);
}

std::string error_text(std::string_view text) {
  cJSON* root = with_status("ERROR");
  cJSON_AddStringToObject(root, "data", std::string(text).c_str());
  return finish(root);
}

std::string ok_list(const std::vector<std::string>& names) {
  cJSON* root = with_status("OK");
  cJSON* arr = cJSON_AddArrayToObject(root, "data");
  for (const std::string& n : names) cJSON_AddItemToArray(arr, cJSON_CreateString(n.c_str()));
  return finish(root);
}

std::string ok_size(std::string_view name, uint64_t bytes) {
  cJSON* root = with_status("OK");
  cJSON* data = cJSON_AddObjectToObject(root, "data");
  cJSON_AddStringToObject(data, "name", std::string(name).c_str());
  cJSON_AddNumberToObject(data, "bytes", static_cast<double>(bytes));
  cJSON_AddNumberToObject(data, "mb", std::round(static_cast<double>(bytes) / 1e4) / 100.0);
  return finish(root);
}

std::string ok_json(std::string_view data_json) {
  std::string out = R"({"status":"OK","data":)";
  out += ascii_json(data_json);
  out += '}';
  out += kReplyEnd;
  return out;
}

std::string error_message(const Status& status, std::string_view name) {
  switch (status.code) {
    case Errc::kInvalidName:
      return "invalid name: " + status.error;
    case Errc::kNotFound:
    case Errc::kNotRegular:
    case Errc::kPermission:
      return status.error + ": " + std::string(name);
    case Errc::kNoSpace:
      return "disk full";
    default:
      return status.error;
  }
}

std::string get_prefix(std::string_view name) {
  return R"({"status":"OK","data_namafile":)" + json_string(name) + R"(,"data_file":")";
}

}  // namespace fsrv::services::file
