// bin/fileserver: the course file protocol server (README.md, docs/PROTOCOL.md).

#include <CLI/CLI.hpp>
#include <cstdio>

#include "fsrv/app/serve.hpp"
#include "fsrv/core/log.hpp"

int main(int argc, char** argv) {
  fsrv::ServerConfig config;
  std::string mode = "thread";
  std::string codec = "fast";
  std::string level = "info";
  CLI::App app{"Event-driven file server for the course file protocol (libuv)."};
  app.add_option("--host", config.host, "Address to listen on")->capture_default_str();
  app.add_option("--port", config.port, "TCP port; 0 picks a free one (printed on stdout)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  app.add_option("--root", config.root, "Directory served (created if missing)")
      ->capture_default_str();
  app.add_option("--workers", config.workers, "Thread pool size or worker processes")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
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
  app.add_option("--stats-interval", config.stats_interval_s,
                 "Print a stats line every N seconds (0 = only at shutdown)")
      ->capture_default_str();
  app.add_option("--legacy-idle-ms", config.legacy_idle_ms,
                 "Run an unterminated non-UPLOAD command after this much silence (0 = never)")
      ->capture_default_str();
  app.add_option("--grace", config.grace_s, "Seconds in-flight transfers get at shutdown")
      ->capture_default_str();
  app.add_option("--codec", codec, "Base64 codec: fast | libb64")
      ->capture_default_str()
      ->check(CLI::IsMember({"fast", "libb64"}));
  app.add_option("--log-level", level, "error | warn | info | debug")
      ->capture_default_str()
      ->check(CLI::IsMember({"error", "warn", "info", "debug"}));
  CLI11_PARSE(app, argc, argv);

  fsrv::log::Level lv;
  fsrv::log::parse_level(level, lv);
  fsrv::log::set_level(lv);
  fsrv::codec::parse_base64_kind(codec, config.codec);
  config.mode = mode == "process" ? fsrv::PoolMode::kProcess : fsrv::PoolMode::kThread;
  try {
    return config.mode == fsrv::PoolMode::kProcess ? fsrv::app::serve_process_mode(config)
                                                   : fsrv::app::serve_thread_mode(config);
  } catch (const std::exception& e) {
    fprintf(stderr, "fileserver: %s\n", e.what());
    return 1;
  }
}
