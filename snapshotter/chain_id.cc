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
  absl::string_view name = ChainIdOf(key);
  if (!absl::StartsWith(name, "/")) return false;
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  if (parts.size() < 4 || parts[parts.size() - 3] != "image-volumes") return false;
  auto is_id = [](absl::string_view id) {
    return id.size() == 64 && std::all_of(id.begin(), id.end(), [](char c) {
             return absl::ascii_isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f');
           });
  };
  return is_id(parts[parts.size() - 2]) && is_id(parts.back());
}

}  // namespace snapshotter
