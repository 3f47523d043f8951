// Image reference parsing and digest pinning, using RE2 with the grammar of
// github.com/distribution/reference (regexp.go).
#include "kata_volume/image_ref.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "re2/re2.h"
#include "base/status_macros.h"

namespace kata_volume {
namespace {

// distribution/reference: NameTotalLengthMax.
constexpr size_t kMaxNameLength = 255;

const RE2& ReferencePattern() {
  static const RE2* const kPattern = [] {
    const std::string alnum = "[a-z0-9]+";
    const std::string separator = "(?:[._]|__|[-]+)";
    const std::string path_component =
        absl::StrCat(alnum, "(?:", separator, alnum, ")*");
    const std::string domain_component =
        "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    const std::string ipv6 = R"(\[[a-fA-F0-9:]+\])";
    const std::string host = absl::StrCat("(?:", domain_component, "(?:\\.",
                                          domain_component, ")*|", ipv6, ")");
    const std::string domain = absl::StrCat(host, "(?::[0-9]+)?");
    const std::string name =
        absl::StrCat("(?:", domain, "/)?", path_component, "(?:/",
                     path_component, ")*");
    const std::string tag = R"([\w][\w.-]{0,127})";
    const std::string digest =
        "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
    return new RE2(absl::StrCat("(", name, ")(?::(", tag, "))?(?:@(", digest,
                                "))?"));
  }();
  return *kPattern;
}

}  // namespace

bool IsLowerHexSha256(absl::string_view hex) {
  if (hex.size() != 64) return false;
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsSha256Digest(absl::string_view digest) {
  return absl::ConsumePrefix(&digest, "sha256:") && IsLowerHexSha256(digest);
}

absl::StatusOr<ImageReference> ParseImageReference(absl::string_view reference) {
  ImageReference parsed;
  if (reference.empty()) {
    return absl::InvalidArgumentError("image reference is empty");
  }
  if (!RE2::FullMatch(re2::StringPiece(reference.data(), reference.size()),
                      ReferencePattern(), &parsed.name, &parsed.tag,
                      &parsed.digest)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid image reference \"", reference, "\""));
  }
  if (parsed.name.size() > kMaxNameLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image repository name is ", parsed.name.size(),
        " characters, more than ", kMaxNameLength, ": \"", reference, "\""));
  }
  return parsed;
}

std::string NormalizedImageName(absl::string_view name) {
  constexpr absl::string_view kDockerHub = "docker.io";
  size_t slash = name.find('/');
  absl::string_view domain = kDockerHub;
  absl::string_view path = name;
  if (slash != absl::string_view::npos) {
    absl::string_view first = name.substr(0, slash);
    bool is_host = first.find_first_of(".:") != absl::string_view::npos ||
                   first == "localhost" || absl::AsciiStrToLower(first) != first;
    if (is_host) {
      domain = first == "index.docker.io" ? kDockerHub : first;
      path = name.substr(slash + 1);
    }
  }
  if (domain == kDockerHub && path.find('/') == absl::string_view::npos) {
    return absl::StrCat(domain, "/library/", path);
  }
  return absl::StrCat(domain, "/", path);
}

absl::StatusOr<std::string> PinImageReference(absl::string_view reference,
                                              absl::string_view digest) {
  if (!IsSha256Digest(digest)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid manifest digest \"", digest,
        "\" (sha256:<64 lowercase hex digits> expected)"));
  }
  ASSIGN_OR_RETURN(ImageReference parsed, ParseImageReference(reference));
  return absl::StrCat(parsed.name, "@", digest);
}

}  // namespace kata_volume
