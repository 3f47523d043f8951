// The release version of all binaries built from this repository.
#ifndef SNAPSHOTTER_VERSION_H_
#define SNAPSHOTTER_VERSION_H_

namespace snapshotter {
inline constexpr char kVersion[] = "0.1.0";
}  // namespace snapshotter

#endif  // SNAPSHOTTER_VERSION_H_
