// stallsync.so: LD_PRELOAD shim for tests/e2e/stalls.sh. While the file
// $STALL_FLAG exists, fsync/fdatasync/syncfs on a file whose path starts
// with $STALL_PREFIX block (polling the flag every 20 ms), like a disk that
// stopped answering. Without both variables it changes nothing.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void stall_if_flagged(int fd) {
  const char* flag = getenv("STALL_FLAG");
  const char* prefix = getenv("STALL_PREFIX");
  if (flag == NULL || prefix == NULL) return;
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n < 0) return;
  path[n] = '\0';
  if (strncmp(path, prefix, strlen(prefix)) != 0) return;
  struct timespec tick = {0, 20 * 1000 * 1000};
  while (access(flag, F_OK) == 0) nanosleep(&tick, NULL);
}

#define FORWARD(name)                                        \
  int name(int fd) {                                         \
    static int (*real)(int);                                 \
    if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, #name); \
    stall_if_flagged(fd);                                    \
    return real(fd);                                         \
  }

FORWARD(fsync)
FORWARD(fdatasync)
FORWARD(syncfs)
