// Streaming multipart/form-data reader (src/services/http/
// multipart_reader.cpp): bytes in, part events out. Every case is also fed
// split at every point and byte by byte.

#include "fsrv/services/http/multipart_reader.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace fsrv::services::http {
namespace {

struct Recorder : MultipartHandler {
  std::vector<std::string> events;
  std::string data;
  void on_part(const FormField& p) override {
    events.push_back("PART " + p.name + (p.is_file ? " file=" + p.filename : ""));
  }
  void on_part_data(std::string_view piece) override {
    EXPECT_FALSE(piece.empty());
    data += piece;
  }
  void on_part_end() override {
    events.push_back("DATA " + data);
    data.clear();
  }
};

struct Outcome {
  std::vector<std::string> events;
  bool ok = true;
  bool done = false;
  std::string error;
  bool operator==(const Outcome&) const = default;
};

Outcome run(const std::vector<std::string>& pieces) {
  Recorder rec;
  MultipartReader reader("b0undary");
  Outcome out;
  for (const std::string& p : pieces) out.ok = reader.feed(p, rec) && out.ok;
  out.events = rec.events;
  out.done = reader.done();
  out.error = reader.error();
  return out;
}

Outcome run_split_everywhere(const std::string& body) {
  const Outcome whole = run({body});
  for (size_t cut = 0; cut <= body.size(); ++cut) {
    EXPECT_EQ(run({body.substr(0, cut), body.substr(cut)}), whole) << "split at " << cut;
  }
  std::vector<std::string> bytes;
  for (char c : body) bytes.emplace_back(1, c);
  EXPECT_EQ(run(bytes), whole);
  return whole;
}

using V = std::vector<std::string>;

TEST(MultipartReader, FieldsAndAFileWithDelimiterLookalikes) {
  const std::string body =
      "ignored preamble\r\n--b0undary  \r\n"
      "Content-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
      "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a b.txt\"\r\n"
      "Content-Type: text/plain\r\n\r\n"
      "x\r\n--b0undar\r\n-b0undary\r\n---b0undary\r\n\r\n"
      "\r\n--b0undary--\r\nepilogue\r\n--b0undary\r\n";
  Outcome o = run_split_everywhere(body);
  EXPECT_TRUE(o.ok);
  EXPECT_TRUE(o.done);
  EXPECT_EQ(o.events, (V{"PART note", "DATA hello", "PART file file=a b.txt",
                         "DATA x\r\n--b0undar\r\n-b0undary\r\n---b0undary\r\n\r\n"}));
}

TEST(MultipartReader, BodyMayStartWithTheDelimiterAndPartsMayBeEmpty) {
  Outcome o = run_split_everywhere(
      "--b0undary\r\nContent-Disposition: form-data; name=\"f\"; filename=\"\"\r\n\r\n"
      "\r\n--b0undary--");
  EXPECT_TRUE(o.ok && o.done);
  EXPECT_EQ(o.events, (V{"PART f file=", "DATA "}));
}

TEST(MultipartReader, MalformedBodiesFail) {
  for (const std::string body :
       {"--b0undary\r\n\r\nno disposition\r\n--b0undary--",
        "--b0undary\r\nContent-Disposition: attachment; name=\"x\"\r\n\r\nv\r\n--b0undary--",
        "--b0undary\r\nBad header line\r\n\r\nv\r\n--b0undary--",
        "--b0undaryX\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv\r\n--b0undary--"}) {
    Outcome o = run_split_everywhere(body);
    EXPECT_FALSE(o.ok) << body;
    EXPECT_FALSE(o.error.empty());
  }
  // Part headers are bounded.
  std::string huge = "--b0undary\r\nX: " + std::string(kMaxPartHead, 'a');
  EXPECT_EQ(run({huge}).error, "part headers too large");
  // No closing delimiter: not done (the caller answers 400 at the body's end).
  Outcome cut = run({"--b0undary\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv"});
  EXPECT_TRUE(cut.ok);
  EXPECT_FALSE(cut.done);
}

}  // namespace
}  // namespace fsrv::services::http
