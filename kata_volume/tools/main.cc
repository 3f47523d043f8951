// guest-pull-verity: layer dm-verity hashes and genpolicy layer caches.
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "kata_volume/tools/verity_cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // The results are gathered, then written with write(2): a failure (a full
  // disk, a closed stdout) is named with its cause, which an ostream that
  // failed mid-way no longer knows; else the exit status is all the
  // operator gets.
  std::ostringstream out;
  int rc = guest_pull::tools::RunVerityCli(args, out, std::cerr);
  const std::string text = out.str();
  for (size_t done = 0; done < text.size();) {
    ssize_t n = write(STDOUT_FILENO, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::cerr << "guest-pull-verity: cannot write to standard output: "
                << strerror(n < 0 ? errno : EIO) << "\n";
      return guest_pull::tools::kExitRuntimeError;
    }
    done += static_cast<size_t>(n);
  }
  return rc;
}
