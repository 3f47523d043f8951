// Tests for the image_guest_pull volume builder and its parser.
#include "kata_volume/guest_pull_volume.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kata_volume/image_ref.h"
#include "kata_volume/validate.h"
#include "kata_volume/volume_json.h"
#include "kata_volume/volume_option.h"

namespace kata_volume {
namespace {

using ::testing::HasSubstr;

std::string Hex(char c) { return std::string(64, c); }
std::string Sha(char c) { return "sha256:" + Hex(c); }

GuestPullImage TwoLayerImage() {
  GuestPullImage image;
  image.image_ref = "127.0.0.1:5000/busybox:1";
  image.manifest_digest = Sha('e');
  image.layers = {
      GuestPullLayer{Sha('a'), Sha('b'), Hex('c')},
      GuestPullLayer{Sha('d'), "", ""},
  };
  return image;
}

TEST(GuestPullVolumeTest, GoldenJson) {
  absl::StatusOr<KataVirtualVolume> volume =
      BuildGuestPullVolume(TwoLayerImage());
  ASSERT_TRUE(volume.ok()) << volume.status();
  const std::string expected = absl::StrCat(
      R"({"volume_type":"image_guest_pull",)",
      R"("source":"127.0.0.1:5000/busybox@)", Sha('e'), R"(",)",
      R"("image_pull":{"metadata":{)",
      R"("guest-pull.image-ref":"127.0.0.1:5000/busybox:1",)",
      R"("guest-pull.layer-count":"2",)",
      R"("guest-pull.layer.0.diff-id":")", Sha('b'), R"(",)",
      R"("guest-pull.layer.0.digest":")", Sha('a'), R"(",)",
      R"("guest-pull.layer.0.verity-root-hash":")", Hex('c'), R"(",)",
      R"("guest-pull.layer.1.digest":")", Sha('d'), R"(",)",
      R"("guest-pull.manifest-digest":")", Sha('e'), R"(",)",
      R"("guest-pull.verity-params":"format=tarfs-index,hash=sha256,)",
      R"(data-block=4096,hash-block=4096,salt=)", std::string(64, '0'),
      R"(,superblock=none"}}})");
  EXPECT_EQ(VolumeToJson(*volume), expected);
  EXPECT_TRUE(ValidateGo(*volume).ok());
  EXPECT_TRUE(ValidateRust(*volume).ok());
}

TEST(GuestPullVolumeTest, RoundTripThroughOption) {
  const GuestPullImage image = TwoLayerImage();
  absl::StatusOr<KataVirtualVolume> volume = BuildGuestPullVolume(image);
  ASSERT_TRUE(volume.ok()) << volume.status();
  absl::StatusOr<std::string> option = EncodeVolumeOption(*volume);
  ASSERT_TRUE(option.ok()) << option.status();
  absl::StatusOr<KataVirtualVolume> decoded = DecodeVolumeOption(*option);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  absl::StatusOr<GuestPullImage> parsed = ParseGuestPullImage(*decoded);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, image);
}

TEST(GuestPullVolumeTest, PinsReplacingDigest) {
  GuestPullImage image = TwoLayerImage();
  image.image_ref = "docker.io/library/x:tag@" + Sha('f');
  absl::StatusOr<KataVirtualVolume> volume = BuildGuestPullVolume(image);
  ASSERT_TRUE(volume.ok()) << volume.status();
  EXPECT_EQ(volume->source, "docker.io/library/x@" + Sha('e'));
  EXPECT_EQ(volume->image_pull->metadata->at(kMetaImageRef), image.image_ref);
}

TEST(GuestPullVolumeTest, ManyLayersFitTheOptionLimit) {
  GuestPullImage image = TwoLayerImage();
  image.layers.assign(128, GuestPullLayer{Sha('a'), Sha('b'), Hex('c')});
  absl::StatusOr<KataVirtualVolume> volume = BuildGuestPullVolume(image);
  ASSERT_TRUE(volume.ok()) << volume.status();
  EXPECT_EQ(volume->image_pull->metadata->at(kMetaLayerCount), "128");
  EXPECT_EQ(volume->image_pull->metadata->at("guest-pull.layer.127.digest"),
            Sha('a'));
  absl::StatusOr<GuestPullImage> parsed = ParseGuestPullImage(*volume);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->layers.size(), 128u);

  image.layers.assign(1000, GuestPullLayer{Sha('a'), Sha('b'), Hex('c')});
  absl::StatusOr<KataVirtualVolume> too_big = BuildGuestPullVolume(image);
  ASSERT_FALSE(too_big.ok());
  EXPECT_THAT(std::string(too_big.status().message()),
              HasSubstr("does not fit in a mount option"));
}

// The largest image whose layers all have a diff ID and a hash, as
// docs/architecture.md states it: a short reference, and the longest one
// ParseImageReference accepts (a 255-character name, a 128-character tag
// and a sha512 digest: 520 characters).
TEST(GuestPullVolumeTest, LayerLimitIsAsDocumented) {
  auto fits = [](const std::string& ref, size_t layers) {
    GuestPullImage image = TwoLayerImage();
    image.image_ref = ref;
    image.layers.assign(layers, GuestPullLayer{Sha('a'), Sha('b'), Hex('c')});
    return BuildGuestPullVolume(image).ok();
  };
  const std::string short_ref = "registry.example.com/team/app:1.2.3";
  EXPECT_TRUE(fits(short_ref, 154));
  EXPECT_FALSE(fits(short_ref, 155));
  const std::string long_ref = std::string(255, 'a') + ":" +
                               std::string(128, 't') + "@sha512:" +
                               std::string(128, 'b');
  ASSERT_EQ(long_ref.size(), 520u);
  ASSERT_TRUE(ParseImageReference(long_ref).ok());
  EXPECT_FALSE(ParseImageReference(long_ref + "b").ok());
  EXPECT_TRUE(fits(long_ref, 152));
  EXPECT_FALSE(fits(long_ref, 153));
}

TEST(GuestPullVolumeTest, NeverEmitsAVolumeWithoutImagePull) {
  // Kata's Go IsValid accepts a guest-pull volume without image_pull, and
  // its shim then writes the annotations into a nil map: every volume the
  // builder emits, whatever it is given, carries image_pull.metadata.
  for (int layers : {1, 2, 64}) {
    for (bool hashes : {false, true}) {
      GuestPullImage image = TwoLayerImage();
      image.layers.assign(layers, GuestPullLayer{Sha('a'), hashes ? Sha('b') : "",
                                                 hashes ? Hex('c') : ""});
      absl::StatusOr<KataVirtualVolume> volume = BuildGuestPullVolume(image);
      ASSERT_TRUE(volume.ok()) << volume.status();
      ASSERT_TRUE(volume->image_pull.has_value());
      ASSERT_TRUE(volume->image_pull->metadata.has_value());
      EXPECT_THAT(VolumeToJson(*volume), HasSubstr(R"("image_pull":{"metadata":{")"));
      absl::StatusOr<std::string> option = EncodeVolumeOption(*volume);
      ASSERT_TRUE(option.ok()) << option.status();
      absl::StatusOr<KataVirtualVolume> decoded = DecodeVolumeOption(*option);
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      ASSERT_TRUE(decoded->image_pull.has_value() &&
                  decoded->image_pull->metadata.has_value());
    }
  }
}

TEST(GuestPullVolumeTest, RejectsBadInput) {
  struct Case {
    void (*mutate)(GuestPullImage&);
    const char* message;
  };
  const Case cases[] = {
      {[](GuestPullImage& i) { i.image_ref = ""; }, "image reference is empty"},
      {[](GuestPullImage& i) { i.image_ref = "Bad Ref"; }, "invalid image reference"},
      {[](GuestPullImage& i) { i.manifest_digest = "sha256:abc"; },
       "manifest digest"},
      {[](GuestPullImage& i) { i.layers.clear(); }, "has no layers"},
      {[](GuestPullImage& i) { i.layers[1].digest = Hex('a'); },
       "layer 1 digest"},
      {[](GuestPullImage& i) { i.layers[0].diff_id = "sha256:" + Hex('A'); },
       "layer 0 diff-id"},
      {[](GuestPullImage& i) { i.layers[0].verity_root_hash = Hex('z'); },
       "layer 0 verity root hash"},
  };
  for (const Case& c : cases) {
    GuestPullImage image = TwoLayerImage();
    c.mutate(image);
    absl::StatusOr<KataVirtualVolume> volume = BuildGuestPullVolume(image);
    ASSERT_FALSE(volume.ok()) << c.message;
    EXPECT_EQ(volume.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(volume.status().message()), HasSubstr(c.message));
    // The check alone (what a layer's Prepare asks) refuses it the same.
    EXPECT_EQ(CheckGuestPullImage(image), volume.status());
  }
}

TEST(GuestPullVolumeTest, ParserRejectsTamperedVolumes) {
  const KataVirtualVolume good = *BuildGuestPullVolume(TwoLayerImage());
  struct Case {
    void (*mutate)(KataVirtualVolume&);
    const char* message;
  };
  const Case cases[] = {
      {[](KataVirtualVolume& v) { v.volume_type = kVolumeTypeDirectBlock; },
       "not \"image_guest_pull\""},
      {[](KataVirtualVolume& v) { v.image_pull->metadata.reset(); },
       "no image_pull.metadata"},
      {[](KataVirtualVolume& v) { v.source = "127.0.0.1:5000/busybox:1"; },
       "is not the pinned image"},
      {[](KataVirtualVolume& v) { v.source = "127.0.0.1:5000/other@" + Sha('e'); },
       "is not the pinned image"},
      {[](KataVirtualVolume& v) { v.source = "busybox@" + Sha('e'); },
       "is not the pinned image"},  // docker.io/library/busybox: another registry
      {[](KataVirtualVolume& v) { v.source = "127.0.0.1:5000/busybox"; },
       "is not the pinned image"},
      {[](KataVirtualVolume& v) { v.image_pull->metadata->erase(kMetaLayerCount); },
       "lacks \"guest-pull.layer-count\""},
      {[](KataVirtualVolume& v) {
         (*v.image_pull->metadata)[kMetaLayerCount] = "3";
       },
       "lacks \"guest-pull.layer.2.digest\""},
      {[](KataVirtualVolume& v) {
         (*v.image_pull->metadata)[kMetaLayerCount] = "02";
       },
       "not a plausible layer count"},
      {[](KataVirtualVolume& v) {
         (*v.image_pull->metadata)[kMetaLayerCount] = "99999999";
       },
       "not a plausible layer count"},
      {[](KataVirtualVolume& v) {
         (*v.image_pull->metadata)[kMetaVerityParams] = "format=other";
       },
       "unsupported guest-pull.verity-params"},
      {[](KataVirtualVolume& v) {
         (*v.image_pull->metadata)["guest-pull.layer.1.digest"] = "sha256:x";
       },
       "layer 1 digest"},
  };
  for (const Case& c : cases) {
    KataVirtualVolume volume = good;
    c.mutate(volume);
    absl::StatusOr<GuestPullImage> parsed = ParseGuestPullImage(volume);
    ASSERT_FALSE(parsed.ok()) << c.message;
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(c.message));
  }
}

// kata's shim sends the pod spec's image as the source: a Docker Hub short
// name, or the index digest a multi-platform image was pulled by.
TEST(GuestPullVolumeTest, ParserAcceptsTheSourceAsThePodNamesIt) {
  GuestPullImage image = TwoLayerImage();
  image.image_ref = "docker.io/library/busybox:1.36";
  KataVirtualVolume volume = *BuildGuestPullVolume(image);
  for (const char* name : {"busybox", "library/busybox", "docker.io/busybox",
                           "index.docker.io/library/busybox"}) {
    volume.source = absl::StrCat(name, "@", Sha('e'));
    EXPECT_TRUE(ParseGuestPullImage(volume).ok()) << volume.source;
  }
  image.image_ref = "127.0.0.1:5000/app@" + Sha('1');  // pulled by its index
  volume = *BuildGuestPullVolume(image);
  EXPECT_EQ(volume.source, "127.0.0.1:5000/app@" + Sha('e'));
  volume.source = "127.0.0.1:5000/app@" + Sha('1');
  EXPECT_TRUE(ParseGuestPullImage(volume).ok());
  // The layers were first pulled by a tag: the label keeps that reference.
  image.image_ref = "docker.io/library/busybox:1.36";
  volume = *BuildGuestPullVolume(image);
  volume.source = "busybox@" + Sha('2');
  EXPECT_TRUE(ParseGuestPullImage(volume).ok());
}

}  // namespace
}  // namespace kata_volume
