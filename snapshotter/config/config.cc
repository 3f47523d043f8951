// Reading the config file with toml++ and applying flags and environment
// variables over it, all through the key table.
#include "snapshotter/config/config.h"

#include <sys/stat.h>
#include <unistd.h>
#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <cerrno>
#include <fstream>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "snapshotter/config/value_text.h"
#include "base/status_macros.h"

// Debian's libtomlplusplus is built with exceptions: toml::parse throws
// toml::parse_error.
static_assert(TOML_EXCEPTIONS, "expects toml++ built with exceptions");

namespace snapshotter {
namespace config {
namespace {

std::string DescribeType(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

// A key as TOML writes it: bare if possible, else quoted.
std::string KeyText(std::string_view key) {
  const absl::string_view k(key.data(), key.size());
  if (!k.empty() && std::all_of(k.begin(), k.end(), [](char c) {
        return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
               c == '-';
      })) {
    return std::string(k);
  }
  // A control character (a carriage return, an escape) is shown escaped:
  // printed raw it would garble the error line.
  if (!absl::StrContains(k, '\'') &&
      std::none_of(k.begin(), k.end(), [](char c) {
        return absl::ascii_iscntrl(static_cast<unsigned char>(c));
      })) {
    return absl::StrCat("'", k, "'");
  }
  return Quoted(k);
}

// Walks a parsed file along the key table, stores what it sets and collects
// every problem with its line.
class FileReader {
 public:
  FileReader(std::string source, Config* config)
      : source_(std::move(source)), config_(config) {}

  void ReadTable(const toml::table& table, const std::string& prefix) {
    for (const auto& [name, node] : table) {
      const std::string path =
          prefix.empty() ? KeyText(name.str())
                         : absl::StrCat(prefix, ".", KeyText(name.str()));
      const auto& keys = Keys();
      auto key = std::find_if(keys.begin(), keys.end(),
                              [&](const Key& k) { return path == k.name; });
      if (key != keys.end()) {
        ReadKey(*key, node, path);
      } else if (!Below(path).empty()) {
        if (const toml::table* section = node.as_table()) {
          ReadTable(*section, path);
        } else {
          Add(node.source(),
              absl::StrCat("key \"", path, "\" must be a table ([", path,
                           "]), not ", DescribeType(node)));
        }
      } else {
        Add(name.source().begin ? name.source() : node.source(),
            absl::StrCat("unknown key \"", path, "\" (allowed ",
                         prefix.empty() ? "at the top level"
                                        : absl::StrCat("in [", prefix, "]"),
                         ": ", absl::StrJoin(Below(prefix), ", "), ")"));
      }
    }
  }

  // Every problem, in file order (toml++ iterates tables in key order).
  absl::Status Result() {
    if (problems_.empty()) return absl::OkStatus();
    std::stable_sort(problems_.begin(), problems_.end());
    std::vector<std::string> messages;
    for (auto& problem : problems_) messages.push_back(problem.second);
    return absl::InvalidArgumentError(absl::StrJoin(messages, "; "));
  }

 private:
  // The names one level below `prefix` ("" = top level), in table order.
  static std::vector<std::string> Below(const std::string& prefix) {
    std::vector<std::string> names;
    for (const Key& key : Keys()) {
      absl::string_view rest = key.name;
      if (rest.empty()) continue;
      if (!prefix.empty() && !absl::ConsumePrefix(&rest, prefix + ".")) {
        continue;
      }
      std::string next(rest.substr(0, rest.find('.')));
      if (absl::c_find(names, next) == names.end()) names.push_back(next);
    }
    return names;
  }

  void ReadKey(const Key& key, const toml::node& node,
               const std::string& path) {
    std::optional<Value> value;
    switch (key.type) {
      case KeyType::kInteger:
        if (auto v = node.value_exact<int64_t>()) value = *v;
        break;
      case KeyType::kBool:
        if (auto v = node.value_exact<bool>()) value = *v;
        break;
      case KeyType::kString:
        if (auto v = node.value_exact<std::string>()) value = *v;
        break;
      case KeyType::kStringList:
        if (const toml::array* array = node.as_array()) {
          value = ReadStrings(key, *array, path);
          if (!value.has_value()) return;  // reported per element
        }
        break;
    }
    if (!value.has_value()) {
      Add(node.source(),
          absl::StrCat("key \"", path, "\" must be ", TypeName(key.type),
                       ", not ", DescribeType(node), " (", key.doc, ")"));
      return;
    }
    if (absl::Status s = key.set(*value, *config_); !s.ok()) {
      Add(node.source(), absl::StrCat("key \"", path, "\": ", s.message()));
    }
  }

  // The strings of `array`; nullopt after reporting every element that is
  // not a string or fails the key's element check.
  std::optional<Value> ReadStrings(const Key& key, const toml::array& array,
                                   const std::string& path) {
    const size_t problems = problems_.size();
    std::vector<std::string> items;
    for (size_t i = 0; i < array.size(); ++i) {
      const toml::node& element = *array.get(i);
      const std::string where = absl::StrCat("key \"", path, "[", i, "]\"");
      std::optional<std::string> item = element.value_exact<std::string>();
      if (!item.has_value()) {
        Add(element.source(), absl::StrCat(where, " must be a string, not ",
                                           DescribeType(element)));
        continue;
      }
      absl::Status s = key.check_element == nullptr ? absl::OkStatus()
                                                    : key.check_element(*item);
      if (!s.ok()) {
        Add(element.source(), absl::StrCat(where, ": ", s.message()));
      }
      items.push_back(*std::move(item));
    }
    if (problems_.size() > problems) return std::nullopt;
    return Value(std::move(items));
  }

  void Add(const toml::source_region& where, absl::string_view message) {
    problems_.emplace_back(
        where.begin.line,
        absl::StrCat(source_, ": line ", where.begin.line, ": ", message));
  }

  const std::string source_;
  Config* const config_;
  std::vector<std::pair<uint32_t, std::string>> problems_;
};

// The file's text; nullopt if it does not exist.
absl::StatusOr<std::optional<std::string>> ReadFile(const std::string& path) {
  const std::string name = absl::StrCat("config file \"", path, "\"");
  struct stat info;
  if (stat(path.c_str(), &info) != 0) {
    const int error = errno;
    if (error != ENOENT) {
      return absl::ErrnoToStatus(error, absl::StrCat("cannot stat ", name));
    }
    // A dangling symbolic link, at the file or at a directory above it, is
    // not an absent file: the operator put a config there, and running on
    // the defaults would hide it.
    for (std::filesystem::path at = path; !at.empty() && at != at.parent_path();
         at = at.parent_path()) {
      struct stat resolved;
      if (at != path && stat(at.c_str(), &resolved) == 0) break;  // it exists
      char target[4096];
      const ssize_t n = readlink(at.c_str(), target, sizeof(target));
      if (n < 0) continue;
      return absl::FailedPreconditionError(absl::StrCat(
          name, at == path ? "" : absl::StrCat(": its directory \"", at.string(), "\""),
          " is a symbolic link to \"",
          absl::CEscape(absl::string_view(target, static_cast<size_t>(n))),
          "\", which does not exist"));
    }
    return std::nullopt;
  }
  if (S_ISDIR(info.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, " is a directory, not a TOML file"));
  }
  if (!S_ISREG(info.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, " is not a regular file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", name));
  }
  // One byte past the cap tells a file at the cap from a bigger one.
  std::string text(kMaxConfigFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot read ", name));
  }
  if (static_cast<size_t>(in.gcount()) > kMaxConfigFileBytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        name, " is larger than the limit of ", kMaxConfigFileBytes, " bytes"));
  }
  text.resize(static_cast<size_t>(in.gcount()));
  return std::optional<std::string>(std::move(text));
}

// `lines`: where the file sets each of kCheckedTogether, by key name.
constexpr const char* kCheckedTogether[] = {"root", "address",
                                            "guest_pull.include"};
absl::Status ReadConfigFile(const std::string& text, const std::string& path,
                            Config* config,
                            std::map<std::string, uint32_t>* lines) {
  toml::table document;
  try {
    document = toml::parse(std::string_view(text), std::string_view(path));
  } catch (const toml::parse_error& error) {
    const toml::source_position& where = error.source().begin;
    const std::string_view description = error.description();
    return absl::InvalidArgumentError(absl::StrCat(
        path, ":", where.line, ":", where.column, ": TOML syntax error: ",
        absl::string_view(description.data(), description.size())));
  }
  FileReader reader(path, config);
  reader.ReadTable(document, "");
  for (const char* name : kCheckedTogether) {
    if (const toml::node* node = document.at_path(name).node()) {
      (*lines)[name] = node->source().begin.line;
    }
  }
  return reader.Result();
}

// A value a flag or a variable gives a key, and who gave it.
struct Override {
  const Key* key;
  Value value;
  std::string origin;  // "--root" or "GUEST_PULL_ROOT"
};

// For every key: the flag's value, else the variable's if set and not
// empty. Each is checked by storing it in a scratch config.
absl::StatusOr<std::vector<Override>> FindOverrides(
    const CommandLine& command_line, const Getenv& getenv) {
  std::vector<Override> overrides;
  for (const Key& key : Keys()) {
    std::string origin;
    std::optional<std::string> text;
    auto flag = command_line.flags.find(key.flag);
    if (*key.flag != '\0' && flag != command_line.flags.end()) {
      origin = absl::StrCat("--", key.flag);
      if (flag->second.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(origin, ": must not be empty"));
      }
      text = flag->second;
    } else if (*key.env != '\0') {
      const char* env = getenv(key.env);
      if (env != nullptr && *env != '\0') {
        origin = key.env;
        text = env;
      }
    }
    if (!text.has_value()) continue;
    absl::StatusOr<Value> value = ValueFromText(key.type, *text);
    Config scratch;
    absl::Status s = value.ok() ? key.set(*value, scratch) : value.status();
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          origin, "=", Quoted(*text), ": ", s.message()));
    }
    overrides.push_back(Override{&key, *std::move(value), std::move(origin)});
  }
  return overrides;
}

// `path` is strictly below directory `dir` (both normalized).
bool IsBelow(const std::string& path, const std::string& dir) {
  return absl::StartsWith(path, absl::StrCat(dir, "/"));
}

// `path` with the symlinks of its existing part resolved; as it is when
// that fails (a parent it may not read).
std::string ResolvedPath(const std::string& path) {
  std::error_code ec;
  std::filesystem::path resolved = std::filesystem::weakly_canonical(path, ec);
  return ec || resolved.empty() ? path : resolved.lexically_normal().string();
}

}  // namespace

absl::StatusOr<Config> LoadConfig(const CommandLine& command_line,
                                  const Getenv& getenv,
                                  const std::string& default_config_path) {
  ASSIGN_OR_RETURN(std::vector<Override> overrides, FindOverrides(command_line, getenv));
  // The file comes first: --config / GUEST_PULL_CONFIG name it.
  auto named = absl::c_find_if(overrides, [](const Override& o) {
    return absl::string_view(o.key->flag) == "config";
  });
  Config config;
  config.config_path = named == overrides.end()
                           ? default_config_path
                           : std::get<std::string>(named->value);
  const std::string by = named == overrides.end()
                             ? ""
                             : absl::StrCat(" (named by ", named->origin, ")");
  absl::StatusOr<std::optional<std::string>> text =
      ReadFile(config.config_path);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat(text.status().message(), by));
  }
  config.config_file_found = text->has_value();
  if (!config.config_file_found && named != overrides.end()) {
    // The unit names the default path itself (--config): then it must
    // exist too, and "only the default may be absent" would contradict it.
    return absl::NotFoundError(absl::StrCat(
        "config file \"", config.config_path, "\" does not exist", by,
        config.config_path == default_config_path
            ? absl::StrCat("; the default path may be absent only when no ",
                           named->origin, " names it: write the file (e.g. "
                           "containerd-guest-pull-grpc --print-default-config "
                           "> ", default_config_path, ")")
            : absl::StrCat("; only the default ", default_config_path,
                           " may be absent")));
  }
  std::map<std::string, uint32_t> lines;
  if (config.config_file_found) {
    RETURN_IF_ERROR(ReadConfigFile(**text, config.config_path, &config, &lines));
  }
  // Flags and variables win over the file (each was checked above).
  for (const Override& o : overrides) (void)o.key->set(o.value, config);
  // Where a key checked against another was set, for its error.
  auto origin = [&](absl::string_view name) -> std::string {
    for (const Override& o : overrides) {
      if (name == o.key->name) return o.origin;
    }
    auto line = lines.find(std::string(name));
    if (line == lines.end()) return "the default";
    return absl::StrCat(config.config_path, ": line ", line->second);
  };
  const std::string origins = absl::StrCat(" (address from ", origin("address"),
                                           ", root from ", origin("root"), ")");
  // The daemon owns everything under its root: its start and Cleanup would
  // take a socket there for a stray file. The root itself, or a directory
  // it is in, cannot be the socket either.
  // Compared as written, then with the symlinks of their existing parts
  // resolved (e.g. /var/lib a link to /data/var/lib).
  const std::string address = ResolvedPath(config.address);
  const std::string root = ResolvedPath(config.root);
  const std::string via = absl::StrCat(" (through symlinks: \"", address,
                                       "\" and \"", root, "\")");
  const bool inside_as_written = IsBelow(config.address, config.root);
  if (inside_as_written || IsBelow(address, root)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "address \"", config.address, "\" is inside root \"", config.root,
        "\"", inside_as_written ? "" : via, origins,
        ": everything under the root is the daemon's store, ",
        "so its socket must be elsewhere (the default is ", Config().address,
        ")"));
  }
  for (bool as_written : {true, false}) {
    const std::string& a = as_written ? config.address : address;
    const std::string& r = as_written ? config.root : root;
    if (a != r && !IsBelow(r, a)) continue;
    const std::string what = a == r ? "the root"
                                    : absl::StrCat("a directory holding root \"",
                                                   config.root, "\"");
    return absl::InvalidArgumentError(absl::StrCat(
        "address \"", config.address, "\" is ", what, as_written ? "" : via,
        origins, ": the socket needs a path of its own (the default is ",
        Config().address, ")"));
  }
  // An empty include list would silently keep every image on the host (an
  // empty pattern is refused where it is, CheckPattern).
  if (config.guest_pull.enable && config.guest_pull.include.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        lines.count("guest_pull.include") == 0
            ? ""
            : absl::StrCat(config.config_path, ": line ",
                           lines["guest_pull.include"], ": "),
        "key \"guest_pull.include\": an empty include list would keep every "
        "image on the host; use [\".*\"] to guest-pull every image, or set "
        "guest_pull.enable = false to turn guest pull off"));
  }
  return config;
}

std::string DescribeConfig(const Config& config) {
  std::string line = absl::StrCat(
      "config=", ValueText(config.config_path),
      config.config_file_found ? "" : " (not found: using defaults)");
  for (const Key& key : Keys()) {
    if (*key.name == '\0') continue;
    absl::StrAppend(&line, " ", key.name, "=", ValueText(key.get(config)));
  }
  return line;
}

}  // namespace config
}  // namespace snapshotter
