// Tests for reading UTF-8 as Go does.
#include "base/go_utf8.h"

#include "gtest/gtest.h"

namespace base {
namespace {

size_t Length(absl::string_view s) {
  uint32_t cp = 0;
  return DecodeGoRune(s, &cp);
}

TEST(GoUtf8Test, DecodesEachLength) {
  uint32_t cp = 0;
  EXPECT_EQ(DecodeGoRune("a", &cp), 1u);
  EXPECT_EQ(cp, 'a');
  EXPECT_EQ(DecodeGoRune("\xC3\xA9x", &cp), 2u);  // é
  EXPECT_EQ(cp, 0xE9u);
  EXPECT_EQ(DecodeGoRune("\xE2\x80\x8B", &cp), 3u);  // U+200B
  EXPECT_EQ(cp, 0x200Bu);
  EXPECT_EQ(DecodeGoRune("\xF0\x9F\x98\x80", &cp), 4u);  // U+1F600
  EXPECT_EQ(cp, 0x1F600u);
}

TEST(GoUtf8Test, RefusesWhatGoReadsAsRuneError) {
  EXPECT_EQ(Length(""), 0u);
  EXPECT_EQ(Length("\x80"), 0u);              // a continuation byte first
  EXPECT_EQ(Length("\xC0\xAF"), 0u);          // overlong
  EXPECT_EQ(Length("\xE0\x80\xAF"), 0u);      // overlong
  EXPECT_EQ(Length("\xED\xA0\x80"), 0u);      // a surrogate (U+D800)
  EXPECT_EQ(Length("\xF4\x90\x80\x80"), 0u);  // past U+10FFFF
  EXPECT_EQ(Length("\xE2\x80"), 0u);          // cut short
  EXPECT_EQ(Length("\xF8\x88\x80\x80\x80"), 0u);
}

}  // namespace
}  // namespace base
