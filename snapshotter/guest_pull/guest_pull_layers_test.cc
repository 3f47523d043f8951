// Tests for GuestPullLayers inside the real Snapshotter core: the CRI layer
// flow answers AlreadyExists with a committed empty layer, host unpacks
// stay as they were, and the rootfs mount carries a volume that decodes and
// validates under kata's Go and Rust rules.
#include "snapshotter/guest_pull/guest_pull_layers.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <sstream>
#include <utility>

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kata_volume/guest_pull_volume.h"
#include "kata_volume/validate.h"
#include "kata_volume/verity/layer_cache.h"
#include "kata_volume/volume_option.h"
#include "snapshotter/guest_pull/labels.h"
#include "snapshotter/id_mapping.h"
#include "snapshotter/parallel_unpack.h"
#include "snapshotter/snapshotter.h"

namespace guest_pull {
namespace {

using ::snapshotter::kLabelGidMapping;
using ::snapshotter::kLabelUidMapping;
using ::snapshotter::RemoveAll;
using ::snapshotter::SnapshotFilter;
using ::snapshotter::Snapshotter;

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string Hex(char c) { return std::string(64, c); }

// Records the decisions' reasons.
class RecordingObserver : public GuestPullObserver {
 public:
  void ObserveDecision(bool skip, absl::string_view reason) override {
    reasons.push_back(std::string(skip ? "skip:" : "unpack:") +
                      std::string(reason));
  }
  void ObserveLayerCacheLookup(bool) override {}
  std::vector<std::string> reasons;
};

class GuestPullLayersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::string(getenv("TEST_TMPDIR") ?: "/tmp") + "/gpl-" +
            std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    RemoveAll(root_).IgnoreError();
    ASSERT_EQ(mkdir(root_.c_str(), 0700), 0);
    d1_ = "sha256:" + Hex('1');
    d2_ = "sha256:" + Hex('2');
    c1_ = verity::ChainId("", d1_);
    c2_ = verity::ChainId(c1_, d2_);
    verity::LayerCache cache = {
        {d1_, Hex('3'), "root:x:0:0::/root:/bin/sh\nguest:x:1234:1234::/:/bin/sh\n",
         "root:x:0:\nguest:x:1234:\n"},
        {d2_, Hex('4'), "", ""}};
    cache_path_ = root_ + "/layers-cache.json";
    ASSERT_TRUE(verity::WriteLayerCacheFile(cache_path_, cache).ok());
  }

  void Open(VerityMode mode, std::vector<std::string> exclude = {}) {
    sn_.reset();
    GuestPullOptions options;
    options.verity_mode = mode;
    options.layer_cache = cache_path_;
    options.exclude = std::move(exclude);
    options.write_passwd = write_passwd_;
    if (!mount_type_.empty()) options.mount_type = mount_type_;
    const std::string state = root_ + "/state";
    auto layers = GuestPullLayers::Create(options, state, &observer_);
    ASSERT_TRUE(layers.ok()) << layers.status();
    layers_ = *std::move(layers);
    Snapshotter::Options opts;
    opts.root = state;
    opts.remote = layers_.get();
    if (now_) opts.now = now_;
    auto sn = Snapshotter::Open(opts);
    ASSERT_TRUE(sn.ok()) << sn.status();
    sn_ = *std::move(sn);
  }

  // CRI labels as containerd 1.6 sends them for one layer.
  snapshotter::Labels CriLabels(const std::string& target, char digest,
                   const std::string& image = "127.0.0.1:5000/app:1") {
    return {{kLabelSnapshotRef, target},
            {kLabelCriImageRef, image},
            {kLabelCriLayerDigest, "sha256:" + Hex(digest)},
            {kLabelCriManifestDigest, "sha256:" + Hex('f')},
            {kLabelCriImageLayers, "sha256:" + Hex(digest)}};
  }

  // Pulls both layers as CRI would, the first one's cri.image-layers
  // listing both (containerd lists a layer's digest and those above it).
  void PullTwoLayersAsOneImage() {
    std::string n1 = "k8s.io/3/" + c1_, n2 = "k8s.io/5/" + c2_;
    snapshotter::Labels first = CriLabels(n1, 'a'), second = CriLabels(n2, 'b');
    first[kLabelCriImageLayers] = "sha256:" + Hex('a') + ",sha256:" + Hex('b');
    ASSERT_EQ(sn_->Prepare("k8s.io/2/extract-1 " + c1_, "", first).status().code(),
              absl::StatusCode::kAlreadyExists);
    ASSERT_EQ(sn_->Prepare("k8s.io/4/extract-2 " + c2_, n1, second).status().code(),
              absl::StatusCode::kAlreadyExists);
  }

  // Pulls both layers as CRI would; returns the backend names.
  void PullTwoLayers() {
    std::string n1 = "k8s.io/3/" + c1_, n2 = "k8s.io/5/" + c2_;
    auto r = sn_->Prepare("k8s.io/2/extract-1 " + c1_, "", CriLabels(n1, 'a'));
    ASSERT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists)
        << r.status();
    r = sn_->Prepare("k8s.io/4/extract-2 " + c2_, n1, CriLabels(n2, 'b'));
    ASSERT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists)
        << r.status();
  }

  // containerd's unpack (key `extract`) of a layer of image
  // 127.0.0.1:5000/other:1, chain `chain`, on the two pulled layers.
  absl::StatusOr<std::vector<snapshotter::Mount>> UnpackOtherImageLayer(
      const std::string& extract, const std::string& chain) {
    return sn_->Prepare(extract, "k8s.io/5/" + c2_,
                        CriLabels("k8s.io/7/" + chain, 'c', "127.0.0.1:5000/other:1"));
  }

  // Records the image's second layer without its parent, then its first
  // (which lists the second above itself); returns the Prepare of a rootfs
  // on the second.
  absl::Status RootfsOnSecondLayerRecordedFirst() {
    std::string n1 = "k8s.io/3/" + c1_, n2 = "k8s.io/5/" + c2_;
    snapshotter::Labels first = CriLabels(n1, 'a'), second = CriLabels(n2, 'b');
    first[kLabelCriImageLayers] = "sha256:" + Hex('a') + ",sha256:" + Hex('b');
    EXPECT_EQ(sn_->Prepare("k8s.io/4/extract-2 " + c2_, "", second).status().code(),
              absl::StatusCode::kAlreadyExists);
    EXPECT_EQ(sn_->Prepare("k8s.io/2/extract-1 " + c1_, "", first).status().code(),
              absl::StatusCode::kAlreadyExists);
    return sn_->Prepare("k8s.io/9/ctr-rootfs", n2, {}).status();
  }

  std::string root_, cache_path_, d1_, d2_, c1_, c2_;
  bool write_passwd_ = true;
  RecordingObserver observer_;
  std::unique_ptr<GuestPullLayers> layers_;
  std::unique_ptr<Snapshotter> sn_;
  std::string mount_type_;  // empty: the default
  std::function<absl::Time()> now_;  // empty: the real clock
};

TEST_F(GuestPullLayersTest, CriLayersAreCommittedEmptyWithLabels) {
  Open(VerityMode::kRequired);
  PullTwoLayers();
  auto info = sn_->Stat("k8s.io/5/" + c2_);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->kind, snapshotter::Kind::kCommitted);
  EXPECT_EQ(info->parent, "k8s.io/3/" + c1_);
  EXPECT_EQ(info->labels.at(kLabelGuestPulled), "true");
  EXPECT_EQ(info->labels.at(kLabelCriLayerDigest), "sha256:" + Hex('b'));
  EXPECT_EQ(info->labels.at(kLabelSnapshotRef), "k8s.io/5/" + c2_);
  // containerd's follow-up lookup finds it.
  auto filter = SnapshotFilter::Parse(
      {"labels.\"containerd.io/snapshot.ref\"==\"k8s.io/5/" + c2_ +
       "\",parent==\"k8s.io/3/" + c1_ + "\""});
  int found = 0;
  ASSERT_TRUE(sn_->Walk(*filter, [&](const snapshotter::Info&) {
                   ++found;
                   return absl::OkStatus();
                 }).ok());
  EXPECT_EQ(found, 1);
}

// Only a rootfs on guest-pulled layers needs the layer cache for its
// mounts (Mounts refreshes it only then).
TEST_F(GuestPullLayersTest, DecoratesOnlyOnGuestPulledLayers) {
  Open(VerityMode::kRequired);
  PullTwoLayers();
  ASSERT_TRUE(sn_->Prepare("plain-a", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("plain", "plain-a", {}).ok());
  auto pulled = sn_->Stat("k8s.io/5/" + c2_);
  auto plain = sn_->Stat("plain");
  ASSERT_TRUE(pulled.ok() && plain.ok());
  EXPECT_FALSE(layers_->Decorates({}));
  EXPECT_FALSE(layers_->Decorates({*plain}));
  EXPECT_TRUE(layers_->Decorates({*pulled}));
  EXPECT_TRUE(layers_->Decorates({*plain, *pulled}));
}

TEST_F(GuestPullLayersTest, RootfsMountCarriesValidVolume) {
  Open(VerityMode::kRequired);
  PullTwoLayers();
  auto mounts = sn_->Prepare("k8s.io/9/container", "k8s.io/5/" + c2_, {});
  ASSERT_TRUE(mounts.ok()) << mounts.status();
  ASSERT_EQ(mounts->size(), 1u);
  const snapshotter::Mount& m = (*mounts)[0];
  EXPECT_EQ(m.type, "fuse.guest-pull-overlayfs");
  EXPECT_EQ(m.source, "overlay");
  std::string option;
  bool has_upper = false, has_lower = false;
  for (const std::string& o : m.options) {
    if (o.rfind("io.katacontainers.volume=", 0) == 0) option = o;
    has_upper |= o.rfind("upperdir=", 0) == 0;
    has_lower |= o.rfind("lowerdir=", 0) == 0;
  }
  EXPECT_TRUE(has_upper && has_lower);
  auto volume = kata_volume::DecodeVolumeOption(option);
  ASSERT_TRUE(volume.ok()) << volume.status();
  EXPECT_TRUE(kata_volume::ValidateGo(*volume).ok());
  EXPECT_TRUE(kata_volume::ValidateRust(*volume).ok());
  auto image = kata_volume::ParseGuestPullImage(*volume);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(volume->source, "127.0.0.1:5000/app@sha256:" + Hex('f'));
  ASSERT_EQ(image->layers.size(), 2u);
  EXPECT_EQ(image->layers[0].diff_id, d1_);
  EXPECT_EQ(image->layers[0].verity_root_hash, Hex('3'));
  EXPECT_EQ(image->layers[1].verity_root_hash, Hex('4'));
  // Mounts and a view give the guest-pull mount too.
  auto again = sn_->Mounts("k8s.io/9/container");
  EXPECT_EQ((*again)[0].options, m.options);
  auto view = sn_->View("k8s.io/10/view", "k8s.io/3/" + c1_, {});
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ((*view)[0].type, "fuse.guest-pull-overlayfs");
  EXPECT_THAT((*view)[0].options[0], StartsWith("lowerdir="));
}

TEST_F(GuestPullLayersTest, PasswdFromCacheIsWrittenIntoTheLayer) {
  Open(VerityMode::kBestEffort);
  PullTwoLayers();
  auto mounts = sn_->Prepare("k8s.io/9/c", "k8s.io/5/" + c2_, {});
  ASSERT_TRUE(mounts.ok());
  std::string lower;
  for (const std::string& o : (*mounts)[0].options) {
    if (o.rfind("lowerdir=", 0) == 0) lower = o.substr(9);
  }
  // lowerdir is closest first: the second entry is layer 1.
  std::string layer1 = lower.substr(lower.find(':') + 1);
  std::ifstream in(layer1 + "/etc/passwd");
  std::stringstream passwd;
  passwd << in.rdbuf();
  EXPECT_THAT(passwd.str(), HasSubstr("guest:x:1234"));
  std::string layer2 = lower.substr(0, lower.find(':'));
  EXPECT_NE(access((layer2 + "/etc").c_str(), F_OK), 0);
  // The layer holding files records them (recovery never makes it again
  // empty); the empty one records nothing.
  auto used1 = sn_->GetUsage("k8s.io/3/" + c1_);
  auto used2 = sn_->GetUsage("k8s.io/5/" + c2_);
  ASSERT_TRUE(used1.ok() && used2.ok());
  EXPECT_GE(used1->inodes, 4);  // fs/, etc/, passwd, group
  EXPECT_GT(used1->size, 0);
  EXPECT_EQ(used2->inodes, 0);
  // The layer has them: the container's own directory gets nothing.
  std::string upper;
  for (const std::string& o : (*mounts)[0].options) {
    if (o.rfind("upperdir=", 0) == 0) upper = o.substr(9);
  }
  ASSERT_FALSE(upper.empty());
  EXPECT_NE(access((upper + "/etc").c_str(), F_OK), 0);
}

// Layers pulled before the cache had their /etc/passwd and /etc/group: a
// container created once it has them gets them in its own upper directory,
// each from the highest layer that has it (here layer 2 deletes the group
// file: a whiteout), and the layers stay without content.
TEST_F(GuestPullLayersTest, UserFilesCachedAfterThePullGoToTheContainer) {
  ASSERT_TRUE(verity::WriteLayerCacheFile(
                  cache_path_, {{d1_, Hex('3'), "", ""}, {d2_, Hex('4'), "", ""}})
                  .ok());
  Open(VerityMode::kBestEffort);
  PullTwoLayers();
  ASSERT_TRUE(verity::WriteLayerCacheFile(
                  cache_path_, {{d1_, Hex('3'), "guest:x:1234:1234::/:/bin/sh\n",
                                 "guest:x:1234:\n"},
                                {d2_, Hex('4'), "", "WHITEOUT"}})
                  .ok());
  auto mounts = sn_->Prepare("k8s.io/9/c", "k8s.io/5/" + c2_, {});
  ASSERT_TRUE(mounts.ok()) << mounts.status();
  std::string upper, lower;
  for (const std::string& o : (*mounts)[0].options) {
    if (o.rfind("upperdir=", 0) == 0) upper = o.substr(9);
    if (o.rfind("lowerdir=", 0) == 0) lower = o.substr(9);
  }
  std::ifstream in(upper + "/etc/passwd");
  std::stringstream passwd;
  passwd << in.rdbuf();
  EXPECT_EQ(passwd.str(), "guest:x:1234:1234::/:/bin/sh\n");
  struct stat group;
  ASSERT_EQ(lstat((upper + "/etc/group").c_str(), &group), 0);
  EXPECT_TRUE(S_ISCHR(group.st_mode));
  EXPECT_EQ(group.st_rdev, makedev(0, 0));
  EXPECT_NE(access((lower.substr(lower.find(':') + 1) + "/etc").c_str(), F_OK), 0);
  EXPECT_EQ(sn_->GetUsage("k8s.io/3/" + c1_)->inodes, 0);
  // A view shows the layers only: nothing is written for it.
  auto view = sn_->View("k8s.io/10/v", "k8s.io/5/" + c2_, {});
  ASSERT_TRUE(view.ok()) << view.status();
}

// A layer unpacked on the host onto guest-pulled ones (an image the policy
// keeps on the host sharing their base) is an active snapshot on them too,
// but not a container: its upper directory becomes the layer at Commit, so
// nothing may be written into it beside what containerd applies.
TEST_F(GuestPullLayersTest, UserFilesAreNotWrittenIntoAHostUnpack) {
  ASSERT_TRUE(verity::WriteLayerCacheFile(
                  cache_path_, {{d1_, Hex('3'), "", ""}, {d2_, Hex('4'), "", ""}})
                  .ok());
  Open(VerityMode::kBestEffort, {".*/other:.*"});
  PullTwoLayers();
  ASSERT_TRUE(verity::WriteLayerCacheFile(
                  cache_path_, {{d1_, Hex('3'), "guest:x:1234:1234::/:/bin/sh\n",
                                 "guest:x:1234:\n"},
                                {d2_, Hex('4'), "", ""}})
                  .ok());
  const std::string c3 = verity::ChainId(c2_, "sha256:" + Hex('5'));
  const std::string extract = "k8s.io/6/extract-3 " + c3;
  auto unpack = UnpackOtherImageLayer(extract, c3);
  ASSERT_TRUE(unpack.ok()) << unpack.status();
  EXPECT_EQ(observer_.reasons.back(), "unpack:policy");
  std::string upper;
  for (const std::string& o : (*unpack)[0].options) {
    if (o.rfind("upperdir=", 0) == 0) upper = o.substr(9);
  }
  ASSERT_FALSE(upper.empty());
  EXPECT_NE(access((upper + "/etc").c_str(), F_OK), 0) << "written into the unpack's upper dir";
  // The layer containerd commits holds only what it applied (nothing here).
  ASSERT_TRUE(sn_->Commit("k8s.io/7/" + c3, extract, {}).ok());
  EXPECT_EQ(sn_->GetUsage("k8s.io/7/" + c3)->inodes, 1);  // its fs/ only
}

// With write_passwd off nothing is written, before or after the pull.
TEST_F(GuestPullLayersTest, UserFilesAreNotWrittenWhenTurnedOff) {
  ASSERT_TRUE(verity::WriteLayerCacheFile(cache_path_, {{d1_, Hex('3'), "", ""}}).ok());
  write_passwd_ = false;
  Open(VerityMode::kBestEffort);
  PullTwoLayers();
  ASSERT_TRUE(verity::WriteLayerCacheFile(
                  cache_path_, {{d1_, Hex('3'), "guest:x:1:1::/:/bin/sh\n", ""},
                                {d2_, Hex('4'), "", ""}})
                  .ok());
  auto mounts = sn_->Prepare("k8s.io/9/c", "k8s.io/5/" + c2_, {});
  ASSERT_TRUE(mounts.ok()) << mounts.status();
  for (const std::string& o : (*mounts)[0].options) {
    if (o.rfind("upperdir=", 0) == 0) {
      EXPECT_NE(access((o.substr(9) + "/etc").c_str(), F_OK), 0);
    }
  }
}

TEST_F(GuestPullLayersTest, RequiredModeFailsWithoutHashes) {
  verity::LayerCache partial = {{d1_, Hex('3'), "", ""}};
  ASSERT_TRUE(verity::WriteLayerCacheFile(cache_path_, partial).ok());
  Open(VerityMode::kRequired);
  PullTwoLayers();
  auto mounts = sn_->Prepare("k8s.io/9/c", "k8s.io/5/" + c2_, {});
  EXPECT_EQ(mounts.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(mounts.status().message(), HasSubstr("sha256:bbbb"));
  EXPECT_EQ(sn_->Stat("k8s.io/9/c").status().code(),
            absl::StatusCode::kNotFound);
}

// The verity hashes of the rootfs volume on `top` (bottom layer first).
std::vector<std::string> VolumeHashes(Snapshotter& sn, const std::string& key,
                                      const std::string& top) {
  auto mounts = sn.Prepare(key, top, {});
  if (!mounts.ok()) return {mounts.status().ToString()};
  std::string option;
  for (const std::string& o : (*mounts)[0].options) {
    if (o.rfind("io.katacontainers.volume=", 0) == 0) option = o;
  }
  auto volume = kata_volume::DecodeVolumeOption(option);
  if (!volume.ok()) return {volume.status().ToString()};
  auto image = kata_volume::ParseGuestPullImage(*volume);
  if (!image.ok()) return {image.status().ToString()};
  std::vector<std::string> hashes;
  for (const auto& layer : image->layers) {
    hashes.push_back(layer.verity_root_hash);
  }
  return hashes;
}

// An image's layer annotations reach Prepare as containerd.io/snapshot/
// labels: a hash set there is dropped, and the layer cache's is used.
TEST_F(GuestPullLayersTest, ImageCannotSetTheExpectedHash) {
  Open(VerityMode::kRequired);
  std::string n1 = "k8s.io/3/" + c1_, n2 = "k8s.io/5/" + c2_;
  snapshotter::Labels spoofed = CriLabels(n1, 'a');
  spoofed[kLabelInheritedVerityRootHash] = Hex('e');
  spoofed[kLabelVerityRootHash] = Hex('e');
  ASSERT_EQ(
      sn_->Prepare("k8s.io/2/extract-1 " + c1_, "", spoofed).status().code(),
      absl::StatusCode::kAlreadyExists);
  spoofed = CriLabels(n2, 'b');
  spoofed[kLabelInheritedVerityRootHash] = Hex('e');
  ASSERT_EQ(
      sn_->Prepare("k8s.io/4/extract-2 " + c2_, n1, spoofed).status().code(),
      absl::StatusCode::kAlreadyExists);
  for (const std::string& name : {n1, n2}) {
    auto info = sn_->Stat(name);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->labels.count(kLabelInheritedVerityRootHash), 0u);
    EXPECT_EQ(info->labels.count(kLabelVerityRootHash), 0u);
    EXPECT_EQ(info->labels.at(kLabelGuestPulled), "true");
  }
  EXPECT_EQ(VolumeHashes(*sn_, "k8s.io/9/c", n2),
            (std::vector<std::string>{Hex('3'), Hex('4')}));

  // Without a cache entry, required mode reports the hash missing.
  verity::LayerCache partial = {{d1_, Hex('3'), "", ""}};
  ASSERT_TRUE(verity::WriteLayerCacheFile(cache_path_, partial).ok());
  auto missing = sn_->Prepare("k8s.io/10/c", n2, {});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(missing.status().message(), HasSubstr("sha256:bbbb"));

  // An operator's label update still sets it.
  snapshotter::Info update{n2};
  update.labels[kLabelInheritedVerityRootHash] = Hex('5');
  auto updated = sn_->Update(
      update, {std::string("labels.") + kLabelInheritedVerityRootHash});
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(VolumeHashes(*sn_, "k8s.io/11/c", n2),
            (std::vector<std::string>{Hex('3'), Hex('5')}));
}

// The marker in an image's annotations (Prepare and Commit labels of a
// host unpack) is dropped: the layer stays a host layer, and an Update
// cannot add the marker either.
TEST_F(GuestPullLayersTest, ImageCannotMarkAHostLayerGuestPulled) {
  Open(VerityMode::kRequired, {"registry.k8s.io/pause:.*"});
  snapshotter::Labels labels =
      CriLabels("k8s.io/2/" + c1_, 'c', "registry.k8s.io/pause:3.9");
  labels[kLabelGuestPulled] = "true";
  auto extract = sn_->Prepare("k8s.io/1/extract-1 " + c1_, "", labels);
  ASSERT_TRUE(extract.ok()) << extract.status();
  EXPECT_EQ((*extract)[0].type, "bind");
  ASSERT_TRUE(
      sn_->Commit("k8s.io/2/" + c1_, "k8s.io/1/extract-1 " + c1_, labels).ok());
  auto info = sn_->Stat("k8s.io/2/" + c1_);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->labels.count(kLabelGuestPulled), 0u);
  EXPECT_EQ(info->labels.at(kLabelCriImageRef), "registry.k8s.io/pause:3.9");

  snapshotter::Info update{"k8s.io/2/" + c1_};
  update.labels = info->labels;
  update.labels[kLabelGuestPulled] = "true";
  auto updated = sn_->Update(update, {});
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->labels.count(kLabelGuestPulled), 0u);
  updated = sn_->Update(update, {std::string("labels.") + kLabelGuestPulled});
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->labels.count(kLabelGuestPulled), 0u);

  auto rootfs = sn_->Prepare("k8s.io/3/c", "k8s.io/2/" + c1_, {});
  ASSERT_TRUE(rootfs.ok()) << rootfs.status();
  EXPECT_EQ((*rootfs)[0].type, "overlay");
}

// Labels no rootfs volume could be built from (the volume's own checks)
// fall back to a host unpack instead of a guest pull whose containers all
// fail.
TEST_F(GuestPullLayersTest, LabelsTheVolumeRefusesAreUnpackedOnHost) {
  Open(VerityMode::kOff);
  const std::string sha512 = "sha512:" + std::string(128, 'a');
  std::vector<std::pair<const char*, std::string>> cases = {
      {kLabelCriLayerDigest, sha512},
      {kLabelCriLayerDigest, "sha256:" + std::string(64, 'A')},
      {kLabelCriManifestDigest, sha512},
      {kLabelCriImageRef, "Not A Reference!"},
      {kLabelCriImageRef, std::string(300, 'a') + ":1"},
      // A layer above this one that the volume could not list.
      {kLabelCriImageLayers, "sha256:" + Hex('a') + "," + sha512},
  };
  int i = 0;
  for (const auto& [label, value] : cases) {
    SCOPED_TRACE(value);
    std::string target = "k8s.io/t" + std::to_string(i);
    std::string key = "k8s.io/1/extract-x" + std::to_string(i++);
    snapshotter::Labels labels = CriLabels(target, 'a');
    labels[label] = value;
    auto r = sn_->Prepare(key, "", labels);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ((*r)[0].type, "bind");
    EXPECT_EQ(observer_.reasons.back(), "unpack:unsupported");
    auto info = sn_->Stat(key);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->labels.count(kLabelGuestPulled), 0u);
  }
  // The same labels with supported values are guest-pulled.
  auto r = sn_->Prepare("k8s.io/1/extract-ok", "", CriLabels("k8s.io/t-ok", 'a'));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(observer_.reasons.back(), "skip:guest-pull");
}

TEST_F(GuestPullLayersTest, NonCriAndExcludedLayersAreUnpackedOnHost) {
  Open(VerityMode::kRequired, {"registry.k8s.io/pause:.*"});
  auto plain = sn_->Prepare("default/1/extract-1 " + c1_, "",
                            {{kLabelSnapshotRef, "default/2/" + c1_}});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ((*plain)[0].type, "bind");
  auto pause = sn_->Prepare(
      "k8s.io/1/extract-1 " + c2_, "",
      CriLabels("k8s.io/2/" + c2_, 'c', "registry.k8s.io/pause:3.9"));
  ASSERT_TRUE(pause.ok()) << pause.status();
  EXPECT_EQ((*pause)[0].type, "bind");
}

// containerd passes a pod's annotations as the labels of its sandbox rootfs
// Prepare: whoever writes them must not get a layer committed by a name of
// their choosing. Only containerd's unpack keys ("extract-...") name one.
TEST_F(GuestPullLayersTest, LayerLabelsOnAPrepareThatIsNotAnUnpackCommitNothing) {
  Open(VerityMode::kOff);
  auto sandbox = sn_->Prepare("k8s.io/7/0123456789abcdef", "",
                              CriLabels("chosen-by-pod-author", 'a'));
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  EXPECT_EQ(observer_.reasons.back(), "unpack:not-unpack");
  EXPECT_EQ(sn_->Stat("chosen-by-pod-author").status().code(), absl::StatusCode::kNotFound);
}

// A layer on one unpacked on the host (the image's base pulled without CRI
// labels first) is unpacked on the host too: no volume could describe the
// chain, and a guest-pulled layer there would leave the image unusable.
TEST_F(GuestPullLayersTest, LayerOnAHostLayerIsUnpackedOnHost) {
  Open(VerityMode::kOff);
  std::string base = "k8s.io/2/" + c1_;
  ASSERT_TRUE(sn_->Prepare("k8s.io/1/extract-1 " + c1_, "", {{kLabelSnapshotRef, base}}).ok());
  ASSERT_TRUE(sn_->Commit(base, "k8s.io/1/extract-1 " + c1_, {}).ok());
  auto upper = sn_->Prepare("k8s.io/4/extract-2 " + c2_, base, CriLabels("k8s.io/5/" + c2_, 'b'));
  ASSERT_TRUE(upper.ok()) << upper.status();
  EXPECT_EQ(observer_.reasons.back(), "unpack:parent-on-host");
  ASSERT_TRUE(sn_->Commit("k8s.io/5/" + c2_, "k8s.io/4/extract-2 " + c2_, {}).ok());
  auto rootfs = sn_->Prepare("k8s.io/9/c", "k8s.io/5/" + c2_, {});
  ASSERT_TRUE(rootfs.ok()) << rootfs.status();
  EXPECT_EQ((*rootfs)[0].type, "overlay");
}

// A host unpack (an excluded image) on a base pulled in the guest is
// mounted by containerd's applier on the host: a plain overlay, never a
// volume of the base's image, and verity mode "required" does not refuse it
// for that image's missing hashes. The image's rootfs is refused as a host
// layer on guest-pulled ones.
TEST_F(GuestPullLayersTest, HostUnpackOnGuestPulledLayersGetsAPlainMount) {
  ASSERT_TRUE(verity::WriteLayerCacheFile(cache_path_, {}).ok());
  Open(VerityMode::kRequired, {".*/other:.*"});
  PullTwoLayers();
  const std::string c3 = verity::ChainId(c2_, "sha256:" + Hex('5'));
  const std::string extract = "k8s.io/6/extract-3 " + c3;
  auto unpack = UnpackOtherImageLayer(extract, c3);
  ASSERT_TRUE(unpack.ok()) << unpack.status();
  EXPECT_EQ(observer_.reasons.back(), "unpack:policy");
  ASSERT_EQ(unpack->size(), 1u);
  EXPECT_EQ((*unpack)[0].type, "overlay");
  for (const std::string& o : (*unpack)[0].options) {
    EXPECT_THAT(o, Not(StartsWith("io.katacontainers.volume=")));
  }
  auto again = sn_->Mounts(extract);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)[0].type, "overlay");
  ASSERT_TRUE(sn_->Commit("k8s.io/7/" + c3, extract, {}).ok());
  auto rootfs = sn_->Prepare("k8s.io/9/c", "k8s.io/7/" + c3, {}).status();
  EXPECT_EQ(rootfs.code(), absl::StatusCode::kFailedPrecondition) << rootfs;
  EXPECT_THAT(std::string(rootfs.message()), HasSubstr("was unpacked on the host"));
}

// A pod in a user namespace (CRI userns_options): containerd 2.x without the
// remap-ids capability first prepares "<chain>-remap" (1.7:
// "<chain>-<uid>-<gid>-remap") to chown a copy of the image, then the
// rootfs on that copy with the uidmapping/gidmapping labels (with the
// capability, the rootfs on the image with the labels). On guest-pulled
// layers neither can give the container its files' owners: each is
// refused naming the user namespace, and nothing is recorded. Without the
// labels the rootfs goes on; a chain kept on the host is not refused.
TEST_F(GuestPullLayersTest, UserNamespaceRootfsOnGuestPulledLayersIsRefused) {
  Open(VerityMode::kOff);
  PullTwoLayers();
  const std::string n2 = "k8s.io/5/" + c2_;
  const snapshotter::Labels userns = {
      {kLabelUidMapping, "0:65536:65536"}, {kLabelGidMapping, "0:65536:65536"}};
  auto expect_refused = [&](const absl::Status& s, const std::string& key,
                            const std::string& evidence) {
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_THAT(std::string(s.message()),
                HasSubstr("snapshot " + key + " is for a container in a user namespace (" +
                          evidence));
    EXPECT_THAT(std::string(s.message()),
                HasSubstr("on layers pulled in the guest (image 127.0.0.1:5000/app:1)"));
    EXPECT_THAT(std::string(s.message()), HasSubstr("hostUsers: true"));
    EXPECT_THAT(std::string(s.message()), HasSubstr("guest_pull.exclude"));
    EXPECT_EQ(sn_->Stat(key).status().code(), absl::StatusCode::kNotFound);
  };
  for (const std::string& key : {"k8s.io/9/sha256:" + Hex('7') + "-remap",
                                 "k8s.io/9/" + c2_ + "-65536-65536-remap"}) {
    expect_refused(sn_->Prepare(key, n2, {}).status(), key, "containerd's copy");
  }
  for (bool view : {false, true}) {
    const std::string key = view ? "k8s.io/10/ro-ctr" : "k8s.io/10/ctr";
    expect_refused(view ? sn_->View(key, n2, userns).status()
                        : sn_->Prepare(key, n2, userns).status(),
                   key, "labels uidmapping=\"0:65536:65536\" gidmapping=\"0:65536:65536\"");
  }
  // A copy made before (an older daemon handed it the volume): the rootfs
  // on it is refused for the user namespace, not as a host layer.
  const std::string copy = "k8s.io/11/sha256:" + Hex('8');
  ASSERT_TRUE(sn_->Prepare("k8s.io/11/copy", n2, {}).ok());
  ASSERT_TRUE(sn_->Commit(copy, "k8s.io/11/copy", {}).ok());
  expect_refused(sn_->Prepare("k8s.io/12/ctr", copy, userns).status(), "k8s.io/12/ctr",
                 "labels uidmapping=");
  // No user namespace: the rootfs goes on. "-remap" keys that are not
  // containerd's are no evidence either.
  EXPECT_TRUE(sn_->Prepare("k8s.io/13/ctr", n2, {}).ok());
  EXPECT_TRUE(sn_->Prepare("k8s.io/13/my-remap", n2, {}).ok());
  EXPECT_TRUE(sn_->Prepare("k8s.io/13/sha256:" + Hex('7') + "-1-remap", n2, {}).ok());
  // Layers kept on the host: containerd's chown (or the labels) work there.
  ASSERT_TRUE(sn_->Prepare("k8s.io/14/host", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("k8s.io/15/sha256:" + Hex('9'), "k8s.io/14/host", {}).ok());
  EXPECT_TRUE(sn_->Prepare("k8s.io/16/sha256:" + Hex('9') + "-remap",
                           "k8s.io/15/sha256:" + Hex('9'), {}).ok());
  // (Maps whose root is this root: Bazel's sandbox cannot chown to others.)
  auto host = sn_->Prepare("k8s.io/17/ctr", "k8s.io/15/sha256:" + Hex('9'),
                           {{kLabelUidMapping, "0:0:65536"}, {kLabelGidMapping, "0:0:65536"}});
  EXPECT_TRUE(host.ok()) << host.status();
}

// The same maps added by an Update to a rootfs (or a view) on guest-pulled
// layers: refused as its Prepare with them, the labels unchanged and the
// mounts still served; other labels go on, and on layers kept on the host
// the maps are taken (containerd's overlayfs idmaps the mounts then).
TEST_F(GuestPullLayersTest, UpdateAddingIdMapsOnGuestPulledLayersIsRefused) {
  Open(VerityMode::kOff);
  PullTwoLayers();
  const std::string n2 = "k8s.io/5/" + c2_;
  ASSERT_TRUE(sn_->Prepare("k8s.io/20/ctr", n2, {{"app", "1"}}).ok());
  ASSERT_TRUE(sn_->View("k8s.io/20/ro", n2, {}).ok());
  const std::string uid_path = std::string("labels.") + kLabelUidMapping;
  for (const std::string key : {"k8s.io/20/ctr", "k8s.io/20/ro"}) {
    snapshotter::Info update;
    update.name = key;
    update.labels = {{kLabelUidMapping, "0:65536:65536"}, {"app", "2"}};
    for (const std::vector<std::string>& paths :
         {std::vector<std::string>{uid_path}, std::vector<std::string>{"labels"},
          std::vector<std::string>{}}) {
      auto refused = sn_->Update(update, paths);
      EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition)
          << key << " " << refused.status();
      EXPECT_THAT(std::string(refused.status().message()),
                  HasSubstr("snapshot " + key + " is for a container in a user namespace"));
    }
    auto info = sn_->Stat(key);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->labels.count(kLabelUidMapping), 0u) << key;
    EXPECT_TRUE(sn_->Mounts(key).ok()) << key;
    auto other = sn_->Update(update, {"labels.app"});
    ASSERT_TRUE(other.ok()) << other.status();
    EXPECT_EQ(other->labels.at("app"), "2");
  }
  ASSERT_TRUE(sn_->Prepare("k8s.io/21/host", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("k8s.io/22/sha256:" + Hex('9'), "k8s.io/21/host", {}).ok());
  ASSERT_TRUE(sn_->Prepare("k8s.io/23/ctr", "k8s.io/22/sha256:" + Hex('9'), {}).ok());
  snapshotter::Info host;
  host.name = "k8s.io/23/ctr";
  host.labels = {{kLabelUidMapping, "0:0:65536"}};
  auto taken = sn_->Update(host, {uid_path});
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(taken->labels.at(kLabelUidMapping), "0:0:65536");
  // Removing maps is always taken (a rootfs given them before this check).
  host.labels.clear();
  auto removed = sn_->Update(host, {uid_path});
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(removed->labels.count(kLabelUidMapping), 0u);
}

// A layer's target that exists on another parent is not this layer: the
// same chain ID always has the same parent, so the Prepare is refused
// rather than answered AlreadyExists (containerd would take the other one).
TEST_F(GuestPullLayersTest, ExistingTargetOnAnotherParentIsRefused) {
  Open(VerityMode::kOff);
  PullTwoLayers();
  std::string other = "k8s.io/6/sha256:" + Hex('9');
  ASSERT_EQ(sn_->Prepare("k8s.io/5/extract-o", "", CriLabels(other, 'c')).status().code(),
            absl::StatusCode::kAlreadyExists);
  auto again = sn_->Prepare("k8s.io/7/extract-2 " + c2_, other, CriLabels("k8s.io/5/" + c2_, 'b'));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition) << again.status();
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("on parent \"k8s.io/3/"));
  // On its own parent, the layer is the one committed before.
  again = sn_->Prepare("k8s.io/8/extract-2 " + c2_, "k8s.io/3/" + c1_,
                       CriLabels("k8s.io/5/" + c2_, 'b'));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists) << again.status();
}

// containerd's parallel unpack prepares every layer without its parent
// (2.3+ names it in a label): a guest-pulled one is refused, recording
// nothing and counting no decision; the first layer (no label) and a layer
// on its parent are pulled as before.
TEST_F(GuestPullLayersTest, LayerPreparedInParallelIsRefused) {
  Open(VerityMode::kOff);
  std::string n1 = "k8s.io/3/" + c1_, n2 = "k8s.io/5/" + c2_;
  ASSERT_EQ(sn_->Prepare("k8s.io/2/extract-1 " + c1_, "", CriLabels(n1, 'a')).status().code(),
            absl::StatusCode::kAlreadyExists);
  size_t decisions = observer_.reasons.size();
  snapshotter::Labels labels = CriLabels(n2, 'b');
  labels[snapshotter::kLabelParentChainId] = c1_;
  labels[snapshotter::kLabelDiffId] = d2_;  // c2_ is its chain on c1_
  auto s = sn_->Prepare("k8s.io/4/extract-2 " + c2_, "", labels).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("remove capabilities = [\"rebase\"]"));
  EXPECT_EQ(observer_.reasons.size(), decisions);
  EXPECT_EQ(sn_->Stat(n2).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(sn_->Stat("k8s.io/4/extract-2 " + c2_).status().code(),
            absl::StatusCode::kNotFound);
  // containerd 2.3+'s sequential unpack sends the label with the parent.
  EXPECT_EQ(sn_->Prepare("k8s.io/6/extract-2 " + c2_, n1, labels).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(sn_->Stat(n2)->parent, n1);
}

// containerd 2.2's parallel unpack names no parent: a layer prepared
// without one is refused once its image's first layer is recorded (that
// record lists it above itself); the first layer and a layer on its parent
// are pulled as before.
TEST_F(GuestPullLayersTest, LayerPreparedInParallelWithoutLabelIsRefused) {
  Open(VerityMode::kOff);
  std::string n1 = "k8s.io/3/" + c1_, n2 = "k8s.io/5/" + c2_;
  snapshotter::Labels first = CriLabels(n1, 'a'), second = CriLabels(n2, 'b');
  first[kLabelCriImageLayers] = "sha256:" + Hex('a') + ",sha256:" + Hex('b');
  ASSERT_EQ(sn_->Prepare("k8s.io/2/extract-1 " + c1_, "", first).status().code(),
            absl::StatusCode::kAlreadyExists);
  auto s = sn_->Prepare("k8s.io/4/extract-2 " + c2_, "", second).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("remove capabilities = [\"rebase\"]"));
  EXPECT_THAT(std::string(s.message()), HasSubstr(n1 + ", a layer of the same image"));
  EXPECT_EQ(sn_->Stat(n2).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(sn_->Prepare("k8s.io/6/extract-2 " + c2_, n1, second).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(sn_->Stat(n2)->parent, n1);
  // The first layer again (another pull of the image) is not refused.
  EXPECT_EQ(sn_->Prepare("k8s.io/7/extract-1 " + c1_, "", first).status().code(),
            absl::StatusCode::kAlreadyExists);
}

// A rootfs on a layer recorded without its parent (its image's first layer
// recorded after it, or by a daemon that did not refuse it) is refused
// with the recovery, not handed to the guest with too few layers; nothing
// is recorded.
TEST_F(GuestPullLayersTest, RootfsOnALayerRecordedWithoutItsParentIsRefused) {
  Open(VerityMode::kOff);
  absl::Status s = RootfsOnSecondLayerRecordedFirst();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("layer k8s.io/5/" + c2_ + " of image 127.0.0.1:5000/app:1 was recorded "
                        "without its parent (k8s.io/3/" + c1_));
  EXPECT_THAT(std::string(s.message()), HasSubstr("crictl rmi"));
  EXPECT_EQ(sn_->Stat("k8s.io/9/ctr-rootfs").status().code(), absl::StatusCode::kNotFound);
  // The first layer alone is a whole chain, not one recorded without its
  // parent; it lists the second above itself, so a rootfs on it is refused
  // as a lower part of the image it was recorded for.
  absl::Status first = sn_->Prepare("k8s.io/9/ctr-rootfs-1", "k8s.io/3/" + c1_, {}).status();
  EXPECT_THAT(std::string(first.message()), HasSubstr("was recorded as a lower layer of image"));
}

// The same with verity mode "required": the layer recorded without its
// parent has no cache entry under its chain (a bottom layer's chain ID is
// its diff_id), which must not turn the refusal into "add the hashes to the
// layer cache", a recovery that cannot help.
TEST_F(GuestPullLayersTest, RootfsOnALayerRecordedWithoutItsParentIsRefusedInRequiredMode) {
  Open(VerityMode::kRequired);
  absl::Status s = RootfsOnSecondLayerRecordedFirst();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("layer k8s.io/5/" + c2_ + " of image 127.0.0.1:5000/app:1 was recorded "
                        "without its parent (k8s.io/3/" + c1_));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("dm-verity")));
  // The first layer alone has its hash: a whole chain, refused only as a
  // lower part of the image it was recorded for.
  absl::Status first = sn_->Prepare("k8s.io/9/ctr-rootfs-1", "k8s.io/3/" + c1_, {}).status();
  EXPECT_THAT(std::string(first.message()), HasSubstr("was recorded as a lower layer of image"));
  EXPECT_THAT(std::string(first.message()), Not(HasSubstr("dm-verity")));
}

// A base image pulled after an image built on it: containerd finds every
// chain of the base among the other image's layers and asks the
// snapshotter nothing, so the base's top layer is the derived image's
// first, recorded with the derived image's labels. The volume must not pin
// the derived image (the guest would pull its extra layers, or refuse the
// layer count): the rootfs is refused and nothing is recorded. A host unpack
// on that layer (an image kept on the host) is not a rootfs and goes on.
TEST_F(GuestPullLayersTest, RootfsOnALowerLayerOfTheRecordedImageIsRefused) {
  Open(VerityMode::kOff);
  std::string n1 = "k8s.io/3/" + c1_, n2 = "k8s.io/5/" + c2_;
  ASSERT_NO_FATAL_FAILURE(PullTwoLayersAsOneImage());
  for (bool view : {false, true}) {
    const std::string key = view ? "k8s.io/10/base-view" : "k8s.io/9/base-rootfs";
    absl::Status s = view ? sn_->View(key, n1, {}).status() : sn_->Prepare(key, n1, {}).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_THAT(std::string(s.message()),
                HasSubstr("its top layer " + n1 + " was recorded as a lower layer of image "
                          "127.0.0.1:5000/app:1 (manifest sha256:" + Hex('f') +
                          ", which lists 2 layers from it up)"));
    EXPECT_THAT(std::string(s.message()), HasSubstr("pull this one first"));
    EXPECT_EQ(sn_->Stat(key).status().code(), absl::StatusCode::kNotFound);
  }
  // The image itself, and a host unpack on its first layer, go on.
  EXPECT_TRUE(sn_->Prepare("k8s.io/11/app-rootfs", n2, {}).ok());
  EXPECT_TRUE(sn_->Prepare("k8s.io/12/extract-3 sha256:" + Hex('6'), n1, {}).ok());
}

// The same with stock kata's mount type: its agent pulls the pod's image by
// name and never reads the volume, so the base image's rootfs runs; it is
// not refused (the volume still names the image the layer was recorded for).
TEST_F(GuestPullLayersTest, RootfsOnALowerLayerOfTheRecordedImageGoesOnWithStockKata) {
  mount_type_ = "fuse.nydus-overlayfs-guest-pull";
  Open(VerityMode::kOff);
  const std::string n1 = "k8s.io/3/" + c1_;
  ASSERT_NO_FATAL_FAILURE(PullTwoLayersAsOneImage());
  auto mounts = sn_->Prepare("k8s.io/9/base-rootfs", n1, {});
  ASSERT_TRUE(mounts.ok()) << mounts.status();
  ASSERT_EQ(mounts->size(), 1u);
  EXPECT_EQ((*mounts)[0].type, "fuse.nydus-overlayfs-guest-pull");
}

// containerd's CRI (2.1+) mounts a Kubernetes image volume's snapshot on
// the host: on guest-pulled layers it would be empty, so it is refused and
// nothing is recorded; the same image's container rootfs is not.
TEST_F(GuestPullLayersTest, ImageVolumeOnGuestPulledLayersIsRefused) {
  Open(VerityMode::kOff);
  PullTwoLayers();
  const std::string volume = "k8s.io/9//run/containerd/io.containerd.grpc.v1.cri/image-volumes/" +
                             Hex('7') + "/" + Hex('8');
  auto s = sn_->Prepare(volume, "k8s.io/5/" + c2_, {}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("is a Kubernetes image volume on layers pulled in the guest (image "
                        "127.0.0.1:5000/app:1)"));
  EXPECT_EQ(sn_->Stat(volume).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(sn_->Prepare("k8s.io/10/" + Hex('9'), "k8s.io/5/" + c2_, {}).ok());
}

// An image pulled for a kata pod's image volume alone may have no expected
// hashes: in verity mode "required" the volume is still refused as an image
// volume, not with "add them to the layer cache" (after which it would be
// refused all the same).
TEST_F(GuestPullLayersTest, ImageVolumeIsRefusedAsSuchInRequiredMode) {
  Open(VerityMode::kRequired);
  const std::string chain = "sha256:" + Hex('5'), layer = "k8s.io/3/" + chain;
  ASSERT_EQ(sn_->Prepare("k8s.io/2/extract-1 " + chain, "", CriLabels(layer, 'c')).status().code(),
            absl::StatusCode::kAlreadyExists);
  const std::string volume = "k8s.io/9//run/containerd/io.containerd.grpc.v1.cri/image-volumes/" +
                             Hex('7') + "/" + Hex('8');
  auto s = sn_->Prepare(volume, layer, {}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("is a Kubernetes image volume"));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("dm-verity")));
}

// An operator's expected hash that is not 64 lowercase hex digits is
// refused by the Update that sets it, not by every later container.
TEST_F(GuestPullLayersTest, UpdateRefusesAMalformedExpectedHash) {
  Open(VerityMode::kBestEffort);
  PullTwoLayers();
  snapshotter::Info update{"k8s.io/5/" + c2_};
  for (const char* label : {kLabelVerityRootHash, kLabelInheritedVerityRootHash}) {
    for (const std::string& bad : {std::string(64, 'A'), "sha256:" + Hex('a'), Hex('a') + "\n"}) {
      update.labels = {{label, bad}};
      auto updated = sn_->Update(update, {std::string("labels.") + label});
      EXPECT_EQ(updated.status().code(), absl::StatusCode::kInvalidArgument) << bad;
      EXPECT_THAT(std::string(updated.status().message()), HasSubstr("64 lowercase hex"));
    }
  }
  // Not among the field paths: not set, so not checked.
  update.labels = {{kLabelVerityRootHash, "bad"}, {"other", "x"}};
  EXPECT_TRUE(sn_->Update(update, {"labels.other"}).ok());
  update.labels = {{kLabelVerityRootHash, Hex('5')}};
  EXPECT_TRUE(sn_->Update(update, {std::string("labels.") + kLabelVerityRootHash}).ok());
  EXPECT_TRUE(sn_->Prepare("k8s.io/9/c", "k8s.io/5/" + c2_, {}).ok());
}

// An empty value named by its path removes a label, as for any other
// label (and as containerd's own storage does): the expected hash too.
TEST_F(GuestPullLayersTest, UpdateWithAnEmptyExpectedHashRemovesIt) {
  Open(VerityMode::kBestEffort);
  PullTwoLayers();
  snapshotter::Info update{"k8s.io/5/" + c2_};
  for (const char* label : {kLabelVerityRootHash, kLabelInheritedVerityRootHash}) {
    const std::string path = std::string("labels.") + label;
    update.labels = {{label, Hex('5')}};
    ASSERT_TRUE(sn_->Update(update, {path}).ok()) << label;
    update.labels = {{label, ""}};
    auto removed = sn_->Update(update, {path});
    ASSERT_TRUE(removed.ok()) << label << ": " << removed.status();
    EXPECT_EQ(removed->labels.count(label), 0u) << label;
  }
}

// Outside CRI's namespace the CRI labels can only be an image's own layer
// annotations (containerd passes those as creation labels on every pull):
// such a pull (ctr, nerdctl) keeps its layers on the host.
TEST_F(GuestPullLayersTest, CriLabelsOutsideTheCriNamespaceAreUnpackedOnHost) {
  Open(VerityMode::kOff);
  auto r = sn_->Prepare("default/1/extract-1 " + c1_, "", CriLabels("default/2/" + c1_, 'a'));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].type, "bind");
  EXPECT_EQ(observer_.reasons.back(), "unpack:namespace");
}

// containerd re-sends, with an update of all labels, the labels it holds,
// an image's hash annotation (dropped here at creation) among them: such an
// update succeeds and leaves the expected hash as it was. Only a
// "labels.<key>" path sets it.
TEST_F(GuestPullLayersTest, UpdateOfAllLabelsLeavesTheExpectedHash) {
  Open(VerityMode::kBestEffort);
  PullTwoLayers();
  snapshotter::Info update{"k8s.io/5/" + c2_};
  auto before = sn_->Stat(update.name);
  ASSERT_TRUE(before.ok()) << before.status();
  for (const std::string& annotation : {std::string("from-image-annotation"), Hex('7')}) {
    update.labels = before->labels;
    update.labels[kLabelInheritedVerityRootHash] = annotation;
    update.labels["containerd.io/snapshot/tool.note"] = "x";
    for (const std::vector<std::string>& paths :
         {std::vector<std::string>{"labels"}, std::vector<std::string>{}}) {
      auto updated = sn_->Update(update, paths);
      ASSERT_TRUE(updated.ok()) << updated.status();
      EXPECT_EQ(updated->labels.count(kLabelInheritedVerityRootHash), 0u) << annotation;
      EXPECT_EQ(updated->labels.at("containerd.io/snapshot/tool.note"), "x");
    }
  }
  update.labels = {{kLabelInheritedVerityRootHash, Hex('7')}};
  auto named = sn_->Update(update, {std::string("labels.") + kLabelInheritedVerityRootHash});
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(named->labels.at(kLabelInheritedVerityRootHash), Hex('7'));
  // A later update of all labels keeps it.
  update.labels = before->labels;
  auto all = sn_->Update(update, {});
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->labels.at(kLabelInheritedVerityRootHash), Hex('7'));
}

snapshotter::Info Named(const std::string& name, snapshotter::Labels labels) {
  snapshotter::Info info;
  info.name = name;
  info.labels = std::move(labels);
  return info;
}

// A guest-pulled layer's cri.* labels name the image the guest pulls and
// its layers: an Update naming one may not add, change or remove it (the
// record stays as it was), also beside "labels"; an update of all labels
// keeps them; a layer the host unpacked takes any label.
TEST_F(GuestPullLayersTest, UpdateCannotChangeTheImageOfAGuestPulledLayer) {
  Open(VerityMode::kOff);
  PullTwoLayers();
  const std::string top = "k8s.io/5/" + c2_;
  // The top layer without cri.image-layers (a label an Update could add).
  ASSERT_TRUE(sn_->Remove(top).ok());
  snapshotter::Labels second = CriLabels(top, 'b');
  second.erase(kLabelCriImageLayers);
  ASSERT_EQ(sn_->Prepare("k8s.io/6/extract-2 " + c2_, "k8s.io/3/" + c1_, second).status().code(),
            absl::StatusCode::kAlreadyExists);
  auto before = sn_->Stat(top);
  ASSERT_TRUE(before.ok()) << before.status();
  const std::string ref = std::string("labels.") + kLabelCriImageRef;
  const std::string other = "127.0.0.1:5000/other:1";
  struct Case {
    snapshotter::Labels labels;
    std::vector<std::string> paths;
  };
  for (const Case& c : std::vector<Case>{
           {{{kLabelCriImageRef, other}}, {ref}},
           {{}, {ref}},
           {{{kLabelCriImageRef, ""}}, {ref}},
           {{{kLabelCriImageRef, other}}, {"labels", ref}},
           {{{kLabelCriImageRef, other}}, {ref, "labels"}},
           {{{kLabelCriImageLayers, "sha256:" + Hex('b')}},
            {std::string("labels.") + kLabelCriImageLayers}},
           {{{kLabelCriLayerDigest, "sha256:" + Hex('9')}},
            {std::string("labels.") + kLabelCriLayerDigest}},
           {{{kLabelCriManifestDigest, "sha256:" + Hex('9')}},
            {std::string("labels.") + kLabelCriManifestDigest}}}) {
    auto updated = sn_->Update(Named(top, c.labels), c.paths);
    EXPECT_EQ(updated.status().code(), absl::StatusCode::kFailedPrecondition)
        << absl::StrJoin(c.paths, ",");
    EXPECT_THAT(std::string(updated.status().message()),
                HasSubstr("records what the snapshot holds"));
  }
  // A field that is not a label is InvalidArgument first, as in
  // containerd's storage.
  auto field = sn_->Update(Named(top, {{kLabelCriImageRef, other}}), {ref, "parent"});
  EXPECT_EQ(field.status().code(), absl::StatusCode::kInvalidArgument) << field.status();
  EXPECT_THAT(std::string(field.status().message()), HasSubstr("only labels are mutable"));
  auto after = sn_->Stat(top);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->labels, before->labels);
  // The same value by name, and an update of all labels without them.
  const std::string image = before->labels.at(kLabelCriImageRef);
  auto same = sn_->Update(
      Named(top, {{kLabelCriImageRef, image}, {"containerd.io/snapshot/tool.note", "x"}}),
      {ref, "labels.containerd.io/snapshot/tool.note"});
  ASSERT_TRUE(same.ok()) << same.status();
  auto all = sn_->Update(Named(top, {{"other", "y"}}), {});
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(all->labels, testing::Contains(testing::Pair(kLabelCriImageRef, image)));
  EXPECT_THAT(all->labels, testing::Contains(testing::Pair(
                               kLabelCriLayerDigest, before->labels.at(kLabelCriLayerDigest))));
  EXPECT_THAT(all->labels, testing::Contains(testing::Pair("other", "y")));
  EXPECT_EQ(all->labels.count("containerd.io/snapshot/tool.note"), 0u);
  EXPECT_EQ(all->labels.count(kLabelCriImageLayers), 0u);
  // A layer the host unpacked (outside CRI's namespace).
  auto host = sn_->Prepare("default/1/extract-1 " + c1_, "", CriLabels("default/2/" + c1_, 'a'));
  ASSERT_TRUE(host.ok()) << host.status();
  ASSERT_TRUE(sn_->Commit("default/2/" + c1_, "default/1/extract-1 " + c1_, {}).ok());
  auto changed = sn_->Update(Named("default/2/" + c1_, {{kLabelCriImageRef, other}}), {ref});
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_THAT(changed->labels, testing::Contains(testing::Pair(kLabelCriImageRef, other)));
}

// The rule follows the record the Update writes: a host layer removed and
// its name taken by a guest-pulled one after the Update looked the name up
// (its clock is read in between) is not updated as the host layer.
TEST_F(GuestPullLayersTest, UpdateChecksTheRecordItWrites) {
  std::function<void()> between;
  now_ = [&] {
    if (between) std::exchange(between, nullptr)();
    return absl::Now();
  };
  Open(VerityMode::kOff);
  const std::string name = "k8s.io/3/" + c1_;
  snapshotter::Labels labels = CriLabels(name, 'a');
  labels.erase(kLabelCriManifestDigest);  // not a CRI pull: unpacked on the host
  ASSERT_TRUE(sn_->Prepare("k8s.io/2/extract-1 " + c1_, "", labels).ok());
  ASSERT_TRUE(sn_->Commit(name, "k8s.io/2/extract-1 " + c1_, {}).ok());
  between = [&] {
    ASSERT_TRUE(sn_->Remove(name).ok());
    ASSERT_EQ(sn_->Prepare("k8s.io/4/extract-1 " + c1_, "", CriLabels(name, 'a')).status().code(),
              absl::StatusCode::kAlreadyExists);
  };
  auto updated = sn_->Update(Named(name, {{kLabelCriImageRef, "127.0.0.1:5000/other:1"}}),
                             {std::string("labels.") + kLabelCriImageRef});
  EXPECT_EQ(updated.status().code(), absl::StatusCode::kFailedPrecondition) << updated.status();
  auto after = sn_->Stat(name);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->labels.at(kLabelGuestPulled), "true");
  EXPECT_EQ(after->labels.at(kLabelCriImageRef), "127.0.0.1:5000/app:1");
}

}  // namespace
}  // namespace guest_pull
