// The two small documents the guest fetches before the layers: the image
// manifest (layer digests, config digest) and the image config (diff_ids and
// the default process). Both arrive as raw bytes whose sha256 the caller has
// already checked against a digest it trusts.
#ifndef GUEST_AGENT_IMAGE_CONFIG_H_
#define GUEST_AGENT_IMAGE_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace guest_pull::guest_agent {

struct ImageManifest {
  std::string config_digest;
  std::vector<std::string> layer_digests;  // bottom to top
};

struct ImageConfig {
  std::vector<std::string> diff_ids;  // bottom to top
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;
  std::string working_dir;
  std::string user;
};

// OCI or Docker schema2 image manifest (an index is refused).
absl::StatusOr<ImageManifest> ParseImageManifest(absl::string_view json);

// OCI / Docker image config.
absl::StatusOr<ImageConfig> ParseImageConfig(absl::string_view json);

}  // namespace guest_pull::guest_agent

#endif  // GUEST_AGENT_IMAGE_CONFIG_H_
