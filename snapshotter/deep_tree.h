// Test helper: a chain of directories deeper than PATH_MAX, made by
// descriptors (mkdirat, openat) since no whole path reaches its bottom.
#ifndef SNAPSHOTTER_DEEP_TREE_H_
#define SNAPSHOTTER_DEEP_TREE_H_

#include <string>

namespace snapshotter {

// Makes `levels` nested directories named `name` (mode 0755) under the
// existing directory `top`; returns a descriptor of the deepest one (the
// caller closes it), or -1 with errno set.
int MakeDeepTree(const std::string& top, int levels, const std::string& name);

}  // namespace snapshotter

#endif  // SNAPSHOTTER_DEEP_TREE_H_
