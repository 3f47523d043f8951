// guest-agent: the guest VM's /init. Mounts proc/sys/dev, loads the kernel
// modules the initramfs lists, opens the virtio-serial port named
// "agent.0", runs one GuestAgent and powers the VM off. Every failure is
// reported to the host (frame 'F') before power-off.
//
// Usage (as init): no arguments. For debugging outside a VM:
//   guest-agent --port PATH --work DIR   (no mounts, no modules, no power-off)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "guest_agent/agent.h"
#include "guest_agent/kernel.h"

namespace {

using guest_pull::guest_agent::FrameChannel;
using guest_pull::guest_agent::GuestAgent;
using guest_pull::guest_agent::HostClient;

constexpr char kPortName[] = "agent.0";
constexpr char kModuleList[] = "/lib/modules/guest-agent.list";
constexpr char kWorkDir[] = "/run/agent";

void Console(const std::string& line) { fprintf(stderr, "guest-agent: %s\n", line.c_str()); }

void MountOrSay(const char* source, const char* target, const char* type, unsigned long flags, const char* data) {
  ::mkdir(target, 0755);
  if (::mount(source, target, type, flags, data) != 0) {
    Console(absl::StrCat("mount ", type, " on ", target, ": ", strerror(errno)));
  }
}

// /dev/vportNpM whose /sys/class/virtio-ports/<dev>/name is kPortName.
std::string FindPort() {
  for (int attempt = 0; attempt < 100; ++attempt) {
    DIR* d = ::opendir("/sys/class/virtio-ports");
    if (d != nullptr) {
      while (dirent* e = ::readdir(d)) {
        std::ifstream name(absl::StrCat("/sys/class/virtio-ports/", e->d_name, "/name"));
        std::string value;
        if (std::getline(name, value) && absl::StripAsciiWhitespace(value) == kPortName) {
          std::string dev = absl::StrCat("/dev/", e->d_name);
          ::closedir(d);
          return dev;
        }
      }
      ::closedir(d);
    }
    ::usleep(50 * 1000);
  }
  return "";
}

[[noreturn]] void PowerOff() {
  ::sync();
  ::reboot(RB_POWER_OFF);
  for (;;) ::pause();
}

int RunAgent(int port_fd, const std::string& work_dir, const std::string& preamble) {
  FrameChannel channel(port_fd, port_fd);
  HostClient host(&channel);
  if (!preamble.empty()) host.Log(preamble);
  GuestAgent agent(&host, work_dir);
  absl::Status status = agent.Run();
  if (status.ok()) return 0;
  Console(absl::StrCat("FAILED (", agent.failure().kind, "): ", status.message()));
  channel.Send(guest_pull::guest_agent::kFrameFailure,
               guest_pull::guest_agent::FailureJson(status, agent.failure()))
      .IgnoreError();
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "--port" && std::string(argv[3]) == "--work") {
    int fd = ::open(argv[2], O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      perror(argv[2]);
      return 2;
    }
    return RunAgent(fd, argv[4], "");
  }
  if (::getpid() != 1) {
    fprintf(stderr, "usage: guest-agent (as a VM's init) | guest-agent --port PATH --work DIR\n");
    return 2;
  }
  MountOrSay("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  MountOrSay("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  MountOrSay("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  // Not nodev: the agent makes its loop and dm device nodes here.
  MountOrSay("tmpfs", "/run", "tmpfs", MS_NOSUID, "mode=0755");
  ::mkdir(kWorkDir, 0700);

  absl::StatusOr<std::vector<std::string>> modules =
      guest_pull::guest_agent::LoadKernelModules(kModuleList);
  std::string preamble = modules.ok()
      ? absl::StrCat("modules loaded: ", absl::StrJoin(*modules, " "), " at +",
                     guest_pull::guest_agent::SecondsSinceBoot(), "s")
      : std::string(modules.status().message());
  Console(preamble);
  std::string port = FindPort();
  if (port.empty()) {
    Console(absl::StrCat("no virtio-serial port named ", kPortName, "; powering off"));
    PowerOff();
  }
  int fd = ::open(port.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    Console(absl::StrCat("open ", port, ": ", strerror(errno), "; powering off"));
    PowerOff();
  }
  RunAgent(fd, kWorkDir, preamble);
  ::close(fd);
  PowerOff();
}
