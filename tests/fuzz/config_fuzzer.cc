// libFuzzer target: the daemon's TOML config file parser and its checks
// (snapshotter/config/config_file.h, ParseConfigFile).
#include <cstddef>
#include <cstdint>
#include <string>

#include "snapshotter/config/config_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)guest_pull::config::ParseConfigFile(text, "<fuzz>");
  return 0;
}
