// JSON encoding of KataVirtualVolume with the keys kata's Go and Rust code
// use (see volume.h). Encoding follows Go's encoding/json: fields in struct
// order, omitempty for source/fs_type/options, 64-bit integers as JSON
// numbers, metadata maps sorted by key, and `image_pull.metadata` always
// written as an object because Go's IsValid rejects a null map.
#ifndef KATA_VOLUME_VOLUME_JSON_H_
#define KATA_VOLUME_VOLUME_JSON_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kata_volume/volume.h"
#include "nlohmann/json.hpp"

namespace kata_volume {

// The volume as a JSON value (keys in Go struct order).
nlohmann::ordered_json VolumeToJsonValue(const KataVirtualVolume& volume);

// The volume as JSON text: compact when indent < 0, else pretty-printed.
// Invalid UTF-8 in strings is replaced by U+FFFD, as Go's json.Marshal does.
std::string VolumeToJson(const KataVirtualVolume& volume, int indent = -1);

// Parses a JSON value into a volume. Unknown keys are ignored (like Go and
// serde); a wrong type yields InvalidArgument naming the field, e.g.
// "dm_verity.blocknum: expected an unsigned 64-bit integer, got string".
// JSON null is treated like an absent key, as Go does.
absl::StatusOr<KataVirtualVolume> VolumeFromJsonValue(
    const nlohmann::ordered_json& value);

// The UTF-8 byte order mark nlohmann's parser skips at the start of JSON
// text, which Go's encoding/json and serde_json refuse as malformed.
inline constexpr char kUtf8ByteOrderMark[] = "\xEF\xBB\xBF";

// Parses JSON text (see VolumeFromJsonValue); syntax errors, and a leading
// byte order mark, are InvalidArgument with the parser's position.
absl::StatusOr<KataVirtualVolume> VolumeFromJson(absl::string_view json);

// The first field of kata's volume structs that JSON text repeats within
// one object, or "" when none is repeated (or the text does not parse).
// Go's encoding/json takes the last of repeated keys (as VolumeFromJson
// does); kata's Rust agent (serde) refuses a repeated struct field, but
// not a repeated unknown key, nor a repeated key of a `metadata` map
// (a HashMap: the last wins).
std::string FirstRepeatedKey(absl::string_view json);

// Why kata's Rust runtime (serde_json into its structs) refuses JSON text
// that Go may accept, or "" when it does not: a repeated struct field (see
// FirstRepeatedKey), a missing field without a serde default
// (`volume_type`; in `dm_verity` all but `salt`, `hash_type` and
// `no_superblock`), or null for a field that is not an Option (all but the
// four sub-structures and `salt`; Go marshals a nil map as null). Type
// errors, which both refuse, are left to VolumeFromJson.
std::string SerdeRefusal(absl::string_view json);

}  // namespace kata_volume

#endif  // KATA_VOLUME_VOLUME_JSON_H_
