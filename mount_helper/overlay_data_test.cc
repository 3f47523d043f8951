// Tests for fitting overlay mount data into one page, including compaction
// of 128 long lowerdirs.
#include "mount_helper/overlay_data.h"

#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mount_helper/overlay_options.h"

namespace mount_helper {
namespace {

using ::testing::HasSubstr;

const std::string kRoot =
    "/var/lib/containerd-guest-pull-grpc/io.containerd.snapshotter.v1.guest-"
    "pull/snapshots";

// Options like the snapshotter emits for `layers` lowerdirs, top first.
std::vector<std::string> DeepOptions(int layers) {
  std::vector<std::string> lowerdirs;
  for (int i = layers; i >= 1; --i) lowerdirs.push_back(absl::StrCat(kRoot, "/", i, "/fs"));
  return {"lowerdir=" + absl::StrJoin(lowerdirs, ":"),
          absl::StrCat("upperdir=", kRoot, "/", layers + 1, "/fs"),
          absl::StrCat("workdir=", kRoot, "/", layers + 1, "/work"),
          "index=off"};
}

TEST(OverlayDataTest, LimitIsOnePageMinusNul) {
  EXPECT_EQ(MountDataLimit(), static_cast<size_t>(getpagesize()) - 1);
}

TEST(OverlayDataTest, ShortDataIsJoinedUnchanged) {
  absl::StatusOr<OverlayData> data = FitOverlayData(DeepOptions(2), 4095);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->data, absl::StrJoin(DeepOptions(2), ","));
  EXPECT_EQ(data->working_dir, "");
}

TEST(OverlayDataTest, CompactsHundredTwentyEightLongLowerdirs) {
  // Through the option translator, as the helper does.
  std::vector<std::string> options = DeepOptions(128);
  options.push_back("io.katacontainers.volume=" + std::string(30000, 'A'));
  options.push_back("dev,suid");
  absl::StatusOr<OverlayMountRequest> request =
      TranslateOverlayOptions({absl::StrJoin(options, ",")});
  ASSERT_TRUE(request.ok()) << request.status();
  ASSERT_GT(absl::StrJoin(request->data, ",").size(), 4095u * 2);

  absl::StatusOr<OverlayData> data = FitOverlayData(request->data, 4095);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_LE(data->data.size(), 4095u);
  EXPECT_EQ(data->working_dir, kRoot);
  std::vector<std::string> lowerdirs;
  for (int i = 128; i >= 1; --i) lowerdirs.push_back(absl::StrCat(i, "/fs"));
  EXPECT_EQ(data->data, "lowerdir=" + absl::StrJoin(lowerdirs, ":") +
                            ",upperdir=129/fs,workdir=129/work,index=off");
}

TEST(OverlayDataTest, UpperdirElsewhereKeepsItAbsolute) {
  std::vector<std::string> options = DeepOptions(128);
  options[1] = "upperdir=/elsewhere/upper";
  options[2] = "workdir=/elsewhere/work";
  absl::StatusOr<OverlayData> data = FitOverlayData(options, 4095);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->working_dir, kRoot);
  EXPECT_THAT(data->data, HasSubstr(":1/fs,upperdir=/elsewhere/upper,"
                                    "workdir=/elsewhere/work,index=off"));
}

TEST(OverlayDataTest, CommonParentIsAProperParent) {
  // One path equals the common prefix of all: compact relative to its parent.
  const std::vector<std::string> options = {
      "lowerdir=/very/long/base/a:/very/long/base/a/b",
      "upperdir=/very/long/base/a/c"};
  absl::StatusOr<OverlayData> data = FitOverlayData(options, 30);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->working_dir, "/very/long/base");
  EXPECT_EQ(data->data, "lowerdir=a:a/b,upperdir=a/c");
}

TEST(OverlayDataTest, EscapedColonsStayInOnePath) {
  const std::vector<std::string> options = {
      R"(lowerdir=/long/d\:ir/x:/long/d\:ir/y)"};
  absl::StatusOr<OverlayData> data = FitOverlayData(options, 20);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->working_dir, "/long/d:ir");
  EXPECT_EQ(data->data, "lowerdir=x:y");
}

TEST(OverlayDataTest, StillTooLargeNamesTheSizes) {
  std::vector<std::string> lowerdirs;
  for (int i = 0; i < 1200; ++i) lowerdirs.push_back(absl::StrCat("/base/", i));
  absl::StatusOr<OverlayData> data =
      FitOverlayData({"lowerdir=" + absl::StrJoin(lowerdirs, ":")}, 4095);
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), absl::StatusCode::kResourceExhausted);
  const std::string message(data.status().message());
  EXPECT_THAT(message, HasSubstr("overlay mount data is 12098 bytes"));
  EXPECT_THAT(message, HasSubstr("(4898 bytes with paths relative"));
  EXPECT_THAT(message, HasSubstr("limit of 4095 bytes"));
}

TEST(OverlayDataTest, RelativeOrDotPathsCannotBeCompacted) {
  absl::StatusOr<OverlayData> data =
      FitOverlayData({"lowerdir=/aaaaaaaa/b:relative/c"}, 10);
  ASSERT_FALSE(data.ok());
  EXPECT_THAT(std::string(data.status().message()),
              HasSubstr("\"relative/c\""));
  data = FitOverlayData({"lowerdir=/aaaaaaaa/../b:/aaaaaaaa/c"}, 10);
  ASSERT_FALSE(data.ok());
  EXPECT_THAT(std::string(data.status().message()), HasSubstr("non-canonical"));
  // A relative upperdir would change meaning after the chdir.
  data = FitOverlayData({"lowerdir=/aaaaaaaa/b:/aaaaaaaa/c", "upperdir=u"}, 25);
  ASSERT_FALSE(data.ok());
  EXPECT_THAT(std::string(data.status().message()), HasSubstr("\"u\""));
  data = FitOverlayData({"lowerdir=/aaaaaaaa/../b:/aaaaaaaa/c"}, 10);
  ASSERT_FALSE(data.ok());
  EXPECT_THAT(std::string(data.status().message()), HasSubstr("non-canonical"));
}

TEST(OverlayDataTest, NoPathsToCompact) {
  absl::StatusOr<OverlayData> data = FitOverlayData({std::string(50, 'x')}, 10);
  ASSERT_FALSE(data.ok());
  EXPECT_THAT(std::string(data.status().message()),
              HasSubstr("overlay mount data is 50 bytes"));
}

}  // namespace
}  // namespace mount_helper
