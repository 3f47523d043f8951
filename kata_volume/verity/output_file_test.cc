// Output files: links followed, other kinds refused, a failed write leaving
// the old file as it was.
#include "kata_volume/verity/output_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>

#include "absl/strings/str_cat.h"
#include "base/private_mounts_for_test.h"
#include "kata_volume/verity/test_util.h"

namespace guest_pull::verity {
namespace {

using ::guest_pull::verity::testing::MakeTempDir;
using ::guest_pull::verity::testing::ReadFileOrDie;
using ::guest_pull::verity::testing::RunCommand;
using ::guest_pull::verity::testing::WriteFileOrDie;

size_t EntriesIn(const std::string& dir) {
  absl::StatusOr<std::string> out = RunCommand(absl::StrCat("ls -A ", dir, " | wc -l"));
  return out.ok() ? std::stoul(*out) : 0;
}

TEST(OutputFileTest, ResolvesToTheFileALinkLeadsTo) {
  const std::string dir = MakeTempDir();
  EXPECT_EQ(*ResolveOutputPath(dir + "/new"), dir + "/new");
  WriteFileOrDie(dir + "/real", "x");
  EXPECT_EQ(*ResolveOutputPath(dir + "/real"), dir + "/real");
  ASSERT_EQ(symlink("real", (dir + "/rel").c_str()), 0);
  ASSERT_EQ(symlink((dir + "/rel").c_str(), (dir + "/abs").c_str()), 0);
  EXPECT_EQ(*ResolveOutputPath(dir + "/abs"), dir + "/real");
  // A dangling link: its target is what a write creates.
  ASSERT_EQ(symlink("later", (dir + "/dangling").c_str()), 0);
  EXPECT_EQ(*ResolveOutputPath(dir + "/dangling"), dir + "/later");
}

// A missing directory is named at once (it is never created): the
// cache command found out only at its write, after reading every layer,
// as "cannot open <file>: No such file or directory".
TEST(OutputFileTest, AMissingDirectoryIsNamed) {
  const std::string dir = MakeTempDir();
  absl::StatusOr<std::string> r = ResolveOutputPath(dir + "/none/out.json");
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  EXPECT_EQ(r.status().message(), absl::StrCat("cannot write ", dir, "/none/out.json: its directory ",
                                               dir, "/none does not exist (it is not created)"));
  ASSERT_EQ(symlink("none/later", (dir + "/dangling").c_str()), 0);
  r = ResolveOutputPath(dir + "/dangling");
  EXPECT_NE(r.status().message().find(absl::StrCat("its directory ", dir, "/none does not exist")),
            std::string::npos)
      << r.status();
  struct stat st;
  EXPECT_NE(stat((dir + "/none").c_str(), &st), 0);
  EXPECT_EQ(*ResolveOutputPath("relative-new"), "relative-new");
}

// A directory the new file cannot be made in is refused before any work
// (the cache command hashed every layer, then failed at its write). Made
// read-only by a bind mount in a child's own mount namespace: root passes
// a mode check.
TEST(OutputFileTest, AReadOnlyDirectoryIsRefusedAtOnce) {
  const std::string dir = MakeTempDir();
  WriteFileOrDie(dir + "/old.json", "[]");
  std::optional<std::string> out = base::RunWithPrivateMounts(
      [&] { return base::BindReadOnly(dir); },
      [&] {
        std::string lines;
        for (const char* name : {"/old.json", "/new.json"}) {
          absl::StatusOr<std::string> r = ResolveOutputPath(dir + name);
          lines += r.ok() ? "ok" : std::string(r.status().message());
          lines += "\n";
        }
        return lines;
      });
  if (!out.has_value()) GTEST_SKIP() << "no bind mount here (needs CAP_SYS_ADMIN)";
  EXPECT_EQ(*out, absl::StrCat("cannot write ", dir, "/old.json: its directory ", dir,
                               ": Read-only file system\n", "cannot write ", dir,
                               "/new.json: its directory ", dir, ": Read-only file system\n"));
  EXPECT_EQ(ReadFileOrDie(dir + "/old.json"), "[]");
}

TEST(OutputFileTest, RefusesWhatIsNotARegularFile) {
  const std::string dir = MakeTempDir();
  ASSERT_EQ(mkfifo((dir + "/fifo").c_str(), 0600), 0);
  absl::StatusOr<std::string> r = ResolveOutputPath(dir + "/fifo");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("a FIFO"), std::string::npos) << r.status();
  r = ResolveOutputPath("/dev/null");
  EXPECT_NE(r.status().message().find("a character device"), std::string::npos) << r.status();
  EXPECT_EQ(ResolveOutputPath(dir).status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_EQ(symlink("loop2", (dir + "/loop1").c_str()), 0);
  ASSERT_EQ(symlink("loop1", (dir + "/loop2").c_str()), 0);
  r = ResolveOutputPath(dir + "/loop1");
  EXPECT_NE(r.status().message().find("symbolic links"), std::string::npos) << r.status();
}

TEST(OutputFileTest, TheNewFileHasNoNameWhileItIsWritten) {
  // What a kill during the write would leave: nothing beside the target
  // (this test's directory is on a file system with O_TMPFILE).
  const std::string dir = MakeTempDir();
  const std::string out = dir + "/out";
  WriteFileOrDie(out, "old");
  ASSERT_TRUE(ReplaceFile(out, /*flush=*/true, [&](int fd) {
                EXPECT_EQ(EntriesIn(dir), 1u);
                return WriteAllTo(fd, "new", 3, out);
              }).ok());
  EXPECT_EQ(ReadFileOrDie(out), "new");
  EXPECT_EQ(EntriesIn(dir), 1u);
}

TEST(OutputFileTest, ReplacesOnlyWhenTheWriteSucceeds) {
  const std::string dir = MakeTempDir();
  const std::string out = dir + "/out";
  WriteFileOrDie(out, "old");
  absl::Status s = ReplaceFile(out, /*flush=*/false, [&](int fd) {
    EXPECT_TRUE(WriteAllTo(fd, "partial", 7, out).ok());
    return absl::DataLossError("input is broken");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ReadFileOrDie(out), "old");
  EXPECT_EQ(EntriesIn(dir), 1u);  // no temp file left
  for (bool flush : {false, true}) {
    ASSERT_TRUE(ReplaceFile(out, flush, [&](int fd) { return WriteAllTo(fd, "new", 3, out); })
                    .ok());
    EXPECT_EQ(ReadFileOrDie(out), "new");
    struct stat st;
    ASSERT_EQ(stat(out.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0644u);
  }
  // The mode of the file replaced is kept.
  ASSERT_EQ(chmod(out.c_str(), 0600), 0);
  ASSERT_TRUE(ReplaceFile(out, false, [&](int fd) { return WriteAllTo(fd, "x", 1, out); }).ok());
  struct stat st;
  ASSERT_EQ(stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(EntriesIn(dir), 1u);
  // A directory that cannot take the new file: an error naming it.
  s = ReplaceFile(dir + "/missing/out", false, [](int) { return absl::OkStatus(); });
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
}

}  // namespace
}  // namespace guest_pull::verity
