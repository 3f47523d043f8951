// Loop and device-mapper ioctls.
#include "guest_agent/device_mapper.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/dm-ioctl.h>
#include <linux/loop.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace guest_pull::guest_agent {

namespace {

constexpr char kDmControl[] = "/dev/mapper/control";
constexpr uint64_t kSectorsPerBlock = 4096 / 512;

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(errno)));
}

absl::StatusOr<std::string> MakeNode(const std::string& dir, const std::string& name, dev_t dev) {
  std::string node = absl::StrCat(dir, "/", name);
  ::unlink(node.c_str());
  if (::mknod(node.c_str(), S_IFBLK | 0600, dev) != 0) return Errno(absl::StrCat("mknod ", node));
  return node;
}

// One ioctl on /dev/mapper/control with `extra` bytes after the header.
class DmIoctl {
 public:
  DmIoctl(const std::string& name, size_t extra) : buffer_(sizeof(dm_ioctl) + extra, 0) {
    dm_ioctl* io = header();
    io->version[0] = DM_VERSION_MAJOR;
    io->version[1] = 0;
    io->version[2] = 0;
    io->data_size = static_cast<uint32_t>(buffer_.size());
    io->data_start = sizeof(dm_ioctl);
    strncpy(io->name, name.c_str(), sizeof(io->name) - 1);
  }
  dm_ioctl* header() { return reinterpret_cast<dm_ioctl*>(buffer_.data()); }
  char* data() { return buffer_.data() + sizeof(dm_ioctl); }

  absl::Status Run(unsigned long request, const char* what) {
    int fd = ::open(kDmControl, O_RDWR | O_CLOEXEC);
    if (fd < 0) return Errno(absl::StrCat("open ", kDmControl));
    int rc = ::ioctl(fd, request, buffer_.data());
    int saved = errno;
    ::close(fd);
    if (rc != 0) {
      errno = saved;
      return Errno(absl::StrCat(what, " ", header()->name));
    }
    return absl::OkStatus();
  }

 private:
  std::vector<char> buffer_;
};

}  // namespace

std::string VerityTableParams(const VerityTarget& t) {
  const std::string dev = absl::StrCat(major(t.device), ":", minor(t.device));
  return absl::StrCat("1 ", dev, " ", dev, " 4096 4096 ", t.data_blocks, " ", t.hash_start_block,
                      " sha256 ", t.root_hash_hex, " ", t.salt_hex);
}

absl::StatusOr<BlockDevice> AttachLoopReadOnly(const std::string& file, const std::string& node_dir,
                                               int* loop_fd) {
  int file_fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (file_fd < 0) return Errno(absl::StrCat("open ", file));
  absl::Cleanup close_file = [file_fd] { ::close(file_fd); };
  int control = ::open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (control < 0) return Errno("open /dev/loop-control");
  int number = ::ioctl(control, LOOP_CTL_GET_FREE);
  int saved = errno;
  ::close(control);
  if (number < 0) {
    errno = saved;
    return Errno("LOOP_CTL_GET_FREE");
  }
  BlockDevice loop;
  loop.dev = makedev(7, number);
  ASSIGN_OR_RETURN(std::string node, MakeNode(node_dir, absl::StrCat("loop", number), loop.dev));
  loop.node = node;
  int fd = ::open(loop.node.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno(absl::StrCat("open ", loop.node));
  loop_config config;
  memset(&config, 0, sizeof(config));
  config.fd = static_cast<uint32_t>(file_fd);
  config.block_size = 4096;
  config.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
  strncpy(reinterpret_cast<char*>(config.info.lo_file_name), file.c_str(), LO_NAME_SIZE - 1);
  if (::ioctl(fd, LOOP_CONFIGURE, &config) != 0) {
    absl::Status status = Errno(absl::StrCat("LOOP_CONFIGURE ", loop.node, " on ", file));
    ::close(fd);
    return status;
  }
  *loop_fd = fd;
  return loop;
}

absl::StatusOr<BlockDevice> CreateVerityDevice(const std::string& name, const VerityTarget& target,
                                               const std::string& node_dir) {
  DmIoctl create(name, 0);
  absl::Status status = create.Run(DM_DEV_CREATE, "DM_DEV_CREATE");
  if (!status.ok()) return status;
  BlockDevice device;
  device.dev = static_cast<dev_t>(create.header()->dev);

  const std::string params = VerityTableParams(target);
  size_t spec_size = sizeof(dm_target_spec) + params.size() + 1;
  spec_size = (spec_size + 7) & ~static_cast<size_t>(7);
  DmIoctl load(name, spec_size);
  load.header()->target_count = 1;
  load.header()->flags = DM_READONLY_FLAG;
  auto* spec = reinterpret_cast<dm_target_spec*>(load.data());
  spec->sector_start = 0;
  spec->length = target.data_blocks * kSectorsPerBlock;
  spec->next = static_cast<uint32_t>(spec_size);
  strncpy(spec->target_type, "verity", sizeof(spec->target_type) - 1);
  memcpy(load.data() + sizeof(dm_target_spec), params.c_str(), params.size() + 1);
  status = load.Run(DM_TABLE_LOAD, "DM_TABLE_LOAD (verity)");
  if (status.ok()) {
    DmIoctl resume(name, 0);
    status = resume.Run(DM_DEV_SUSPEND, "DM_DEV_SUSPEND (resume)");
  }
  if (!status.ok()) {
    RemoveDmDevice(name).IgnoreError();
    return absl::Status(status.code(), absl::StrCat(status.message(), " [table: verity ", params, "]"));
  }
  absl::StatusOr<std::string> node = MakeNode(node_dir, name, device.dev);
  if (!node.ok()) {
    RemoveDmDevice(name).IgnoreError();  // it would hold the loop device
    return node.status();
  }
  device.node = *std::move(node);
  return device;
}

absl::Status RemoveDmDevice(const std::string& name) {
  DmIoctl remove(name, 0);
  return remove.Run(DM_DEV_REMOVE, "DM_DEV_REMOVE");
}

}  // namespace guest_pull::guest_agent
