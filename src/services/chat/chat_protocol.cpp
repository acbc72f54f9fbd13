// The "tugas 5" chat protocol: line parsing, replies (see chat_protocol.hpp
// for the rules and the course code they come from).

#include "fsrv/services/chat/chat_protocol.hpp"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "fsrv/codec/json_py.hpp"
#include "fsrv/codec/utf8.hpp"

namespace fsrv::services::chat {

namespace {

// chat_server.py: hasil = json.dumps(...) + "\r\n\r\n".
constexpr char kReplyEnd[] = "\r\n\r\n";

// Reply texts of chat.py, byte for byte (its typo "Kash" included).
constexpr std::string_view kMsgUnknownCommand = "**Protocol Tidak Benar";
constexpr std::string_view kMsgMissingArgument = "--Protocol Tidak Benar";
constexpr std::string_view kMsgSent = "Message Sent";
constexpr std::string_view kMsgLogout = "Terima Kash Telah Menggunakan Service Ini";
// The error message of each outcome (index = Outcome; kOk never is one):
// chat.py's texts byte for byte where it has the case.
constexpr std::string_view kOutcomeMessages[] = {
    "Server Error",               // kOk: never used
    "User Tidak Ada",             // kNoSuchUser
    "Password Salah",             // kWrongPassword
    "Informasi tidak ditemukan",  // kBadToken
    "User Tidak Ditemukan",       // kNoSuchReceiver
    "Inbox Penuh (the receiver's inbox is full: it must be read first)",
    "Server Error",  // kStoreError: ours, no counterpart in chat.py
    // kUnavailable: not in chat.py (its state is in memory); worded like its
    // messages, with the English beside it as in our other additions.
    "Database Tidak Tersedia, Coba Lagi (chat database unavailable, try again)"};
static_assert(std::size(kOutcomeMessages) == static_cast<size_t>(Outcome::kUnavailable) + 1);
constexpr std::string_view kMsgLineTooLong = "Baris Terlalu Panjang (maks 65536 byte)";
static_assert(kMaxLineBytes == 65536, "update kMsgLineTooLong");

bool is_python_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// {"status": STATUS, KEY: VALUE} + "\r\n\r\n", as chat_server.py sends it.
std::string reply(std::string_view status, std::string_view key, std::string_view value) {
  codec::PyJsonWriter w;
  w.begin_object();
  w.field("status", status);
  w.field(key, value);
  w.end_object();
  return w.take() + kReplyEnd;
}

// The reply for `outcome`: {"status": "OK", KEY: VALUE} when kOk, else its error.
std::string answer(Outcome outcome, std::string_view key, std::string_view value) {
  if (outcome == Outcome::kOk) return reply("OK", key, value);
  return reply_error(kOutcomeMessages[static_cast<size_t>(outcome)]);
}

// The five commands: their first word and how many words follow it at
// least (send's message may be empty).
struct CommandSpec {
  std::string_view name;
  CommandKind kind;
  size_t needed;
};
constexpr CommandSpec kCommands[] = {{"auth", CommandKind::kAuth, 2},
                                     {"send", CommandKind::kSend, 2},
                                     {"inbox", CommandKind::kInbox, 1},
                                     {"listuser", CommandKind::kListUser, 1},
                                     {"logout", CommandKind::kLogout, 1}};

}  // namespace

std::string_view python_strip(std::string_view text) {
  size_t begin = text.size(), end = 0;  // first / one past last non-space
  for (size_t i = 0; i < text.size();) {
    const codec::Utf8Step step = codec::utf8_next(text, i);
    if (!step.valid || !is_python_space(step.code_point)) {
      if (begin == text.size()) begin = i;
      end = i + step.size;
    }
    i += step.size;
  }
  return begin >= end ? text.substr(0, 0) : text.substr(begin, end - begin);
}

Command parse_line(std::string_view line) {
  // chat.py: j = data.split(" "); command = j[0].strip()
  const std::string_view stripped = python_strip(line);
  std::vector<std::string_view> words;
  for (size_t start = 0;;) {
    const size_t sp = stripped.find(' ', start);
    words.push_back(stripped.substr(start, sp - start));  // npos: the rest
    if (sp == std::string_view::npos) break;
    start = sp + 1;
  }

  Command cmd;  // an unknown command until the word is found
  const auto* spec = std::ranges::find(kCommands, python_strip(words[0]), &CommandSpec::name);
  if (spec == std::end(kCommands)) return cmd;
  cmd.kind = spec->kind;
  const size_t needed = spec->needed;
  if (words.size() < needed + 1) {
    cmd.error = ParseError::kMissingArgument;
    return cmd;
  }
  for (size_t i = 1; i <= needed; ++i) cmd.args.emplace_back(python_strip(words[i]));
  if (cmd.kind == CommandKind::kSend) {
    // chat.py joins j[3:] with spaces; we strip the result (the rest of the
    // stripped line after USER's separating space).
    const std::string_view rest =
        words.size() > 3 ? stripped.substr(words[3].data() - stripped.data()) : std::string_view();
    cmd.args.emplace_back(python_strip(rest));
  }
  cmd.error = ParseError::kNone;
  return cmd;
}

InboxReply::InboxReply(std::vector<InboxGroup> groups) : groups_(std::move(groups)) {
  w_.begin_object();
  w_.field("status", "OK");
  w_.key("messages");
  w_.begin_object();
}

std::string InboxReply::next(size_t budget) {
  if (done_) return {};
  while (group_ < groups_.size()) {
    InboxGroup& g = groups_[group_];
    if (message_ == 0) {
      w_.key(g.sender);
      w_.begin_array();
    }
    while (message_ < g.messages.size()) {
      InboxMessage& m = g.messages[message_++];
      w_.begin_object();
      w_.field("msg_from", m.msg_from);
      w_.field("msg_to", m.msg_to);
      w_.field("msg", m.msg);
      w_.end_object();
      m = InboxMessage{};  // written: its bytes are not needed again
      if (w_.str().size() >= budget) return w_.drain();
    }
    w_.end_array();
    std::vector<InboxMessage>().swap(g.messages);
    ++group_;
    message_ = 0;
  }
  w_.end_object();
  w_.end_object();
  done_ = true;
  return w_.drain() + kReplyEnd;
}

Reply execute_reply(ChatStore& store, const Command& cmd) {
  if (cmd.error == ParseError::kMissingArgument) return {reply_error(kMsgMissingArgument)};
  if (cmd.error != ParseError::kNone) return {reply_error(kMsgUnknownCommand)};
  switch (cmd.kind) {
    case CommandKind::kAuth: {
      AuthResult r = store.auth(cmd.args.at(0), cmd.args.at(1));
      return {answer(r.outcome, "tokenid", r.token)};
    }
    case CommandKind::kSend:
      return {answer(store.send(cmd.args.at(0), cmd.args.at(1), cmd.args.at(2)).outcome, "message",
                     kMsgSent)};
    case CommandKind::kInbox: {
      InboxResult r = store.inbox(cmd.args.at(0));
      if (r.outcome != Outcome::kOk) return {answer(r.outcome, {}, {})};
      return {"", std::make_unique<InboxReply>(std::move(r.groups))};
    }
    case CommandKind::kListUser: {
      ListUserResult r = store.listuser(cmd.args.at(0));
      std::string names;
      for (const std::string& u : r.usernames) names += u + ' ';
      return {answer(r.outcome, "listuseraktif", names)};
    }
    case CommandKind::kLogout:
      return {answer(store.logout(cmd.args.at(0)).outcome, "messages", kMsgLogout)};
    case CommandKind::kUnknown:
      break;
  }
  return {reply_error(kMsgUnknownCommand)};
}

std::string execute(ChatStore& store, const Command& cmd) {
  Reply reply = execute_reply(store, cmd);
  while (reply.inbox && !reply.inbox->done()) reply.text += reply.inbox->next(SIZE_MAX);
  return std::move(reply.text);
}

LineEnd find_line_end(std::string_view buffer) {
  const size_t window = std::min(buffer.size(), kMaxLineBytes + 2);  // line + "\r\n"
  const size_t nl = buffer.substr(0, window).find('\n');
  if (nl != std::string_view::npos) {
    const size_t size = (nl > 0 && buffer[nl - 1] == '\r') ? nl - 1 : nl;
    if (size > kMaxLineBytes) return {LineEnd::Kind::kTooLong};
    return {LineEnd::Kind::kLine, size, nl + 1};
  }
  // No terminator yet: a trailing '\r' may still be the start of one.
  const size_t content =
      (!buffer.empty() && buffer.back() == '\r') ? buffer.size() - 1 : buffer.size();
  return {content > kMaxLineBytes ? LineEnd::Kind::kTooLong : LineEnd::Kind::kNeedMore};
}

std::string reply_line_too_long() { return reply_error(kMsgLineTooLong); }

std::string reply_error(std::string_view message) { return reply("ERROR", "message", message); }

}  // namespace fsrv::services::chat
