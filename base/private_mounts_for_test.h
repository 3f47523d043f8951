// Tests that need a mount of their own (a read-only bind, a tiny tmpfs)
// without touching the machine's: the work runs in a forked child with a
// private mount namespace, and only its output comes back.
#ifndef BASE_PRIVATE_MOUNTS_FOR_TEST_H_
#define BASE_PRIVATE_MOUNTS_FOR_TEST_H_

#include <functional>
#include <optional>
#include <string>

namespace base {

// Forks a child that unshares its mount namespace (mounts made private,
// so nothing reaches the parent's), runs `setup` (the mounts; false: it
// could not), then `body`, whose string is returned. nullopt when the
// namespace or `setup` could not be made (no CAP_SYS_ADMIN: the caller
// skips; a child that dies in `body` returns a line saying so, which no
// expectation matches). The child is given 30 s (SIGALRM).
std::optional<std::string> RunWithPrivateMounts(const std::function<bool()>& setup,
                                                const std::function<std::string()>& body);

// For `setup`: binds `dir` onto itself read-only.
bool BindReadOnly(const std::string& dir);

}  // namespace base

#endif  // BASE_PRIVATE_MOUNTS_FOR_TEST_H_
