#include "guest_agent/layer_extract.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "kata_volume/verity/test_util.h"

namespace guest_pull::guest_agent {
namespace {

namespace vt = ::guest_pull::verity::testing;

class StringSource : public verity::ByteSource {
 public:
  explicit StringSource(std::string data) : data_(std::move(data)) {}
  absl::StatusOr<size_t> Read(char* buffer, size_t size) override {
    size_t n = std::min(size, data_.size() - pos_);
    memcpy(buffer, data_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  std::string data_;
  size_t pos_ = 0;
};

vt::RawHeader H(std::string name, char type, uint32_t mode = 0644, std::string link = "") {
  vt::RawHeader h;
  h.name = std::move(name);
  h.type = type;
  h.mode = mode;
  h.linkname = std::move(link);
  h.uid = 1234;
  h.gid = 4321;
  h.mtime = 1600000000;
  return h;
}

TEST(LayerExtractTest, WritesEntriesAndOverlayWhiteouts) {
  const std::string top = vt::MakeTempDir();
  const std::string dir = top + "/layer";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  vt::RawHeader file = H("etc/hello", '0', 0640);
  file.size = 5;
  std::string tar = vt::TarMember(H("etc/", '5', 0755)) + vt::TarMember(file, "hello") +
                    vt::TarMember(H("etc/link", '2', 0777, "hello")) + vt::TarMember(H("etc/hard", '1', 0, "etc/hello")) +
                    vt::TarMember(H("etc/.wh.gone", '0')) + vt::TarMember(H("opaque/.wh..wh..opq", '0')) +
                    vt::TarMember(H("../outside", '0')) + vt::TarMember(H("esc", '2', 0777, "/")) +
                    vt::TarMember(H("esc/evil", '0')) + vt::TarTrailer();
  StringSource source(tar);
  absl::StatusOr<ExtractStats> stats = ExtractLayerTar(&source, dir);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->whiteouts, 2u);
  EXPECT_EQ(stats->skipped, 1u);  // ../outside

  EXPECT_EQ(vt::ReadFileOrDie(dir + "/etc/hello"), "hello");
  struct stat st;
  ASSERT_EQ(::stat((dir + "/etc/hello").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 4321u);
  EXPECT_EQ(st.st_mtime, 1600000000);
  EXPECT_EQ(st.st_nlink, 2u);  // etc/hard
  char target[64] = {0};
  ASSERT_GT(::readlink((dir + "/etc/link").c_str(), target, sizeof(target) - 1), 0);
  EXPECT_STREQ(target, "hello");

  ASSERT_EQ(::lstat((dir + "/etc/gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  char value[4] = {0};
  if (::getxattr((dir + "/opaque").c_str(), "trusted.overlay.opaque", value, sizeof(value)) < 0) {
    GTEST_SKIP() << "no trusted xattrs on " << top << " (not root or not supported)";
  }
  EXPECT_STREQ(value, "y");
  // The symlink to "/" resolved inside the layer: nothing escaped it.
  EXPECT_EQ(::access((top + "/outside").c_str(), F_OK), -1);
  EXPECT_EQ(::access((dir + "/evil").c_str(), F_OK), 0);
  EXPECT_EQ(::access("/evil", F_OK), -1);
}

TEST(LayerExtractTest, LaterEntriesReplaceEarlierOnes) {
  const std::string dir = vt::MakeTempDir();
  vt::RawHeader file = H("x", '0');
  file.size = 3;
  std::string tar = vt::TarMember(H("x/", '5')) + vt::TarMember(H("x/child", '0')) + vt::TarMember(file, "new") +
                    vt::TarTrailer();
  StringSource source(tar);
  ASSERT_TRUE(ExtractLayerTar(&source, dir).ok());
  EXPECT_EQ(vt::ReadFileOrDie(dir + "/x"), "new");
}

// `top`/layer, made empty, beside `top`/sibling: what a member must never
// reach from inside the layer.
std::string LayerBesideASibling(const std::string& top) {
  const std::string dir = top + "/layer";
  EXPECT_EQ(::mkdir(dir.c_str(), 0755), 0);
  vt::WriteFileOrDie(top + "/sibling", "other layer");
  return dir;
}

// The header of sub/kept, 4 bytes ("kept").
vt::RawHeader KeptFile() {
  vt::RawHeader file = H("sub/kept", '0');
  file.size = 4;
  return file;
}

// A whiteout of "." or ".." names no entry: removing it would empty the
// directory holding it or, at the top, the directory holding the layer
// (the other layers beside it). Such members are skipped.
TEST(LayerExtractTest, WhiteoutsOfDotAndDotDotAreSkipped) {
  const std::string top = vt::MakeTempDir();
  const std::string dir = LayerBesideASibling(top);
  const vt::RawHeader file = KeptFile();
  for (const char* whiteout : {".wh...", "sub/.wh..", ".wh."}) {
    StringSource source(vt::TarMember(file, "kept") + vt::TarMember(H(whiteout, '0')) + vt::TarTrailer());
    absl::StatusOr<ExtractStats> stats = ExtractLayerTar(&source, dir);
    ASSERT_EQ(::access((top + "/sibling").c_str(), F_OK), 0) << whiteout << ": removed outside the layer";
    ASSERT_EQ(::access((dir + "/sub/kept").c_str(), F_OK), 0) << whiteout;
    ASSERT_TRUE(stats.ok()) << whiteout << ": " << stats.status();
    EXPECT_EQ(stats->skipped, 1u) << whiteout;
  }
}

// A name with a NUL byte (a PAX path or a GNU long name may carry one) is
// cut there by every system call: "..\0x" would be taken for "..", the
// directory holding the layer, and removed. Such members are skipped.
TEST(LayerExtractTest, PathsWithANulByteAreSkipped) {
  const std::string top = vt::MakeTempDir();
  const std::string dir = LayerBesideASibling(top);
  const vt::RawHeader file = KeptFile();
  for (const std::string& path :
       {std::string("..\0x", 4), std::string("sub/.\0x", 8), std::string("sub\0/../..", 10)}) {
    StringSource source(vt::TarMember(file, "kept") + vt::PaxMember({{"path", path}}) +
                        vt::TarMember(H("ignored", '0')) + vt::PaxMember({{"linkpath", path}}) +
                        vt::TarMember(H("hard", '1')) + vt::TarTrailer());
    absl::StatusOr<ExtractStats> stats = ExtractLayerTar(&source, dir);
    ASSERT_EQ(::access((top + "/sibling").c_str(), F_OK), 0) << "removed outside the layer";
    ASSERT_EQ(::access((dir + "/sub/kept").c_str(), F_OK), 0);
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(stats->skipped, 2u);
  }
}

// The modes of FIFOs and device nodes are kept as the tar says, whatever
// the agent's umask.
TEST(LayerExtractTest, FifoModeIsKeptWhateverTheUmask) {
  const std::string dir = vt::MakeTempDir();
  StringSource source(vt::TarMember(H("pipe", '6', 0666)) + vt::TarTrailer());
  const mode_t old_umask = ::umask(022);
  absl::StatusOr<ExtractStats> stats = ExtractLayerTar(&source, dir);
  ::umask(old_umask);
  ASSERT_TRUE(stats.ok()) << stats.status();
  struct stat st;
  ASSERT_EQ(::lstat((dir + "/pipe").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0666u);
}

TEST(LayerExtractTest, ReportsTruncatedArchives) {
  const std::string dir = vt::MakeTempDir();
  vt::RawHeader file = H("big", '0');
  file.size = 4096;
  StringSource source(vt::TarHeader(file) + std::string(100, 'x'));
  EXPECT_FALSE(ExtractLayerTar(&source, dir).ok());
}

// A directory member replaces a file or symlink of the same name earlier in
// the tar (a later member wins, as for every other type).
TEST(LayerExtractTest, DirectoryReplacesAnEarlierFileOrSymlink) {
  const std::string top = vt::MakeTempDir();
  const std::string dir = top + "/layer";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  vt::RawHeader inner = H("a/b", '0', 0644);
  inner.size = 2;
  std::string tar = vt::TarMember(H("a", '0')) + vt::TarMember(H("a/", '5', 0750)) +
                    vt::TarMember(inner, "hi") + vt::TarMember(H("l", '2', 0777, "a")) +
                    vt::TarMember(H("l/", '5', 0700)) + vt::TarTrailer();
  StringSource source(tar);
  absl::StatusOr<ExtractStats> stats = ExtractLayerTar(&source, dir);
  ASSERT_TRUE(stats.ok()) << stats.status();
  struct stat st;
  ASSERT_EQ(::lstat((dir + "/a").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(vt::ReadFileOrDie(dir + "/a/b"), "hi");
  ASSERT_EQ(::lstat((dir + "/l").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

// A directory keeps its member's mtime although files were written into it
// afterwards; one a later member replaced is left as that member made it.
TEST(LayerExtractTest, DirectoriesKeepTheirMtime) {
  const std::string dir = vt::MakeTempDir();
  vt::RawHeader d = H("d/", '5', 0755);
  d.mtime = 1500000000;
  vt::RawHeader gone = H("gone/", '5', 0755);
  gone.mtime = 1400000000;
  std::string tar = vt::TarMember(d) + vt::TarMember(H("d/f", '0')) + vt::TarMember(H("d/sub/", '5')) +
                    vt::TarMember(gone) + vt::TarMember(H("gone", '2', 0777, "d")) + vt::TarTrailer();
  StringSource source(tar);
  ASSERT_TRUE(ExtractLayerTar(&source, dir).ok());
  struct stat st;
  ASSERT_EQ(::stat((dir + "/d").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtime, 1500000000);
  ASSERT_EQ(::stat((dir + "/d/sub").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtime, 1600000000);
  ASSERT_EQ(::lstat((dir + "/gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ASSERT_EQ(::stat((dir + "/gone").c_str(), &st), 0);  // through the link: d
  EXPECT_EQ(st.st_mtime, 1500000000);
}

// A "./" member (a tar made with `tar -C dir .`) gives the layer directory
// its owner, mode and mtime, as image-rs does; a "./" that is not a
// directory is skipped and changes nothing.
TEST(LayerExtractTest, RootMemberAppliesToTheLayerDirectory) {
  const std::string top = vt::MakeTempDir();
  const std::string dir = top + "/layer";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  vt::RawHeader root = H("./", '5', 0751);
  root.mtime = 1400000000;
  std::string tar = vt::TarMember(root) + vt::TarMember(H("./a", '0')) + vt::TarMember(H(".", '0', 0600)) +
                    vt::TarTrailer();
  StringSource source(tar);
  absl::StatusOr<ExtractStats> stats = ExtractLayerTar(&source, dir);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->entries, 2u);
  EXPECT_EQ(stats->skipped, 1u);
  struct stat st;
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0751u);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 4321u);
  EXPECT_EQ(st.st_mtime, 1400000000);  // after "./a" was written into it
}

// Symlinks (the link itself), device and fifo nodes and hard links get
// their member's mtime, as containerd's applier and image-rs set it; a hard
// link's is its inode's, shared with the file it links.
TEST(LayerExtractTest, NonDirectoriesKeepTheirMtime) {
  const std::string dir = vt::MakeTempDir();
  vt::RawHeader link = H("link", '2', 0777, "/nowhere");
  link.mtime = 1300000000;
  vt::RawHeader fifo = H("fifo", '6', 0640);
  fifo.mtime = 1300000001;
  vt::RawHeader hard = H("hard", '1', 0, "file");
  hard.mtime = 1300000002;
  std::string tar = vt::TarMember(link) + vt::TarMember(fifo) + vt::TarMember(H("file", '0')) +
                    vt::TarMember(hard) + vt::TarTrailer();
  StringSource source(tar);
  ASSERT_TRUE(ExtractLayerTar(&source, dir).ok());
  struct stat st;
  ASSERT_EQ(::lstat((dir + "/link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(st.st_mtime, 1300000000);
  ASSERT_EQ(::lstat((dir + "/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mtime, 1300000001);
  ASSERT_EQ(::lstat((dir + "/file").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 2u);
  EXPECT_EQ(st.st_mtime, 1300000002);
}

// PAX xattrs are set as containerd's applier sets them: a file capability
// (a binary value, here holding '\n') survives the chown that would clear
// it and the chmod; trusted.* reaches a directory and a symlink itself;
// trusted.overlay.* is never taken from a layer.
TEST(LayerExtractTest, PaxXattrsAreSetAfterTheOwner) {
  const std::string dir = vt::MakeTempDir();
  // VFS_CAP_REVISION_2, effective; permitted cap_net_raw, cap_dac_override, cap_fowner.
  const std::string cap = std::string("\x01\x00\x00\x02\x0a\x20\x00\x00", 8) + std::string(12, '\0');
  vt::RawHeader ping = H("bin/ping", '0', 0755);
  ping.size = 4;
  std::string tar = vt::PaxMember({{"SCHILY.xattr.security.capability", cap}}) + vt::TarMember(ping, "ping") +
                    vt::PaxMember({{"SCHILY.xattr.trusted.gp-test", "dir"},
                                   {"SCHILY.xattr.trusted.overlay.redirect", "/elsewhere"}}) +
                    vt::TarMember(H("data/", '5', 0750)) +
                    vt::PaxMember({{"SCHILY.xattr.trusted.gp-test", "link"}}) +
                    vt::TarMember(H("data/link", '2', 0777, "../bin/ping")) + vt::TarTrailer();
  StringSource source(tar);
  absl::StatusOr<ExtractStats> stats = ExtractLayerTar(&source, dir);
  if (!stats.ok() && absl::StrContains(stats.status().message(), "set xattr") && ::geteuid() != 0) {
    GTEST_SKIP() << "setting security.* and trusted.* xattrs needs root: " << stats.status();
  }
  ASSERT_TRUE(stats.ok()) << stats.status();
  if (stats->xattrs_ignored > 1) GTEST_SKIP() << "the test's filesystem has no trusted or security xattrs";
  EXPECT_EQ(stats->xattrs, 3u);
  EXPECT_EQ(stats->xattrs_ignored, 1u);  // trusted.overlay.redirect

  char value[64];
  ssize_t n = ::getxattr((dir + "/bin/ping").c_str(), "security.capability", value, sizeof(value));
  ASSERT_EQ(n, 20) << strerror(errno);
  EXPECT_EQ(std::string(value, n), cap);
  struct stat st;
  ASSERT_EQ(::stat((dir + "/bin/ping").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(st.st_uid, 1234u);
  n = ::getxattr((dir + "/data").c_str(), "trusted.gp-test", value, sizeof(value));
  EXPECT_EQ(std::string(value, std::max<ssize_t>(n, 0)), "dir");
  EXPECT_LT(::getxattr((dir + "/data").c_str(), "trusted.overlay.redirect", value, sizeof(value)), 0);
  n = ::lgetxattr((dir + "/data/link").c_str(), "trusted.gp-test", value, sizeof(value));
  EXPECT_EQ(std::string(value, std::max<ssize_t>(n, 0)), "link");
  // The symlink's own xattr, not its target's.
  EXPECT_LT(::getxattr((dir + "/bin/ping").c_str(), "trusted.gp-test", value, sizeof(value)), 0);
}

}  // namespace
}  // namespace guest_pull::guest_agent
