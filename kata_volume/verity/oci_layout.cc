// OCI image layout reader.
#include "kata_volume/verity/oci_layout.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/errno_error.h"
#include "base/status_macros.h"
#include "kata_volume/verity/bounded_read.h"
#include "kata_volume/verity/sha256.h"

namespace guest_pull::verity {

namespace {

constexpr char kRefNameAnnotation[] = "org.opencontainers.image.ref.name";
constexpr char kOciIndex[] = "application/vnd.oci.image.index.v1+json";
constexpr char kDockerList[] = "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr char kOciManifest[] = "application/vnd.oci.image.manifest.v1+json";
constexpr char kDockerManifest[] = "application/vnd.docker.distribution.manifest.v2+json";
// Manifests and configs are small; refuse absurd files.
constexpr size_t kMaxJsonSize = 16 * 1024 * 1024;

#if defined(__x86_64__)
constexpr char kBuildArch[] = "amd64";
#elif defined(__aarch64__)
constexpr char kBuildArch[] = "arm64";
#elif defined(__s390x__)
constexpr char kBuildArch[] = "s390x";
#elif defined(__powerpc64__)
constexpr char kBuildArch[] = "ppc64le";
#else
constexpr char kBuildArch[] = "unknown";
#endif

// Reads a regular file of at most kMaxJsonSize bytes, reading no further
// than that (a FIFO or device in a layout is refused, not waited on).
absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return base::ErrnoError("cannot open", path, errno);
  absl::StatusOr<BoundedText> read = ReadBounded(fd, path, kMaxJsonSize);
  close(fd);
  if (!read.ok()) return read.status();
  switch (read->refused) {
    case BoundedText::Refused::kNone:
      return std::move(read->text);
    case BoundedText::Refused::kNotRegular:
      return absl::InvalidArgumentError(absl::StrCat(path, " is not a regular file"));
    case BoundedText::Refused::kTooLarge:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat(path, " is too large (", read->size,
                                                 " bytes, the limit is ", kMaxJsonSize, ")"));
}

absl::StatusOr<nlohmann::json> ParseJsonObject(const std::string& text, const std::string& what) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not a JSON object"));
  }
  return doc;
}

std::string StringOr(const nlohmann::json& obj, const char* key, std::string fallback = "") {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return fallback;
  return it->get<std::string>();
}

// Reads a blob named by a descriptor and checks its digest.
absl::StatusOr<nlohmann::json> ReadVerifiedJsonBlob(const std::string& layout,
                                                    const nlohmann::json& descriptor,
                                                    const std::string& what) {
  std::string digest = StringOr(descriptor, "digest");
  absl::StatusOr<std::string> path = OciBlobPath(layout, digest);
  if (!path.ok()) return absl::InvalidArgumentError(absl::StrCat(what, ": ", path.status().message()));
  ASSIGN_OR_RETURN(std::string text, ReadSmallFile(*path));
  if (absl::StrCat("sha256:", Sha256Hex(text)) != digest) {
    return absl::DataLossError(absl::StrCat(what, " blob ", digest, " does not match its digest"));
  }
  return ParseJsonObject(text, absl::StrCat(what, " ", digest));
}

bool IsIndexType(const std::string& t) { return t == kOciIndex || t == kDockerList; }

// Chooses one descriptor among `manifests` (the only one, or by platform).
absl::StatusOr<nlohmann::json> PickByPlatform(const nlohmann::json& manifests) {
  if (manifests.size() == 1) return manifests[0];
  for (const nlohmann::json& d : manifests) {
    auto p = d.find("platform");
    if (p == d.end() || !p->is_object()) continue;
    if (StringOr(*p, "os") == "linux" && StringOr(*p, "architecture") == kBuildArch) return d;
  }
  return absl::NotFoundError(absl::StrCat("no manifest for linux/", kBuildArch, " in image index"));
}

// Chooses among the index.json entries `named` image_ref (several: one per
// platform, index.json as an image index itself): this platform's, else
// the first without a platform (e.g. a multi-platform index, resolved
// below), else NotFound naming index.json.
absl::StatusOr<nlohmann::json> PickNamed(const nlohmann::json& named,
                                         const std::string& layout_dir,
                                         absl::string_view image_ref) {
  absl::StatusOr<nlohmann::json> by_platform = PickByPlatform(named);  // one: it
  if (by_platform.ok()) return by_platform;
  for (const nlohmann::json& d : named) {
    auto p = d.find("platform");
    if (p == d.end() || !p->is_object()) return d;
  }
  return absl::NotFoundError(absl::StrCat(named.size(), " entries of ", layout_dir,
                                          "/index.json are named \"", image_ref,
                                          "\", none for linux/", kBuildArch));
}

}  // namespace

absl::string_view BuildArchitecture() { return kBuildArch; }

absl::StatusOr<std::string> OciBlobPath(const std::string& layout_dir, absl::string_view digest) {
  if (!IsSha256Digest(digest)) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported or malformed digest \"", digest, "\""));
  }
  return absl::StrCat(layout_dir, "/blobs/sha256/", digest.substr(7));
}

absl::StatusOr<OciImage> ReadOciImage(const std::string& layout_dir, absl::string_view image_ref) {
  // A file named for the layout read "open <file>/index.json: Not a directory".
  if (struct stat st; ::stat(layout_dir.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(layout_dir, " is not a directory: an OCI image layout is one"));
  }
  absl::StatusOr<std::string> index_text = ReadSmallFile(layout_dir + "/index.json");
  if (absl::IsNotFound(index_text.status())) {
    return absl::NotFoundError(absl::StrCat(layout_dir, " is not an OCI image layout (no index.json)"));
  }
  if (!index_text.ok()) return index_text.status();
  ASSIGN_OR_RETURN(nlohmann::json index, ParseJsonObject(*index_text, layout_dir + "/index.json"));
  auto manifests = index.find("manifests");
  if (manifests == index.end() || !manifests->is_array() || manifests->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(layout_dir, "/index.json lists no manifests"));
  }

  // The names --image takes, for the errors.
  auto names = [&]() {
    std::vector<std::string> refs;
    for (const auto& d : *manifests) {
      if (!d.is_object()) continue;
      const std::string unnamed = absl::StrCat("an unnamed one, ", StringOr(d, "digest", "?"));
      auto a = d.find("annotations");
      refs.push_back(a != d.end() && a->is_object() ? StringOr(*a, kRefNameAnnotation, unnamed)
                                                    : unnamed);
    }
    return absl::StrJoin(refs, ", ");
  };
  nlohmann::json chosen;
  if (image_ref.empty()) {
    if (manifests->size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the layout holds ", manifests->size(), " images; choose one with --image (",
          names(), ")"));
    }
    chosen = (*manifests)[0];
  } else {
    // Several entries may carry the name, one per platform (index.json as
    // an image index itself): the first was taken, whatever its platform.
    nlohmann::json named = nlohmann::json::array();
    for (const auto& d : *manifests) {
      if (!d.is_object()) continue;
      auto a = d.find("annotations");
      if (a != d.end() && a->is_object() && StringOr(*a, kRefNameAnnotation) == image_ref) {
        named.push_back(d);
      }
    }
    if (named.empty()) {
      // The name is the ref.name annotation as the copy wrote it
      // (`skopeo copy ... oci:DIR:NAME`), not the registry reference.
      return absl::NotFoundError(absl::StrCat("no image \"", image_ref, "\" in ", layout_dir,
                                              "; --image takes one of: ", names()));
    }
    ASSIGN_OR_RETURN(chosen, PickNamed(named, layout_dir, image_ref));
  }

  // Follow at most one nested index (multi-platform image).
  if (IsIndexType(StringOr(chosen, "mediaType"))) {
    ASSIGN_OR_RETURN(nlohmann::json nested, ReadVerifiedJsonBlob(layout_dir, chosen, "image index"));
    auto list = nested.find("manifests");
    if (list == nested.end() || !list->is_array() || list->empty()) {
      return absl::InvalidArgumentError("nested image index lists no manifests");
    }
    ASSIGN_OR_RETURN(nlohmann::json picked, PickByPlatform(*list));
    chosen = picked;
  }

  ASSIGN_OR_RETURN(nlohmann::json manifest, ReadVerifiedJsonBlob(layout_dir, chosen, "manifest"));
  std::string manifest_type = StringOr(manifest, "mediaType", StringOr(chosen, "mediaType"));
  if (!manifest_type.empty() && manifest_type != kOciManifest && manifest_type != kDockerManifest) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported manifest media type ", manifest_type));
  }

  OciImage image;
  image.manifest_digest = StringOr(chosen, "digest");
  auto layers = manifest.find("layers");
  if (layers == manifest.end() || !layers->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat("manifest ", image.manifest_digest, " has no layers"));
  }
  for (const nlohmann::json& d : *layers) {
    if (!d.is_object()) return absl::InvalidArgumentError("malformed layer descriptor");
    OciLayerBlob blob;
    blob.digest = StringOr(d, "digest");
    blob.media_type = StringOr(d, "mediaType");
    auto size = d.find("size");
    if (size == d.end() || !size->is_number_unsigned()) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", blob.digest, " has no valid size"));
    }
    blob.size = size->get<uint64_t>();
    ASSIGN_OR_RETURN(std::string path, OciBlobPath(layout_dir, blob.digest));
    blob.path = path;
    struct stat st;
    if (::stat(blob.path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) != blob.size) {
      return absl::DataLossError(absl::StrCat("layer blob ", blob.path, " is ", st.st_size,
                                              " bytes but the manifest gives ", blob.digest,
                                              " a size of ", blob.size));
    }
    image.layers.push_back(std::move(blob));
  }

  auto config_desc = manifest.find("config");
  if (config_desc != manifest.end() && config_desc->is_object()) {
    ASSIGN_OR_RETURN(nlohmann::json config, ReadVerifiedJsonBlob(layout_dir, *config_desc, "config"));
    auto rootfs = config.find("rootfs");
    if (rootfs != config.end() && rootfs->is_object()) {
      auto ids = rootfs->find("diff_ids");
      if (ids != rootfs->end() && ids->is_array()) {
        for (const auto& id : *ids) {
          if (id.is_string()) image.diff_ids.push_back(id.get<std::string>());
        }
      }
    }
  }
  return image;
}

}  // namespace guest_pull::verity
