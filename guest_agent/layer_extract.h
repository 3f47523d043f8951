// Extracts one layer tar into its own directory in the form overlayfs takes
// as a lower layer: a whiteout `.wh.X` becomes the character device 0/0 `X`,
// an opaque marker `.wh..wh..opq` sets trusted.overlay.opaque=y on its
// directory (the same conversion the tarfs index makes). Every path is
// resolved inside the layer directory (openat2 RESOLVE_IN_ROOT), so no entry
// or symlink can write outside it. The members' PAX xattrs (file
// capabilities among them) are set as containerd's applier sets them: after
// the owner (which would clear security.capability), before the mode; one
// the filesystem does not support is counted and left out.
#ifndef GUEST_AGENT_LAYER_EXTRACT_H_
#define GUEST_AGENT_LAYER_EXTRACT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "kata_volume/verity/byte_source.h"

namespace guest_pull::guest_agent {

struct ExtractStats {
  uint64_t entries = 0;
  uint64_t whiteouts = 0;   // including opaque markers
  uint64_t skipped = 0;     // unsupported member types, escaping paths
  uint64_t xattrs = 0;      // PAX xattrs set
  uint64_t xattrs_ignored = 0;  // not supported here (ENOTSUP), or trusted.overlay.*
  uint64_t tar_bytes = 0;   // bytes consumed from the source
};

// Reads the tar from `source` to its end-of-archive marker and writes it
// below `dir` (which must exist). Ownership, modes and mtimes (of
// directories too, set at the end; of a symlink, the link's) are kept; a
// "./" member's apply to `dir` itself.
absl::StatusOr<ExtractStats> ExtractLayerTar(verity::ByteSource* source, const std::string& dir);

}  // namespace guest_pull::guest_agent

#endif  // GUEST_AGENT_LAYER_EXTRACT_H_
