// Layer verity: streams a layer blob (.tar, .tar.gz or .tar.zst) once and computes its
// digest, diff_id, the tarfs-indexed size and the dm-verity root hash that
// genpolicy/tardev expect, plus the layer's etc/passwd and etc/group (what
// genpolicy stores in its layer cache).
#ifndef KATA_VOLUME_VERITY_LAYER_VERITY_H_
#define KATA_VOLUME_VERITY_LAYER_VERITY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace guest_pull::verity {

// Results for one layer.
struct LayerVerity {
  std::string digest;     // "sha256:<hex>" of the blob as given (compressed or not)
  std::string diff_id;    // "sha256:<hex>" of the uncompressed tar
  std::string root_hash;  // dm-verity root hash (hex) of tar + tarfs index
  uint64_t tar_size = 0;      // uncompressed tar size ("contents size")
  uint64_t indexed_size = 0;  // tar + index, a multiple of 4096
  // etc/passwd and etc/group as genpolicy reads them from this layer:
  // contents, "WHITEOUT" when the layer deletes the file, nullopt if absent.
  std::optional<std::string> passwd;
  std::optional<std::string> group;
  std::vector<std::string> skipped_entries;  // members the index ignores, with reasons
};

// An uncompressed layer in a regular file that already ends with a tarfs
// index (it was indexed before: by AppendIndexInPlace, or a copy of what
// WriteIndexedLayer writes). Its tar is only its first bytes, but a tar
// reader takes the index for trailing tar data, so hashing it as a layer
// gives the hash of the tar, its index and a second index over both.
// kRefuse: FailedPrecondition naming the file and its tar's size, before
// any read of the tar. kHashAsTar: the whole file is the layer, as genpolicy
// and the guest take a blob that really is such a file. Pipes and
// compressed blobs are not checked (read as streams, hashed as tar).
enum class IndexedInput { kRefuse, kHashAsTar };

// Options for ComputeLayerVerity.
struct LayerVerityOptions {
  bool capture_user_files = true;  // fill passwd/group
  // A FIFO (a pipe: /dev/stdin of `... |`) is read as a stream, waiting
  // for its writer. Otherwise it is refused without a read: a blob of an
  // OCI layout must be a regular file.
  bool accept_pipe = false;
  // The `cache` of an OCI layout hashes its blobs as genpolicy does.
  IndexedInput indexed_input = IndexedInput::kHashAsTar;
  // A layer of no tar bytes at all (an empty file, an empty compressed
  // stream, a pipe whose writer failed before writing) is refused
  // (InvalidArgument) instead of being hashed as an empty tar, which tar
  // readers (and genpolicy) accept.
  bool refuse_empty = false;
};

// What WriteIndexedLayer and AppendIndexInPlace refuse.
struct IndexChecks {
  IndexedInput indexed_input = IndexedInput::kRefuse;
  bool refuse_empty = false;
};

// Streams `path` once (gzip or zstd detected by magic; the digest is the
// compressed blob's, the diff_id and root hash the tar's).
absl::StatusOr<LayerVerity> ComputeLayerVerity(const std::string& path,
                                               const LayerVerityOptions& options = {});

// Writes the indexed file (uncompressed tar followed by the tarfs index) to
// `output_path` -- the exact bytes the root hash covers -- and returns the
// same result as ComputeLayerVerity. `layer_path` may be a pipe. With
// kRefuse, an indexed layer file is refused and the output left as it was
// (as is an empty layer with refuse_empty).
absl::StatusOr<LayerVerity> WriteIndexedLayer(const std::string& layer_path,
                                              const std::string& output_path,
                                              const IndexChecks& checks = {});

// Makes the uncompressed tar at `tar_path` the indexed file itself: appends
// the tarfs index after its bytes, which are read but never written (no
// copy of the layer, where WriteIndexedLayer writes one). Returns what
// WriteIndexedLayer returns. InvalidArgument for a compressed layer
// (WriteIndexedLayer takes it) or a path that is not a regular file;
// Aborted if the file changed while it was read (its size or change time;
// nothing written then); on an error after the index was written in part,
// the file is cut back to its tar. A writer racing the final check and the
// index's write is not detected: the file must be the caller's alone.
// With kRefuse, a file that already ends with an index is refused before
// it is opened for writing; with refuse_empty, an empty file is left empty.
absl::StatusOr<LayerVerity> AppendIndexInPlace(const std::string& tar_path,
                                               const IndexChecks& checks = {});

}  // namespace guest_pull::verity

#endif  // KATA_VOLUME_VERITY_LAYER_VERITY_H_
