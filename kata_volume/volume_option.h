// The mount option that carries a KataVirtualVolume to the Kata runtime:
// `io.katacontainers.volume=` + standard base64 (with padding) of the JSON
// (see volume_json.h). Kata's Go shim decodes it with
// base64.StdEncoding.DecodeString, its Rust code with base64::decode.
#ifndef KATA_VOLUME_VOLUME_OPTION_H_
#define KATA_VOLUME_VOLUME_OPTION_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kata_volume/volume.h"

namespace kata_volume {

// Prefix of the mount option, including the '='.
inline constexpr char kVolumeOptionPrefix[] = "io.katacontainers.volume=";

// Largest base64 payload accepted or produced (64 KiB).
inline constexpr size_t kMaxVolumeBase64Bytes = 64 * 1024;

// Standard base64 of the compact JSON. ResourceExhausted if the result would
// exceed kMaxVolumeBase64Bytes.
absl::StatusOr<std::string> EncodeVolumeBase64(const KataVirtualVolume& volume);

// kVolumeOptionPrefix + EncodeVolumeBase64(volume).
absl::StatusOr<std::string> EncodeVolumeOption(const KataVirtualVolume& volume);

// Decodes either a whole option (`io.katacontainers.volume=<b64>`) or the
// bare base64. Rejects oversize input, characters outside the standard
// alphabet, bad padding and undecodable JSON with InvalidArgument. Does not
// validate the volume (see validate.h).
absl::StatusOr<KataVirtualVolume> DecodeVolumeOption(absl::string_view option);

// The JSON text DecodeVolumeOption parses (the same checks before it).
absl::StatusOr<std::string> DecodeVolumeOptionJson(absl::string_view option);

// The JSON text of a volume's bare base64 (the option's value, without
// its prefix), with the same checks as DecodeVolumeOptionJson but no size
// limit: kata's own parsers (Go ParseKataVirtualVolume, Rust
// KataVirtualVolume::from_base64) set none, so the decode command, which
// reports their verdict, must not either.
absl::StatusOr<std::string> DecodeVolumeBase64Json(absl::string_view base64);

// Finds the single `io.katacontainers.volume=` element of a comma-separated
// mount option string (e.g. "lowerdir=/a:/b,io.katacontainers.volume=..").
// NotFound if there is none, InvalidArgument if there are several.
absl::StatusOr<std::string> FindVolumeOption(absl::string_view mount_options);

}  // namespace kata_volume

#endif  // KATA_VOLUME_VOLUME_OPTION_H_
