// The command line and --help, from the key table plus three actions.
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "snapshotter/config/config.h"
#include "snapshotter/config/value_text.h"

namespace snapshotter {
namespace config {
namespace {

// A flag that makes the daemon do something else than serve.
struct Action {
  const char* flag;
  bool CommandLine::*field;
  const char* doc;
};

constexpr Action kActions[] = {
    {"version", &CommandLine::version, "print the version and exit"},
    {"print-default-config", &CommandLine::print_default_config,
     "print the commented default config file (every key at its default) "
     "and exit"},
    {"reset-store", &CommandLine::reset_store,
     "recovery after a refused start: move metadata.db and every snapshot "
     "directory of the root to <root>/quarantine/ (nothing is deleted) so "
     "the next start begins with an empty store, and exit "
     "(docs/operations.md)"},
    {"check-config", &CommandLine::check_config,
     "check the configuration (config file, environment, flags) as a start "
     "would read it, print the result and exit: 0 if it is valid, 2 with "
     "the error otherwise; touches neither the root nor the socket (an "
     "installer's check before it replaces a running daemon)"},
    {"help", &CommandLine::help, "print this help and exit"},
};

const Key* FindFlag(absl::string_view name) {
  for (const Key& key : Keys()) {
    if (*key.flag != '\0' && name == key.flag) return &key;
  }
  return nullptr;
}

const Action* FindAction(absl::string_view name) {
  for (const Action& action : kActions) {
    if (name == action.flag) return &action;
  }
  return nullptr;
}

// Whether `arg` is written as one of our flags or actions ("--root",
// "-address=/x", "--log_level", "-h").
bool NamesAFlag(absl::string_view arg) {
  if (arg == "-h") return true;
  if (!absl::ConsumePrefix(&arg, "-")) return false;
  absl::ConsumePrefix(&arg, "-");
  const std::string name =
      absl::StrReplaceAll(arg.substr(0, arg.find('=')), {{"_", "-"}});
  return FindFlag(name) != nullptr || FindAction(name) != nullptr;
}

}  // namespace

absl::StatusOr<CommandLine> ParseCommandLine(
    const std::vector<std::string>& args) {
  CommandLine out;
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "-h") arg = "--help";
    if (!absl::ConsumePrefix(&arg, "-") || arg.empty() || arg == "-") {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected argument \"", args[i], "\" (--help lists the flags)"));
    }
    absl::ConsumePrefix(&arg, "-");
    const size_t equals = arg.find('=');
    const std::string name =
        absl::StrReplaceAll(arg.substr(0, equals), {{"_", "-"}});
    std::optional<std::string> value;
    if (equals != absl::string_view::npos) {
      value = std::string(arg.substr(equals + 1));
    }

    const Key* key = FindFlag(name);
    const Action* action = key == nullptr ? FindAction(name) : nullptr;
    if (key == nullptr && action == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " (--help lists the flags)"));
    }
    const bool is_bool = key == nullptr || key->type == KeyType::kBool;
    if (!is_bool && !value.has_value()) {
      if (i + 1 == args.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " needs a value"));
      }
      // A value left out (a unit's `--root $ROOT` with ROOT unset or
      // empty) made the next flag the value, and the error then named that
      // flag's own value as a stray argument.
      if (NamesAFlag(args[i + 1])) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " needs a value (the next argument, \"",
                         args[i + 1], "\", is a flag)"));
      }
      value = args[++i];
    }
    if (is_bool && value.has_value() && *value != "true" && *value != "false") {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, "=", *value, ": must be true or false"));
    }
    if (key != nullptr) {
      out.flags[name] = value.value_or("true");
    } else {
      out.*action->field = value.value_or("true") == "true";
    }
  }
  return out;
}

std::string HelpText() {
  std::string text =
      "Usage: containerd-guest-pull-grpc [flags]\n\n"
      "A containerd proxy snapshotter that lets Kata Containers pull images\n"
      "inside the guest.\n\n"
      "Flags (a flag wins over its environment variable, which wins over the\n"
      "config file, which wins over the default):\n";
  const Config defaults;
  for (const Key& key : Keys()) {
    if (*key.flag == '\0') continue;
    absl::StrAppend(&text, "  --", key.flag, *key.arg ? "=" : "", key.arg,
                    "\n      ", key.doc, "\n      ");
    if (*key.env != '\0') absl::StrAppend(&text, "env ", key.env, "; ");
    absl::StrAppend(&text, "default ", ValueText(key.get(defaults)), "\n");
  }
  for (const Action& action : kActions) {
    absl::StrAppend(&text, "  --", action.flag, "\n      ", action.doc, "\n");
  }
  absl::StrAppend(&text,
                  "\nConfig file keys (TOML; docs/configuration.md describes "
                  "them):\n");
  for (const Key& key : Keys()) {
    if (*key.name == '\0') continue;
    absl::StrAppend(&text, "  ", key.name, " = ",
                    TomlValueText(key.get(defaults)),
                    "\n      ", key.doc, "\n");
  }
  return text;
}

}  // namespace config
}  // namespace snapshotter
