// The guest's side of the conversation with the host runner: progress lines
// and fetches of the manifest and blobs by digest. The host is a courier: the
// guest hashes what arrives and never takes the host's word for anything.
#ifndef GUEST_AGENT_HOST_CLIENT_H_
#define GUEST_AGENT_HOST_CLIENT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "guest_agent/frame_channel.h"

namespace guest_pull::guest_agent {

// What arrived for one fetch.
struct Fetched {
  std::string digest;  // "sha256:<hex>" of the bytes as received
  uint64_t size = 0;
};

class HostClient {
 public:
  explicit HostClient(FrameChannel* channel) : channel_(channel) {}

  // A progress line for the host's log.
  void Log(absl::string_view line);

  // Asks for `kind` ("manifest" or "blob") `digest` and writes the answer to
  // `path`. NotFound when the host could not serve it; ResourceExhausted
  // beyond `max_size` bytes.
  absl::StatusOr<Fetched> FetchToFile(absl::string_view kind, absl::string_view digest,
                                      const std::string& path, uint64_t max_size);
  // Same, into memory.
  absl::StatusOr<std::string> FetchToMemory(absl::string_view kind, absl::string_view digest,
                                            uint64_t max_size, Fetched* fetched);

  FrameChannel* channel() { return channel_; }

 private:
  // Streams the answer of one Get into `sink`.
  template <typename Sink>
  absl::StatusOr<Fetched> Fetch(absl::string_view kind, absl::string_view digest, uint64_t max_size,
                                Sink sink);
  FrameChannel* channel_;
};

}  // namespace guest_pull::guest_agent

#endif  // GUEST_AGENT_HOST_CLIENT_H_
