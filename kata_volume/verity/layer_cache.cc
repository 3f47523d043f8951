// genpolicy layer cache model and chain-ID helpers.
#include "kata_volume/verity/layer_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "kata_volume/verity/bounded_read.h"
#include "kata_volume/verity/output_file.h"
#include "kata_volume/verity/sha256.h"

namespace guest_pull::verity {

namespace {

absl::Status ErrnoStatus(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", strerror(errno)));
}

absl::StatusOr<std::string> StringField(const nlohmann::json& obj, const char* key, size_t index,
                                        bool required) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer cache entry ", index, ": missing \"", key, "\""));
    }
    return std::string();
  }
  if (!it->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer cache entry ", index, ": \"", key, "\" is not a string"));
  }
  return it->get<std::string>();
}

bool IsHex64(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The whole content of the open layer cache `fd` (named `path` in errors),
// refused once it is larger than max_bytes.
absl::StatusOr<std::string> ReadCacheText(int fd, const std::string& path, size_t max_bytes) {
  ASSIGN_OR_RETURN(BoundedText read, ReadBounded(fd, path, max_bytes));
  switch (read.refused) {
    case BoundedText::Refused::kNone:
      return std::move(read.text);
    case BoundedText::Refused::kNotRegular:
      return absl::InvalidArgumentError(
          absl::StrCat("layer cache ", path, " is not a regular file"));
    case BoundedText::Refused::kTooLarge:
      break;
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "layer cache ", path, " is ", read.size, " bytes, larger than the limit of ", max_bytes,
      " bytes; its writers (genpolicy, guest-pull-verity) only ever add to it: remove the "
      "layers of images no longer deployed"));
}

// Takes a shared flock on `fd`, trying for at most `wait` (a writer holds
// its exclusive one only while it writes).
absl::Status LockShared(int fd, const std::string& path, absl::Duration wait) {
  const absl::Time deadline = absl::Now() + wait;
  while (::flock(fd, LOCK_SH | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) return ErrnoStatus("cannot lock", path);
    if (absl::Now() >= deadline) {
      return absl::UnavailableError(absl::StrCat(
          "layer cache ", path, " is being written: a writer (genpolicy, or a run of "
          "guest-pull-verity) has held its lock for more than ", absl::FormatDuration(wait)));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LayerCache> ParseLayerCache(absl::string_view json_text) {
  if (absl::StripAsciiWhitespace(json_text).empty()) return LayerCache{};
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(json_text.begin(), json_text.end());
  } catch (const nlohmann::json::parse_error& e) {
    // nlohmann's text says where and what ("parse error at line 3, column
    // 9: syntax error while parsing ..."), without its "[json.exception...] ".
    absl::string_view what = e.what();
    if (size_t pos = what.find("] "); pos != absl::string_view::npos) what.remove_prefix(pos + 2);
    // A file cut short: a writer at work, a full disk.
    const bool cut = absl::StrContains(what, "unexpected end of input") ||
                     absl::StrContains(what, "missing closing quote");
    // Its "last read: '...'" can be a whole string (an etc/passwd): bounded.
    constexpr size_t kMaxShown = 240;
    const bool long_text = what.size() > kMaxShown;
    return absl::InvalidArgumentError(
        absl::StrCat("layer cache is not valid JSON (", what.substr(0, kMaxShown),
                     long_text ? "..." : "", cut ? "; the file is cut short" : "", ")"));
  }
  if (!doc.is_array()) return absl::InvalidArgumentError("layer cache must be a JSON array");
  LayerCache cache;
  for (size_t i = 0; i < doc.size(); ++i) {
    const nlohmann::json& obj = doc[i];
    if (!obj.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat("layer cache entry ", i, " is not an object"));
    }
    LayerCacheEntry e;
    ASSIGN_OR_RETURN(auto diff_id, StringField(obj, "diff_id", i, true));
    if (!IsSha256Digest(diff_id)) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer cache entry ", i, ": diff_id \"", diff_id, "\" is not sha256:<hex>"));
    }
    ASSIGN_OR_RETURN(auto verity, StringField(obj, "verity_hash", i, false));
    if (!verity.empty() && !IsHex64(verity)) {
      // The value (its start, if long) says what is wrong: uppercase, a
      // digest prefix, a cut.
      const bool long_value = verity.size() > 80;
      return absl::InvalidArgumentError(absl::StrCat(
          "layer cache entry ", i, " (", diff_id, "): verity_hash \"",
          absl::string_view(verity).substr(0, 80), long_value ? "...\"" : "\"", " (",
          verity.size(), " characters) is not 64 lowercase hex digits"));
    }
    ASSIGN_OR_RETURN(auto passwd, StringField(obj, "passwd", i, false));
    ASSIGN_OR_RETURN(auto group, StringField(obj, "group", i, false));
    e.diff_id = diff_id;
    e.verity_hash = verity;
    e.passwd = passwd;
    e.group = group;
    cache.push_back(std::move(e));
  }
  return cache;
}

std::string SerializeLayerCache(const LayerCache& cache, LayerCacheFormat format) {
  // Field order of genpolicy's ImageLayer struct.
  nlohmann::ordered_json doc = nlohmann::ordered_json::array();
  for (const LayerCacheEntry& e : cache) {
    if (format == LayerCacheFormat::kVerityHashes && e.verity_hash.empty()) continue;
    nlohmann::ordered_json obj = nlohmann::ordered_json::object();
    obj["diff_id"] = e.diff_id;
    if (format != LayerCacheFormat::kGenpolicy) obj["verity_hash"] = e.verity_hash;
    if (format != LayerCacheFormat::kVerityHashes) {
      obj["passwd"] = e.passwd;
      obj["group"] = e.group;
    }
    doc.push_back(std::move(obj));
  }
  // Replace invalid UTF-8 (passwd files are text; never abort on odd bytes).
  return doc.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::string VerityHashesPath(const std::string& cache_path) {
  return absl::StrCat(cache_path, ".verity.json");
}

LayerCache MergeVerityHashes(LayerCache cache, const LayerCache& hashes) {
  for (const LayerCacheEntry& h : hashes) {
    if (h.verity_hash.empty()) continue;
    LayerCacheEntry* match = nullptr;
    for (LayerCacheEntry& e : cache) {
      if (e.diff_id == h.diff_id) {
        match = &e;  // the first, as lookups find it
        break;
      }
    }
    if (match == nullptr) {
      cache.push_back(LayerCacheEntry{h.diff_id, h.verity_hash, "", ""});
    } else if (match->verity_hash.empty()) {
      match->verity_hash = h.verity_hash;
    }
  }
  return cache;
}

absl::StatusOr<LayerCache> ReadLayerCacheFile(const std::string& path,
                                              size_t max_bytes, bool* blank,
                                              absl::Duration lock_wait) {
  // Non-blocking: a FIFO there must not hang the reader (it is refused).
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, " does not exist"));
    return ErrnoStatus("cannot open", path);
  }
  absl::Status locked = LockShared(fd, path, lock_wait);
  absl::StatusOr<std::string> read =
      locked.ok() ? ReadCacheText(fd, path, max_bytes) : locked;
  ::close(fd);  // releases the lock
  ASSIGN_OR_RETURN(const std::string text, std::move(read));
  if (blank != nullptr) *blank = absl::StripAsciiWhitespace(text).empty();
  absl::StatusOr<LayerCache> cache = ParseLayerCache(text);
  if (!cache.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", cache.status().message()));
  }
  return cache;
}

namespace {

absl::Status CheckTextFits(const std::string& path, const std::string& text) {
  if (text.size() <= kMaxLayerCacheFileBytes) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "layer cache ", path, " would be ", text.size(), " bytes, larger than the limit of ",
      kMaxLayerCacheFileBytes, " bytes its readers take: not written (remove the layers of "
      "images no longer deployed from it)"));
}

}  // namespace

absl::Status CheckLayerCacheFits(const std::string& path, const LayerCache& cache,
                                 LayerCacheFormat format) {
  return CheckTextFits(path, SerializeLayerCache(cache, format));
}

absl::Status WriteLayerCacheFile(const std::string& path, const LayerCache& cache,
                                 LayerCacheFormat format) {
  ASSIGN_OR_RETURN(const std::string resolved, ResolveOutputPath(path));
  const std::string text = SerializeLayerCache(cache, format);
  RETURN_IF_ERROR(CheckTextFits(path, text));
  return ReplaceFile(resolved, /*flush=*/true,
                     [&](int fd) { return WriteAllTo(fd, text.data(), text.size(), path); });
}

absl::StatusOr<LayerCache> ReadLayerCacheFd(int fd, const std::string& path, size_t max_bytes,
                                            bool* blank) {
  ASSIGN_OR_RETURN(const std::string text, ReadCacheText(fd, path, max_bytes));
  if (blank != nullptr) *blank = absl::StripAsciiWhitespace(text).empty();
  absl::StatusOr<LayerCache> cache = ParseLayerCache(text);
  if (!cache.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", cache.status().message()));
  }
  return cache;
}

void UpsertLayer(LayerCache* cache, const LayerCacheEntry& entry) {
  for (LayerCacheEntry& e : *cache) {
    if (e.diff_id == entry.diff_id) {
      e = entry;
      return;
    }
  }
  cache->push_back(entry);
}

const LayerCacheEntry* FindLayerByDiffId(const LayerCache& cache, absl::string_view diff_id) {
  for (const LayerCacheEntry& e : cache) {
    if (e.diff_id == diff_id) return &e;
  }
  return nullptr;
}

std::string ChainId(absl::string_view parent_chain_id, absl::string_view diff_id) {
  if (parent_chain_id.empty()) return std::string(diff_id);
  return absl::StrCat("sha256:", Sha256Hex(absl::StrCat(parent_chain_id, " ", diff_id)));
}

const LayerCacheEntry* FindLayerByChain(const LayerCache& cache, absl::string_view parent_chain_id,
                                        absl::string_view chain_id) {
  for (const LayerCacheEntry& e : cache) {
    if (ChainId(parent_chain_id, e.diff_id) == chain_id) return &e;
  }
  return nullptr;
}

}  // namespace guest_pull::verity
