// libFuzzer target: the KataVirtualVolume mount-option decoder
// (kata_volume/volume_option.h) and both validators on what it accepts.
// Invariant: a decoded volume re-encodes, and encoding is stable after one
// decode/encode round (encode(decode(encode(v))) == encode(v)).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "kata_volume/validate.h"
#include "kata_volume/volume_option.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  (void)kata_volume::FindVolumeOption(input);
  auto volume = kata_volume::DecodeVolumeOption(input);
  if (!volume.ok()) return 0;
  (void)kata_volume::ValidateGo(*volume);
  (void)kata_volume::ValidateRust(*volume);
  auto first = kata_volume::EncodeVolumeOption(*volume);
  if (!first.ok()) return 0;  // larger than the encoder's limit
  auto again = kata_volume::DecodeVolumeOption(*first);
  if (!again.ok()) abort();  // our own encoding must decode
  auto second = kata_volume::EncodeVolumeOption(*again);
  if (!second.ok() || *second != *first) abort();
  return 0;
}
