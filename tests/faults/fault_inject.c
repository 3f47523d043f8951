// fault_inject.c: an LD_PRELOAD shim for the fault suite (faults.sh). It
// makes the Nth call of one kind of system call fail, counting only while
// an "arm" file exists, so a test can aim at the calls of one RPC:
//
//   FAULT_KIND   sync   fsync, fdatasync, syncfs          (default errno EIO)
//                rename rename, renameat, renameat2       (default errno EIO)
//                write  write, pwrite, pwrite64, writev on regular files
//                                                          (default ENOSPC)
//                mkdir  mkdir, mkdirat, mkdtemp            (default ENOSPC)
//   FAULT_NTH    which call fails, counting from 1 while armed (once)
//   FAULT_ERRNO  the errno to fail with (a number), instead of the default
//   FAULT_ARM    the path whose existence arms the counting
//   FAULT_LOG    a file to which each injection appends one line
// Without FAULT_KIND every call goes straight to libc.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static int counter;

// Returns the errno to fail this call with, or 0 to let it through.
static int should_fail(const char* kind, const char* fn, const char* what) {
  const char* want = getenv("FAULT_KIND");
  const char* arm = getenv("FAULT_ARM");
  if (want == NULL || strcmp(want, kind) != 0 || arm == NULL) return 0;
  int saved = errno;
  int armed = access(arm, F_OK) == 0;
  errno = saved;
  if (!armed) return 0;
  int n = __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST);
  const char* nth = getenv("FAULT_NTH");
  if (nth == NULL || n != atoi(nth)) return 0;
  int err = strcmp(kind, "write") == 0 || strcmp(kind, "mkdir") == 0 ? ENOSPC
                                                                      : EIO;
  if (getenv("FAULT_ERRNO") != NULL) err = atoi(getenv("FAULT_ERRNO"));
  const char* log = getenv("FAULT_LOG");
  if (log != NULL) {
    int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
      char line[512];
      int len = snprintf(line, sizeof line, "injected %s #%d %s(%s): %s\n",
                         kind, n, fn, what, strerror(err));
      ssize_t ignored = len > 0 ? syscall(SYS_write, fd, line, (size_t)len) : 0;
      (void)ignored;
      close(fd);
    }
  }
  return err;
}

static int regular_fd(int fd) {
  struct stat st;
  int saved = errno;
  int regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  errno = saved;
  return regular;
}

static const char* fd_name(int fd, char* buf, size_t len) {
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, buf, len - 1);
  buf[n > 0 ? n : 0] = '\0';
  return buf;
}

#define REAL(ret, name, ...) \
  static ret (*real)(__VA_ARGS__); \
  if (real == NULL) real = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, name)

#define FAIL_IF(kind, fn, what, failval)      \
  do {                                        \
    int err_ = should_fail(kind, fn, what);   \
    if (err_ != 0) {                          \
      errno = err_;                           \
      return failval;                         \
    }                                         \
  } while (0)

#define FD_WHAT(fd) fd_name(fd, name_buf, sizeof name_buf)

int fsync(int fd) {
  REAL(int, "fsync", int);
  char name_buf[256];
  FAIL_IF("sync", "fsync", FD_WHAT(fd), -1);
  return real(fd);
}

int fdatasync(int fd) {
  REAL(int, "fdatasync", int);
  char name_buf[256];
  FAIL_IF("sync", "fdatasync", FD_WHAT(fd), -1);
  return real(fd);
}

int syncfs(int fd) {
  REAL(int, "syncfs", int);
  char name_buf[256];
  FAIL_IF("sync", "syncfs", FD_WHAT(fd), -1);
  return real(fd);
}

int rename(const char* from, const char* to) {
  REAL(int, "rename", const char*, const char*);
  FAIL_IF("rename", "rename", to, -1);
  return real(from, to);
}

int renameat(int fromfd, const char* from, int tofd, const char* to) {
  REAL(int, "renameat", int, const char*, int, const char*);
  FAIL_IF("rename", "renameat", to, -1);
  return real(fromfd, from, tofd, to);
}

int renameat2(int fromfd, const char* from, int tofd, const char* to,
              unsigned flags) {
  REAL(int, "renameat2", int, const char*, int, const char*, unsigned);
  FAIL_IF("rename", "renameat2", to, -1);
  return real(fromfd, from, tofd, to, flags);
}

ssize_t write(int fd, const void* buf, size_t count) {
  REAL(ssize_t, "write", int, const void*, size_t);
  char name_buf[256];
  if (regular_fd(fd)) FAIL_IF("write", "write", FD_WHAT(fd), -1);
  return real(fd, buf, count);
}

ssize_t pwrite(int fd, const void* buf, size_t count, off_t off) {
  REAL(ssize_t, "pwrite", int, const void*, size_t, off_t);
  char name_buf[256];
  if (regular_fd(fd)) FAIL_IF("write", "pwrite", FD_WHAT(fd), -1);
  return real(fd, buf, count, off);
}

ssize_t pwrite64(int fd, const void* buf, size_t count, off64_t off) {
  REAL(ssize_t, "pwrite64", int, const void*, size_t, off64_t);
  char name_buf[256];
  if (regular_fd(fd)) FAIL_IF("write", "pwrite64", FD_WHAT(fd), -1);
  return real(fd, buf, count, off);
}

ssize_t writev(int fd, const struct iovec* iov, int iovcnt) {
  REAL(ssize_t, "writev", int, const struct iovec*, int);
  char name_buf[256];
  if (regular_fd(fd)) FAIL_IF("write", "writev", FD_WHAT(fd), -1);
  return real(fd, iov, iovcnt);
}

int mkdir(const char* path, mode_t mode) {
  REAL(int, "mkdir", const char*, mode_t);
  FAIL_IF("mkdir", "mkdir", path, -1);
  return real(path, mode);
}

int mkdirat(int dirfd, const char* path, mode_t mode) {
  REAL(int, "mkdirat", int, const char*, mode_t);
  FAIL_IF("mkdir", "mkdirat", path, -1);
  return real(dirfd, path, mode);
}

char* mkdtemp(char* tmpl) {
  REAL(char*, "mkdtemp", char*);
  FAIL_IF("mkdir", "mkdtemp", tmpl, NULL);
  return real(tmpl);
}
