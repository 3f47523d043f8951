// nosync.c: LD_PRELOAD shims for the power-cut suite's negative controls.
// Built as is: fsync, fdatasync, syncfs, sync and sync_file_range succeed
// and do nothing. Built with -DONLY_SYNCFS: only syncfs and sync do nothing
// (the metadata database still syncs; the layer files a client wrote before
// Commit are no longer flushed). A daemon run with either acknowledges
// mutations it never made durable: the power-cut test must catch that
// (tests/powercut/powercut.sh).
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>

#ifndef ONLY_SYNCFS
int fsync(int fd) {
  (void)fd;
  return 0;
}

int fdatasync(int fd) {
  (void)fd;
  return 0;
}
#endif  // ONLY_SYNCFS

int syncfs(int fd) {
  (void)fd;
  return 0;
}

void sync(void) {}

#ifndef ONLY_SYNCFS
int sync_file_range(int fd, off64_t offset, off64_t nbytes, unsigned int flags) {
  (void)fd;
  (void)offset;
  (void)nbytes;
  (void)flags;
  return 0;
}
#endif  // ONLY_SYNCFS
