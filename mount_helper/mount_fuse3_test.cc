// Real mounts: runs the real mount.fuse3 with `-t guest-pull-overlayfs` (and
// the `guest-pull-overlayfs#overlay` form), which runs the built helper from
// PATH, and checks the overlay really works. Needs root; skipped otherwise.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kata_volume/guest_pull_volume.h"
#include "kata_volume/volume_option.h"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr long kOverlayfsMagic = 0x794c7630;  // OVERLAYFS_SUPER_MAGIC
constexpr char kStockName[] = "nydus-overlayfs-guest-pull";

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `argv` with PATH set to `path`, capturing output; gives up (kills the
// child) after 30 seconds.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::string& path) {
  CommandResult result;
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return result;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(pipe_fds[1], STDOUT_FILENO);
    dup2(pipe_fds[1], STDERR_FILENO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    setenv("PATH", path.c_str(), 1);
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  char buffer[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd fd = {pipe_fds[0], POLLIN, 0};
    if (poll(&fd, 1, 100) <= 0) continue;
    const ssize_t n = read(pipe_fds[0], buffer, sizeof(buffer));
    if (n <= 0) break;
    result.output.append(buffer, static_cast<size_t>(n));
  }
  close(pipe_fds[0]);
  // EOF on the pipe can come just before the child exits: wait for it until
  // the deadline, polling.
  int status = 0;
  pid_t done = 0;
  while ((done = waitpid(pid, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    usleep(1000);
  }
  if (done == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    result.output += "\n(killed after 30 s)";
    return result;
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  return result;
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream(path) << content;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

bool IsOverlay(const std::string& path) {
  struct statfs info;
  return statfs(path.c_str(), &info) == 0 && info.f_type == kOverlayfsMagic;
}

void MakeDirs(const std::string& path) {
  std::string partial;
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      partial = path.substr(0, i);
      mkdir(partial.c_str(), 0755);
    }
  }
}

// The optional fields of the last /proc/self/mountinfo line mounted at
// `target` ("shared:N", "master:N", ...; empty for a private mount);
// "missing" when nothing is mounted there.
std::string PropagationOf(const std::string& target) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line, found = "missing";
  for (int lines = 0; lines < 100000 && std::getline(in, line); ++lines) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    std::string field;
    while (fields >> field && field != "-") f.push_back(field);
    if (f.size() < 6 || f[4] != target) continue;
    found = absl::StrJoin(f.begin() + 6, f.end(), " ");
  }
  return found;
}

class MountFuse3Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "real overlay mounts need root";
    for (const char* candidate :
         {"/usr/sbin/mount.fuse3", "/sbin/mount.fuse3", "/usr/bin/mount.fuse3"}) {
      if (access(candidate, X_OK) == 0) {
        mount_fuse3_ = candidate;
        break;
      }
    }
    ASSERT_FALSE(mount_fuse3_.empty()) << "mount.fuse3 (Debian fuse3) not found";

    const char* srcdir = std::getenv("TEST_SRCDIR");
    const char* workspace = std::getenv("TEST_WORKSPACE");
    const char* tmpdir = std::getenv("TEST_TMPDIR");
    ASSERT_TRUE(srcdir && workspace && tmpdir) << "run under bazel test";
    const std::string helper =
        absl::StrCat(srcdir, "/", workspace, "/mount_helper/guest-pull-overlayfs");
    ASSERT_EQ(access(helper.c_str(), X_OK), 0) << helper;

    base_ = absl::StrCat(tmpdir, "/gpo-", getpid(), "-",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    const std::string bin = base_ + "/bin";
    MakeDirs(bin);
    ASSERT_EQ(symlink(helper.c_str(), (bin + "/guest-pull-overlayfs").c_str()), 0);
    // The second name deploy/ installs for stock kata (a symlink too).
    ASSERT_EQ(symlink(helper.c_str(), (bin + "/" + kStockName).c_str()), 0);
    path_ = bin + ":/usr/sbin:/usr/bin:/sbin:/bin";
    target_ = base_ + "/rootfs";
    upper_ = base_ + "/snap/upper/fs";
    work_ = base_ + "/snap/upper/work";
    MakeDirs(target_);
    MakeDirs(upper_);
    MakeDirs(work_);
  }

  void TearDown() override {
    // At most a few stacked mounts can exist; each umount removes one.
    for (int i = 0; i < 4 && !target_.empty() && IsOverlay(target_); ++i) {
      umount2(target_.c_str(), MNT_DETACH);
    }
  }

  // Creates `count` layer directories under `parent`, returns the lowerdir
  // value (top layer first). Layer i holds "layer<i>" and "shared" = i.
  std::string MakeLayers(const std::string& parent, int count) {
    std::vector<std::string> lowerdirs;
    for (int i = 0; i < count; ++i) {
      const std::string dir = absl::StrCat(parent, "/", i, "/fs");
      MakeDirs(dir);
      WriteFile(absl::StrCat(dir, "/layer", i), absl::StrCat("content ", i));
      WriteFile(dir + "/shared", absl::StrCat(i));
      lowerdirs.insert(lowerdirs.begin(), dir);
    }
    return absl::StrJoin(lowerdirs, ":");
  }

  static std::string VolumeOption(int layers) {
    kata_volume::GuestPullImage image;
    image.image_ref = "127.0.0.1:5000/busybox:1";
    image.manifest_digest = "sha256:" + std::string(64, 'e');
    for (int i = 0; i < layers; ++i) {
      image.layers.push_back({"sha256:" + std::string(64, 'a'), "",
                              std::string(64, 'c')});
    }
    absl::StatusOr<kata_volume::KataVirtualVolume> volume =
        kata_volume::BuildGuestPullVolume(image);
    EXPECT_TRUE(volume.ok()) << volume.status();
    absl::StatusOr<std::string> option = kata_volume::EncodeVolumeOption(*volume);
    EXPECT_TRUE(option.ok()) << option.status();
    return option.ok() ? *option : "";
  }

  // mount.fuse3 as containerd runs it: one -o per option, then -t subtype.
  CommandResult MountLikeContainerd(
      const std::vector<std::string>& options,
      const std::string& subtype = "guest-pull-overlayfs") {
    std::vector<std::string> argv = {mount_fuse3_, "overlay", target_};
    for (const std::string& option : options) {
      argv.push_back("-o");
      argv.push_back(option);
    }
    argv.push_back("-t");
    argv.push_back(subtype);
    return RunCommand(argv, path_);
  }

  // mount(8)'s form: "subtype#source" and one -o list.
  CommandResult MountHashSyntax(const std::string& option_list) {
    return RunCommand({mount_fuse3_, "guest-pull-overlayfs#overlay", target_,
                       "-o", option_list},
                      path_);
  }

  std::string mount_fuse3_, base_, path_, target_, upper_, work_;
};

TEST_F(MountFuse3Test, TwoLayersReadAndWrite) {
  const std::string lowerdir = MakeLayers(base_ + "/snap", 2);
  CommandResult result = MountLikeContainerd(
      {"lowerdir=" + lowerdir, "upperdir=" + upper_, "workdir=" + work_,
       VolumeOption(2)});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "");
  ASSERT_TRUE(IsOverlay(target_));

  EXPECT_EQ(ReadFile(target_ + "/layer0"), "content 0");
  EXPECT_EQ(ReadFile(target_ + "/layer1"), "content 1");
  EXPECT_EQ(ReadFile(target_ + "/shared"), "1");  // top layer wins

  WriteFile(target_ + "/new-file", "written through overlay");
  EXPECT_EQ(ReadFile(upper_ + "/new-file"), "written through overlay");
  WriteFile(target_ + "/shared", "changed");
  EXPECT_EQ(ReadFile(upper_ + "/shared"), "changed");
  EXPECT_EQ(ReadFile(base_ + "/snap/1/fs/shared"), "1");  // lower untouched

  // mount.fuse3 appended "dev,suid": they must not become nodev/nosuid.
  struct statvfs flags;
  ASSERT_EQ(statvfs(target_.c_str(), &flags), 0);
  EXPECT_EQ(flags.f_flag & ST_NODEV, 0u);
  EXPECT_EQ(flags.f_flag & ST_NOSUID, 0u);
  EXPECT_EQ(flags.f_flag & ST_RDONLY, 0u);

  ASSERT_EQ(umount2(target_.c_str(), 0), 0) << strerror(errno);
  EXPECT_FALSE(IsOverlay(target_));
}

TEST_F(MountFuse3Test, HashSyntaxAndFlagOptions) {
  const std::string lowerdir = MakeLayers(base_ + "/snap", 2);
  CommandResult result = MountHashSyntax(
      absl::StrCat("ro,nodev,lowerdir=", lowerdir, ",", VolumeOption(2)));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  ASSERT_TRUE(IsOverlay(target_));
  struct statvfs flags;
  ASSERT_EQ(statvfs(target_.c_str(), &flags), 0);
  EXPECT_NE(flags.f_flag & ST_RDONLY, 0u);
  EXPECT_NE(flags.f_flag & ST_NODEV, 0u);
  EXPECT_EQ(flags.f_flag & ST_NOSUID, 0u);
  EXPECT_EQ(ReadFile(target_ + "/shared"), "1");
  EXPECT_EQ(open((target_ + "/x").c_str(), O_CREAT | O_WRONLY, 0644), -1);
  EXPECT_EQ(errno, EROFS);
  ASSERT_EQ(umount2(target_.c_str(), 0), 0) << strerror(errno);
}

TEST_F(MountFuse3Test, CommasInPathsEscapedAsTheKernelReadsThem) {
  const std::string lowerdir = MakeLayers(base_ + "/snap", 1);
  MakeDirs(base_ + "/co,mma/fs");
  WriteFile(base_ + "/co,mma/fs/top", "above the comma");
  // Directories whose names end in ",ro": split at every comma, the
  // option lists would carry a read-only flag and cut paths.
  MakeDirs(base_ + "/up,ro");
  MakeDirs(base_ + "/work,ro");
  // One -o list straight to mount.fuse3, the commas in paths escaped as the
  // kernel's option parser reads them (mount(8) does not keep this form: it
  // takes the "ro" after "\," for its own read-only flag).
  CommandResult result = MountHashSyntax(
      absl::StrCat("lowerdir=", base_, "/co\\,mma/fs:", lowerdir, ",upperdir=",
                   base_, "/up\\,ro,workdir=", base_, "/work\\,ro,",
                   VolumeOption(2)));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  ASSERT_TRUE(IsOverlay(target_));
  EXPECT_EQ(ReadFile(target_ + "/top"), "above the comma");
  EXPECT_EQ(ReadFile(target_ + "/layer0"), "content 0");
  WriteFile(target_ + "/written", "through the mount");
  EXPECT_EQ(ReadFile(base_ + "/up,ro/written"), "through the mount");
  ASSERT_EQ(umount2(target_.c_str(), 0), 0) << strerror(errno);
}

TEST_F(MountFuse3Test, HundredTwentyEightLayersWithLongPaths) {
  const std::string parent =
      base_ + "/snapshots-with-a-deliberately-long-directory-name-so-that-the-"
              "mount-data-exceeds-one-page";
  const std::string lowerdir = MakeLayers(parent, 128);
  ASSERT_GT(lowerdir.size(), static_cast<size_t>(getpagesize()));
  CommandResult result = MountLikeContainerd(
      {"lowerdir=" + lowerdir, "upperdir=" + upper_, "workdir=" + work_,
       VolumeOption(128)});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  ASSERT_TRUE(IsOverlay(target_));
  for (int i = 0; i < 128; ++i) {
    EXPECT_EQ(ReadFile(absl::StrCat(target_, "/layer", i)),
              absl::StrCat("content ", i));
  }
  EXPECT_EQ(ReadFile(target_ + "/shared"), "127");
  WriteFile(target_ + "/new-file", "deep");
  EXPECT_EQ(ReadFile(upper_ + "/new-file"), "deep");
  ASSERT_EQ(umount2(target_.c_str(), 0), 0) << strerror(errno);
}

TEST_F(MountFuse3Test, HundredTwentyEightLayersUpperInSameRoot) {
  // The snapshotter's layout: every snapshot, the active one included, is
  // <root>/snapshots/<id>/{fs,work}; all paths become relative to it.
  const std::string root =
      base_ + "/a-long-state-directory-name-like-var-lib-containerd-guest-pull/"
              "snapshots";
  const std::string lowerdir = MakeLayers(root, 128);
  upper_ = root + "/129/fs";
  work_ = root + "/129/work";
  MakeDirs(upper_);
  MakeDirs(work_);
  ASSERT_GT(lowerdir.size(), static_cast<size_t>(getpagesize()));
  CommandResult result = MountLikeContainerd(
      {"lowerdir=" + lowerdir, "upperdir=" + upper_, "workdir=" + work_,
       VolumeOption(128)});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  ASSERT_TRUE(IsOverlay(target_));
  EXPECT_EQ(ReadFile(target_ + "/layer0"), "content 0");
  EXPECT_EQ(ReadFile(target_ + "/layer127"), "content 127");
  WriteFile(target_ + "/new-file", "same root");
  EXPECT_EQ(ReadFile(upper_ + "/new-file"), "same root");
  ASSERT_EQ(umount2(target_.c_str(), 0), 0) << strerror(errno);
}

TEST_F(MountFuse3Test, FailedMountReportsErrorAndData) {
  CommandResult result = MountLikeContainerd(
      {"lowerdir=" + base_ + "/missing:" + base_ + "/missing2",
       "upperdir=" + upper_, "workdir=" + work_});
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.output, HasSubstr("guest-pull-overlayfs: mount overlay on"));
  EXPECT_THAT(result.output, HasSubstr("No such file or directory"));
  EXPECT_THAT(result.output, HasSubstr("lowerdir=" + base_ + "/missing"));
  EXPECT_FALSE(IsOverlay(target_));
}

// Under the stock-kata name (type fuse.nydus-overlayfs-guest-pull) the
// helper's messages give that name, the one mount's error shows the
// operator; they said guest-pull-overlayfs whatever the name.
TEST_F(MountFuse3Test, MessagesNameTheHelperAsRun) {
  CommandResult failed = MountLikeContainerd(
      {"lowerdir=" + base_ + "/missing", "upperdir=" + upper_,
       "workdir=" + work_},
      kStockName);
  EXPECT_NE(failed.exit_code, 0);
  EXPECT_THAT(failed.output,
              HasSubstr(absl::StrCat(kStockName, ": mount overlay on")));
  EXPECT_THAT(failed.output,
              HasSubstr(absl::StrCat(kStockName, ": mount(\"overlay\"")));
  EXPECT_THAT(failed.output, Not(HasSubstr("guest-pull-overlayfs:")));
  EXPECT_FALSE(IsOverlay(target_));

  CommandResult usage = MountLikeContainerd({"upperdir=" + upper_}, kStockName);
  EXPECT_EQ(usage.exit_code, 1) << usage.output;
  EXPECT_THAT(usage.output, HasSubstr(absl::StrCat(kStockName, ": ")));
  EXPECT_THAT(usage.output, Not(HasSubstr("guest-pull-overlayfs:")));
}

// Propagation options are set one by one in the given order, as mount(8)
// does: "shared,private" ends private and "private,shared" shared (both at
// once, as one mount(2) call, were refused with EINVAL).
TEST_F(MountFuse3Test, PropagationOptionsApplyInOrder) {
  const std::string lowerdir = MakeLayers(base_ + "/snap", 1);
  CommandResult result = MountLikeContainerd(
      {"lowerdir=" + lowerdir, "upperdir=" + upper_, "workdir=" + work_, "shared", "private"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  ASSERT_TRUE(IsOverlay(target_));
  EXPECT_EQ(PropagationOf(target_), "");
  ASSERT_EQ(umount2(target_.c_str(), 0), 0) << strerror(errno);

  result = MountLikeContainerd(
      {"lowerdir=" + lowerdir, "upperdir=" + upper_, "workdir=" + work_, "private", "shared"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(PropagationOf(target_), HasSubstr("shared:"));
  ASSERT_EQ(umount2(target_.c_str(), 0), 0) << strerror(errno);
}

// EINVAL (here a workdir inside the upperdir) names the kernel log, where
// overlayfs says which option it refused.
TEST_F(MountFuse3Test, InvalidArgumentPointsAtTheKernelLog) {
  const std::string nested = upper_ + "/work";
  ASSERT_EQ(mkdir(nested.c_str(), 0755), 0);
  CommandResult result = MountLikeContainerd(
      {"lowerdir=" + MakeLayers(base_ + "/snap", 1), "upperdir=" + upper_,
       "workdir=" + nested});
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.output, HasSubstr("Invalid argument (overlayfs writes the reason to the "
                                       "kernel log: see dmesg)"));
  EXPECT_FALSE(IsOverlay(target_));
}

}  // namespace
