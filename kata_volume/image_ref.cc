// Image reference parsing and digest pinning, using RE2 with the grammar of
// github.com/distribution/reference (regexp.go) and the digest checks of
// github.com/opencontainers/go-digest v1.0.0 (Digest.Validate) that its
// Parse applies after the grammar.
#include "kata_volume/image_ref.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "re2/re2.h"
#include "base/status_macros.h"

namespace kata_volume {
namespace {

// distribution/reference: RepositoryNameTotalLengthMax, for the path.
constexpr size_t kMaxNameLength = 255;

// The grammar's pieces: the domain (host and port) and the remote name.
struct NameGrammar {
  std::string domain;
  std::string remote_name;
};

const NameGrammar& Grammar() {
  static const NameGrammar* const kGrammar = [] {
    const std::string alnum = "[a-z0-9]+";
    const std::string separator = "(?:[._]|__|[-]+)";
    const std::string path_component =
        absl::StrCat(alnum, "(?:", separator, alnum, ")*");
    const std::string domain_component =
        "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    const std::string ipv6 = R"(\[[a-fA-F0-9:]+\])";
    const std::string host = absl::StrCat("(?:", domain_component, "(?:\\.",
                                          domain_component, ")*|", ipv6, ")");
    return new NameGrammar{
        absl::StrCat(host, "(?::[0-9]+)?"),
        absl::StrCat(path_component, "(?:/", path_component, ")*")};
  }();
  return *kGrammar;
}

const RE2& ReferencePattern() {
  static const RE2* const kPattern = [] {
    const std::string name = absl::StrCat("(?:", Grammar().domain, "/)?",
                                          Grammar().remote_name);
    const std::string tag = R"([\w][\w.-]{0,127})";
    const std::string digest =
        "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
    return new RE2(absl::StrCat("(", name, ")(?::(", tag, "))?(?:@(", digest,
                                "))?"));
  }();
  return *kPattern;
}

// distribution/reference's anchoredNameRegexp: a name's domain, if its first
// component can be one, and its path (the remote name).
const RE2& NamePattern() {
  static const RE2* const kPattern = new RE2(absl::StrCat(
      "(?:(", Grammar().domain, ")/)?(", Grammar().remote_name, ")"));
  return *kPattern;
}

bool IsLowerHex(absl::string_view hex) {
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The algorithms go-digest v1.0.0 (the version distribution/reference
// requires) registers, with their hex lengths. Later go-digest code
// (528a663, after v1.0.0) no longer registers sha384 by default.
struct DigestAlgorithm {
  absl::string_view name;
  size_t hex_digits;
};
constexpr DigestAlgorithm kDigestAlgorithms[] = {
    {"sha256", 64}, {"sha384", 96}, {"sha512", 128}};

absl::Status RefusedDigest(absl::string_view reference,
                           absl::string_view reason) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid image reference \"", reference, "\": ", reason));
}

// go-digest's Digest.Validate on the `digest` of `reference`, one the
// reference grammar matched (so its encoded part is hex).
absl::Status CheckDigest(absl::string_view reference, absl::string_view digest) {
  const size_t colon = digest.find(':');
  const absl::string_view algorithm = digest.substr(0, colon);
  const absl::string_view hex = digest.substr(colon + 1);
  for (const DigestAlgorithm& known : kDigestAlgorithms) {
    if (algorithm != known.name) continue;
    if (hex.size() != known.hex_digits) {
      return RefusedDigest(reference,
                           absl::StrCat(algorithm, " digest has ", hex.size(),
                                        " hex digits, not ", known.hex_digits));
    }
    if (!IsLowerHex(hex)) {
      return RefusedDigest(
          reference, absl::StrCat(algorithm, " digest has upper-case hex digits"));
    }
    return absl::OkStatus();
  }
  // Within the reference grammar, go-digest's generic digest pattern only
  // adds that the algorithm is lower case.
  if (absl::AsciiStrToLower(algorithm) != algorithm) {
    return RefusedDigest(reference, absl::StrCat("digest algorithm \"", algorithm,
                                                 "\" is not lower case"));
  }
  return RefusedDigest(reference,
                       absl::StrCat("unsupported digest algorithm \"", algorithm,
                                    "\" (sha256, sha384 or sha512 expected)"));
}

}  // namespace

bool IsLowerHexSha256(absl::string_view hex) {
  return hex.size() == 64 && IsLowerHex(hex);
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
  // As reference.Parse (v0.6.0 on): the path without the domain is limited.
  std::string domain, path;
  if (!RE2::FullMatch(parsed.name, NamePattern(), &domain, &path)) {
    path = parsed.name;  // not reached: the name matched the same grammar
  }
  if (path.size() > kMaxNameLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image repository path is ", path.size(), " characters, more than ",
        kMaxNameLength, ": \"", reference, "\""));
  }
  if (!parsed.digest.empty()) {
    RETURN_IF_ERROR(CheckDigest(reference, parsed.digest));
  }
  return parsed;
}

absl::Status ValidateImageReference(absl::string_view reference) {
  // Up to 255 characters the path (a part of the name) is within its limit,
  // and '@' can only start the digest: the grammar alone decides.
  if (!reference.empty() && reference.size() <= kMaxNameLength &&
      RE2::FullMatch(re2::StringPiece(reference.data(), reference.size()),
                     ReferencePattern())) {
    const size_t at = reference.find('@');
    if (at == absl::string_view::npos) return absl::OkStatus();
    return CheckDigest(reference, reference.substr(at + 1));
  }
  return ParseImageReference(reference).status();
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
