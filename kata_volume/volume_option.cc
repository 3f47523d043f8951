// Base64 mount-option encoding of KataVirtualVolume.
#include "kata_volume/volume_option.h"

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "kata_volume/volume_json.h"
#include "base/status_macros.h"

namespace kata_volume {
namespace {

bool IsBase64AlphabetChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '+' ||
         c == '/';
}

// Checks the strict standard-base64 shape Go's StdEncoding requires:
// length a multiple of 4, only alphabet characters, at most two '=' at the
// very end.
absl::Status CheckStandardBase64(absl::string_view text) {
  if (text.empty()) {
    return absl::InvalidArgumentError("KataVirtualVolume base64 is empty");
  }
  if (text.size() % 4 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KataVirtualVolume base64 length ", text.size(),
        " is not a multiple of 4 (standard base64 with padding expected)"));
  }
  size_t padding = 0;
  while (padding < 2 && padding < text.size() &&
         text[text.size() - 1 - padding] == '=') {
    ++padding;
  }
  for (size_t i = 0; i < text.size() - padding; ++i) {
    if (!IsBase64AlphabetChar(text[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "KataVirtualVolume base64 has an invalid character at offset ", i,
          " (byte 0x", absl::Hex(static_cast<unsigned char>(text[i])), ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> EncodeVolumeBase64(const KataVirtualVolume& volume) {
  std::string encoded = absl::Base64Escape(VolumeToJson(volume));
  if (encoded.size() > kMaxVolumeBase64Bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "encoded KataVirtualVolume is ", encoded.size(),
        " bytes of base64, more than the limit of ", kMaxVolumeBase64Bytes));
  }
  return encoded;
}

absl::StatusOr<std::string> EncodeVolumeOption(const KataVirtualVolume& volume) {
  ASSIGN_OR_RETURN(std::string encoded, EncodeVolumeBase64(volume));
  return absl::StrCat(kVolumeOptionPrefix, encoded);
}

absl::StatusOr<KataVirtualVolume> DecodeVolumeOption(absl::string_view option) {
  ASSIGN_OR_RETURN(std::string json, DecodeVolumeOptionJson(option));
  return VolumeFromJson(json);
}

absl::StatusOr<std::string> DecodeVolumeOptionJson(absl::string_view option) {
  absl::string_view payload = option;
  absl::ConsumePrefix(&payload, kVolumeOptionPrefix);
  if (payload.size() > kMaxVolumeBase64Bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KataVirtualVolume base64 is ", payload.size(),
        " bytes, more than the limit of ", kMaxVolumeBase64Bytes));
  }
  return DecodeVolumeBase64Json(payload);
}

absl::StatusOr<std::string> DecodeVolumeBase64Json(absl::string_view base64) {
  RETURN_IF_ERROR(CheckStandardBase64(base64));
  std::string json;
  if (!absl::Base64Unescape(base64, &json)) {
    return absl::InvalidArgumentError(
        "KataVirtualVolume base64 could not be decoded");
  }
  return json;
}

absl::StatusOr<std::string> FindVolumeOption(absl::string_view mount_options) {
  std::vector<absl::string_view> found;
  for (absl::string_view option : absl::StrSplit(mount_options, ',')) {
    if (absl::StartsWith(option, kVolumeOptionPrefix)) found.push_back(option);
  }
  if (found.empty()) {
    return absl::NotFoundError(absl::StrCat("no ", kVolumeOptionPrefix,
                                            " option in the mount options"));
  }
  if (found.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(found.size(), " ", kVolumeOptionPrefix,
                     " options in the mount options; expected exactly one"));
  }
  return std::string(found.front());
}

}  // namespace kata_volume
