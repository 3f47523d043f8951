// libFuzzer target: the daemon's config file reader and its checks, through
// the public entry point (snapshotter/config/config.h, LoadConfig) on a file
// holding the input.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "snapshotter/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = [] {
    char tmpl[] = "/tmp/guest-pull-config-fuzz.XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd >= 0) close(fd);
    return std::string(tmpl);
  }();
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  snapshotter::config::CommandLine command_line;
  command_line.flags["config"] = path;
  (void)snapshotter::config::LoadConfig(
      command_line, [](const char*) -> const char* { return nullptr; });
  return 0;
}
