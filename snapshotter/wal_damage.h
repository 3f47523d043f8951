// Damage in a SQLite WAL that SQLite's own recovery cannot see.
//
// Recovery replays a -wal's frames up to the first one that fails its
// checksum (or has other salts) and keeps the transactions committed
// before it; whatever follows is taken for the torn tail of a transaction
// that never finished, or for an older log's leftovers. That is right
// after a crash or a power cut, and wrong when the disk changed a frame it
// had flushed: the transactions after it were acknowledged, and SQLite
// drops them without a word.
//
// The two can be told apart. The daemon writes one transaction at a time
// (group_commit.h) and each is flushed before the next begins
// (synchronous=FULL); after a recovery, writing resumes where it stopped
// (or a new log begins, with other salts). So a frame that continues the
// checksum of a commit frame, and is not a copy of it padding the same
// transaction, was written after that transaction was on disk: found past
// the point where recovery stops, it proves acknowledged transactions
// lost. A torn last transaction, zeros, the leftovers of a torn
// transaction that later writes overwrote in part, or an older log's
// frames never show that.
#ifndef SNAPSHOTTER_WAL_DAMAGE_H_
#define SNAPSHOTTER_WAL_DAMAGE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace snapshotter {

struct WalDamage {
  // Where recovery stops: the frame (1-based; 0: the header, whose own
  // checksum fails, so no frame is replayed) and its byte offset.
  int64_t frame = 0;
  int64_t offset = 0;
  // Transactions recovery keeps (commit frames before the break).
  int64_t kept_commits = 0;
  // Commit frames after the break whose checksums hold: transactions that
  // were written whole and that recovery drops.
  int64_t dropped_commits = 0;

  // "frame N (byte X) of <wal> fails its checksum: ...", for messages.
  std::string Describe(const std::string& wal_path) const;
};

// Reads the -wal at `wal_path` and returns where it is damaged if frames
// after the point where SQLite's recovery stops prove that acknowledged
// transactions follow it; nullopt for an intact log, a torn last
// transaction, zeros or an older log after the end, and for a file that is
// no WAL SQLite would read (missing, short, another magic, version or page
// size: other checks judge those). Errors: the file cannot be read.
absl::StatusOr<std::optional<WalDamage>> FindWalDamage(
    const std::string& wal_path);

}  // namespace snapshotter

#endif  // SNAPSHOTTER_WAL_DAMAGE_H_
