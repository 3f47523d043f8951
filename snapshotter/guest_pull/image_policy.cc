// Guest-pull include/exclude matching with RE2.
#include "snapshotter/guest_pull/image_policy.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace guest_pull {
namespace {

absl::StatusOr<std::vector<std::shared_ptr<const RE2>>> CompileAll(
    const std::vector<std::string>& patterns, absl::string_view key) {
  RE2::Options options;
  options.set_log_errors(false);
  std::vector<std::shared_ptr<const RE2>> compiled;
  compiled.reserve(patterns.size());
  for (size_t i = 0; i < patterns.size(); ++i) {
    auto re = std::make_shared<const RE2>(patterns[i], options);
    if (!re->ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "guest_pull.", key, "[", i, "]: invalid RE2 pattern \"",
          absl::CEscape(patterns[i]), "\": ", re->error()));
    }
    compiled.push_back(std::move(re));
  }
  return compiled;
}

}  // namespace

absl::StatusOr<ImagePolicy> ImagePolicy::Create(
    const GuestPullOptions& options) {
  ASSIGN_OR_RETURN(auto include, CompileAll(options.include, "include"));
  ASSIGN_OR_RETURN(auto exclude, CompileAll(options.exclude, "exclude"));
  return ImagePolicy(options.enable, std::move(include), std::move(exclude));
}

ImagePolicy::ImagePolicy(bool enabled, std::vector<Pattern> include,
                         std::vector<Pattern> exclude)
    : enabled_(enabled),
      include_(std::move(include)),
      exclude_(std::move(exclude)) {}

const RE2* ImagePolicy::FirstMatch(const std::vector<Pattern>& patterns,
                                   absl::string_view image_ref) {
  const re2::StringPiece text(image_ref.data(), image_ref.size());
  for (const Pattern& pattern : patterns) {
    if (RE2::FullMatch(text, *pattern)) return pattern.get();
  }
  return nullptr;
}

ImagePolicy::Decision ImagePolicy::Evaluate(absl::string_view image_ref) const {
  if (!enabled_) return {false, "guest pull is disabled (guest_pull.enable)"};
  if (image_ref.empty()) {
    return {false, "no CRI image reference (not a CRI pull)"};
  }
  const RE2* included = FirstMatch(include_, image_ref);
  if (included == nullptr) {
    return {false, "matches no guest_pull.include pattern"};
  }
  if (const RE2* excluded = FirstMatch(exclude_, image_ref)) {
    return {false, absl::StrCat("matches guest_pull.exclude pattern \"",
                                excluded->pattern(), "\"")};
  }
  return {true, absl::StrCat("matches guest_pull.include pattern \"",
                             included->pattern(), "\"")};
}

bool ImagePolicy::AllowsGuestPull(absl::string_view image_ref) const {
  return Evaluate(image_ref).guest_pull;
}

}  // namespace guest_pull
