// volume_samples: prints, one per line, the `io.katacontainers.volume=`
// option the daemon's builder (BuildGuestPullVolume + EncodeVolumeOption,
// as snapshotter/guest_pull uses them) emits for a spread of images: with
// and without diff_ids and expected verity hashes, one layer up to the most
// that fit the option limit, and the reference forms CRI hands us. The
// tests/kata suite feeds them to kata's own ParseKataVirtualVolume/IsValid.
// Exit 1 if any sample fails to build.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "kata_volume/guest_pull_volume.h"
#include "kata_volume/volume_option.h"

namespace {

using kata_volume::GuestPullImage;
using kata_volume::GuestPullLayer;

std::string Hex(int salt, int i) { return absl::StrFormat("%032x%032x", salt, i); }
std::string Sha(int salt, int i) { return "sha256:" + Hex(salt, i); }

// `with`: 0 digests only, 1 diff_ids, 2 diff_ids and hashes, 3 alternating.
GuestPullImage Image(const std::string& ref, int layers, int with) {
  GuestPullImage image{ref, Sha(0xfeed, layers), {}};
  for (int i = 0; i < layers; ++i) {
    const bool full = with == 2 || (with == 3 && i % 2 == 0);
    image.layers.push_back(GuestPullLayer{Sha(1, i), with >= 1 ? Sha(2, i) : "",
                                          full ? Hex(3, i) : ""});
  }
  return image;
}

bool Emit(const GuestPullImage& image) {
  auto volume = kata_volume::BuildGuestPullVolume(image);
  if (!volume.ok()) {
    std::cerr << image.image_ref << " (" << image.layers.size()
              << " layers): " << volume.status() << "\n";
    return false;
  }
  auto option = kata_volume::EncodeVolumeOption(*volume);
  if (!option.ok()) {
    std::cerr << image.image_ref << ": " << option.status() << "\n";
    return false;
  }
  std::cout << *option << "\n";
  return true;
}

}  // namespace

int main() {
  bool ok = true;
  const std::vector<std::string> refs = {
      "busybox",
      "docker.io/library/busybox:1.36",
      "127.0.0.1:5000/team/app:v1",
      "localhost:5000/a/b/c:latest",
      "registry.example/app@" + Sha(9, 9),
      "registry.example/app:v2@" + Sha(9, 8),
  };
  for (const std::string& ref : refs) {
    for (int with = 0; with <= 3; ++with) ok &= Emit(Image(ref, 3, with));
  }
  for (int layers : {1, 2, 16, 64, 127, 128}) {
    for (int with : {0, 2}) ok &= Emit(Image("127.0.0.1:5000/deep:1", layers, with));
  }
  // The most layers that still fit, with every hash (the worst case).
  int most = 128;
  while (kata_volume::BuildGuestPullVolume(Image("127.0.0.1:5000/deep:1", most + 1, 2)).ok() &&
         most < 4096) {
    ++most;
  }
  ok &= Emit(Image("127.0.0.1:5000/deep:1", most, 2));
  std::cout.flush();
  return ok && std::cout ? 0 : 1;
}
