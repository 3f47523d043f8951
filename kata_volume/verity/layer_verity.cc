// Layer verity: digest, diff_id and tardev dm-verity root hash in one pass.
#include "kata_volume/verity/layer_verity.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kata_volume/verity/background_sink.h"
#include "kata_volume/verity/byte_source.h"
#include "kata_volume/verity/sha256.h"
#include "kata_volume/verity/tar_reader.h"
#include "kata_volume/verity/tarfs_index.h"
#include "kata_volume/verity/verity_tree.h"
#include "base/status_macros.h"

namespace guest_pull::verity {

namespace {

constexpr char kPasswdPath[] = "etc/passwd";
constexpr char kPasswdWhiteout[] = "etc/.wh.passwd";
constexpr char kGroupPath[] = "etc/group";
constexpr char kGroupWhiteout[] = "etc/.wh.group";
constexpr char kWhiteoutMarker[] = "WHITEOUT";
constexpr uint64_t kMaxUserFileSize = 64 * 1024 * 1024;
constexpr size_t kReadChunk = 256 << 10;  // bytes per read of the tar stream

using Sink = std::function<absl::Status(const char*, size_t)>;

absl::Status ReadMemberInto(TarReader* reader, const TarEntry& e, std::string* out) {
  if (e.size > kMaxUserFileSize) {
    return absl::InvalidArgumentError(absl::StrCat(e.path, " is too large (", e.size, " bytes)"));
  }
  char buf[16 * 1024];
  while (true) {
    ASSIGN_OR_RETURN(size_t n, reader->ReadData(buf, sizeof(buf)));
    if (n == 0) return absl::OkStatus();
    out->append(buf, n);
  }
}

// genpolicy's reading of etc/passwd and etc/group: matches the raw header
// path, appends repeated copies and stops looking once both were seen.
class UserFileCapture {
 public:
  absl::Status Observe(TarReader* reader, const TarEntry& e, LayerVerity* result) {
    if (found_passwd_ && found_group_) return absl::OkStatus();
    const std::string& p = e.header_path;
    if (p == kPasswdPath) {
      found_passwd_ = true;
      if (!result->passwd.has_value()) result->passwd.emplace();
      return ReadMemberInto(reader, e, &*result->passwd);
    }
    if (p == kPasswdWhiteout) {
      found_passwd_ = true;
      result->passwd = kWhiteoutMarker;
    } else if (p == kGroupPath) {
      found_group_ = true;
      if (!result->group.has_value()) result->group.emplace();
      return ReadMemberInto(reader, e, &*result->group);
    } else if (p == kGroupWhiteout) {
      found_group_ = true;
      result->group = kWhiteoutMarker;
    }
    return absl::OkStatus();
  }

 private:
  bool found_passwd_ = false;
  bool found_group_ = false;
};

absl::StatusOr<LayerVerity> ProcessLayer(const std::string& path, const LayerVerityOptions& options,
                                         const Sink& extra_sink) {
  ASSIGN_OR_RETURN(BlobCompression compression, DetectBlobCompression(path));
  if (compression == BlobCompression::kZstd) {
    return absl::UnimplementedError(absl::StrCat(path, ": zstd-compressed layers are not supported"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<FileByteSource> file, FileByteSource::Open(path));
  const bool gzip = compression == BlobCompression::kGzip;

  // One pass on every core: the dm-verity tree and the diff_id (a SHA-256
  // each over every tar byte, the bulk of the work) and the output file (if
  // any) are fed on background threads; this one only reads, inflates and
  // parses the tar. An uncompressed blob is its own tar, so its digest is
  // the diff_id.
  Sha256Hasher blob_hash, tar_hash;
  VerityTreeBuilder tree;
  absl::Status extra_status;  // the first error of extra_sink (writer thread)
  std::vector<BackgroundSink::Consumer> consumers = {
      [&tree](const char* d, size_t n) { tree.Update(d, n); },
      [&tar_hash](const char* d, size_t n) { tar_hash.Update(d, n); }};
  if (extra_sink) {
    consumers.push_back([&](const char* d, size_t n) {
      if (extra_status.ok()) extra_status = extra_sink(d, n);
    });
  }
  BackgroundSink tar_consumers(std::move(consumers), kReadChunk, 8);
  std::unique_ptr<ByteSource> source = std::move(file);
  if (gzip) {
    source = std::make_unique<GzipByteSource>(std::make_unique<ObservedByteSource>(
        std::move(source), [&](const char* d, size_t n) {
          blob_hash.Update(d, n);
          return absl::OkStatus();
        }));
  }
  Sink tar_sink = [&](const char* d, size_t n) -> absl::Status {
    tar_consumers.Push(d, n);
    return absl::OkStatus();
  };
  // The buffer above the observer hands the hashes large chunks and serves
  // the tar headers from memory.
  BufferedByteSource tar_stream(std::make_unique<ObservedByteSource>(std::move(source), tar_sink),
                                kReadChunk);

  LayerVerity result;
  TarReader reader(&tar_stream);
  TarfsIndexBuilder index;
  UserFileCapture capture;
  while (true) {
    absl::StatusOr<const TarEntry*> entry = reader.Next();
    if (!entry.ok()) {
      return absl::Status(entry.status().code(), absl::StrCat(path, ": ", entry.status().message()));
    }
    if (*entry == nullptr) break;
    index.AddEntry(**entry);
    if (options.capture_user_files) {
      if (absl::Status s = capture.Observe(&reader, **entry, &result); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
      }
    }
  }
  absl::StatusOr<uint64_t> contents_size = reader.Finish();
  if (!contents_size.ok()) {
    return absl::Status(contents_size.status().code(),
                        absl::StrCat(path, ": ", contents_size.status().message()));
  }
  absl::StatusOr<std::string> index_bytes = index.Serialize(*contents_size);
  if (!index_bytes.ok()) {
    return absl::Status(index_bytes.status().code(),
                        absl::StrCat(path, ": ", index_bytes.status().message()));
  }
  tar_consumers.Finish();  // the tree, tar_hash and the output are ours again
  if (!extra_status.ok()) return extra_status;
  tree.Update(*index_bytes);
  if (extra_sink) {
    RETURN_IF_ERROR(extra_sink(index_bytes->data(), index_bytes->size()));
  }
  ASSIGN_OR_RETURN(std::string root, tree.FinishHex());

  result.diff_id = absl::StrCat("sha256:", tar_hash.FinishHex());
  result.digest = gzip ? absl::StrCat("sha256:", blob_hash.FinishHex()) : result.diff_id;
  result.root_hash = root;
  result.tar_size = *contents_size;
  result.indexed_size = *contents_size + index_bytes->size();
  result.skipped_entries = index.skipped();
  return result;
}

}  // namespace

absl::StatusOr<LayerVerity> ComputeLayerVerity(const std::string& path,
                                               const LayerVerityOptions& options) {
  return ProcessLayer(path, options, nullptr);
}

absl::StatusOr<LayerVerity> WriteIndexedLayer(const std::string& layer_path,
                                              const std::string& output_path) {
  int fd = ::open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("cannot create ", output_path, ": ", strerror(errno)));
  }
  Sink write_sink = [&](const char* d, size_t n) -> absl::Status {
    while (n > 0) {
      ssize_t w = ::write(fd, d, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        return absl::InternalError(absl::StrCat("cannot write ", output_path, ": ", strerror(errno)));
      }
      d += w;
      n -= static_cast<size_t>(w);
    }
    return absl::OkStatus();
  };
  absl::StatusOr<LayerVerity> result = ProcessLayer(layer_path, LayerVerityOptions{}, write_sink);
  if (::close(fd) != 0 && result.ok()) {
    return absl::InternalError(absl::StrCat("cannot close ", output_path, ": ", strerror(errno)));
  }
  if (!result.ok()) ::unlink(output_path.c_str());
  return result;
}

}  // namespace guest_pull::verity
