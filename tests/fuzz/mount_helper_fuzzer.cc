// libFuzzer target: the mount helper's argument and option parsing
// (mount_helper/command_line.h, overlay_options.h, overlay_data.h).
// Input: newline-separated argv (after argv[0]).
// Invariants: our own options never reach the overlay data; fitted data
// never exceeds the limit.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "mount_helper/command_line.h"
#include "mount_helper/overlay_data.h"
#include "mount_helper/overlay_options.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string> args = absl::StrSplit(input, '\n');
  auto parsed = mount_helper::ParseHelperArgs(args);
  if (!parsed.ok()) return 0;
  auto request = mount_helper::TranslateOverlayOptions(parsed->option_lists);
  if (!request.ok()) return 0;
  for (const std::string& option : request->data) {
    if (mount_helper::IsOwnOption(option)) abort();
  }
  // The real page limit, and a small one that forces the path compaction.
  for (size_t limit : {mount_helper::MountDataLimit(), size_t{96}}) {
    auto fitted = mount_helper::FitOverlayData(request->data, limit);
    if (fitted.ok() && fitted->data.size() > limit) abort();
  }
  return 0;
}
