// Builder and parser of the image_guest_pull KataVirtualVolume.
#include "kata_volume/guest_pull_volume.h"

#include <cstdint>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "kata_volume/image_ref.h"
#include "kata_volume/validate.h"
#include "kata_volume/volume_option.h"
#include "base/status_macros.h"

namespace kata_volume {
namespace {

absl::Status CheckDigest(absl::string_view what, absl::string_view digest) {
  if (IsSha256Digest(digest)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, " \"", digest,
                   "\" is not sha256:<64 lowercase hex digits>"));
}

// Looks up a required metadata key.
absl::StatusOr<std::string> Required(const Metadata& metadata,
                                     const std::string& key) {
  auto it = metadata.find(key);
  if (it == metadata.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("image_pull.metadata lacks \"", key, "\""));
  }
  return it->second;
}

std::string Optional(const Metadata& metadata, const std::string& key) {
  auto it = metadata.find(key);
  return it == metadata.end() ? std::string() : it->second;
}

// The source names the image: the same repository once Docker-normalised
// (kata's shim sends the pod spec's image, e.g. "busybox" or
// "app@<index digest>", where the CRI label has "docker.io/library/busybox"
// and the platform manifest's digest), pinned by a digest. Which one is not
// compared: the guest pulls the volume's manifest digest whatever the
// source says, and the label keeps the reference of the image's first pull
// only (a later pull of the same layers by another tag or digest does not
// relabel them).
absl::Status CheckSourceNamesImage(const std::string& source, const GuestPullImage& image) {
  ASSIGN_OR_RETURN(ImageReference named, ParseImageReference(source));
  ASSIGN_OR_RETURN(ImageReference pulled, ParseImageReference(image.image_ref));
  if (NormalizedImageName(named.name) == NormalizedImageName(pulled.name) &&
      !named.digest.empty()) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "source \"", source, "\" is not the pinned image \"",
      NormalizedImageName(pulled.name), "@", image.manifest_digest, "\""));
}

}  // namespace

absl::Status CheckGuestPullImage(const GuestPullImage& image) {
  RETURN_IF_ERROR(ValidateImageReference(image.image_ref));
  absl::Status status = CheckDigest("manifest digest", image.manifest_digest);
  if (!status.ok()) return status;
  if (image.layers.empty()) {
    return absl::InvalidArgumentError("guest-pull image has no layers");
  }
  for (size_t i = 0; i < image.layers.size(); ++i) {
    const GuestPullLayer& layer = image.layers[i];
    status = CheckDigest(absl::StrCat("layer ", i, " digest"), layer.digest);
    if (!status.ok()) return status;
    if (!layer.diff_id.empty()) {
      status = CheckDigest(absl::StrCat("layer ", i, " diff-id"), layer.diff_id);
      if (!status.ok()) return status;
    }
    if (!layer.verity_root_hash.empty() &&
        !IsLowerHexSha256(layer.verity_root_hash)) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer ", i, " verity root hash \"",
                       layer.verity_root_hash,
                       "\" is not 64 lowercase hex digits"));
    }
  }
  return absl::OkStatus();
}

bool GuestPullLayer::operator==(const GuestPullLayer& other) const {
  return std::tie(digest, diff_id, verity_root_hash) ==
         std::tie(other.digest, other.diff_id, other.verity_root_hash);
}

bool GuestPullImage::operator==(const GuestPullImage& other) const {
  return std::tie(image_ref, manifest_digest, layers) ==
         std::tie(other.image_ref, other.manifest_digest, other.layers);
}

std::string LayerMetadataKey(size_t index, const char* suffix) {
  return absl::StrCat(kMetaLayerPrefix, index, suffix);
}

absl::StatusOr<KataVirtualVolume> BuildGuestPullVolume(
    const GuestPullImage& image) {
  RETURN_IF_ERROR(CheckGuestPullImage(image));
  ASSIGN_OR_RETURN(std::string pinned, PinImageReference(image.image_ref, image.manifest_digest));

  Metadata metadata;
  metadata[kMetaImageRef] = image.image_ref;
  metadata[kMetaManifestDigest] = image.manifest_digest;
  metadata[kMetaLayerCount] = absl::StrCat(image.layers.size());
  metadata[kMetaVerityParams] = kGuestPullVerityParams;
  for (size_t i = 0; i < image.layers.size(); ++i) {
    const GuestPullLayer& layer = image.layers[i];
    metadata[LayerMetadataKey(i, kMetaLayerDigestSuffix)] = layer.digest;
    if (!layer.diff_id.empty()) {
      metadata[LayerMetadataKey(i, kMetaLayerDiffIdSuffix)] = layer.diff_id;
    }
    if (!layer.verity_root_hash.empty()) {
      metadata[LayerMetadataKey(i, kMetaLayerVerityRootHashSuffix)] =
          layer.verity_root_hash;
    }
  }

  KataVirtualVolume volume;
  volume.volume_type = kVolumeTypeImageGuestPull;
  volume.source = std::move(pinned);
  volume.image_pull = ImagePullVolume{std::move(metadata)};

  if (absl::Status go = ValidateGo(volume); !go.ok()) {
    return absl::InternalError(absl::StrCat("built volume invalid: ", go.message()));
  }
  if (absl::Status rust = ValidateRust(volume); !rust.ok()) {
    return absl::InternalError(
        absl::StrCat("built volume invalid: ", rust.message()));
  }
  if (absl::StatusOr<std::string> encoded = EncodeVolumeBase64(volume);
      !encoded.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "guest-pull image with ", image.layers.size(),
        " layers does not fit in a mount option: ", encoded.status().message()));
  }
  return volume;
}

absl::StatusOr<GuestPullImage> ParseGuestPullImage(
    const KataVirtualVolume& volume) {
  if (volume.volume_type != kVolumeTypeImageGuestPull) {
    return absl::InvalidArgumentError(
        absl::StrCat("volume_type is \"", volume.volume_type, "\", not \"",
                     kVolumeTypeImageGuestPull, "\""));
  }
  if (!volume.image_pull.has_value() ||
      !volume.image_pull->metadata.has_value()) {
    return absl::InvalidArgumentError("volume has no image_pull.metadata");
  }
  const Metadata& metadata = *volume.image_pull->metadata;

  GuestPullImage image;
  absl::StatusOr<std::string> value = Required(metadata, kMetaImageRef);
  if (!value.ok()) return value.status();
  image.image_ref = *value;
  value = Required(metadata, kMetaManifestDigest);
  if (!value.ok()) return value.status();
  image.manifest_digest = *value;

  value = Required(metadata, kMetaVerityParams);
  if (!value.ok()) return value.status();
  if (*value != kGuestPullVerityParams) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported ", kMetaVerityParams, " \"", *value,
                     "\" (expected \"", kGuestPullVerityParams, "\")"));
  }

  value = Required(metadata, kMetaLayerCount);
  if (!value.ok()) return value.status();
  uint32_t layer_count = 0;
  // Every layer needs at least one key, which bounds the count by the map.
  if (!absl::SimpleAtoi(*value, &layer_count) || layer_count == 0 ||
      layer_count > metadata.size() || *value != absl::StrCat(layer_count)) {
    return absl::InvalidArgumentError(absl::StrCat(
        kMetaLayerCount, " \"", *value, "\" is not a plausible layer count"));
  }
  for (size_t i = 0; i < layer_count; ++i) {
    GuestPullLayer layer;
    value = Required(metadata, LayerMetadataKey(i, kMetaLayerDigestSuffix));
    if (!value.ok()) return value.status();
    layer.digest = *value;
    layer.diff_id = Optional(metadata, LayerMetadataKey(i, kMetaLayerDiffIdSuffix));
    layer.verity_root_hash =
        Optional(metadata, LayerMetadataKey(i, kMetaLayerVerityRootHashSuffix));
    image.layers.push_back(std::move(layer));
  }
  RETURN_IF_ERROR(CheckGuestPullImage(image));

  RETURN_IF_ERROR(CheckSourceNamesImage(volume.source, image));
  return image;
}

}  // namespace kata_volume
