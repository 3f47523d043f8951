// guest-pull-overlayfs: argument handling and the overlay mount(2) call.
#include "mount_helper/helper.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "mount_helper/command_line.h"
#include "mount_helper/overlay_data.h"
#include "mount_helper/overlay_options.h"

namespace mount_helper {
namespace {

// Absolute form of `path` (relative to the current directory), so the
// target survives the chdir made for compacted data.
absl::StatusOr<std::string> Absolute(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char cwd[4096];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) {
    return absl::InternalError(absl::StrCat("getcwd: ", strerror(errno)));
  }
  return absl::StrCat(cwd, "/", path);
}

// Mounts with `data.working_dir` as cwd (if set), then restores the cwd.
absl::Status MountOverlay(const std::string& source, const std::string& target,
                          const OverlayMountRequest& request,
                          const OverlayData& data) {
  int saved_cwd = -1;
  if (!data.working_dir.empty()) {
    saved_cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (chdir(data.working_dir.c_str()) != 0) {
      const int error = errno;
      if (saved_cwd >= 0) close(saved_cwd);
      return absl::FailedPreconditionError(absl::StrCat(
          "chdir ", data.working_dir, ": ", strerror(error)));
    }
  }
  int result = mount(source.c_str(), target.c_str(), "overlay", request.flags,
                     data.data.c_str());
  const int mount_errno = errno;
  if (saved_cwd >= 0) {
    // Best effort: nothing after the mount depends on the cwd.
    (void)!fchdir(saved_cwd);
    close(saved_cwd);
  }
  if (result != 0) {
    // EINVAL says nothing of which option overlayfs refused; the kernel log
    // does (as mount(8) hints).
    return absl::FailedPreconditionError(absl::StrCat(
        "mount overlay on ", target, " failed: ", strerror(mount_errno),
        mount_errno == EINVAL ? " (overlayfs writes the reason to the kernel log: see dmesg)"
                              : ""));
  }
  for (unsigned long propagation : request.propagation) {
    if (mount(nullptr, target.c_str(), nullptr, propagation, nullptr) != 0) {
      const int error = errno;
      umount2(target.c_str(), MNT_DETACH);
      return absl::FailedPreconditionError(absl::StrCat(
          "setting mount propagation 0x", absl::Hex(propagation), " on ", target,
          " failed (overlay unmounted again): ", strerror(error)));
    }
  }
  return absl::OkStatus();
}

void DescribeCall(std::ostream& err, const std::string& program,
                  const std::string& source, const std::string& target,
                  const OverlayMountRequest& request, const OverlayData& data) {
  err << program << ": mount(\"" << source << "\", \"" << target
      << "\", \"overlay\", 0x" << std::hex << request.flags << std::dec
      << ", \"" << data.data << "\")";
  if (!data.working_dir.empty()) err << " in " << data.working_dir;
  for (unsigned long propagation : request.propagation) {
    err << " then propagation 0x" << std::hex << propagation << std::dec;
  }
  err << "\n";
}

}  // namespace

int RunGuestPullOverlayfs(const std::string& program,
                          const std::vector<std::string>& args,
                          std::ostream& out, std::ostream& err) {
  absl::StatusOr<HelperArgs> parsed = ParseHelperArgs(args);
  if (!parsed.ok()) {
    err << program << ": " << parsed.status().message() << "\n"
        << HelperUsage(program);
    return kExitUsage;
  }
  if (parsed->help) {
    out << HelperUsage(program);
    return 0;
  }
  if (parsed->version) {
    out << program << " " << kHelperVersion << "\n";
    return 0;
  }
  absl::StatusOr<OverlayMountRequest> request =
      TranslateOverlayOptions(parsed->option_lists);
  if (!request.ok()) {
    err << program << ": " << request.status().message() << "\n";
    return kExitUsage;
  }
  absl::StatusOr<std::string> target = Absolute(parsed->target);
  if (!target.ok()) {
    err << program << ": " << target.status().message() << "\n";
    return kExitUsage;
  }
  absl::StatusOr<OverlayData> data =
      FitOverlayData(request->data, MountDataLimit());
  if (!data.ok()) {
    err << program << ": " << data.status().message() << "\n";
    return kExitMountFailed;
  }
  if (parsed->verbose) {
    DescribeCall(err, program, parsed->source, *target, *request, *data);
  }
  if (parsed->fake) return 0;
  absl::Status mounted = MountOverlay(parsed->source, *target, *request, *data);
  if (!mounted.ok()) {
    err << program << ": " << mounted.message() << "\n";
    // The call, for the operator (already printed with -v).
    if (!parsed->verbose) {
      DescribeCall(err, program, parsed->source, *target, *request, *data);
    }
    return kExitMountFailed;
  }
  return 0;
}

}  // namespace mount_helper
