#include "guest_agent/frame_channel.h"

#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace guest_pull::guest_agent {
namespace {

class FrameChannelTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds_), 0); }
  void TearDown() override {
    for (int fd : fds_) {
      if (fd >= 0) ::close(fd);
    }
  }
  int fds_[2] = {-1, -1};
};

TEST_F(FrameChannelTest, RoundTripsFramesInOrder) {
  FrameChannel a(fds_[0], fds_[0]), b(fds_[1], fds_[1]);
  ASSERT_TRUE(a.Send(kFrameGet, R"({"kind":"blob"})").ok());
  ASSERT_TRUE(a.Send(kFrameDataEnd, "").ok());
  absl::StatusOr<Frame> f = b.Receive();
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->type, kFrameGet);
  EXPECT_EQ(f->payload, R"({"kind":"blob"})");
  f = b.Receive();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->type, kFrameDataEnd);
  EXPECT_EQ(f->payload, "");
}

TEST_F(FrameChannelTest, HeaderIsBigEndianLengthThenType) {
  FrameChannel a(fds_[0], fds_[0]);
  ASSERT_TRUE(a.Send(kFrameLog, "hi").ok());
  char raw[7];
  ASSERT_EQ(::read(fds_[1], raw, sizeof(raw)), 7);
  EXPECT_EQ(std::string(raw, 7), std::string("\0\0\0\2Lhi", 7));
}

TEST_F(FrameChannelTest, RefusesOversizedPayloads) {
  FrameChannel a(fds_[0], fds_[0]), b(fds_[1], fds_[1]);
  EXPECT_EQ(a.Send(kFrameData, std::string(kMaxFramePayload + 1, 'x')).code(),
            absl::StatusCode::kInvalidArgument);
  const char huge[5] = {0x7f, 0, 0, 0, 'D'};
  ASSERT_EQ(::write(fds_[0], huge, 5), 5);
  EXPECT_EQ(b.Receive().status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(FrameChannelTest, ReportsClosedAndTruncatedStreams) {
  FrameChannel b(fds_[1], fds_[1]);
  const char partial[7] = {0, 0, 0, 9, 'O', 'a', 'b'};
  ASSERT_EQ(::write(fds_[0], partial, 7), 7);
  ::close(fds_[0]);
  fds_[0] = -1;
  absl::Status status = b.Receive().status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(status.message().find("middle of a frame"), std::string::npos) << status;
  EXPECT_EQ(b.Receive().status().message(), "channel closed");
}

}  // namespace
}  // namespace guest_pull::guest_agent
