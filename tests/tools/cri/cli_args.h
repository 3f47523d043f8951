// Command-line parsing for cri-client: global options, one sub-command, and
// the sub-command's own options, into a plain Invocation struct.
#ifndef TESTS_TOOLS_CRI_CLI_ARGS_H_
#define TESTS_TOOLS_CRI_CLI_ARGS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace cri_client {

// The sub-commands cri-client understands.
enum class Command { kVersion, kPull, kStatus, kList, kRemove, kHelp };

// Everything one run of cri-client needs, after parsing and validation.
struct Invocation {
  Command command = Command::kHelp;
  std::string address = "unix:///run/containerd/containerd.sock";
  absl::Duration timeout = absl::Seconds(300);
  std::string image;  // pull, status, remove
  // pull only:
  std::map<std::string, std::string> pod_annotations;
  std::map<std::string, std::string> image_annotations;
  std::string pod_name = "cri-client";
  std::string pod_namespace = "default";
  std::string pod_uid = "cri-client-uid";
  std::string runtime_handler;
  std::string auth_username;
  std::string auth_password;
  bool verbose = false;  // status: ask for the runtime's verbose info map
};

// Parses argv (argv[0] excluded). Options may appear before or after the
// sub-command; "--opt=value" and "--opt value" are both accepted.
absl::StatusOr<Invocation> ParseArgs(const std::vector<std::string>& args);

// Parses a timeout: an absl duration ("300s", "5m", "1500ms", "1h30m") or a
// bare number of seconds. Must be positive.
absl::StatusOr<absl::Duration> ParseTimeout(const std::string& text);

// Turns "/path", "unix:/path" or "unix:///path" into a gRPC target; other
// schemes (unix-abstract:, dns:, ipv4:) are passed through.
std::string NormalizeAddress(const std::string& address);

// Usage text printed by --help and on argument errors.
std::string UsageText();

}  // namespace cri_client

#endif  // TESTS_TOOLS_CRI_CLI_ARGS_H_
