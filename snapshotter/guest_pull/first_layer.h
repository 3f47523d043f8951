// Whether a guest-pulled layer without a parent is its image's first layer.
//
// containerd records a guest-pulled layer with the parent of its Prepare.
// In a parallel unpack (the "rebase" capability) every layer is prepared
// without one: containerd 2.3+ names the parent in a label
// (parallel_unpack.h), 2.2 does not. The layer's own labels cannot tell:
// containerd lists in cri.image-layers the image's layers from this one up
// (as many as the label's size allows), so the last layer lists itself
// alone, as does the layer of a one-layer image.
//
// Another record of the same image (label cri.manifest-digest) can. One
// made at position j of that image lists the layers j, j+1, ...: the first
// layer's list is the longest any record of the image holds. A guest-pulled
// record of the image whose list is longer than the layer's and names the
// layer after its own first entry proves that the layer sits higher up.
// Without such a record (the layers below recorded for another image
// first) nothing is proven, nor for a layer whose list is as long as the
// first layer's (both cut at the label's size limit, past about 55
// layers): a blob repeated in an image could give the same list.
//
// It reads the records of the image only (the snapshotter indexes the
// manifest digest label, GuestPullLayers::IndexedLabels): run for a layer
// prepared without a parent (an image's first) and for a rootfs on
// guest-pulled layers, not per layer.
#ifndef SNAPSHOTTER_GUEST_PULL_FIRST_LAYER_H_
#define SNAPSHOTTER_GUEST_PULL_FIRST_LAYER_H_

#include <string>

#include "snapshotter/remote_layers.h"
#include "snapshotter/snapshot_types.h"

namespace guest_pull {

// The name of a guest-pulled record among `records` that proves the layer
// of CRI labels `labels` is not its image's first layer; "" if none does
// (or the labels lack the image's manifest digest or layer list).
std::string RecordBelowFirstLayer(const snapshotter::Labels& labels,
                                  snapshotter::RemoteLayers::Records records);

}  // namespace guest_pull

#endif  // SNAPSHOTTER_GUEST_PULL_FIRST_LAYER_H_
