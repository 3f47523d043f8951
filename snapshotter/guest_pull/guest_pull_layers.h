// The guest-pull RemoteLayers: CRI image layers allowed by the policy are
// committed without content (the host never downloads them), and a
// container rootfs on such layers is handed out as one
// fuse.guest-pull-overlayfs mount carrying io.katacontainers.volume=<the
// image_guest_pull KataVirtualVolume> for the Kata runtime.
#ifndef SNAPSHOTTER_GUEST_PULL_GUEST_PULL_LAYERS_H_
#define SNAPSHOTTER_GUEST_PULL_GUEST_PULL_LAYERS_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "snapshotter/guest_pull/image_policy.h"
#include "snapshotter/guest_pull/layer_cache_source.h"
#include "snapshotter/guest_pull/observer.h"
#include "snapshotter/guest_pull/options.h"
#include "snapshotter/remote_layers.h"

namespace guest_pull {

// Guest-pull behaviour injected into the Snapshotter core.
class GuestPullLayers : public snapshotter::RemoteLayers {
 public:
  // `observer` (may be null) is not owned; `root` is the snapshotter's
  // state directory. Changes nothing on disk.
  static absl::StatusOr<std::unique_ptr<GuestPullLayers>> Create(
      const GuestPullOptions& options, const std::string& root,
      GuestPullObserver* observer);

  // Makes <root>/guest-pull/empty if missing: the empty lower layer of a
  // view over a single layer. Called once the store is open (a refused
  // start makes nothing) and before serving; not flushed, since every
  // start makes it again before a mount can name it.
  absl::Status MakeEmptyDir() const;

  // A CRI layer of an image the policy pulls in the guest, or nullopt.
  // FailedPrecondition for a layer containerd unpacks in parallel: named
  // parent label (2.3+), or a record of the same image that lists the
  // parentless layer above the image's first (2.2; first_layer.h).
  absl::StatusOr<std::optional<snapshotter::RemoteLayer>> Intercept(
      absl::string_view key, absl::string_view parent,
      ParentInfo parent_info, Records records,
      const snapshotter::Labels& labels) override;
  absl::StatusOr<bool> Populate(const FsDirMaker& fs_dir,
                                absl::string_view parent,
                                const snapshotter::RemoteLayer& layer) override;
  // The /etc/passwd and /etc/group of the highest guest-pulled layer the
  // cache gives each to, when that layer's directory lacks it (the layer
  // was pulled before the cache had its entry): written into the
  // container's own upper directory, which only host-side lookups see;
  // never into that of a layer unpacked on the host (an "extract-" key).
  absl::Status PopulateActive(absl::string_view key, const std::string& fs_dir,
                              const std::vector<snapshotter::Info>& parents,
                              const std::vector<std::string>& parent_fs) override;
  // Reloads the layer cache if its file changed.
  void Refresh() override;
  // True when a parent is guest-pulled (the volume needs the cache).
  bool Decorates(const std::vector<snapshotter::Info>& parents) const override;
  std::vector<std::string> OwnedLabels() const override;
  // The manifest digest: RecordBelowFirstLayer reads an image's records.
  std::vector<std::string> IndexedLabels() const override;
  // The expected-hash labels: an image's annotations could forge them.
  std::vector<std::string> LabelsSetByNameOnly() const override;
  // An expected dm-verity root hash must be 64 lowercase hex digits (or
  // empty: the Update removes it).
  absl::Status CheckUpdatedLabels(const snapshotter::Labels& labels) const override;
  // On a guest-pulled layer, its cri.* labels: the volume names the image
  // and its layers by them.
  std::vector<std::string> FixedLabels(const snapshotter::Info& current) const override;
  // A rootfs or view in a user namespace (id-mapping labels, or
  // containerd's chowned copy) on guest-pulled layers: the guest builds it
  // with the image's owners, which the namespace does not map.
  absl::Status CheckUserNamespace(const snapshotter::Info& snapshot,
                                  const std::vector<snapshotter::Info>& parents) const override;
  // The marker and the expected-hash labels: an image's layer annotations
  // reach the creation labels, so they could forge either.
  std::vector<snapshotter::ReservedLabel> LabelsDroppedAtCreation()
      const override;
  // One guest-pull mount carrying the image's volume for a rootfs on
  // guest-pulled layers (rootfs_image.h), but the plain mounts for a
  // layer containerd unpacks on the host; FailedPrecondition for a
  // Kubernetes image volume on them (containerd mounts it on the host,
  // where they hold nothing), when the chain's bottom layer was recorded
  // without its parent (first_layer.h) and when its top layer was recorded
  // as a lower layer of another image (the volume would pin that image).
  absl::StatusOr<std::vector<snapshotter::Mount>> Decorate(
      const snapshotter::Info& snapshot, const std::vector<snapshotter::Info>& parents,
      Records records, std::vector<snapshotter::Mount> mounts) override;

 private:
  GuestPullLayers(const GuestPullOptions& options, ImagePolicy policy,
                  std::string empty_dir, GuestPullObserver* observer);
  // Logs and counts one decision; `detail`, if any, is logged too.
  void Decide(bool skip, absl::string_view reason, absl::string_view key,
              absl::string_view image, absl::string_view detail = "");

  const ImagePolicy policy_;
  const std::string mount_type_;
  // Stock kata's type (`fuse.nydus-overlayfs...`): its agent pulls the pod's
  // image by name and does not read the volume.
  const bool stock_mount_type_;
  const VerityMode verity_mode_;
  const bool write_passwd_;
  const std::string empty_dir_;
  LayerCacheSource cache_;
  GuestPullObserver* const observer_;
};

}  // namespace guest_pull

#endif  // SNAPSHOTTER_GUEST_PULL_GUEST_PULL_LAYERS_H_
