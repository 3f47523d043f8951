// Streaming byte sources for layer blobs: a file, gzip (zlib) and zstd
// (libzstd) decoders and an observing wrapper that lets callers hash/record
// every byte that passes.
#ifndef KATA_VOLUME_VERITY_BYTE_SOURCE_H_
#define KATA_VOLUME_VERITY_BYTE_SOURCE_H_

#include <sys/types.h>
#include <zlib.h>
#include <zstd.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace guest_pull::verity {

// A pull-based stream of bytes.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to `size` bytes into `buffer`. Returns 0 only at end of stream.
  virtual absl::StatusOr<size_t> Read(char* buffer, size_t size) = 0;
  // Consumes up to `size` bytes without handing them out; returns how many
  // (0 only at end of stream). The default reads into a scratch buffer.
  virtual absl::StatusOr<size_t> Skip(size_t size);
};

// Reads a regular file sequentially.
class FileByteSource : public ByteSource {
 public:
  static absl::StatusOr<std::unique_ptr<FileByteSource>> Open(const std::string& path);
  // Opens `path` only if it still is the regular file `dev`/`ino` (Aborted
  // otherwise), without waiting: a FIFO swapped in is refused, not read.
  static absl::StatusOr<std::unique_ptr<FileByteSource>> OpenSameFile(const std::string& path,
                                                                      dev_t dev, ino_t ino);
  ~FileByteSource() override;
  absl::StatusOr<size_t> Read(char* buffer, size_t size) override;
  // A regular file seeks (up to its end) instead of reading.
  absl::StatusOr<size_t> Skip(size_t size) override;

 private:
  FileByteSource(int fd, std::string path, bool regular)
      : fd_(fd), path_(std::move(path)), regular_(regular) {}
  int fd_;
  std::string path_;
  bool regular_;
};

// Decompresses a gzip stream (RFC 1952; concatenated members are decoded in
// sequence, like Go's compress/gzip used by containerd). Corrupt or truncated
// input and trailing garbage are errors.
class GzipByteSource : public ByteSource {
 public:
  explicit GzipByteSource(std::unique_ptr<ByteSource> compressed);
  ~GzipByteSource() override;
  absl::StatusOr<size_t> Read(char* buffer, size_t size) override;

 private:
  absl::Status FillInput();
  std::unique_ptr<ByteSource> compressed_;
  z_stream zs_{};
  std::vector<char> in_;
  bool input_eof_ = false;
  bool member_done_ = false;  // previous member ended; next bytes start a new one
  bool finished_ = false;
  bool init_failed_ = false;
};

// Decompresses a zstd stream (RFC 8878; concatenated and skippable frames
// are decoded in sequence, like the decoder containerd uses). Errors:
// corrupt or truncated input, trailing garbage, and a frame whose window
// is beyond libzstd's default limit, 128 MiB (the zstd CLI's; `zstd
// --long=28` and above make larger ones), which bounds the decoder's
// memory: a guest may have 512 MiB. containerd's decoder takes windows up
// to 512 MiB; such a layer is refused here with that reason. Every Read
// after an error fails alike.
class ZstdByteSource : public ByteSource {
 public:
  explicit ZstdByteSource(std::unique_ptr<ByteSource> compressed);
  ZstdByteSource(const ZstdByteSource&) = delete;
  ZstdByteSource& operator=(const ZstdByteSource&) = delete;
  ~ZstdByteSource() override;
  absl::StatusOr<size_t> Read(char* buffer, size_t size) override;

 private:
  absl::StatusOr<size_t> Decode(char* buffer, size_t size);

  std::unique_ptr<ByteSource> compressed_;
  ZSTD_DStream* ds_;
  std::vector<char> in_;
  ZSTD_inBuffer input_{nullptr, 0, 0};
  bool input_eof_ = false;
  bool any_input_ = false;
  bool frame_done_ = true;  // no frame begun, or the last one fully flushed
  bool any_frame_ = false;  // a frame (or skippable frame) ended
  bool finished_ = false;
  absl::Status error_;  // the first error, returned by every later Read
};

// Passes bytes through from `inner` and reports each chunk to `observer`; an
// observer error fails the read.
class ObservedByteSource : public ByteSource {
 public:
  using Observer = std::function<absl::Status(const char* data, size_t size)>;
  ObservedByteSource(std::unique_ptr<ByteSource> inner, Observer observer)
      : inner_(std::move(inner)), observer_(std::move(observer)) {}
  absl::StatusOr<size_t> Read(char* buffer, size_t size) override;

 private:
  std::unique_ptr<ByteSource> inner_;
  Observer observer_;
};

// Reads `inner` in large chunks and serves smaller reads (the tar reader's
// 512-byte headers) from memory; reads of at least the capacity bypass the
// buffer. Wrapping an ObservedByteSource this way makes its observer see
// large chunks too. With `skip_through`, skips of at least the capacity go
// to inner's Skip() as well (a file then seeks over tar member data).
class BufferedByteSource : public ByteSource {
 public:
  BufferedByteSource(std::unique_ptr<ByteSource> inner, size_t capacity,
                     bool skip_through = false);
  absl::StatusOr<size_t> Read(char* buffer, size_t size) override;
  // Advances within the buffer (refilled as needed): no copy.
  absl::StatusOr<size_t> Skip(size_t size) override;

 private:
  absl::Status FillIfEmpty();

  std::unique_ptr<ByteSource> inner_;
  std::vector<char> buffer_;
  bool skip_through_;
  size_t begin_ = 0;  // unread bytes are buffer_[begin_, end_)
  size_t end_ = 0;
};

// Compression of a layer blob, detected from its magic bytes.
enum class BlobCompression { kNone, kGzip, kZstd };

// Looks at the first bytes of the file at `path` (never waits for a FIFO's
// writer: a FIFO cannot be read at an offset, and is an error). zstd is
// recognised by a frame's magic or a skippable frame's.
absl::StatusOr<BlobCompression> DetectBlobCompression(const std::string& path);

// Reads the first bytes of `*stream` to tell its compression, as
// DetectBlobCompression does for a file, then makes `*stream` yield the
// whole stream again, those bytes first: for a pipe (`... | guest-pull-verity
// layer /dev/stdin`), whose first bytes cannot be read in place.
absl::StatusOr<BlobCompression> PeekBlobCompression(std::unique_ptr<ByteSource>* stream);

// `compressed` decoded as `compression` says (kNone: itself).
std::unique_ptr<ByteSource> Decompressing(BlobCompression compression,
                                          std::unique_ptr<ByteSource> compressed);

}  // namespace guest_pull::verity

#endif  // KATA_VOLUME_VERITY_BYTE_SOURCE_H_
