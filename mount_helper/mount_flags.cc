// The {clear, flag} table of mount(8) flag options.
#include "mount_helper/mount_flags.h"

#include <sys/mount.h>

#include <map>
#include <string>

#include "absl/strings/match.h"

#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256  // Linux 5.10; older glibc headers lack it.
#endif

namespace mount_helper {
namespace {

const std::map<std::string, MountFlagEffect, std::less<>>& FlagTable() {
  static const auto* const kTable =
      new std::map<std::string, MountFlagEffect, std::less<>>{
          {"async", {true, MS_SYNCHRONOUS}},
          {"atime", {true, MS_NOATIME}},
          {"bind", {false, MS_BIND}},
          {"defaults", {false, 0}},
          {"dev", {true, MS_NODEV}},
          {"diratime", {true, MS_NODIRATIME}},
          {"dirsync", {false, MS_DIRSYNC}},
          {"exec", {true, MS_NOEXEC}},
          {"iversion", {false, MS_I_VERSION}},
          {"lazytime", {false, MS_LAZYTIME}},
          {"loud", {true, MS_SILENT}},
          {"mand", {false, MS_MANDLOCK}},
          {"noatime", {false, MS_NOATIME}},
          {"nodev", {false, MS_NODEV}},
          {"nodiratime", {false, MS_NODIRATIME}},
          {"noexec", {false, MS_NOEXEC}},
          {"noiversion", {true, MS_I_VERSION}},
          {"nolazytime", {true, MS_LAZYTIME}},
          {"nomand", {true, MS_MANDLOCK}},
          {"norelatime", {true, MS_RELATIME}},
          {"nostrictatime", {true, MS_STRICTATIME}},
          {"nosuid", {false, MS_NOSUID}},
          {"nosymfollow", {false, MS_NOSYMFOLLOW}},
          {"rbind", {false, MS_BIND | MS_REC}},
          {"relatime", {false, MS_RELATIME}},
          {"remount", {false, MS_REMOUNT}},
          {"ro", {false, MS_RDONLY}},
          {"rw", {true, MS_RDONLY}},
          {"silent", {false, MS_SILENT}},
          {"strictatime", {false, MS_STRICTATIME}},
          {"suid", {true, MS_NOSUID}},
          {"symfollow", {true, MS_NOSYMFOLLOW}},
          {"sync", {false, MS_SYNCHRONOUS}},
      };
  return *kTable;
}

const std::map<std::string, unsigned long, std::less<>>& PropagationTable() {
  static const auto* const kTable =
      new std::map<std::string, unsigned long, std::less<>>{
          {"private", MS_PRIVATE},
          {"rprivate", MS_PRIVATE | MS_REC},
          {"shared", MS_SHARED},
          {"rshared", MS_SHARED | MS_REC},
          {"slave", MS_SLAVE},
          {"rslave", MS_SLAVE | MS_REC},
          {"unbindable", MS_UNBINDABLE},
          {"runbindable", MS_UNBINDABLE | MS_REC},
      };
  return *kTable;
}

}  // namespace

std::optional<MountFlagEffect> LookupMountFlag(absl::string_view option) {
  const auto& table = FlagTable();
  auto it = table.find(std::string(option));
  if (it == table.end()) return std::nullopt;
  return it->second;
}

std::optional<unsigned long> LookupPropagationFlag(absl::string_view option) {
  const auto& table = PropagationTable();
  auto it = table.find(std::string(option));
  if (it == table.end()) return std::nullopt;
  return it->second;
}

bool IsUserspaceOnlyOption(absl::string_view option) {
  static constexpr absl::string_view kNames[] = {
      "auto",  "noauto",  "nofail", "_netdev", "user",    "nouser",
      "users", "nousers", "owner",  "noowner", "group",   "nogroup",
  };
  for (absl::string_view name : kNames) {
    if (option == name) return true;
  }
  // With a value: user=<name> (mount(8) names the user who mounted), and
  // the umount/mount helper names (uhelper=udisks2).
  static constexpr absl::string_view kPrefixes[] = {"user=", "uhelper=", "helper="};
  for (absl::string_view prefix : kPrefixes) {
    if (absl::StartsWith(option, prefix)) return true;
  }
  // libmount's userspace map: "x-" comments are kept in utab, "X-" ones
  // only in fstab (X-mount.mkdir ...); neither is for the kernel.
  return absl::StartsWith(option, "x-") || absl::StartsWith(option, "X-") ||
         absl::StartsWith(option, "comment=");
}

}  // namespace mount_helper
