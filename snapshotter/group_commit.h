// Group commit: mutations that arrive while a transaction is being made
// durable are batched into the next one. The first waiting caller leads:
// it runs every queued mutation in one SQLite transaction, each in its own
// savepoint (a refused mutation is rolled back alone and gets its own
// error), runs the batch's flush (the fsync of snapshots/) once if a member
// asks for it, commits with one fsync, and then wakes the others. A batch
// may install any number of empty snapshot directories but at most one
// that holds data (Mutation::installs_data), which is what start-up
// recovery accepts after a crash (store_recovery.h). Every caller returns
// only after its batch's durable commit; if the flush or the COMMIT fails,
// every member of the batch fails with that error and nothing of the batch
// is kept, unless the COMMIT is in doubt (MetaStore::Update): then no
// member's on_rollback runs, and the store takes no more changes.
#ifndef SNAPSHOTTER_GROUP_COMMIT_H_
#define SNAPSHOTTER_GROUP_COMMIT_H_

#include <deque>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "snapshotter/metastore.h"

namespace snapshotter {

// One mutation of a batch.
struct Mutation {
  // Checked first, in the batch: a non-OK verdict (the client gave up)
  // refuses the mutation with it. May be empty.
  std::function<absl::Status()> check;
  // The database work, in the batch's transaction. May do filesystem work
  // that on_rollback undoes.
  std::function<absl::Status(Transaction&)> apply;
  // Runs whenever the mutation did not commit, under the store's lock
  // (ids of a rolled-back mutation are handed out again at once), but not
  // for a COMMIT in doubt. May be empty.
  std::function<void()> on_rollback;
  // Runs after the durable COMMIT, under the store's lock, in batch order;
  // no I/O. May be empty.
  std::function<void()> on_commit;
  // The batch's flush must run before its COMMIT (e.g. the mutation
  // records a layer whose directory entry in snapshots/ must be durable).
  bool flush = false;
  // The mutation installs a snapshot directory that already holds data (a
  // remote layer with files). A batch holds at most one such member, so a
  // crash before the COMMIT leaves at most one non-empty directory beyond
  // the ids the database handed out; empty ones (any number, ids at most
  // kMaxBatch beyond) are interrupted creations too (store_recovery.h).
  bool installs_data = false;
};

class GroupCommitter {
 public:
  // `flush` runs once per batch in which a member needs it, before COMMIT.
  GroupCommitter(MetaStore* store, std::function<absl::Status()> flush)
      : store_(store), flush_(std::move(flush)) {}

  // Runs `m` in the next batch; returns its own result once that batch is
  // durable (or failed).
  absl::Status Run(const Mutation& m);

  // Most mutations in one transaction (so a crash leaves directories at
  // most kMaxBatch ids beyond the database's id counter).
  static constexpr size_t kMaxBatch = 64;

 private:
  struct Pending {
    const Mutation* m;
    absl::Status status;
    bool done = false;
  };
  void RunBatch(const std::vector<Pending*>& batch);

  MetaStore* store_;
  std::function<absl::Status()> flush_;
  absl::Mutex mu_;
  std::deque<Pending*> queue_ ABSL_GUARDED_BY(mu_);
  bool leading_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_GROUP_COMMIT_H_
