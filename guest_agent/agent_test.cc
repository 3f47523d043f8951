// The agent's run as the host sees it, over a socket pair with a fake host.
#include "guest_agent/agent.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "kata_volume/guest_pull_volume.h"

namespace guest_pull::guest_agent {
namespace {

using nlohmann::json;

const std::string kManifest = "sha256:" + std::string(64, 'a');

std::string Request() {
  json metadata = {{"guest-pull.image-ref", "127.0.0.1:5000/app:v1"},
                   {"guest-pull.manifest-digest", kManifest},
                   {"guest-pull.layer-count", "1"},
                   {"guest-pull.layer.0.digest", "sha256:" + std::string(64, 'b')},
                   {"guest-pull.layer.0.verity-root-hash", std::string(64, 'c')},
                   {"guest-pull.verity-params", kata_volume::kGuestPullVerityParams}};
  return json{{"storage",
               {{"driver", "image_guest_pull"},
                {"driver_options", {"image_guest_pull=" + json{{"metadata", metadata}}.dump()}},
                {"source", "127.0.0.1:5000/app@" + kManifest}}}}
      .dump();
}

// Runs the agent against a host that answers every fetch with `error`;
// returns the failure frame's text the agent would send.
std::string FailureTextForGetError(const std::string& error) {
  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  std::thread host([fd = fds[1], error] {
    FrameChannel channel(fd, fd);
    while (true) {
      absl::StatusOr<Frame> frame = channel.Receive();
      if (!frame.ok()) return;
      if (frame->type == kFrameHello) channel.Send(kFrameRequest, Request()).IgnoreError();
      if (frame->type == kFrameGet) channel.Send(kFrameGetError, error).IgnoreError();
    }
  });
  FrameChannel channel(fds[0], fds[0]);
  HostClient client(&channel);
  GuestAgent agent(&client, "/nonexistent");
  absl::Status status = agent.Run();
  ::shutdown(fds[0], SHUT_RDWR);
  host.join();
  ::close(fds[0]);
  ::close(fds[1]);
  EXPECT_FALSE(status.ok());
  return FailureJson(status, agent.failure());
}

// The host's error text is not ours to trust to be UTF-8 (nor is a tar
// path in an extraction error): the failure frame still goes out, the odd
// bytes replaced, and says what failed.
TEST(GuestAgentTest, FailureFrameCarriesAnErrorThatIsNotUtf8) {
  std::string text;
  ASSERT_NO_THROW(text = FailureTextForGetError("registry said \xff\xfe"));
  json failure = json::parse(text, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(failure.is_object()) << text;
  EXPECT_EQ(failure["kind"], "manifest");
  EXPECT_NE(failure["error"].get<std::string>().find("host could not serve manifest"), std::string::npos);
  EXPECT_FALSE(failure.contains("layer"));
}

// However long the error (here the host's own text, as long as a frame
// allows), the failure frame still fits in a frame: otherwise it is never
// sent and the host sees a VM that stopped without a result.
TEST(GuestAgentTest, FailureFrameFitsInAFrameWhateverTheErrorsLength) {
  std::string text = FailureTextForGetError(std::string(kMaxFramePayload, '\x01'));
  EXPECT_LE(text.size(), kMaxFramePayload);
  json failure = json::parse(text, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(failure.is_object());
  EXPECT_EQ(failure["kind"], "manifest");
  EXPECT_NE(failure["error"].get<std::string>().find("host could not serve manifest"), std::string::npos);
}

// A temporary rootfs with an etc/ directory.
std::string MakeRootfs(const std::string& name) {
  std::string rootfs = std::string(::getenv("TEST_TMPDIR")) + "/" + name;
  EXPECT_EQ(::mkdir(rootfs.c_str(), 0755), 0);
  EXPECT_EQ(::mkdir((rootfs + "/etc").c_str(), 0755), 0);
  return rootfs;
}

// The image's /etc/passwd is read inside the image: an absolute symlink
// there names a file of the image, not of the guest the agent runs in.
TEST(ResolveUserTest, PasswdSymlinkResolvesInsideTheRootfs) {
  const std::string rootfs = MakeRootfs("symlinked");
  const std::string outside = std::string(::getenv("TEST_TMPDIR")) + "/guest-passwd";
  std::ofstream(outside) << "app:x:7:8::/:/bin/sh\n";
  ASSERT_EQ(::symlink(outside.c_str(), (rootfs + "/etc/passwd").c_str()), 0);
  RunSpec spec;
  absl::Status status = ResolveUser("app", rootfs, &spec);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_EQ(spec.uid, 0u);
}

// Something other than a regular file there (here a FIFO no one writes:
// in the guest, a symlink to /dev/zero reads forever into memory) is
// refused, not read.
TEST(ResolveUserTest, PasswdThatIsNotARegularFileIsRefused) {
  const std::string rootfs = MakeRootfs("fifo");
  ASSERT_EQ(::mkfifo((rootfs + "/etc/passwd").c_str(), 0644), 0);
  RunSpec spec;
  absl::Status status = ResolveUser("app", rootfs, &spec);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find("not a regular file"), std::string::npos) << status;
}

TEST(ResolveUserTest, NameIsLookedUpInTheImagesPasswd) {
  const std::string rootfs = MakeRootfs("plain");
  std::ofstream(rootfs + "/etc/passwd") << "root:x:0:0::/:/bin/sh\napp:x:7:8::/:/bin/sh\n";
  RunSpec spec;
  ASSERT_TRUE(ResolveUser("app:9", rootfs, &spec).ok());
  EXPECT_EQ(spec.uid, 7u);
  EXPECT_EQ(spec.gid, 9u);
}

// A uid without a group runs with the group of its /etc/passwd entry, as
// the OCI image spec says and containerd and Docker do, and with the root
// group when the image has no entry for it; it ran with gid = uid, a group
// the image never named.
TEST(ResolveUserTest, AUidWithoutAGroupTakesItsPasswdGroup) {
  const std::string rootfs = MakeRootfs("numeric");
  std::ofstream(rootfs + "/etc/passwd") << "root:x:0:0::/:/bin/sh\napp:x:1000:100::/:/bin/sh\n";
  const std::string bare = MakeRootfs("numeric-bare");  // no /etc/passwd at all
  struct Case {
    const char* user;
    std::string rootfs;
    uint32_t uid, gid;
  };
  for (const Case& c : {Case{"1000", rootfs, 1000, 100}, Case{"4242", rootfs, 4242, 0},
                        Case{"1000:7", rootfs, 1000, 7}, Case{"1000", bare, 1000, 0}}) {
    RunSpec spec;
    ASSERT_TRUE(ResolveUser(c.user, c.rootfs, &spec).ok()) << c.user << " in " << c.rootfs;
    EXPECT_EQ(spec.uid, c.uid) << c.user << " in " << c.rootfs;
    EXPECT_EQ(spec.gid, c.gid) << c.user << " in " << c.rootfs;
  }
}

// A group may be named (user:group, the OCI image spec), looked up in the
// image's /etc/group; one the image does not have is NotFound and changes
// nothing (it was refused as "not numeric").
TEST(ResolveUserTest, AGroupNameIsLookedUpInTheImagesGroupFile) {
  const std::string rootfs = MakeRootfs("groups");
  std::ofstream(rootfs + "/etc/passwd") << "root:x:0:0::/:/bin/sh\napp:x:1000:100::/:/bin/sh\n";
  std::ofstream(rootfs + "/etc/group") << "root:x:0:\nusers:x:100:\nstaff:x:50:app\n";
  for (const char* user : {"app:staff", "1000:staff"}) {
    RunSpec spec;
    ASSERT_TRUE(ResolveUser(user, rootfs, &spec).ok()) << user;
    EXPECT_EQ(spec.uid, 1000u) << user;
    EXPECT_EQ(spec.gid, 50u) << user;
  }
  RunSpec spec;
  spec.uid = spec.gid = 77;
  absl::Status status = ResolveUser("app:wheel", rootfs, &spec);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_NE(status.message().find("group \"wheel\" not in the image's /etc/group"), std::string::npos) << status;
  EXPECT_EQ(spec.uid, 77u);
  EXPECT_EQ(spec.gid, 77u);
  const std::string bare = MakeRootfs("groups-bare");  // no /etc/group
  EXPECT_EQ(ResolveUser("0:staff", bare, &spec).code(), absl::StatusCode::kNotFound);
}

// Without a group, the user's supplementary groups are the image's
// /etc/group entries that list its name (by name or by uid); with a group,
// that group alone; a uid the image does not know has none. They were
// always dropped (setgroups with none).
TEST(ResolveUserTest, SupplementaryGroupsComeFromTheImagesGroupFile) {
  const std::string rootfs = MakeRootfs("supplementary");
  std::ofstream(rootfs + "/etc/passwd") << "root:x:0:0::/:/bin/sh\napp:x:1000:100::/:/bin/sh\n";
  std::ofstream(rootfs + "/etc/group") << "root:x:0:\nusers:x:100:app\nstaff:x:50:bob,app\n"
                                          "wheel:x:10:bob\nadm:x:4:app\nbroken:x:zz:app\n";
  struct Case {
    const char* user;
    std::vector<gid_t> groups;
  };
  for (const Case& c : {Case{"app", {50, 4}}, Case{"1000", {50, 4}}, Case{"app:staff", {}},
                        Case{"1000:7", {}}, Case{"4242", {}}}) {
    RunSpec spec;
    spec.supplementary_gids = {99};
    ASSERT_TRUE(ResolveUser(c.user, rootfs, &spec).ok()) << c.user;
    EXPECT_EQ(spec.supplementary_gids, c.groups) << c.user;
  }
}

// The OCI spec's additionalGids (a pod's supplementalGroups) join the
// image's groups, each group once, in order.
TEST(AddSupplementaryGroupsTest, AddsTheSpecsGroupsOnce) {
  RunSpec spec;
  spec.supplementary_gids = {50, 4};
  AddSupplementaryGroups({4, 2000, 2000, 7}, &spec);
  EXPECT_EQ(spec.supplementary_gids, (std::vector<gid_t>{50, 4, 2000, 7}));
  RunSpec none;
  AddSupplementaryGroups({}, &none);
  EXPECT_TRUE(none.supplementary_gids.empty());
}

}  // namespace
}  // namespace guest_pull::guest_agent
