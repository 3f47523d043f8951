// Key and label validation.
#include "snapshotter/key_validation.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace snapshotter {
namespace {

// Shortens a value for an error message.
std::string Excerpt(absl::string_view s) {
  constexpr size_t kMax = 64;
  if (s.size() <= kMax) return std::string(s);
  return absl::StrCat(s.substr(0, kMax), "...");
}

}  // namespace

absl::Status ValidateKey(absl::string_view key, absl::string_view what) {
  if (key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " must not be empty"));
  }
  if (key.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is ", key.size(), " bytes long, over the limit of ",
                     kMaxKeyBytes, " bytes"));
  }
  if (key.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " \"", Excerpt(key), "\" contains a NUL byte"));
  }
  for (absl::string_view element : absl::StrSplit(key, '/')) {
    if (element == "." || element == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " \"", Excerpt(key), "\" contains a \"", element,
                       "\" path element"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateLookupKey(absl::string_view key, absl::string_view what) {
  if (key.empty()) {
    return absl::NotFoundError(
        absl::StrCat("snapshot with an empty ", what, ": not found"));
  }
  return ValidateKey(key, what);
}

absl::Status ValidateLabels(const Labels& labels) {
  for (const auto& [k, v] : labels) {
    if (k.empty()) {
      return absl::InvalidArgumentError("label key must not be empty");
    }
    if (k.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("label key \"", Excerpt(k), "\" contains a NUL byte"));
    }
    if (k.size() + v.size() > kMaxLabelBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "label \"", Excerpt(k), "\": key and value are ", k.size() + v.size(),
          " bytes, over the limit of ", kMaxLabelBytes, " bytes"));
    }
  }
  return absl::OkStatus();
}

}  // namespace snapshotter
