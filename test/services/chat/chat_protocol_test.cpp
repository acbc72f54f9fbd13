// The chat protocol (src/services/chat/chat_protocol.cpp): tokenising as
// the course's chat.py does, framing, and the exact reply bytes of every
// success and error against a real ChatStore on a temporary database.

#include "fsrv/services/chat/chat_protocol.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "chat_test_util.hpp"

namespace fsrv::services::chat {
namespace {

using testing::login;
using testing::open_store;

// Runs one line against the store (framing aside), like a connection would.
std::string run(ChatStore& store, std::string_view line) {
  return execute(store, parse_line(line));
}

// Whether `t` is a lower-case UUID4 text (8-4-4-4-12 hex, version 4,
// variant 8..b).
bool is_uuid4(std::string_view t) {
  if (t.size() != 36) return false;
  for (size_t i = 0; i < t.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    char c = t[i];
    if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return t[14] == '4' && (t[19] == '8' || t[19] == '9' || t[19] == 'a' || t[19] == 'b');
}

// The token out of an auth OK reply; fails the test if the reply is not one.
// (Checked by hand, not with std::regex: libstdc++ 12's regex compiler trips
// -Werror=maybe-uninitialized in the -O1 sanitizer builds.)
std::string token_of(const std::string& reply) {
  const std::string_view head = R"({"status": "OK", "tokenid": ")";
  const std::string_view tail = "\"}\r\n\r\n";
  std::string_view r = reply;
  bool ok = r.size() == head.size() + 36 + tail.size() && r.substr(0, head.size()) == head &&
            r.substr(head.size() + 36) == tail && is_uuid4(r.substr(head.size(), 36));
  EXPECT_TRUE(ok) << reply;
  return ok ? reply.substr(head.size(), 36) : std::string();
}

TEST(ChatParse, CourseClientLineWithTrailingSpace) {
  Command c = parse_line("auth messi surabaya \r\n");
  EXPECT_EQ(c.error, ParseError::kNone);
  EXPECT_EQ(c.kind, CommandKind::kAuth);
  EXPECT_EQ(c.args, (std::vector<std::string>{"messi", "surabaya"}));
}

TEST(ChatParse, CommandWordsAreExactAndLowerCase) {
  for (const char* line : {"AUTH messi surabaya", "Inbox t", "", "\r\n", "authx a b"}) {
    EXPECT_EQ(parse_line(line).error, ParseError::kUnknownCommand) << line;
  }
  EXPECT_EQ(parse_line("inbox t").kind, CommandKind::kInbox);
  EXPECT_EQ(parse_line("listuser t").kind, CommandKind::kListUser);
  EXPECT_EQ(parse_line("logout t").kind, CommandKind::kLogout);
}

TEST(ChatParse, MissingArgumentsAreCountedAfterTheCommand) {
  for (const char* line : {"auth", "auth messi",
                           "auth messi \r\n",  // stripped first
                           "send t", "inbox", "listuser", "logout\r\n",
                           // split(" ") only splits on spaces: a tab joins the words.
                           "auth messi\tsurabaya"}) {
    EXPECT_EQ(parse_line(line).error, ParseError::kMissingArgument) << line;
  }
}

TEST(ChatParse, PythonSplitKeepsEmptyWords) {
  // "auth  messi surabaya".split(" ") == ["auth", "", "messi", "surabaya"]
  Command c = parse_line("auth  messi surabaya");
  ASSERT_EQ(c.error, ParseError::kNone);
  EXPECT_EQ(c.args, (std::vector<std::string>{"", "messi"}));
}

TEST(ChatParse, SendMessageIsTheStrippedRestOfTheLine) {
  Command c = parse_line("send tok henderson  halo  apa kabar \r\n");
  ASSERT_EQ(c.error, ParseError::kNone);
  EXPECT_EQ(c.args, (std::vector<std::string>{"tok", "henderson", "halo  apa kabar"}));
  c = parse_line("send tok henderson");
  ASSERT_EQ(c.error, ParseError::kNone);
  EXPECT_EQ(c.args.at(2), "");
  c = parse_line("send tok henderson \t x\ty \t");
  EXPECT_EQ(c.args.at(2), "x\ty");
}

TEST(ChatParse, StripIsPythonsUnicodeStrip) {
  // " \xa0inbox t\u3000\r\n".strip() == "inbox t"
  Command c = parse_line("\xc2\xa0 inbox t\xe3\x80\x80\r\n");
  ASSERT_EQ(c.error, ParseError::kNone);
  EXPECT_EQ(c.kind, CommandKind::kInbox);
  EXPECT_EQ(c.args.at(0), "t");
  EXPECT_EQ(python_strip("\x1c\x1f a b \x0b\x0c"), "a b");
  EXPECT_EQ(python_strip(" \xff "), "\xff");  // invalid UTF-8 is not space
  EXPECT_EQ(python_strip(" \t "), "");
  EXPECT_EQ(python_strip("\xe2\x80\x8b"), "\xe2\x80\x8b");  // U+200B is not space in Python
  // Extra words after the token are ignored, as chat.py ignores them.
  EXPECT_EQ(parse_line("inbox t extra words").args, (std::vector<std::string>{"t"}));
}

// The inbox reply in pieces: each piece ends after the message that crossed
// the budget, the pieces joined are the one-piece reply, and the last ends
// with the terminator.
TEST(ChatInboxReply, PiecesJoinToTheWholeReply) {
  std::vector<InboxGroup> groups;
  for (int g = 0; g < 3; ++g) {
    InboxGroup group{"user" + std::to_string(g), {}};
    for (int m = 0; m < 4 + g; ++m) {
      group.messages.push_back(
          {"From " + std::to_string(g), "To", std::string(50 + m, 'a') + "\xff\"\n"});
    }
    groups.push_back(group);
  }
  InboxReply whole(groups);
  const std::string expected = whole.next(SIZE_MAX);
  EXPECT_TRUE(whole.done());
  EXPECT_EQ(whole.next(10), "");
  EXPECT_EQ(expected.rfind(R"({"status": "OK", "messages": {"user0": [{"msg_from": "From 0", )", 0),
            0u);
  EXPECT_EQ(expected.substr(expected.size() - 8), "}]}}\r\n\r\n");
  EXPECT_NE(expected.find(R"(\ufffd\"\n"}, {"msg_from")"), std::string::npos);

  InboxReply pieces(groups);
  std::string joined;
  int count = 0;
  while (!pieces.done()) {
    std::string piece = pieces.next(200);
    ASSERT_FALSE(piece.empty());
    // One message is about 110 bytes here: a piece stops past 200 with at
    // most one message (plus a group's head) beyond it.
    if (!pieces.done()) {
      EXPECT_LT(piece.size(), 200u + 150u);
    }
    joined += piece;
    ++count;
  }
  EXPECT_EQ(joined, expected);
  EXPECT_GT(count, 5);
}

TEST(ChatFraming, FindsCrLfAndBareLfLines) {
  LineEnd e = find_line_end("auth a b\r\ninbox t\n");
  ASSERT_EQ(e.kind, LineEnd::Kind::kLine);
  EXPECT_EQ(e.line_size, 8u);
  EXPECT_EQ(e.consumed, 10u);
  e = find_line_end("inbox t\nrest");
  ASSERT_EQ(e.kind, LineEnd::Kind::kLine);
  EXPECT_EQ(e.line_size, 7u);
  EXPECT_EQ(e.consumed, 8u);
  EXPECT_EQ(find_line_end("\n").line_size, 0u);
  EXPECT_EQ(find_line_end("").kind, LineEnd::Kind::kNeedMore);
  EXPECT_EQ(find_line_end("auth a b\r").kind, LineEnd::Kind::kNeedMore);
}

TEST(ChatFraming, LimitIsExactAndDecidedEarly) {
  std::string max(kMaxLineBytes, 'x');
  EXPECT_EQ(find_line_end(max).kind, LineEnd::Kind::kNeedMore);
  EXPECT_EQ(find_line_end(max + "\r").kind, LineEnd::Kind::kNeedMore);
  EXPECT_EQ(find_line_end(max + "\r\n").line_size, kMaxLineBytes);
  EXPECT_EQ(find_line_end(max + "\n").kind, LineEnd::Kind::kLine);
  EXPECT_EQ(find_line_end(max + "y").kind, LineEnd::Kind::kTooLong);
  EXPECT_EQ(find_line_end(max + "y\r\n").kind, LineEnd::Kind::kTooLong);
  EXPECT_EQ(find_line_end(max + "\rz").kind, LineEnd::Kind::kTooLong);
}

TEST(ChatFraming, OneMebibyteLineIsAClearError) {
  std::string big(1 << 20, 'a');
  EXPECT_EQ(find_line_end(big).kind, LineEnd::Kind::kTooLong);
  EXPECT_EQ(find_line_end(big + "\r\n").kind, LineEnd::Kind::kTooLong);
  EXPECT_EQ(reply_line_too_long(),
            "{\"status\": \"ERROR\", \"message\": \"Baris Terlalu Panjang (maks 65536 byte)\"}"
            "\r\n\r\n");
}

// The exact replies, against both backends.
class ChatReplies : public testing::BothBackends {
 protected:
  void SetUp() override {
    BothBackends::SetUp();
    if (IsSkipped()) return;
    store_ = open_at(new_location());
  }
  std::unique_ptr<ChatStore> store_;
};

TEST_P(ChatReplies, AuthOkAndItsErrors) {
  std::string reply = run(*store_, "auth messi surabaya \r\n");
  EXPECT_EQ(token_of(reply).size(), 36u);
  EXPECT_EQ(run(*store_, "auth maradona surabaya\r\n"),
            "{\"status\": \"ERROR\", \"message\": \"User Tidak Ada\"}\r\n\r\n");
  EXPECT_EQ(run(*store_, "auth messi jakarta\r\n"),
            "{\"status\": \"ERROR\", \"message\": \"Password Salah\"}\r\n\r\n");
  // Two spaces: chat.py looks up the user "" (split(" ") keeps it).
  EXPECT_EQ(run(*store_, "auth  messi surabaya\r\n"),
            "{\"status\": \"ERROR\", \"message\": \"User Tidak Ada\"}\r\n\r\n");
  // The hash string itself is not the password.
  EXPECT_EQ(run(*store_, "auth messi " + testing::demo()[0].password_hash),
            "{\"status\": \"ERROR\", \"message\": \"Password Salah\"}\r\n\r\n");
}

TEST_P(ChatReplies, ProtocolErrors) {
  EXPECT_EQ(run(*store_, "hello\r\n"),
            "{\"status\": \"ERROR\", \"message\": \"**Protocol Tidak Benar\"}\r\n\r\n");
  EXPECT_EQ(run(*store_, "\r\n"),
            "{\"status\": \"ERROR\", \"message\": \"**Protocol Tidak Benar\"}\r\n\r\n");
  for (const char* line :
       {"auth messi\r\n", "send\r\n", "send t\r\n", "inbox\r\n", "listuser \r\n", "logout\r\n"}) {
    EXPECT_EQ(run(*store_, line),
              "{\"status\": \"ERROR\", \"message\": \"--Protocol Tidak Benar\"}\r\n\r\n")
        << line;
  }
}

TEST_P(ChatReplies, BadTokenForEveryTokenCommand) {
  const std::string bad =
      "{\"status\": \"ERROR\", \"message\": \"Informasi tidak ditemukan\"}\r\n\r\n";
  const std::string unknown = "00000000-0000-4000-8000-000000000000";
  EXPECT_EQ(run(*store_, "send " + unknown + " henderson hi\r\n"), bad);
  EXPECT_EQ(run(*store_, "send xyz nobody hi\r\n"), bad);  // token before receiver
  EXPECT_EQ(run(*store_, "inbox " + unknown + "\r\n"), bad);
  EXPECT_EQ(run(*store_, "listuser short\r\n"), bad);
  EXPECT_EQ(run(*store_, "logout " + unknown + "\r\n"), bad);
}

TEST_P(ChatReplies, SendInboxListuserLogoutExactBytes) {
  const std::string messi = token_of(run(*store_, "auth messi surabaya \r\n"));
  const std::string hend = token_of(run(*store_, "auth henderson surabaya \r\n"));
  const std::string line = token_of(run(*store_, "auth lineker surabaya \r\n"));

  EXPECT_EQ(run(*store_, "send " + hend + " messi halo messi \r\n"),
            "{\"status\": \"OK\", \"message\": \"Message Sent\"}\r\n\r\n");
  EXPECT_EQ(run(*store_, "send " + line + " messi caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" \xff\r\n"),
            "{\"status\": \"OK\", \"message\": \"Message Sent\"}\r\n\r\n");
  EXPECT_EQ(run(*store_, "send " + hend + " messi lagi\r\n"),
            "{\"status\": \"OK\", \"message\": \"Message Sent\"}\r\n\r\n");
  EXPECT_EQ(run(*store_, "send " + hend + " maradona halo\r\n"),
            "{\"status\": \"ERROR\", \"message\": \"User Tidak Ditemukan\"}\r\n\r\n");

  // Keys in order of each sender's first unread message; oldest first.
  EXPECT_EQ(
      run(*store_, "inbox " + messi + "\r\n"),
      "{\"status\": \"OK\", \"messages\": {\"henderson\": ["
      "{\"msg_from\": \"Jordan Henderson\", \"msg_to\": \"Lionel Messi\", \"msg\": \"halo "
      "messi\"}, "
      "{\"msg_from\": \"Jordan Henderson\", \"msg_to\": \"Lionel Messi\", \"msg\": \"lagi\"}], "
      "\"lineker\": [{\"msg_from\": \"Gary Lineker\", \"msg_to\": \"Lionel Messi\", "
      "\"msg\": \"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\ufffd\"}]}}\r\n\r\n");
  // Reading emptied the queues.
  EXPECT_EQ(run(*store_, "inbox " + messi + "\r\n"),
            "{\"status\": \"OK\", \"messages\": {}}\r\n\r\n");

  EXPECT_EQ(run(*store_, "listuser " + line + "\r\n"),
            "{\"status\": \"OK\", \"listuseraktif\": \"messi henderson lineker \"}\r\n\r\n");
  EXPECT_EQ(run(*store_, "logout " + hend + "\r\n"),
            "{\"status\": \"OK\", \"messages\": \"Terima Kash Telah Menggunakan Service Ini\"}"
            "\r\n\r\n");
  EXPECT_EQ(run(*store_, "listuser " + messi + "\r\n"),
            "{\"status\": \"OK\", \"listuseraktif\": \"messi lineker \"}\r\n\r\n");
  EXPECT_EQ(run(*store_, "inbox " + hend + "\r\n"),
            "{\"status\": \"ERROR\", \"message\": \"Informasi tidak ditemukan\"}\r\n\r\n");
}

TEST_P(ChatReplies, EmptyMessageAndSendToSelf) {
  const std::string messi = login(*store_, "messi");
  EXPECT_EQ(run(*store_, "send " + messi + " messi\r\n"),
            "{\"status\": \"OK\", \"message\": \"Message Sent\"}\r\n\r\n");
  EXPECT_EQ(run(*store_, "inbox " + messi),
            "{\"status\": \"OK\", \"messages\": {\"messi\": [{\"msg_from\": \"Lionel Messi\", "
            "\"msg_to\": \"Lionel Messi\", \"msg\": \"\"}]}}\r\n\r\n");
}

TEST_P(ChatReplies, StoreNotOpenIsAServerError) {
  SqliteChatStore closed;
  EXPECT_EQ(run(closed, "auth messi surabaya"),
            "{\"status\": \"ERROR\", \"message\": \"Server Error\"}\r\n\r\n");
}

INSTANTIATE_TEST_SUITE_P(Backends, ChatReplies,
                         ::testing::Values(ChatDb::Kind::kSqlite, ChatDb::Kind::kPostgres),
                         testing::backend_name);

}  // namespace
}  // namespace fsrv::services::chat
