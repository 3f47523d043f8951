// JSON encode/decode of KataVirtualVolume with nlohmann::json.
#include "kata_volume/volume_json.h"

#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace kata_volume {
namespace {

using Json = nlohmann::ordered_json;

nlohmann::ordered_json MetadataToJson(const std::optional<Metadata>& metadata) {
  Json object = Json::object();
  if (metadata.has_value()) {
    for (const auto& [key, value] : *metadata) object[key] = value;
  }
  return object;
}

absl::Status TypeError(const std::string& field, absl::string_view expected,
                       const Json& got) {
  return absl::InvalidArgumentError(absl::StrCat(
      "KataVirtualVolume field ", field, ": expected ", expected, ", got ",
      got.type_name()));
}

// Reads `object[key]` into `out` when present and not null.
absl::Status ReadString(const Json& object, const char* key,
                        const std::string& path, std::string* out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string()) return TypeError(path + key, "a string", *it);
  *out = it->get<std::string>();
  return absl::OkStatus();
}

absl::Status ReadUint64(const Json& object, const char* key,
                        const std::string& path, uint64_t* out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number_unsigned()) {
    // Negative, fractional or > 2^64-1 numbers land here, like Go's
    // "cannot unmarshal number ... into Go struct field ... of type uint64".
    return TypeError(path + key, "an unsigned 64-bit integer", *it);
  }
  *out = it->get<uint64_t>();
  return absl::OkStatus();
}

absl::Status ReadMetadata(const Json& object, const std::string& path,
                          std::optional<Metadata>* out) {
  auto it = object.find("metadata");
  if (it == object.end() || it->is_null()) return absl::OkStatus();
  const std::string field = path + "metadata";
  if (!it->is_object()) return TypeError(field, "an object", *it);
  Metadata metadata;
  for (const auto& [key, value] : it->items()) {
    if (!value.is_string()) {
      return TypeError(absl::StrCat(field, "[\"", key, "\"]"), "a string",
                       value);
    }
    metadata[key] = value.get<std::string>();
  }
  *out = std::move(metadata);
  return absl::OkStatus();
}

// Returns the sub-object `key` or nullptr if absent/null; error if not an
// object.
absl::StatusOr<const Json*> SubObject(const Json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  if (!it->is_object()) return TypeError(key, "an object", *it);
  return &*it;
}

absl::StatusOr<DmVerityInfo> DmVerityFromJson(const Json& object) {
  const std::string path = "dm_verity.";
  DmVerityInfo info;
  absl::Status status = ReadString(object, "hashtype", path, &info.hashtype);
  if (status.ok()) status = ReadString(object, "hash", path, &info.hash);
  if (status.ok()) status = ReadUint64(object, "blocknum", path, &info.blocknum);
  if (status.ok()) status = ReadUint64(object, "blocksize", path, &info.blocksize);
  if (status.ok()) status = ReadUint64(object, "hashsize", path, &info.hashsize);
  if (status.ok()) status = ReadUint64(object, "offset", path, &info.offset);
  if (!status.ok()) return status;

  auto salt = object.find("salt");
  if (salt != object.end() && !salt->is_null()) {
    if (!salt->is_string()) return TypeError(path + "salt", "a string", *salt);
    info.salt = salt->get<std::string>();
  }
  auto hash_type = object.find("hash_type");
  if (hash_type != object.end() && !hash_type->is_null()) {
    if (!hash_type->is_number_unsigned() ||
        hash_type->get<uint64_t>() > std::numeric_limits<uint32_t>::max()) {
      return TypeError(path + "hash_type", "an unsigned 32-bit integer",
                       *hash_type);
    }
    info.hash_type = static_cast<uint32_t>(hash_type->get<uint64_t>());
  }
  auto no_superblock = object.find("no_superblock");
  if (no_superblock != object.end() && !no_superblock->is_null()) {
    if (!no_superblock->is_boolean()) {
      return TypeError(path + "no_superblock", "a boolean", *no_superblock);
    }
    info.no_superblock = no_superblock->get<bool>();
  }
  return info;
}

}  // namespace

nlohmann::ordered_json VolumeToJsonValue(const KataVirtualVolume& volume) {
  Json json = Json::object();
  json["volume_type"] = volume.volume_type;
  if (!volume.source.empty()) json["source"] = volume.source;
  if (!volume.fs_type.empty()) json["fs_type"] = volume.fs_type;
  if (!volume.options.empty()) json["options"] = volume.options;
  if (volume.direct_volume.has_value()) {
    json["direct_volume"] = {
        {"metadata", MetadataToJson(volume.direct_volume->metadata)}};
  }
  if (volume.image_pull.has_value()) {
    json["image_pull"] = {
        {"metadata", MetadataToJson(volume.image_pull->metadata)}};
  }
  if (volume.nydus_image.has_value()) {
    json["nydus_image"] = {{"config", volume.nydus_image->config},
                           {"snapshot_dir", volume.nydus_image->snapshot_dir}};
  }
  if (volume.dm_verity.has_value()) {
    const DmVerityInfo& info = *volume.dm_verity;
    Json verity = Json::object();
    verity["hashtype"] = info.hashtype;
    verity["hash"] = info.hash;
    verity["blocknum"] = info.blocknum;
    verity["blocksize"] = info.blocksize;
    verity["hashsize"] = info.hashsize;
    verity["offset"] = info.offset;
    if (info.salt.has_value()) verity["salt"] = *info.salt;
    if (info.hash_type.has_value()) verity["hash_type"] = *info.hash_type;
    if (info.no_superblock.has_value()) {
      verity["no_superblock"] = *info.no_superblock;
    }
    json["dm_verity"] = std::move(verity);
  }
  return json;
}

std::string VolumeToJson(const KataVirtualVolume& volume, int indent) {
  return VolumeToJsonValue(volume).dump(indent, ' ', false,
                                        Json::error_handler_t::replace);
}

absl::StatusOr<KataVirtualVolume> VolumeFromJsonValue(const Json& value) {
  if (!value.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KataVirtualVolume must be a JSON object, got ", value.type_name()));
  }
  KataVirtualVolume volume;
  absl::Status status =
      ReadString(value, "volume_type", "", &volume.volume_type);
  if (status.ok()) status = ReadString(value, "source", "", &volume.source);
  if (status.ok()) status = ReadString(value, "fs_type", "", &volume.fs_type);
  if (!status.ok()) return status;

  auto options = value.find("options");
  if (options != value.end() && !options->is_null()) {
    if (!options->is_array()) {
      return TypeError("options", "an array of strings", *options);
    }
    for (size_t i = 0; i < options->size(); ++i) {
      const Json& option = (*options)[i];
      if (!option.is_string()) {
        return TypeError(absl::StrCat("options[", i, "]"), "a string", option);
      }
      volume.options.push_back(option.get<std::string>());
    }
  }

  ASSIGN_OR_RETURN(const Json* direct, SubObject(value, "direct_volume"));
  if (direct != nullptr) {
    DirectAssignedVolume direct_volume;
    status = ReadMetadata(*direct, "direct_volume.", &direct_volume.metadata);
    if (!status.ok()) return status;
    volume.direct_volume = std::move(direct_volume);
  }

  ASSIGN_OR_RETURN(const Json* pull, SubObject(value, "image_pull"));
  if (pull != nullptr) {
    ImagePullVolume image_pull;
    status = ReadMetadata(*pull, "image_pull.", &image_pull.metadata);
    if (!status.ok()) return status;
    volume.image_pull = std::move(image_pull);
  }

  ASSIGN_OR_RETURN(const Json* nydus, SubObject(value, "nydus_image"));
  if (nydus != nullptr) {
    NydusImageVolume nydus_image;
    status = ReadString(*nydus, "config", "nydus_image.", &nydus_image.config);
    if (status.ok()) {
      status = ReadString(*nydus, "snapshot_dir", "nydus_image.",
                          &nydus_image.snapshot_dir);
    }
    if (!status.ok()) return status;
    volume.nydus_image = std::move(nydus_image);
  }

  ASSIGN_OR_RETURN(const Json* verity, SubObject(value, "dm_verity"));
  if (verity != nullptr) {
    ASSIGN_OR_RETURN(DmVerityInfo info, DmVerityFromJson(*verity));
    volume.dm_verity = std::move(info);
  }
  return volume;
}

absl::StatusOr<KataVirtualVolume> VolumeFromJson(absl::string_view json) {
  if (absl::StartsWith(json, kUtf8ByteOrderMark)) {
    // nlohmann skips it; serde_json and Go's encoding/json refuse it.
    return absl::InvalidArgumentError(
        "KataVirtualVolume JSON is malformed: it starts with a byte order mark");
  }
  Json value;
  try {
    value = Json::parse(json.begin(), json.end());
  } catch (const Json::exception& error) {
    // parse_error for bad syntax, out_of_range for a number beyond double.
    return absl::InvalidArgumentError(
        absl::StrCat("KataVirtualVolume JSON is malformed: ", error.what()));
  }
  return VolumeFromJsonValue(value);
}

std::string FirstRepeatedKey(absl::string_view json) {
  // The fields of each kata struct, by the key that holds it ("" for the
  // volume itself); any other object (a metadata map, an unknown key's
  // value) takes repeated keys as serde does, without an error.
  static const std::map<std::string, std::set<std::string>> kFieldsOf = {
      {"", {"volume_type", "source", "fs_type", "options", "direct_volume", "image_pull",
            "nydus_image", "dm_verity"}},
      {"direct_volume", {"metadata"}},
      {"image_pull", {"metadata"}},
      {"nydus_image", {"config", "snapshot_dir"}},
      {"dm_verity",
       {"hashtype", "hash", "blocknum", "blocksize", "hashsize", "offset", "salt", "hash_type",
        "no_superblock"}}};
  struct OpenObject {
    const std::set<std::string>* fields;  // null: not a kata struct
    std::set<std::string> keys;
  };
  std::vector<OpenObject> open_objects;
  std::string last_key, repeated;
  Json::parser_callback_t note_keys = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) {
      const std::set<std::string>* fields = nullptr;
      const bool in_struct = open_objects.empty() || open_objects.back().fields != nullptr;
      auto it = kFieldsOf.find(depth == 0 ? "" : last_key);
      if (in_struct && it != kFieldsOf.end() && (depth == 0) == it->first.empty()) {
        fields = &it->second;
      }
      open_objects.push_back({fields, {}});
    } else if (event == Json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == Json::parse_event_t::key && !open_objects.empty()) {
      last_key = parsed.get<std::string>();
      OpenObject& object = open_objects.back();
      if (object.fields != nullptr && object.fields->count(last_key) > 0 &&
          !object.keys.insert(last_key).second && repeated.empty()) {
        repeated = last_key;
      }
    } else if (event == Json::parse_event_t::value) {
      last_key.clear();
    }
    return true;
  };
  try {
    Json parsed = Json::parse(json.begin(), json.end(), note_keys);
    (void)parsed;
  } catch (const Json::exception&) {
    return "";
  }
  return repeated;
}

std::string SerdeRefusal(absl::string_view json) {
  if (std::string repeated = FirstRepeatedKey(json); !repeated.empty()) {
    return absl::StrCat("duplicate field `", repeated,
                        "`: serde refuses a repeated field; Go takes the last");
  }
  // kata-types' serde attributes: required fields have no default, nullable
  // ones are Options.
  struct Field {
    const char* name;
    bool required;
    bool nullable;
  };
  static const std::map<std::string, std::vector<Field>> kStructs = {
      {"",
       {{"volume_type", true, false},
        {"source", false, false},
        {"fs_type", false, false},
        {"options", false, false},
        {"direct_volume", false, true},
        {"image_pull", false, true},
        {"nydus_image", false, true},
        {"dm_verity", false, true}}},
      {"direct_volume", {{"metadata", false, false}}},
      {"image_pull", {{"metadata", false, false}}},
      {"nydus_image", {{"config", false, false}, {"snapshot_dir", false, false}}},
      {"dm_verity",
       {{"hashtype", true, false},
        {"hash", true, false},
        {"blocknum", true, false},
        {"blocksize", true, false},
        {"hashsize", true, false},
        {"offset", true, false},
        {"salt", false, true},
        {"hash_type", false, false},
        {"no_superblock", false, false}}}};
  const Json value = Json::parse(json.begin(), json.end(), nullptr, false);
  if (value.is_discarded() || !value.is_object()) return "";
  for (const auto& [struct_key, fields] : kStructs) {
    const Json* object = &value;
    if (!struct_key.empty()) {
      auto it = value.find(struct_key);
      if (it == value.end() || !it->is_object()) continue;
      object = &*it;
    }
    const std::string path = struct_key.empty() ? "" : struct_key + ".";
    for (const Field& field : fields) {
      auto it = object->find(field.name);
      if (it == object->end()) {
        if (field.required) return absl::StrCat("missing field `", path, field.name, "`");
      } else if (it->is_null() && !field.nullable) {
        return absl::StrCat("field `", path, field.name,
                            "` is null: serde takes null only for an Option");
      }
    }
  }
  return "";
}

}  // namespace kata_volume
