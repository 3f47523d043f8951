// Manifest and config parsing (nlohmann-json, no exceptions).
#include "guest_agent/image_config.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "guest_agent/json_fields.h"
#include "kata_volume/verity/sha256.h"

namespace guest_pull::guest_agent {

namespace {

using nlohmann::json;

std::string StringOr(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

absl::StatusOr<std::string> DescriptorDigest(const json& descriptor, const std::string& what) {
  if (!descriptor.is_object()) return absl::InvalidArgumentError(absl::StrCat(what, " is not an object"));
  std::string digest = StringOr(descriptor, "digest");
  if (!verity::IsSha256Digest(digest)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " digest \"", digest, "\" is not sha256:<64 hex>"));
  }
  return digest;
}

}  // namespace

absl::StatusOr<ImageManifest> ParseImageManifest(absl::string_view text) {
  json manifest = json::parse(text.begin(), text.end(), nullptr, false);
  if (manifest.is_discarded() || !manifest.is_object()) {
    return absl::InvalidArgumentError("manifest is not a JSON object");
  }
  if (manifest.contains("manifests")) {
    return absl::InvalidArgumentError("manifest is an image index; the volume must pin an image manifest");
  }
  auto layers = manifest.find("layers");
  if (layers == manifest.end() || !layers->is_array() || layers->empty()) {
    return absl::InvalidArgumentError("manifest has no layers");
  }
  auto config = manifest.find("config");
  if (config == manifest.end()) return absl::InvalidArgumentError("manifest has no config");
  ImageManifest out;
  absl::StatusOr<std::string> digest = DescriptorDigest(*config, "config");
  if (!digest.ok()) return digest.status();
  out.config_digest = *digest;
  for (size_t i = 0; i < layers->size(); ++i) {
    digest = DescriptorDigest((*layers)[i], absl::StrCat("layer ", i));
    if (!digest.ok()) return digest.status();
    out.layer_digests.push_back(*digest);
  }
  return out;
}

absl::StatusOr<ImageConfig> ParseImageConfig(absl::string_view text) {
  json config = json::parse(text.begin(), text.end(), nullptr, false);
  if (config.is_discarded() || !config.is_object()) {
    return absl::InvalidArgumentError("image config is not a JSON object");
  }
  ImageConfig out;
  auto rootfs = config.find("rootfs");
  if (rootfs == config.end() || !rootfs->is_object()) {
    return absl::InvalidArgumentError("image config has no rootfs");
  }
  absl::StatusOr<std::vector<std::string>> list = JsonStringArray(*rootfs, "diff_ids");
  if (!list.ok()) return list.status();
  out.diff_ids = std::move(*list);
  for (const std::string& d : out.diff_ids) {
    if (!verity::IsSha256Digest(d)) {
      return absl::InvalidArgumentError(absl::StrCat("image config diff_id \"", d, "\" is not sha256:<64 hex>"));
    }
  }
  auto process = config.find("config");
  if (process == config.end() || process->is_null()) return out;
  if (!process->is_object()) return absl::InvalidArgumentError("image config's config is not an object");
  for (auto [key, field] : {std::pair{"Entrypoint", &out.entrypoint}, std::pair{"Cmd", &out.cmd},
                            std::pair{"Env", &out.env}}) {
    list = JsonStringArray(*process, key);
    if (!list.ok()) return list.status();
    *field = std::move(*list);
  }
  for (auto [key, field] : {std::pair{"WorkingDir", &out.working_dir}, std::pair{"User", &out.user}}) {
    absl::StatusOr<std::string> value = JsonOptionalString(*process, key);
    if (!value.ok()) return value.status();
    *field = std::move(*value);
  }
  // The process chdirs there after its chroot: a relative path would start
  // from the agent's cwd, outside the rootfs.
  if (!out.working_dir.empty() && out.working_dir[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("image config WorkingDir \"", out.working_dir, "\" is not absolute"));
  }
  return out;
}

}  // namespace guest_pull::guest_agent
