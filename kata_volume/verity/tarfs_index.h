// tarfs index builder: the metadata that tardev-snapshotter and genpolicy
// append after a layer tar before computing its dm-verity root hash (Microsoft
// kata fork, src/tardev-snapshotter/tarindex). Reproduces that code's tree
// rules (path cleaning, whiteouts, opaque dirs, shared hardlink nodes,
// replacement of duplicates, long symlink targets), its breadth-first inode
// numbering and its on-disk layout -- including the end-offset rounding that
// counts the entry names twice -- because the root hash must match bit for bit.
#ifndef KATA_VOLUME_VERITY_TARFS_INDEX_H_
#define KATA_VOLUME_VERITY_TARFS_INDEX_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kata_volume/verity/tar_reader.h"

namespace guest_pull::verity {

// Sizes of the on-disk structures (all integers little-endian).
inline constexpr uint64_t kTarfsInodeSize = 32;
inline constexpr uint64_t kTarfsDirEntrySize = 32;
inline constexpr uint64_t kTarfsAlignment = 4096;
inline constexpr uint64_t kTarfsSuperBlockTail = 512;  // superblock starts 512 bytes before the end

// Accumulates tar members (in archive order) and serializes the index.
class TarfsIndexBuilder {
 public:
  TarfsIndexBuilder();
  ~TarfsIndexBuilder();
  TarfsIndexBuilder(const TarfsIndexBuilder&) = delete;
  TarfsIndexBuilder& operator=(const TarfsIndexBuilder&) = delete;

  // Applies one member. Members the reference skips (unknown types,
  // unparsable modes, escaping paths, ...) are ignored and counted.
  void AddEntry(const TarEntry& entry);

  // Returns the bytes appended after a tar of `contents_size` bytes. The
  // indexed file (tar + index) is always a multiple of 4096 bytes. Fails on
  // trees the reference cannot serialize (hardlink cycles, runaway sharing).
  // Can be called once.
  absl::StatusOr<std::string> Serialize(uint64_t contents_size);

  // Members ignored so far, with the reason (for diagnostics).
  const std::vector<std::string>& skipped() const { return skipped_; }

 private:
  struct Node;
  Node* NewNode();
  Node* Traverse(const std::vector<std::string>& path);
  void AddHardlink(const std::string& name, const std::string& link_name);
  void Skip(std::string reason) { skipped_.push_back(std::move(reason)); }
  // Breadth-first walk with the reference's semantics (shared nodes visited
  // once per path); fails when it would not terminate.
  absl::Status VisitBreadthFirst(const std::function<void(Node*)>& visit);
  absl::Status CheckAcyclic();

  std::vector<std::unique_ptr<Node>> arena_;
  Node* root_;
  std::vector<std::string> long_link_targets_;  // in archive order
  std::vector<std::string> skipped_;
};

}  // namespace guest_pull::verity

#endif  // KATA_VOLUME_VERITY_TARFS_INDEX_H_
