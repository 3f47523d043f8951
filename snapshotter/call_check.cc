// Per-thread RPC liveness check.
#include "snapshotter/call_check.h"

#include <utility>

namespace snapshotter {
namespace {

thread_local ScopedCallCheck* current = nullptr;
thread_local const std::function<absl::Status()>* current_check = nullptr;

}  // namespace

ScopedCallCheck::ScopedCallCheck(std::function<absl::Status()> check)
    : check_(std::move(check)), previous_(current) {
  current = this;
  current_check = &check_;
}

ScopedCallCheck::~ScopedCallCheck() {
  current = previous_;
  current_check = previous_ == nullptr ? nullptr : &previous_->check_;
}

absl::Status CheckCall() {
  if (current_check == nullptr || !*current_check) return absl::OkStatus();
  return (*current_check)();
}

}  // namespace snapshotter
