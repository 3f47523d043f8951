// Test helpers for the verity package: temp dirs, files, shell commands and
// hand-built tar headers (so tests control every raw field).
#ifndef KATA_VOLUME_VERITY_TEST_UTIL_H_
#define KATA_VOLUME_VERITY_TEST_UTIL_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace guest_pull::verity::testing {

// A fresh directory under $TEST_TMPDIR (or /tmp).
std::string MakeTempDir();

void WriteFileOrDie(const std::string& path, const std::string& data);
std::string ReadFileOrDie(const std::string& path);

// Runs `command` with /bin/sh; returns stdout, or an error with the exit code.
absl::StatusOr<std::string> RunCommand(const std::string& command);

// Deterministic pseudo-random bytes.
std::string PseudoRandomBytes(size_t size, uint64_t seed);

// Path of veritysetup, or "" when it is not installed.
std::string VeritysetupPath();

// Root hash printed by `veritysetup format --no-superblock` with the
// genpolicy parameters (sha256, 4096/4096, 32 zero-byte salt) for `data_path`.
absl::StatusOr<std::string> VeritysetupRootHash(const std::string& data_path);

// Pages of `path` (its whole size) in the page cache, or -1 if that cannot
// be told.
long PagesInPageCache(const std::string& path);

// Whether a 4096-byte block written with O_DIRECT to a new file in `dir`
// stays out of the page cache: false on tmpfs (which is the page cache)
// and where O_DIRECT is refused.
bool DirectWritesBypassPageCache(const std::string& dir);

// Fields of a hand-made tar header.
struct RawHeader {
  std::string name;
  char type = '0';
  uint64_t size = 0;
  uint32_t mode = 0644;
  uint64_t uid = 0, gid = 0, mtime = 0;
  std::string linkname;
  std::string prefix;  // ustar prefix field
  bool gnu_magic = false;  // "ustar  " instead of "ustar\0" "00"
  uint32_t dev_major = 0, dev_minor = 0;
};

// A 512-byte header block with a valid checksum.
std::string TarHeader(const RawHeader& h);
// `data` padded with zeros to a multiple of 512.
std::string TarData(const std::string& data);
// Header + padded data.
std::string TarMember(const RawHeader& h, const std::string& data = "");
// A PAX 'x' member carrying the given "key=value" records.
std::string PaxMember(const std::vector<std::pair<std::string, std::string>>& records);
// Two zero blocks.
std::string TarTrailer();

}  // namespace guest_pull::verity::testing

#endif  // KATA_VOLUME_VERITY_TEST_UTIL_H_
