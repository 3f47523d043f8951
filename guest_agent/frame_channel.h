// Framed byte protocol between the guest agent and the host runner over the
// virtio-serial port (a reliable byte stream). A frame is a 4-byte big-endian
// payload length, a 1-byte type and the payload. tests/vm/README.md documents
// the frame types and the conversation.
#ifndef GUEST_AGENT_FRAME_CHANNEL_H_
#define GUEST_AGENT_FRAME_CHANNEL_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace guest_pull::guest_agent {

// Frame types. Guest to host:
inline constexpr char kFrameHello = 'H';    // JSON {"agent":..., "protocol":1}
inline constexpr char kFrameGet = 'G';      // JSON {"kind":"manifest"|"blob","digest":...}
inline constexpr char kFrameLog = 'L';      // one progress line (text)
inline constexpr char kFrameStdout = 'O';   // process stdout bytes
inline constexpr char kFrameStderr = 'E';   // process stderr bytes
inline constexpr char kFrameExit = 'X';     // JSON {"exit_code":N}
inline constexpr char kFrameFailure = 'F';  // JSON {"error":...,"kind":...,"layer":...}
// Host to guest:
inline constexpr char kFrameRequest = 'Q';  // the request JSON
inline constexpr char kFrameData = 'D';     // a chunk of the answer to the last Get
inline constexpr char kFrameDataEnd = 'Z';  // JSON {"size":N}: the answer is complete
inline constexpr char kFrameGetError = 'N';  // the host could not serve the Get (text)

// Largest payload either side accepts.
inline constexpr size_t kMaxFramePayload = 1 << 20;

struct Frame {
  char type = 0;
  std::string payload;
};

// Reads frames from one fd and writes frames to another (they may be equal).
// Does not own the fds.
class FrameChannel {
 public:
  FrameChannel(int read_fd, int write_fd) : read_fd_(read_fd), write_fd_(write_fd) {}

  // Writes one frame; payloads above kMaxFramePayload are an error.
  absl::Status Send(char type, absl::string_view payload);
  // Blocks for the next frame. Unavailable at a clean end of stream.
  absl::StatusOr<Frame> Receive();

 private:
  absl::Status ReadExact(char* buffer, size_t size, bool* clean_eof);
  int read_fd_;
  int write_fd_;
};

}  // namespace guest_pull::guest_agent

#endif  // GUEST_AGENT_FRAME_CHANNEL_H_
