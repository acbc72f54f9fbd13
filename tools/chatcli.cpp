// chatcli: interactive client for the chat service (course "tugas 5",
// docs/services/chat.md), the C++ counterpart of the course's chat-cli.py.
//
//   chatcli [-H host] [-p port]
//
// Commands (as chat-cli.py): auth USER PASSWORD, send USER MESSAGE...,
// inbox, listuser, logout, quit; plus help. The prompt shows the logged-in
// user ("messi@chat> "). Line editing, history and command completion come
// from libedit's readline interface. Each command is one request line
// ("<words> \r\n", the course client's spelling); the reply is read up to
// "\r\n\r\n" and parsed with cJSON. If the server closed the connection
// (idle timeout, restart) the request is retried once on a new one: the
// token lives in the server's database, so the session survives.
//
// Exit codes: 0 after quit or end of input, 2 usage, 3 cannot connect.

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <editline/readline.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <string>
#include <vector>

namespace {

constexpr int kExitOk = 0;
constexpr int kExitConnection = 3;
/// Largest reply accepted, in bytes: an inbox of thousands of messages fits;
/// a server sending more without "\r\n\r\n" is not the chat service.
constexpr size_t kMaxReply = 64u << 20;

const char* const kCommands[] = {"auth",   "send", "inbox", "listuser",
                                 "logout", "quit", "help",  nullptr};

/// One TCP connection to the chat service.
class Connection {
 public:
  Connection(std::string host, std::string port) : host_(std::move(host)), port_(std::move(port)) {}
  ~Connection() { disconnect(); }

  /// Connects; on failure returns false with the reason in `error`.
  bool connect(std::string& error) {
    disconnect();
    addrinfo hints{}, *res = nullptr;
    hints.ai_socktype = SOCK_STREAM;
    if (int rc = getaddrinfo(host_.c_str(), port_.c_str(), &hints, &res); rc != 0) {
      error = gai_strerror(rc);
      return false;
    }
    for (addrinfo* a = res; a; a = a->ai_next) {
      int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
      if (fd < 0) continue;
      if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
        fd_ = fd;
        break;
      }
      error = strerror(errno);
      close(fd);
    }
    freeaddrinfo(res);
    return fd_ >= 0;
  }

  /// Sends `line` + "\r\n" and returns the reply without its "\r\n\r\n";
  /// reconnects and retries once if the connection was lost. False with
  /// `error` when that fails too.
  bool request(const std::string& line, std::string& reply, std::string& error) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (fd_ < 0 && !connect(error)) return false;
      if (exchange(line, reply, error)) return true;
      disconnect();
    }
    return false;
  }

 private:
  bool exchange(const std::string& line, std::string& reply, std::string& error) {
    std::string out = line + " \r\n";  // chat-cli.py's "... \r\n"
    for (size_t off = 0; off < out.size();) {
      ssize_t n = send(fd_, out.data() + off, out.size() - off, MSG_NOSIGNAL);
      if (n <= 0) {
        error = n < 0 ? strerror(errno) : "connection closed";
        return false;
      }
      off += static_cast<size_t>(n);
    }
    std::string in;
    char buf[4096];
    while (true) {
      size_t end = in.find("\r\n\r\n");
      if (end != std::string::npos) {
        reply = in.substr(0, end);
        return true;
      }
      if (in.size() > kMaxReply) {
        error = "reply too long";
        return false;
      }
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        error = n < 0 ? strerror(errno) : "connection closed by the server";
        return false;
      }
      in.append(buf, static_cast<size_t>(n));
    }
  }
  void disconnect() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  std::string host_, port_;
  int fd_ = -1;
};

/// Splits on runs of spaces/tabs.
std::vector<std::string> words_of(const std::string& line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && isspace(static_cast<unsigned char>(line[i]))) ++i;
    size_t j = i;
    while (j < line.size() && !isspace(static_cast<unsigned char>(line[j]))) ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

/// The text after the first `n` words of `line`, leading blanks removed.
std::string rest_after(const std::string& line, int n) {
  size_t i = 0;
  for (int w = 0; w < n; ++w) {
    while (i < line.size() && isspace(static_cast<unsigned char>(line[i]))) ++i;
    while (i < line.size() && !isspace(static_cast<unsigned char>(line[i]))) ++i;
  }
  while (i < line.size() && isspace(static_cast<unsigned char>(line[i]))) ++i;
  return line.substr(i);
}

std::string json_string(const cJSON* obj, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(v) ? v->valuestring : "";
}

std::string now_hms() {
  time_t t = time(nullptr);
  tm local{};
  localtime_r(&t, &local);
  char buf[16];
  strftime(buf, sizeof buf, "%H:%M:%S", &local);
  return buf;
}

class Shell {
 public:
  explicit Shell(Connection& conn) : conn_(conn) {}

  std::string prompt() const { return user_.empty() ? "chat> " : user_ + "@chat> "; }

  /// Runs one input line; false after quit.
  bool run(const std::string& line) {
    std::vector<std::string> w = words_of(line);
    if (w.empty()) return true;
    const std::string& cmd = w[0];
    if (cmd == "quit" || cmd == "exit") return false;
    if (cmd == "help") {
      help();
    } else if (cmd == "auth") {
      if (w.size() != 3) return usage("auth USER PASSWORD");
      cJSON* r = call("auth " + w[1] + " " + w[2]);
      if (r && ok(r)) {
        token_ = json_string(r, "tokenid");
        user_ = w[1];
        printf("logged in as %s\n", user_.c_str());
      }
      cJSON_Delete(r);
    } else if (cmd == "send") {
      if (w.size() < 3) return usage("send USER MESSAGE...");
      if (!logged_in()) return true;
      cJSON* r = call("send " + token_ + " " + w[1] + " " + rest_after(line, 2));
      if (r && ok(r)) printf("%s\n", json_string(r, "message").c_str());
      cJSON_Delete(r);
    } else if (cmd == "inbox") {
      if (!logged_in()) return true;
      cJSON* r = call("inbox " + token_);
      if (r && ok(r)) print_inbox(cJSON_GetObjectItemCaseSensitive(r, "messages"));
      cJSON_Delete(r);
    } else if (cmd == "listuser") {
      if (!logged_in()) return true;
      cJSON* r = call("listuser " + token_);
      if (r && ok(r)) {
        std::vector<std::string> users = words_of(json_string(r, "listuseraktif"));
        printf("online (%zu):", users.size());
        for (const auto& u : users) printf(" %s", u.c_str());
        printf("\n");
      }
      cJSON_Delete(r);
    } else if (cmd == "logout") {
      if (!logged_in()) return true;
      cJSON* r = call("logout " + token_);
      if (r && ok(r)) {
        printf("%s\n", json_string(r, "messages").c_str());
        token_.clear();
        user_.clear();
      }
      cJSON_Delete(r);
    } else {
      printf("unknown command: %s (try help)\n", cmd.c_str());
    }
    fflush(stdout);
    return true;
  }

 private:
  bool usage(const char* text) {
    printf("usage: %s\n", text);
    fflush(stdout);
    return true;
  }
  bool logged_in() {
    if (!token_.empty()) return true;
    printf("not logged in: auth USER PASSWORD first\n");
    fflush(stdout);
    return false;
  }
  static void help() {
    printf(
        "auth USER PASSWORD     log in (demo users: messi, henderson, lineker / surabaya)\n"
        "send USER MESSAGE...   send a message\n"
        "inbox                  show and clear your unread messages\n"
        "listuser               users logged in now\n"
        "logout                 end every session of your user\n"
        "quit                   leave\n");
  }
  /// Sends a request; prints and returns null on a transport failure or a
  /// non-JSON reply. The caller deletes the object.
  cJSON* call(const std::string& line) {
    std::string reply, error;
    if (!conn_.request(line, reply, error)) {
      printf("connection error: %s\n", error.c_str());
      return nullptr;
    }
    cJSON* r = cJSON_ParseWithLength(reply.data(), reply.size());
    if (!r) printf("bad reply: %s\n", reply.c_str());
    return r;
  }
  /// True for {"status": "OK"}; else prints the server's message.
  bool ok(const cJSON* r) {
    if (json_string(r, "status") == "OK") return true;
    std::string msg = json_string(r, "message");
    printf("error: %s\n", msg.c_str());
    if (msg == "Informasi tidak ditemukan") {  // expired or logged out elsewhere
      token_.clear();
      user_.clear();
    }
    return false;
  }
  static void print_inbox(const cJSON* groups) {
    int count = 0;
    std::string at = now_hms();
    const cJSON* group = nullptr;
    cJSON_ArrayForEach(group, groups) {
      const cJSON* m = nullptr;
      cJSON_ArrayForEach(m, group) {
        printf("[%s] %s (%s): %s\n", at.c_str(), json_string(m, "msg_from").c_str(), group->string,
               json_string(m, "msg").c_str());
        ++count;
      }
    }
    if (count == 0) printf("no new messages\n");
  }

  Connection& conn_;
  std::string token_, user_;
};

/// libedit completion of the first word (command names).
char* command_generator(const char* text, int state) {
  static int index;
  static size_t len;
  if (state == 0) {
    index = 0;
    len = strlen(text);
  }
  while (const char* name = kCommands[index]) {
    ++index;
    if (strncmp(name, text, len) == 0) return strdup(name);
  }
  return nullptr;
}

char** complete(const char* text, int start, int) {
  rl_attempted_completion_over = 1;  // no file-name fallback
  if (start != 0) return nullptr;
  return rl_completion_matches(text, command_generator);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"chatcli: interactive client of the chat service (course tugas 5)"};
  std::string host = "127.0.0.1";
  int port = 8889;
  app.add_option("-H,--host", host, "Chat server host")->capture_default_str();
  app.add_option("-p,--port", port, "Chat server port")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  CLI11_PARSE(app, argc, argv);

  Connection conn(host, std::to_string(port));
  std::string error;
  if (!conn.connect(error)) {
    fprintf(stderr, "chatcli: cannot connect to %s:%d: %s\n", host.c_str(), port, error.c_str());
    return kExitConnection;
  }
  Shell shell(conn);
  bool interactive = isatty(STDIN_FILENO);
  if (interactive) {
    rl_attempted_completion_function = complete;
    printf("connected to %s:%d; type help\n", host.c_str(), port);
  }
  while (true) {
    std::string line;
    if (interactive) {
      char* raw = readline(shell.prompt().c_str());
      if (!raw) {
        printf("\n");
        break;
      }
      line = raw;
      free(raw);
      if (!words_of(line).empty()) add_history(line.c_str());
    } else if (!std::getline(std::cin, line)) {
      break;
    }
    if (!shell.run(line)) break;
  }
  return kExitOk;
}
