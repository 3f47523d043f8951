// nosync.c: an LD_PRELOAD shim for the power-cut suite's negative control.
// fsync, fdatasync, syncfs, sync and sync_file_range succeed and do
// nothing, so a daemon run with it acknowledges mutations it never made
// durable: the power-cut test must catch that (tests/powercut/powercut.sh).
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>

int fsync(int fd) {
  (void)fd;
  return 0;
}

int fdatasync(int fd) {
  (void)fd;
  return 0;
}

int syncfs(int fd) {
  (void)fd;
  return 0;
}

void sync(void) {}

int sync_file_range(int fd, off64_t offset, off64_t nbytes, unsigned int flags) {
  (void)fd;
  (void)offset;
  (void)nbytes;
  (void)flags;
  return 0;
}
