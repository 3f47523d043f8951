// Test helpers for trees deeper than PATH_MAX: a chain of directories made
// by descriptors (mkdirat, openat) since no whole path reaches its bottom,
// and a run under a limit of descriptors, to see a walk of it needs few.
#ifndef SNAPSHOTTER_DEEP_TREE_H_
#define SNAPSHOTTER_DEEP_TREE_H_

#include <functional>
#include <string>

namespace snapshotter {

// Makes `levels` nested directories named `name` (mode 0755) under the
// existing directory `top`; returns a descriptor of the deepest one (the
// caller closes it), or -1 with errno set.
int MakeDeepTree(const std::string& top, int levels, const std::string& name);

// Runs `body` in a child process (fork) that may open no descriptor
// numbered `limit` or above (RLIMIT_NOFILE); whether it returned true.
bool TrueWithFdLimit(int limit, const std::function<bool()>& body);

}  // namespace snapshotter

#endif  // SNAPSHOTTER_DEEP_TREE_H_
