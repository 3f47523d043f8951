// Guest-pull layer handling.
#include "snapshotter/guest_pull/guest_pull_layers.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/errno_error.h"
#include "base/request_log.h"
#include "base/status_macros.h"
#include "glog/logging.h"
#include "kata_volume/guest_pull_volume.h"
#include "kata_volume/image_ref.h"
#include "kata_volume/volume_option.h"
#include "snapshotter/chain_id.h"
#include "snapshotter/id_mapping.h"
#include "snapshotter/parallel_unpack.h"
#include "snapshotter/guest_pull/first_layer.h"
#include "snapshotter/guest_pull/labels.h"
#include "snapshotter/guest_pull/rootfs_image.h"

namespace guest_pull {

using ::snapshotter::ChainIdOf;
using ::snapshotter::IsUnpackKey;
using ::snapshotter::kLabelGidMapping;
using ::snapshotter::kLabelUidMapping;
using ::snapshotter::NamespaceOf;
namespace {

// Writes `content` to `path` (mode 0644; never through a symbolic link)
// and, with `sync`, fsyncs it.
absl::Status WriteFile(const std::string& path, const std::string& content,
                       bool sync) {
  int fd = open(path.c_str(),
                O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return base::ErrnoError("create", path, errno);
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      absl::Status s = base::ErrnoError("write", path, errno);
      close(fd);
      return s;
    }
    off += static_cast<size_t>(n);
  }
  if (sync && fsync(fd) != 0) {
    absl::Status s = base::ErrnoError("fsync", path, errno);
    close(fd);
    return s;
  }
  close(fd);
  return absl::OkStatus();
}

// Writes one of /etc/passwd, /etc/group into the directory `fs` (making
// its etc/) as a layer has it: its content, or an overlay whiteout when the
// layer deletes it. `sync`: flushed (a layer's files are recorded and must
// outlive a power cut; a container's upper directory is made again with
// the container).
absl::Status WriteUserFile(const std::string& fs, const char* name,
                           const std::string& content, bool sync) {
  if (content.empty()) return absl::OkStatus();
  const std::string etc = fs + "/etc";
  if (mkdir(etc.c_str(), 0755) != 0 && errno != EEXIST) {
    return base::ErrnoError("mkdir", etc, errno);
  }
  std::string path = etc + "/" + name;
  if (content == "WHITEOUT") {
    if (mknod(path.c_str(), S_IFCHR | 0000, makedev(0, 0)) != 0) {
      return base::ErrnoError("mknod whiteout", path, errno);
    }
    return absl::OkStatus();
  }
  return WriteFile(path, content, sync);
}

// Whether a rootfs volume can be built from a layer's CRI labels: the
// checks of kata_volume::CheckGuestPullImage on the image reference, the
// manifest digest and the digests of the layer and of those above it.
absl::Status CheckVolumeLabels(const snapshotter::Labels& labels) {
  kata_volume::GuestPullImage image;
  image.image_ref = LabelOr(labels, kLabelCriImageRef);
  image.manifest_digest = LabelOr(labels, kLabelCriManifestDigest);
  image.layers.push_back({LabelOr(labels, kLabelCriLayerDigest), "", ""});
  std::string above = LabelOr(labels, kLabelCriImageLayers);
  for (absl::string_view digest :
       absl::StrSplit(above, ',', absl::SkipEmpty())) {
    image.layers.push_back({std::string(digest), "", ""});
  }
  return kata_volume::CheckGuestPullImage(image);
}

// What an operator does about a parallel unpack.
constexpr char kRemoveRebase[] =
    "remove capabilities = [\"rebase\"] from this snapshotter's "
    "[proxy_plugins] entry in containerd's config";

// containerd's copy of an image's layers chowned for a user namespace
// (client.resolveSnapshotOptions, for a snapshotter without the remap-ids
// capability): "<parent chain>-remap" (2.x), "<parent chain>-<uid>-<gid>-remap"
// (1.7).
bool IsRemapKey(absl::string_view key) {
  constexpr size_t kChainIdSize = 71;  // "sha256:" and 64 hex digits
  absl::string_view name = ChainIdOf(key);
  if (!absl::ConsumeSuffix(&name, "-remap") ||
      !kata_volume::IsSha256Digest(name.substr(0, kChainIdSize))) {
    return false;
  }
  absl::string_view ids = name.substr(kChainIdSize);
  if (ids.empty()) return true;
  std::vector<absl::string_view> parts = absl::StrSplit(ids, '-');
  return parts.size() == 3 && parts[0].empty() &&
         std::all_of(parts.begin() + 1, parts.end(), [](absl::string_view p) {
           return !p.empty() && std::all_of(p.begin(), p.end(), [](char c) {
             return absl::ascii_isdigit(c);
           });
         });
}

// Why `snapshot` is for a container in a user namespace, or "".
std::string UserNamespaceEvidence(const snapshotter::Info& snapshot) {
  std::string uid = LabelOr(snapshot.labels, kLabelUidMapping);
  std::string gid = LabelOr(snapshot.labels, kLabelGidMapping);
  if (!uid.empty() || !gid.empty()) {
    return absl::StrCat("labels uidmapping=\"", absl::CEscape(uid), "\" gidmapping=\"",
                        absl::CEscape(gid), "\"");
  }
  if (IsRemapKey(snapshot.name)) {
    return "containerd's copy of the image's layers to chown to the user "
           "namespace's ids";
  }
  return "";
}

}  // namespace

absl::StatusOr<std::unique_ptr<GuestPullLayers>> GuestPullLayers::Create(
    const GuestPullOptions& options, const std::string& root,
    GuestPullObserver* observer) {
  ASSIGN_OR_RETURN(auto policy, ImagePolicy::Create(options));
  return std::unique_ptr<GuestPullLayers>(new GuestPullLayers(
      options, std::move(policy), root + "/guest-pull/empty", observer));
}

absl::Status GuestPullLayers::MakeEmptyDir() const {
  std::error_code ec;
  std::filesystem::create_directories(empty_dir_, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", empty_dir_, ": ", ec.message()));
  }
  return absl::OkStatus();
}

GuestPullLayers::GuestPullLayers(const GuestPullOptions& options,
                                 ImagePolicy policy,
                                 std::string empty_dir,
                                 GuestPullObserver* observer)
    : policy_(std::move(policy)),
      mount_type_(options.mount_type),
      stock_mount_type_(absl::StartsWith(options.mount_type, "fuse.nydus-overlayfs")),
      verity_mode_(options.verity_mode),
      write_passwd_(options.write_passwd),
      empty_dir_(std::move(empty_dir)),
      cache_(options.layer_cache),
      observer_(observer) {}

void GuestPullLayers::Decide(bool skip, absl::string_view reason,
                             absl::string_view key, absl::string_view image,
                             absl::string_view detail) {
  // Escaped: the key and labels come from clients and images, and must not
  // forge a line or a field of their own.
  REQUEST_LOG_INFO << "guest_pull_decision=" << (skip ? "skip" : "unpack")
                   << " key=\"" << absl::CEscape(key) << "\" image=\""
                   << absl::CEscape(image) << "\" reason=" << reason
                   << (detail.empty() ? "" : " detail=\"") << absl::CEscape(detail)
                   << (detail.empty() ? "" : "\"");
  if (observer_ != nullptr) observer_->ObserveDecision(skip, reason);
}

absl::StatusOr<std::optional<snapshotter::RemoteLayer>> GuestPullLayers::Intercept(
    absl::string_view key, absl::string_view parent, ParentInfo parent_info,
    Records records, const snapshotter::Labels& labels) {
  std::string target = LabelOr(labels, kLabelSnapshotRef);
  if (target.empty()) return std::nullopt;  // not a layer unpack
  std::string image = LabelOr(labels, kLabelCriImageRef);
  // containerd's CRI works in its "k8s.io" namespace. In another one (ctr,
  // nerdctl, BuildKit) CRI labels can only be the image's own layer
  // annotations, which must not keep a layer from the host.
  if (absl::string_view ns = NamespaceOf(key); !ns.empty() && ns != kCriNamespace) {
    Decide(false, "namespace", key, image);
    return std::nullopt;
  }
  // containerd's unpacker names its keys "extract-..." (UnpackKeyPrefix).
  // Other Prepares may carry the same labels from pod annotations (the
  // sandbox's rootfs): they never name a layer.
  if (!IsUnpackKey(key)) {
    Decide(false, "not-unpack", key, image);
    return std::nullopt;
  }
  if (LabelOr(labels, kLabelCriLayerDigest).empty() || image.empty() ||
      LabelOr(labels, kLabelCriManifestDigest).empty()) {
    Decide(false, "not-cri", key, image);
    return std::nullopt;
  }
  if (!policy_.enabled()) {
    Decide(false, "disabled", key, image);
    return std::nullopt;
  }
  if (!policy_.AllowsGuestPull(image)) {
    Decide(false, "policy", key, image);
    return std::nullopt;
  }
  // The rootfs volume's checks. A bad digest among the layers above (as
  // far as containerd lists them) unpacks this one on the host too: a
  // layer unpacked there cannot sit on guest-pulled ones.
  if (absl::Status s = CheckVolumeLabels(labels); !s.ok()) {
    Decide(false, "unsupported", key, image, s.message());
    return std::nullopt;
  }
  // The volume describes guest-pulled layers only: on a layer unpacked on
  // the host (e.g. its image pulled without CRI labels first) this one is
  // unpacked there too, or no runtime could use the image.
  if (std::optional<snapshotter::Info> below = parent_info(); below && !IsGuestPulled(*below)) {
    Decide(false, "parent-on-host", key, image);
    return std::nullopt;
  }
  snapshotter::RemoteLayer layer;
  layer.name = target;
  for (const auto& [k, v] : labels) {
    if (k == kLabelSnapshotRef ||
        k.rfind("containerd.io/snapshot/", 0) == 0) {
      layer.labels[k] = v;
    }
  }
  layer.labels[kLabelGuestPulled] = "true";
  // containerd's parallel unpack (the "rebase" capability): containerd
  // records the target of a layer it prepared without its parent without
  // one, and the chain is lost (snapshotter/parallel_unpack.h). 2.3+ names
  // the parent in a label; for 2.2 a record of the same image may prove
  // that the layer is not the image's first (first_layer.h).
  std::string why;
  if (std::string named = snapshotter::ParallelUnpackParent(key, parent, labels);
      !named.empty()) {
    why = absl::StrCat("its parent ", named, " named by label ",
                       snapshotter::kLabelParentChainId, ", none given");
  } else if (parent.empty()) {
    if (std::string below = RecordBelowFirstLayer(labels, records); !below.empty()) {
      why = absl::StrCat("prepared without a parent, but ", below,
                         ", a layer of the same image, lists it above the "
                         "image's first layer");
    }
  }
  if (!why.empty()) {
    REQUEST_LOG_INFO << "guest_pull_refused key=\"" << absl::CEscape(key)
                     << "\" image=\"" << absl::CEscape(image)
                     << "\" reason=parallel-unpack";
    return absl::FailedPreconditionError(absl::StrCat(
        "layer ", key, " is unpacked in parallel (", why, "): containerd "
        "cannot record a guest-pulled layer's parent then, so guest pull "
        "needs layers unpacked one after the other; ", kRemoveRebase,
        "; nothing was changed"));
  }
  Decide(true, "guest-pull", key, image);
  return layer;
}

absl::StatusOr<bool> GuestPullLayers::Populate(
    const FsDirMaker& fs_dir, absl::string_view parent,
    const snapshotter::RemoteLayer& layer) {
  if (!write_passwd_) return false;
  // Prepare called Refresh() just before Intercept and Populate.
  LayerCacheSource::Snapshot cache = cache_.Current();
  const verity::LayerCacheEntry* entry =
      cache->FindByChain(ChainIdOf(parent), ChainIdOf(layer.name));
  if (entry == nullptr || (entry->passwd.empty() && entry->group.empty())) {
    return false;
  }
  ASSIGN_OR_RETURN(std::string fs, fs_dir());
  RETURN_IF_ERROR(WriteUserFile(fs, "passwd", entry->passwd, /*sync=*/true));
  RETURN_IF_ERROR(WriteUserFile(fs, "group", entry->group, /*sync=*/true));
  return true;
}

absl::Status GuestPullLayers::PopulateActive(
    absl::string_view key, const std::string& fs_dir,
    const std::vector<snapshotter::Info>& parents,
    const std::vector<std::string>& parent_fs) {
  if (!write_passwd_) return absl::OkStatus();
  // An unpack Intercept declined (e.g. an image the policy keeps on the
  // host, on a base shared with a guest-pulled one): its directory becomes
  // the layer at Commit, which must hold what containerd applies only.
  if (IsUnpackKey(key)) return absl::OkStatus();
  // Prepare called Refresh() before the snapshot was made.
  LayerCacheSource::Snapshot cache = cache_.Current();
  for (const char* name : {"passwd", "group"}) {
    // The highest layer that has the file (or deletes it) decides, as in
    // the overlay; a layer pulled on the host may hold it unknown to us.
    for (size_t i = 0; i < parents.size() && i < parent_fs.size(); ++i) {
      if (!IsGuestPulled(parents[i])) break;
      const verity::LayerCacheEntry* entry = cache->FindByChain(
          ChainIdOf(parents[i].parent), ChainIdOf(parents[i].name));
      if (entry == nullptr) continue;
      const std::string& content =
          absl::string_view(name) == "passwd" ? entry->passwd : entry->group;
      if (content.empty()) continue;
      struct stat st;
      const std::string in_layer = absl::StrCat(parent_fs[i], "/etc/", name);
      if (lstat(in_layer.c_str(), &st) == 0) break;  // written at the pull
      if (errno != ENOENT && errno != ENOTDIR) return base::ErrnoError("lstat", in_layer, errno);
      RETURN_IF_ERROR(WriteUserFile(fs_dir, name, content, /*sync=*/false));
      break;
    }
  }
  return absl::OkStatus();
}

void GuestPullLayers::Refresh() { cache_.Get(); }

bool GuestPullLayers::Decorates(
    const std::vector<snapshotter::Info>& parents) const {
  return std::any_of(parents.begin(), parents.end(), IsGuestPulled);
}

std::vector<std::string> GuestPullLayers::OwnedLabels() const {
  // Losing the marker would turn a guest-pulled chain into an empty host
  // rootfs, silently.
  return {kLabelGuestPulled};
}

std::vector<std::string> GuestPullLayers::FixedLabels(const snapshotter::Info& current) const {
  // The guest pulls the image these name and the volume lists its layers
  // by them; on a layer with no host content nothing else would follow a
  // change.
  if (!IsGuestPulled(current)) return {};
  return {kLabelCriImageRef, kLabelCriLayerDigest, kLabelCriManifestDigest,
          kLabelCriImageLayers};
}

std::vector<std::string> GuestPullLayers::IndexedLabels() const {
  return {kLabelCriManifestDigest};
}

std::vector<std::string> GuestPullLayers::LabelsSetByNameOnly() const {
  return {std::begin(kExpectedHashLabels), std::end(kExpectedHashLabels)};
}

absl::Status GuestPullLayers::CheckUpdatedLabels(const snapshotter::Labels& labels) const {
  for (const char* name : kExpectedHashLabels) {
    auto it = labels.find(name);
    // An empty value removes the label, as for any other.
    if (it == labels.end() || it->second.empty() ||
        kata_volume::IsLowerHexSha256(it->second)) {
      continue;
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "label ", name, " is \"", absl::CEscape(it->second),
        "\": an expected dm-verity root hash is 64 lowercase hex digits (as "
        "veritysetup and guest-pull-verity print it)"));
  }
  return absl::OkStatus();
}

std::vector<snapshotter::ReservedLabel>
GuestPullLayers::LabelsDroppedAtCreation() const {
  std::vector<snapshotter::ReservedLabel> dropped = {
      {kLabelGuestPulled,
       "only the snapshotter marks a layer it commits without content"}};
  for (const char* hash : kExpectedHashLabels) {
    dropped.push_back({hash,
                       "an image's layer annotations arrive as such labels; the expected "
                       "hash comes from the layer cache or an operator's label update"});
  }
  return dropped;
}

absl::Status GuestPullLayers::CheckUserNamespace(
    const snapshotter::Info& snapshot, const std::vector<snapshotter::Info>& parents) const {
  if (IsUnpackKey(snapshot.name)) return absl::OkStatus();  // on the host (Decorate)
  // A pod in a user namespace: kata's agent runs the container in one with
  // the pod's id maps but builds the rootfs from the image it pulls, with
  // the image's owners, which those ids do not own (it shifts nothing), and
  // containerd's chowned copy holds only the host's empty layer
  // directories. Neither gives the container its files' owners.
  if (auto pulled = std::find_if(parents.begin(), parents.end(), IsGuestPulled);
      pulled != parents.end()) {
    if (std::string userns = UserNamespaceEvidence(snapshot); !userns.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "snapshot ", snapshot.name, " is for a container in a user namespace (",
          userns, "; Kubernetes hostUsers: false) on layers pulled in the guest "
          "(image ", LabelOr(pulled->labels, kLabelCriImageRef), "): kata's guest "
          "builds the rootfs from the image with the image's file owners, which "
          "the pod's user namespace does not map, and on the host those layers "
          "have no content for containerd to chown; run the pod without a user namespace "
          "(hostUsers: true), or keep the image on the host: add it to "
          "guest_pull.exclude in this snapshotter's config, remove it (crictl "
          "rmi) and pull it again (see docs/troubleshooting.md)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<snapshotter::Mount>> GuestPullLayers::Decorate(
    const snapshotter::Info& snapshot, const std::vector<snapshotter::Info>& parents,
    Records records, std::vector<snapshotter::Mount> mounts) {
  if (parents.empty() || mounts.size() != 1) return mounts;
  // A layer containerd unpacks on the host (Intercept declined it: an
  // excluded image, a pull without CRI labels) on a base pulled in the
  // guest: its applier mounts this on the host and kata never sees it.
  // Describing the base's image would hand it another image's volume, and
  // verity mode "required" would refuse the unpack naming that image's
  // hashes; the image's rootfs is refused later with the real cause.
  if (IsUnpackKey(snapshot.name)) return mounts;
  RETURN_IF_ERROR(CheckUserNamespace(snapshot, parents));
  // Before the image is described: an image pulled for a volume alone may
  // have no expected hashes, and verity mode "required" would ask for them.
  // (A host layer on top is refused below, with its own recovery.)
  if (snapshotter::IsCriImageVolumeKey(snapshot.name) && IsGuestPulled(parents.front())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "snapshot ", snapshot.name, " is a Kubernetes image volume on layers "
        "pulled in the guest (image ", LabelOr(parents.front().labels, kLabelCriImageRef),
        "): containerd mounts an image volume on the host, where those layers "
        "have no content, so it would be empty; to use the image as a volume, "
        "keep it on the host: add it to guest_pull.exclude in this "
        "snapshotter's config, remove it (crictl rmi) and pull it again"));
  }
  // The chain's bottom has no parent: a layer recorded so by containerd
  // 2.2's parallel unpack (or by a daemon that did not refuse it) leaves
  // the chain short, and the guest would be told too few layers. Before the
  // image is described: the layer cache has no entry under such a layer's
  // chain (a bottom layer's chain ID is its diff_id), and verity mode
  // "required" would send the operator to the cache instead.
  const snapshotter::Info& bottom = parents.back();
  if (std::string below =
          IsGuestPulled(bottom) ? RecordBelowFirstLayer(bottom.labels, records) : "";
      !below.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "rootfs ", snapshot.name, ": layer ", bottom.name, " of image ",
        LabelOr(parents.front().labels, kLabelCriImageRef),
        " was recorded without its parent (", below,
        ", a layer of the same image, lists it above the image's first "
        "layer): containerd unpacked the image's layers in parallel, so its "
        "chain is lost; ", kRemoveRebase, ", restart containerd, remove the "
        "image (crictl rmi) and pull it again"));
  }
  // The top layer of an image lists itself alone in cri.image-layers. One
  // that lists layers above itself was recorded for an image that goes on
  // above it, so this chain is a lower part of that image: typically a base
  // image pulled after an image built on it, whose layers containerd then
  // reuses without a Prepare, so its own manifest never reaches us. The
  // volume would pin the other image, whose extra layers the guest would
  // run or refuse. Not for an unpack: a host layer on this one is no rootfs.
  // Not for stock kata's mount type: its agent pulls the pod's image by name
  // and never reads the volume, so that rootfs runs as it should.
  if (const snapshotter::Info& top = parents.front();
      !stock_mount_type_ && !IsUnpackKey(snapshot.name) && IsGuestPulled(top)) {
    const std::vector<absl::string_view> listed = absl::StrSplit(
        LabelOr(top.labels, kLabelCriImageLayers), ',', absl::SkipEmpty());
    if (listed.size() > 1) {
      return absl::FailedPreconditionError(absl::StrCat(
          "rootfs ", snapshot.name, ": its top layer ", top.name,
          " was recorded as a lower layer of image ",
          LabelOr(top.labels, kLabelCriImageRef), " (manifest ",
          LabelOr(top.labels, kLabelCriManifestDigest), ", which lists ",
          listed.size(), " layers from it up), so the guest cannot be told "
          "this rootfs's image: containerd reuses the layers it has without "
          "telling the snapshotter, so an image made of another image's "
          "lower layers and pulled after it (e.g. its base image) keeps that "
          "image's records; remove every image built on this layer (crictl rmi, "
          "after their containers are removed: containerd keeps the layer while "
          "any of them uses it) and pull this one first (see "
          "docs/troubleshooting.md)"));
    }
  }
  // Runs inside the store's transaction: no file I/O here (see Refresh).
  LayerCacheSource::Snapshot cache = cache_.Current();
  auto image = DescribeRootfsImage(parents, *cache, verity_mode_, observer_);
  if (!image.ok()) {
    return absl::Status(image.status().code(),
                        absl::StrCat("rootfs ", snapshot.name, ": ",
                                     image.status().message()));
  }
  if (!image->has_value()) return mounts;
  ASSIGN_OR_RETURN(auto volume, kata_volume::BuildGuestPullVolume(**image));
  ASSIGN_OR_RETURN(auto option, kata_volume::EncodeVolumeOption(volume));

  const snapshotter::Mount& base = mounts[0];
  snapshotter::Mount out;
  out.type = mount_type_;
  out.source = "overlay";
  if (base.type == "overlay") {
    out.options = base.options;
  } else {
    // A view over one layer is a bind mount; overlay needs two lowers.
    out.options = {"lowerdir=" + base.source + ":" + empty_dir_};
  }
  out.options.push_back(std::move(option));
  return std::vector<snapshotter::Mount>{std::move(out)};
}

}  // namespace guest_pull
