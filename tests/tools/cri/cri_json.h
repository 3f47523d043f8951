// JSON renderings of CRI messages for cri-client's machine-readable output.
#ifndef TESTS_TOOLS_CRI_CRI_JSON_H_
#define TESTS_TOOLS_CRI_CRI_JSON_H_

#include <nlohmann/json.hpp>

#include "runtime/v1/api.pb.h"

namespace cri_client {

// {"version", "runtime_name", "runtime_version", "runtime_api_version"}.
nlohmann::json VersionToJson(const runtime::v1::VersionResponse& v);

// {"id", "repo_tags", "repo_digests", "size", "uid" (only if set),
//  "username", "pinned", "annotations"}.
nlohmann::json ImageToJson(const runtime::v1::Image& image);

// {"present": true, <ImageToJson fields>, "info": {...} (only if non-empty)}.
nlohmann::json ImageStatusToJson(const runtime::v1::ImageStatusResponse& s);

}  // namespace cri_client

#endif  // TESTS_TOOLS_CRI_CRI_JSON_H_
