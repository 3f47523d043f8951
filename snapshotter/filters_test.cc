// Tests for the containerd filter parser and matcher.
#include "snapshotter/filters.h"

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace snapshotter {
namespace {

using ::testing::HasSubstr;

Info MakeInfo() {
  Info info;
  info.name = "sha256:abc";
  info.parent = "sha256:parent";
  info.kind = Kind::kCommitted;
  info.labels = {{"containerd.io/snapshot.ref", "sha256:abc"},
                 {"foo", "bar"},
                 {"a.b", "dotted"}};
  return info;
}

bool Match(std::vector<std::string> filters, const Info& info) {
  auto f = SnapshotFilter::Parse(filters);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() && f->Matches(info);
}

TEST(FiltersTest, EmptyMatchesAll) { EXPECT_TRUE(Match({}, MakeInfo())); }

// containerd's filters.Parse("") is "always"; ParseAll ORs the strings.
TEST(FiltersTest, EmptyStringMatchesAll) {
  Info info = MakeInfo();
  EXPECT_TRUE(Match({""}, info));
  EXPECT_TRUE(Match({"", ""}, info));
  EXPECT_TRUE(Match({"name==other", ""}, info));
  EXPECT_TRUE(Match({"", "kind==active"}, info));
  // The other strings must still parse.
  EXPECT_EQ(SnapshotFilter::Parse({"", "name=x"}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FiltersTest, NameParentKind) {
  Info info = MakeInfo();
  EXPECT_TRUE(Match({"name==sha256:abc"}, info));
  EXPECT_FALSE(Match({"name==sha256:abd"}, info));
  EXPECT_TRUE(Match({"parent==sha256:parent"}, info));
  EXPECT_TRUE(Match({"kind==committed"}, info));
  EXPECT_FALSE(Match({"kind==active"}, info));
  EXPECT_TRUE(Match({"kind!=active"}, info));
}

TEST(FiltersTest, ContainerdRemoteSnapshotWalk) {
  Info info = MakeInfo();
  EXPECT_TRUE(Match({"labels.\"containerd.io/snapshot.ref\"==sha256:abc,"
                     "parent==sha256:parent"},
                    info));
  EXPECT_FALSE(Match({"labels.\"containerd.io/snapshot.ref\"==sha256:abc,"
                      "parent==sha256:other"},
                     info));
}

TEST(FiltersTest, LabelPresenceAndDottedKeys) {
  Info info = MakeInfo();
  EXPECT_TRUE(Match({"labels.foo"}, info));
  EXPECT_FALSE(Match({"labels.missing"}, info));
  EXPECT_TRUE(Match({"labels.a.b==dotted"}, info));
  EXPECT_TRUE(Match({"labels.\"foo\"==\"bar\""}, info));
}

TEST(FiltersTest, OrAcrossStrings) {
  Info info = MakeInfo();
  EXPECT_TRUE(Match({"name==x", "labels.foo==bar"}, info));
  EXPECT_FALSE(Match({"name==x", "labels.foo==baz"}, info));
}

TEST(FiltersTest, RegexAndSpaces) {
  Info info = MakeInfo();
  EXPECT_TRUE(Match({"name~=/^sha256:a/"}, info));
  EXPECT_TRUE(Match({"name~=abc"}, info));
  EXPECT_FALSE(Match({"name~=^abc"}, info));
  EXPECT_TRUE(Match({" name == sha256:abc, labels.foo"}, info));
}

// Where containerd's filters package (its scanner) allows a space and where
// it does not, and what it reads as an operator or a value: the same
// strings parse, the others are InvalidArgument as there.
TEST(FiltersTest, SyntaxAsContainerd) {
  Info info = MakeInfo();
  EXPECT_TRUE(Match({" name == sha256:abc,  labels. foo"}, info));
  EXPECT_TRUE(Match({"name==\xc2\xa0sha256:abc"}, info));  // U+00A0 skipped
  EXPECT_TRUE(Match({"name~=/.*/"}, info));
  // Marks, symbols, letters of any script inside a bare value; its first
  // rune is taken whatever it is (U+200B here), as containerd does.
  for (const char* good : {"name==e\xcc\x81", "name==a\xe2\x82\xac" "b",
                           "name==a\xf0\x9f\x98\x80" "b", "name==\xe2\x80\x8b" "b"}) {
    EXPECT_TRUE(SnapshotFilter::Parse({good}).ok()) << absl::CEscape(good);
  }
  for (const std::string& bad : std::vector<std::string>{
           "name==sha256:abc ",       // space before the end
           "name==sha256:abc ,kind",  // space before ','
           "name ,kind", "kind ",     // after a presence test
           "labels . foo",            // before '.'
           "name==.x", "name~=.*",    // a value cannot start with '.'
           "name===x", "name!==x", "name~==x", "name== =x",
           std::string("name==x\0y", 9), std::string("name==\"x\0y\"", 11),
           "name==\xff", "name==\"\xef\xbf\xbd\"",  // invalid UTF-8, U+FFFD
           "name==x\xc2\xa0",          // a Unicode space ends the value
           "name==b\x01r",
           // Past its first rune a bare value takes only what Go's
           // unicode.IsGraphic does: not a format character (U+200B, U+00AD,
           // the ZWJ U+200D), a private-use or an unassigned code point.
           "name==a\xe2\x80\x8b" "b", "name==a\xc2\xad" "b", "name==a\xe2\x80\x8d" "b",
           "name==a\xee\x80\x80" "b", "name==a\xcd\xb8" "b"}) {
    auto f = SnapshotFilter::Parse({bad});
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument)
        << absl::CEscape(bad);
  }
}

TEST(FiltersTest, NotEqualOnMissingFieldMatches) {
  EXPECT_TRUE(Match({"labels.missing!=x"}, MakeInfo()));
}

TEST(FiltersTest, Errors) {
  for (const char* bad : {" ", "name==", "name=x", "labels.\"unterminated",
                          "name==/slashquoted/", "name~=/(/", "name==a b"}) {
    auto f = SnapshotFilter::Parse({bad});
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  auto f = SnapshotFilter::Parse({"name=x"});
  EXPECT_THAT(f.status().message(), HasSubstr("name=x"));
}

// RE2 takes \C (any byte) in a regexp; containerd's Go regexp refuses it
// ("invalid escape sequence"), as RE2 refuses other escapes: InvalidArgument
// here too. An escaped backslash before C, and \C within \Q...\E (literal
// text up to the first \E, or the end), are valid in Go and match as there.
TEST(FiltersTest, AnyByteEscapeIsRefusedAsInGo) {
  for (const char* bad :
       {R"(name~=\C)", R"(name~=a\Cb)", R"(name~=\\\C)", R"(name~=\Q\E\C)",
        R"(name~=\Qab\E\C)", R"(name~=\Q\\E\C)", R"(name~=(?s)x|\C)",
        R"(name~="\\C")", R"(kind,name~=/x\\C/)"}) {
    absl::Status s = SnapshotFilter::Parse({bad}).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("invalid escape sequence: \\C")) << bad;
  }
  Info info = MakeInfo();
  info.name = R"(x\Cy)";
  EXPECT_TRUE(Match({R"(name~=x\\C)"}, info));
  EXPECT_TRUE(Match({R"(name~=\Q\C\E)"}, info));
  EXPECT_TRUE(Match({R"(name~=^x\Q\Cy)"}, info));   // no \E: to the end
  EXPECT_TRUE(Match({R"(name~="x\\\\C")"}, info));  // the value x\\C
  EXPECT_FALSE(Match({R"(name~=\Q\C\E$)"}, info));
  EXPECT_FALSE(Match({R"(name~=\Qa\\C\E)"}, info));
  // \pC is the Unicode category C (other), not \C.
  info.name = "a\x01";
  EXPECT_TRUE(Match({R"(name~=\pC)"}, info));
  EXPECT_TRUE(Match({R"(name~=\p{C})"}, info));
}

TEST(FiltersTest, Escapes) {
  Info info = MakeInfo();
  info.labels["q\"k"] = "v\n";
  EXPECT_TRUE(Match({"labels.\"q\\\"k\"==\"v\\n\""}, info));
}

// A record read in place (the index's List path) matches as its copy does;
// labels are found by key at either end of the sorted list and not found
// between or beyond.
TEST(FiltersTest, AViewMatchesAsItsInfo) {
  Info info = MakeInfo();
  std::string k0 = "a.b", v0 = "dotted", k1 = "containerd.io/snapshot.ref",
              v1 = "sha256:abc", k2 = "foo", v2 = "bar";
  InfoView::LabelRefs labels = {{&k0, &v0}, {&k1, &v1}, {&k2, &v2}};
  InfoView view;
  view.name = info.name;
  view.parent = info.parent;
  view.kind = info.kind;
  view.labels = &labels;
  EXPECT_EQ(view.Label("a.b"), &v0);
  EXPECT_EQ(view.Label("foo"), &v2);
  EXPECT_EQ(view.Label("b"), nullptr);
  EXPECT_EQ(view.Label("zzz"), nullptr);
  EXPECT_EQ(view.Label(""), nullptr);
  for (std::vector<std::string> filters : std::vector<std::vector<std::string>>{
           {},
           {"labels.\"containerd.io/"
            "snapshot.ref\"==sha256:abc,parent==\"sha256:parent\""},
           {"labels.\"containerd.io/snapshot.ref\"==sha256:abc,parent==other"},
           {"labels.a.b==dotted"},
           {"labels.foo!=bar"},
           {"labels.missing"},
           {"kind==committed,name~=^sha256:"},
           {"name==x", "labels.foo~=b.r"}}) {
    auto f = SnapshotFilter::Parse(filters);
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ(f->Matches(view), f->Matches(info))
        << testing::PrintToString(filters);
  }
}

// Fields that are missing or empty, as containerd's adaptor sees them.
TEST(FiltersTest, MissingAndEmptyFields) {
  Info info = MakeInfo();
  info.labels["empty"] = "";
  EXPECT_TRUE(Match({"labels.empty"}, info));
  EXPECT_TRUE(Match({"labels.empty==\"\""}, info));
  EXPECT_TRUE(Match({"labels.missing!=x"}, info));
  EXPECT_TRUE(Match({"labels.missing~=^$"}, info));
  EXPECT_FALSE(Match({"labels"}, info));
  Info bare;
  EXPECT_FALSE(Match({"labels.foo"}, bare));
  EXPECT_FALSE(Match({"kind"}, bare));
  EXPECT_TRUE(Match({"parent==\"\""}, bare));
}

// A List's filters are parsed on the thread answering every read: their
// selectors and regexps are bounded, the limits exact.
TEST(FiltersTest, SelectorsBounded) {
  std::vector<std::string> at_limit(kMaxFilterSelectors / 2, "name==a,kind");
  EXPECT_TRUE(SnapshotFilter::Parse(at_limit).ok());
  std::vector<std::string> over = at_limit;
  over.push_back("name");
  absl::Status s = SnapshotFilter::Parse(over).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("more than 1024 selectors"));
  // Empty strings ("always") are no selectors.
  over.back() = "";
  EXPECT_TRUE(SnapshotFilter::Parse(over).ok());
}

TEST(FiltersTest, RegexpsBounded) {
  // A real one fits many times over.
  std::vector<std::string> real(100, "name~=^sha256:[0-9a-f]{64}$");
  EXPECT_TRUE(SnapshotFilter::Parse(real).ok());
  std::string big;
  for (int i = 0; i < 100; ++i) big += "name~=[a-z]{1000},";
  big += "kind";
  absl::Status s = SnapshotFilter::Parse({big}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("regular expressions too large"));
}

}  // namespace
}  // namespace snapshotter
