// TOML config file parsing with toml++ and schema validation.
#include "snapshotter/config/config_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <string_view>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

// Debian's libtomlplusplus is built with exceptions: toml::parse throws
// toml::parse_error and returns a plain toml::table.
static_assert(TOML_EXCEPTIONS,
              "this parser expects toml++ built with exceptions "
              "(toml::parse throws toml::parse_error)");

namespace guest_pull {
namespace config {
namespace {

// "a string", "an integer", ... for type errors.
std::string DescribeType(toml::node_type type) {
  switch (type) {
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

// A key as it would be written in TOML: bare if possible, else quoted.
std::string KeyText(std::string_view key) {
  bool bare = !key.empty();
  for (char c : key) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' &&
        c != '-') {
      bare = false;
      break;
    }
  }
  if (bare) return std::string(key);
  if (key.find('\'') == std::string_view::npos &&
      key.find('\n') == std::string_view::npos) {
    return absl::StrCat("'", absl::string_view(key.data(), key.size()), "'");
  }
  return absl::StrCat("\"", absl::CEscape(absl::string_view(key.data(), key.size())),
                      "\"");
}

std::string JoinKey(const std::string& prefix, std::string_view key) {
  if (prefix.empty()) return KeyText(key);
  return absl::StrCat(prefix, ".", KeyText(key));
}

// Walks a parsed document, fills a ConfigFile and collects every problem.
class SchemaReader {
 public:
  explicit SchemaReader(absl::string_view source_name)
      : source_name_(source_name) {}

  void ReadDocument(const toml::table& root, ConfigFile* out);

  // All problems, in file order.
  absl::Status Result() const {
    if (errors_.empty()) return absl::OkStatus();
    std::vector<Problem> sorted = errors_;
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const Problem& a, const Problem& b) {
                       return a.line < b.line;
                     });
    std::vector<std::string> messages;
    messages.reserve(sorted.size());
    for (const Problem& problem : sorted) messages.push_back(problem.message);
    return absl::InvalidArgumentError(absl::StrJoin(messages, "; "));
  }

 private:
  // Handles the value of one known key; path is its dotted key.
  using Handler = std::function<void(const toml::node&, const std::string&)>;

  // One known key of a table.
  struct Field {
    std::string name;
    Handler handler;
  };

  void ReadTable(const toml::table& table, const std::string& prefix,
                 const std::vector<Field>& fields, ConfigFile* out);
  void ReadSection(const toml::node& node, const std::string& path,
                   const std::vector<Field>& fields, ConfigFile* out);

  // Each Read* reports a type error and returns false on a type mismatch.
  bool ReadString(const toml::node& node, const std::string& path,
                  std::string* value);
  bool ReadBool(const toml::node& node, const std::string& path, bool* value);
  bool ReadInteger(const toml::node& node, const std::string& path,
                   int64_t* value);
  // Strings of an array, with the node of each (for per-element errors).
  bool ReadStringArray(const toml::node& node, const std::string& path,
                       std::vector<std::string>* values,
                       std::vector<const toml::node*>* element_nodes);

  void TypeError(const toml::node& node, const std::string& path,
                 absl::string_view expected);
  // Reports status (if not ok) as an invalid value of key path.
  void CheckValue(const toml::node& node, const std::string& path,
                  const absl::Status& status);
  void AddError(const toml::source_region& where, absl::string_view message);

  // One problem and the line it is on (toml++ tables iterate in key order,
  // not file order, so problems are sorted before reporting).
  struct Problem {
    uint32_t line;
    std::string message;
  };

  std::string source_name_;
  std::vector<Problem> errors_;
};

void SchemaReader::AddError(const toml::source_region& where,
                            absl::string_view message) {
  errors_.push_back(Problem{
      where.begin.line,
      absl::StrCat(source_name_, ": line ", where.begin.line, ": ", message)});
}

void SchemaReader::TypeError(const toml::node& node, const std::string& path,
                             absl::string_view expected) {
  AddError(node.source(), absl::StrCat("key \"", path, "\" must be ", expected,
                                       ", not ", DescribeType(node.type())));
}

void SchemaReader::CheckValue(const toml::node& node, const std::string& path,
                              const absl::Status& status) {
  if (status.ok()) return;
  AddError(node.source(), absl::StrCat("key \"", path, "\": ", status.message()));
}

bool SchemaReader::ReadString(const toml::node& node, const std::string& path,
                              std::string* value) {
  const toml::value<std::string>* string_node = node.as_string();
  if (string_node == nullptr) {
    TypeError(node, path, "a string");
    return false;
  }
  *value = string_node->get();
  return true;
}

bool SchemaReader::ReadBool(const toml::node& node, const std::string& path,
                            bool* value) {
  const toml::value<bool>* bool_node = node.as_boolean();
  if (bool_node == nullptr) {
    TypeError(node, path, "a boolean (true or false)");
    return false;
  }
  *value = bool_node->get();
  return true;
}

bool SchemaReader::ReadInteger(const toml::node& node, const std::string& path,
                               int64_t* value) {
  const toml::value<int64_t>* int_node = node.as_integer();
  if (int_node == nullptr) {
    TypeError(node, path, "an integer");
    return false;
  }
  *value = int_node->get();
  return true;
}

bool SchemaReader::ReadStringArray(
    const toml::node& node, const std::string& path,
    std::vector<std::string>* values,
    std::vector<const toml::node*>* element_nodes) {
  const toml::array* array = node.as_array();
  if (array == nullptr) {
    TypeError(node, path, "an array of strings");
    return false;
  }
  bool ok = true;
  std::vector<std::string> result;
  for (size_t i = 0; i < array->size(); ++i) {
    const toml::node& element = *array->get(i);
    std::string text;
    if (!ReadString(element, absl::StrCat(path, "[", i, "]"), &text)) {
      ok = false;
      continue;
    }
    result.push_back(std::move(text));
    element_nodes->push_back(&element);
  }
  if (ok) *values = std::move(result);
  return ok;
}

void SchemaReader::ReadTable(const toml::table& table,
                             const std::string& prefix,
                             const std::vector<Field>& fields,
                             ConfigFile* out) {
  for (const auto& [key, node] : table) {
    const std::string path = JoinKey(prefix, key.str());
    const Field* field = nullptr;
    for (const Field& candidate : fields) {
      if (candidate.name == key.str()) field = &candidate;
    }
    if (field == nullptr) {
      std::vector<std::string> names;
      for (const Field& candidate : fields) names.push_back(candidate.name);
      const std::string where =
          prefix.empty() ? "at the top level" : absl::StrCat("in [", prefix, "]");
      AddError(key.source().begin ? key.source() : node.source(),
               absl::StrCat("unknown key \"", path, "\" (allowed ", where,
                            ": ", absl::StrJoin(names, ", "), ")"));
      continue;
    }
    if (!node.is_table()) out->keys_present.insert(path);
    field->handler(node, path);
  }
}

void SchemaReader::ReadSection(const toml::node& node, const std::string& path,
                               const std::vector<Field>& fields,
                               ConfigFile* out) {
  const toml::table* table = node.as_table();
  if (table == nullptr) {
    TypeError(node, path, absl::StrCat("a table ([", path, "])"));
    return;
  }
  ReadTable(*table, path, fields, out);
}

void SchemaReader::ReadDocument(const toml::table& root, ConfigFile* out) {
  Config& config = out->config;
  GuestPullConfig& guest_pull = config.guest_pull;
  VerityConfig& verity = config.verity;

  auto pattern_list = [this](std::vector<std::string>* target,
                             bool may_be_empty) {
    return [this, target, may_be_empty](const toml::node& node,
                                        const std::string& path) {
      std::vector<const toml::node*> element_nodes;
      if (!ReadStringArray(node, path, target, &element_nodes)) return;
      if (!may_be_empty) CheckValue(node, path, ValidateIncludeList(*target));
      for (size_t i = 0; i < target->size(); ++i) {
        CheckValue(*element_nodes[i], absl::StrCat(path, "[", i, "]"),
                   ValidatePattern((*target)[i]));
      }
    };
  };

  const std::vector<Field> guest_pull_fields = {
      {"enable",
       [&](const toml::node& node, const std::string& path) {
         ReadBool(node, path, &guest_pull.enable);
       }},
      {"include", pattern_list(&guest_pull.include, /*may_be_empty=*/false)},
      {"exclude", pattern_list(&guest_pull.exclude, /*may_be_empty=*/true)},
      {"mount_type",
       [&](const toml::node& node, const std::string& path) {
         if (ReadString(node, path, &guest_pull.mount_type)) {
           CheckValue(node, path, ValidateMountType(guest_pull.mount_type));
         }
       }},
  };

  const std::vector<Field> verity_fields = {
      {"mode",
       [&](const toml::node& node, const std::string& path) {
         std::string text;
         if (!ReadString(node, path, &text)) return;
         absl::StatusOr<VerityMode> mode = ParseVerityMode(text);
         CheckValue(node, path, mode.status());
         if (mode.ok()) verity.mode = *mode;
       }},
      {"layer_cache",
       [&](const toml::node& node, const std::string& path) {
         if (ReadString(node, path, &verity.layer_cache)) {
           CheckValue(node, path, ValidateLayerCachePath(verity.layer_cache));
         }
       }},
      {"write_passwd",
       [&](const toml::node& node, const std::string& path) {
         ReadBool(node, path, &verity.write_passwd);
       }},
  };

  const std::vector<Field> metrics_fields = {
      {"address",
       [&](const toml::node& node, const std::string& path) {
         if (ReadString(node, path, &config.metrics.address)) {
           CheckValue(node, path,
                      ValidateMetricsAddress(config.metrics.address));
         }
       }},
  };

  const std::vector<Field> top_fields = {
      {"version",
       [&](const toml::node& node, const std::string& path) {
         int64_t version = 0;
         if (!ReadInteger(node, path, &version)) return;
         if (version != kConfigVersion) {
           CheckValue(node, path,
                      absl::InvalidArgumentError(absl::StrCat(
                          "unsupported config version ", version,
                          " (this build understands version ",
                          kConfigVersion, ")")));
           return;
         }
         config.version = kConfigVersion;
       }},
      {"root",
       [&](const toml::node& node, const std::string& path) {
         if (ReadString(node, path, &config.root)) {
           CheckValue(node, path, ValidateRoot(config.root));
         }
       }},
      {"address",
       [&](const toml::node& node, const std::string& path) {
         if (ReadString(node, path, &config.address)) {
           CheckValue(node, path, ValidateAddress(config.address));
         }
       }},
      {"log_level",
       [&](const toml::node& node, const std::string& path) {
         std::string text;
         if (!ReadString(node, path, &text)) return;
         absl::StatusOr<LogLevel> level = ParseLogLevel(text);
         CheckValue(node, path, level.status());
         if (level.ok()) config.log_level = *level;
       }},
      {"guest_pull",
       [&](const toml::node& node, const std::string& path) {
         ReadSection(node, path, guest_pull_fields, out);
       }},
      {"verity",
       [&](const toml::node& node, const std::string& path) {
         ReadSection(node, path, verity_fields, out);
       }},
      {"metrics",
       [&](const toml::node& node, const std::string& path) {
         ReadSection(node, path, metrics_fields, out);
       }},
  };

  ReadTable(root, "", top_fields, out);
}

// Reads a whole regular file. nullopt: it does not exist.
absl::StatusOr<std::optional<std::string>> ReadWholeFile(
    const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    if (error == ENOENT) return std::optional<std::string>();
    return absl::ErrnoToStatus(
        error, absl::StrCat("cannot open config file \"", path, "\""));
  }
  struct FdCloser {
    int fd;
    ~FdCloser() { close(fd); }
  } closer{fd};

  struct stat info;
  if (fstat(fd, &info) != 0) {
    return absl::ErrnoToStatus(
        errno, absl::StrCat("cannot stat config file \"", path, "\""));
  }
  if (S_ISDIR(info.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "config file \"", path, "\" is a directory, not a TOML file"));
  }
  if (!S_ISREG(info.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("config file \"", path, "\" is not a regular file"));
  }
  if (static_cast<uint64_t>(info.st_size) > kMaxConfigFileBytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        "config file \"", path, "\" is ", info.st_size,
        " bytes; the limit is ", kMaxConfigFileBytes));
  }

  std::string contents;
  char buffer[16384];
  // Bounded: stops at EOF or once the size limit is passed.
  while (contents.size() <= kMaxConfigFileBytes) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(
          errno, absl::StrCat("cannot read config file \"", path, "\""));
    }
    if (n == 0) return std::optional<std::string>(std::move(contents));
    contents.append(buffer, static_cast<size_t>(n));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "config file \"", path, "\" is larger than ", kMaxConfigFileBytes,
      " bytes"));
}

}  // namespace

absl::StatusOr<ConfigFile> ParseConfigFile(absl::string_view toml_text,
                                           absl::string_view source_name) {
  const std::string source(source_name);
  toml::table document;
  try {
    document = toml::parse(std::string_view(toml_text.data(), toml_text.size()),
                           std::string_view(source));
  } catch (const toml::parse_error& error) {
    const toml::source_position& where = error.source().begin;
    const std::string_view description = error.description();
    return absl::InvalidArgumentError(
        absl::StrCat(source, ":", where.line, ":", where.column,
                     ": TOML syntax error: ",
                     absl::string_view(description.data(), description.size())));
  }
  ConfigFile result;
  SchemaReader reader(source);
  reader.ReadDocument(document, &result);
  absl::Status status = reader.Result();
  if (!status.ok()) return status;
  return result;
}

absl::StatusOr<Config> ParseConfig(absl::string_view toml_text,
                                   absl::string_view source_name) {
  absl::StatusOr<ConfigFile> file = ParseConfigFile(toml_text, source_name);
  if (!file.ok()) return file.status();
  return std::move(file->config);
}

absl::StatusOr<std::optional<ConfigFile>> LoadOptionalConfigFile(
    const std::string& path) {
  absl::StatusOr<std::optional<std::string>> text = ReadWholeFile(path);
  if (!text.ok()) return text.status();
  if (!text->has_value()) return std::optional<ConfigFile>();
  absl::StatusOr<ConfigFile> file = ParseConfigFile(**text, path);
  if (!file.ok()) return file.status();
  return std::optional<ConfigFile>(std::move(*file));
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path,
                                      bool must_exist) {
  absl::StatusOr<std::optional<ConfigFile>> file = LoadOptionalConfigFile(path);
  if (!file.ok()) return file.status();
  if (!file->has_value()) {
    if (must_exist) {
      return absl::NotFoundError(
          absl::StrCat("config file \"", path, "\" does not exist"));
    }
    return Config();
  }
  return std::move((*file)->config);
}

}  // namespace config
}  // namespace guest_pull
