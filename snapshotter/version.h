// The release version of all binaries built from this repository.
#ifndef SNAPSHOTTER_VERSION_H_
#define SNAPSHOTTER_VERSION_H_

namespace guest_pull {
inline constexpr char kVersion[] = "0.1.0";
}  // namespace guest_pull

#endif  // SNAPSHOTTER_VERSION_H_
