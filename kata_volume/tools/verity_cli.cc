// guest-pull-verity subcommands.
#include "kata_volume/tools/verity_cli.h"

#include <algorithm>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "kata_volume/decode_command.h"
#include "kata_volume/verity/layer_cache.h"
#include "kata_volume/verity/layer_cache_update.h"
#include "kata_volume/verity/layer_verity.h"
#include "kata_volume/verity/oci_layout.h"
#include "kata_volume/verity/output_file.h"

namespace guest_pull::tools {

namespace {

using ::guest_pull::verity::LayerCache;
using ::guest_pull::verity::LayerCacheEntry;
using ::guest_pull::verity::LayerVerity;

constexpr char kUsage[] =
    "Usage: guest-pull-verity <command> [args]\n"
    "\n"
    "Computes the dm-verity root hashes genpolicy/tardev expect for image layers.\n"
    "\n"
    "Commands:\n"
    "  layer [--reindex] FILE\n"
    "      FILE is a layer blob (.tar, .tar.gz or .tar.zst; a pipe such as\n"
    "      /dev/stdin is read as a stream). Prints digest, diff_id and verity_hash.\n"
    "      Refused: no tar data at all (an empty FILE, or a pipe whose writer\n"
    "      failed), and an uncompressed FILE that already ends with a tarfs index\n"
    "      (written by `index`), whose tar is only its first bytes; --reindex\n"
    "      takes the whole file as the layer, as genpolicy does with such a blob.\n"
    "  cache OCI_LAYOUT_DIR [--image REF] [--output FILE] [--format F]\n"
    "      Writes a genpolicy layers-cache JSON for every layer of the image\n"
    "      (the only one in the layout, or the one whose\n"
    "      org.opencontainers.image.ref.name is REF). --format tardev (default):\n"
    "      entries {diff_id, verity_hash, passwd, group}, as the tarfs/tardev\n"
    "      genpolicy reads them. --format genpolicy: entries {diff_id, passwd,\n"
    "      group}, as upstream genpolicy 3.20+ reads them, and the expected\n"
    "      hashes in FILE.verity.json ({diff_id, verity_hash}), where the\n"
    "      daemon looks for them; needs --output. Without --output the JSON goes\n"
    "      to stdout; with it (in a directory that exists: none is created),\n"
    "      an existing cache (and companion) is merged\n"
    "      (entries with the same diff_id replaced) and rewritten atomically,\n"
    "      under an exclusive flock on FILE (runs of this tool never lose\n"
    "      each other's entries; do not run genpolicy on FILE meanwhile).\n"
    "  index [--reindex] LAYER_FILE OUT_FILE\n"
    "      Writes the indexed layer (uncompressed tar followed by the tarfs\n"
    "      index: the exact bytes the root hash covers) to a new file that\n"
    "      replaces OUT_FILE (a link's target) once complete; on an error\n"
    "      OUT_FILE stays as it was. Prints digest, diff_id, verity_hash,\n"
    "      indexed_size, data_blocks, block_size and salt: the parameters of\n"
    "      `veritysetup format --no-superblock --hash=sha256\n"
    "      --data-block-size=4096 --hash-block-size=4096 --salt=SALT\n"
    "      --data-blocks=N OUT_FILE HASH_FILE`, which prints the same root hash.\n"
    "  index --in-place [--reindex] LAYER_FILE\n"
    "      Appends the tarfs index to LAYER_FILE, an uncompressed tar, which\n"
    "      becomes the indexed layer without a copy of it being written; prints\n"
    "      the same. On an error the file is cut back to its tar. Either form\n"
    "      refuses, changing nothing, what `layer` refuses (--reindex as there).\n"
    "  decode OPTION_OR_BASE64\n"
    "      Decodes an io.katacontainers.volume mount option.\n"
    "\n"
    "Options: --help, --version. \"--\" ends a command's options: the arguments\n"
    "after it are file names even when they start with \"-\"\n"
    "(guest-pull-verity layer -- -x.tar).\n"
    "Exit codes: 0 ok, 1 runtime error, 2 usage error.\n";

int UsageError(std::ostream& err, absl::string_view message) {
  err << "guest-pull-verity: " << message << "\n"
      << "Run 'guest-pull-verity --help' for usage.\n";
  return kExitUsage;
}

int RuntimeError(std::ostream& err, const absl::Status& status) {
  err << "guest-pull-verity: " << status.message() << "\n";
  return kExitRuntimeError;
}

LayerCacheEntry ToCacheEntry(const LayerVerity& v) {
  return LayerCacheEntry{v.diff_id, v.root_hash, v.passwd.value_or(""), v.group.value_or("")};
}

// A command's arguments: its flags (those of `known`, each at most once)
// and its operands, which are all the arguments after "--", and those
// before it that do not start with "-". Returns the usage error, or "".
std::string SplitArgs(absl::string_view cmd, const std::vector<std::string>& args,
                      const std::vector<absl::string_view>& known, std::vector<std::string>* flags,
                      std::vector<std::string>* operands) {
  bool end_of_options = false;
  for (const std::string& a : args) {
    if (end_of_options || !absl::StartsWith(a, "-")) {
      operands->push_back(a);
    } else if (a == "--") {
      end_of_options = true;
    } else if (a == "-") {
      return absl::StrCat(cmd, " does not read \"-\" as standard input: name /dev/stdin");
    } else if (std::find(known.begin(), known.end(), a) == known.end()) {
      // "-x.tar" is more likely a file than a misspelt option.
      return absl::StartsWith(a, "--")
                 ? absl::StrCat("unknown option ", a, " for ", cmd)
                 : absl::StrCat("unknown option ", a, " for ", cmd,
                                " (a file whose name starts with \"-\" goes after \"--\": ", cmd,
                                " -- ", a, ")");
    } else if (std::find(flags->begin(), flags->end(), a) != flags->end()) {
      return absl::StrCat(a, " is given twice");
    } else {
      flags->push_back(a);
    }
  }
  for (const std::string& o : *operands) {
    if (o.empty()) return absl::StrCat(cmd, ": a file name must not be empty");
  }
  return "";
}

bool HasFlag(const std::vector<std::string>& flags, absl::string_view flag) {
  return std::find(flags.begin(), flags.end(), flag) != flags.end();
}

// A layer refused because it already ends with an index (FailedPrecondition,
// the only one the layer functions return) gets the way to hash it anyway.
int LayerError(std::ostream& err, const absl::Status& status) {
  if (!absl::IsFailedPrecondition(status)) return RuntimeError(err, status);
  return RuntimeError(err, absl::Status(status.code(),
                                        absl::StrCat(status.message(), " (--reindex takes the "
                                                     "whole file as the layer's tar)")));
}

// What `layer` and `index` refuse: a file that already ends with an index
// (unless --reindex), and an empty layer (an empty file, or a pipe whose
// writer failed: `curl ... | guest-pull-verity layer /dev/stdin`), which
// gave the root hash of an empty tar and exit status 0.
verity::IndexChecks ChecksOf(const std::vector<std::string>& flags) {
  verity::IndexChecks checks;
  checks.indexed_input = HasFlag(flags, "--reindex") ? verity::IndexedInput::kHashAsTar
                                                     : verity::IndexedInput::kRefuse;
  checks.refuse_empty = true;
  return checks;
}

int RunLayer(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::vector<std::string> flags, files;
  if (std::string e = SplitArgs("layer", args, {"--reindex"}, &flags, &files); !e.empty()) {
    return UsageError(err, e);
  }
  if (files.size() != 1) return UsageError(err, "layer takes exactly one FILE argument");
  verity::LayerVerityOptions options;
  options.capture_user_files = false;
  options.accept_pipe = true;  // `... | guest-pull-verity layer /dev/stdin`
  const verity::IndexChecks checks = ChecksOf(flags);
  options.indexed_input = checks.indexed_input;
  options.refuse_empty = checks.refuse_empty;
  absl::StatusOr<LayerVerity> v = verity::ComputeLayerVerity(files[0], options);
  if (!v.ok()) return LayerError(err, v.status());
  out << "digest: " << v->digest << "\n"
      << "diff_id: " << v->diff_id << "\n"
      << "verity_hash: " << v->root_hash << "\n";
  return kExitOk;
}

int RunIndex(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::vector<std::string> flags, files;
  if (std::string e = SplitArgs("index", args, {"--in-place", "--reindex"}, &flags, &files);
      !e.empty()) {
    return UsageError(err, e);
  }
  const verity::IndexChecks checks = ChecksOf(flags);
  absl::StatusOr<LayerVerity> v;
  if (HasFlag(flags, "--in-place")) {
    if (files.size() != 1) return UsageError(err, "index --in-place takes exactly one LAYER_FILE");
    v = verity::AppendIndexInPlace(files[0], checks);
  } else if (files.size() != 2) {
    return UsageError(err, "index takes exactly LAYER_FILE and OUT_FILE, or --in-place LAYER_FILE");
  } else {
    v = verity::WriteIndexedLayer(files[0], files[1], checks);
  }
  if (!v.ok()) return LayerError(err, v.status());
  out << "digest: " << v->digest << "\n"
      << "diff_id: " << v->diff_id << "\n"
      << "verity_hash: " << v->root_hash << "\n"
      << "indexed_size: " << v->indexed_size << "\n"
      << "data_blocks: " << v->indexed_size / 4096 << "\n"
      << "block_size: 4096\n"
      << "salt: " << std::string(64, '0') << "\n";
  return kExitOk;
}

// Whether `arg` is written as one of cache's flags ("--output",
// "--image=x", "-h").
bool NamesACacheFlag(absl::string_view arg) {
  for (absl::string_view flag : {"--image", "--output", "--format"}) {
    if (arg == flag || absl::StartsWith(arg, absl::StrCat(flag, "="))) return true;
  }
  return arg == "--help" || arg == "-h" || arg == "--";
}

int RunCache(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::optional<std::string> layout, image, output, format;
  bool end_of_options = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (!end_of_options && a == "--") {
      end_of_options = true;
      continue;
    }
    // The usage error for `flag`, or "" once its value is taken.
    auto take_value = [&](std::optional<std::string>* slot, absl::string_view flag,
                          absl::string_view value_name) -> std::string {
      const std::string needs = absl::StrCat(flag, " needs one ", value_name, " value");
      if (slot->has_value()) return needs;
      if (absl::StartsWith(a, absl::StrCat(flag, "="))) {
        *slot = a.substr(flag.size() + 1);
        return "";
      }
      if (i + 1 >= args.size()) return needs;
      // A value left out (`--image $REF --output F` with REF unset) made
      // the next flag the value, and the error then named that flag's own
      // value as a second OCI_LAYOUT_DIR.
      if (NamesACacheFlag(args[i + 1])) {
        return absl::StrCat(needs, " (the next argument, \"", args[i + 1], "\", is a flag)");
      }
      *slot = args[++i];
      return "";
    };
    std::string refused;
    if (end_of_options) {
      if (layout.has_value()) return UsageError(err, "cache takes exactly one OCI_LAYOUT_DIR");
      layout = a;
    } else if (a == "--image" || absl::StartsWith(a, "--image=")) {
      refused = take_value(&image, "--image", "REF");
    } else if (a == "--format" || absl::StartsWith(a, "--format=")) {
      refused = take_value(&format, "--format", "tardev|genpolicy");
    } else if (a == "--output" || absl::StartsWith(a, "--output=")) {
      refused = take_value(&output, "--output", "FILE");
    } else if (absl::StartsWith(a, "-")) {
      return UsageError(err, absl::StrCat("unknown option ", a,
                                          " for cache (a directory whose name starts with \"-\" "
                                          "goes after \"--\": cache -- ", a, ")"));
    } else if (layout.has_value()) {
      return UsageError(err, "cache takes exactly one OCI_LAYOUT_DIR");
    } else {
      layout = a;
    }
    if (!refused.empty()) return UsageError(err, refused);
  }
  if (!layout.has_value()) return UsageError(err, "cache needs an OCI_LAYOUT_DIR");
  if (output.has_value() && output->empty()) return UsageError(err, "--output must not be empty");
  // An empty REF (`--image "$REF"` with REF unset) names no image: it was
  // taken for no --image, hashing a one-image layout's image whatever it is.
  if (image.has_value() && image->empty()) return UsageError(err, "--image must not be empty");
  const std::string format_name = format.value_or("tardev");
  if (format_name != "tardev" && format_name != "genpolicy") {
    return UsageError(err, absl::StrCat("--format must be tardev or genpolicy, not \"",
                                        format_name, "\""));
  }
  const bool genpolicy = format_name == "genpolicy";
  if (genpolicy && !output.has_value()) {
    return UsageError(err, "--format genpolicy needs --output (it writes two files)");
  }

  // An existing cache (and its hashes companion) is read first so that a
  // malformed one fails before any work, and again under the writers' lock
  // before the merge (another writer may have changed it meanwhile).
  // The companion is read in both forms: a tardev-form run over a cache
  // written with --format genpolicy before takes the hashes of its entries
  // back from it (they had "verity_hash": "" otherwise, which the tardev
  // genpolicy takes for their hash). Only --format genpolicy rewrites it.
  auto read_companion = [&]() -> absl::StatusOr<LayerCache> {
    absl::StatusOr<LayerCache> hashes =
        verity::ReadLayerCacheFile(verity::VerityHashesPath(*output));
    if (absl::IsNotFound(hashes.status())) return LayerCache{};
    return hashes;
  };
  size_t entries_before = 0;
  if (output.has_value()) {
    // What cannot be replaced (a FIFO, a device) is refused before a read.
    absl::StatusOr<std::string> resolved = verity::ResolveOutputPath(*output);
    if (resolved.ok() && genpolicy) {
      resolved = verity::ResolveOutputPath(verity::VerityHashesPath(*output));
    }
    if (!resolved.ok()) return RuntimeError(err, resolved.status());
    absl::StatusOr<LayerCache> existing = verity::ReadLayerCacheFile(
        *output, verity::kMaxLayerCacheFileBytes, nullptr, verity::kLayerCacheUpdateWait);
    if (absl::IsNotFound(existing.status())) existing = LayerCache{};
    if (absl::IsUnavailable(existing.status())) {
      return RuntimeError(err, absl::UnavailableError(absl::StrCat(
                                   existing.status().message(),
                                   "; nothing was written: run again once it is done")));
    }
    if (existing.ok()) entries_before = existing->size();
    if (!existing.ok()) return RuntimeError(err, existing.status());
    if (absl::StatusOr<LayerCache> hashes = read_companion(); !hashes.ok()) {
      return RuntimeError(err, hashes.status());
    }
  }

  absl::StatusOr<verity::OciImage> img = verity::ReadOciImage(*layout, image.value_or(""));
  if (!img.ok()) return RuntimeError(err, img.status());
  if (!img->diff_ids.empty() && img->diff_ids.size() != img->layers.size()) {
    return RuntimeError(err, absl::InvalidArgumentError(absl::StrCat(
                                 "image config lists ", img->diff_ids.size(),
                                 " diff_ids but the manifest has ", img->layers.size(), " layers")));
  }
  LayerCache computed;
  for (size_t i = 0; i < img->layers.size(); ++i) {
    const verity::OciLayerBlob& blob = img->layers[i];
    absl::StatusOr<LayerVerity> v = verity::ComputeLayerVerity(blob.path);
    if (!v.ok()) return RuntimeError(err, v.status());
    if (v->digest != blob.digest) {
      return RuntimeError(err, absl::DataLossError(absl::StrCat(
                                   "layer blob ", blob.path, " does not match its digest ",
                                   blob.digest, " (got ", v->digest, ")")));
    }
    if (!img->diff_ids.empty() && img->diff_ids[i] != v->diff_id) {
      return RuntimeError(err, absl::DataLossError(absl::StrCat(
                                   "layer ", blob.digest, " has diff_id ", v->diff_id,
                                   " but the image config says ", img->diff_ids[i])));
    }
    computed.push_back(ToCacheEntry(*v));
  }

  if (!output.has_value()) {
    out << verity::SerializeLayerCache(computed);
    return kExitOk;
  }
  absl::StatusOr<verity::LayerCacheUpdate> update = verity::LayerCacheUpdate::Begin(*output);
  if (!update.ok()) return RuntimeError(err, update.status());
  absl::StatusOr<LayerCache> merged = update->Read(entries_before);
  if (!merged.ok()) return RuntimeError(err, merged.status());
  absl::StatusOr<LayerCache> hashes = read_companion();
  if (!hashes.ok()) return RuntimeError(err, hashes.status());
  // The cache's entries get the companion's hashes they lack, but the
  // companion's other entries stay out of the cache: written there they
  // would be layers with an empty passwd and group, which genpolicy (either
  // line) takes from the cache instead of reading the layer (the companion
  // outlives a cache genpolicy deleted).
  const size_t cache_entries = merged->size();
  *merged = verity::MergeVerityHashes(*std::move(merged), *hashes);
  merged->resize(cache_entries);
  for (const LayerCacheEntry& e : computed) verity::UpsertLayer(&*merged, e);
  const verity::LayerCacheFormat cache_format =
      genpolicy ? verity::LayerCacheFormat::kGenpolicy : verity::LayerCacheFormat::kTardev;
  // The companion keeps its hashes of layers the cache does not list.
  const LayerCache companion = verity::MergeVerityHashes(*merged, *hashes);
  // Both files fit, or neither is written (not the companion alone).
  if (absl::Status s = verity::CheckLayerCacheFits(*output, *merged, cache_format); !s.ok()) {
    return RuntimeError(err, s);
  }
  if (genpolicy) {
    const std::string companion_path = verity::VerityHashesPath(*output);
    if (absl::Status s = verity::CheckLayerCacheFits(companion_path, companion,
                                                     verity::LayerCacheFormat::kVerityHashes);
        !s.ok()) {
      return RuntimeError(err, s);
    }
    // Hashes first: the daemon reloads when either file changes.
    if (absl::Status s = verity::WriteLayerCacheFile(companion_path, companion,
                                                     verity::LayerCacheFormat::kVerityHashes);
        !s.ok()) {
      return RuntimeError(err, s);
    }
  }
  if (absl::Status s = verity::WriteLayerCacheFile(*output, *merged, cache_format); !s.ok()) {
    return RuntimeError(err, s);
  }
  update->Written();
  return kExitOk;
}

}  // namespace

int RunVerityCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty()) return UsageError(err, "missing command");
  const std::string& cmd = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    out << kUsage;
    return kExitOk;
  }
  if (cmd == "--version") {
    out << kVerityToolVersion << "\n";
    return kExitOk;
  }
  for (const std::string& a : rest) {
    if (a == "--") break;  // what follows names files, even "--help"
    if ((a == "--help" || a == "-h") && cmd != "decode") {
      out << kUsage;
      return kExitOk;
    }
  }
  if (cmd == "layer") return RunLayer(rest, out, err);
  if (cmd == "cache") return RunCache(rest, out, err);
  if (cmd == "index") return RunIndex(rest, out, err);
  if (cmd == "decode") {
    if (!rest.empty() && rest[0] == "--") rest.erase(rest.begin());
    return ::kata_volume::RunDecodeCommand(rest, out, err);
  }
  return UsageError(err, absl::StrCat("unknown command \"", cmd, "\""));
}

}  // namespace guest_pull::tools
