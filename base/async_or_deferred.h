// Work started on a thread of its own, or, when no thread can be started
// (a tight TasksMax, RLIMIT_NPROC), run by the caller when it asks for the
// result: the caller never sees std::system_error.
#ifndef BASE_ASYNC_OR_DEFERRED_H_
#define BASE_ASYNC_OR_DEFERRED_H_

#include <future>
#include <system_error>
#include <utility>

namespace base {

template <class F>
auto AsyncOrDeferred(F f) -> std::future<decltype(f())> {
  try {
    return std::async(std::launch::async, f);
  } catch (const std::system_error&) {
    return std::async(std::launch::deferred, std::move(f));
  }
}

}  // namespace base

#endif  // BASE_ASYNC_OR_DEFERRED_H_
