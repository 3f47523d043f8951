// Per-thread RPC liveness check.
#include "snapshotter/call_check.h"

#include <utility>

namespace snapshotter {
namespace {

thread_local const std::function<absl::Status()>* current = nullptr;

}  // namespace

ScopedCallCheck::ScopedCallCheck(std::function<absl::Status()> check)
    : check_(std::move(check)), previous_(current) {
  current = &check_;
}

ScopedCallCheck::~ScopedCallCheck() { current = previous_; }

absl::Status CheckCall() {
  if (current == nullptr || !*current) return absl::OkStatus();
  return (*current)();
}

std::function<absl::Status()> CurrentCallCheck() {
  return current == nullptr ? nullptr : *current;
}

}  // namespace snapshotter
