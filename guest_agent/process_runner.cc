// fork + chroot + execve, output relayed with poll.
#include "guest_agent/process_runner.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace guest_pull::guest_agent {

namespace {

constexpr char kDefaultPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Resolves args[0] inside the (already entered) chroot.
std::string ResolveExecutable(const std::string& name, const std::vector<std::string>& env) {
  if (name.find('/') != std::string::npos) return name;
  std::string path = kDefaultPath;
  for (const std::string& e : env) {
    if (absl::StartsWith(e, "PATH=")) path = e.substr(5);
  }
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", name);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return name;
}

[[noreturn]] void ChildFail(const std::string& what) {
  std::string msg = absl::StrCat("guest-agent: ", what, ": ", strerror(errno), "\n");
  ssize_t ignored = ::write(2, msg.data(), msg.size());
  (void)ignored;
  ::_exit(127);
}

[[noreturn]] void Child(const RunSpec& spec, int out_fd, int err_fd) {
  ::setsid();
  int null_fd = ::open("/dev/null", O_RDONLY);
  if (null_fd >= 0) ::dup2(null_fd, 0);
  ::dup2(out_fd, 1);
  ::dup2(err_fd, 2);
  if (::chroot(spec.rootfs.c_str()) != 0) ChildFail(absl::StrCat("chroot ", spec.rootfs));
  if (::chdir(spec.cwd.c_str()) != 0) ChildFail(absl::StrCat("chdir ", spec.cwd));
  if (::setgroups(spec.supplementary_gids.size(), spec.supplementary_gids.data()) != 0 ||
      ::setgid(spec.gid) != 0 || ::setuid(spec.uid) != 0) {
    ChildFail("set user");
  }
  std::vector<char*> argv, envp;
  for (const std::string& a : spec.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const std::string& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  std::string exe = ResolveExecutable(spec.args[0], spec.env);
  ::execve(exe.c_str(), argv.data(), envp.data());
  ChildFail(absl::StrCat("exec ", spec.args[0]));
}

}  // namespace

absl::StatusOr<int> RunProcess(const RunSpec& spec, FrameChannel* channel) {
  if (spec.args.empty()) return absl::InvalidArgumentError("the process has no args");
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) Child(spec, out_pipe[1], err_pipe[1]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);

  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  const char types[2] = {kFrameStdout, kFrameStderr};
  int open_count = 2;
  absl::Status relay;
  char buffer[16 * 1024];
  while (open_count > 0) {
    int rc = ::poll(fds, 2, -1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) {
      relay = absl::InternalError(absl::StrCat("poll: ", strerror(errno)));
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].fd, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_count;
        continue;
      }
      if (relay.ok()) relay = channel->Send(types[i], absl::string_view(buffer, static_cast<size_t>(n)));
    }
  }
  for (pollfd& p : fds) {
    if (p.fd >= 0) ::close(p.fd);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return absl::InternalError(absl::StrCat("waitpid: ", strerror(errno)));
  }
  if (!relay.ok()) return relay;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return absl::InternalError("the process ended in an unknown way");
}

}  // namespace guest_pull::guest_agent
