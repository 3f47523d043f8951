// guest-pull-verity: layer dm-verity hashes and genpolicy layer caches.
#include <errno.h>
#include <string.h>

#include <iostream>
#include <string>
#include <vector>

#include "kata_volume/tools/verity_cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  int rc = guest_pull::tools::RunVerityCli(args, std::cout, std::cerr);
  errno = 0;
  std::cout.flush();
  if (!std::cout) {
    // The results were lost (a full disk, a closed stdout): say so, or the
    // exit status is all the operator gets.
    const int error = errno;
    std::cerr << "guest-pull-verity: cannot write to standard output"
              << (error != 0 ? std::string(": ") + strerror(error) : std::string()) << "\n";
    return guest_pull::tools::kExitRuntimeError;
  }
  return rc;
}
