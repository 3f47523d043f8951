// Names of snapshot kinds.
#include "snapshotter/snapshot_types.h"

namespace snapshotter {

absl::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kView:
      return "view";
    case Kind::kActive:
      return "active";
    case Kind::kCommitted:
      return "committed";
    case Kind::kUnknown:
      break;
  }
  return "unknown";
}

}  // namespace snapshotter
