// Tests for the value texts: a quoted string is a TOML basic string that
// toml++ reads back as it was, so --help's config section is valid TOML.
#include "snapshotter/config/value_text.h"

#include <toml++/toml.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "snapshotter/config/config.h"

namespace snapshotter {
namespace config {
namespace {

// The document "k = <value>" parsed by toml++; nullopt (and a test
// failure) if it is not TOML.
std::optional<toml::table> ParseValue(const std::string& value) {
  const std::string document = "k = " + value + "\n";
  try {
    return toml::parse(std::string_view(document));
  } catch (const toml::parse_error& error) {
    ADD_FAILURE() << "not TOML: " << document << ": " << error.description();
    return std::nullopt;
  }
}

// Strings CEscape quoted as no TOML parser reads them ("\'" and octal
// UTF-8), and every character TOML wants escaped.
const std::vector<std::string>& Samples() {
  static const auto* samples = new std::vector<std::string>{
      "it's",
      "caf\xc3\xa9",                       // é
      "a\tb",
      "C:\\dir\\x",
      "it's caf\xc3\xa9\t\\",              // all four at once
      "say \"hi\"",
      "line\nnext\r\n",
      std::string("\b\f\x01\x1f\x7f\0end", 9),
      "\xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbd \xc2\x85",  // € 😀 U+FFFD NEL
      "",
  };
  return *samples;
}

TEST(QuotedTest, IsATomlBasicStringThatReadsBackAsItWas) {
  for (const std::string& s : Samples()) {
    const std::string quoted = Quoted(s);
    std::optional<toml::table> table = ParseValue(quoted);
    if (!table.has_value()) continue;
    EXPECT_EQ((*table)["k"].value_exact<std::string>(), s) << quoted;
  }
}

TEST(QuotedTest, EscapesOnlyWhatTomlRequires) {
  EXPECT_EQ(Quoted("it's"), "\"it's\"");
  EXPECT_EQ(Quoted("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(Quoted("a\tb\\c\"d"), "\"a\\tb\\\\c\\\"d\"");
  EXPECT_EQ(Quoted("\x1b[0m\x7f"), "\"\\u001B[0m\\u007F\"");
}

// A byte that is not UTF-8 (from a flag or a variable) stays visible, in
// octal, which no TOML reader takes for a character.
TEST(QuotedTest, AByteThatIsNotUtf8IsOctal) {
  EXPECT_EQ(Quoted("/var/lib/gp\xe9"), "\"/var/lib/gp\\351\"");
  EXPECT_EQ(Quoted("\xed\xa0\x80"), "\"\\355\\240\\200\"");  // a surrogate
}

TEST(ValueTextTest, AListReadsBackAsTheSameArray) {
  std::optional<toml::table> table = ParseValue(ValueText(Value(Samples())));
  ASSERT_TRUE(table.has_value());
  const toml::array* array = (*table)["k"].as_array();
  ASSERT_NE(array, nullptr);
  ASSERT_EQ(array->size(), Samples().size());
  for (size_t i = 0; i < Samples().size(); ++i) {
    EXPECT_EQ(array->get(i)->value_exact<std::string>(), Samples()[i]) << i;
  }
}

TEST(TomlValueTextTest, EveryStringReadsBack) {
  for (const std::string& s : Samples()) {
    std::optional<toml::table> table = ParseValue(TomlValueText(Value(s)));
    if (!table.has_value()) continue;
    EXPECT_EQ((*table)["k"].value_exact<std::string>(), s);
  }
}

// Every "key = value" line of --help's config section is TOML giving the
// key its default.
TEST(HelpTextTest, TheConfigSectionIsToml) {
  const std::string help = HelpText();
  const size_t section = help.find("\nConfig file keys");
  ASSERT_NE(section, std::string::npos);
  int lines = 0;
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(help).substr(section), '\n')) {
    if (!absl::StartsWith(line, "  ") || absl::StartsWith(line, "      ")) {
      continue;
    }
    ++lines;
    const std::string document(absl::StripAsciiWhitespace(line));
    try {
      toml::table table = toml::parse(std::string_view(document));
      EXPECT_FALSE(table.empty()) << document;
    } catch (const toml::parse_error& error) {
      ADD_FAILURE() << "not TOML: " << document << ": "
                    << error.description();
    }
  }
  int keys = 0;
  for (const Key& key : Keys()) keys += *key.name != '\0';
  EXPECT_EQ(lines, keys);
}

}  // namespace
}  // namespace config
}  // namespace snapshotter
