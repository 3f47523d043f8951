// Streaming tar reader that reports, for every member, the exact positions of
// its raw header and data and the raw header fields, the way the Rust `tar`
// crate (used by the tardev/genpolicy index code) reports them: GNU long
// names/links ('L'/'K') and PAX local headers ('x': path, linkpath, size, uid,
// gid) are folded into the member that follows them, global PAX headers are
// returned as members, the archive ends at the first all-zero block or at EOF.
//
// Why not libarchive: it hides raw header offsets and normalises fields,
// while the tarfs index must point at byte positions inside the tar and must
// reproduce tar-rs field parsing exactly; this small ustar/PAX/GNU reader is
// the smallest correct way to get that.
#ifndef KATA_VOLUME_VERITY_TAR_READER_H_
#define KATA_VOLUME_VERITY_TAR_READER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kata_volume/verity/byte_source.h"

namespace guest_pull::verity {

inline constexpr size_t kTarBlockSize = 512;

// One tar member as seen by tar-rs (after extension headers are applied).
struct TarEntry {
  uint64_t header_position = 0;  // offset of this member's own header
  uint64_t data_position = 0;    // header_position + 512
  uint64_t size = 0;             // data size (PAX size applied as tar-rs does)
  char type_flag = 0;            // raw typeflag byte
  bool is_ustar_or_gnu = false;  // header magic is ustar (POSIX) or GNU
  std::string path;              // GNU long name, else PAX path, else header path
  std::string header_path;       // path from the raw header (ustar prefix/name)
  std::optional<std::string> link_name;         // full link target, if any
  std::optional<std::string> header_link_name;  // raw header linkname, if non-empty
  std::optional<uint32_t> mode;                 // raw header mode; nullopt if unparsable
  std::optional<uint64_t> uid, gid;             // header (or PAX uid/gid) values
  std::optional<uint64_t> mtime;                // raw header mtime
  std::optional<uint32_t> dev_major, dev_minor;  // ustar/GNU headers only
  // The member's PAX "SCHILY.xattr.<name>" records as (name, value), in
  // order, read by their length prefix as Go's archive/tar writes them (a
  // value may hold any byte, '\n' included); parsing stops at the first
  // malformed record. Not part of what tar-rs reports.
  std::vector<std::pair<std::string, std::string>> xattrs;
};

// Parses a tar numeric field like tar-rs: GNU base-256 when the high bit of
// the first byte is set, else octal text (NUL-terminated, whitespace-trimmed).
std::optional<uint64_t> ParseTarNumber(absl::string_view field);
// Octal-only variant (tar-rs `octal_from`).
std::optional<uint64_t> ParseTarOctal(absl::string_view field);

// Reads members sequentially from a ByteSource. Every byte pulled from the
// source (headers, data, padding, trailer) is counted in Position().
class TarReader {
 public:
  explicit TarReader(ByteSource* source) : source_(source) {}

  // Advances to the next member, skipping unread data of the current one.
  // Returns nullptr at the end of the archive.
  absl::StatusOr<const TarEntry*> Next();

  // Reads data of the current member; returns 0 at its end.
  absl::StatusOr<size_t> ReadData(char* buffer, size_t size);

  // Consumes the rest of the stream (after Next() returned nullptr, or to
  // abandon the archive) and returns the total number of bytes in it.
  absl::StatusOr<uint64_t> Finish();

  uint64_t Position() const { return position_; }

 private:
  // Reads one raw header; returns false on a clean end of archive.
  absl::StatusOr<bool> ReadRawHeader(char* header, uint64_t* header_pos);
  absl::Status ReadExact(char* buffer, size_t size);
  absl::Status Skip(uint64_t amount);
  absl::StatusOr<std::string> ReadSmallData(uint64_t size);

  ByteSource* source_;
  uint64_t position_ = 0;       // bytes consumed from source_
  uint64_t next_header_ = 0;    // where the next header starts
  uint64_t data_remaining_ = 0;  // unread data bytes of the current member
  bool ended_ = false;
  TarEntry entry_;
};

}  // namespace guest_pull::verity

#endif  // KATA_VOLUME_VERITY_TAR_READER_H_
