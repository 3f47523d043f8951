// tarfs index tests: the documented layout example byte for byte, the tree
// rules (whiteouts, opaque dirs, hardlinks, long names, long symlinks,
// devices, escaping paths, duplicates), the reproduced rounding bug, and
// real GNU tar archives decoded back through the on-disk format.
#include "kata_volume/verity/tarfs_index.h"

#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <map>

#include "absl/strings/str_cat.h"
#include "kata_volume/verity/layer_verity.h"
#include "kata_volume/verity/test_util.h"

namespace guest_pull::verity {
namespace {

using ::guest_pull::verity::testing::MakeTempDir;
using ::guest_pull::verity::testing::PaxMember;
using ::guest_pull::verity::testing::RawHeader;
using ::guest_pull::verity::testing::ReadFileOrDie;
using ::guest_pull::verity::testing::RunCommand;
using ::guest_pull::verity::testing::TarMember;
using ::guest_pull::verity::testing::TarTrailer;
using ::guest_pull::verity::testing::WriteFileOrDie;

uint64_t Le(const std::string& s, uint64_t off, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s.at(off + i));
  return v;
}

struct Inode {
  uint16_t mode;
  uint8_t flags;
  uint32_t uid, gid;
  uint64_t mtime, size, offset;
};

// Decodes an indexed file back into inodes and path -> inode number.
struct DecodedIndex {
  uint64_t table_offset = 0;
  uint64_t count = 0;
  std::vector<Inode> inodes;  // inodes[ino - 1]
  std::map<std::string, uint64_t> paths;
  std::map<std::string, uint8_t> dtypes;

  const Inode& At(const std::string& path) const { return inodes.at(paths.at(path) - 1); }
};

DecodedIndex Decode(const std::string& file) {
  DecodedIndex d;
  EXPECT_EQ(file.size() % 4096, 0u);
  d.table_offset = Le(file, file.size() - 512, 8);
  d.count = Le(file, file.size() - 504, 8);
  for (uint64_t i = 0; i < d.count; ++i) {
    uint64_t o = d.table_offset + 32 * i;
    Inode n;
    n.mode = static_cast<uint16_t>(Le(file, o, 2));
    n.flags = static_cast<uint8_t>(file.at(o + 2));
    n.mtime = Le(file, o + 12, 4) | (Le(file, o + 3, 1) << 32);
    n.uid = static_cast<uint32_t>(Le(file, o + 4, 4));
    n.gid = static_cast<uint32_t>(Le(file, o + 8, 4));
    n.size = Le(file, o + 16, 8);
    n.offset = Le(file, o + 24, 8);
    d.inodes.push_back(n);
  }
  std::deque<std::pair<std::string, uint64_t>> queue{{"", 1}};
  for (size_t guard = 0; !queue.empty() && guard < 100000; ++guard) {
    auto [path, ino] = queue.front();
    queue.pop_front();
    const Inode& n = d.inodes.at(ino - 1);
    if ((n.mode & 0170000) != 0040000) continue;
    for (uint64_t i = 0; i < n.size / 32; ++i) {
      uint64_t o = n.offset + 32 * i;
      uint64_t child = Le(file, o, 8);
      std::string name = file.substr(Le(file, o + 8, 8), Le(file, o + 16, 8));
      std::string child_path = path.empty() ? name : path + "/" + name;
      d.paths[child_path] = child;
      d.dtypes[child_path] = static_cast<uint8_t>(file.at(o + 24));
      queue.push_back({child_path, child});
    }
  }
  return d;
}

// Indexes `tar` through the public layer API and returns tar + index.
std::string IndexTar(const std::string& tar) {
  std::string dir = MakeTempDir();
  WriteFileOrDie(dir + "/layer.tar", tar);
  absl::StatusOr<LayerVerity> r = WriteIndexedLayer(dir + "/layer.tar", dir + "/indexed");
  EXPECT_TRUE(r.ok()) << r.status();
  std::string file = ReadFileOrDie(dir + "/indexed");
  EXPECT_EQ(file.substr(0, tar.size()), tar);
  if (r.ok()) {
    EXPECT_EQ(r->indexed_size, file.size());
  }
  return file;
}

TEST(TarfsIndexTest, DocumentedSingleEmptyFileExample) {
  RawHeader h;
  h.name = "LAYER_2";
  h.mode = 0644;
  std::string tar = TarMember(h) + TarTrailer();
  ASSERT_EQ(tar.size(), 1536u);
  std::string file = IndexTar(tar);
  ASSERT_EQ(file.size(), 8192u);
  // Inode 1: root directory.
  EXPECT_EQ(Le(file, 1536, 2), 040555u);
  EXPECT_EQ(Le(file, 1536 + 16, 8), 32u);    // size: one dirent
  EXPECT_EQ(Le(file, 1536 + 24, 8), 1600u);  // dirents right after the table
  // Inode 2: LAYER_2.
  EXPECT_EQ(Le(file, 1568, 2), 0100644u);
  EXPECT_EQ(Le(file, 1568 + 16, 8), 0u);
  EXPECT_EQ(Le(file, 1568 + 24, 8), 512u);  // data position even when empty
  // Dirent.
  EXPECT_EQ(Le(file, 1600, 8), 2u);
  EXPECT_EQ(Le(file, 1608, 8), 1632u);
  EXPECT_EQ(Le(file, 1616, 8), 7u);
  EXPECT_EQ(Le(file, 1624, 1), 8u);
  EXPECT_EQ(file.substr(1632, 7), "LAYER_2");
  // Superblock 512 bytes before the end; everything else zero.
  EXPECT_EQ(Le(file, 7680, 8), 1536u);
  EXPECT_EQ(Le(file, 7688, 8), 2u);
  EXPECT_EQ(file.find_first_not_of('\0', 1639), 7681u);  // 1536 = 00 06 LE
  EXPECT_EQ(file.find_first_not_of('\0', 7696), std::string::npos);
}

TEST(TarfsIndexTest, EndOffsetCountsNamesTwiceLikeTheReference) {
  // One file with a 600-byte (PAX) name after a 3072-byte tar: the true end
  // (3768) fits the first 4096 block, but the reference adds the name length
  // again (4368) and so rounds up to the next block.
  std::string name(600, 'n');
  RawHeader h;
  h.name = "short";
  std::string tar = PaxMember({{"path", name}}) + TarMember(h) + TarTrailer();
  std::string file = IndexTar(tar);
  const uint64_t contents = tar.size();
  const uint64_t names_start = contents + 64 + 32;
  const uint64_t buggy_end = names_start + 2 * name.size();
  const uint64_t expected = (buggy_end + 4095) / 4096 * 4096 + 4096;
  EXPECT_EQ(file.size(), expected);
  EXPECT_GT(file.size(), (names_start + name.size() + 4095) / 4096 * 4096 + 4096);
  DecodedIndex d = Decode(file);
  EXPECT_EQ(d.paths.count(name), 1u);
}

TEST(TarfsIndexTest, TreeRules) {
  RawHeader dir;
  dir.type = '5';
  dir.mode = 0755;
  auto member = [](std::string name, char type, std::string data = "", std::string link = "") {
    RawHeader h;
    h.name = std::move(name);
    h.type = type;
    h.mode = type == '5' ? 0755 : 0644;
    h.linkname = std::move(link);
    h.mtime = 0x123456789ull;  // needs more than 32 bits
    h.uid = 1000;
    h.gid = 2000;
    return TarMember(h, data);
  };
  RawHeader chr;
  chr.name = "dev/null";
  chr.type = '3';
  chr.dev_major = 1;
  chr.dev_minor = 3;
  chr.mode = 0666;
  std::string long_target(150, 't');
  std::string tar;
  tar += member("./", '5');
  tar += member("a/", '5');
  tar += member("a/keep", '0', "keep");
  tar += member("a/.wh.gone", '0');
  tar += member("o/", '5');
  tar += member("o/.wh..wh..opq", '0');
  tar += member("f", '0', "first");
  tar += member("f", '0', "second");  // duplicate replaces
  tar += member("h", '1', "", "f");  // hardlink shares the node
  tar += member("../escape", '0', "x");
  tar += member("a/../b", '0', "bee");
  tar += member("dev/", '5');
  tar += TarMember(chr);
  tar += member("implicit/x", '0', "x");  // no member for "implicit" itself
  tar += member("s", '2', "", "f");
  tar += PaxMember({{"linkpath", long_target}}) + member("long", '2', "", "short-in-header");
  tar += member("fifo", '6');
  tar += TarTrailer();
  std::string file = IndexTar(tar);
  DecodedIndex d = Decode(file);

  // Root got the "./" member's mode; BFS numbering, children sorted by name.
  EXPECT_EQ(d.inodes[0].mode, 040755);
  EXPECT_EQ(d.paths.at("a"), 2u);
  EXPECT_EQ(d.paths.at("b"), 3u);
  EXPECT_EQ(d.paths.count("escape"), 0u);
  EXPECT_EQ(d.At("b").size, 3u);
  EXPECT_EQ(file.substr(d.At("b").offset, 3), "bee");

  // Whiteout -> char device 0/0.
  EXPECT_EQ(d.At("a/gone").mode & 0170000, 0020000);
  EXPECT_EQ(d.At("a/gone").offset, 0u);
  EXPECT_EQ(d.dtypes.at("a/gone"), 2);
  EXPECT_EQ(d.paths.count("a/.wh.gone"), 0u);
  EXPECT_EQ(file.substr(d.At("a/keep").offset, 4), "keep");
  // Opaque directory flag.
  EXPECT_EQ(d.At("o").flags, 1);
  EXPECT_EQ(d.At("a").flags, 0);
  // Duplicate replaced; hardlink shares the inode.
  EXPECT_EQ(file.substr(d.At("f").offset, d.At("f").size), "second");
  EXPECT_EQ(d.paths.at("h"), d.paths.at("f"));
  // Raw header fields.
  EXPECT_EQ(d.At("f").mtime, 0x123456789ull);
  EXPECT_EQ(d.At("f").uid, 1000u);
  EXPECT_EQ(d.At("f").gid, 2000u);
  // Device numbers.
  EXPECT_EQ(d.At("dev/null").mode, 020666);
  EXPECT_EQ(d.At("dev/null").offset, (uint64_t{1} << 32) | 3);
  // Short symlink: target read from the header's linkname field.
  EXPECT_EQ(d.At("s").mode & 0170000, 0120000);
  EXPECT_EQ(file.substr(d.At("s").offset, d.At("s").size), "f");
  // Long symlink: target stored in the index after the dirents.
  EXPECT_GT(d.At("long").offset, d.table_offset);
  EXPECT_EQ(file.substr(d.At("long").offset, d.At("long").size), long_target);
  EXPECT_EQ(d.dtypes.at("fifo"), 1);
  // Like the reference, a parent without its own member stays mode 0 (not a
  // directory), so its children get inodes but no directory entries.
  EXPECT_EQ(d.At("implicit").mode, 0);
  EXPECT_EQ(d.dtypes.at("implicit"), 0);
  EXPECT_EQ(d.paths.count("implicit/x"), 0u);
  EXPECT_EQ(d.count, d.paths.size() + 1 /*root*/ - 1 /*h shares f*/ + 1 /*implicit/x*/);
}

TEST(TarfsIndexTest, HardlinkCycleIsRejectedNotLooping) {
  RawHeader f;
  f.name = "f";
  RawHeader link;
  link.name = "f/self";  // creates a child under the regular file, linked to itself
  link.type = '1';
  link.linkname = "f";
  std::string dir = MakeTempDir();
  WriteFileOrDie(dir + "/l.tar", TarMember(f) + TarMember(link) + TarTrailer());
  absl::StatusOr<LayerVerity> r = ComputeLayerVerity(dir + "/l.tar");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cycle"), std::string::npos) << r.status();
}

TEST(TarfsIndexTest, GnuTarArchivesDecodeBack) {
  for (const char* format : {"gnu", "pax"}) {
    std::string dir = MakeTempDir();
    std::string long_dir = std::string(90, 'd') + "/" + std::string(90, 'e');
    std::string long_target = std::string(120, 'x');
    ASSERT_TRUE(RunCommand(absl::StrCat(
        "set -e; cd ", dir, "; mkdir -p src/", long_dir, " src/etc; ",
        "printf hello > src/", long_dir, "/file; printf root > src/etc/passwd; ",
        "ln src/etc/passwd src/etc/hard; ln -s ", long_target, " src/etc/longlink; ",
        "ln -s passwd src/etc/shortlink; ",
        "tar --format=", format, " --numeric-owner --owner=0 --group=0 --mtime=@1700000000 ",
        "--sort=name -C src -cf layer.tar etc ", std::string(90, 'd')))
                    .ok());
    std::string tar = ReadFileOrDie(dir + "/layer.tar");
    std::string file = IndexTar(tar);
    DecodedIndex d = Decode(file);
    const Inode& f = d.At(long_dir + "/file");
    EXPECT_EQ(file.substr(f.offset, f.size), "hello") << format;
    EXPECT_EQ(f.mtime, 1700000000u) << format;
    EXPECT_EQ(d.paths.at("etc/hard"), d.paths.at("etc/passwd")) << format;
    const Inode& l = d.At("etc/longlink");
    EXPECT_EQ(file.substr(l.offset, l.size), long_target) << format;
    const Inode& s = d.At("etc/shortlink");
    EXPECT_EQ(file.substr(s.offset, s.size), "passwd") << format;
    EXPECT_LT(s.offset, tar.size()) << format;  // inside the tar header
  }
}

}  // namespace
}  // namespace guest_pull::verity
