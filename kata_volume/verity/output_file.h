// Output files of the verity tool: replaced whole, never destroyed on error.
#ifndef KATA_VOLUME_VERITY_OUTPUT_FILE_H_
#define KATA_VOLUME_VERITY_OUTPUT_FILE_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace guest_pull::verity {

// The file an output named `path` replaces: `path` itself when it does not
// exist or is a regular file; the file a symbolic link at `path` leads to
// (followed link by link, so the links stay and their target is replaced).
// InvalidArgument, naming it, when that is something else (a device, a
// FIFO, a directory) or the links loop; NotFound when it does not exist
// and neither does its directory (which no output creates).
absl::StatusOr<std::string> ResolveOutputPath(const std::string& path);

// Writes a new file beside `resolved` (a ResolveOutputPath result) with
// `write`, then renames it over `resolved`: the new file has the mode of
// the one it replaces (0644 if none); links to the old one keep it. The
// new file has no name until written (O_TMPFILE), so a kill meanwhile
// leaves nothing; on a file system without O_TMPFILE it is
// `resolved`.tmp.XXXXXX from the start, and a kill leaves it. With
// `flush`, the file is
// fsync'd before the rename and its directory after. On any error only
// the new file is removed: whatever `resolved` was stays as it was. Errors
// name `resolved`, which is what the caller asked for.
absl::Status ReplaceFile(const std::string& resolved, bool flush,
                         const std::function<absl::Status(int fd)>& write);

// write(2) of all of `data`, retried on EINTR; errors name `path`.
absl::Status WriteAllTo(int fd, const char* data, size_t size, const std::string& path);

}  // namespace guest_pull::verity

#endif  // KATA_VOLUME_VERITY_OUTPUT_FILE_H_
