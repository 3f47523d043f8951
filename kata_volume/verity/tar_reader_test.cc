// Tar reader tests: raw positions, GNU long names/links, PAX records,
// numeric field parsing, and errors on corrupt or truncated archives.
#include "kata_volume/verity/tar_reader.h"

#include <gtest/gtest.h>

#include "kata_volume/verity/test_util.h"

namespace guest_pull::verity {
namespace {

using ::guest_pull::verity::testing::PaxMember;
using ::guest_pull::verity::testing::RawHeader;
using ::guest_pull::verity::testing::TarMember;
using ::guest_pull::verity::testing::TarTrailer;

// Serves a string in small chunks.
class StringSource : public ByteSource {
 public:
  explicit StringSource(std::string data) : data_(std::move(data)) {}
  absl::StatusOr<size_t> Read(char* buffer, size_t size) override {
    size_t n = std::min({size, data_.size() - pos_, size_t{700}});
    std::copy(data_.data() + pos_, data_.data() + pos_ + n, buffer);
    pos_ += n;
    return n;
  }

 private:
  std::string data_;
  size_t pos_ = 0;
};

TEST(TarReaderTest, PositionsLongNamesAndPax) {
  RawHeader a;
  a.name = "a";
  a.mtime = 1234;
  a.uid = 7;
  RawHeader gnu_name;
  gnu_name.name = "././@LongLink";
  gnu_name.type = 'L';
  gnu_name.gnu_magic = true;
  RawHeader gnu_link = gnu_name;
  gnu_link.type = 'K';
  RawHeader sym;
  sym.name = "trunc";
  sym.type = '2';
  sym.linkname = "short";
  sym.gnu_magic = true;
  RawHeader b;
  b.name = "b";
  std::string long_name(200, 'L');
  std::string tar = TarMember(a, "hello") + TarMember(gnu_name, long_name + '\0') +
                    TarMember(gnu_link, std::string(150, 'K') + '\0') + TarMember(sym) +
                    PaxMember({{"path", "pax/path"}, {"uid", "4000000000"}}) + TarMember(b, "xy") +
                    TarTrailer() + "trailing";
  StringSource src(tar);
  TarReader r(&src);

  auto e = r.Next();
  ASSERT_TRUE(e.ok() && *e != nullptr);
  EXPECT_EQ((*e)->path, "a");
  EXPECT_EQ((*e)->header_position, 0u);
  EXPECT_EQ((*e)->data_position, 512u);
  EXPECT_EQ((*e)->size, 5u);
  EXPECT_EQ((*e)->mtime, 1234u);
  EXPECT_EQ((*e)->uid, 7u);
  char buf[16];
  auto n = r.ReadData(buf, sizeof(buf));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), "hello");

  e = r.Next();
  ASSERT_TRUE(e.ok() && *e != nullptr);
  EXPECT_EQ((*e)->path, long_name);
  EXPECT_EQ((*e)->header_path, "trunc");
  EXPECT_EQ((*e)->link_name, std::string(150, 'K'));
  EXPECT_EQ((*e)->header_link_name, "short");
  EXPECT_EQ((*e)->header_position, 1024u + 1024 + 512 + 512);

  e = r.Next();
  ASSERT_TRUE(e.ok() && *e != nullptr);
  EXPECT_EQ((*e)->path, "pax/path");
  EXPECT_EQ((*e)->uid, 4000000000u);
  EXPECT_EQ((*e)->size, 2u);

  e = r.Next();
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(*e, nullptr);
  EXPECT_EQ(*r.Finish(), tar.size());  // everything after the trailer counts too
}

TEST(TarReaderTest, NumericFields) {
  EXPECT_EQ(ParseTarOctal(std::string("0000644\0", 8)), 0644u);
  EXPECT_EQ(ParseTarOctal("  755 "), 0755u);
  EXPECT_EQ(ParseTarOctal(std::string("\0\0\0", 3)), std::nullopt);
  EXPECT_EQ(ParseTarOctal("0009"), std::nullopt);
  EXPECT_EQ(ParseTarNumber(std::string("\x80\0\0\0\0\0\x01\x02", 8)), 0x102u);
  EXPECT_EQ(ParseTarNumber(std::string("\x80\0\0\0\0\0\0\0\0\0\x10\x00", 12)), 0x1000u);
}

TEST(TarReaderTest, CorruptAndTruncatedArchivesFail) {
  RawHeader a;
  a.name = "a";
  std::string tar = TarMember(a, std::string(2000, 'x')) + TarTrailer();
  std::string corrupt = tar;
  corrupt[10] = 'Z';  // breaks the checksum
  StringSource c(corrupt);
  TarReader rc(&c);
  EXPECT_NE(rc.Next().status().message().find("checksum"), std::string::npos);

  StringSource t(tar.substr(0, 1500));  // data cut short
  TarReader rt(&t);
  ASSERT_TRUE(rt.Next().ok());
  EXPECT_NE(rt.Next().status().message().find("truncated"), std::string::npos);

  StringSource h(tar.substr(0, 300));  // partial header
  TarReader rh(&h);
  EXPECT_FALSE(rh.Next().ok());

  RawHeader ln;
  ln.name = "././@LongLink";
  ln.type = 'L';
  StringSource dangling(TarMember(ln, "name") + TarTrailer());
  TarReader rd(&dangling);
  EXPECT_FALSE(rd.Next().ok());
}

// tar-rs parses a PAX record's length as Rust's u64 does: whitespace around
// it makes the record malformed, so its path is not used and it ends the
// search for uid/gid/size.
TEST(TarReaderTest, PaxLengthWithWhitespaceIsMalformed) {
  RawHeader pax;
  pax.name = "PaxHeaders/a";
  pax.type = 'x';
  RawHeader a;
  a.name = "a";
  a.uid = 7;
  std::string tar = TarMember(pax, "\t14 path=evil\n11 uid=999\n") + TarMember(a) + TarTrailer();
  StringSource src(tar);
  TarReader r(&src);
  auto e = r.Next();
  ASSERT_TRUE(e.ok() && *e != nullptr) << e.status();
  EXPECT_EQ((*e)->path, "a");
  EXPECT_EQ((*e)->uid, 7u);
}

// xattrs come from "SCHILY.xattr." records framed by their length, so a
// binary value holding '\n' stays whole; they belong to the member after the
// PAX header only; a malformed record ends them.
TEST(TarReaderTest, PaxXattrsAreFramedByLength) {
  const std::string cap = std::string("\x01\x00\x00\x02\x0a\x20\x00\x00", 8) + std::string(12, '\0');
  RawHeader a;
  a.name = "a";
  RawHeader b;
  b.name = "b";
  RawHeader bad;
  bad.name = "PaxHeaders/c";
  bad.type = 'x';
  RawHeader c;
  c.name = "c";
  std::string tar = PaxMember({{"SCHILY.xattr.security.capability", cap}, {"mtime", "1.5"},
                               {"SCHILY.xattr.user.k", "v=w"}, {"SCHILY.xattr.", "no name"}}) +
                    TarMember(a) + TarMember(b) +
                    TarMember(bad, "29 SCHILY.xattr.user.ok=fine\n99 SCHILY.xattr.user.no=x\n") +
                    TarMember(c) + TarTrailer();
  StringSource src(tar);
  TarReader r(&src);
  auto e = r.Next();
  ASSERT_TRUE(e.ok() && *e != nullptr) << e.status();
  using Xattrs = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ((*e)->xattrs, (Xattrs{{"security.capability", cap}, {"user.k", "v=w"}}));
  e = r.Next();
  ASSERT_TRUE(e.ok() && *e != nullptr) << e.status();
  EXPECT_EQ((*e)->path, "b");
  EXPECT_TRUE((*e)->xattrs.empty());
  e = r.Next();
  ASSERT_TRUE(e.ok() && *e != nullptr) << e.status();
  EXPECT_EQ((*e)->path, "c");
  EXPECT_EQ((*e)->xattrs, (Xattrs{{"user.ok", "fine"}}));
}

// tar-rs trims numeric fields with Rust's `str::trim`, which removes every
// Unicode White_Space character (UTF-8 encoded), not only ASCII ones.
TEST(TarReaderTest, NumericFieldsTrimUnicodeWhitespace) {
  EXPECT_EQ(ParseTarOctal("\xc2\xa0" "644"), 0644u);                   // U+00A0
  EXPECT_EQ(ParseTarOctal("755\xe3\x80\x80"), 0755u);                 // U+3000
  EXPECT_EQ(ParseTarOctal(" \xe2\x80\xa8\xc2\x85" "17\t"), 017u);   // mixed
  EXPECT_EQ(ParseTarOctal("\xc2" "644"), std::nullopt);              // not whitespace
  EXPECT_EQ(ParseTarOctal("\xe2\x80\x8b" "644"), std::nullopt);       // U+200B is not White_Space
}

}  // namespace
}  // namespace guest_pull::verity
