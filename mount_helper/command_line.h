// Command line of the guest-pull-overlayfs mount helper, as mount.fuse3 runs
// it: `guest-pull-overlayfs [<source>] <target> -o opt1,opt2,...` (also
// `-oOPTS`, several -o, and mount(8)'s helper flags -n -s -v -f).
#ifndef MOUNT_HELPER_COMMAND_LINE_H_
#define MOUNT_HELPER_COMMAND_LINE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace mount_helper {

// The mount(2) source when none (or an empty one) is given.
inline constexpr char kDefaultSource[] = "overlay";

// Parsed arguments.
struct HelperArgs {
  std::string source;                     // mount(2) source, e.g. "overlay"
  std::string target;                     // mount point
  std::vector<std::string> option_lists;  // each -o value, comma-joined
  bool fake = false;     // -f: do everything but mount(2)
  bool verbose = false;  // -v: print the mount(2) call to stderr
  bool help = false;     // -h/--help
  bool version = false;  // -V/--version
};

// Parses the arguments after argv[0]. `-n` and `-s` are accepted and
// ignored (no mtab; sloppy). One positional argument is the target: mount.fuse3
// leaves out an empty source (mount.fuse.c: `if (source) add_arg(...)`); an
// absent or empty source is kDefaultSource. InvalidArgument on unknown flags,
// a missing -o value, an empty or relative target, or not one or two
// positional arguments (unless help/version).
absl::StatusOr<HelperArgs> ParseHelperArgs(const std::vector<std::string>& args);

// The helper's own name.
inline constexpr char kProgram[] = "guest-pull-overlayfs";

// The helper's name for its messages: the base name of `argv0`, the name
// it was run by (guest-pull-overlayfs, or a second name such as
// nydus-overlayfs-guest-pull for stock kata), so an operator reading
// mount's error knows which helper spoke. kProgram if `argv0` is null or
// has no base name.
std::string ProgramName(const char* argv0);

// Usage text naming the helper `program`.
std::string HelperUsage(const std::string& program);

}  // namespace mount_helper

#endif  // MOUNT_HELPER_COMMAND_LINE_H_
