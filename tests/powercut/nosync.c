// nosync.c: LD_PRELOAD shims for the power-cut suite's negative controls.
// Built as is: fsync, fdatasync, syncfs, sync and sync_file_range succeed
// and do nothing. Built with -DONLY_LAYERS: only the metadata database
// (metadata.db and its -wal/-journal) is still synced; every other fsync
// (a layer's files and directories, the snapshot directories) and syncfs
// do nothing, so the records are durable but the layer data a Commit
// acknowledged is not. A daemon run with either acknowledges mutations it
// never made durable: the power-cut test must catch that
// (tests/powercut/powercut.sh).
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef ONLY_LAYERS
// True when `fd` is the metadata database or one of its side files.
static int IsDatabase(int fd) {
  char link[64];
  char path[4096];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof(path) - 1);
  if (n <= 0) return 0;
  path[n] = '\0';
  return strstr(path, "/metadata.db") != NULL;
}

int fsync(int fd) {
  return IsDatabase(fd) ? (int)syscall(SYS_fsync, fd) : 0;
}

int fdatasync(int fd) {
  return IsDatabase(fd) ? (int)syscall(SYS_fdatasync, fd) : 0;
}
#else
int fsync(int fd) {
  (void)fd;
  return 0;
}

int fdatasync(int fd) {
  (void)fd;
  return 0;
}

int sync_file_range(int fd, off64_t offset, off64_t nbytes, unsigned int flags) {
  (void)fd;
  (void)offset;
  (void)nbytes;
  (void)flags;
  return 0;
}
#endif  // ONLY_LAYERS

int syncfs(int fd) {
  (void)fd;
  return 0;
}

void sync(void) {}
