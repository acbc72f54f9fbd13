#pragma once
// A small CSV reader (RFC 4180 quoting) for the stress tables: the grid
// driver reads back the rows bin/stress appended, and the tests check them.
// Header-only; no dependency beyond the standard library.

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace fsrv::bench {

/// A CSV file: its header row and data rows, fields unquoted.
struct Csv {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;

  /// Column index of `name`, or -1.
  int column(const std::string& name) const {
    for (size_t k = 0; k < header.size(); ++k) {
      if (header[k] == name) return static_cast<int>(k);
    }
    return -1;
  }
  /// Field `name` of data row `i`; "" if the column or field is missing.
  std::string get(size_t i, const std::string& name) const {
    int k = column(name);
    if (k < 0 || i >= rows.size() || static_cast<size_t>(k) >= rows[i].size()) return "";
    return rows[i][static_cast<size_t>(k)];
  }
};

/// Reads a CSV file; a missing file gives an empty Csv. Quoted fields may
/// hold commas, doubled quotes and line breaks; "\r" outside quotes is dropped.
inline Csv read_csv(const std::filesystem::path& path) {
  Csv csv;
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> rec;
  std::string field;
  bool quoted = false, any = false;
  auto end_record = [&] {
    rec.push_back(std::move(field));
    field.clear();
    (csv.header.empty() ? csv.header : csv.rows.emplace_back()) = std::move(rec);
    rec.clear();
    any = false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = any = true;
    } else if (c == ',') {
      rec.push_back(std::move(field));
      field.clear();
      any = true;
    } else if (c == '\n') {
      end_record();
    } else if (c != '\r') {
      field += c;
      any = true;
    }
  }
  if (any || !field.empty()) end_record();
  return csv;
}

}  // namespace fsrv::bench
