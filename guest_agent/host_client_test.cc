#include "guest_agent/host_client.h"

#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace guest_pull::guest_agent {
namespace {

const std::string kDigest = "sha256:" + std::string(64, 'a');

// Answers one Get with `data` in one chunk and then `end` as the Z payload.
absl::StatusOr<std::string> FetchAnswered(const std::string& data, const std::string& end) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return absl::InternalError("socketpair");
  std::thread host([fd = fds[1], &data, &end] {
    FrameChannel channel(fd, fd);
    absl::StatusOr<Frame> get = channel.Receive();
    if (!get.ok() || get->type != kFrameGet) return;
    channel.Send(kFrameData, data).IgnoreError();
    channel.Send(kFrameDataEnd, end).IgnoreError();
  });
  FrameChannel channel(fds[0], fds[0]);
  HostClient client(&channel);
  Fetched fetched;
  absl::StatusOr<std::string> out = client.FetchToMemory("blob", kDigest, 1 << 20, &fetched);
  host.join();
  ::close(fds[0]);
  ::close(fds[1]);
  return out;
}

TEST(HostClientTest, FetchesAnAnswerWhoseEndStatesItsSize) {
  absl::StatusOr<std::string> out = FetchAnswered("abc", R"({"size":3})");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "abc");
}

// The end frame says how many bytes the host sent: an answer cut short (or
// an end that is not {"size": N}) is a broken transfer, not the blob.
TEST(HostClientTest, RefusesAnAnswerShorterThanItsEndSays) {
  EXPECT_EQ(FetchAnswered("abc", R"({"size":10})").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(FetchAnswered("abc", "").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(FetchAnswered("abc", R"({"size":"3"})").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(FetchAnswered("abc", R"({"size":-1})").status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace guest_pull::guest_agent
