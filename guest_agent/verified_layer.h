// One layer, from blob to extracted directory, with the guest kernel as the
// judge: fetch the blob by digest, check its digest and diff_id, lay it out
// as tardev does (tar + tarfs index + dm-verity tree), open a dm-verity
// device over it with the root hash from the volume (never from the host),
// and extract the tar read back ONLY through that device.
#ifndef GUEST_AGENT_VERIFIED_LAYER_H_
#define GUEST_AGENT_VERIFIED_LAYER_H_

#include <string>

#include "absl/status/status.h"
#include "guest_agent/host_client.h"
#include "kata_volume/guest_pull_volume.h"

namespace guest_pull::guest_agent {

// Why a layer failed (the host reports it with the layer digest).
enum class LayerFailure {
  kNone,
  kFetch,         // the host could not deliver the blob
  kDigest,        // blob digest or diff_id differs from what is expected
  kVerification,  // dm-verity refused the layer
  kInternal,      // anything else (layout, ioctls, extraction)
};
const char* LayerFailureName(LayerFailure failure);

struct LayerJob {
  size_t index = 0;
  kata_volume::GuestPullLayer expected;  // digest, diff_id, verity_root_hash from the volume
  std::string config_diff_id;            // from the image config (digest-checked)
  bool skip_blob_checks = false;         // test only: leave it to dm-verity alone
  std::string work_dir;                  // scratch (tmpfs) for the blob and the layout
  std::string layer_dir;                 // where the layer is extracted (created empty)
};

// Does the whole job. On failure sets *failure and returns the error, whose
// message starts with "layer <digest>: ".
absl::Status PrepareVerifiedLayer(const LayerJob& job, HostClient* host, LayerFailure* failure);

}  // namespace guest_pull::guest_agent

#endif  // GUEST_AGENT_VERIFIED_LAYER_H_
