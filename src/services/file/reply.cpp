#include "fsrv/services/file/reply.hpp"

#include <cjson/cJSON.h>

#include <cmath>

#include "fsrv/codec/json_py.hpp"

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

std::string with_text(const char* status, std::string_view text) {
  cJSON* root = with_status(status);
  cJSON_AddStringToObject(root, "data", std::string(text).c_str());
  return finish(root);
}

}  // namespace

std::string json_quoted(std::string_view text) {
  cJSON* s = cJSON_CreateString(std::string(text).c_str());
  char* printed = cJSON_PrintUnformatted(s);
  std::string out = printed ? ascii_json(printed) : "\"\"";
  cJSON_free(printed);
  cJSON_Delete(s);
  return out;
}

std::string ok_text(std::string_view text) { return with_text("OK", text); }

std::string error_text(std::string_view text) { return with_text("ERROR", text); }

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

std::string get_prefix(std::string_view name) {
  return R"({"status":"OK","data_namafile":)" + json_quoted(name) + R"(,"data_file":")";
}

}  // namespace fsrv::services::file
