// ThreadSanitizer annotations for Debian's absl::Mutex and absl::CondVar.
//
// Debian's libabsl_synchronization is not built with -fsanitize=thread, so
// the __tsan_mutex_* calls its mutex.cc makes under TSan are compiled out:
// TSan sees neither the locks nor the happens-before they give, and reports
// every access to data guarded by an absl::Mutex as a race. Suppressing
// those reports would hide our real races too. Instead this file, linked
// only into --config=tsan builds (base:tsan_absl_mutex), interposes the
// exported Mutex and CondVar members: each wrapper tells TSan what abseil's
// own TSan build would (pre/post lock and unlock, destroy; a CondVar wait or
// an Await releases and re-acquires, and a condition is evaluated holding
// the mutex) and calls the library's function,
// found with dlsym(RTLD_NEXT). The executable's definitions win over the
// library's for every caller, gRPC included.
#if defined(__SANITIZE_THREAD__)

#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/base/options.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace {

#define TSAN_ABSL_STR2(x) #x
#define TSAN_ABSL_STR(x) TSAN_ABSL_STR2(x)

// The mangled name of absl::<inline namespace>::<suffix>.
std::string Mangled(const char* suffix) {
  const std::string ns = TSAN_ABSL_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  return "_ZN4absl" + std::to_string(ns.size()) + ns + suffix;
}

template <typename Fn>
Fn Next(const char* suffix) {
  const std::string name = Mangled(suffix);
  void* fn = dlsym(RTLD_NEXT, name.c_str());
  if (fn == nullptr) {
    fprintf(stderr, "tsan_absl_mutex: %s not found in the abseil library\n",
            name.c_str());
    abort();
  }
  return reinterpret_cast<Fn>(fn);
}

using MuFn = void (*)(absl::Mutex*);
using MuTryFn = bool (*)(absl::Mutex*);
using MuCondFn = void (*)(absl::Mutex*, const absl::Condition&);
using MuCondDurFn = bool (*)(absl::Mutex*, const absl::Condition&,
                             absl::Duration);
using MuCondTimeFn = bool (*)(absl::Mutex*, const absl::Condition&,
                              absl::Time);
using CvWaitFn = void (*)(absl::CondVar*, absl::Mutex*);
using CvWaitDurFn = bool (*)(absl::CondVar*, absl::Mutex*, absl::Duration);
using CvWaitTimeFn = bool (*)(absl::CondVar*, absl::Mutex*, absl::Time);

// The library's functions call each other through the PLT too (e.g.
// CondVar::WaitWithTimeout calls WaitWithDeadline): only the outermost
// call on a thread is annotated.
thread_local int depth = 0;

// Runs `call` with annotations `before` and `after` unless an outer wrapper
// on this thread already does.
template <typename Before, typename Call, typename After>
auto Annotated(Before before, Call call, After after) {
  if (depth > 0) return call();
  ++depth;
  before();
  auto result = call();
  after(result);
  --depth;
  return result;
}

void Locked(void* mu, unsigned flags) {
  __tsan_mutex_post_lock(mu, flags, 0);
}
void PreLock(void* mu, unsigned flags) { __tsan_mutex_pre_lock(mu, flags); }
void PreUnlock(void* mu, unsigned flags) { __tsan_mutex_pre_unlock(mu, flags); }
void Unlocked(void* mu, unsigned flags) { __tsan_mutex_post_unlock(mu, flags); }

// Around a call that releases `mu` and takes it again before returning.
template <typename Call>
auto ReleasedDuring(void* mu, Call call) {
  return Annotated(
      [&] {
        PreUnlock(mu, 0);
        Unlocked(mu, 0);
      },
      call,
      [&](const auto&) {
        PreLock(mu, 0);
        Locked(mu, 0);
      });
}

// Around a call that takes `mu` (`flags`: read, try); `ok` tells whether a
// try succeeded.
template <typename Call, typename Ok>
auto Locking(void* mu, unsigned flags, Call call, Ok ok) {
  return Annotated([&] { PreLock(mu, flags); }, call, [&](const auto& r) {
    Locked(mu, flags | (ok(r) ? 0 : __tsan_mutex_try_lock_failed));
  });
}

// Around a call that releases `mu`.
template <typename Call>
auto Unlocking(void* mu, unsigned flags, Call call) {
  return Annotated([&] { PreUnlock(mu, flags); }, call,
                   [&](const auto&) { Unlocked(mu, flags); });
}

auto Always = [](const auto&) { return true; };

// A condition of Await or LockWhen is evaluated inside the library while
// the mutex is held, by the waiting thread or by another one handing the
// mutex over (in Unlock, or in its own Await or CondVar wait). Inside the
// calls the wrappers mark as a lock or an unlock TSan ignores it; inside an
// Await or a CondVar wait, which the wrappers mark as releasing the mutex
// for the whole call, TSan would take it for an access without the mutex.
// So the evaluation is a critical section of its own: it acquires what the
// mutex's holders released, and releases what it read to the next holder.
// (Under a reader lock the release orders one reader before the next, which
// abseil does not; our code waits on conditions under writer locks only.)
struct HeldCondition {
  absl::Mutex* mu;
  const absl::Condition* cond;
};
bool EvalHeld(HeldCondition* held) {
  __tsan_acquire(held->mu);
  bool result = held->cond->Eval();
  __tsan_release(held->mu);
  return result;
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

Mutex::~Mutex() {
  static const MuFn next = Next<MuFn>("5MutexD1Ev");
  if (depth == 0) __tsan_mutex_destroy(this, 0);
  next(this);
}

void Mutex::Lock() {
  static const MuFn next = Next<MuFn>("5Mutex4LockEv");
  Locking(this, 0, [&] { return (next(this), 0); }, Always);
}

void Mutex::Unlock() {
  static const MuFn next = Next<MuFn>("5Mutex6UnlockEv");
  Unlocking(this, 0, [&] { return (next(this), 0); });
}

bool Mutex::TryLock() {
  static const MuTryFn next = Next<MuTryFn>("5Mutex7TryLockEv");
  return Locking(this, __tsan_mutex_try_lock, [&] { return next(this); },
                 [](bool ok) { return ok; });
}

void Mutex::ReaderLock() {
  static const MuFn next = Next<MuFn>("5Mutex10ReaderLockEv");
  Locking(this, __tsan_mutex_read_lock, [&] { return (next(this), 0); },
          Always);
}

void Mutex::ReaderUnlock() {
  static const MuFn next = Next<MuFn>("5Mutex12ReaderUnlockEv");
  Unlocking(this, __tsan_mutex_read_lock, [&] { return (next(this), 0); });
}

bool Mutex::ReaderTryLock() {
  static const MuTryFn next = Next<MuTryFn>("5Mutex13ReaderTryLockEv");
  return Locking(this, __tsan_mutex_read_lock | __tsan_mutex_try_lock,
                 [&] { return next(this); }, [](bool ok) { return ok; });
}

void Mutex::LockWhen(const Condition& cond) {
  static const MuCondFn next =
      Next<MuCondFn>("5Mutex8LockWhenERKNS0_9ConditionE");
  HeldCondition held{this, &cond};
  const Condition annotated(&EvalHeld, &held);
  Locking(
      this, 0, [&] { return (next(this, annotated), 0); }, Always);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static const MuCondDurFn next = Next<MuCondDurFn>(
      "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  HeldCondition held{this, &cond};
  const Condition annotated(&EvalHeld, &held);
  return Locking(
      this, 0, [&] { return next(this, annotated, timeout); }, Always);
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  static const MuCondTimeFn next = Next<MuCondTimeFn>(
      "5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  HeldCondition held{this, &cond};
  const Condition annotated(&EvalHeld, &held);
  return Locking(
      this, 0, [&] { return next(this, annotated, deadline); }, Always);
}

void Mutex::Await(const Condition& cond) {
  static const MuCondFn next = Next<MuCondFn>("5Mutex5AwaitERKNS0_9ConditionE");
  HeldCondition held{this, &cond};
  const Condition annotated(&EvalHeld, &held);
  ReleasedDuring(this, [&] { return (next(this, annotated), 0); });
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  static const MuCondDurFn next = Next<MuCondDurFn>(
      "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  HeldCondition held{this, &cond};
  const Condition annotated(&EvalHeld, &held);
  return ReleasedDuring(this, [&] { return next(this, annotated, timeout); });
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  static const MuCondTimeFn next = Next<MuCondTimeFn>(
      "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  HeldCondition held{this, &cond};
  const Condition annotated(&EvalHeld, &held);
  return ReleasedDuring(this, [&] { return next(this, annotated, deadline); });
}

void CondVar::Wait(Mutex* mu) {
  static const CvWaitFn next = Next<CvWaitFn>("7CondVar4WaitEPNS0_5MutexE");
  ReleasedDuring(mu, [&] { return (next(this, mu), 0); });
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  static const CvWaitDurFn next = Next<CvWaitDurFn>(
      "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  return ReleasedDuring(mu, [&] { return next(this, mu, timeout); });
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  static const CvWaitTimeFn next = Next<CvWaitTimeFn>(
      "7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  return ReleasedDuring(mu, [&] { return next(this, mu, deadline); });
}

ABSL_NAMESPACE_END
}  // namespace absl

#endif  // __SANITIZE_THREAD__
