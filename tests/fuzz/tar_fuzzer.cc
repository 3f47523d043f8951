// libFuzzer target: the tar reader and the tarfs index builder
// (kata_volume/verity/tar_reader.h, tarfs_index.h), fed the way
// layer_verity.cc feeds them; input starting with the gzip or a zstd
// magic (a frame's or a skippable frame's) goes through that decoder first.
// Invariant: tar + index is a multiple of 4096 bytes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "kata_volume/verity/byte_source.h"
#include "kata_volume/verity/tar_reader.h"
#include "kata_volume/verity/tarfs_index.h"

namespace {

using guest_pull::verity::ByteSource;

// The fuzzer's input as a stream, in short reads of varying length.
class InputSource : public ByteSource {
 public:
  InputSource(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  absl::StatusOr<size_t> Read(char* buffer, size_t size) override {
    size_t n = std::min({size, size_ - offset_, 1 + offset_ % 1000});
    memcpy(buffer, data_ + offset_, n);
    offset_ += n;
    return n;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t offset_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<ByteSource> source =
      std::make_unique<InputSource>(data, size);
  if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
    source = std::make_unique<guest_pull::verity::GzipByteSource>(
        std::move(source));
  } else if (size >= 4 && (memcmp(data, "\x28\xb5\x2f\xfd", 4) == 0 ||
                           ((data[0] & 0xf0) == 0x50 &&
                            memcmp(data + 1, "\x2a\x4d\x18", 3) == 0))) {
    source = std::make_unique<guest_pull::verity::ZstdByteSource>(
        std::move(source));
  }
  guest_pull::verity::TarReader reader(source.get());
  guest_pull::verity::TarfsIndexBuilder index;
  char buffer[700];
  for (int members = 0; members < 100000; ++members) {
    auto entry = reader.Next();
    if (!entry.ok()) return 0;
    if (*entry == nullptr) break;
    index.AddEntry(**entry);
    if (members % 2 == 0) (void)reader.ReadData(buffer, sizeof buffer);
  }
  auto contents_size = reader.Finish();
  if (!contents_size.ok()) return 0;
  if (*contents_size != reader.Position()) abort();
  auto bytes = index.Serialize(*contents_size);
  if (!bytes.ok()) return 0;
  if ((*contents_size + bytes->size()) % 4096 != 0) abort();
  return 0;
}
