// `decode` subcommand: decodes a KataVirtualVolume mount option and reports
// whether kata's Go and Rust runtimes would accept it. The guest-pull-verity
// tool (//kata_volume/tools) dispatches its `decode` subcommand here.
#ifndef KATA_VOLUME_DECODE_COMMAND_H_
#define KATA_VOLUME_DECODE_COMMAND_H_

#include <ostream>
#include <string>
#include <vector>

namespace kata_volume {

// `args` are the arguments after `decode`: exactly one, which is a whole
// option (`io.katacontainers.volume=<base64>`), the bare base64, or a whole
// comma-separated mount option string containing the option.
// On success prints to `out` the pretty JSON, then the lines
//   go_valid: yes|no (<reason>)
//   rust_valid: yes|no (<reason>)
// Returns 0 when decodable and valid for both, 1 when decodable but invalid
// for either, 2 on usage or decode errors (message on `err`).
// `--help` prints usage to `out` and returns 0.
int RunDecodeCommand(const std::vector<std::string>& args, std::ostream& out,
                     std::ostream& err);

}  // namespace kata_volume

#endif  // KATA_VOLUME_DECODE_COMMAND_H_
