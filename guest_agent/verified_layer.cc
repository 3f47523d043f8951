// Blob -> checks -> tardev layout -> dm-verity -> extraction.
#include "guest_agent/verified_layer.h"

#include <sys/sysmacros.h>
#include <unistd.h>

#include <memory>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "guest_agent/device_mapper.h"
#include "guest_agent/kernel.h"
#include "guest_agent/layer_extract.h"
#include "guest_agent/layer_layout.h"
#include "guest_agent/verity_hash_tree.h"
#include "kata_volume/verity/byte_source.h"
#include "kata_volume/verity/layer_verity.h"

namespace guest_pull::guest_agent {

namespace {

constexpr uint64_t kMaxBlobSize = 4ULL << 30;
constexpr char kZeroSaltHex[] = "0000000000000000000000000000000000000000000000000000000000000000";

}  // namespace

const char* LayerFailureName(LayerFailure failure) {
  switch (failure) {
    case LayerFailure::kNone: return "none";
    case LayerFailure::kFetch: return "fetch";
    case LayerFailure::kDigest: return "digest";
    case LayerFailure::kVerification: return "verification";
    case LayerFailure::kInternal: return "internal";
  }
  return "internal";
}

absl::Status PrepareVerifiedLayer(const LayerJob& job, HostClient* host, LayerFailure* failure) {
  const std::string& digest = job.expected.digest;
  auto fail = [&](LayerFailure kind, absl::string_view what, const absl::Status& cause) {
    *failure = kind;
    return absl::Status(cause.code() == absl::StatusCode::kOk ? absl::StatusCode::kInternal : cause.code(),
                        absl::StrCat("layer ", digest, ": ", what, cause.message().empty() ? "" : ": ",
                                     cause.message()));
  };
  const std::string blob = absl::StrCat(job.work_dir, "/blob-", job.index);
  const std::string image = absl::StrCat(job.work_dir, "/layer-", job.index, ".img");

  absl::StatusOr<Fetched> fetched = host->FetchToFile("blob", digest, blob, kMaxBlobSize);
  if (!fetched.ok()) return fail(LayerFailure::kFetch, "fetch failed", fetched.status());
  if (fetched->digest != digest && !job.skip_blob_checks) {
    ::unlink(blob.c_str());
    return fail(LayerFailure::kDigest,
                absl::StrCat("blob digest mismatch: received bytes hash to ", fetched->digest), absl::OkStatus());
  }

  absl::StatusOr<LaidOutLayer> laid_out = LayOutLayer(blob, image);
  if (!laid_out.ok()) {
    return fail(LayerFailure::kInternal, "tardev layout failed", laid_out.status());
  }
  const verity::LayerVerity* layout = &laid_out->layout;
  // The image is guest memory: gone on every way out (dm holds the loop
  // device, which holds the file, for as long as extraction reads it).
  auto remove_image = absl::MakeCleanup([&image] { ::unlink(image.c_str()); });
  if (!job.skip_blob_checks) {
    if (layout->diff_id != job.config_diff_id) {
      return fail(LayerFailure::kDigest,
                  absl::StrCat("diff_id mismatch: content hashes to ", layout->diff_id, ", image config says ",
                               job.config_diff_id), absl::OkStatus());
    }
    if (!job.expected.diff_id.empty() && layout->diff_id != job.expected.diff_id) {
      return fail(LayerFailure::kDigest,
                  absl::StrCat("diff_id mismatch: content hashes to ", layout->diff_id, ", volume expects ",
                               job.expected.diff_id), absl::OkStatus());
    }
  }
  absl::StatusOr<VerityHashTree> tree = AppendVerityHashTree(image, std::string(32, '\0'));
  if (!tree.ok()) return fail(LayerFailure::kInternal, "hash tree failed", tree.status());
  host->Log(absl::StrCat("layer ", job.index, " ", digest, ": ", layout->indexed_size,
                         " bytes laid out", laid_out->in_place ? " in place" : "", ", tree root ",
                         tree->root_hash, ", volume root ", job.expected.verity_root_hash));

  int loop_fd = -1;
  absl::StatusOr<BlockDevice> loop = AttachLoopReadOnly(image, job.work_dir, &loop_fd);
  if (!loop.ok()) return fail(LayerFailure::kInternal, "loop device failed", loop.status());
  auto remove_loop_node = absl::MakeCleanup([&loop] { ::unlink(loop->node.c_str()); });
  VerityTarget target;
  target.device = loop->dev;
  target.data_blocks = tree->data_blocks;
  target.hash_start_block = tree->hash_start_block;
  target.root_hash_hex = job.expected.verity_root_hash;  // from the volume, never from the host
  target.salt_hex = kZeroSaltHex;
  const std::string dm_name = absl::StrCat("layer-", job.index);
  absl::StatusOr<BlockDevice> verity = CreateVerityDevice(dm_name, target, job.work_dir);
  ::close(loop_fd);  // dm holds the loop device now; it clears itself when dm lets go
  if (!verity.ok()) {
    return fail(LayerFailure::kInternal, "dm-verity device failed", verity.status());
  }

  absl::Status status;
  {
    absl::StatusOr<std::unique_ptr<verity::FileByteSource>> source = verity::FileByteSource::Open(verity->node);
    if (!source.ok()) {
      status = source.status();
    } else {
      absl::StatusOr<ExtractStats> stats = ExtractLayerTar(source->get(), job.layer_dir);
      if (stats.ok()) {
        host->Log(absl::StrCat("layer ", job.index, ": ", stats->entries, " entries, ", stats->whiteouts,
                               " whiteouts, ", stats->xattrs, " xattrs (", stats->xattrs_ignored, " left out), ",
                               stats->tar_bytes, " tar bytes read through dm-verity"));
      }
      status = stats.status();
    }
  }
  // dm-verity names the device it reads from (the loop device) in its log.
  std::vector<std::string> kernel = KernelLogLines(absl::StrCat("verity: ", major(loop->dev), ":", minor(loop->dev), ": "));
  RemoveDmDevice(dm_name).IgnoreError();
  ::unlink(verity->node.c_str());
  if (!kernel.empty() || absl::StrContains(status.message(), "Input/output error")) {
    return fail(LayerFailure::kVerification, "verification failed",
                absl::DataLossError(absl::StrCat(status.message(), kernel.empty() ? "" : "; kernel: ",
                                                 absl::StrJoin(kernel, "; "))));
  }
  if (!status.ok()) return fail(LayerFailure::kInternal, "extraction failed", status);
  return absl::OkStatus();
}

}  // namespace guest_pull::guest_agent
