// JSON renderings of CRI messages (see cri_json.h).
#include "cri_json.h"

#include <string>

namespace cri_client {

nlohmann::json VersionToJson(const runtime::v1::VersionResponse& v) {
  return nlohmann::json{{"version", v.version()},
                        {"runtime_name", v.runtime_name()},
                        {"runtime_version", v.runtime_version()},
                        {"runtime_api_version", v.runtime_api_version()}};
}

nlohmann::json ImageToJson(const runtime::v1::Image& image) {
  nlohmann::json j;
  j["id"] = image.id();
  j["repo_tags"] = nlohmann::json::array();
  for (const std::string& t : image.repo_tags()) j["repo_tags"].push_back(t);
  j["repo_digests"] = nlohmann::json::array();
  for (const std::string& d : image.repo_digests()) {
    j["repo_digests"].push_back(d);
  }
  j["size"] = image.size();
  if (image.has_uid()) j["uid"] = image.uid().value();
  j["username"] = image.username();
  j["pinned"] = image.pinned();
  j["annotations"] = nlohmann::json::object();
  for (const auto& [k, v] : image.spec().annotations()) j["annotations"][k] = v;
  return j;
}

nlohmann::json ImageStatusToJson(const runtime::v1::ImageStatusResponse& s) {
  nlohmann::json j = ImageToJson(s.image());
  j["present"] = true;
  if (!s.info().empty()) {
    nlohmann::json info = nlohmann::json::object();
    for (const auto& [k, v] : s.info()) {
      // containerd puts a JSON document in info["info"]; keep it structured.
      nlohmann::json parsed = nlohmann::json::parse(v, nullptr, false);
      info[k] = parsed.is_discarded() ? nlohmann::json(v) : parsed;
    }
    j["info"] = info;
  }
  return j;
}

}  // namespace cri_client
