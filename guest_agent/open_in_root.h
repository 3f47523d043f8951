// Opening a path inside a directory tree taken as the root (openat2
// RESOLVE_IN_ROOT): `..` and symlinks, absolute ones too, resolve within
// it, so an image's or a layer's own links never name a file outside it.
#ifndef GUEST_AGENT_OPEN_IN_ROOT_H_
#define GUEST_AGENT_OPEN_IN_ROOT_H_

#include <cstdint>
#include <string>

namespace guest_pull::guest_agent {

// openat2(root_fd, path ("" is the root itself), flags | O_CLOEXEC) with
// RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS; the fd, or -1 with errno set.
int OpenInRoot(int root_fd, const std::string& path, uint64_t flags);

}  // namespace guest_pull::guest_agent

#endif  // GUEST_AGENT_OPEN_IN_ROOT_H_
