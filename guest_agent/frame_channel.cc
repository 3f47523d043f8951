// Framed protocol over a byte stream.
#include "guest_agent/frame_channel.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace guest_pull::guest_agent {

namespace {

constexpr size_t kHeaderSize = 5;

absl::Status WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::UnavailableError(absl::StrCat("channel write: ", strerror(errno)));
    data += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status FrameChannel::Send(char type, absl::string_view payload) {
  if (payload.size() > kMaxFramePayload) {
    return absl::InvalidArgumentError(
        absl::StrCat("frame '", std::string(1, type), "' payload of ", payload.size(),
                     " bytes exceeds ", kMaxFramePayload));
  }
  std::string frame(kHeaderSize, '\0');
  const uint32_t size = static_cast<uint32_t>(payload.size());
  frame[0] = static_cast<char>((size >> 24) & 0xff);
  frame[1] = static_cast<char>((size >> 16) & 0xff);
  frame[2] = static_cast<char>((size >> 8) & 0xff);
  frame[3] = static_cast<char>(size & 0xff);
  frame[4] = type;
  frame.append(payload.data(), payload.size());
  return WriteAll(write_fd_, frame.data(), frame.size());
}

absl::Status FrameChannel::ReadExact(char* buffer, size_t size, bool* clean_eof) {
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::read(read_fd_, buffer + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::UnavailableError(absl::StrCat("channel read: ", strerror(errno)));
    if (n == 0) {
      if (got == 0 && clean_eof != nullptr) *clean_eof = true;
      return absl::UnavailableError(
          got == 0 ? "channel closed" : "channel closed in the middle of a frame");
    }
    got += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<Frame> FrameChannel::Receive() {
  char header[kHeaderSize];
  bool clean_eof = false;
  absl::Status status = ReadExact(header, sizeof(header), &clean_eof);
  if (!status.ok()) return status;
  const uint32_t size = (static_cast<uint32_t>(static_cast<uint8_t>(header[0])) << 24) |
                        (static_cast<uint32_t>(static_cast<uint8_t>(header[1])) << 16) |
                        (static_cast<uint32_t>(static_cast<uint8_t>(header[2])) << 8) |
                        static_cast<uint32_t>(static_cast<uint8_t>(header[3]));
  if (size > kMaxFramePayload) {
    return absl::DataLossError(
        absl::StrCat("frame of ", size, " bytes exceeds ", kMaxFramePayload, " (not our protocol?)"));
  }
  Frame frame;
  frame.type = header[4];
  frame.payload.resize(size);
  if (size > 0) {
    status = ReadExact(frame.payload.data(), size, nullptr);
    if (!status.ok()) return status;
  }
  return frame;
}

}  // namespace guest_pull::guest_agent
