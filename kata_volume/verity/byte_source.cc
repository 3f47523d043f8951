// Streaming byte sources: file, gzip (zlib inflate), zstd, observer tee.
#include "kata_volume/verity/byte_source.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>
#include <zstd_errors.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/errno_error.h"
#include "base/status_macros.h"

namespace guest_pull::verity {

namespace {
constexpr size_t kInputChunk = 256 * 1024;
}  // namespace

absl::StatusOr<size_t> ByteSource::Skip(size_t size) {
  char scratch[32 * 1024];
  return Read(scratch, std::min(size, sizeof(scratch)));
}

absl::StatusOr<std::unique_ptr<FileByteSource>> FileByteSource::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return base::ErrnoError("cannot open", path, errno);
  struct stat st;
  const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  return std::unique_ptr<FileByteSource>(new FileByteSource(fd, path, regular));
}

absl::StatusOr<std::unique_ptr<FileByteSource>> FileByteSource::OpenSameFile(
    const std::string& path, dev_t dev, ino_t ino) {
  auto changed = [&path] {
    return absl::AbortedError(absl::StrCat(path, ": the file changed while it was being read"));
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return changed();
  if (fd < 0) return base::ErrnoError("cannot open", path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return base::ErrnoError("cannot stat", path, err);
  }
  if (!S_ISREG(st.st_mode) || st.st_dev != dev || st.st_ino != ino) {
    ::close(fd);
    return changed();
  }
  return std::unique_ptr<FileByteSource>(new FileByteSource(fd, path, /*regular=*/true));
}

FileByteSource::~FileByteSource() { ::close(fd_); }

absl::StatusOr<size_t> FileByteSource::Read(char* buffer, size_t size) {
  while (true) {
    ssize_t n = ::read(fd_, buffer, size);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    return base::ErrnoError("cannot read", path_, errno);
  }
}

absl::StatusOr<size_t> FileByteSource::Skip(size_t size) {
  if (!regular_) return ByteSource::Skip(size);
  struct stat st;
  if (::fstat(fd_, &st) != 0) return base::ErrnoError("cannot stat", path_, errno);
  off_t pos = ::lseek(fd_, 0, SEEK_CUR);
  if (pos < 0) return base::ErrnoError("cannot seek", path_, errno);
  uint64_t left = st.st_size > pos ? static_cast<uint64_t>(st.st_size - pos) : 0;
  size_t n = static_cast<size_t>(std::min<uint64_t>(size, left));
  if (n > 0 && ::lseek(fd_, static_cast<off_t>(n), SEEK_CUR) < 0) {
    return base::ErrnoError("cannot seek", path_, errno);
  }
  return n;
}

GzipByteSource::GzipByteSource(std::unique_ptr<ByteSource> compressed)
    : compressed_(std::move(compressed)), in_(kInputChunk) {
  // 16 + MAX_WBITS: expect a gzip wrapper.
  if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) init_failed_ = true;
}

GzipByteSource::~GzipByteSource() { inflateEnd(&zs_); }

absl::Status GzipByteSource::FillInput() {
  ASSIGN_OR_RETURN(size_t n, compressed_->Read(in_.data(), in_.size()));
  if (n == 0) input_eof_ = true;
  zs_.next_in = reinterpret_cast<Bytef*>(in_.data());
  zs_.avail_in = static_cast<uInt>(n);
  return absl::OkStatus();
}

absl::StatusOr<size_t> GzipByteSource::Read(char* buffer, size_t size) {
  if (init_failed_) return absl::InternalError("zlib inflateInit2 failed");
  if (finished_ || size == 0) return 0;
  zs_.next_out = reinterpret_cast<Bytef*>(buffer);
  zs_.avail_out = static_cast<uInt>(size);
  while (zs_.avail_out == size) {  // until at least one byte was produced
    if (zs_.avail_in == 0 && !input_eof_) {
      RETURN_IF_ERROR(FillInput());
    }
    if (member_done_) {
      // Between members: end of input is a clean end; anything else must be
      // another gzip member.
      if (zs_.avail_in == 0 && input_eof_) {
        finished_ = true;
        return 0;
      }
      if (zs_.avail_in == 0) continue;
      if (zs_.next_in[0] != 0x1f) {
        return absl::InvalidArgumentError("trailing garbage after gzip stream");
      }
      inflateReset(&zs_);
      member_done_ = false;
    }
    if (zs_.avail_in == 0 && input_eof_) {
      return absl::InvalidArgumentError("truncated gzip stream (unexpected end of input)");
    }
    int rc = inflate(&zs_, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) {
      member_done_ = true;
    } else if (rc == Z_BUF_ERROR) {
      // No progress possible without more input; loop fetches it.
      if (input_eof_ && zs_.avail_in == 0) {
        return absl::InvalidArgumentError("truncated gzip stream (unexpected end of input)");
      }
    } else if (rc != Z_OK) {
      return absl::InvalidArgumentError(
          absl::StrCat("corrupt gzip stream: ", zs_.msg != nullptr ? zs_.msg : "inflate error"));
    }
  }
  return size - zs_.avail_out;
}

ZstdByteSource::ZstdByteSource(std::unique_ptr<ByteSource> compressed)
    : compressed_(std::move(compressed)), ds_(ZSTD_createDStream()), in_(ZSTD_DStreamInSize()) {
  if (ds_ != nullptr && ZSTD_isError(ZSTD_initDStream(ds_))) {
    ZSTD_freeDStream(ds_);
    ds_ = nullptr;
  }
}

ZstdByteSource::~ZstdByteSource() { ZSTD_freeDStream(ds_); }

absl::StatusOr<size_t> ZstdByteSource::Read(char* buffer, size_t size) {
  if (!error_.ok()) return error_;
  absl::StatusOr<size_t> n = Decode(buffer, size);
  if (!n.ok()) error_ = n.status();
  return n;
}

absl::StatusOr<size_t> ZstdByteSource::Decode(char* buffer, size_t size) {
  if (ds_ == nullptr) return absl::InternalError("zstd decoder could not be created");
  if (finished_ || size == 0) return 0;
  ZSTD_outBuffer out{buffer, size, 0};
  while (true) {
    if (input_.pos == input_.size && !input_eof_) {
      ASSIGN_OR_RETURN(size_t n, compressed_->Read(in_.data(), in_.size()));
      input_ = ZSTD_inBuffer{in_.data(), n, 0};
      input_eof_ = n == 0;
      any_input_ = any_input_ || n > 0;
    }
    const bool no_input = input_.pos == input_.size;  // and none to come
    if (no_input && frame_done_) {
      if (!any_input_) return absl::InvalidArgumentError("empty zstd stream");
      finished_ = true;
      return 0;
    }
    const bool between_frames = frame_done_ && any_frame_;
    size_t rc = ZSTD_decompressStream(ds_, &out, &input_);
    if (ZSTD_isError(rc) && ZSTD_getErrorCode(rc) == ZSTD_error_frameParameter_windowTooLarge) {
      return absl::InvalidArgumentError(
          "zstd frame needs a window larger than 128 MiB (compressed with --long=28 or more): "
          "refused, to bound the decoder's memory");
    }
    if (ZSTD_isError(rc) && between_frames && ZSTD_getErrorCode(rc) == ZSTD_error_prefix_unknown) {
      return absl::InvalidArgumentError("trailing garbage after zstd stream");
    }
    if (ZSTD_isError(rc)) {
      return absl::InvalidArgumentError(
          absl::StrCat("corrupt zstd stream: ", ZSTD_getErrorName(rc)));
    }
    frame_done_ = rc == 0;
    any_frame_ = any_frame_ || frame_done_;
    if (out.pos > 0) return out.pos;
    // Nothing came out and nothing more will go in: the frame is cut short.
    if (no_input && !frame_done_) {
      return absl::InvalidArgumentError("truncated zstd stream (unexpected end of input)");
    }
  }
}

absl::StatusOr<size_t> ObservedByteSource::Read(char* buffer, size_t size) {
  absl::StatusOr<size_t> n = inner_->Read(buffer, size);
  if (!n.ok()) return n;
  if (*n > 0) {
    RETURN_IF_ERROR(observer_(buffer, *n));
  }
  return n;
}

BufferedByteSource::BufferedByteSource(std::unique_ptr<ByteSource> inner, size_t capacity,
                                       bool skip_through)
    : inner_(std::move(inner)), buffer_(capacity > 0 ? capacity : 1), skip_through_(skip_through) {}

absl::Status BufferedByteSource::FillIfEmpty() {
  if (begin_ != end_) return absl::OkStatus();
  ASSIGN_OR_RETURN(size_t n, inner_->Read(buffer_.data(), buffer_.size()));
  begin_ = 0;
  end_ = n;
  return absl::OkStatus();
}

absl::StatusOr<size_t> BufferedByteSource::Read(char* buffer, size_t size) {
  if (size == 0) return 0;
  if (begin_ == end_ && size >= buffer_.size()) return inner_->Read(buffer, size);
  RETURN_IF_ERROR(FillIfEmpty());
  size_t n = std::min(size, end_ - begin_);
  memcpy(buffer, buffer_.data() + begin_, n);
  begin_ += n;
  return n;
}

absl::StatusOr<size_t> BufferedByteSource::Skip(size_t size) {
  if (size == 0) return 0;
  if (skip_through_ && begin_ == end_ && size >= buffer_.size()) return inner_->Skip(size);
  RETURN_IF_ERROR(FillIfEmpty());
  size_t n = std::min(size, end_ - begin_);
  begin_ += n;
  return n;
}

namespace {

// The compression that a blob's first `n` bytes (up to 4) show.
BlobCompression CompressionOfMagic(const unsigned char* magic, size_t n) {
  if (n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b) return BlobCompression::kGzip;
  if (n >= 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd) {
    return BlobCompression::kZstd;
  }
  // A skippable frame: 0x184D2A50-0x184D2A5F, little endian.
  if (n >= 4 && (magic[0] & 0xf0) == 0x50 && magic[1] == 0x2a && magic[2] == 0x4d &&
      magic[3] == 0x18) {
    return BlobCompression::kZstd;
  }
  return BlobCompression::kNone;
}

// `prefix` (bytes already read off `rest`), then the rest of the stream.
class PrefixedByteSource : public ByteSource {
 public:
  PrefixedByteSource(std::string prefix, std::unique_ptr<ByteSource> rest)
      : prefix_(std::move(prefix)), rest_(std::move(rest)) {}
  absl::StatusOr<size_t> Read(char* buffer, size_t size) override {
    if (used_ == prefix_.size()) return rest_->Read(buffer, size);
    size_t n = std::min(size, prefix_.size() - used_);
    memcpy(buffer, prefix_.data() + used_, n);
    used_ += n;
    return n;
  }

 private:
  std::string prefix_;
  size_t used_ = 0;
  std::unique_ptr<ByteSource> rest_;
};

}  // namespace

absl::StatusOr<BlobCompression> PeekBlobCompression(std::unique_ptr<ByteSource>* stream) {
  std::string magic(4, '\0');
  size_t got = 0;
  while (got < magic.size()) {
    ASSIGN_OR_RETURN(size_t n, (*stream)->Read(magic.data() + got, magic.size() - got));
    if (n == 0) break;
    got += n;
  }
  magic.resize(got);
  const BlobCompression compression =
      CompressionOfMagic(reinterpret_cast<const unsigned char*>(magic.data()), got);
  *stream = std::make_unique<PrefixedByteSource>(std::move(magic), std::move(*stream));
  return compression;
}

absl::StatusOr<BlobCompression> DetectBlobCompression(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return base::ErrnoError("cannot open", path, errno);
  unsigned char magic[4] = {0, 0, 0, 0};
  ssize_t n;
  do {
    n = ::pread(fd, magic, sizeof(magic), 0);
  } while (n < 0 && errno == EINTR);
  int err = errno;
  ::close(fd);
  if (n < 0) return base::ErrnoError("cannot read", path, err);
  return CompressionOfMagic(magic, static_cast<size_t>(n));
}

std::unique_ptr<ByteSource> Decompressing(BlobCompression compression,
                                          std::unique_ptr<ByteSource> compressed) {
  switch (compression) {
    case BlobCompression::kGzip:
      return std::make_unique<GzipByteSource>(std::move(compressed));
    case BlobCompression::kZstd:
      return std::make_unique<ZstdByteSource>(std::move(compressed));
    case BlobCompression::kNone:
      break;
  }
  return compressed;
}

}  // namespace guest_pull::verity
