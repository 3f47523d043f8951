// Unit tests for cri-client's argument parsing.
#include "cli_args.h"

#include <gtest/gtest.h>

namespace cri_client {
namespace {

TEST(ParseArgs, PullWithOptionsAnywhere) {
  auto inv = ParseArgs({"--address", "/run/c.sock", "pull", "reg/x:1",
                        "--pod-annotation", "a=b=c", "--timeout=5m",
                        "--pod-annotation=io.x/y=", "--annotation", "k=v"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kPull);
  EXPECT_EQ(inv->address, "unix:///run/c.sock");
  EXPECT_EQ(inv->image, "reg/x:1");
  EXPECT_EQ(inv->timeout, absl::Minutes(5));
  EXPECT_EQ(inv->pod_annotations.at("a"), "b=c");
  EXPECT_EQ(inv->pod_annotations.at("io.x/y"), "");
  EXPECT_EQ(inv->image_annotations.at("k"), "v");
}

TEST(ParseArgs, Defaults) {
  auto inv = ParseArgs({"list"});
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->command, Command::kList);
  EXPECT_EQ(inv->address, "unix:///run/containerd/containerd.sock");
  EXPECT_EQ(inv->timeout, absl::Seconds(300));
}

TEST(ParseArgs, Errors) {
  EXPECT_FALSE(ParseArgs({}).ok());
  EXPECT_FALSE(ParseArgs({"frobnicate"}).ok());
  EXPECT_FALSE(ParseArgs({"pull"}).ok());
  EXPECT_FALSE(ParseArgs({"pull", "a", "b"}).ok());
  EXPECT_FALSE(ParseArgs({"list", "extra"}).ok());
  EXPECT_FALSE(ParseArgs({"pull", "x", "--pod-annotation", "novalue"}).ok());
  EXPECT_FALSE(ParseArgs({"pull", "x", "--pod-annotation"}).ok());
  EXPECT_FALSE(ParseArgs({"status", "x", "--verbose=1"}).ok());
  EXPECT_FALSE(ParseArgs({"version", "--bogus"}).ok());
  EXPECT_FALSE(ParseArgs({"version", "--timeout", "0s"}).ok());
}

TEST(ParseArgs, StatusVerboseAndRemoveAlias) {
  auto s = ParseArgs({"status", "img", "--verbose"});
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->verbose);
  auto r = ParseArgs({"rmi", "img"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->command, Command::kRemove);
}

TEST(ParseArgs, Help) {
  auto h = ParseArgs({"--help"});
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->command, Command::kHelp);
}

TEST(ParseTimeout, Forms) {
  EXPECT_EQ(*ParseTimeout("90"), absl::Seconds(90));
  EXPECT_EQ(*ParseTimeout("1500ms"), absl::Milliseconds(1500));
  EXPECT_EQ(*ParseTimeout("1h30m"), absl::Minutes(90));
  EXPECT_FALSE(ParseTimeout("-1s").ok());
  EXPECT_FALSE(ParseTimeout("inf").ok());
  EXPECT_FALSE(ParseTimeout("soon").ok());
}

TEST(NormalizeAddress, Forms) {
  EXPECT_EQ(NormalizeAddress("/a/b.sock"), "unix:///a/b.sock");
  EXPECT_EQ(NormalizeAddress("unix:/a/b.sock"), "unix:///a/b.sock");
  EXPECT_EQ(NormalizeAddress("unix:///a/b.sock"), "unix:///a/b.sock");
  EXPECT_EQ(NormalizeAddress("unix-abstract:x"), "unix-abstract:x");
}

}  // namespace
}  // namespace cri_client
