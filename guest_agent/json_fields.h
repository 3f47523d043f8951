// Typed reads of optional JSON fields (nlohmann-json, no exceptions) shared
// by the request and image-config parsers.
#ifndef GUEST_AGENT_JSON_FIELDS_H_
#define GUEST_AGENT_JSON_FIELDS_H_

#include <nlohmann/json.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace guest_pull::guest_agent {

// object[key] as strings; absent or null: empty. InvalidArgument otherwise.
absl::StatusOr<std::vector<std::string>> JsonStringArray(const nlohmann::json& object, const char* key);

// object[key] as a string; absent or null: "". InvalidArgument otherwise.
absl::StatusOr<std::string> JsonOptionalString(const nlohmann::json& object, const char* key);

// object[key] as user or group ids: integers from 0 to 2^32-2 (2^32-1 is
// no id); absent or null: empty. InvalidArgument otherwise.
absl::StatusOr<std::vector<uint32_t>> JsonIdArray(const nlohmann::json& object, const char* key);

}  // namespace guest_pull::guest_agent

#endif  // GUEST_AGENT_JSON_FIELDS_H_
