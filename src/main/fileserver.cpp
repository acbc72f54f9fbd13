// bin/fileserver: the course's services on one event loop (README.md,
// docs/PROTOCOL.md): the file protocol by default, every registered service
// with --listen.

#include <malloc.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>

#include "fsrv/app/serve.hpp"
#include "fsrv/auth/users.hpp"
#include "fsrv/core/access_log.hpp"
#include "fsrv/core/limits.hpp"
#include "fsrv/core/log.hpp"
#include "fsrv/core/version.hpp"
#include "fsrv/main/config_file.hpp"
#include "fsrv/reactor/tls.hpp"
#include "fsrv/runtime/runtime.hpp"
#include "fsrv/services/service.hpp"

namespace {

/// --all-services with --tls-cert: http over TLS on 8443 (HTTPS's usual
/// alternative port) and the file protocol over TLS on 6667 (beside 6666).
constexpr int kAllServicesHttpsPort = 8443;
constexpr int kAllServicesFileTlsPort = 6667;

/// --all-services' TLS listeners: with a certificate (`cert` not empty),
/// http on kAllServicesHttpsPort and file on kAllServicesFileTlsPort.
void add_tls_course_listeners(const std::string& cert, const std::string& host,
                              std::vector<fsrv::ListenSpec>& out) {
  if (cert.empty()) return;
  for (auto [name, port] :
       {std::pair{"http", kAllServicesHttpsPort}, std::pair{"file", kAllServicesFileTlsPort}}) {
    fsrv::ListenSpec spec{name, fsrv::Endpoint{host, port}};
    spec.tls = true;
    out.push_back(spec);
  }
}

/// Parses "SERVICE=[HOST:]PORT[,max-conns=N][,ro][,auth=write|all][,tls]" (IPv6 host in brackets:
/// "http=[::1]:8885"); a missing host is `default_host`. Returns "" or what
/// is wrong.
std::string parse_listen(const std::string& text, const std::string& default_host,
                         fsrv::ListenSpec& out) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return "expected SERVICE=[HOST:]PORT[,max-conns=N][,ro][,auth=write|all][,tls]";
  }
  out.service = text.substr(0, eq);
  std::string addr = text.substr(eq + 1);
  std::vector<std::string> keys;
  for (auto comma = addr.rfind(','); comma != std::string::npos; comma = addr.rfind(',')) {
    keys.insert(keys.begin(), addr.substr(comma + 1));
    addr.resize(comma);
  }
  for (const std::string& key : keys) {
    if (key == "tls") {
      out.tls = true;
      continue;
    }
    if (key == "ro") {
      out.policy.read_only = true;
      continue;
    }
    if (key == "auth=write" || key == "auth=all") {
      out.policy.auth = key == "auth=write" ? fsrv::AuthScope::kWrite : fsrv::AuthScope::kAll;
      continue;
    }
    const std::string prefix = "max-conns=";
    std::string n = key.rfind(prefix, 0) == 0 ? key.substr(prefix.size()) : "";
    if (n.empty() || n.size() > 7 || n.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(n) < 1) {
      return "bad key '" + key +
             "' (expected max-conns=N with N >= 1, ro, auth=write, auth=all or tls)";
    }
    out.max_conns = std::stoi(n);
  }
  std::string port;
  if (!addr.empty() && addr[0] == '[') {
    auto close = addr.find(']');
    if (close == std::string::npos || close + 1 >= addr.size() || addr[close + 1] != ':') {
      return "expected [IPV6]:PORT";
    }
    out.endpoint.host = addr.substr(1, close - 1);
    port = addr.substr(close + 2);
  } else if (auto colon = addr.rfind(':'); colon != std::string::npos) {
    out.endpoint.host = addr.substr(0, colon);
    port = addr.substr(colon + 1);
  } else {
    out.endpoint.host = default_host;
    port = addr;
  }
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535) {
    return "bad port '" + port + "'";
  }
  out.endpoint.port = std::stoi(port);
  return "";
}

/// `fileserver hash-password NAME ROLE`: reads the password from standard
/// input (its first line) and prints the users-file line. Exit 2 on a bad
/// name, role or empty password.
int hash_password_command(int argc, char** argv) {
  fsrv::Role role;
  if (argc != 4 || !fsrv::parse_role(argv[3], role)) {
    fprintf(stderr, "usage: fileserver hash-password NAME read|write|admin  (password on stdin)\n");
    return fsrv::kExitConfig;
  }
  std::string password;
  for (int c = getchar(); c != EOF && c != '\n'; c = getchar()) password += static_cast<char>(c);
  if (!password.empty() && password.back() == '\r') password.pop_back();
  if (password.empty()) {
    fprintf(stderr, "fileserver: hash-password: empty password on standard input\n");
    return fsrv::kExitConfig;
  }
  auto line = fsrv::auth::make_users_line(argv[2], role, password);
  if (!line.ok()) {
    fprintf(stderr, "fileserver: hash-password: %s\n", line.error.c_str());
    return fsrv::kExitConfig;
  }
  printf("%s\n", line.value.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "hash-password")
    return hash_password_command(argc, argv);
  fsrv::ServerConfig config;
  std::string mode = "thread";
  std::string codec = "fast";
  std::string level = "info";
  std::vector<std::string> listens;
  bool list_services = false;
  bool porcelain = false;
  bool all_services = false;
  CLI::App app{"Event-driven server for the course's services (libuv)."};
  app.add_option("--listen", listens,
                 "SERVICE=[HOST:]PORT[,KEY...], KEY one of max-conns=N, ro, auth=write|all, "
                 "tls; repeatable (e.g. --listen echo=31000, --listen http=8080,ro, "
                 "--listen http=8443,tls); "
                 "without it, one file listener on --host/--port");
  app.add_flag("--services", list_services, "List the registered services and exit");
  app.add_flag("--porcelain", porcelain,
               "With --services: tab-separated NAME, PORTS, TRY-COMMAND lines for scripts");
  app.add_flag("--all-services", all_services,
               "Listen on every registered service's course ports (on --host), as make run-server");
  app.add_option("--host", config.host, "Address to listen on")->capture_default_str();
  app.add_option("--port", config.port, "TCP port; 0 picks a free one (printed on stdout)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  app.add_option("--root", config.root, "Directory served (created if missing)")
      ->capture_default_str();
  app.add_option("--workers", config.workers, "Thread pool size or worker processes")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--loops", config.loops,
                 "Thread mode: event-loop threads accepting on the same listeners, each "
                 "with its own reactor (the file pool is shared)")
      ->capture_default_str()
      ->check(CLI::Range(1, fsrv::limits::kMaxLoops));
  app.add_option("--mode", mode, "thread | process")
      ->capture_default_str()
      ->check(CLI::IsMember({"thread", "process"}));
  app.add_option("--max-upload", config.max_upload, "Largest upload in decoded bytes")
      ->capture_default_str();
  app.add_option("--idle-timeout", config.idle_timeout_s, "Close clients silent this long (s)")
      ->capture_default_str();
  app.add_option("--max-conns", config.max_conns, "Concurrent connections before 'server busy'")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--max-conns-per-address", config.max_conns_per_address,
                 "Connections one client address may hold (0 = no cap)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--stats-interval", config.stats_interval_s,
                 "Print a stats line every N seconds (0 = only at shutdown)")
      ->capture_default_str();
  app.add_option("--legacy-idle-ms", config.legacy_idle_ms,
                 "Run an unterminated non-UPLOAD command after this much silence (0 = never)")
      ->capture_default_str();
  app.add_option("--request-timeout", config.request_timeout_s,
                 "Seconds a request line may take from its first byte (0 = no limit)")
      ->capture_default_str();
  app.add_option("--min-rate", config.min_rate,
                 "Slowest payload or reply in bytes/s over --min-rate-window (0 = no limit)")
      ->capture_default_str();
  app.add_option("--min-rate-window", config.min_rate_window_s,
                 "Window in seconds over which --min-rate is measured")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--grace", config.grace_s, "Seconds in-flight transfers get at shutdown")
      ->capture_default_str();
  app.add_option("--codec", codec, "Base64 codec: fast | libb64")
      ->capture_default_str()
      ->check(CLI::IsMember({"fast", "libb64"}));
  app.add_option("--log-level", level, "error | warn | info | debug")
      ->capture_default_str()
      ->check(CLI::IsMember({"error", "warn", "info", "debug"}));
  std::string log_format = "text", log_file, access_log;
  app.add_option("--log-format", log_format, "Server and access log lines: text | json")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--log-file", log_file,
                 "Append the server log to FILE instead of stderr (SIGUSR1 reopens it)");
  app.add_option("--access-log", access_log,
                 "Append one line per request to FILE: Combined Log Format for http, "
                 "SERVICE PEER VERB NAME STATUS BYTES SECONDS for file, session, tftp "
                 "(SIGUSR1 reopens it)");
  // accounts (docs/SECURITY.md)
  app.add_option("--users", config.users_file,
                 "Accounts of the auth= listeners: NAME:HASH:ROLE lines (fileserver "
                 "hash-password NAME ROLE prints one); SIGHUP reads it again")
      ->check([](const std::string& path) -> std::string {
        auto users = fsrv::auth::Users::load(path);
        return users.ok() ? std::string() : users.error;
      });
  // cluster (docs/CLUSTER.md)
  app.add_option("--node-id", config.node_id,
                 "this node's id in upload temporaries and /healthz (default: host name + "
                 "boot id); give each node sharing a root its own");
  app.add_option("--drain-delay", config.drain_delay_s,
                 "seconds between SIGTERM and closing the listeners, /healthz failing "
                 "meanwhile so a load balancer stops routing here first")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 600.0));
  // Each service's own options (ServiceInfo::add_options), in registry order.
  for (const auto& s : fsrv::services::registry()) {
    if (s.add_options) s.add_options(app, config);
  }

  // TLS (docs/TLS.md)
  app.add_option("--tls-cert", config.tls_cert,
                 "PEM certificate chain of the ,tls listeners (make certs: build/certs/cert.pem)");
  app.add_option("--tls-key", config.tls_key, "PEM private key of --tls-cert");

  // --config FILE, --print-config, --version: every option above has a key.
  std::vector<std::string> service_names;
  for (const auto& s : fsrv::services::registry()) service_names.emplace_back(s.name);
  fsrv::main::ConfigFile config_file(app, service_names, fsrv::version_line(),
                                     {"services", "porcelain"});
  config_file.check_values("listen", [](const std::string& text) {
    fsrv::ListenSpec spec;
    return parse_listen(text, "0.0.0.0", spec);
  });
  if (int rc = config_file.parse(argc, argv); rc >= 0) return rc;

  // --listen before --services: the shares below are those of these listeners.
  std::vector<fsrv::ListenSpec> given;
  for (const std::string& l : listens) {
    fsrv::ListenSpec spec;
    if (std::string why = parse_listen(l, config.host, spec); !why.empty()) {
      fprintf(stderr, "fileserver: --listen %s: %s\n", l.c_str(), why.c_str());
      return fsrv::kExitConfig;
    }
    given.push_back(spec);
  }
  if (list_services) {
    for (const auto& s : fsrv::services::registry()) {
      std::string ports;
      for (int p : s.default_ports) ports += (ports.empty() ? "" : ",") + std::to_string(p);
      if (porcelain) {
        printf("%s\t%s\t%s\n", std::string(s.name).c_str(), ports.c_str(),
               std::string(s.try_command).c_str());
      } else {
        printf("%-12s %-18s %s [listener keys: %s]\n", std::string(s.name).c_str(), ports.c_str(),
               std::string(s.description).c_str(), fsrv::services::policy_keys_text(s).c_str());
      }
    }
    if (porcelain) return 0;
    // Each listener's connection share (of --listen, or of --all-services).
    std::vector<fsrv::ListenSpec> layout = given;
    if (layout.empty()) {
      for (const auto& s : fsrv::services::registry()) {
        for (int p : s.default_ports) {
          layout.push_back({std::string(s.name), fsrv::Endpoint{config.host, p}});
        }
      }
      add_tls_course_listeners(config.tls_cert, config.host, layout);
    }
    std::vector<int> asked;
    for (const auto& l : layout) {
      const auto* info = fsrv::services::find(l.service);
      bool udp = info && info->transport == fsrv::services::Transport::kDatagram;
      asked.push_back(udp ? -1 : l.max_conns);
    }
    auto shares = fsrv::reactor::ConnectionLimits::plan(config.max_conns, asked);
    printf("\nconnection shares (--max-conns %d, --max-conns-per-address %d):\n", config.max_conns,
           config.max_conns_per_address);
    for (size_t i = 0; i < layout.size(); ++i) {
      if (shares[i].max_conns == 0) continue;
      std::string notes = fsrv::runtime::listen_notes(layout[i]);
      printf("  %-12s %-22s max-conns %d, %d kept for it%s\n", layout[i].service.c_str(),
             layout[i].endpoint.text().c_str(), shares[i].max_conns, shares[i].reserved,
             notes.c_str());
    }
    return 0;
  }
  if (all_services) {
    for (const auto& s : fsrv::services::registry()) {
      for (int p : s.default_ports) {
        config.listeners.push_back({std::string(s.name), fsrv::Endpoint{config.host, p}});
      }
    }
    add_tls_course_listeners(config.tls_cert, config.host, config.listeners);
  }
  for (const fsrv::ListenSpec& spec : given) config.listeners.push_back(spec);
  for (const fsrv::ListenSpec& spec : config.listeners) {
    if (spec.policy.auth != fsrv::AuthScope::kNone && config.users_file.empty()) {
      fprintf(stderr, "fileserver: --listen %s=%s,%s needs --users FILE (the accounts)\n",
              spec.service.c_str(), spec.endpoint.text().c_str(), spec.policy.text().c_str());
      return fsrv::kExitConfig;
    }
  }
  // A tls listener needs a certificate and key that load: checked here so a
  // bad file stops the server at once (exit 2) naming the file.
  if (std::any_of(config.listeners.begin(), config.listeners.end(),
                  [](const fsrv::ListenSpec& l) { return l.tls; })) {
    std::string why;
    if (!fsrv::reactor::TlsContext::load(config.tls_cert, config.tls_key, &why)) {
      fprintf(stderr, "fileserver: %s\n", why.c_str());
      return fsrv::kExitConfig;
    }
  }
  // Buffers of 64 KiB and more come from mmap, whatever was freed before
  // (glibc's threshold otherwise grows), so memory goes back to the kernel
  // when clients leave (hardening issue, point 1).
  mallopt(M_MMAP_THRESHOLD, 64 * 1024);

  fsrv::log::Level lv;
  fsrv::log::parse_level(level, lv);
  fsrv::log::set_level(lv);
  fsrv::log::Format lf;
  fsrv::log::parse_format(log_format, lf);
  fsrv::log::set_format(lf);
  for (const std::string& why : {log_file.empty() ? "" : fsrv::log::open_log_file(log_file),
                                 fsrv::log::open_access_log(access_log)}) {
    if (!why.empty()) {
      fprintf(stderr, "fileserver: %s\n", why.c_str());
      return fsrv::kExitConfig;
    }
  }
  fsrv::codec::parse_base64_kind(codec, config.codec);
  config.mode = mode == "process" ? fsrv::PoolMode::kProcess : fsrv::PoolMode::kThread;
  // SIGHUP: the same file under the same command line, read again into the
  // same variables, which are then put back (the servers keep copies).
  fsrv::runtime::set_config_source([&](fsrv::ServerConfig& out, std::vector<std::string>& restart) {
    if (config_file.path().empty()) {
      // No file: the command line stays as it was; what the services read
      // from their own files (the chat's users) is still read again.
      out = config;
      return std::string();
    }
    const fsrv::ServerConfig saved = config;
    const auto saved_listens = listens;
    const bool saved_all = all_services;
    const std::string words[] = {mode, codec, level, log_format, log_file, access_log};
    std::string why = config_file.reload();
    out = config;
    out.listeners = saved.listeners;
    out.mode = saved.mode;
    out.codec = saved.codec;
    if (listens != saved_listens || all_services != saved_all) restart.emplace_back("listen");
    const char* names[] = {"mode", "codec", "", "log-format", "log-file", "access-log"};
    std::string* now[] = {&mode, &codec, &level, &log_format, &log_file, &access_log};
    for (size_t i = 0; i < std::size(names); ++i) {
      if (*names[i] && *now[i] != words[i]) restart.emplace_back(names[i]);
    }
    fsrv::log::Level new_level;
    if (why.empty() && fsrv::log::parse_level(level, new_level)) fsrv::log::set_level(new_level);
    config = saved;
    listens = saved_listens;
    all_services = saved_all;
    for (size_t i = 0; i < std::size(names); ++i) *now[i] = words[i];
    return why;
  });
  try {
    return config.mode == fsrv::PoolMode::kProcess ? fsrv::app::serve_process_mode(config)
                                                   : fsrv::app::serve_thread_mode(config);
  } catch (const std::exception& e) {
    fprintf(stderr, "fileserver: %s\n", e.what());
    return 1;
  }
}
