// CriClient: a thin, deadline-bounded wrapper around the CRI runtime.v1
// ImageService and RuntimeService stubs, returning absl::Status(Or).
#ifndef TESTS_TOOLS_CRI_CRI_CLIENT_H_
#define TESTS_TOOLS_CRI_CRI_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/v1/api.grpc.pb.h"

namespace cri_client {

// What PullImage sends besides the image name (kubelet-like defaults).
struct PullOptions {
  std::map<std::string, std::string> image_annotations;
  std::map<std::string, std::string> pod_annotations;
  std::string pod_name = "cri-client";
  std::string pod_namespace = "default";
  std::string pod_uid = "cri-client-uid";
  std::string runtime_handler;
  std::string username;
  std::string password;
};

// One connection to a CRI endpoint. Every call carries its own deadline of
// `timeout`; calls fail fast (UNAVAILABLE) when nothing listens.
class CriClient {
 public:
  CriClient(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout);

  // Creates a client for a gRPC target such as unix:///run/x.sock.
  static std::unique_ptr<CriClient> Connect(const std::string& target,
                                            absl::Duration timeout);

  absl::StatusOr<runtime::v1::VersionResponse> Version();
  // Returns the image_ref of the pulled image.
  absl::StatusOr<std::string> Pull(const std::string& image,
                                   const PullOptions& options);
  // Returns nullopt when the runtime does not know the image.
  absl::StatusOr<std::optional<runtime::v1::ImageStatusResponse>> Status(
      const std::string& image, bool verbose);
  absl::StatusOr<std::vector<runtime::v1::Image>> List();
  absl::Status Remove(const std::string& image);

 private:
  // A context whose deadline is now + timeout_.
  std::unique_ptr<grpc::ClientContext> NewContext() const;

  absl::Duration timeout_;
  std::unique_ptr<runtime::v1::RuntimeService::Stub> runtime_;
  std::unique_ptr<runtime::v1::ImageService::Stub> images_;
};

// Maps a gRPC status onto the absl status with the same code and message.
absl::Status FromGrpc(const grpc::Status& status);

}  // namespace cri_client

#endif  // TESTS_TOOLS_CRI_CRI_CLIENT_H_
