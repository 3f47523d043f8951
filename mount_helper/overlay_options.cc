// Option filtering and flag translation for the overlay mount helper.
#include "mount_helper/overlay_options.h"

#include <string.h>
#include <sys/mount.h>

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "mount_helper/mount_flags.h"

namespace mount_helper {

std::vector<absl::string_view> SplitOptionList(absl::string_view list) {
  std::vector<absl::string_view> items;
  size_t start = 0;
  for (size_t i = 0; i <= list.size(); ++i) {
    if (i < list.size() && list[i] == '\\') {
      if (i + 1 < list.size()) ++i;  // the escaped character stays in the item
      continue;
    }
    if (i == list.size() || list[i] == ',') {
      if (i > start) items.push_back(list.substr(start, i - start));
      start = i + 1;
    }
  }
  return items;
}

namespace {

// An odd run of backslashes at the end: the last escapes nothing.
bool EndsInLoneBackslash(absl::string_view option) {
  size_t run = 0;
  while (run < option.size() && option[option.size() - 1 - run] == '\\') ++run;
  return run % 2 == 1;
}

}  // namespace

bool IsOwnOption(absl::string_view option) {
  return absl::StartsWith(option, "io.katacontainers.") ||
         absl::StartsWith(option, "guest-pull.");
}

absl::StatusOr<OverlayMountRequest> TranslateOverlayOptions(
    const std::vector<std::string>& option_lists) {
  OverlayMountRequest request;
  // The value of the last lowerdir= option, the one the kernel keeps (a
  // later lowerdir= replaces an earlier one); nullopt: none was given.
  std::optional<absl::string_view> lowerdir;
  for (const std::string& list : option_lists) {
    for (absl::string_view option : SplitOptionList(list)) {
      if (IsOwnOption(option) || IsUserspaceOnlyOption(option)) {
        request.dropped.emplace_back(option);
        continue;
      }
      if (std::optional<MountFlagEffect> effect = LookupMountFlag(option)) {
        if (effect->flag & MS_BIND) {
          return absl::InvalidArgumentError(absl::StrCat(
              "option \"", option, "\" is not supported: an overlay mount "
              "cannot be a bind mount"));
        }
        // mount(2) would only change the flags of what is mounted at the
        // target; overlayfs ignores the directories on a remount.
        if (effect->flag & MS_REMOUNT) {
          return absl::InvalidArgumentError(absl::StrCat(
              "option \"", option, "\" is not supported: the helper mounts a "
              "new overlay (remount the mounted overlay with mount(8))"));
        }
        if (effect->clear) {
          request.flags &= ~effect->flag;
        } else {
          request.flags |= effect->flag;
        }
        continue;
      }
      if (std::optional<unsigned long> propagation =
              LookupPropagationFlag(option)) {
        request.propagation.push_back(*propagation);
        continue;
      }
      if (absl::StartsWith(option, "lowerdir+=") || absl::StartsWith(option, "datadir+=")) {
        return absl::InvalidArgumentError(absl::StrCat(
            "option \"", option, "\" is not supported: give the lower directories as one "
            "lowerdir= list (as the snapshotter's mounts do)"));
      }
      if (EndsInLoneBackslash(option)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "option \"", option, "\" ends in a lone backslash, which would escape the comma "
            "that joins it to the next option (write \"\\\\\" for a backslash)"));
      }
      if (absl::StartsWith(option, "lowerdir=")) {
        lowerdir = option.substr(strlen("lowerdir="));
      }
      request.data.emplace_back(option);
    }
  }
  if (!lowerdir.has_value()) {
    return absl::InvalidArgumentError(
        "no lowerdir= option: an overlay mount needs at least one lower "
        "directory");
  }
  // overlayfs takes an empty lowerdir= for no lower directory at all and
  // refuses the mount ("missing 'lowerdir'" in the kernel log).
  if (lowerdir->empty()) {
    return absl::InvalidArgumentError(
        "the last lowerdir= option is empty: an overlay mount needs at least "
        "one lower directory");
  }
  return request;
}

}  // namespace mount_helper
