// The request the host hands the guest agent: the image_guest_pull storage as
// kata's shim sends it to its agent (driver "image_guest_pull", source = the
// image reference, driver_options ["image_guest_pull=<ImagePullVolume JSON>"]
// whose metadata carries our volume's keys) and the container's process.
#ifndef GUEST_AGENT_REQUEST_H_
#define GUEST_AGENT_REQUEST_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kata_volume/guest_pull_volume.h"

namespace guest_pull::guest_agent {

inline constexpr char kImageGuestPullDriver[] = "image_guest_pull";

// The container's process. Empty args: the image config's entrypoint + cmd.
struct ProcessSpec {
  std::vector<std::string> args;
  std::vector<std::string> env;  // "KEY=VALUE"; added to the image config's env
  std::string cwd;               // empty: the image config's working dir, else "/"
  std::string user;              // "uid[:gid]" or a name; empty: the image config's user
  std::vector<uint32_t> additional_gids;  // the OCI spec's additionalGids, added to the user's
};

// Switches that only tests may set; each weakens a check on purpose.
struct TestOptions {
  // Skip the blob digest and diff_id checks, so that only the guest kernel's
  // dm-verity stands between a tampered blob and the container.
  bool skip_blob_checks = false;
};

struct GuestRequest {
  std::string source;                // storage.source
  kata_volume::GuestPullImage image;  // from the metadata, every layer with a root hash
  ProcessSpec process;
  TestOptions test;
};

// Parses and validates the request JSON. InvalidArgument naming the problem
// (wrong driver, no or several image_guest_pull options, bad metadata, a layer
// without an expected dm-verity root hash, ...).
absl::StatusOr<GuestRequest> ParseGuestRequest(absl::string_view json);

}  // namespace guest_pull::guest_agent

#endif  // GUEST_AGENT_REQUEST_H_
