// Container image references (`[host[:port]/]path[:tag][@digest]`) as
// defined by the distribution/reference grammar, and pinning a reference to
// a manifest digest.
#ifndef KATA_VOLUME_IMAGE_REF_H_
#define KATA_VOLUME_IMAGE_REF_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kata_volume {

// A parsed reference. `name` keeps the registry host and port as written
// (no docker.io normalisation).
struct ImageReference {
  std::string name;    // e.g. "127.0.0.1:5000/library/busybox"
  std::string tag;     // e.g. "1.36"; empty if none
  std::string digest;  // e.g. "sha256:..."; empty if none
};

// Parses `reference` with the distribution/reference grammar. A registry
// port's ':' is never taken for a tag (a tag can only follow the last '/').
// InvalidArgument on a malformed reference, a repository path (the name
// without the domain Go's grammar finds) over 255 characters, or
// a digest go-digest refuses, as Go's reference.Parse does: an algorithm
// other than sha256, sha384 or sha512, or not that algorithm's number (64,
// 96, 128) of lowercase hex digits.
absl::StatusOr<ImageReference> ParseImageReference(absl::string_view reference);

// ParseImageReference's verdict (the same status, message included) without
// the parts: a reference of at most 255 characters is matched without
// submatches, which RE2 answers with its DFA instead of a backtracking
// search (the guest-pull path checks every layer's image reference).
absl::Status ValidateImageReference(absl::string_view reference);

// The repository name as Docker normalises it (distribution/reference
// ParseNormalizedNamed): a name whose first component is not a host (no '.'
// or ':', not "localhost", not upper case) is on "docker.io", and a
// one-component name there is under "library/"; "index.docker.io" is
// "docker.io". So "busybox", "library/busybox" and
// "docker.io/library/busybox" all name "docker.io/library/busybox". `name` is
// an ImageReference's name (no tag or digest).
std::string NormalizedImageName(absl::string_view name);

// Returns `name@digest` for `reference`: drops a tag and replaces an
// existing digest. `digest` must satisfy IsSha256Digest.
absl::StatusOr<std::string> PinImageReference(absl::string_view reference,
                                              absl::string_view digest);

// True for "sha256:" followed by exactly 64 lowercase hex digits.
bool IsSha256Digest(absl::string_view digest);

// True for exactly 64 lowercase hex digits.
bool IsLowerHexSha256(absl::string_view hex);

}  // namespace kata_volume

#endif  // KATA_VOLUME_IMAGE_REF_H_
