// Layer cache tests: JSON round trip, malformed input, atomic file writes,
// upsert, and the chain-ID equation checked against sha256sum.
#include "kata_volume/verity/layer_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "kata_volume/verity/test_util.h"

namespace guest_pull::verity {
namespace {

using ::guest_pull::verity::testing::MakeTempDir;
using ::guest_pull::verity::testing::ReadFileOrDie;
using ::guest_pull::verity::testing::RunCommand;
using ::guest_pull::verity::testing::WriteFileOrDie;

std::string Digest(char c) { return "sha256:" + std::string(64, c); }

TEST(LayerCacheTest, RoundTrip) {
  LayerCache cache = {{Digest('1'), std::string(64, 'a'), "root:x:0:0::/:/bin/sh\n", ""},
                      {Digest('2'), "", "WHITEOUT", "g \"quoted\"\n"}};
  std::string json = SerializeLayerCache(cache);
  EXPECT_NE(json.find("\"diff_id\": \"" + Digest('1') + "\""), std::string::npos);
  EXPECT_LT(json.find("diff_id"), json.find("verity_hash"));
  absl::StatusOr<LayerCache> parsed = ParseLayerCache(json);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, cache);
  EXPECT_TRUE(ParseLayerCache("  \n")->empty());
  // Unknown fields (e.g. newer genpolicy's verity_key) are ignored.
  auto extra = ParseLayerCache(absl::StrCat(R"([{"diff_id":")", Digest('3'),
                                            R"(","passwd":"","group":"","verity_key":"k"}])"));
  ASSERT_TRUE(extra.ok()) << extra.status();
  EXPECT_EQ((*extra)[0].verity_hash, "");
}

TEST(LayerCacheTest, GenpolicyFormHasExactlyUpstreamFieldsAndHashesGoToTheCompanion) {
  LayerCache cache = {{Digest('1'), std::string(64, 'a'), "p\n", "g\n"},
                      {Digest('2'), "", "WHITEOUT", ""}};
  // Upstream genpolicy 3.20+ refuses unknown fields: no verity_hash at all.
  std::string upstream = SerializeLayerCache(cache, LayerCacheFormat::kGenpolicy);
  EXPECT_EQ(upstream.find("verity_hash"), std::string::npos);
  EXPECT_NE(upstream.find("\"passwd\": \"p\\n\""), std::string::npos);
  std::string hashes = SerializeLayerCache(cache, LayerCacheFormat::kVerityHashes);
  EXPECT_EQ(hashes.find("passwd"), std::string::npos);
  EXPECT_EQ(hashes.find(Digest('2')), std::string::npos);  // no hash, no entry
  // Reading both back and merging gives the tardev-form cache.
  absl::StatusOr<LayerCache> a = ParseLayerCache(upstream);
  absl::StatusOr<LayerCache> b = ParseLayerCache(hashes);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(MergeVerityHashes(*a, *b), cache);
  EXPECT_EQ(VerityHashesPath("/x/layers-cache.json"), "/x/layers-cache.json.verity.json");
}

TEST(LayerCacheTest, MergeKeepsTheCachesOwnHashesAndAppendsHashOnlyLayers) {
  LayerCache cache = {{Digest('1'), std::string(64, 'a'), "", ""}};
  LayerCache hashes = {{Digest('1'), std::string(64, 'b'), "", ""},
                       {Digest('3'), std::string(64, 'c'), "", ""}};
  LayerCache merged = MergeVerityHashes(cache, hashes);
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[0].verity_hash, std::string(64, 'a'));
  EXPECT_EQ(merged[1], (LayerCacheEntry{Digest('3'), std::string(64, 'c'), "", ""}));
}

// A diff_id the cache repeats gets the companion's hash on its first entry,
// the one every lookup returns.
TEST(LayerCacheTest, MergeGivesARepeatedDiffIdsHashToTheEntryLookupsFind) {
  LayerCache cache = {{Digest('1'), "", "first", ""},
                      {Digest('1'), "", "second", ""}};
  LayerCache hashes = {{Digest('1'), std::string(64, 'b'), "", ""}};
  LayerCache merged = MergeVerityHashes(cache, hashes);
  ASSERT_EQ(merged.size(), 2u);
  const LayerCacheEntry* found = FindLayerByDiffId(merged, Digest('1'));
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->passwd, "first");
  EXPECT_EQ(found->verity_hash, std::string(64, 'b'));
  EXPECT_EQ(FindLayerByChain(merged, "", Digest('1')), found);
  EXPECT_EQ(merged[1].verity_hash, "");
}

TEST(LayerCacheTest, MalformedInputIsRejected) {
  for (const std::string& bad : std::vector<std::string>{
           "{", "{}", "[1]", R"([{"passwd":""}])", R"([{"diff_id":"sha256:abc"}])",
           absl::StrCat(R"([{"diff_id":")", Digest('1'), R"(","passwd":5}])"),
           absl::StrCat(R"([{"diff_id":")", Digest('1'), R"(","verity_hash":"xyz"}])")}) {
    absl::StatusOr<LayerCache> r = ParseLayerCache(bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// The messages say what is wrong: an uppercase or cut hash shows its value
// (it is hex, but not what readers take), a cut file where it ends.
TEST(LayerCacheTest, MalformedInputMessagesNameTheProblem) {
  absl::StatusOr<LayerCache> upper = ParseLayerCache(absl::StrCat(
      R"([{"diff_id":")", Digest('1'), R"(","verity_hash":")", std::string(64, 'A'), R"("}])"));
  EXPECT_EQ(upper.status().message(),
            absl::StrCat("layer cache entry 0 (", Digest('1'), R"(): verity_hash ")",
                         std::string(64, 'A'),
                         R"(" (64 characters) is not 64 lowercase hex digits)"));
  absl::StatusOr<LayerCache> long_hash = ParseLayerCache(absl::StrCat(
      R"([{"diff_id":")", Digest('1'), R"(","verity_hash":")", std::string(200, 'a'), R"("}])"));
  EXPECT_NE(long_hash.status().message().find(
                absl::StrCat(std::string(80, 'a'), R"(..." (200 characters))")),
            absl::string_view::npos)
      << long_hash.status();
  absl::StatusOr<LayerCache> truncated =
      ParseLayerCache(absl::StrCat(R"([{"diff_id":")", Digest('1'), R"(",)"));
  EXPECT_NE(truncated.status().message().find("the file is cut short"), absl::string_view::npos)
      << truncated.status();
  absl::StatusOr<LayerCache> garbage = ParseLayerCache("[\n}");
  EXPECT_NE(garbage.status().message().find("line 2, column 1"), absl::string_view::npos)
      << garbage.status();
  EXPECT_EQ(garbage.status().message().find("cut short"), absl::string_view::npos);
  // A string cut by the end of the file is not all repeated.
  absl::StatusOr<LayerCache> long_string = ParseLayerCache(
      absl::StrCat(R"([{"diff_id":")", Digest('1'), R"(","passwd":")", std::string(10000, 'p')));
  EXPECT_LT(long_string.status().message().size(), 400u) << long_string.status();
  EXPECT_NE(long_string.status().message().find("cut short"), absl::string_view::npos);
}

TEST(LayerCacheTest, FileWriteIsAtomicAndReadable) {
  std::string dir = MakeTempDir();
  std::string path = dir + "/layers-cache.json";
  EXPECT_TRUE(absl::IsNotFound(ReadLayerCacheFile(path).status()));
  LayerCache cache = {{Digest('1'), std::string(64, 'a'), "p", "g"}};
  ASSERT_TRUE(WriteLayerCacheFile(path, cache).ok());
  EXPECT_EQ(*ReadLayerCacheFile(path), cache);
  EXPECT_EQ(*RunCommand("ls " + dir), "layers-cache.json\n");  // no temp files left
  WriteFileOrDie(path, "not json");
  EXPECT_EQ(ReadLayerCacheFile(path).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(WriteLayerCacheFile(dir + "/no/such/dir/x.json", cache).ok());
}

// A reader takes a shared flock: it waits a bounded time for a writer's
// exclusive one, then answers Unavailable. It says whether the file was
// blank (a writer that truncated it and has not written yet, or a new one).
TEST(LayerCacheTest, ReadWaitsForAWritersLockAndReportsABlankFile) {
  std::string dir = MakeTempDir();
  std::string path = dir + "/layers-cache.json";
  LayerCache cache = {{Digest('1'), std::string(64, 'a'), "p", "g"}};
  ASSERT_TRUE(WriteLayerCacheFile(path, cache).ok());
  int writer = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(writer, 0);
  ASSERT_EQ(::flock(writer, LOCK_EX), 0);
  absl::StatusOr<LayerCache> locked = ReadLayerCacheFile(
      path, kMaxLayerCacheFileBytes, nullptr, absl::Milliseconds(30));
  EXPECT_EQ(locked.status().code(), absl::StatusCode::kUnavailable)
      << locked.status();
  EXPECT_EQ(locked.status().message(),
            absl::StrCat("layer cache ", path, " is being written: a writer (genpolicy, or a run of "
                         "guest-pull-verity) has held its lock for more than 30ms"));
  // Another reader's shared lock does not stop it.
  ASSERT_EQ(::flock(writer, LOCK_SH), 0);
  bool blank = true;
  EXPECT_EQ(*ReadLayerCacheFile(path, kMaxLayerCacheFileBytes, &blank), cache);
  EXPECT_FALSE(blank);
  ASSERT_EQ(::ftruncate(writer, 0), 0);
  absl::StatusOr<LayerCache> empty =
      ReadLayerCacheFile(path, kMaxLayerCacheFileBytes, &blank);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->empty());
  EXPECT_TRUE(blank);
  WriteFileOrDie(path, "[]\n");
  EXPECT_TRUE(
      ReadLayerCacheFile(path, kMaxLayerCacheFileBytes, &blank)->empty());
  EXPECT_FALSE(blank);
  ::close(writer);
}

TEST(LayerCacheTest, FileLargerThanTheLimitIsRefusedWithItsSize) {
  std::string dir = MakeTempDir();
  std::string path = dir + "/layers-cache.json";
  LayerCache cache = {{Digest('1'), std::string(64, 'a'), std::string(300, 'p'), ""},
                      {Digest('2'), std::string(64, 'b'), std::string(300, 'p'), ""}};
  ASSERT_TRUE(WriteLayerCacheFile(path, cache).ok());
  const size_t size = SerializeLayerCache(cache).size();
  EXPECT_EQ(*ReadLayerCacheFile(path, size), cache);  // exactly the limit
  absl::StatusOr<LayerCache> big = ReadLayerCacheFile(path, size - 1);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(big.status().message().find(absl::StrCat(path, " is ", size, " bytes")),
            std::string::npos)
      << big.status();
  EXPECT_NE(big.status().message().find(absl::StrCat("limit of ", size - 1, " bytes")),
            std::string::npos)
      << big.status();
  // Said of the companion too, which genpolicy never writes.
  EXPECT_NE(big.status().message().find("its writers (genpolicy, guest-pull-verity) only ever "
                                        "add to it: remove the layers of images no longer "
                                        "deployed"),
            std::string::npos)
      << big.status();
  EXPECT_EQ(kMaxLayerCacheFileBytes, size_t{64} << 20);
}

// A cache no reader would take (the daemon's and this tool's reads refuse
// more than kMaxLayerCacheFileBytes) is not written: the file stays.
TEST(LayerCacheTest, CacheLargerThanReadersTakeIsNotWritten) {
  std::string dir = MakeTempDir();
  std::string path = dir + "/layers-cache.json";
  WriteFileOrDie(path, "[]\n");
  // A control character is six bytes of JSON (\u0001).
  LayerCache big = {{Digest('1'), std::string(64, 'a'),
                     std::string(kMaxLayerCacheFileBytes / 6 + 1, '\x01'), ""}};
  absl::Status s = WriteLayerCacheFile(path, big);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_NE(s.message().find(path), std::string::npos) << s;
  EXPECT_NE(s.message().find(absl::StrCat("limit of ", kMaxLayerCacheFileBytes)), std::string::npos)
      << s;
  EXPECT_NE(s.message().find("not written (remove the layers of images no longer deployed"),
            std::string::npos)
      << s;
  EXPECT_EQ(ReadFileOrDie(path), "[]\n");
  EXPECT_EQ(*RunCommand("ls " + dir), "layers-cache.json\n");
  EXPECT_EQ(CheckLayerCacheFits(path, big, LayerCacheFormat::kGenpolicy).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(CheckLayerCacheFits(path, big, LayerCacheFormat::kVerityHashes).ok());
}

TEST(LayerCacheTest, UpsertReplacesSameDiffId) {
  LayerCache cache = {{Digest('1'), "", "a", ""}, {Digest('2'), "", "b", ""}};
  UpsertLayer(&cache, {Digest('1'), "", "new", ""});
  UpsertLayer(&cache, {Digest('3'), "", "c", ""});
  ASSERT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache[0].passwd, "new");
  EXPECT_EQ(cache[2].diff_id, Digest('3'));
  EXPECT_EQ(FindLayerByDiffId(cache, Digest('2'))->passwd, "b");
  EXPECT_EQ(FindLayerByDiffId(cache, Digest('9')), nullptr);
}

TEST(LayerCacheTest, ChainIdEquation) {
  const std::string d1 = Digest('1'), d2 = Digest('2'), d3 = Digest('3');
  EXPECT_EQ(ChainId("", d1), d1);
  absl::StatusOr<std::string> expected =
      RunCommand(absl::StrCat("printf '%s' '", d1, " ", d2, "' | sha256sum | cut -d' ' -f1"));
  ASSERT_TRUE(expected.ok());
  const std::string c2 = ChainId(d1, d2);
  EXPECT_EQ(c2, "sha256:" + expected->substr(0, 64));
  const std::string c3 = ChainId(c2, d3);

  LayerCache cache = {{d3, "", "", ""}, {d1, "", "", ""}, {d2, "", "", ""}};
  EXPECT_EQ(FindLayerByChain(cache, "", d1)->diff_id, d1);
  EXPECT_EQ(FindLayerByChain(cache, d1, c2)->diff_id, d2);
  EXPECT_EQ(FindLayerByChain(cache, c2, c3)->diff_id, d3);
  EXPECT_EQ(FindLayerByChain(cache, d1, c3), nullptr);
}

}  // namespace
}  // namespace guest_pull::verity
