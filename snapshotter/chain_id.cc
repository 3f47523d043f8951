// Chain IDs and unpack keys from backend snapshot names.
#include "snapshotter/chain_id.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace snapshotter {

namespace {

// Where "<namespace>/" ends (the slash after the sequence number), or npos
// when `key` does not have the form.
size_t SequenceEnd(absl::string_view key) {
  size_t ns_end = key.find('/');
  if (ns_end == absl::string_view::npos || ns_end == 0) return absl::string_view::npos;
  size_t seq_end = key.find('/', ns_end + 1);
  if (seq_end == absl::string_view::npos || seq_end == ns_end + 1) return absl::string_view::npos;
  for (size_t i = ns_end + 1; i < seq_end; ++i) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(key[i]))) return absl::string_view::npos;
  }
  return seq_end;
}

}  // namespace

absl::string_view ChainIdOf(absl::string_view key) {
  size_t seq_end = SequenceEnd(key);
  return seq_end == absl::string_view::npos ? key : key.substr(seq_end + 1);
}

absl::string_view NamespaceOf(absl::string_view key) {
  size_t seq_end = SequenceEnd(key);
  return seq_end == absl::string_view::npos ? absl::string_view() : key.substr(0, key.find('/'));
}

bool IsUnpackKey(absl::string_view key) {
  return absl::StartsWith(ChainIdOf(key), kUnpackKeyPrefix);
}

bool IsCriImageVolumeKey(absl::string_view key) {
  // The state dir may be relative (containerd takes any `state`): then
  // the path starts with its first component, never with image-volumes
  // (CRI's is "<containerd's state>/io.containerd.grpc.v1.cri").
  absl::string_view name = ChainIdOf(key);
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  if (parts.size() < 4 || parts[parts.size() - 3] != "image-volumes") return false;
  auto is_hex = [](absl::string_view id, std::initializer_list<size_t> sizes) {
    return std::find(sizes.begin(), sizes.end(), id.size()) != sizes.end() &&
           std::all_of(id.begin(), id.end(), [](char c) {
             return absl::ascii_isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f');
           });
  };
  // The pod's sandbox ID; the manifest digest's hex (sha256, sha384, sha512).
  return is_hex(parts[parts.size() - 2], {64}) && is_hex(parts.back(), {64, 96, 128});
}

}  // namespace snapshotter
