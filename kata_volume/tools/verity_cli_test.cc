// End-to-end tests of the guest-pull-verity binary on OCI layouts built with
// umoci: `cache` agrees with `layer` for every blob, merging keeps other
// entries, bad input changes nothing and exit codes are meaningful.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "kata_volume/tools/verity_cli.h"
#include "kata_volume/verity/layer_cache.h"
#include "kata_volume/verity/test_util.h"

namespace guest_pull::tools {
namespace {

using ::guest_pull::verity::LayerCache;
using ::guest_pull::verity::LayerCacheEntry;
using ::guest_pull::verity::testing::MakeTempDir;
using ::guest_pull::verity::testing::ReadFileOrDie;
using ::guest_pull::verity::testing::RunCommand;
using ::guest_pull::verity::testing::WriteFileOrDie;

constexpr char kBinary[] = "kata_volume/tools/guest-pull-verity";

struct Result {
  int code;
  std::string out;
};

// Runs the binary; stdout captured, stderr to `err_file`.
Result RunTool(const std::string& args, const std::string& err_file = "/dev/null") {
  std::string cmd = absl::StrCat(kBinary, " ", args, " 2>", err_file, "; echo \"rc=$?\"");
  absl::StatusOr<std::string> out = RunCommand(cmd);
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return {-1, ""};
  size_t pos = out->rfind("rc=");
  return {std::stoi(out->substr(pos + 3)), out->substr(0, pos)};
}

std::map<std::string, std::string> ParseKeyValues(const std::string& text) {
  std::map<std::string, std::string> kv;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::pair<std::string, std::string> p = absl::StrSplit(line, absl::MaxSplits(": ", 1));
    kv[p.first] = p.second;
  }
  return kv;
}

// A two-layer image "t" (+ a second tag) in <dir>/oci.
// `marker`, if any, is written into the first layer (a layout of other layers).
std::string MakeLayout(const std::string& marker = "") {
  std::string dir = MakeTempDir();
  absl::StatusOr<std::string> r = RunCommand(absl::StrCat(
      "set -e; cd ", dir, "; umoci init --layout oci; umoci new --image oci:t; ",
      "umoci unpack --image oci:t b >/dev/null 2>&1; mkdir -p b/rootfs/etc b/rootfs/bin; ",
      marker.empty() ? "" : absl::StrCat("echo '", marker, "' > b/rootfs/marker; "),
      "cp /bin/busybox b/rootfs/bin/busybox; ln -s busybox b/rootfs/bin/sh; ",
      "echo 'root:x:0:0:root:/root:/bin/sh' > b/rootfs/etc/passwd; ",
      "umoci repack --refresh-bundle --image oci:t b; ",
      "echo 'root:x:0:' > b/rootfs/etc/group; rm b/rootfs/etc/passwd; ",
      "umoci repack --refresh-bundle --image oci:t b; ",
      "umoci tag --image oci:t other 2>&1"));
  EXPECT_TRUE(r.ok()) << r.status();
  return dir + "/oci";
}

TEST(VerityCliTest, CacheAgreesWithLayerForEveryBlob) {
  std::string layout = MakeLayout();
  Result cache = RunTool(absl::StrCat("cache ", layout, " --image t"));
  ASSERT_EQ(cache.code, 0);
  absl::StatusOr<LayerCache> entries = verity::ParseLayerCache(cache.out);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 2u);

  absl::StatusOr<std::string> layers = RunCommand(absl::StrCat(
      "jq -r '.layers[].digest' ", layout, "/blobs/sha256/$(jq -r '.manifests[0].digest' ", layout,
      "/index.json | cut -d: -f2)"));
  ASSERT_TRUE(layers.ok());
  std::vector<std::string> digests = absl::StrSplit(*layers, '\n', absl::SkipEmpty());
  ASSERT_EQ(digests.size(), 2u);
  for (size_t i = 0; i < digests.size(); ++i) {
    std::string blob = absl::StrCat(layout, "/blobs/sha256/", digests[i].substr(7));
    Result layer = RunTool("layer " + blob);
    ASSERT_EQ(layer.code, 0);
    auto kv = ParseKeyValues(layer.out);
    EXPECT_EQ(kv["digest"], digests[i]);
    EXPECT_EQ(kv["diff_id"], (*entries)[i].diff_id);
    EXPECT_EQ(kv["verity_hash"], (*entries)[i].verity_hash);
    // diff_id is the sha256 of the decompressed tar.
    absl::StatusOr<std::string> sum = RunCommand("zcat " + blob + " | sha256sum | cut -d' ' -f1");
    ASSERT_TRUE(sum.ok());
    EXPECT_EQ("sha256:" + sum->substr(0, 64), kv["diff_id"]);
  }
  EXPECT_EQ((*entries)[0].passwd, "root:x:0:0:root:/root:/bin/sh\n");
  EXPECT_EQ((*entries)[0].group, "");
  EXPECT_EQ((*entries)[1].passwd, "WHITEOUT");
  EXPECT_EQ((*entries)[1].group, "root:x:0:\n");
}

// The same image with zstd layers (skopeo recompresses: the tars, so the
// diff_ids and root hashes, stay the same; the digests change).
TEST(VerityCliTest, ZstdLayersGiveTheHashesOfTheirTars) {
  std::string layout = MakeLayout();
  std::string zstd_layout = MakeTempDir() + "/oci";
  absl::StatusOr<std::string> copied =
      RunCommand(absl::StrCat("skopeo copy -q --dest-compress-format zstd oci:", layout,
                              ":t oci:", zstd_layout, ":t 2>&1 && jq -r '.layers[].mediaType' ",
                              zstd_layout, "/blobs/sha256/$(jq -r '.manifests[0].digest' ",
                              zstd_layout, "/index.json | cut -d: -f2) | sort -u"));
  ASSERT_TRUE(copied.ok()) << copied.status();
  EXPECT_EQ(*copied, "application/vnd.oci.image.layer.v1.tar+zstd\n");
  Result gzip = RunTool(absl::StrCat("cache ", layout, " --image t"));
  Result zstd = RunTool(absl::StrCat("cache ", zstd_layout, " --image t"));
  ASSERT_EQ(gzip.code, 0);
  ASSERT_EQ(zstd.code, 0);
  absl::StatusOr<LayerCache> from_gzip = verity::ParseLayerCache(gzip.out);
  absl::StatusOr<LayerCache> from_zstd = verity::ParseLayerCache(zstd.out);
  ASSERT_TRUE(from_gzip.ok() && from_zstd.ok());
  ASSERT_EQ(from_zstd->size(), 2u);
  EXPECT_EQ(*from_zstd, *from_gzip);
}

TEST(VerityCliTest, OutputFileIsMergedAndMalformedOutputIsLeftAlone) {
  std::string layout = MakeLayout();
  std::string dir = MakeTempDir();
  std::string out_file = dir + "/layers-cache.json";
  LayerCacheEntry other{"sha256:" + std::string(64, 'a'), std::string(64, 'b'), "p", "g"};
  LayerCacheEntry stale;
  Result fresh = RunTool(absl::StrCat("cache ", layout, " --image=t"));
  ASSERT_EQ(fresh.code, 0);
  LayerCache computed = *verity::ParseLayerCache(fresh.out);
  stale = computed[0];
  stale.verity_hash = std::string(64, 'c');
  ASSERT_TRUE(verity::WriteLayerCacheFile(out_file, {other, stale}).ok());

  ASSERT_EQ(RunTool(absl::StrCat("cache ", layout, " --image t --output ", out_file)).code, 0);
  absl::StatusOr<LayerCache> merged = verity::ReadLayerCacheFile(out_file);
  ASSERT_TRUE(merged.ok()) << merged.status();
  ASSERT_EQ(merged->size(), 3u);
  EXPECT_EQ((*merged)[0], other);
  EXPECT_EQ((*merged)[1], computed[0]);  // same diff_id replaced in place
  EXPECT_EQ((*merged)[2], computed[1]);

  WriteFileOrDie(out_file, "{not json");
  EXPECT_EQ(RunTool(absl::StrCat("cache ", layout, " --image t --output ", out_file)).code, 1);
  EXPECT_EQ(ReadFileOrDie(out_file), "{not json");

  // Two runs at once, for images of different layers, into one cache: the
  // lock keeps both images' entries (three rounds).
  const std::string other_layout = MakeLayout("other image");
  Result other_alone = RunTool(absl::StrCat("cache ", other_layout, " --image t"));
  ASSERT_EQ(other_alone.code, 0);
  LayerCache expected = computed;  // every diff_id of both images, once
  absl::StatusOr<LayerCache> other_entries = verity::ParseLayerCache(other_alone.out);
  ASSERT_TRUE(other_entries.ok()) << other_entries.status();
  for (const LayerCacheEntry& e : *other_entries) verity::UpsertLayer(&expected, e);
  ASSERT_GT(expected.size(), computed.size());
  const std::string merged_file = dir + "/concurrent.json";
  for (int round = 0; round < 3; ++round) {
    WriteFileOrDie(merged_file, "[]");
    ASSERT_TRUE(RunCommand(absl::StrCat(kBinary, " cache ", layout, " --image t --output ",
                                        merged_file, " & ", kBinary, " cache ", other_layout,
                                        " --image t --output ", merged_file, " & wait"))
                    .ok());
    absl::StatusOr<LayerCache> both = verity::ReadLayerCacheFile(merged_file);
    ASSERT_TRUE(both.ok()) << both.status();
    EXPECT_EQ(both->size(), expected.size()) << "round " << round;
  }
  // A FIFO at --output is refused at once, never opened for a read.
  const std::string fifo = dir + "/fifo.json";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  Result fifo_run = RunTool(absl::StrCat("cache ", layout, " --image t --output ", fifo),
                            dir + "/fifo.err");
  EXPECT_EQ(fifo_run.code, 1);
  EXPECT_TRUE(RunCommand(absl::StrCat("grep -q 'is a FIFO' ", dir, "/fifo.err")).ok());
}

TEST(VerityCliTest, GenpolicyFormatWritesUpstreamCacheAndHashesCompanion) {
  std::string layout = MakeLayout();
  std::string dir = MakeTempDir();
  std::string out_file = dir + "/layers-cache.json";
  LayerCache tardev = *verity::ParseLayerCache(RunTool(absl::StrCat("cache ", layout, " --image t")).out);
  // An entry genpolicy added itself (no hash) survives.
  LayerCacheEntry theirs{"sha256:" + std::string(64, 'a'), "", "p", "g"};
  WriteFileOrDie(out_file, verity::SerializeLayerCache({theirs}, verity::LayerCacheFormat::kGenpolicy));
  ASSERT_EQ(RunTool(absl::StrCat("cache ", layout, " --image t --format genpolicy --output ", out_file))
                .code,
            0);
  std::string upstream = ReadFileOrDie(out_file);
  EXPECT_EQ(upstream.find("verity_hash"), std::string::npos) << upstream;
  absl::StatusOr<LayerCache> cache = verity::ReadLayerCacheFile(out_file);
  absl::StatusOr<LayerCache> hashes = verity::ReadLayerCacheFile(verity::VerityHashesPath(out_file));
  ASSERT_TRUE(cache.ok() && hashes.ok());
  ASSERT_EQ(cache->size(), 3u);
  EXPECT_EQ((*cache)[0], theirs);
  ASSERT_EQ(hashes->size(), 2u);
  EXPECT_EQ(verity::MergeVerityHashes(*cache, *hashes),
            (LayerCache{theirs, tardev[0], tardev[1]}));
  // Bad choices are usage errors and write nothing.
  std::string other = dir + "/other.json";
  EXPECT_EQ(RunTool(absl::StrCat("cache ", layout, " --image t --format genpolicy")).code, 2);
  EXPECT_EQ(RunTool(absl::StrCat("cache ", layout, " --image t --format nope --output ", other)).code, 2);
  struct stat st;
  EXPECT_NE(stat(other.c_str(), &st), 0);
}

// The companion outlives a cache genpolicy deleted (it deletes one it
// cannot parse): its hashes of other images' layers stay in it and do not
// enter the cache, where they would be layers with an empty passwd that
// genpolicy takes instead of reading the layer. And a tardev-form run over
// a cache written with --format genpolicy takes its layers' hashes back
// from the companion instead of writing them "verity_hash": "".
TEST(VerityCliTest, CompanionHashesStayOutOfTheCacheAndComeBackToATardevCache) {
  std::string first = MakeLayout();
  std::string second = MakeLayout("second image");
  LayerCache first_layers =
      *verity::ParseLayerCache(RunTool(absl::StrCat("cache ", first, " --image t")).out);
  LayerCache second_layers =
      *verity::ParseLayerCache(RunTool(absl::StrCat("cache ", second, " --image t")).out);
  ASSERT_EQ(verity::FindLayerByDiffId(second_layers, first_layers[0].diff_id), nullptr);
  std::string dir = MakeTempDir();
  std::string out_file = dir + "/layers-cache.json";
  const std::string genpolicy = absl::StrCat(" --image t --format genpolicy --output ", out_file);
  ASSERT_EQ(RunTool(absl::StrCat("cache ", first, genpolicy)).code, 0);
  ASSERT_EQ(unlink(out_file.c_str()), 0);  // as genpolicy does with a cache it cannot parse
  ASSERT_EQ(RunTool(absl::StrCat("cache ", second, genpolicy)).code, 0);
  absl::StatusOr<LayerCache> cache = verity::ReadLayerCacheFile(out_file);
  absl::StatusOr<LayerCache> hashes = verity::ReadLayerCacheFile(verity::VerityHashesPath(out_file));
  ASSERT_TRUE(cache.ok() && hashes.ok());
  EXPECT_EQ(cache->size(), second_layers.size());
  for (const LayerCacheEntry& e : first_layers) {
    if (verity::FindLayerByDiffId(second_layers, e.diff_id) != nullptr) continue;
    EXPECT_EQ(verity::FindLayerByDiffId(*cache, e.diff_id), nullptr) << e.diff_id;
    const LayerCacheEntry* h = verity::FindLayerByDiffId(*hashes, e.diff_id);
    ASSERT_NE(h, nullptr) << e.diff_id;
    EXPECT_EQ(h->verity_hash, e.verity_hash);
  }
  // Both images in the genpolicy form, then the second one in the tardev
  // form: the first image's layers keep their hashes in the tardev cache.
  ASSERT_EQ(RunTool(absl::StrCat("cache ", first, genpolicy)).code, 0);
  ASSERT_EQ(RunTool(absl::StrCat("cache ", second, " --image t --output ", out_file)).code, 0);
  cache = verity::ReadLayerCacheFile(out_file);
  ASSERT_TRUE(cache.ok());
  for (const LayerCache* layers : {&first_layers, &second_layers}) {
    for (const LayerCacheEntry& e : *layers) {
      const LayerCacheEntry* c = verity::FindLayerByDiffId(*cache, e.diff_id);
      ASSERT_NE(c, nullptr) << e.diff_id;
      EXPECT_EQ(*c, e);
    }
  }
}

// A cache larger than its readers take (an etc/passwd of control
// characters, six bytes of JSON each) fails the run and writes neither file,
// not even the companion (written first otherwise).
TEST(VerityCliTest, CacheTooLargeForItsReadersWritesNothing) {
  std::string dir = MakeTempDir();
  absl::StatusOr<std::string> r = RunCommand(absl::StrCat(
      "set -e; cd ", dir, "; umoci init --layout oci; umoci new --image oci:t; ",
      "umoci unpack --image oci:t b >/dev/null 2>&1; mkdir -p b/rootfs/etc; ",
      "head -c ", verity::kMaxLayerCacheFileBytes / 6 + 1,
      " /dev/zero | tr '\\000' '\\001' > b/rootfs/etc/passwd; ",
      "umoci repack --refresh-bundle --image oci:t b 2>&1"));
  ASSERT_TRUE(r.ok()) << r.status();
  std::string out_file = dir + "/layers-cache.json";
  std::string err_file = dir + "/err";
  EXPECT_EQ(RunTool(absl::StrCat("cache ", dir, "/oci --image t --format genpolicy --output ",
                                 out_file),
                    err_file)
                .code,
            1);
  EXPECT_NE(ReadFileOrDie(err_file).find("larger than the limit"), std::string::npos)
      << ReadFileOrDie(err_file);
  struct stat st;
  EXPECT_NE(stat(out_file.c_str(), &st), 0);
  EXPECT_NE(stat(verity::VerityHashesPath(out_file).c_str(), &st), 0);
}

TEST(VerityCliTest, ErrorsAndExitCodes) {
  std::string layout = MakeLayout();
  std::string dir = MakeTempDir();
  EXPECT_EQ(RunTool("").code, 2);
  EXPECT_EQ(RunTool("frobnicate").code, 2);
  EXPECT_EQ(RunTool("layer").code, 2);
  EXPECT_EQ(RunTool("layer a b").code, 2);
  EXPECT_EQ(RunTool("cache").code, 2);
  EXPECT_EQ(RunTool("cache " + layout + " --bogus").code, 2);
  EXPECT_EQ(RunTool("cache " + layout + " --image").code, 2);
  // Two images in the layout: --image is required.
  EXPECT_EQ(RunTool("cache " + layout).code, 1);
  EXPECT_EQ(RunTool("cache " + layout + " --image missing").code, 1);
  EXPECT_EQ(RunTool("layer " + dir + "/does-not-exist").code, 1);
  WriteFileOrDie(dir + "/garbage", std::string(1024, 'g'));
  Result bad = RunTool("layer " + dir + "/garbage", dir + "/err");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(ReadFileOrDie(dir + "/err").find("checksum"), std::string::npos);

  Result version = RunTool("--version");
  EXPECT_EQ(version.code, 0);
  EXPECT_EQ(version.out, "guest-pull-verity 0.1.0\n");
  Result help = RunTool("--help");
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("cache OCI_LAYOUT_DIR"), std::string::npos);
}

// A value left out before another flag (`--image $REF --output F` with REF
// unset) is named so: the next flag became the value, and the error said
// "cache takes exactly one OCI_LAYOUT_DIR" (F taken for a second layout).
TEST(VerityCliTest, AValueLeftOutBeforeAFlagIsNamed) {
  std::string layout = MakeLayout();
  std::string dir = MakeTempDir();
  const std::string out = dir + "/layers-cache.json";
  for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
           {"--image --output " + out,
            "--image needs one REF value (the next argument, \"--output\", is a flag)"},
           {"--image t --output --format genpolicy",
            "--output needs one FILE value (the next argument, \"--format\", is a flag)"},
           {"--format --image=t --output " + out,
            "--format needs one tardev|genpolicy value (the next argument, \"--image=t\", is "
            "a flag)"}}) {
    EXPECT_EQ(RunTool(absl::StrCat("cache ", layout, " ", args), dir + "/err").code, 2) << args;
    EXPECT_NE(ReadFileOrDie(dir + "/err").find(message), std::string::npos)
        << args << ": " << ReadFileOrDie(dir + "/err");
  }
  struct stat st;
  EXPECT_NE(stat(out.c_str(), &st), 0);
}

// An empty REF (`--image "$REF"` with REF unset) is a usage error, as an
// empty --output is: it was taken for no --image, so a one-image layout's
// image was hashed whatever it was (exit 0), and a layout of several said
// "choose one with --image" to a run that had given it.
TEST(VerityCliTest, AnEmptyImageRefIsAUsageError) {
  std::string layout = MakeLayout();
  std::string dir = MakeTempDir();
  ASSERT_TRUE(RunCommand(absl::StrCat("umoci rm --image ", layout, ":other")).ok());
  ASSERT_EQ(RunTool("cache " + layout).code, 0);  // one image left
  for (const std::string& flag :
       std::vector<std::string>{"--image ''", "--image=", "--image '' --output " + dir + "/c"}) {
    Result r = RunTool(absl::StrCat("cache ", layout, " ", flag), dir + "/err");
    EXPECT_EQ(r.code, 2) << flag;
    EXPECT_EQ(r.out, "") << flag;
    EXPECT_NE(ReadFileOrDie(dir + "/err").find("--image must not be empty"), std::string::npos)
        << flag << ": " << ReadFileOrDie(dir + "/err");
  }
  struct stat st;
  EXPECT_NE(stat((dir + "/c").c_str(), &st), 0);
}

// Results that cannot be written fail the run and say why: the exit
// status was 1 with nothing on stderr.
TEST(VerityCliTest, AnOutputThatCannotBeWrittenIsNamed) {
  std::string layout = MakeLayout();
  std::string dir = MakeTempDir();
  EXPECT_EQ(RunTool("cache " + layout + " --image t >/dev/full", dir + "/err").code, 1);
  EXPECT_NE(ReadFileOrDie(dir + "/err").find("cannot write to standard output: No space left"),
            std::string::npos)
      << ReadFileOrDie(dir + "/err");
  EXPECT_EQ(RunTool("--help >&-", dir + "/err2").code, 1);
  EXPECT_NE(ReadFileOrDie(dir + "/err2").find("cannot write to standard output"),
            std::string::npos)
      << ReadFileOrDie(dir + "/err2");
}

TEST(VerityCliTest, CorruptLayerBlobIsDetected) {
  std::string layout = MakeLayout();
  absl::StatusOr<std::string> blob = RunCommand(absl::StrCat(
      "jq -r '.layers[0].digest' ", layout, "/blobs/sha256/$(jq -r '.manifests[0].digest' ", layout,
      "/index.json | cut -d: -f2) | cut -d: -f2"));
  ASSERT_TRUE(blob.ok());
  std::string path = absl::StrCat(layout, "/blobs/sha256/", blob->substr(0, 64));
  // Append a gzip member with an extra empty tar: still a valid layer, but
  // no longer the blob the manifest names.
  ASSERT_TRUE(RunCommand("head -c 1024 /dev/zero | gzip >> " + path).ok());
  EXPECT_EQ(RunTool("cache " + layout + " --image t").code, 1);
}

// A manifest whose layer size is not the blob's (its digest right): refused
// as containerd refuses it.
TEST(VerityCliTest, LayerSizeTheManifestMisstatesIsDetected) {
  std::string layout = MakeLayout();
  const std::string dir = MakeTempDir();
  ASSERT_TRUE(RunCommand(absl::StrCat(
                  "set -e; cd ", layout, "; m=$(jq -r '.manifests[0].digest' index.json | cut -d: -f2); ",
                  "jq -c '.layers[0].size += 1' blobs/sha256/$m > ", dir, "/manifest; ",
                  "n=$(sha256sum ", dir, "/manifest | cut -d' ' -f1); cp ", dir, "/manifest blobs/sha256/$n; ",
                  "s=$(stat -c %s blobs/sha256/$n); ",
                  "jq -c --arg d sha256:$n --argjson s $s '.manifests[0].digest = $d | .manifests[0].size = $s' ",
                  "index.json > ", dir, "/index.json; cp ", dir, "/index.json index.json"))
                  .ok());
  Result result = RunTool("cache " + layout + " --image t", dir + "/err");
  EXPECT_EQ(result.code, 1);
  EXPECT_TRUE(RunCommand(absl::StrCat("grep -q 'but the manifest gives' ", dir, "/err")).ok());
}

TEST(VerityCliTest, IndexWritesWhatTheRootHashCovers) {
  std::string layout = MakeLayout();
  absl::StatusOr<std::string> blob = RunCommand(absl::StrCat(
      "jq -r '.layers[0].digest' ", layout, "/blobs/sha256/$(jq -r '.manifests[0].digest' ", layout,
      "/index.json | cut -d: -f2) | cut -d: -f2"));
  ASSERT_TRUE(blob.ok());
  std::string path = absl::StrCat(layout, "/blobs/sha256/", blob->substr(0, 64));
  std::string dir = MakeTempDir();
  Result layer = RunTool("layer " + path);
  ASSERT_EQ(layer.code, 0);
  Result index = RunTool(absl::StrCat("index ", path, " ", dir, "/indexed"));
  ASSERT_EQ(index.code, 0);
  std::map<std::string, std::string> lk = ParseKeyValues(layer.out);
  std::map<std::string, std::string> ik = ParseKeyValues(index.out);
  EXPECT_EQ(ik["digest"], lk["digest"]);
  EXPECT_EQ(ik["diff_id"], lk["diff_id"]);
  EXPECT_EQ(ik["verity_hash"], lk["verity_hash"]);
  absl::StatusOr<std::string> size = RunCommand(absl::StrCat("stat -c %s ", dir, "/indexed"));
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(std::stoull(*size), std::stoull(ik["indexed_size"]));
  EXPECT_EQ(std::stoull(ik["data_blocks"]) * 4096, std::stoull(ik["indexed_size"]));
  EXPECT_EQ(ik["block_size"], "4096");
  EXPECT_EQ(ik["salt"], std::string(64, '0'));
  EXPECT_EQ(RunTool("index " + path).code, 2);
  EXPECT_EQ(RunTool("index /nonexistent/layer " + dir + "/x").code, 1);
  // The layer as its own output (directly or through a link) is refused and
  // left as it was, not emptied by the output's truncation.
  ASSERT_TRUE(RunCommand(absl::StrCat("cp ", path, " ", dir,
                                      "/self && ln -s self ", dir, "/link"))
                  .ok());
  EXPECT_EQ(RunTool(absl::StrCat("index ", dir, "/self ", dir, "/self")).code,
            1);
  EXPECT_EQ(RunTool(absl::StrCat("index ", dir, "/self ", dir, "/link")).code,
            1);
  EXPECT_TRUE(RunCommand(absl::StrCat("cmp ", path, " ", dir, "/self")).ok());

  // In place: the uncompressed tar becomes the same indexed file; a
  // compressed blob is refused and left as it was.
  ASSERT_TRUE(RunCommand(absl::StrCat("gzip -dcf ", path, " > ", dir, "/in-place.tar")).ok());
  Result in_place = RunTool(absl::StrCat("index --in-place ", dir, "/in-place.tar"));
  ASSERT_EQ(in_place.code, 0);
  std::map<std::string, std::string> pk = ParseKeyValues(in_place.out);
  EXPECT_EQ(pk["diff_id"], lk["diff_id"]);
  EXPECT_EQ(pk["verity_hash"], lk["verity_hash"]);
  EXPECT_EQ(pk["indexed_size"], ik["indexed_size"]);
  EXPECT_TRUE(RunCommand(absl::StrCat("cmp ", dir, "/in-place.tar ", dir, "/indexed")).ok());
  ASSERT_TRUE(RunCommand(absl::StrCat("gzip -c < /dev/null > ", dir, "/empty.gz; cp ", dir,
                                      "/empty.gz ", dir, "/before.gz"))
                  .ok());
  Result gz = RunTool(absl::StrCat("index --in-place ", dir, "/empty.gz"), dir + "/gz.err");
  EXPECT_EQ(gz.code, 1);
  EXPECT_TRUE(RunCommand(absl::StrCat("grep -q compressed ", dir, "/gz.err")).ok());
  EXPECT_TRUE(RunCommand(absl::StrCat("cmp ", dir, "/empty.gz ", dir, "/before.gz")).ok());
  EXPECT_EQ(RunTool(absl::StrCat("index --in-place ", dir, "/a ", dir, "/b")).code, 2);

  // veritysetup over the written file gives the same root hash.
  if (verity::testing::VeritysetupPath().empty()) {
    GTEST_SKIP() << "veritysetup is not installed";
  }
  absl::StatusOr<std::string> vs = verity::testing::VeritysetupRootHash(dir + "/indexed");
  ASSERT_TRUE(vs.ok()) << vs.status();
  EXPECT_EQ(*vs, lk["verity_hash"]);
}

// Runs the binary in `dir` (for relative file names); stderr to `err_file`.
Result RunToolIn(const std::string& dir, const std::string& args,
                 const std::string& err_file = "/dev/null") {
  absl::StatusOr<std::string> out = RunCommand(absl::StrCat(
      "b=$(realpath ", kBinary, "); cd ", dir, " && \"$b\" ", args, " 2>", err_file,
      "; echo \"rc=$?\""));
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return {-1, ""};
  size_t pos = out->rfind("rc=");
  return {std::stoi(out->substr(pos + 3)), out->substr(0, pos)};
}

// A tar of one small file, uncompressed, in <dir>/layer.tar.
std::string MakeTar(const std::string& dir) {
  EXPECT_TRUE(RunCommand(absl::StrCat("set -e; cd ", dir, "; mkdir -p root/etc; ",
                                      "echo 'root:x:0:0:root:/root:/bin/sh' > root/etc/passwd; ",
                                      "tar --format=pax -C root -cf layer.tar etc"))
                  .ok());
  return dir + "/layer.tar";
}

// `layer` and `index` of a file indexed before (--in-place) took its index
// for tar data and printed another root hash, exit 0; --in-place alone
// refused it. Now every form refuses it, changing nothing, unless
// --reindex asks for the whole file as the layer.
TEST(VerityCliTest, AnIndexedFileIsRefusedUnlessReindexIsGiven) {
  const std::string dir = MakeTempDir();
  const std::string tar = MakeTar(dir);
  Result first = RunTool("index --in-place " + tar);
  ASSERT_EQ(first.code, 0);
  const std::string indexed = ReadFileOrDie(tar);
  std::map<std::string, std::string> fk = ParseKeyValues(first.out);
  const std::string hint = "(--reindex takes the whole file as the layer's tar)";
  for (const std::string& args :
       {"layer " + tar, absl::StrCat("index ", tar, " ", dir, "/out"), "index --in-place " + tar}) {
    Result r = RunTool(args, dir + "/err");
    EXPECT_EQ(r.code, 1) << args;
    EXPECT_EQ(r.out, "") << args;
    const std::string err = ReadFileOrDie(dir + "/err");
    EXPECT_NE(err.find(absl::StrCat("guest-pull-verity: ", tar,
                                    " already ends with a tarfs index (after its first ")),
              std::string::npos)
        << args << ": " << err;
    EXPECT_NE(err.find(hint), std::string::npos) << args << ": " << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << args << ": " << err;
    EXPECT_TRUE(ReadFileOrDie(tar) == indexed) << args;
  }
  struct stat st;
  EXPECT_NE(stat((dir + "/out").c_str(), &st), 0);
  // --reindex: the whole file is the layer, in every form.
  Result layer = RunTool("layer --reindex " + tar);
  ASSERT_EQ(layer.code, 0);
  std::map<std::string, std::string> lk = ParseKeyValues(layer.out);
  EXPECT_NE(lk["verity_hash"], fk["verity_hash"]);
  Result copy = RunTool(absl::StrCat("index ", tar, " ", dir, "/out --reindex"));
  ASSERT_EQ(copy.code, 0);
  EXPECT_EQ(ParseKeyValues(copy.out)["verity_hash"], lk["verity_hash"]);
  Result again = RunTool("index --reindex --in-place " + tar);
  ASSERT_EQ(again.code, 0);
  EXPECT_EQ(ParseKeyValues(again.out)["verity_hash"], lk["verity_hash"]);
  EXPECT_TRUE(RunCommand(absl::StrCat("cmp ", tar, " ", dir, "/out")).ok());
}

// A file whose name starts with "-" could not be named at all ("layer
// takes exactly one FILE argument"): "--" ends the options, as usual.
TEST(VerityCliTest, DoubleDashEndsTheOptions) {
  const std::string dir = MakeTempDir();
  MakeTar(dir);
  ASSERT_TRUE(RunCommand(absl::StrCat("cp ", dir, "/layer.tar ", dir, "/-x.tar")).ok());
  Result plain = RunToolIn(dir, "layer layer.tar");
  ASSERT_EQ(plain.code, 0);
  Result dashed = RunToolIn(dir, "layer -- -x.tar");
  EXPECT_EQ(dashed.code, 0);
  EXPECT_EQ(dashed.out, plain.out);
  Result refused = RunToolIn(dir, "layer -x.tar", dir + "/err");
  EXPECT_EQ(refused.code, 2);
  EXPECT_NE(ReadFileOrDie(dir + "/err").find("unknown option -x.tar for layer (a file whose name "
                                             "starts with \"-\" goes after \"--\": layer -- -x.tar)"),
            std::string::npos)
      << ReadFileOrDie(dir + "/err");
  // After "--", "--help" is a file name, not a request for the usage.
  Result help = RunToolIn(dir, "layer -- --help", dir + "/err");
  EXPECT_EQ(help.code, 1);
  EXPECT_NE(ReadFileOrDie(dir + "/err").find("--help"), std::string::npos);
  EXPECT_EQ(RunToolIn(dir, "index -- -x.tar -y.img").code, 0);
  Result in_place = RunToolIn(dir, "index --in-place -- -x.tar");
  EXPECT_EQ(in_place.code, 0);
  EXPECT_TRUE(RunCommand(absl::StrCat("cmp ", dir, "/-x.tar ", dir, "/-y.img")).ok());
  EXPECT_EQ(RunToolIn(dir, "layer -- a b").code, 2);
  EXPECT_EQ(RunToolIn(dir, "layer -").code, 2);
  EXPECT_EQ(RunToolIn(dir, "index --in-place --in-place -x.tar").code, 2);
  // cache: a layout directory named "-oci".
  std::string layout = MakeLayout();
  ASSERT_TRUE(RunCommand(absl::StrCat("cp -r ", layout, " ", dir, "/-oci")).ok());
  Result cache = RunToolIn(dir, "cache --image t -- -oci");
  EXPECT_EQ(cache.code, 0);
  EXPECT_EQ(cache.out, RunTool("cache " + layout + " --image t").out);
  EXPECT_EQ(RunToolIn(dir, "cache --image t -oci").code, 2);
  EXPECT_EQ(RunToolIn(dir, "cache --image t --output -- -oci").code, 2);
  Result usage = RunTool("--help");
  EXPECT_NE(usage.out.find("\"--\" ends a command's options"), std::string::npos) << usage.out;
}

// `cache --output` into a directory that does not exist read every layer
// first, then failed with "cannot open <file>: No such file or directory".
TEST(VerityCliTest, CacheIntoAMissingDirectoryFailsAtOnceAndNamesIt) {
  std::string layout = MakeLayout();
  const std::string dir = MakeTempDir();
  // A layer blob that cannot be read: reading the layers is not started.
  ASSERT_TRUE(RunCommand(absl::StrCat(
                  "for b in $(jq -r '.layers[].digest' ", layout,
                  "/blobs/sha256/$(jq -r '.manifests[0].digest' ", layout,
                  "/index.json | cut -d: -f2) | cut -d: -f2); do : > ", layout,
                  "/blobs/sha256/$b; done"))
                  .ok());
  for (const char* format : {"tardev", "genpolicy"}) {
    Result r = RunTool(absl::StrCat("cache ", layout, " --image t --format ", format, " --output ",
                                    dir, "/none/layers-cache.json"),
                       dir + "/err");
    EXPECT_EQ(r.code, 1) << format;
    EXPECT_EQ(ReadFileOrDie(dir + "/err"),
              absl::StrCat("guest-pull-verity: cannot write ", dir,
                           "/none/layers-cache.json: its directory ", dir,
                           "/none does not exist (it is not created)\n"))
        << format;
  }
  struct stat st;
  EXPECT_NE(stat((dir + "/none").c_str(), &st), 0);
}

// No tar data (an empty file; a pipe whose writer failed, as in
// `curl ... | guest-pull-verity layer /dev/stdin`) printed the root hash of
// an empty tar with exit status 0, and `index --in-place` turned an empty
// file into a bare index. One line naming the file, status 1, nothing
// changed.
TEST(VerityCliTest, NoTarDataIsAnError) {
  const std::string dir = MakeTempDir();
  WriteFileOrDie(dir + "/empty", "");
  for (const std::string& args :
       {"layer " + dir + "/empty", "index --in-place " + dir + "/empty",
        absl::StrCat("index ", dir, "/empty ", dir, "/out"),
        std::string("layer /dev/stdin < /dev/null"),
        absl::StrCat("index /dev/stdin ", dir, "/out < /dev/null")}) {
    Result r = RunTool(args, dir + "/err");
    EXPECT_EQ(r.code, 1) << args;
    EXPECT_EQ(r.out, "") << args;
    const std::string err = ReadFileOrDie(dir + "/err");
    EXPECT_NE(err.find(" holds no tar data (0 bytes): it is not a layer\n"), std::string::npos)
        << args << ": " << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << args << ": " << err;
  }
  absl::StatusOr<std::string> piped = RunCommand(absl::StrCat(
      "false | ", kBinary, " layer /dev/stdin 2>", dir, "/err; echo \"rc=$?\""));
  ASSERT_TRUE(piped.ok());
  EXPECT_EQ(*piped, "rc=1\n");
  EXPECT_EQ(ReadFileOrDie(dir + "/err"),
            "guest-pull-verity: /dev/stdin holds no tar data (0 bytes): it is not a layer\n");
  EXPECT_EQ(ReadFileOrDie(dir + "/empty"), "");
  struct stat st;
  EXPECT_NE(stat((dir + "/out").c_str(), &st), 0);
}

TEST(VerityCliTest, DecodeIsDispatched) {
  // Not a valid option: the decode command reports a usage/decode error.
  EXPECT_EQ(RunTool("decode not-base64!!").code, 2);
  EXPECT_EQ(RunTool("decode --help").code, 0);
}

}  // namespace
}  // namespace guest_pull::tools
