// `decode` subcommand: base64 option -> pretty JSON + Go/Rust validity.
#include "kata_volume/decode_command.h"

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "kata_volume/validate.h"
#include "kata_volume/volume.h"
#include "kata_volume/volume_json.h"
#include "kata_volume/volume_option.h"
#include "base/status_macros.h"

namespace kata_volume {
namespace {

constexpr char kUsage[] =
    "usage: decode <io.katacontainers.volume=BASE64 | BASE64 | "
    "comma-separated mount options>\n"
    "Prints the KataVirtualVolume as JSON and whether kata's Go (IsValid) and\n"
    "Rust (validate) runtimes accept it.\n"
    "Exit status: 0 valid for both, 1 invalid, 2 usage or decode error.\n";

std::string Verdict(const absl::Status& status) {
  if (status.ok()) return "yes";
  return "no (" + std::string(status.message()) + ")";
}

struct Decoded {
  std::string json;
  // Whether the base64 is the one encoding of `json`: Go ignores set unused
  // bits of the last character, Rust's base64 crate refuses them.
  bool canonical = true;
};

absl::StatusOr<Decoded> DecodeArgument(absl::string_view argument) {
  std::string option(argument);
  if (absl::StrContains(argument, ',')) {
    ASSIGN_OR_RETURN(option, FindVolumeOption(argument));
  }
  Decoded decoded;
  ASSIGN_OR_RETURN(decoded.json, DecodeVolumeOptionJson(option));
  absl::string_view payload = option;
  absl::ConsumePrefix(&payload, kVolumeOptionPrefix);
  decoded.canonical = absl::Base64Escape(decoded.json) == payload;
  return decoded;
}

}  // namespace

int RunDecodeCommand(const std::vector<std::string>& args, std::ostream& out,
                     std::ostream& err) {
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    out << kUsage;
    return 0;
  }
  if (args.size() != 1) {
    err << "decode: expected exactly one argument, got " << args.size() << "\n"
        << kUsage;
    return 2;
  }
  const absl::string_view argument = absl::StripAsciiWhitespace(args[0]);
  absl::StatusOr<Decoded> decoded = DecodeArgument(argument);
  absl::StatusOr<KataVirtualVolume> volume =
      decoded.ok() ? VolumeFromJson(decoded->json) : decoded.status();
  if (!volume.ok()) {
    err << "decode: " << volume.status().message() << "\n";
    return 2;
  }
  const absl::Status go_status = ValidateGo(*volume);
  std::string refusal = SerdeRefusal(decoded->json);
  if (refusal.empty() && !decoded->canonical) {
    refusal = "base64 is not canonical (unused bits of the last character are set)";
  }
  const absl::Status rust_status =
      refusal.empty() ? ValidateRust(*volume) : absl::InvalidArgumentError(refusal);
  out << VolumeToJson(*volume, 2) << "\n";
  out << "go_valid: " << Verdict(go_status) << "\n";
  out << "rust_valid: " << Verdict(rust_status) << "\n";
  if (!volume->volume_type.empty() && !IsKnownVolumeType(volume->volume_type)) {
    err << "decode: note: volume_type \"" << volume->volume_type
        << "\" is not a known kata volume type\n";
  }
  return go_status.ok() && rust_status.ok() ? 0 : 1;
}

}  // namespace kata_volume
