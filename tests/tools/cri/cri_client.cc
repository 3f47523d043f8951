// CriClient implementation (see cri_client.h).
#include "cri_client.h"

#include <chrono>
#include <utility>

namespace cri_client {
namespace {

// CRI responses (ListImages on a busy node) can exceed gRPC's 4 MiB default.
constexpr int kMaxMessageBytes = 64 * 1024 * 1024;

}  // namespace

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

CriClient::CriClient(std::shared_ptr<grpc::Channel> channel,
                     absl::Duration timeout)
    : timeout_(timeout),
      runtime_(runtime::v1::RuntimeService::NewStub(channel)),
      images_(runtime::v1::ImageService::NewStub(channel)) {}

std::unique_ptr<CriClient> CriClient::Connect(const std::string& target,
                                              absl::Duration timeout) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  auto channel = grpc::CreateCustomChannel(
      target, grpc::InsecureChannelCredentials(), args);
  return std::make_unique<CriClient>(std::move(channel), timeout);
}

std::unique_ptr<grpc::ClientContext> CriClient::NewContext() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  return ctx;
}

absl::StatusOr<runtime::v1::VersionResponse> CriClient::Version() {
  runtime::v1::VersionRequest req;
  req.set_version("v1");
  runtime::v1::VersionResponse resp;
  auto ctx = NewContext();
  absl::Status st = FromGrpc(runtime_->Version(ctx.get(), req, &resp));
  if (!st.ok()) return st;
  return resp;
}

absl::StatusOr<std::string> CriClient::Pull(const std::string& image,
                                            const PullOptions& options) {
  runtime::v1::PullImageRequest req;
  runtime::v1::ImageSpec* spec = req.mutable_image();
  spec->set_image(image);
  spec->set_runtime_handler(options.runtime_handler);
  for (const auto& [k, v] : options.image_annotations) {
    (*spec->mutable_annotations())[k] = v;
  }
  if (!options.username.empty() || !options.password.empty()) {
    req.mutable_auth()->set_username(options.username);
    req.mutable_auth()->set_password(options.password);
  }
  // kubelet always sends the sandbox config of the pod the image is for.
  runtime::v1::PodSandboxConfig* pod = req.mutable_sandbox_config();
  pod->mutable_metadata()->set_name(options.pod_name);
  pod->mutable_metadata()->set_namespace_(options.pod_namespace);
  pod->mutable_metadata()->set_uid(options.pod_uid);
  pod->set_hostname(options.pod_name);
  for (const auto& [k, v] : options.pod_annotations) {
    (*pod->mutable_annotations())[k] = v;
  }
  runtime::v1::PullImageResponse resp;
  auto ctx = NewContext();
  absl::Status st = FromGrpc(images_->PullImage(ctx.get(), req, &resp));
  if (!st.ok()) return st;
  return resp.image_ref();
}

absl::StatusOr<std::optional<runtime::v1::ImageStatusResponse>>
CriClient::Status(const std::string& image, bool verbose) {
  runtime::v1::ImageStatusRequest req;
  req.mutable_image()->set_image(image);
  req.set_verbose(verbose);
  runtime::v1::ImageStatusResponse resp;
  auto ctx = NewContext();
  absl::Status st = FromGrpc(images_->ImageStatus(ctx.get(), req, &resp));
  if (!st.ok()) return st;
  if (!resp.has_image()) {
    return std::optional<runtime::v1::ImageStatusResponse>();
  }
  return std::optional<runtime::v1::ImageStatusResponse>(std::move(resp));
}

absl::StatusOr<std::vector<runtime::v1::Image>> CriClient::List() {
  runtime::v1::ListImagesRequest req;
  runtime::v1::ListImagesResponse resp;
  auto ctx = NewContext();
  absl::Status st = FromGrpc(images_->ListImages(ctx.get(), req, &resp));
  if (!st.ok()) return st;
  return std::vector<runtime::v1::Image>(resp.images().begin(),
                                         resp.images().end());
}

absl::Status CriClient::Remove(const std::string& image) {
  runtime::v1::RemoveImageRequest req;
  req.mutable_image()->set_image(image);
  runtime::v1::RemoveImageResponse resp;
  auto ctx = NewContext();
  return FromGrpc(images_->RemoveImage(ctx.get(), req, &resp));
}

}  // namespace cri_client
