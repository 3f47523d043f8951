// Turns the option lists a mount helper receives (each "-o a,b,c") into an
// overlay mount(2) request: our own options are dropped, flag options become
// MS_* flags (see mount_flags.h), the rest becomes overlay data.
#ifndef MOUNT_HELPER_OVERLAY_OPTIONS_H_
#define MOUNT_HELPER_OVERLAY_OPTIONS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mount_helper {

// A translated overlay mount.
struct OverlayMountRequest {
  unsigned long flags = 0;              // MS_* flags for mount(2)
  // MS_SHARED/... (with MS_REC for the r* forms), set one by one after
  // the mount in the given order, as mount(8) does (mount(2) takes one).
  std::vector<unsigned long> propagation;
  std::vector<std::string> data;        // overlay options, in given order
  std::vector<std::string> dropped;     // our own / userspace-only options
};

// Splits one comma-joined option list as the kernel's overlayfs does: a
// comma escaped by a backslash ("\,") belongs to the item, and the escape
// is kept, since the kernel removes it. Empty items are skipped.
std::vector<absl::string_view> SplitOptionList(absl::string_view list);

// True for options that belong to this project or to Kata and must not reach
// the kernel: prefixes "io.katacontainers." and "guest-pull.".
bool IsOwnOption(absl::string_view option);

// Splits each comma-joined list (empty items are skipped) and translates it.
// InvalidArgument for bind/rbind (an overlay cannot be a bind mount), for
// remount (it would mount no overlay), for an overlay option that ends in a
// lone backslash (joined to the next option, it would escape the comma
// between them), when no lowerdir option is given and when the last one is
// empty (overlayfs keeps only the last; an empty one leaves it no lower
// directory).
absl::StatusOr<OverlayMountRequest> TranslateOverlayOptions(
    const std::vector<std::string>& option_lists);

}  // namespace mount_helper

#endif  // MOUNT_HELPER_OVERLAY_OPTIONS_H_
