// Layer verity: digest, diff_id and tardev dm-verity root hash in one pass.
#include "kata_volume/verity/layer_verity.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "base/errno_error.h"
#include "base/status_macros.h"
#include "kata_volume/verity/background_sink.h"
#include "kata_volume/verity/byte_source.h"
#include "kata_volume/verity/direct_writer.h"
#include "kata_volume/verity/output_file.h"
#include "kata_volume/verity/sha256.h"
#include "kata_volume/verity/tar_reader.h"
#include "kata_volume/verity/tarfs_index.h"
#include "kata_volume/verity/verity_tree.h"

namespace guest_pull::verity {

namespace {

constexpr char kPasswdPath[] = "etc/passwd";
constexpr char kPasswdWhiteout[] = "etc/.wh.passwd";
constexpr char kGroupPath[] = "etc/group";
constexpr char kGroupWhiteout[] = "etc/.wh.group";
constexpr char kWhiteoutMarker[] = "WHITEOUT";
constexpr uint64_t kMaxUserFileSize = 64 * 1024 * 1024;
constexpr size_t kReadChunk = 256 << 10;  // bytes per read of the tar stream
constexpr size_t kPlainChunk = 1 << 20;   // bytes per read of an uncompressed file
constexpr size_t kHeaderChunk = 64 << 10;  // header reads of the parser thread

using Sink = std::function<absl::Status(const char*, size_t)>;

absl::Status ReadMemberInto(TarReader* reader, const TarEntry& e, std::string* out) {
  if (e.size > kMaxUserFileSize) {
    return absl::InvalidArgumentError(absl::StrCat(e.path, " is too large (", e.size, " bytes)"));
  }
  char buf[16 * 1024];
  while (true) {
    ASSIGN_OR_RETURN(size_t n, reader->ReadData(buf, sizeof(buf)));
    if (n == 0) return absl::OkStatus();
    out->append(buf, n);
  }
}

// A raw header path as genpolicy (4.0+, normalized_layer_path) compares
// it: "." parts and repeated or trailing slashes dropped ("./etc/passwd",
// written by `tar -C root .`, is etc/passwd); "" for an absolute path, one
// with "..", or none left.
std::string NormalizedLayerPath(absl::string_view path) {
  if (absl::StartsWith(path, "/")) return "";
  std::vector<absl::string_view> parts;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") return "";
    parts.push_back(part);
  }
  return absl::StrJoin(parts, "/");
}

// genpolicy's reading of etc/passwd and etc/group: matches the raw header
// path (normalized as above), appends repeated copies and stops looking
// once both were seen.
class UserFileCapture {
 public:
  absl::Status Observe(TarReader* reader, const TarEntry& e, LayerVerity* result) {
    if (found_passwd_ && found_group_) return absl::OkStatus();
    const std::string p = NormalizedLayerPath(e.header_path);
    if (p == kPasswdPath) {
      found_passwd_ = true;
      if (!result->passwd.has_value()) result->passwd.emplace();
      return ReadMemberInto(reader, e, &*result->passwd);
    }
    if (p == kPasswdWhiteout) {
      found_passwd_ = true;
      result->passwd = kWhiteoutMarker;
    } else if (p == kGroupPath) {
      found_group_ = true;
      if (!result->group.has_value()) result->group.emplace();
      return ReadMemberInto(reader, e, &*result->group);
    } else if (p == kGroupWhiteout) {
      found_group_ = true;
      result->group = kWhiteoutMarker;
    }
    return absl::OkStatus();
  }

 private:
  bool found_passwd_ = false;
  bool found_group_ = false;
};

absl::Status WithPath(const std::string& path, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
}

// What the tar parse yields besides the user files: the stream size and the
// index appended after it.
struct ParsedTar {
  uint64_t contents_size = 0;
  std::string index_bytes;
  std::vector<std::string> skipped;
};

// Reads the members' headers (and etc/passwd, etc/group) off `stream`.
absl::StatusOr<ParsedTar> ParseTar(ByteSource* stream, const std::string& path,
                                   const LayerVerityOptions& options, LayerVerity* result) {
  TarReader reader(stream);
  TarfsIndexBuilder index;
  UserFileCapture capture;
  while (true) {
    absl::StatusOr<const TarEntry*> entry = reader.Next();
    if (!entry.ok()) return WithPath(path, entry.status());
    if (*entry == nullptr) break;
    index.AddEntry(**entry);
    if (options.capture_user_files) {
      if (absl::Status s = capture.Observe(&reader, **entry, result); !s.ok()) {
        return WithPath(path, s);
      }
    }
  }
  ParsedTar parsed;
  absl::StatusOr<uint64_t> contents_size = reader.Finish();
  if (!contents_size.ok()) return WithPath(path, contents_size.status());
  if (*contents_size == 0 && options.refuse_empty) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " holds no tar data (0 bytes): it is not a layer"));
  }
  absl::StatusOr<std::string> index_bytes = index.Serialize(*contents_size);
  if (!index_bytes.ok()) return WithPath(path, index_bytes.status());
  parsed.contents_size = *contents_size;
  parsed.index_bytes = std::move(*index_bytes);
  parsed.skipped = index.skipped();
  return parsed;
}

// Appends the index to the tree and the output, and fills `result`.
absl::Status FinishLayer(const ParsedTar& parsed, VerityTreeBuilder* tree, Sha256Hasher* tar_hash,
                         const std::string& digest, const Sink& extra_sink, LayerVerity* result) {
  tree->Update(parsed.index_bytes);
  if (extra_sink) {
    RETURN_IF_ERROR(extra_sink(parsed.index_bytes.data(), parsed.index_bytes.size()));
  }
  ASSIGN_OR_RETURN(result->root_hash, tree->FinishHex());
  result->diff_id = absl::StrCat("sha256:", tar_hash->FinishHex());
  result->digest = digest.empty() ? result->diff_id : digest;
  result->tar_size = parsed.contents_size;
  result->indexed_size = parsed.contents_size + parsed.index_bytes.size();
  result->skipped_entries = parsed.skipped;
  return absl::OkStatus();
}

// Reads up to `size` bytes, fewer only at the end of the file.
absl::StatusOr<size_t> ReadFull(int fd, const std::string& path, char* buffer, size_t size) {
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::read(fd, buffer + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return base::ErrnoError("cannot read", path, errno);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return got;
}

// Whether the regular file `fd` (of `size` bytes, named `path`) already
// ends with a tarfs index appended to a tar of its first bytes (it was
// indexed before): its last block holds the superblock of such an index, a
// contents size on a tar block boundary, with the archive's two zero
// blocks before it and room for its inodes before the superblock; an
// indexed file is a multiple of 4096 bytes. A tar as written ends in
// zeros, so it never matches. FailedPrecondition if it does.
absl::Status RefuseIndexedTar(int fd, const std::string& path, uint64_t size) {
  if (size < kTarfsAlignment || size % kTarfsAlignment != 0) return absl::OkStatus();
  unsigned char super[16];
  ssize_t n = ::pread(fd, super, sizeof(super), static_cast<off_t>(size - kTarfsSuperBlockTail));
  if (n != static_cast<ssize_t>(sizeof(super))) {
    return base::ErrnoError("cannot read the end of", path, n < 0 ? errno : EIO);
  }
  uint64_t contents = 0, inodes = 0;
  for (int i = 7; i >= 0; --i) {
    contents = (contents << 8) | super[i];
    inodes = (inodes << 8) | super[8 + i];
  }
  bool indexed = contents >= 2 * 512 &&
                 contents % 512 == 0 && contents < size && inodes > 0 &&
                 inodes <= (size - contents) / kTarfsInodeSize;
  if (indexed) {
    char end[2 * 512];
    indexed = ::pread(fd, end, sizeof(end), static_cast<off_t>(contents - sizeof(end))) ==
                  static_cast<ssize_t>(sizeof(end)) &&
              std::all_of(end, end + sizeof(end), [](char c) { return c == 0; });
  }
  if (!indexed) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      path, " already ends with a tarfs index (after its first ", contents,
      " bytes, the tar): it was indexed before, so it is left as it is; indexing it again would "
      "hash that index as tar data"));
}

// An uncompressed tar in a regular file is its own tar stream, and only its
// headers need parsing: a parser thread seeks over the member data, while
// this thread reads the file once into the buffers the two hashing threads
// (dm-verity tree and diff_id) share, and writes each buffer to the output
// (if any) meanwhile, without further copies. nullopt: not a regular file.
// `expected` (may be null): the file must still be that one (Aborted).
absl::StatusOr<std::optional<LayerVerity>> ProcessPlainFile(const std::string& path,
                                                            const LayerVerityOptions& options,
                                                            const Sink& extra_sink,
                                                            const struct stat* expected = nullptr) {
  // Non-blocking: a FIFO is answered at once (not a regular file), never
  // waited on.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return base::ErrnoError("cannot open", path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return std::nullopt;
  }
  if (expected != nullptr && (st.st_dev != expected->st_dev || st.st_ino != expected->st_ino)) {
    ::close(fd);
    return WithPath(path, absl::AbortedError("the file changed while it was being read"));
  }
  if (options.indexed_input == IndexedInput::kRefuse) {
    if (absl::Status s = RefuseIndexedTar(fd, path, static_cast<uint64_t>(st.st_size)); !s.ok()) {
      ::close(fd);
      return s;
    }
  }
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

  LayerVerity result;
  absl::StatusOr<ParsedTar> parsed = absl::UnknownError("not parsed");
  std::atomic<bool> parse_failed{false};
  std::thread parser([&] {
    absl::StatusOr<std::unique_ptr<FileByteSource>> file =
        FileByteSource::OpenSameFile(path, st.st_dev, st.st_ino);
    if (!file.ok()) {
      parsed = file.status();
    } else {
      BufferedByteSource headers(std::move(*file), kHeaderChunk, /*skip_through=*/true);
      parsed = ParseTar(&headers, path, options, &result);
    }
    if (!parsed.ok()) parse_failed = true;
  });

  Sha256Hasher tar_hash;
  VerityTreeBuilder tree;
  absl::Status io;
  uint64_t streamed = 0;
  {
    BackgroundSink hashers({[&tree](const char* d, size_t n) { tree.Update(d, n); },
                            [&tar_hash](const char* d, size_t n) { tar_hash.Update(d, n); }},
                           kPlainChunk, 4);
    while (!parse_failed) {
      char* buffer = hashers.Acquire();
      absl::StatusOr<size_t> n = ReadFull(fd, path, buffer, hashers.capacity());
      hashers.Publish(n.ok() ? *n : 0);
      if (!n.ok()) io = n.status();
      if (!n.ok() || *n == 0) break;
      streamed += *n;
      if (extra_sink) io = extra_sink(buffer, *n);  // still ours until the next Acquire()
      if (!io.ok()) break;
    }
    hashers.Finish();
  }
  parser.join();
  ::close(fd);
  if (!parsed.ok()) return parsed.status();
  RETURN_IF_ERROR(io);
  if (streamed != parsed->contents_size) {
    return WithPath(path, absl::AbortedError("the file changed while it was being read"));
  }
  RETURN_IF_ERROR(FinishLayer(*parsed, &tree, &tar_hash, "", extra_sink, &result));
  return result;
}

// Whether `path` is a FIFO, whose first bytes cannot be read in place
// (pread: ESPIPE, which read "cannot read /dev/stdin: Illegal seek").
absl::StatusOr<bool> IsPipe(const std::string& path, const LayerVerityOptions& options) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISFIFO(st.st_mode)) return false;  // opened below
  if (!options.accept_pipe) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is a FIFO, not a regular file"));
  }
  return true;
}

absl::StatusOr<LayerVerity> ProcessLayer(const std::string& path, const LayerVerityOptions& options,
                                         const Sink& extra_sink) {
  ASSIGN_OR_RETURN(const bool pipe, IsPipe(path, options));
  BlobCompression compression = BlobCompression::kNone;
  if (!pipe) {
    ASSIGN_OR_RETURN(compression, DetectBlobCompression(path));
    if (compression == BlobCompression::kNone) {
      ASSIGN_OR_RETURN(std::optional<LayerVerity> plain,
                       ProcessPlainFile(path, options, extra_sink));
      if (plain.has_value()) return *std::move(plain);
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<FileByteSource> file, FileByteSource::Open(path));
  std::unique_ptr<ByteSource> source = std::move(file);
  if (pipe) {
    absl::StatusOr<BlobCompression> peeked = PeekBlobCompression(&source);
    if (!peeked.ok()) return WithPath(path, peeked.status());
    compression = *peeked;
  }
  const bool compressed = compression != BlobCompression::kNone;

  // A stream (gzip, zstd, or not a regular file): the dm-verity tree and the
  // diff_id (a SHA-256 each over every tar byte, the bulk of the work) and
  // the output file (if any) are fed on background threads; this one only
  // reads, inflates and parses the tar.
  Sha256Hasher blob_hash, tar_hash;
  VerityTreeBuilder tree;
  absl::Status extra_status;  // the first error of extra_sink (writer thread)
  std::vector<BackgroundSink::Consumer> consumers = {
      [&tree](const char* d, size_t n) { tree.Update(d, n); },
      [&tar_hash](const char* d, size_t n) { tar_hash.Update(d, n); }};
  if (extra_sink) {
    consumers.push_back([&](const char* d, size_t n) {
      if (extra_status.ok()) extra_status = extra_sink(d, n);
    });
  }
  BackgroundSink tar_consumers(std::move(consumers), kReadChunk, 8);
  if (compressed) {
    source = Decompressing(compression, std::make_unique<ObservedByteSource>(
                                            std::move(source), [&](const char* d, size_t n) {
                                              blob_hash.Update(d, n);
                                              return absl::OkStatus();
                                            }));
  }
  Sink tar_sink = [&](const char* d, size_t n) -> absl::Status {
    tar_consumers.Push(d, n);
    return absl::OkStatus();
  };
  // The buffer above the observer hands the hashes large chunks and serves
  // the tar headers from memory.
  BufferedByteSource tar_stream(std::make_unique<ObservedByteSource>(std::move(source), tar_sink),
                                kReadChunk);
  LayerVerity result;
  absl::StatusOr<ParsedTar> parsed = ParseTar(&tar_stream, path, options, &result);
  tar_consumers.Finish();  // the tree, tar_hash and the output are ours again
  if (!parsed.ok()) return parsed.status();
  if (!extra_status.ok()) return extra_status;
  RETURN_IF_ERROR(FinishLayer(*parsed, &tree, &tar_hash,
                              compressed ? absl::StrCat("sha256:", blob_hash.FinishHex()) : "",
                              extra_sink, &result));
  return result;
}

}  // namespace

absl::StatusOr<LayerVerity> ComputeLayerVerity(const std::string& path,
                                               const LayerVerityOptions& options) {
  return ProcessLayer(path, options, nullptr);
}

absl::StatusOr<LayerVerity> WriteIndexedLayer(const std::string& layer_path,
                                              const std::string& output_path,
                                              const IndexChecks& checks) {
  ASSIGN_OR_RETURN(const std::string resolved, ResolveOutputPath(output_path));
  // Replacing the layer would leave it indexed (not the layer) at its name:
  // refused, nothing is written.
  struct stat in, out;
  if (::stat(layer_path.c_str(), &in) == 0 &&
      ::stat(resolved.c_str(), &out) == 0 && in.st_dev == out.st_dev &&
      in.st_ino == out.st_ino) {
    return absl::InvalidArgumentError(absl::StrCat(
        output_path,
        " is the layer file itself: write the indexed layer to another file"));
  }
  absl::StatusOr<LayerVerity> result = absl::InternalError("not processed");
  // Not flushed, as cp(1) does not: what matters is that a failure leaves
  // the output as it was. Written around the page cache (DirectWriter): the
  // copy is as large as the layer and not read back here.
  absl::Status written = ReplaceFile(resolved, /*flush=*/false, [&](int fd) {
    DirectWriter out(fd, output_path);
    // The layer is named by the caller: a pipe is its choice.
    LayerVerityOptions options;
    options.accept_pipe = true;
    options.indexed_input = checks.indexed_input;
    options.refuse_empty = checks.refuse_empty;
    result = ProcessLayer(layer_path, options,
                          [&](const char* d, size_t n) { return out.Write(d, n); });
    return result.status();
  });
  if (!written.ok()) return written;
  return result;
}

namespace {

absl::Status NotRegular(const std::string& path) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, " is not a regular file: it cannot be indexed in place"));
}

// The same file, unchanged since `before`: size, and the change time, which
// every write, rename and timestamp reset moves and nothing sets back.
bool Unchanged(const struct stat& before, const struct stat& now) {
  return before.st_dev == now.st_dev && before.st_ino == now.st_ino &&
         before.st_size == now.st_size && before.st_ctim.tv_sec == now.st_ctim.tv_sec &&
         before.st_ctim.tv_nsec == now.st_ctim.tv_nsec;
}

}  // namespace

absl::StatusOr<LayerVerity> AppendIndexInPlace(const std::string& tar_path,
                                               const IndexChecks& checks) {
  struct stat before;
  if (::stat(tar_path.c_str(), &before) != 0)
    return base::ErrnoError("cannot stat", tar_path, errno);
  if (!S_ISREG(before.st_mode)) return NotRegular(tar_path);  // a FIFO would block the reads
  // Nothing below waits on a file swapped in meanwhile (the opens are
  // non-blocking), and what is read and written must be this very file.
  ASSIGN_OR_RETURN(BlobCompression compression, DetectBlobCompression(tar_path));
  if (compression != BlobCompression::kNone) {
    return absl::InvalidArgumentError(
        absl::StrCat(tar_path, " is ", compression == BlobCompression::kGzip ? "gzip" : "zstd",
                     "-compressed: only an uncompressed tar can be indexed in place "
                     "(index it into another file)"));
  }
  if (checks.indexed_input == IndexedInput::kRefuse) {
    // Before the file is opened for writing.
    int rfd = ::open(tar_path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (rfd < 0) return base::ErrnoError("cannot open", tar_path, errno);
    absl::Status refused = RefuseIndexedTar(rfd, tar_path, static_cast<uint64_t>(before.st_size));
    ::close(rfd);
    RETURN_IF_ERROR(refused);
  }
  int fd = ::open(tar_path.c_str(), O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return base::ErrnoError("cannot open", tar_path, errno);
  struct stat opened;
  if (::fstat(fd, &opened) != 0 || !Unchanged(before, opened)) {
    ::close(fd);
    return WithPath(tar_path, absl::AbortedError("the file changed while it was being opened"));
  }
  const uint64_t tar_size = static_cast<uint64_t>(before.st_size);
  // The read sees the tar (from this very file) and then the index: what
  // lies beyond the tar is kept, and written only once the file proves
  // unchanged.
  uint64_t seen = 0;
  std::string index;
  Sink capture = [&](const char* d, size_t n) -> absl::Status {
    uint64_t skip = seen < tar_size ? std::min<uint64_t>(tar_size - seen, n) : 0;
    index.append(d + skip, n - static_cast<size_t>(skip));
    seen += n;
    return absl::OkStatus();
  };
  LayerVerityOptions options;
  options.refuse_empty = checks.refuse_empty;
  absl::StatusOr<std::optional<LayerVerity>> processed =
      ProcessPlainFile(tar_path, options, capture, &before);
  absl::StatusOr<LayerVerity> result = absl::InternalError("not processed");
  struct stat after;
  if (!processed.ok()) {
    result = processed.status();
  } else if (!processed->has_value()) {
    result = NotRegular(tar_path);
  } else if ((*processed)->tar_size != tar_size ||
             (*processed)->indexed_size != tar_size + index.size() ||
             ::stat(tar_path.c_str(), &after) != 0 || !Unchanged(before, after)) {
    result = WithPath(tar_path, absl::AbortedError("the file changed while it was being read"));
  } else {
    result = **std::move(processed);
  }
  bool wrote = false;
  for (size_t done = 0; result.ok() && done < index.size();) {
    ssize_t w =
        ::pwrite(fd, index.data() + done, index.size() - done, static_cast<off_t>(tar_size + done));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      result = base::ErrnoError("cannot write", tar_path, errno);
    } else {
      wrote = true;
      done += static_cast<size_t>(w);
    }
  }
  // Takes the result of an ftruncate or truncate that gives the tar back
  // its size; a failure is added to the error.
  auto cut_back = [&](int rc) {
    if (rc == 0) return;
    result = absl::Status(result.status().code(),
                          absl::StrCat(result.status().message(), "; cutting ", tar_path,
                                       " back to its tar failed: ", strerror(errno)));
  };
  // Only what this call appended is cut (nothing was written otherwise).
  if (!result.ok() && wrote) cut_back(::ftruncate(fd, static_cast<off_t>(tar_size)));
  if (::close(fd) != 0 && result.ok()) {
    result = base::ErrnoError("cannot close", tar_path, errno);
    cut_back(::truncate(tar_path.c_str(), static_cast<off_t>(tar_size)));
  }
  return result;
}

}  // namespace guest_pull::verity
