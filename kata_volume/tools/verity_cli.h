// The guest-pull-verity command line: `layer`, `cache`, `index` and `decode`
// subcommands over the //kata_volume/verity libraries (decode is delegated to
// //kata_volume:decode_command). Kept apart from main() so it is testable.
#ifndef KATA_VOLUME_TOOLS_VERITY_CLI_H_
#define KATA_VOLUME_TOOLS_VERITY_CLI_H_

#include <ostream>
#include <string>
#include <vector>

namespace guest_pull::tools {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntimeError = 1;
inline constexpr int kExitUsage = 2;

inline constexpr char kVerityToolVersion[] = "guest-pull-verity 0.1.0";

// `args` excludes the program name. Returns the process exit code.
int RunVerityCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace guest_pull::tools

#endif  // KATA_VOLUME_TOOLS_VERITY_CLI_H_
