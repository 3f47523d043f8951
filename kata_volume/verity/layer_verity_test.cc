// Layer verity tests: .tar, .tar.gz and .tar.zst agree, diff_id/digest equal sha256sum,
// and the root hash of a real busybox layer equals veritysetup's over the
// reconstructed tar + index file.
#include "kata_volume/verity/layer_verity.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "kata_volume/verity/test_util.h"

namespace guest_pull::verity {
namespace {

using ::guest_pull::verity::testing::DirectWritesBypassPageCache;
using ::guest_pull::verity::testing::MakeTempDir;
using ::guest_pull::verity::testing::PagesInPageCache;
using ::guest_pull::verity::testing::ReadFileOrDie;
using ::guest_pull::verity::testing::RunCommand;
using ::guest_pull::verity::testing::VeritysetupRootHash;
using ::guest_pull::verity::testing::WriteFileOrDie;

std::string Sha256Sum(const std::string& path) {
  absl::StatusOr<std::string> out = RunCommand("sha256sum '" + path + "' | cut -d' ' -f1");
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? "sha256:" + out->substr(0, 64) : "";
}

// Runs `populate` (shell commands) in a fresh directory with root/etc, then
// tars root/* into layer.tar with `tar_options`, gzips it to layer.tar.gz
// and compresses it with zstd to layer.tar.zst.
std::string BuildLayer(const std::string& populate, const std::string& tar_options) {
  std::string dir = MakeTempDir();
  EXPECT_TRUE(RunCommand(absl::StrCat("set -e; cd ", dir, "; mkdir -p root/etc; ", populate,
                                      "; echo 'root:x:0:0:root:/root:/bin/sh' > root/etc/passwd; ",
                                      "tar ", tar_options, " -C root -cf layer.tar $(ls root); ",
                                      "gzip -k layer.tar; zstd -q -k layer.tar"))
                  .ok());
  return dir + "/layer.tar";
}

// A busybox root filesystem layer, as tar and tar.gz.
std::string MakeBusyboxLayer() {
  return BuildLayer(
      "mkdir -p root/bin root/tmp; cp /bin/busybox root/bin/busybox; "
      "for a in sh ls cat; do ln -s busybox root/bin/$a; done; ln root/bin/busybox root/bin/hardbox; "
      "echo 'root:x:0:' > root/etc/group",
      "--format=pax --numeric-owner --sort=name");
}

TEST(LayerVerityTest, TarGzipAndZstdAgreeAndMatchSha256sum) {
  std::string tar = MakeBusyboxLayer();
  absl::StatusOr<LayerVerity> plain = ComputeLayerVerity(tar);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->diff_id, Sha256Sum(tar));
  EXPECT_EQ(plain->digest, plain->diff_id);
  for (const char* ext : {".gz", ".zst"}) {
    absl::StatusOr<LayerVerity> compressed = ComputeLayerVerity(tar + ext);
    ASSERT_TRUE(compressed.ok()) << ext << ": " << compressed.status();
    EXPECT_EQ(compressed->digest, Sha256Sum(tar + ext));
    EXPECT_EQ(compressed->diff_id, plain->diff_id) << ext;
    EXPECT_EQ(compressed->root_hash, plain->root_hash) << ext;
    EXPECT_EQ(compressed->indexed_size, plain->indexed_size) << ext;
    EXPECT_EQ(compressed->passwd, plain->passwd) << ext;
  }
  EXPECT_EQ(plain->indexed_size % 4096, 0u);
  EXPECT_EQ(plain->passwd.value_or("?"), "root:x:0:0:root:/root:/bin/sh\n");
  EXPECT_EQ(plain->group.value_or("?"), "root:x:0:\n");
}

// `tar -C root .` writes "./etc/passwd": genpolicy 4.0+ drops "." parts
// (and repeated slashes) before it compares, so the user files are found.
TEST(LayerVerityTest, UserFilesUnderDotSlashAreFound) {
  std::string dir = MakeTempDir();
  ASSERT_TRUE(RunCommand(absl::StrCat(
                  "set -e; cd ", dir, "; mkdir -p root/etc; echo 'app:x:7:7::/:/bin/sh' > "
                  "root/etc/passwd; echo 'app:x:7:' > root/etc/group; tar -C root -cf layer.tar .; "
                  "tar -tf layer.tar | grep -qx './etc/passwd'"))
                  .ok());
  absl::StatusOr<LayerVerity> layer = ComputeLayerVerity(dir + "/layer.tar");
  ASSERT_TRUE(layer.ok()) << layer.status();
  EXPECT_EQ(layer->passwd.value_or("?"), "app:x:7:7::/:/bin/sh\n");
  EXPECT_EQ(layer->group.value_or("?"), "app:x:7:\n");
}

// What genpolicy never takes for etc/passwd: an absolute path or one with
// "..", which no extraction puts there.
TEST(LayerVerityTest, UserFilesOutsideTheLayerRootAreIgnored) {
  std::string dir = MakeTempDir();
  ASSERT_TRUE(RunCommand(absl::StrCat(
                  "cd ", dir, " && python3 -c \"import io, tarfile\n"
                  "with tarfile.open('layer.tar', 'w', format=tarfile.USTAR_FORMAT) as t:\n"
                  "  for name in ['/etc/passwd', 'x/../etc/passwd', '../etc/group']:\n"
                  "    d = b'evil:x:0:0::/:/bin/sh\\\\n'\n"
                  "    i = tarfile.TarInfo(name); i.size = len(d); t.addfile(i, io.BytesIO(d))\n\""))
                  .ok());
  ASSERT_TRUE(RunCommand("tar -tf " + dir + "/layer.tar | grep -qx 'x/../etc/passwd'").ok());
  absl::StatusOr<LayerVerity> layer = ComputeLayerVerity(dir + "/layer.tar");
  ASSERT_TRUE(layer.ok()) << layer.status();
  EXPECT_FALSE(layer->passwd.has_value());
  EXPECT_FALSE(layer->group.has_value());
}

TEST(LayerVerityTest, BusyboxRootHashEqualsVeritysetupOnIndexedFile) {
  std::string tar = MakeBusyboxLayer();
  std::string indexed = MakeTempDir() + "/indexed";
  absl::StatusOr<LayerVerity> written = WriteIndexedLayer(tar + ".gz", indexed);
  ASSERT_TRUE(written.ok()) << written.status();
  absl::StatusOr<LayerVerity> computed = ComputeLayerVerity(tar + ".gz");
  ASSERT_TRUE(computed.ok());
  EXPECT_EQ(written->root_hash, computed->root_hash);
  std::string file = ReadFileOrDie(indexed);
  EXPECT_EQ(file.size(), computed->indexed_size);
  EXPECT_EQ(file.substr(0, computed->tar_size), ReadFileOrDie(tar));
  absl::StatusOr<std::string> expected = VeritysetupRootHash(indexed);
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(computed->root_hash, *expected);
}

// An uncompressed tar in a regular file takes the read-once path (headers
// parsed separately, members skipped); its gzip takes the stream path. Both
// must agree on a layer whose members span several read buffers at odd
// sizes, write the same indexed file, and match veritysetup and sha256sum.
TEST(LayerVerityTest, PlainFileAndGzipStreamAgreeOnALargeLayer) {
  const std::string tar = BuildLayer(
      "mkdir -p root/data; head -c 3146513 /dev/urandom > root/data/big; "
      "head -c 1048575 /dev/urandom > root/data/odd; echo x > root/data/small",
      "--format=gnu");
  const std::string dir = MakeTempDir();
  absl::StatusOr<LayerVerity> plain = WriteIndexedLayer(tar, dir + "/plain.img");
  absl::StatusOr<LayerVerity> gz = WriteIndexedLayer(tar + ".gz", dir + "/gz.img");
  absl::StatusOr<LayerVerity> zst = WriteIndexedLayer(tar + ".zst", dir + "/zst.img");
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_TRUE(gz.ok()) << gz.status();
  ASSERT_TRUE(zst.ok()) << zst.status();
  EXPECT_EQ(zst->diff_id, plain->diff_id);
  EXPECT_EQ(zst->root_hash, plain->root_hash);
  EXPECT_EQ(zst->digest, Sha256Sum(tar + ".zst"));
  EXPECT_EQ(plain->diff_id, Sha256Sum(tar));
  EXPECT_EQ(plain->digest, plain->diff_id);
  EXPECT_EQ(gz->diff_id, plain->diff_id);
  EXPECT_EQ(gz->root_hash, plain->root_hash);
  EXPECT_EQ(gz->tar_size, plain->tar_size);
  EXPECT_EQ(plain->passwd.value_or("?"), "root:x:0:0:root:/root:/bin/sh\n");
  const std::string image = ReadFileOrDie(dir + "/plain.img");
  EXPECT_EQ(image.size(), plain->indexed_size);
  EXPECT_TRUE(image == ReadFileOrDie(dir + "/gz.img"));
  EXPECT_TRUE(image == ReadFileOrDie(dir + "/zst.img"));
  EXPECT_TRUE(image.substr(0, plain->tar_size) == ReadFileOrDie(tar));
  absl::StatusOr<std::string> expected = VeritysetupRootHash(dir + "/plain.img");
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(plain->root_hash, *expected);
  absl::StatusOr<LayerVerity> computed = ComputeLayerVerity(tar);
  ASSERT_TRUE(computed.ok()) << computed.status();
  EXPECT_EQ(computed->root_hash, plain->root_hash);
}

// The copy of a compressed layer goes around the page cache too, though
// the decompressor hands over the tar in pieces of any size: only the last
// partial block and the index are buffered.
TEST(LayerVerityTest, GzipCopyIsWrittenAroundThePageCache) {
  const std::string tar = BuildLayer(
      "mkdir -p root/data; head -c 6291469 /dev/urandom > root/data/big; "
      "seq 1 300000 > root/data/text",
      "--format=gnu");
  const std::string dir = MakeTempDir();
  if (!DirectWritesBypassPageCache(dir)) {
    GTEST_SKIP() << "direct writes in " << dir << " do not bypass the page cache";
  }
  absl::StatusOr<LayerVerity> gz = WriteIndexedLayer(tar + ".gz", dir + "/gz.img");
  ASSERT_TRUE(gz.ok()) << gz.status();
  // Before anything reads it: the tail block and the index only.
  const long pages = static_cast<long>((gz->indexed_size + 4095) / 4096);
  const long index_pages = static_cast<long>((gz->indexed_size - gz->tar_size + 4095) / 4096);
  const long resident = PagesInPageCache(dir + "/gz.img");
  EXPECT_GE(resident, 0);
  EXPECT_LE(resident, index_pages + 1) << "of " << pages;
  EXPECT_TRUE(ReadFileOrDie(dir + "/gz.img").substr(0, gz->tar_size) == ReadFileOrDie(tar));
}

// In place, the tar becomes the very file WriteIndexedLayer writes.
TEST(LayerVerityTest, InPlaceIndexEqualsTheWrittenOne) {
  const std::string tar = BuildLayer(
      "mkdir -p root/data; head -c 2100001 /dev/urandom > root/data/big; "
      "echo 'root:x:0:' > root/etc/group",
      "--format=pax");
  const std::string dir = MakeTempDir();
  absl::StatusOr<LayerVerity> written = WriteIndexedLayer(tar, dir + "/written.img");
  ASSERT_TRUE(written.ok()) << written.status();
  const std::string in_place = dir + "/layer.tar";
  WriteFileOrDie(in_place, ReadFileOrDie(tar));
  absl::StatusOr<LayerVerity> appended = AppendIndexInPlace(in_place);
  ASSERT_TRUE(appended.ok()) << appended.status();
  EXPECT_EQ(appended->diff_id, written->diff_id);
  EXPECT_EQ(appended->root_hash, written->root_hash);
  EXPECT_EQ(appended->indexed_size, written->indexed_size);
  EXPECT_EQ(appended->passwd, written->passwd);
  EXPECT_EQ(appended->group.value_or("?"), "root:x:0:\n");
  EXPECT_TRUE(ReadFileOrDie(in_place) == ReadFileOrDie(dir + "/written.img"));
  absl::StatusOr<std::string> expected = VeritysetupRootHash(in_place);
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(appended->root_hash, *expected);
}

// What cannot be indexed in place is refused and left as it was.
TEST(LayerVerityTest, InPlaceRefusalsLeaveTheFile) {
  const std::string tar = MakeBusyboxLayer();
  const std::string gz = ReadFileOrDie(tar + ".gz");
  absl::StatusOr<LayerVerity> r = AppendIndexInPlace(tar + ".gz");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_NE(r.status().message().find("compressed"), std::string::npos) << r.status();
  EXPECT_TRUE(ReadFileOrDie(tar + ".gz") == gz);
  const std::string dir = MakeTempDir();
  const std::string cut = ReadFileOrDie(tar).substr(0, 5000);
  WriteFileOrDie(dir + "/truncated.tar", cut);
  r = AppendIndexInPlace(dir + "/truncated.tar");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos) << r.status();
  EXPECT_TRUE(ReadFileOrDie(dir + "/truncated.tar") == cut);
  EXPECT_TRUE(absl::IsNotFound(AppendIndexInPlace(dir + "/missing").status()));
  EXPECT_EQ(AppendIndexInPlace(dir).status().code(), absl::StatusCode::kInvalidArgument);
  // A FIFO is refused without a read (which would wait for a writer).
  ASSERT_EQ(mkfifo((dir + "/fifo").c_str(), 0600), 0);
  EXPECT_EQ(AppendIndexInPlace(dir + "/fifo").status().code(), absl::StatusCode::kInvalidArgument);
  // A zstd layer is indexed into another file, never in place.
  const std::string zst = ReadFileOrDie(tar + ".zst");
  r = AppendIndexInPlace(tar + ".zst");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_NE(r.status().message().find("zstd-compressed"), std::string::npos) << r.status();
  EXPECT_TRUE(ReadFileOrDie(tar + ".zst") == zst);
}

// A second --in-place would hash the first one's index as tar data.
TEST(LayerVerityTest, InPlaceOnAnIndexedFileIsRefusedAndLeavesIt) {
  const std::string dir = MakeTempDir();
  const std::string tar = dir + "/layer.tar";
  WriteFileOrDie(tar, ReadFileOrDie(MakeBusyboxLayer()));
  absl::StatusOr<LayerVerity> first = AppendIndexInPlace(tar);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string indexed = ReadFileOrDie(tar);
  absl::StatusOr<LayerVerity> again = AppendIndexInPlace(tar);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition) << again.status();
  EXPECT_NE(again.status().message().find(absl::StrCat("already ends with a tarfs index (after its first ",
                                                       first->tar_size, " bytes")),
            std::string::npos)
      << again.status();
  EXPECT_TRUE(ReadFileOrDie(tar) == indexed);
  // The indexed file itself still computes the root hash the guest checks.
  absl::StatusOr<std::string> expected = VeritysetupRootHash(tar);
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(first->root_hash, *expected);
}

// An indexed file hashed or indexed again as a layer took its index for
// tar data: `layer` and `index LAYER OUT` gave a root hash of the tar, its
// index and a second index, silently. Refused as --in-place refuses it,
// unless the whole file is asked to be the layer (kHashAsTar, the default
// of ComputeLayerVerity: an OCI layout's blob is hashed as genpolicy does).
TEST(LayerVerityTest, AnIndexedFileIsRefusedByEveryFormUnlessAskedFor) {
  const std::string dir = MakeTempDir();
  const std::string tar = dir + "/layer.tar";
  WriteFileOrDie(tar, ReadFileOrDie(MakeBusyboxLayer()));
  absl::StatusOr<LayerVerity> first = AppendIndexInPlace(tar);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string indexed = ReadFileOrDie(tar);
  const std::string refusal =
      absl::StrCat(tar, " already ends with a tarfs index (after its first ", first->tar_size,
                   " bytes, the tar)");

  LayerVerityOptions refuse;
  refuse.indexed_input = IndexedInput::kRefuse;
  absl::StatusOr<LayerVerity> r = ComputeLayerVerity(tar, refuse);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_NE(r.status().message().find(refusal), std::string::npos) << r.status();

  WriteFileOrDie(dir + "/out", "precious");
  r = WriteIndexedLayer(tar, dir + "/out");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_NE(r.status().message().find(refusal), std::string::npos) << r.status();
  EXPECT_EQ(ReadFileOrDie(dir + "/out"), "precious");
  r = WriteIndexedLayer(tar, dir + "/new");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  struct stat st;
  EXPECT_NE(stat((dir + "/new").c_str(), &st), 0);
  EXPECT_TRUE(ReadFileOrDie(tar) == indexed);

  // Asked for: the whole file is the layer's tar.
  absl::StatusOr<LayerVerity> whole = ComputeLayerVerity(tar);
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(whole->diff_id, Sha256Sum(tar));
  EXPECT_EQ(whole->tar_size, indexed.size());
  EXPECT_NE(whole->root_hash, first->root_hash);
  const IndexChecks as_tar{IndexedInput::kHashAsTar};
  r = WriteIndexedLayer(tar, dir + "/out", as_tar);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->root_hash, whole->root_hash);
  r = AppendIndexInPlace(tar, as_tar);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->root_hash, whole->root_hash);
  EXPECT_TRUE(ReadFileOrDie(tar) == ReadFileOrDie(dir + "/out"));

  // The same tar not yet indexed is not taken for an indexed one.
  const std::string plain = dir + "/plain.tar";
  WriteFileOrDie(plain, indexed.substr(0, first->tar_size));
  r = ComputeLayerVerity(plain, refuse);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->root_hash, first->root_hash);
}

// No tar data at all (an empty file, an empty gzip stream, a pipe whose
// writer failed) was hashed as an empty tar, and an empty file indexed in
// place became a bare index. Refused when asked (the tool asks), changing
// nothing; accepted otherwise, as tar readers accept it.
TEST(LayerVerityTest, NoTarDataIsRefusedWhenAsked) {
  const std::string dir = MakeTempDir();
  WriteFileOrDie(dir + "/empty", "");
  ASSERT_TRUE(RunCommand(absl::StrCat("gzip -c < /dev/null > ", dir, "/empty.gz")).ok());
  LayerVerityOptions refuse;
  refuse.refuse_empty = true;
  refuse.accept_pipe = true;
  const IndexChecks checks{IndexedInput::kRefuse, /*refuse_empty=*/true};
  for (const std::string& path : {dir + "/empty", dir + "/empty.gz", std::string("/dev/null")}) {
    absl::StatusOr<LayerVerity> r = ComputeLayerVerity(path, refuse);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
    EXPECT_EQ(r.status().message(), absl::StrCat(path, " holds no tar data (0 bytes): it is not a layer"));
    r = WriteIndexedLayer(path, dir + "/out", checks);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
    LayerVerityOptions accept;
    accept.accept_pipe = true;
    EXPECT_TRUE(ComputeLayerVerity(path, accept).ok()) << path;
  }
  struct stat st;
  EXPECT_NE(stat((dir + "/out").c_str(), &st), 0);
  absl::StatusOr<LayerVerity> r = AppendIndexInPlace(dir + "/empty", checks);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_EQ(ReadFileOrDie(dir + "/empty"), "");
  // A tar of no members is not empty: its end-of-archive blocks are data.
  ASSERT_TRUE(RunCommand(absl::StrCat("tar -cf ", dir, "/none.tar -T /dev/null")).ok());
  EXPECT_TRUE(ComputeLayerVerity(dir + "/none.tar", refuse).ok());
}

// The output is replaced only by a complete indexed layer: a failure
// leaves what was there, and only regular files (or links to one) are
// replaced.
TEST(LayerVerityTest, WriteIndexedLayerNeverDestroysItsOutput) {
  const std::string dir = MakeTempDir();
  const std::string layer = MakeBusyboxLayer();
  WriteFileOrDie(dir + "/truncated.tar", ReadFileOrDie(layer).substr(0, 5000));
  WriteFileOrDie(dir + "/out", "precious");
  EXPECT_FALSE(WriteIndexedLayer(dir + "/truncated.tar", dir + "/out").ok());
  EXPECT_EQ(ReadFileOrDie(dir + "/out"), "precious");
  ASSERT_EQ(symlink("target", (dir + "/link").c_str()), 0);
  WriteFileOrDie(dir + "/target", "kept");
  EXPECT_FALSE(WriteIndexedLayer(dir + "/truncated.tar", dir + "/link").ok());
  EXPECT_EQ(ReadFileOrDie(dir + "/target"), "kept");
  ASSERT_EQ(mkfifo((dir + "/fifo").c_str(), 0600), 0);
  absl::StatusOr<LayerVerity> r = WriteIndexedLayer(layer, dir + "/fifo");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  struct stat st;
  ASSERT_EQ(lstat((dir + "/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  // Success through the link: the link stays, its target is the layer.
  r = WriteIndexedLayer(layer, dir + "/link");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(lstat((dir + "/link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(ReadFileOrDie(dir + "/target").size(), r->indexed_size);
  absl::StatusOr<std::string> entries = RunCommand(absl::StrCat("ls -A ", dir, " | wc -l"));
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(std::stoul(*entries), 5u);  // truncated.tar out link target fifo: no temp files
}

TEST(LayerVerityTest, BadInputIsAClearError) {
  std::string dir = MakeTempDir();
  EXPECT_TRUE(absl::IsNotFound(ComputeLayerVerity(dir + "/missing").status()));
  std::string tar = ReadFileOrDie(MakeBusyboxLayer());
  WriteFileOrDie(dir + "/truncated.tar", tar.substr(0, 5000));
  absl::StatusOr<LayerVerity> r = ComputeLayerVerity(dir + "/truncated.tar");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos) << r.status();
  // zstd's magic before bytes that are no zstd frame: corrupt input.
  WriteFileOrDie(dir + "/zstd", std::string("\x28\xb5\x2f\xfd", 4) + std::string(100, 'z'));
  r = ComputeLayerVerity(dir + "/zstd");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_NE(r.status().message().find("zstd"), std::string::npos) << r.status();
  // A failed WriteIndexedLayer leaves no partial output behind.
  EXPECT_FALSE(WriteIndexedLayer(dir + "/truncated.tar", dir + "/out").ok());
  EXPECT_NE(access((dir + "/out").c_str(), F_OK), 0);
  // Truncated inside a member larger than the read buffers: the plain path
  // stops at the parser's error, with no output either.
  ASSERT_TRUE(RunCommand(absl::StrCat("set -e; cd ", dir, "; mkdir -p big; ",
                                      "head -c 3000000 /dev/urandom > big/f; tar -C big -cf big.tar f; ",
                                      "head -c 2500000 big.tar > cut.tar"))
                  .ok());
  r = WriteIndexedLayer(dir + "/cut.tar", dir + "/out2");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos) << r.status();
  EXPECT_NE(access((dir + "/out2").c_str(), F_OK), 0);
  // A directory is not a layer.
  EXPECT_FALSE(ComputeLayerVerity(dir).ok());
}

// Makes the FIFO `path`, runs `read` on it while a thread writes `data`
// into it, and returns what `read` returned. The writer waits for a reader
// without blocking (until `read` returned), and a reader that gives up
// early fails its writes (EPIPE, SIGPIPE ignored): it always ends.
template <typename Read>
auto ReadThroughFifo(const std::string& path, const std::string& data, Read read) {
  EXPECT_EQ(::mkfifo(path.c_str(), 0600), 0);
  ::signal(SIGPIPE, SIG_IGN);
  std::atomic<bool> read_returned{false};
  std::thread writer([&] {
    int fd = -1;
    while (fd < 0 && !read_returned) {
      fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);  // ENXIO: no reader yet
      if (fd < 0) ::usleep(1000);
    }
    if (fd < 0) return;
    ::fcntl(fd, F_SETFL, 0);  // blocking writes from here
    for (size_t done = 0; done < data.size();) {
      ssize_t n = ::write(fd, data.data() + done, data.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    ::close(fd);
  });
  auto result = read(path);
  read_returned = true;
  writer.join();
  return result;
}

// `cmd | guest-pull-verity layer /dev/stdin`: a pipe gives what the file
// gives, compressed or not. Its first bytes were read with pread, which a
// pipe refuses ("cannot read /dev/stdin: Illegal seek").
TEST(LayerVerityTest, APipeIsReadAsAStreamWhenAccepted) {
  const std::string tar = MakeBusyboxLayer();
  const std::string dir = MakeTempDir();
  LayerVerityOptions pipes;
  pipes.accept_pipe = true;
  auto compute = [&pipes](const std::string& path) { return ComputeLayerVerity(path, pipes); };
  for (const char* ext : {"", ".gz", ".zst"}) {
    absl::StatusOr<LayerVerity> file = ComputeLayerVerity(tar + ext);
    ASSERT_TRUE(file.ok()) << ext << ": " << file.status();
    absl::StatusOr<LayerVerity> piped =
        ReadThroughFifo(absl::StrCat(dir, "/fifo", ext), ReadFileOrDie(tar + ext), compute);
    ASSERT_TRUE(piped.ok()) << ext << ": " << piped.status();
    EXPECT_EQ(piped->digest, file->digest) << ext;
    EXPECT_EQ(piped->diff_id, file->diff_id) << ext;
    EXPECT_EQ(piped->root_hash, file->root_hash) << ext;
    EXPECT_EQ(piped->passwd, file->passwd) << ext;
  }
  // The indexed copy of a piped gzip layer is the file's.
  absl::StatusOr<LayerVerity> piped =
      ReadThroughFifo(dir + "/index-fifo", ReadFileOrDie(tar + ".gz"),
                      [&dir](const std::string& path) {
                        return WriteIndexedLayer(path, dir + "/piped.idx");
                      });
  ASSERT_TRUE(piped.ok()) << piped.status();
  ASSERT_TRUE(WriteIndexedLayer(tar, dir + "/file.idx").ok());
  EXPECT_EQ(ReadFileOrDie(dir + "/piped.idx"), ReadFileOrDie(dir + "/file.idx"));
  // Fewer bytes than a magic: an empty pipe is an empty stream, as /dev/null.
  piped = ReadThroughFifo(dir + "/empty-fifo", "", compute);
  ASSERT_TRUE(piped.ok()) << piped.status();
  EXPECT_EQ(piped->root_hash, ComputeLayerVerity("/dev/null")->root_hash);
}

// A FIFO among an OCI layout's blobs is refused for what it is, at once
// (no writer waited for).
TEST(LayerVerityTest, APipeIsRefusedUnlessAccepted) {
  const std::string dir = MakeTempDir();
  ASSERT_EQ(::mkfifo((dir + "/blob").c_str(), 0600), 0);
  absl::StatusOr<LayerVerity> r = ComputeLayerVerity(dir + "/blob");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_NE(r.status().message().find("is a FIFO"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace guest_pull::verity
