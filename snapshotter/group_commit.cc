// Group commit over the metadata store.
#include "snapshotter/group_commit.h"

#include <vector>

#include "base/status_macros.h"

namespace snapshotter {

absl::Status GroupCommitter::Run(const Mutation& m) {
  Pending self{&m};
  std::vector<Pending*> batch;
  {
    absl::MutexLock lock(&mu_);
    queue_.push_back(&self);
    // Until its batch is over or it is to lead the next one. The mutex
    // evaluates the condition at each unlock and wakes only a waiter whose
    // condition holds: no waiter of a later batch wakes to sleep again.
    auto ready = [&] {
      return self.done || (!leading_ && queue_.front() == &self);
    };
    mu_.Await(absl::Condition(&ready));
    if (self.done) return self.status;
    leading_ = true;
    // The longest prefix of the queue with at most one member installing
    // a directory that holds data.
    size_t n = 0;
    bool with_data = false;
    for (; n < queue_.size() && n < kMaxBatch; ++n) {
      if (queue_[n]->m->installs_data) {
        if (with_data) break;
        with_data = true;
      }
    }
    batch.assign(queue_.begin(), queue_.begin() + n);
    queue_.erase(queue_.begin(), queue_.begin() + n);
  }
  RunBatch(batch);
  absl::MutexLock lock(&mu_);
  for (Pending* p : batch) p->done = true;
  leading_ = false;
  return self.status;
}

void GroupCommitter::RunBatch(const std::vector<Pending*>& batch) {
  std::vector<Pending*> applied;
  Pending* in_flight = nullptr;  // applied, its rollback not yet settled
  absl::Status s = store_->Update(
      [&](Transaction& tx) -> absl::Status {
        bool flush = false;
        for (Pending* p : batch) {
          RETURN_IF_ERROR(tx.Exec("SAVEPOINT member"));
          in_flight = p;
          absl::Status r = p->m->check ? p->m->check() : absl::OkStatus();
          if (r.ok()) r = p->m->apply(tx);
          if (!r.ok()) {
            p->status = r;
            RETURN_IF_ERROR(tx.Exec("ROLLBACK TO member"));
            RETURN_IF_ERROR(tx.Exec("RELEASE member"));
            in_flight = nullptr;
            if (p->m->on_rollback) p->m->on_rollback();
            continue;
          }
          RETURN_IF_ERROR(tx.Exec("RELEASE member"));
          in_flight = nullptr;
          applied.push_back(p);
          flush = flush || p->m->flush;
        }
        if (flush && flush_) RETURN_IF_ERROR(flush_());
        return absl::OkStatus();
      },
      // The whole transaction is gone: undo every member's work.
      [&] {
        if (in_flight != nullptr && in_flight->m->on_rollback) {
          in_flight->m->on_rollback();
        }
        for (Pending* p : applied) {
          if (p->m->on_rollback) p->m->on_rollback();
        }
      },
      [&] {
        for (Pending* p : applied) {
          if (p->m->on_commit) p->m->on_commit();
        }
      });
  if (s.ok()) return;
  // Refused members keep their own error (they were rolled back alone);
  // every other one, applied or not reached, fails with the batch's.
  for (Pending* p : batch) {
    if (p->status.ok()) p->status = s;
  }
}

}  // namespace snapshotter
