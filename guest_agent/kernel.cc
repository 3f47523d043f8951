// Module loading, kernel log, boot clock.
#include "guest_agent/kernel.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace guest_pull::guest_agent {

absl::StatusOr<std::vector<std::string>> LoadKernelModules(const std::string& list_file) {
  std::ifstream in(list_file);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read module list ", list_file));
  std::vector<std::string> loaded;
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view path = absl::StripAsciiWhitespace(line);
    if (path.empty() || path[0] == '#') continue;
    std::string file(path);
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return absl::NotFoundError(absl::StrCat("open module ", file, ": ", strerror(errno)));
    long rc = ::syscall(SYS_finit_module, fd, "", 0);
    int saved = errno;
    ::close(fd);
    if (rc != 0 && saved != EEXIST) {
      return absl::InternalError(absl::StrCat("finit_module ", file, ": ", strerror(saved)));
    }
    loaded.push_back(file.substr(file.rfind('/') + 1));
  }
  return loaded;
}

std::vector<std::string> KernelLogLines(const std::string& needle) {
  std::vector<std::string> out;
  int size = ::klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, nullptr, 0);
  if (size <= 0) return out;
  std::string buffer(static_cast<size_t>(size), '\0');
  int n = ::klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buffer.data(), size);
  if (n <= 0) return out;
  buffer.resize(static_cast<size_t>(n));
  for (absl::string_view line : absl::StrSplit(buffer, '\n')) {
    if (line.find(needle) == absl::string_view::npos) continue;
    // Drop the "<level>" prefix.
    if (!line.empty() && line[0] == '<') {
      size_t close = line.find('>');
      if (close != absl::string_view::npos) line.remove_prefix(close + 1);
    }
    out.emplace_back(line);
  }
  return out;
}

double SecondsSinceBoot() {
  timespec ts;
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace guest_pull::guest_agent
