// One-page overlay mount data: join, and compact paths when needed.
#include "mount_helper/overlay_data.h"

#include <unistd.h>

#include <algorithm>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace mount_helper {
namespace {

// Options whose value is one path, or ':'-separated paths for lowerdir.
const std::vector<absl::string_view>& AllPathKeys() {
  static const auto* const kKeys =
      new std::vector<absl::string_view>{"lowerdir=", "upperdir=", "workdir="};
  return *kKeys;
}

const std::vector<absl::string_view>& LowerdirKey() {
  static const auto* const kKeys = new std::vector<absl::string_view>{"lowerdir="};
  return *kKeys;
}

// Splits an overlay lowerdir value on ':' not escaped by '\'.
std::vector<std::string> SplitLowerdirs(absl::string_view value) {
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\\' && i + 1 < value.size()) {
      parts.back().append(value.data() + i, 2);
      ++i;
    } else if (value[i] == ':') {
      parts.emplace_back();
    } else {
      parts.back() += value[i];
    }
  }
  return parts;
}

// Path components of an absolute path, or nullopt if it is relative or has
// "." / ".." components.
std::optional<std::vector<std::string>> Components(absl::string_view path) {
  if (!absl::StartsWith(path, "/")) return std::nullopt;
  std::vector<std::string> components =
      absl::StrSplit(path, '/', absl::SkipEmpty());
  for (const std::string& component : components) {
    if (component == "." || component == "..") return std::nullopt;
  }
  return components;
}

// Removes overlay's backslash escapes ("\:" -> ":") for chdir(2).
std::string Unescape(absl::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size()) ++i;
    out += text[i];
  }
  return out;
}

absl::Status TooLarge(size_t original, std::optional<size_t> compacted,
                      size_t limit, absl::string_view why) {
  std::string sizes = absl::StrCat("overlay mount data is ", original, " bytes");
  if (compacted.has_value()) {
    absl::StrAppend(&sizes, " (", *compacted,
                    " bytes with paths relative to their common parent)");
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      sizes, ", more than the mount(2) limit of ", limit, " bytes", why));
}

// Rewrites the paths of the options named by `keys` relative to their
// longest common parent directory. FailedPrecondition if any lowerdir,
// upperdir or workdir path is relative or has "." / ".." components.
absl::StatusOr<OverlayData> Compact(const std::vector<std::string>& options,
                                    const std::vector<absl::string_view>& keys) {
  // Path components per option (empty for options left alone).
  std::vector<std::vector<std::vector<std::string>>> option_paths;
  std::optional<std::vector<std::string>> common;
  for (const std::string& option : options) {
    option_paths.emplace_back();
    absl::string_view key;
    for (absl::string_view candidate : AllPathKeys()) {
      if (absl::StartsWith(option, candidate)) key = candidate;
    }
    if (key.empty()) continue;
    const bool compact =
        std::find(keys.begin(), keys.end(), key) != keys.end();
    absl::string_view value = absl::string_view(option).substr(key.size());
    std::vector<std::string> paths =
        key == "lowerdir=" ? SplitLowerdirs(value)
                           : std::vector<std::string>{std::string(value)};
    for (const std::string& path : paths) {
      std::optional<std::vector<std::string>> components = Components(path);
      if (!components.has_value()) {
        // Also for paths left alone: after the chdir a relative path would
        // name another directory.
        return absl::FailedPreconditionError(absl::StrCat(
            "cannot compact with the relative or non-canonical path \"", path,
            "\""));
      }
      if (!compact) continue;
      if (!common.has_value()) {
        common = *components;
      } else {
        auto mismatch = std::mismatch(common->begin(), common->end(),
                                      components->begin(), components->end());
        common->erase(mismatch.first, common->end());
      }
      option_paths.back().push_back(*std::move(components));
    }
  }
  if (!common.has_value()) {
    return absl::FailedPreconditionError("no paths to compact");
  }
  // The common directory must be a proper parent of every path, so that no
  // relative path is empty.
  for (const auto& paths : option_paths) {
    for (const auto& components : paths) {
      if (components.size() != common->size()) continue;
      // "/" itself has no parent to be relative to.
      if (common->empty()) {
        return absl::FailedPreconditionError("cannot compact the path \"/\"");
      }
      common->pop_back();
    }
  }

  std::vector<std::string> compacted;
  for (size_t i = 0; i < options.size(); ++i) {
    if (option_paths[i].empty()) {
      compacted.push_back(options[i]);
      continue;
    }
    const std::string key = options[i].substr(0, options[i].find('=') + 1);
    std::vector<std::string> relative;
    for (const auto& components : option_paths[i]) {
      relative.push_back(absl::StrJoin(components.begin() + common->size(),
                                       components.end(), "/"));
    }
    compacted.push_back(key + absl::StrJoin(relative, ":"));
  }
  OverlayData result;
  result.data = absl::StrJoin(compacted, ",");
  result.working_dir = Unescape(absl::StrCat("/", absl::StrJoin(*common, "/")));
  return result;
}

}  // namespace

size_t MountDataLimit() { return static_cast<size_t>(getpagesize()) - 1; }

absl::StatusOr<OverlayData> FitOverlayData(
    const std::vector<std::string>& options, size_t limit) {
  OverlayData joined;
  joined.data = absl::StrJoin(options, ",");
  const size_t original = joined.data.size();
  if (original <= limit) return joined;

  // First relative to the common parent of all paths; if upperdir/workdir
  // live elsewhere, relative to the lowerdirs' parent with them absolute.
  std::optional<size_t> smallest;
  absl::Status first_error;
  for (const auto* keys : {&AllPathKeys(), &LowerdirKey()}) {
    absl::StatusOr<OverlayData> compacted = Compact(options, *keys);
    if (!compacted.ok()) {
      if (first_error.ok()) first_error = compacted.status();
      continue;
    }
    if (compacted->data.size() <= limit) return compacted;
    if (!smallest.has_value() || compacted->data.size() < *smallest) {
      smallest = compacted->data.size();
    }
  }
  if (smallest.has_value()) return TooLarge(original, smallest, limit, "");
  return TooLarge(original, std::nullopt, limit,
                  absl::StrCat("; ", first_error.message()));
}

}  // namespace mount_helper
