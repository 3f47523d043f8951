// The seam between the generic overlay snapshotter and layers whose content
// is fetched somewhere else (for this project: pulled inside the Kata guest).
// The core calls these hooks; the guest-pull implementation lives apart and
// tests substitute fakes.
#ifndef SNAPSHOTTER_REMOTE_LAYERS_H_
#define SNAPSHOTTER_REMOTE_LAYERS_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "snapshotter/snapshot_types.h"

namespace snapshotter {

// A committed snapshot to create in place of unpacking a layer on the host.
struct RemoteLayer {
  std::string name;  // the target containerd will look for (chain ID)
  Labels labels;     // labels of the committed snapshot
};

// A label a creating client may not set, and why (logged when dropped).
struct ReservedLabel {
  std::string name;
  std::string reason;
};

// Hooks for remote layers, injected into the Snapshotter.
class RemoteLayers {
 public:
  virtual ~RemoteLayers() = default;

  // The parent's info (nullopt without a parent, or when it does not
  // exist), looked up when called.
  using ParentInfo = absl::FunctionRef<std::optional<Info>()>;
  // Reads in place the recorded snapshots whose label `label` has the
  // value `value` (the snapshotter's index, no I/O), in key order, until
  // `fn` returns false: a lookup for a label of IndexedLabels(), a scan of
  // every record for another. `fn` must be quick and must not call into
  // the snapshotter.
  using Records = absl::FunctionRef<void(
      absl::string_view label, absl::string_view value,
      const std::function<bool(const InfoView&)>& fn)>;

  // Label keys whose values the snapshotter indexes for Records (read once,
  // when it opens).
  virtual std::vector<std::string> IndexedLabels() const { return {}; }

  // Called for each Prepare of an active snapshot; `parent_info` looks the
  // parent up, for a Prepare that needs it only; `records` reads the
  // others. Returns the committed
  // snapshot to create instead (the core then answers AlreadyExists, as
  // containerd's remote-snapshot protocol expects), or nullopt to unpack
  // the layer on the host as usual.
  virtual absl::StatusOr<std::optional<RemoteLayer>> Intercept(
      absl::string_view key, absl::string_view parent, ParentInfo parent_info,
      Records records, const Labels& labels) = 0;

  // Makes the layer's directory (on the first call) and returns its fs/.
  using FsDirMaker = std::function<absl::StatusOr<std::string>()>;

  // Puts host-side files into a remote layer being created on `parent`,
  // e.g. /etc/passwd for host-side user lookup, in the directory `fs_dir`
  // makes: called only when there is something to write, as a layer left
  // without files gets no directory until a child snapshot needs one. Must
  // return true if it created anything: the layer's usage is then measured
  // and recorded, and recovery never makes such a layer again empty
  // (store_state.h ContentlessRecords).
  virtual absl::StatusOr<bool> Populate(const FsDirMaker& fs_dir,
                                        absl::string_view parent,
                                        const RemoteLayer& layer) = 0;

  // Puts into `fs_dir`, the fs/ of a new active snapshot `key` on `parents`
  // (closest first), host-side files its layers have but their directories
  // lack: e.g. the /etc/passwd of a layer committed before the layer cache
  // knew it, so that a host-side user lookup on the container's rootfs
  // finds it. `key` tells a container's rootfs from a layer being unpacked
  // (whose directory becomes that layer at Commit: nothing may be added).
  // `parent_fs`: the parents' fs/ directories, in the same order
  // (that of a layer without content may not exist). Called after the
  // snapshot is recorded, outside every lock, only when Decorates(parents);
  // an error is logged and the snapshot stays.
  virtual absl::Status PopulateActive(absl::string_view key, const std::string& fs_dir,
                                      const std::vector<Info>& parents,
                                      const std::vector<std::string>& parent_fs) = 0;

  // Called before mounts are built, outside every lock: the place for I/O
  // that Decorate needs (e.g. reloading a changed file), so that Decorate,
  // which runs inside the store's transaction, does none.
  virtual void Refresh() = 0;

  // Whether Decorate reads what Refresh loads for a snapshot on these
  // ancestors (closest parent first). No I/O: Mounts of an active snapshot
  // refreshes only when this is true.
  virtual bool Decorates(const std::vector<Info>& parents) const = 0;

  // Labels this component writes and owns (e.g. the marker of a remote
  // layer): an Update never adds, removes or changes them.
  virtual std::vector<std::string> OwnedLabels() const = 0;

  // Labels an Update sets only through a "labels.<key>" field path: an
  // update of all labels keeps them as they are. containerd re-sends, with
  // such an update, labels it holds that the snapshotter dropped at
  // creation (LabelsDroppedAtCreation): an image's annotations.
  virtual std::vector<std::string> LabelsSetByNameOnly() const { return {}; }
  // Checks the labels an Update sets by name (OK by default):
  // InvalidArgument for a value this component could not use later.
  virtual absl::Status CheckUpdatedLabels(const Labels& labels) const {
    return absl::OkStatus();
  }
  // Labels of the record `current` that say what it holds (e.g. the image
  // a remote layer was pulled from, which its mounts describe): an Update
  // that names one ("labels.<key>") and adds, changes or removes it is
  // FailedPrecondition, and an update of all labels keeps them.
  virtual std::vector<std::string> FixedLabels(const Info& current) const { return {}; }
  // FailedPrecondition when `snapshot`, an active snapshot or a view on
  // these ancestors (closest parent first), is for a container in a user
  // namespace that this component cannot give its files' owners. No I/O:
  // an Update that sets new id maps calls it in its transaction; Decorate
  // refuses the same.
  virtual absl::Status CheckUserNamespace(const Info& snapshot,
                                          const std::vector<Info>& parents) const {
    return absl::OkStatus();
  }
  // Labels a creating client may not set: the core drops them from the
  // labels of Prepare, View and Commit before anything else (Intercept
  // included). containerd passes a layer descriptor's annotations under
  // containerd.io/snapshot/ as those labels, and the image's author writes
  // them. An Update is ruled by OwnedLabels only.
  virtual std::vector<ReservedLabel> LabelsDroppedAtCreation() const = 0;

  // Rewrites the mounts of `snapshot` given its ancestors' infos (closest
  // parent first), e.g. into a guest-pull mount when they are remote;
  // `records` reads the other snapshots.
  virtual absl::StatusOr<std::vector<Mount>> Decorate(
      const Info& snapshot, const std::vector<Info>& parents, Records records,
      std::vector<Mount> mounts) = 0;
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_REMOTE_LAYERS_H_
