// Command-line parsing for cri-client (see cli_args.h).
#include "cli_args.h"

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace cri_client {
namespace {

// Options that take a value, whatever the sub-command.
bool TakesValue(const std::string& name) {
  static const char* const kValued[] = {
      "address",       "timeout", "pod-annotation",  "annotation", "pod-name",
      "pod-namespace", "pod-uid", "runtime-handler", "username",   "password"};
  for (const char* v : kValued) {
    if (name == v) return true;
  }
  return false;
}

absl::Status SplitKeyValue(const std::string& option, const std::string& text,
                           std::map<std::string, std::string>* out) {
  const std::size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", option, " wants key=value, got \"", text, "\""));
  }
  (*out)[text.substr(0, eq)] = text.substr(eq + 1);
  return absl::OkStatus();
}

absl::StatusOr<Command> ParseCommand(const std::string& word) {
  if (word == "version") return Command::kVersion;
  if (word == "pull") return Command::kPull;
  if (word == "status") return Command::kStatus;
  if (word == "list") return Command::kList;
  if (word == "remove" || word == "rmi") return Command::kRemove;
  if (word == "help") return Command::kHelp;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown command \"", word, "\""));
}

// Applies one option to the invocation.
absl::Status ApplyOption(const std::string& name, const std::string& value,
                         Invocation* inv) {
  if (name == "address") {
    inv->address = NormalizeAddress(value);
  } else if (name == "timeout") {
    absl::StatusOr<absl::Duration> t = ParseTimeout(value);
    if (!t.ok()) return t.status();
    inv->timeout = *t;
  } else if (name == "pod-annotation") {
    return SplitKeyValue(name, value, &inv->pod_annotations);
  } else if (name == "annotation") {
    return SplitKeyValue(name, value, &inv->image_annotations);
  } else if (name == "pod-name") {
    inv->pod_name = value;
  } else if (name == "pod-namespace") {
    inv->pod_namespace = value;
  } else if (name == "pod-uid") {
    inv->pod_uid = value;
  } else if (name == "runtime-handler") {
    inv->runtime_handler = value;
  } else if (name == "username") {
    inv->auth_username = value;
  } else if (name == "password") {
    inv->auth_password = value;
  } else if (name == "verbose") {
    inv->verbose = true;
  } else if (name == "help") {
    inv->command = Command::kHelp;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown option --", name));
  }
  return absl::OkStatus();
}

// Checks that the positional arguments fit the sub-command.
absl::Status CheckPositionals(const std::vector<std::string>& positionals,
                              Invocation* inv) {
  const bool wants_image = inv->command == Command::kPull ||
                           inv->command == Command::kStatus ||
                           inv->command == Command::kRemove;
  const std::size_t expected = wants_image ? 1 : 0;
  if (positionals.size() != expected) {
    return absl::InvalidArgumentError(
        wants_image ? "this command takes exactly one IMAGE argument"
                    : "this command takes no arguments");
  }
  if (wants_image) {
    if (positionals[0].empty()) {
      return absl::InvalidArgumentError("IMAGE must not be empty");
    }
    inv->image = positionals[0];
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<absl::Duration> ParseTimeout(const std::string& text) {
  absl::Duration d;
  int64_t seconds = 0;
  if (absl::SimpleAtoi(text, &seconds)) {
    d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(text, &d)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad timeout \"", text, "\" (want e.g. 300s, 5m, 90)"));
  }
  if (d <= absl::ZeroDuration() || d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "timeout must be positive and finite, got \"", text, "\""));
  }
  return d;
}

std::string NormalizeAddress(const std::string& address) {
  if (absl::StartsWith(address, "/")) return absl::StrCat("unix://", address);
  if (absl::StartsWith(address, "unix:") &&
      !absl::StartsWith(address, "unix://") && address.size() > 5 &&
      address[5] == '/') {
    return absl::StrCat("unix://", address.substr(5));
  }
  return address;
}

absl::StatusOr<Invocation> ParseArgs(const std::vector<std::string>& args) {
  Invocation inv;
  bool have_command = false;
  std::vector<std::string> positionals;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (absl::StartsWith(arg, "--") && arg.size() > 2) {
      std::string name = arg.substr(2);
      std::string value;
      const std::size_t eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      } else if (TakesValue(name)) {
        if (i + 1 >= args.size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("option --", name, " needs a value"));
        }
        value = args[++i];
      }
      if (!TakesValue(name) && eq != std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("option --", name, " takes no value"));
      }
      absl::Status st = ApplyOption(name, value, &inv);
      if (!st.ok()) return st;
      if (inv.command == Command::kHelp && name == "help") return inv;
    } else if (arg == "-h") {
      inv.command = Command::kHelp;
      return inv;
    } else if (!have_command) {
      absl::StatusOr<Command> cmd = ParseCommand(arg);
      if (!cmd.ok()) return cmd.status();
      inv.command = *cmd;
      have_command = true;
    } else {
      positionals.push_back(arg);
    }
  }
  if (!have_command) {
    return absl::InvalidArgumentError("missing command");
  }
  if (inv.command == Command::kHelp) return inv;
  absl::Status st = CheckPositionals(positionals, &inv);
  if (!st.ok()) return st;
  return inv;
}

std::string UsageText() {
  return R"(usage: cri-client [--address unix:///path/containerd.sock] [--timeout 300s] COMMAND

A minimal CRI (runtime.v1) client for tests. Output is JSON on stdout; errors
go to stderr as "cri-client: <what>: <GRPC_CODE>: <message>" with exit 1.

commands:
  version                 RuntimeService.Version
  pull IMAGE              ImageService.PullImage; prints {"image_ref": ...}
      [--pod-annotation k=v ...]  sandbox_config.annotations
      [--annotation k=v ...]      image.annotations
      [--pod-name N] [--pod-namespace NS] [--pod-uid U]  sandbox metadata
      [--runtime-handler H]       image.runtime_handler
      [--username U --password P] auth
  status IMAGE [--verbose] ImageService.ImageStatus; prints {"present": true,
                          "id", "repo_tags", "repo_digests", "size", ...} or
                          {"present": false} (exit 0) if the image is unknown
  list                    ImageService.ListImages; prints a JSON array
  remove IMAGE            ImageService.RemoveImage; prints {"removed": IMAGE}

options:
  --address A   gRPC target; a bare /path means unix:///path
                (default unix:///run/containerd/containerd.sock)
  --timeout T   deadline per RPC, e.g. 300s, 5m, 90 (default 300s)
)";
}

}  // namespace cri_client
