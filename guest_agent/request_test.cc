#include "guest_agent/request.h"

#include <nlohmann/json.hpp>
#include <string>

#include "gtest/gtest.h"

namespace guest_pull::guest_agent {
namespace {

using nlohmann::json;

const std::string kManifest = "sha256:" + std::string(64, 'a');
const std::string kLayer = "sha256:" + std::string(64, 'b');
const std::string kRoot(64, 'c');

json Metadata() {
  return {{"guest-pull.image-ref", "127.0.0.1:5000/app:v1"},
          {"guest-pull.manifest-digest", kManifest},
          {"guest-pull.layer-count", "1"},
          {"guest-pull.layer.0.digest", kLayer},
          {"guest-pull.layer.0.verity-root-hash", kRoot},
          {"guest-pull.verity-params", kata_volume::kGuestPullVerityParams},
          {"io.kubernetes.cri.container-type", "container"}};
}

json Request(const json& metadata) {
  return {{"storage",
           {{"driver", "image_guest_pull"},
            {"driver_options", {"image_guest_pull=" + json{{"metadata", metadata}}.dump()}},
            {"source", "127.0.0.1:5000/app@" + kManifest},
            {"fstype", "overlay"}}},
          {"process", {{"args", {"/bin/sh", "-c", "true"}}, {"env", {"A=1"}}, {"cwd", "/tmp"}, {"user", "1000:1000"},
            {"additional_gids", {50, 4294967294u}}}}};
}

TEST(ParseGuestRequestTest, ReadsTheStorageAndProcess) {
  absl::StatusOr<GuestRequest> r = ParseGuestRequest(Request(Metadata()).dump());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->source, "127.0.0.1:5000/app@" + kManifest);
  EXPECT_EQ(r->image.manifest_digest, kManifest);
  ASSERT_EQ(r->image.layers.size(), 1u);
  EXPECT_EQ(r->image.layers[0].digest, kLayer);
  EXPECT_EQ(r->image.layers[0].verity_root_hash, kRoot);
  EXPECT_EQ(r->process.args, (std::vector<std::string>{"/bin/sh", "-c", "true"}));
  EXPECT_EQ(r->process.env, std::vector<std::string>{"A=1"});
  EXPECT_EQ(r->process.cwd, "/tmp");
  EXPECT_EQ(r->process.user, "1000:1000");
  EXPECT_EQ(r->process.additional_gids, (std::vector<uint32_t>{50, 4294967294u}));
  EXPECT_FALSE(r->test.skip_blob_checks);
}

// kata's shim sends the CRI image name: a tag is pinned to the volume's
// manifest digest; another image's name is still refused.
TEST(ParseGuestRequestTest, PinsATaggedSourceToTheVolumesDigest) {
  json req = Request(Metadata());
  req["storage"]["source"] = "127.0.0.1:5000/app:v1";
  absl::StatusOr<GuestRequest> r = ParseGuestRequest(req.dump());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->source, "127.0.0.1:5000/app@" + kManifest);
  req["storage"]["source"] = "127.0.0.1:5000/other:v1";
  EXPECT_FALSE(ParseGuestRequest(req.dump()).ok());
}

TEST(ParseGuestRequestTest, ReadsTheTestOnlySwitch) {
  json req = Request(Metadata());
  req["test_options"] = {{"skip_blob_checks", true}};
  absl::StatusOr<GuestRequest> r = ParseGuestRequest(req.dump());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->test.skip_blob_checks);
  req["test_options"] = {{"trust_the_host", true}};
  EXPECT_FALSE(ParseGuestRequest(req.dump()).ok());
}

void ExpectRefused(const json& req, const std::string& needle) {
  absl::StatusOr<GuestRequest> r = ParseGuestRequest(req.dump());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status();
}

TEST(ParseGuestRequestTest, RefusesBadRequests) {
  ExpectRefused(json::array(), "not a JSON object");
  json req = Request(Metadata());
  req["storage"]["driver"] = "overlayfs";
  ExpectRefused(req, "storage driver");
  req = Request(Metadata());
  req["storage"]["driver_options"].push_back(req["storage"]["driver_options"][0]);
  ExpectRefused(req, "more than one");
  req = Request(Metadata());
  req["storage"]["driver_options"] = json::array();
  ExpectRefused(req, "no image_guest_pull");
  json meta = Metadata();
  meta.erase("guest-pull.layer.0.verity-root-hash");
  ExpectRefused(Request(meta), "no expected dm-verity root hash");
  req = Request(Metadata());
  req["storage"]["source"] = "127.0.0.1:5000/other@" + kManifest;
  ExpectRefused(req, "pinned");
  req = Request(Metadata());
  req["process"]["env"] = {"NOEQUALS"};
  ExpectRefused(req, "KEY=VALUE");
  req = Request(Metadata());
  req["process"]["cwd"] = "relative";
  ExpectRefused(req, "not absolute");
  // additional_gids: ids, not the invalid id, negatives, fractions or text.
  for (const json& bad : {json::array({4294967295u}), json::array({-1}), json::array({1.5}),
                         json::array({"50"}), json(50)}) {
    req = Request(Metadata());
    req["process"]["additional_gids"] = bad;
    ExpectRefused(req, "additional_gids");
  }
}

// kata's shim sends the container's io.kubernetes.cri.image-name, the image
// as the pod spec writes it; the volume has the CRI pull's normalised
// reference and the platform manifest's digest.
TEST(ParseGuestRequestTest, AcceptsTheShortDockerHubNameKubeletSends) {
  json meta = Metadata();
  meta["guest-pull.image-ref"] = "docker.io/library/busybox:1.36";
  json req = Request(meta);
  for (const char* source : {"busybox:1.36", "library/busybox:1.36", "busybox"}) {
    SCOPED_TRACE(source);
    req["storage"]["source"] = source;
    absl::StatusOr<GuestRequest> r = ParseGuestRequest(req.dump());
    EXPECT_TRUE(r.ok()) << r.status();
  }
}

// A pod pinning a multi-platform image by its index digest.
TEST(ParseGuestRequestTest, AcceptsAnIndexDigestSource) {
  const std::string index = "sha256:" + std::string(64, 'd');
  json meta = Metadata();
  meta["guest-pull.image-ref"] = "127.0.0.1:5000/app@" + index;
  json req = Request(meta);
  req["storage"]["source"] = "127.0.0.1:5000/app@" + index;
  absl::StatusOr<GuestRequest> r = ParseGuestRequest(req.dump());
  EXPECT_TRUE(r.ok()) << r.status();
}

}  // namespace
}  // namespace guest_pull::guest_agent
