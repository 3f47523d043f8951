// A symbolic link to nothing on the way to a path still to be made.
#ifndef SNAPSHOTTER_DANGLING_LINK_H_
#define SNAPSHOTTER_DANGLING_LINK_H_

#include <optional>
#include <string>

namespace snapshotter {

// A symbolic link and what it names.
struct DanglingLink {
  std::string link;
  std::string target;  // "?" if it cannot be read

  // "<link> is a symbolic link to <target>, which does not exist".
  std::string Describe() const;
};

// The missing `path`, or the nearest of its missing ancestors, that is a
// symbolic link to nothing: mkdir cannot make a directory through one
// (EEXIST), though the path does not exist. nullopt if `path` exists, or
// if no missing part of it is such a link.
std::optional<DanglingLink> FindDanglingLink(const std::string& path);

}  // namespace snapshotter

#endif  // SNAPSHOTTER_DANGLING_LINK_H_
