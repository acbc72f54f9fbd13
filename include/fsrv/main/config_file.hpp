#pragma once
// The configuration file of bin/fileserver (`--config FILE`, TOML), generic
// over the CLI11 option set: every long option `--NAME` of the command line
// is the key `NAME` of the file, with no per-option code, so an option added
// to the command line later has its key at once.
//
//   max-conns = 512                 # --max-conns 512
//   tftp-read-only = true           # --tftp-read-only
//   [services.http]
//   listen = ["0.0.0.0:8885"]       # --listen http=0.0.0.0:8885
//   [services.tftp]
//   timeout = 3                     # --tftp-timeout 3 (option SERVICE-KEY)
//
// The file is read with toml++ (TOML 1.0); each key is checked against the
// options CLI11 has registered and its value through that option's own
// conversion and validators, so a bad file is refused before anything runs,
// naming the file, the line and the key. Options given on the command line
// override the file's (a list given there replaces the file's list).
// `--print-config` writes the effective configuration, defaults included, in
// the same format.
//
// Layers: main only (it sees the whole option set).

#include <CLI/CLI.hpp>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "fsrv/core/config.hpp"

namespace fsrv::main {

/// Exit code for a configuration that cannot be used (core/config.hpp).
using fsrv::kExitConfig;

/// Adds `--config FILE`, `--print-config` and `--version` to `app` and runs
/// the parse of the command line merged with the file. Keep it alive for
/// `reload()` (SIGHUP).
class ConfigFile {
 public:
  /// `services`: the registered service names (the `[services.NAME]`
  /// tables); `version_line`: what `--version` prints; `command_only`:
  /// options that are commands rather than settings (`services`: list and
  /// exit), refused in a file and left out of --print-config.
  ConfigFile(CLI::App& app, std::vector<std::string> services, std::string version_line,
             const std::vector<std::string>& command_only);

  /// Adds a check of every value of option `name` read from the file, for
  /// options whose command-line value main checks itself after parsing
  /// (--listen): returns "" or what is wrong, reported with the line.
  void check_values(const std::string& name, std::function<std::string(const std::string&)> check);

  /// Parses argv, then the file named by --config (if any) beneath it.
  /// Returns -1 to go on serving, or the exit code to return from main (0
  /// after --help, --version or --print-config; 2 for a bad file; CLI11's
  /// code for a bad command line). Messages go to stderr, output to stdout.
  int parse(int argc, char** argv);

  /// Re-reads the same file under the same command line into the same
  /// variables (SIGHUP). Returns "" or the message saying what is wrong (the
  /// variables may then hold a mix: the caller keeps its own copy).
  std::string reload();

  /// The --config path ("" when none was given).
  const std::string& path() const { return path_; }

  /// The effective configuration as a TOML document (what --print-config
  /// writes): every option with its value or default, services as tables.
  std::string to_toml() const;

 private:
  /// One key of the file turned into command-line words.
  struct Item {
    std::string key;  ///< as written, "services.http.listen" for a table
    int line = 0;     ///< 1-based line of the key
    CLI::Option* option = nullptr;
    std::vector<std::string> words;  ///< "--NAME=VALUE" per value
  };
  /// Reads and checks the file into `items`; "" or "FILE:LINE: ..." error.
  std::string load(std::vector<Item>& items);
  /// Parses the file's items under the command line; "" or an error.
  std::string merge();
  /// Runs CLI11 over `words` (in order, no program name); "" or its message.
  std::string run(std::vector<std::string> words);
  /// Whether `o` is one of the options that cannot appear in a file.
  bool command_only(const CLI::Option* o) const;

  CLI::App& app_;
  std::vector<std::string> services_;
  std::string version_line_;
  std::string path_;
  bool print_config_ = false;
  bool version_ = false;
  std::vector<std::string> argv_;  ///< the command line without argv[0]
  std::vector<const CLI::Option*> command_only_;
  std::map<std::string, std::function<std::string(const std::string&)>> checks_;
};

}  // namespace fsrv::main
