// cri-client: a small CRI runtime.v1 command-line client for tests (no crictl
// here). Prints JSON on stdout; errors on stderr with the gRPC code; exit 1.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cli_args.h"
#include "cri_client.h"
#include "cri_json.h"

namespace cri_client {
namespace {

int Fail(const std::string& what, const absl::Status& status) {
  std::cerr << "cri-client: " << what << ": " << status.ToString() << std::endl;
  return 1;
}

int Print(const nlohmann::json& j) {
  std::cout << j.dump() << std::endl;
  return std::cout.good() ? 0 : 1;
}

PullOptions ToPullOptions(const Invocation& inv) {
  PullOptions o;
  o.image_annotations = inv.image_annotations;
  o.pod_annotations = inv.pod_annotations;
  o.pod_name = inv.pod_name;
  o.pod_namespace = inv.pod_namespace;
  o.pod_uid = inv.pod_uid;
  o.runtime_handler = inv.runtime_handler;
  o.username = inv.auth_username;
  o.password = inv.auth_password;
  return o;
}

int Run(const Invocation& inv) {
  std::unique_ptr<CriClient> client =
      CriClient::Connect(inv.address, inv.timeout);
  switch (inv.command) {
    case Command::kVersion: {
      auto v = client->Version();
      if (!v.ok()) return Fail("version", v.status());
      return Print(VersionToJson(*v));
    }
    case Command::kPull: {
      auto ref = client->Pull(inv.image, ToPullOptions(inv));
      if (!ref.ok())
        return Fail(absl::StrCat("pull ", inv.image), ref.status());
      return Print(nlohmann::json{{"image_ref", *ref}});
    }
    case Command::kStatus: {
      auto s = client->Status(inv.image, inv.verbose);
      if (!s.ok()) return Fail(absl::StrCat("status ", inv.image), s.status());
      if (!s->has_value()) return Print(nlohmann::json{{"present", false}});
      return Print(ImageStatusToJson(**s));
    }
    case Command::kList: {
      auto images = client->List();
      if (!images.ok()) return Fail("list", images.status());
      nlohmann::json out = nlohmann::json::array();
      for (const auto& image : *images) out.push_back(ImageToJson(image));
      return Print(out);
    }
    case Command::kRemove: {
      absl::Status st = client->Remove(inv.image);
      if (!st.ok()) return Fail(absl::StrCat("remove ", inv.image), st);
      return Print(nlohmann::json{{"removed", inv.image}});
    }
    case Command::kHelp:
      std::cout << UsageText();
      return 0;
  }
  return 1;
}

}  // namespace
}  // namespace cri_client

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto inv = cri_client::ParseArgs(args);
  if (!inv.ok()) {
    std::cerr << "cri-client: " << inv.status().message() << "\n\n"
              << cri_client::UsageText();
    return 1;
  }
  return cri_client::Run(*inv);
}
