// Request parsing: storage -> KataVirtualVolume -> ParseGuestPullImage.
#include "guest_agent/request.h"

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "guest_agent/json_fields.h"
#include "kata_volume/image_ref.h"
#include "kata_volume/volume.h"
#include "base/status_macros.h"

namespace guest_pull::guest_agent {

namespace {

using nlohmann::json;

// The ImagePullVolume JSON from the one "image_guest_pull=" driver option.
absl::StatusOr<kata_volume::Metadata> MetadataFromOptions(const std::vector<std::string>& options) {
  const std::string prefix = absl::StrCat(kImageGuestPullDriver, "=");
  const std::string* found = nullptr;
  for (const std::string& option : options) {
    if (!absl::StartsWith(option, prefix)) continue;
    if (found != nullptr) {
      return absl::InvalidArgumentError("storage has more than one image_guest_pull driver option");
    }
    found = &option;
  }
  if (found == nullptr) {
    return absl::InvalidArgumentError("storage has no image_guest_pull=<metadata JSON> driver option");
  }
  json volume = json::parse(found->substr(prefix.size()), nullptr, /*allow_exceptions=*/false);
  if (volume.is_discarded() || !volume.is_object()) {
    return absl::InvalidArgumentError("image_guest_pull driver option is not a JSON object");
  }
  auto metadata = volume.find("metadata");
  if (metadata == volume.end() || !metadata->is_object()) {
    return absl::InvalidArgumentError("image_guest_pull driver option has no metadata object");
  }
  kata_volume::Metadata out;
  for (auto it = metadata->begin(); it != metadata->end(); ++it) {
    if (!it.value().is_string()) {
      return absl::InvalidArgumentError(absl::StrCat("metadata value of ", it.key(), " is not a string"));
    }
    out[it.key()] = it.value().get<std::string>();
  }
  return out;
}

absl::StatusOr<ProcessSpec> ParseProcess(const json& request) {
  ProcessSpec process;
  auto it = request.find("process");
  if (it == request.end() || it->is_null()) return process;
  if (!it->is_object()) return absl::InvalidArgumentError("process is not an object");
  ASSIGN_OR_RETURN(std::vector<std::string> args, JsonStringArray(*it, "args"));
  ASSIGN_OR_RETURN(std::vector<std::string> env, JsonStringArray(*it, "env"));
  ASSIGN_OR_RETURN(std::string cwd, JsonOptionalString(*it, "cwd"));
  ASSIGN_OR_RETURN(std::string user, JsonOptionalString(*it, "user"));
  ASSIGN_OR_RETURN(std::vector<uint32_t> additional_gids, JsonIdArray(*it, "additional_gids"));
  for (const std::string& e : env) {
    if (e.find('=') == std::string::npos || e[0] == '=') {
      return absl::InvalidArgumentError(absl::StrCat("process env entry \"", e, "\" is not KEY=VALUE"));
    }
  }
  if (!cwd.empty() && cwd[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat("process cwd \"", cwd, "\" is not absolute"));
  }
  process.args = std::move(args);
  process.env = std::move(env);
  process.cwd = std::move(cwd);
  process.user = std::move(user);
  process.additional_gids = std::move(additional_gids);
  return process;
}

absl::StatusOr<TestOptions> ParseTestOptions(const json& request) {
  TestOptions test;
  auto it = request.find("test_options");
  if (it == request.end() || it->is_null()) return test;
  if (!it->is_object()) return absl::InvalidArgumentError("test_options is not an object");
  for (auto o = it->begin(); o != it->end(); ++o) {
    if (o.key() != "skip_blob_checks" || !o.value().is_boolean()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown test option ", o.key()));
    }
    test.skip_blob_checks = o.value().get<bool>();
  }
  return test;
}

}  // namespace

absl::StatusOr<GuestRequest> ParseGuestRequest(absl::string_view text) {
  json request = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded() || !request.is_object()) {
    return absl::InvalidArgumentError("request is not a JSON object");
  }
  auto storage = request.find("storage");
  if (storage == request.end() || !storage->is_object()) {
    return absl::InvalidArgumentError("request has no storage object");
  }
  ASSIGN_OR_RETURN(std::string driver, JsonOptionalString(*storage, "driver"));
  if (driver != kImageGuestPullDriver) {
    return absl::InvalidArgumentError(
        absl::StrCat("storage driver is \"", driver, "\", not \"", kImageGuestPullDriver, "\""));
  }
  ASSIGN_OR_RETURN(std::string source, JsonOptionalString(*storage, "source"));
  if (source.empty()) return absl::InvalidArgumentError("storage has no source (image reference)");
  ASSIGN_OR_RETURN(std::vector<std::string> options, JsonStringArray(*storage, "driver_options"));
  absl::StatusOr<kata_volume::Metadata> metadata = MetadataFromOptions(options);
  if (!metadata.ok()) return metadata.status();

  // kata's shim sends the CRI image name (often a tag) as the source; the
  // guest pulls by the volume's manifest digest only, so a source without a
  // digest is pinned to it (its name must still be the volume's image).
  std::string pinned_source = source;
  if (source.find('@') == std::string::npos) {
    auto digest = metadata->find(kata_volume::kMetaManifestDigest);
    if (digest != metadata->end() && kata_volume::IsSha256Digest(digest->second)) {
      ASSIGN_OR_RETURN(std::string pinned, kata_volume::PinImageReference(source, digest->second));
      pinned_source = std::move(pinned);
    }
  }
  kata_volume::KataVirtualVolume volume;
  volume.volume_type = kata_volume::kVolumeTypeImageGuestPull;
  volume.source = pinned_source;
  volume.image_pull.emplace();
  volume.image_pull->metadata = std::move(*metadata);
  ASSIGN_OR_RETURN(kata_volume::GuestPullImage image, kata_volume::ParseGuestPullImage(volume));
  for (size_t i = 0; i < image.layers.size(); ++i) {
    if (image.layers[i].verity_root_hash.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer ", i, " (", image.layers[i].digest,
                       ") has no expected dm-verity root hash; the guest cannot verify it"));
    }
  }

  GuestRequest out;
  out.source = pinned_source;
  out.image = std::move(image);
  ASSIGN_OR_RETURN(ProcessSpec process, ParseProcess(request));
  out.process = std::move(process);
  ASSIGN_OR_RETURN(TestOptions test, ParseTestOptions(request));
  out.test = test;
  return out;
}

}  // namespace guest_pull::guest_agent
