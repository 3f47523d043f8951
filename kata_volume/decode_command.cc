// `decode` subcommand: base64 option -> pretty JSON + Go/Rust validity.
#include "kata_volume/decode_command.h"

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "kata_volume/go_json_view.h"
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
    "Prints the KataVirtualVolume as JSON (as kata's Go runtime reads it) and\n"
    "whether kata's Go (ParseKataVirtualVolume, IsValid) and\n"
    "Rust (validate) runtimes accept it.\n"
    "Exit status: 0 valid for both, 1 invalid, 2 usage or decode error.\n";

std::string Verdict(const absl::Status& status) {
  if (status.ok()) return "yes";
  return "no (" + std::string(status.message()) + ")";
}

// The base64 of the volume option in `argument`: the option, the bare
// base64, or whole mount options holding it.
absl::StatusOr<std::string> PayloadOf(absl::string_view argument) {
  std::string option(argument);
  if (absl::StrContains(argument, ',')) {
    ASSIGN_OR_RETURN(option, FindVolumeOption(argument));
  }
  absl::string_view payload = option;
  absl::ConsumePrefix(&payload, kVolumeOptionPrefix);
  return std::string(payload);
}

// The volume as kata's Go runtime reads `payload`: base64.StdEncoding
// skips newlines, json.Unmarshal is read by GoJsonView.
absl::StatusOr<KataVirtualVolume> GoVolume(const std::string& payload) {
  const std::string unwrapped = absl::StrReplaceAll(payload, {{"\r", ""}, {"\n", ""}});
  ASSIGN_OR_RETURN(std::string json, DecodeVolumeBase64Json(unwrapped));
  ASSIGN_OR_RETURN(nlohmann::ordered_json view, GoJsonView(json));
  return VolumeFromJsonValue(view);
}

// The volume read strictly from `payload` (standard base64, no repeated
// field taken silently), and why kata's Rust runtime (the base64 crate,
// serde_json) refuses it, if it does.
struct StrictReading {
  absl::StatusOr<KataVirtualVolume> volume;
  absl::Status rust_refusal;
};

StrictReading ReadStrictly(const std::string& payload) {
  StrictReading reading;
  absl::StatusOr<std::string> json = DecodeVolumeBase64Json(payload);
  reading.volume = json.ok() ? VolumeFromJson(*json) : json.status();
  if (!reading.volume.ok()) {
    reading.rust_refusal = reading.volume.status();
    return reading;
  }
  std::string refusal = SerdeRefusal(*json);
  // Go ignores set unused bits of the last character, the crate does not.
  if (refusal.empty() && absl::Base64Escape(*json) != payload) {
    refusal = "base64 is not canonical (unused bits of the last character are set)";
  }
  if (!refusal.empty()) reading.rust_refusal = absl::InvalidArgumentError(refusal);
  return reading;
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
  absl::StatusOr<std::string> payload = PayloadOf(argument);
  if (!payload.ok()) {
    err << "decode: " << payload.status().message() << "\n";
    return 2;
  }
  const absl::StatusOr<KataVirtualVolume> go = GoVolume(*payload);
  const StrictReading strict = ReadStrictly(*payload);
  // Shown as Go reads it, else as read strictly; unreadable both ways: an
  // error (the strict reading says best what is wrong).
  const absl::StatusOr<KataVirtualVolume>& shown = go.ok() ? go : strict.volume;
  if (!shown.ok()) {
    err << "decode: " << shown.status().message() << "\n";
    return 2;
  }
  const KataVirtualVolume* volume = &*shown;
  const absl::Status go_status = go.ok() ? ValidateGo(*go) : go.status();
  const absl::Status rust_status = strict.rust_refusal.ok()
                                       ? ValidateRust(*strict.volume)
                                       : strict.rust_refusal;
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
