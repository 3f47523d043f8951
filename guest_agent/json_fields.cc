// Optional JSON field readers.
#include "guest_agent/json_fields.h"

#include "absl/strings/str_cat.h"

namespace guest_pull::guest_agent {

absl::StatusOr<std::vector<std::string>> JsonStringArray(const nlohmann::json& object, const char* key) {
  std::vector<std::string> out;
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return out;
  if (!it->is_array()) return absl::InvalidArgumentError(absl::StrCat(key, " is not an array"));
  for (const nlohmann::json& v : *it) {
    if (!v.is_string()) return absl::InvalidArgumentError(absl::StrCat(key, " holds a non-string"));
    out.push_back(v.get<std::string>());
  }
  return out;
}

absl::StatusOr<std::string> JsonOptionalString(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::string();
  if (!it->is_string()) return absl::InvalidArgumentError(absl::StrCat(key, " is not a string"));
  return it->get<std::string>();
}

absl::StatusOr<std::vector<uint32_t>> JsonIdArray(const nlohmann::json& object, const char* key) {
  std::vector<uint32_t> out;
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return out;
  if (!it->is_array()) return absl::InvalidArgumentError(absl::StrCat(key, " is not an array"));
  for (const nlohmann::json& v : *it) {
    if (!v.is_number_unsigned() || v.get<uint64_t>() >= 0xFFFFFFFFu) {
      return absl::InvalidArgumentError(absl::StrCat(key, " holds ", v.dump(), ", not an id from 0 to 4294967294"));
    }
    out.push_back(static_cast<uint32_t>(v.get<uint64_t>()));
  }
  return out;
}

}  // namespace guest_pull::guest_agent
