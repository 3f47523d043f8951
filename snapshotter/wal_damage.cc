// Finding damage in a SQLite WAL that its recovery would replay around.
#include "snapshotter/wal_damage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/errno_error.h"

namespace snapshotter {
namespace {

// SQLite's WAL format (https://www.sqlite.org/fileformat2.html#walformat):
// a 32-byte header, then frames of a 24-byte header and one page. Integers
// are big-endian; the checksums are over 32-bit words read big-endian when
// the magic's low bit is set, else little-endian.
constexpr uint32_t kMagic = 0x377f0682;
constexpr uint32_t kVersion = 3007000;
constexpr int64_t kHeaderBytes = 32;
constexpr int64_t kFrameHeaderBytes = 24;

uint32_t BigEndian32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
         (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

uint32_t LittleEndian32(const unsigned char* p) {
  return (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) |
         (uint32_t{p[1]} << 8) | uint32_t{p[0]};
}

struct Checksum {
  uint32_t s0 = 0;
  uint32_t s1 = 0;
  bool operator==(const Checksum& o) const { return s0 == o.s0 && s1 == o.s1; }
};

// SQLite's checksum of `n` bytes (a multiple of 8) continued from `sum`.
Checksum Continue(bool big_endian, const unsigned char* p, int64_t n,
                  Checksum sum) {
  for (int64_t i = 0; i < n; i += 8) {
    uint32_t a = big_endian ? BigEndian32(p + i) : LittleEndian32(p + i);
    uint32_t b = big_endian ? BigEndian32(p + i + 4) : LittleEndian32(p + i + 4);
    sum.s0 += a + sum.s1;
    sum.s1 += b + sum.s0;
  }
  return sum;
}

Checksum Stored(const unsigned char* p) {
  return {BigEndian32(p), BigEndian32(p + 4)};
}

absl::StatusOr<std::string> ReadAll(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::string();
    return base::ErrnoError("open", path, errno);
  }
  std::string data;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return base::ErrnoError("read", path, err);
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return data;
}

// The log as SQLite's recovery reads it.
class WalLog {
 public:
  // False for a file that is no WAL SQLite would read.
  bool Parse(const std::string& data) {
    if (static_cast<int64_t>(data.size()) < kHeaderBytes) return false;
    p_ = reinterpret_cast<const unsigned char*>(data.data());
    uint32_t magic = BigEndian32(p_);
    if ((magic & ~1u) != kMagic || BigEndian32(p_ + 4) != kVersion) {
      return false;
    }
    big_endian_ = (magic & 1) != 0;
    page_ = BigEndian32(p_ + 8);
    if (page_ == 1) page_ = 65536;
    if (page_ < 512 || page_ > 65536 || (page_ & (page_ - 1)) != 0) {
      return false;
    }
    frames_ = (static_cast<int64_t>(data.size()) - kHeaderBytes) / FrameBytes();
    return true;
  }

  int64_t frames() const { return frames_; }
  int64_t FrameBytes() const { return kFrameHeaderBytes + page_; }
  int64_t Offset(int64_t i) const {
    return i == 0 ? 0 : kHeaderBytes + (i - 1) * FrameBytes();
  }
  bool HeaderHolds() const {
    return Continue(big_endian_, p_, 24, {}) == Stored(p_ + 24);
  }
  // The checksum frame `i` (0: the header) carries.
  Checksum StoredSum(int64_t i) const {
    return Stored(p_ + Offset(i) + (i == 0 ? 24 : 16));
  }
  bool IsCommit(int64_t i) const { return BigEndian32(Frame(i) + 4) != 0; }
  // Whether frames `i` and `j` hold the same page number, commit mark and
  // page: the copies of a commit frame SQLite writes to pad a transaction
  // to a sector (without power-safe overwrite), before its flush.
  bool SameFrame(int64_t i, int64_t j) const {
    return std::memcmp(Frame(i), Frame(j), 8) == 0 &&
           std::memcmp(Frame(i) + kFrameHeaderBytes,
                       Frame(j) + kFrameHeaderBytes, page_) == 0;
  }
  // Whether frame `i` commits a transaction of its own: a commit frame,
  // not a padding copy of the commit before it (the same transaction).
  bool EndsTransaction(int64_t i) const {
    return IsCommit(i) && !(i > 1 && SameFrame(i - 1, i));
  }

  // Whether frame `i` is one of this log's, with its checksum continued
  // from `seed`; its checksum in `sum`.
  bool Holds(int64_t i, Checksum seed, Checksum* sum) const {
    const unsigned char* f = Frame(i);
    if (std::memcmp(f + 8, p_ + 16, 8) != 0 || BigEndian32(f) == 0) {
      return false;
    }
    *sum = Continue(big_endian_, f, 8, seed);
    *sum = Continue(big_endian_, f + kFrameHeaderBytes, page_, *sum);
    return *sum == Stored(f + 16);
  }

 private:
  const unsigned char* Frame(int64_t i) const { return p_ + Offset(i); }

  const unsigned char* p_ = nullptr;
  bool big_endian_ = false;
  int64_t page_ = 0;
  int64_t frames_ = 0;
};

}  // namespace

std::string WalDamage::Describe(const std::string& wal_path) const {
  std::string where =
      frame == 0
          ? absl::StrCat("the header of ", wal_path,
                         " fails its checksum, so SQLite's recovery replays "
                         "none of its frames")
          : absl::StrCat("frame ", frame, " (byte ", offset, ") of ", wal_path,
                         " is damaged, and SQLite's recovery stops there");
  return absl::StrCat(where, ": it keeps the ", kept_commits,
                      " transactions before it and drops the ",
                      dropped_commits,
                      " written whole after it, at least one of them "
                      "acknowledged (another was begun after it)");
}

absl::StatusOr<std::optional<WalDamage>> FindWalDamage(
    const std::string& wal_path) {
  absl::StatusOr<std::string> data = ReadAll(wal_path);
  if (!data.ok()) return data.status();
  WalLog log;
  if (!log.Parse(*data)) return std::nullopt;
  WalDamage damage;
  // Where recovery stops: the first frame that does not continue the
  // checksum it computed so far.
  int64_t brk = 0;
  if (log.HeaderHolds()) {
    Checksum running = log.StoredSum(0);
    brk = -1;
    for (int64_t i = 1; i <= log.frames(); ++i) {
      if (!log.Holds(i, running, &running)) {
        brk = i;
        break;
      }
      if (log.EndsTransaction(i)) ++damage.kept_commits;
    }
    if (brk < 0) return std::nullopt;
  }
  // After it, each frame is checked against the checksum its predecessor
  // carries: a commit frame that holds, followed by a frame that continues
  // it, ended a transaction that was on disk before the next began.
  bool acknowledged = false;
  Checksum sum;
  for (int64_t i = brk + 1; i <= log.frames(); ++i) {
    if (!log.Holds(i, log.StoredSum(i - 1), &sum) || !log.EndsTransaction(i)) {
      continue;
    }
    ++damage.dropped_commits;
    if (i < log.frames() && log.Holds(i + 1, log.StoredSum(i), &sum) &&
        !log.SameFrame(i, i + 1)) {
      acknowledged = true;
    }
  }
  if (!acknowledged) return std::nullopt;
  damage.frame = brk;
  damage.offset = log.Offset(brk);
  return damage;
}

}  // namespace snapshotter
