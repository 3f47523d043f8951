// Decides, from the [guest_pull] section, whether an image is pulled inside
// the guest or unpacked on the host.
#ifndef SNAPSHOTTER_GUEST_PULL_IMAGE_POLICY_H_
#define SNAPSHOTTER_GUEST_PULL_IMAGE_POLICY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "re2/re2.h"
#include "snapshotter/guest_pull/options.h"

namespace guest_pull {

// Compiled include/exclude patterns. An image reference is guest-pulled iff
// guest pull is enabled, the reference is not empty, it fully matches an
// include pattern and it fully matches no exclude pattern. Immutable and
// thread-safe; cheap to copy.
class ImagePolicy {
 public:
  // The verdict for one reference and the reason, for debug logs.
  struct Decision {
    bool guest_pull = false;
    std::string reason;
  };

  // Compiles the patterns; an invalid one is InvalidArgument naming it.
  static absl::StatusOr<ImagePolicy> Create(const GuestPullOptions& options);

  bool enabled() const { return enabled_; }

  bool AllowsGuestPull(absl::string_view image_ref) const;
  Decision Evaluate(absl::string_view image_ref) const;

 private:
  // A compiled pattern.
  using Pattern = std::shared_ptr<const RE2>;

  ImagePolicy(bool enabled, std::vector<Pattern> include,
              std::vector<Pattern> exclude);

  // The first pattern fully matching image_ref, or nullptr.
  static const RE2* FirstMatch(const std::vector<Pattern>& patterns,
                               absl::string_view image_ref);

  bool enabled_;
  std::vector<Pattern> include_;
  std::vector<Pattern> exclude_;
};

}  // namespace guest_pull

#endif  // SNAPSHOTTER_GUEST_PULL_IMAGE_POLICY_H_
