// Chain IDs from backend snapshot names.
#include "snapshotter/guest_pull/chain_id.h"

#include "absl/strings/ascii.h"

namespace guest_pull {

absl::string_view ChainIdOf(absl::string_view key) {
  size_t ns_end = key.find('/');
  if (ns_end == absl::string_view::npos || ns_end == 0) return key;
  size_t seq_end = key.find('/', ns_end + 1);
  if (seq_end == absl::string_view::npos || seq_end == ns_end + 1) return key;
  for (size_t i = ns_end + 1; i < seq_end; ++i) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(key[i]))) return key;
  }
  return key.substr(seq_end + 1);
}

}  // namespace guest_pull
