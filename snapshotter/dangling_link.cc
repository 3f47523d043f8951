// See dangling_link.h.
#include "snapshotter/dangling_link.h"

#include <errno.h>
#include <sys/stat.h>

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace snapshotter {

std::string DanglingLink::Describe() const {
  return absl::StrCat(link, " is a symbolic link to ", target,
                      ", which does not exist");
}

std::optional<DanglingLink> FindDanglingLink(const std::string& path) {
  struct stat st;
  for (std::filesystem::path p = path;
       p != p.parent_path() && stat(p.c_str(), &st) != 0 && errno == ENOENT;
       p = p.parent_path()) {
    if (lstat(p.c_str(), &st) != 0) continue;  // missing: its parent next
    std::error_code ec;
    std::filesystem::path target = std::filesystem::read_symlink(p, ec);
    return DanglingLink{p.string(), ec ? "?" : target.string()};
  }
  return std::nullopt;
}

}  // namespace snapshotter
