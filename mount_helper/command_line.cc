// Argument parsing for guest-pull-overlayfs.
#include "mount_helper/command_line.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace mount_helper {

std::string ProgramName(const char* argv0) {
  if (argv0 == nullptr) return kProgram;
  absl::string_view name = argv0;
  const size_t slash = name.rfind('/');
  if (slash != absl::string_view::npos) name.remove_prefix(slash + 1);
  return name.empty() ? kProgram : std::string(name);
}

std::string HelperUsage(const std::string& program) {
  return absl::StrCat(
      "usage: ", program, " [<source>] <target> [-o options]... "
      "[-n] [-s] [-v] [-f]\n"
      "Mounts an overlay filesystem for a fuse.", program, " mount\n"
      "(run by mount.fuse3). The source defaults to \"overlay\". Options\n"
      "starting with io.katacontainers. or guest-pull. are dropped,\n"
      "mount(8) flag options become mount flags, everything else is\n"
      "passed to overlay. Paths are made relative to their common parent\n"
      "if the data exceeds one page.\n"
      "  -o OPTS  comma-separated options (repeatable)\n"
      "  -f       fake: check everything but do not mount\n"
      "  -v       print the mount(2) call to stderr\n"
      "  -n, -s   accepted for mount(8) compatibility, ignored\n"
      "  -h, --help     this text\n"
      "  -V, --version  print the version\n"
      "Exit status (mount(8)'s): 0 mounted, 1 usage error, 32 mount failed.\n");
}

absl::StatusOr<HelperArgs> ParseHelperArgs(const std::vector<std::string>& args) {
  HelperArgs parsed;
  std::vector<std::string> positional;
  bool options_ended = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_ended || arg.empty() || arg[0] != '-' || arg == "-") {
      positional.push_back(arg);
    } else if (arg == "--") {
      options_ended = true;
    } else if (arg == "-h" || arg == "--help") {
      parsed.help = true;
    } else if (arg == "-V" || arg == "--version") {
      parsed.version = true;
    } else if (arg == "-o") {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError("option -o needs a value");
      }
      parsed.option_lists.push_back(args[++i]);
    } else if (absl::StartsWith(arg, "-o")) {
      parsed.option_lists.push_back(arg.substr(2));
    } else if (arg == "-f") {
      parsed.fake = true;
    } else if (arg == "-v") {
      parsed.verbose = true;
    } else if (arg == "-n" || arg == "-s") {
      // No mtab to maintain; overlay options are never "sloppy"-parsed.
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag \"", arg, "\""));
    }
  }
  if (parsed.help || parsed.version) return parsed;
  // mount.fuse3 leaves out an empty source (and passes '' for "type#"):
  // the overlay is then mounted from kDefaultSource.
  if (positional.size() == 1) positional.insert(positional.begin(), "");
  if (positional.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected [<source>] <target>, got ", positional.size(),
        " positional argument(s)"));
  }
  parsed.source = positional[0].empty() ? kDefaultSource : positional[0];
  parsed.target = positional[1];
  if (parsed.target.empty()) {
    return absl::InvalidArgumentError("target must not be empty");
  }
  // mount(8), mount.fuse3 and containerd pass an absolute mount point; a
  // relative one is a command typed by hand with its target left out
  // (`overlay -o ...` would mount on ./overlay).
  if (parsed.target[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "target must be an absolute path, got \"", parsed.target, "\""));
  }
  return parsed;
}

}  // namespace mount_helper
