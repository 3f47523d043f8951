// guest-pull-verity: layer dm-verity hashes and genpolicy layer caches.
#include <iostream>
#include <string>
#include <vector>

#include "kata_volume/tools/verity_cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  int rc = guest_pull::tools::RunVerityCli(args, std::cout, std::cerr);
  std::cout.flush();
  if (!std::cout) return guest_pull::tools::kExitRuntimeError;  // e.g. stdout closed
  return rc;
}
