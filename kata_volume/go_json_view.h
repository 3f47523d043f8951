// The volume JSON as kata's Go runtime reads it (encoding/json into its
// KataVirtualVolume structs), for the `decode` command's Go verdict.
#ifndef KATA_VOLUME_GO_JSON_VIEW_H_
#define KATA_VOLUME_GO_JSON_VIEW_H_

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kata_volume {

// What Go's json.Unmarshal makes of the JSON text `json`, as JSON that
// VolumeFromJsonValue reads to the same volume:
//  - keys match a struct's fields whatever their case, with Unicode simple
//    folding (U+212A is a k, U+017F an s); keys of a metadata map do not;
//  - a repeated key is decoded into what the earlier one left: the last
//    value of a field wins, objects (structs, metadata maps) are merged;
//  - null leaves a string or number field as it was and empties a
//    pointer, a map or a slice; a null metadata value is ""; a null
//    element of an array leaves what the slice's backing array held there
//    ("" if nothing);
//  - each byte of invalid UTF-8 in a string, and a \u escape of a
//    surrogate without its pair, is U+FFFD;
//  - keys Go's structs do not have (dm_verity's salt, hash_type and
//    no_superblock, which only kata's Rust side has) are dropped.
// Malformed text (a leading UTF-8 byte order mark too, which Go refuses and
// nlohmann would skip), or a value of the wrong type anywhere (Go then returns an
// error, even if a later key sets the field right), is InvalidArgument
// naming the field.
absl::StatusOr<nlohmann::ordered_json> GoJsonView(absl::string_view json);

}  // namespace kata_volume

#endif  // KATA_VOLUME_GO_JSON_VIEW_H_
