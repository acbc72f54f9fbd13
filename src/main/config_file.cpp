#include "fsrv/main/config_file.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>
#include <set>

namespace fsrv::main {

namespace {

/// The option a long name refers to, or nullptr.
CLI::Option* find_option(CLI::App& app, const std::string& name) {
  return app.get_option_no_throw("--" + name);
}

/// The long name of an option without its dashes ("max-conns").
std::string long_name(const CLI::Option* o) {
  return o->get_lnames().empty() ? std::string() : o->get_lnames().front();
}

/// A flag takes no value on the command line (--tftp-read-only).
bool is_flag(const CLI::Option* o) { return o->get_expected_max() == 0; }

/// One TOML scalar as the word CLI11 converts ("" and false when the node
/// is not a scalar TOML type CLI11 can take: a table, a date).
bool scalar_word(const toml::node& n, std::string& out) {
  if (auto s = n.as_string()) {
    out = s->get();
  } else if (auto i = n.as_integer()) {
    out = std::to_string(i->get());
  } else if (auto f = n.as_floating_point()) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, f->get());
    out.assign(buf, r.ptr);
  } else if (auto b = n.as_boolean()) {
    out = b->get() ? "true" : "false";
  } else {
    return false;
  }
  return true;
}

/// The 1-based line where a key was written (its value's line if the key
/// carries no source).
int line_of(const toml::key& k, const toml::node& v) {
  int line = static_cast<int>(k.source().begin.line);
  return line > 0 ? line : static_cast<int>(v.source().begin.line);
}

/// A TOML basic string: quotes, backslashes and control characters escaped
/// (TOML 1.0, "String").
std::string quoted(const std::string& s) {
  std::string q = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      q += '\\';
      q += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\u%04x", c);
      q += buf;
    } else {
      q += static_cast<char>(c);
    }
  }
  return q + "\"";
}

/// A value as TOML: bare when it reads back as the same integer, float or
/// boolean word, quoted otherwise. Reading converts every value back to the
/// word CLI11 parses, so either spelling gives the same configuration.
std::string toml_value(const std::string& v, bool flag) {
  if (flag) return v;
  auto all_digits = [](std::string_view s) {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
  };
  std::string_view s = v;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  // TOML integers and floats: no leading zero, digits on both sides of '.'.
  bool leading_zero = s.size() > 1 && s[0] == '0' && s[1] != '.' && s[1] != 'e' && s[1] != 'E';
  auto e = s.find_first_of("eE");
  std::string_view mant = s.substr(0, e);
  std::string_view expo = e == std::string_view::npos ? std::string_view() : s.substr(e + 1);
  if (!expo.empty() && (expo[0] == '-' || expo[0] == '+')) expo.remove_prefix(1);
  auto dot = mant.find('.');
  bool mant_ok = dot == std::string_view::npos
                     ? all_digits(mant)
                     : all_digits(mant.substr(0, dot)) && all_digits(mant.substr(dot + 1));
  bool expo_ok = e == std::string_view::npos || all_digits(expo);
  if (mant_ok && expo_ok && !leading_zero) {
    // Round-trips as a number only if toml++ reads the same word back.
    std::string word;
    auto doc = toml::parse("v = " + v);
    if (scalar_word(*doc.get("v"), word) && word == v) return v;
  }
  return quoted(v);
}

/// A flag's value as a TOML boolean.
std::string flag_value(const CLI::Option* o) {
  if (o->count() == 0) return "false";
  const std::string& r = o->results().back();
  return (r == "false" || r == "0" || r == "off" || r == "no" || r == "-1") ? "false" : "true";
}

}  // namespace

ConfigFile::ConfigFile(CLI::App& app, std::vector<std::string> services, std::string version_line,
                       const std::vector<std::string>& command_only)
    : app_(app), services_(std::move(services)), version_line_(std::move(version_line)) {
  command_only_.push_back(app_.get_help_ptr());
  for (const std::string& name : command_only) {
    if (const CLI::Option* o = find_option(app_, name)) command_only_.push_back(o);
  }
  command_only_.push_back(
      app_.add_option("--config", path_,
                      "TOML configuration file: every option as a key (docs/OPERATIONS.md); "
                      "the command line overrides it"));
  command_only_.push_back(app_.add_flag(
      "--print-config", print_config_,
      "Write the effective configuration (file, command line and defaults) as TOML and exit"));
  command_only_.push_back(
      app_.add_flag("--version", version_, "Print the version and git commit and exit"));
}

void ConfigFile::check_values(const std::string& name,
                              std::function<std::string(const std::string&)> check) {
  checks_[name] = std::move(check);
}

bool ConfigFile::command_only(const CLI::Option* o) const {
  return std::find(command_only_.begin(), command_only_.end(), o) != command_only_.end();
}

std::string ConfigFile::run(std::vector<std::string> words) {
  std::reverse(words.begin(), words.end());  // CLI11 takes them last first
  try {
    app_.parse(words);
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return "";
}

std::string ConfigFile::load(std::vector<Item>& items) {
  toml::table doc;
  try {
    doc = toml::parse_file(path_);
  } catch (const toml::parse_error& e) {
    auto line = e.source().begin.line;  // 0: the file could not be read
    return path_ + (line > 0 ? ":" + std::to_string(line) : std::string()) + ": " +
           std::string(e.description());
  }
  auto where = [&](int line, const std::string& key) {
    return path_ + ":" + std::to_string(line) + ": key '" + key + "': ";
  };
  // One key: the option `name` with the node's values ("SERVICE=" before
  // each for a listen list).
  auto add = [&](const std::string& key, int line, const std::string& name, const toml::node& v,
                 const std::string& prefix) -> std::string {
    CLI::Option* o = find_option(app_, name);
    if (o == nullptr) {
      return where(line, key) + "unknown key (no option --" + name + "; see fileserver --help)";
    }
    if (command_only(o)) return where(line, key) + "a command-line option only, not a setting";
    Item item{key, line, o, {}};
    std::vector<const toml::node*> values;
    if (auto arr = v.as_array()) {
      if (o->get_items_expected_max() <= 1) {
        return where(line, key) + "takes one value, not a list";
      }
      for (const toml::node& e : *arr) values.push_back(&e);
    } else {
      values.push_back(&v);
    }
    for (const toml::node* e : values) {
      std::string word;
      if (!scalar_word(*e, word)) {
        return where(line, key) + "expected a string, number or boolean";
      }
      if (is_flag(o) && !e->is_boolean()) return where(line, key) + "expected true or false";
      if (auto c = checks_.find(name); c != checks_.end()) {
        if (std::string why = c->second(prefix + word); !why.empty()) {
          return where(line, key) + "--" + name + ": " + why;
        }
      }
      item.words.push_back("--" + name + "=" + prefix + word);
    }
    // The option's own conversion and validators, on this key alone.
    if (std::string why = run(item.words); !why.empty()) return where(line, key) + why;
    items.push_back(std::move(item));
    return "";
  };
  // Every problem is reported, in the order of the file (toml++ iterates
  // a table by key, not by line).
  std::vector<std::pair<int, std::string>> errors;
  auto check = [&](int line, std::string why) {
    if (!why.empty()) errors.emplace_back(line, std::move(why));
  };
  for (auto&& [k, v] : doc) {
    std::string key(k.str());
    int line = line_of(k, v);
    if (key != "services") {
      check(line, v.is_table() ? where(line, key) + "unknown table (only [services.NAME])"
                               : add(key, line, key, v, ""));
      continue;
    }
    auto services = v.as_table();
    if (services == nullptr) {
      check(line, where(line, key) + "expected tables [services.NAME]");
      continue;
    }
    for (auto&& [sk, sv] : *services) {
      std::string svc(sk.str());
      int sline = line_of(sk, sv);
      auto table = sv.as_table();
      if (std::find(services_.begin(), services_.end(), svc) == services_.end()) {
        check(sline,
              where(sline, "services." + svc) + "unknown service (see fileserver --services)");
        continue;
      }
      if (table == nullptr) {
        check(sline, where(sline, "services." + svc) + "expected a table");
        continue;
      }
      for (auto&& [ok, ov] : *table) {
        std::string opt(ok.str());
        int oline = line_of(ok, ov);
        // `listen` is the listener list; any other key is the option
        // SERVICE-KEY (`[services.tftp] timeout` is --tftp-timeout).
        bool listen = opt == "listen";
        check(oline, add("services." + svc + "." + opt, oline, listen ? "listen" : svc + "-" + opt,
                         ov, listen ? svc + "=" : ""));
      }
    }
  }
  std::stable_sort(errors.begin(), errors.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string all;
  for (const auto& [line, why] : errors) all += (all.empty() ? "" : "\nfileserver: ") + why;
  // The file's order, so listeners come up in the order written.
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) { return a.line < b.line; });
  return all;
}

std::string ConfigFile::merge() {
  // What the command line alone sets: those options ignore the file.
  if (std::string why = run(argv_); !why.empty()) return why;
  std::set<const CLI::Option*> on_command_line;
  for (const CLI::Option* o : app_.get_options()) {
    if (o->count() > 0) on_command_line.insert(o);
  }
  std::vector<Item> items;
  if (std::string why = load(items); !why.empty()) return why;
  std::vector<std::string> words;
  std::set<std::string> seen;
  for (const Item& item : items) {
    if (on_command_line.count(item.option) != 0) continue;
    // A scalar option named twice (`port` and `[services.x] ...` spelling
    // the same option) is a mistake in the file.
    if (item.option->get_items_expected_max() <= 1 && !seen.insert(long_name(item.option)).second) {
      return path_ + ":" + std::to_string(item.line) + ": key '" + item.key + "': option --" +
             long_name(item.option) + " set twice";
    }
    words.insert(words.end(), item.words.begin(), item.words.end());
  }
  words.insert(words.end(), argv_.begin(), argv_.end());
  if (std::string why = run(words); !why.empty()) return path_ + ": " + why;
  return "";
}

int ConfigFile::parse(int argc, char** argv) {
  argv_.assign(argv + 1, argv + argc);
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help prints and exits 0; every bad option or value exits 2 (the
    // configuration-error code), not CLI11's own codes (105 and up).
    int rc = app_.exit(e);
    return rc == 0 ? 0 : kExitConfig;
  }
  if (version_) {
    printf("%s\n", version_line_.c_str());
    return 0;
  }
  if (!path_.empty()) {
    if (std::string why = merge(); !why.empty()) {
      fprintf(stderr, "fileserver: %s\n", why.c_str());
      return kExitConfig;
    }
  }
  if (print_config_) {
    fputs(to_toml().c_str(), stdout);
    return 0;
  }
  return -1;
}

std::string ConfigFile::reload() {
  if (path_.empty()) return "no --config file to reload";
  return merge();
}

std::string ConfigFile::to_toml() const {
  std::string top = "# fileserver --print-config: the effective configuration (" + version_line_ +
                    ").\n# Every option of fileserver --help is a key; see deploy/fsrv.toml.\n\n";
  std::map<std::string, std::string> tables;  // service -> its lines
  std::string listen_note;
  for (const CLI::Option* o : app_.get_options()) {
    if (command_only(o)) continue;
    std::string name = long_name(o);
    if (name.empty()) continue;
    if (name == "listen") {
      std::map<std::string, std::vector<std::string>> by_service;
      for (const std::string& r : o->results()) {
        auto eq = r.find('=');
        by_service[r.substr(0, eq)].push_back(eq == std::string::npos ? "" : r.substr(eq + 1));
      }
      for (auto& [svc, addrs] : by_service) {
        std::string list;
        for (const std::string& a : addrs) list += (list.empty() ? "" : ", ") + quoted(a);
        tables[svc] += "listen = [" + list + "]\n";
      }
      if (by_service.empty()) {
        listen_note = "# No [services.NAME] listen lists: one file listener on host:port.\n";
      }
      continue;
    }
    std::string line;
    if (is_flag(o)) {
      line = " = " + flag_value(o);
    } else if (o->count() > 0) {
      const auto& res = o->results();
      if (o->get_items_expected_max() > 1) {
        std::string list;
        for (const std::string& r : res) list += (list.empty() ? "" : ", ") + toml_value(r, false);
        line = " = [" + list + "]";
      } else {
        line = " = " + toml_value(res.back(), false);
      }
    } else if (!o->get_default_str().empty()) {
      line = " = " + toml_value(o->get_default_str(), false);
    } else {
      line.clear();  // no value and no default: shown commented out
    }
    // An option named SERVICE-KEY goes in its service's table (longest
    // service name first: "file-marker" before "file").
    std::string svc;
    for (const std::string& s : services_) {
      if (name.size() > s.size() + 1 && name.compare(0, s.size() + 1, s + "-") == 0 &&
          s.size() > svc.size()) {
        svc = s;
      }
    }
    std::string key = svc.empty() ? name : name.substr(svc.size() + 1);
    std::string text = line.empty() ? "# " + key + " = (unset)\n" : key + line + "\n";
    if (svc.empty()) {
      top += text;
    } else {
      tables[svc] += text;
    }
  }
  top += listen_note;
  for (const std::string& s : services_) {
    auto it = tables.find(s);
    if (it == tables.end()) continue;
    top += "\n[services." + s + "]\n" + it->second;
  }
  return top;
}

}  // namespace fsrv::main
