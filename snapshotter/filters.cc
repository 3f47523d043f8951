// A small recursive-descent parser for containerd's filter syntax.
#include "snapshotter/filters.h"

#include <cctype>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/go_utf8.h"
#include "base/status_macros.h"

namespace snapshotter {
namespace {

bool IsFieldChar(char c) {
  return c == '_' || std::isalnum(static_cast<unsigned char>(c));
}

bool IsQuote(char c) { return c == '"' || c == '/' || c == '|'; }

bool IsOperatorChar(char c) { return c == '=' || c == '!' || c == '~'; }

// Go's unicode.IsSpace.
bool IsSpaceRune(uint32_t cp) {
  switch (cp) {
    case '\t': case '\n': case '\v': case '\f': case '\r': case ' ':
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202F: case 0x205F: case 0x3000:
      return true;
  }
  return cp >= 0x2000 && cp <= 0x200A;
}

// Go's unicode.IsGraphic (letters, marks, numbers, punctuation, symbols and
// Zs spaces), which containerd's isValueRune asks of a bare value's runes
// past the first (IsLetter, IsDigit, IsNumber, IsPunct are subsets): not a
// control or format character (U+200B, U+00AD, ZWJ), a private-use or an
// unassigned code point. RE2's Unicode tables stand in for Go's.
bool IsGraphicRune(absl::string_view rune) {
  static const RE2* const graphic =
      new RE2("[\\p{L}\\p{M}\\p{N}\\p{P}\\p{S}\\p{Zs}]");
  return RE2::FullMatch(re2::StringPiece(rune.data(), rune.size()), *graphic);
}

// Whether regexp `re`, which RE2 accepted, holds \C (any byte): RE2 takes
// it, Go's regexp (containerd compiles a ~= value with it) refuses it as an
// invalid escape sequence. Not when the backslash is itself escaped ("\\C"
// is a backslash, then C), nor within \Q...\E, which Go reads as literal
// text up to the first \E (or the end). RE2 refuses \C and \Q inside a
// character class, so classes need no tracking here.
bool HasAnyByteEscape(absl::string_view re) {
  for (size_t i = 0; i + 1 < re.size(); ++i) {
    if (re[i] != '\\') continue;
    const char escaped = re[i + 1];
    if (escaped == 'C') return true;
    if (escaped == 'Q') {
      size_t end = re.find("\\E", i + 2);
      if (end == absl::string_view::npos) return false;
      i = end;  // then past the E below
    }
    ++i;  // the escaped character
  }
  return false;
}

// What the filter strings parsed so far used of the limits.
struct Budget {
  size_t selectors = 0;
  int regexp_size = 0;
};

// Scans one filter string.
class Parser {
 public:
  Parser(absl::string_view input, Budget* budget)
      : in_(input), budget_(budget) {}

  absl::StatusOr<std::vector<Selector>> Parse() {
    // As containerd's scanner: a NUL, an invalid UTF-8 sequence or a
    // U+FFFD anywhere is an error.
    for (size_t i = 0; i < in_.size();) {
      uint32_t cp = 0;
      size_t n = base::DecodeGoRune(in_.substr(i), &cp);
      if (n == 0 || cp == 0 || cp == 0xFFFD) {
        pos_ = i;
        return Error(cp == 0 && n != 0 ? "unexpected NUL"
                                       : "invalid UTF-8 (or U+FFFD)");
      }
      i += n;
    }
    std::vector<Selector> all;
    while (true) {
      ASSIGN_OR_RETURN(auto sel, ParseSelector());
      all.push_back(std::move(sel));
      // containerd's parser looks at the very next character here: no
      // space before ',' or the end.
      if (AtEnd()) break;
      if (in_[pos_] != ',') return Error("expected ',' or end of filter");
      ++pos_;
    }
    return all;
  }

 private:
  bool AtEnd() const { return pos_ >= in_.size(); }

  // The length of the space (Go's unicode.IsSpace) at pos_, or 0.
  size_t SpaceAt() const {
    if (AtEnd()) return 0;
    uint32_t cp = 0;
    size_t n = base::DecodeGoRune(in_.substr(pos_), &cp);
    return n != 0 && IsSpaceRune(cp) ? n : 0;
  }

  void SkipSpace() {
    while (size_t n = SpaceAt()) pos_ += n;
  }

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(
        "filter \"", in_, "\": parse error at position ", pos_, ": ", what));
  }

  absl::StatusOr<Selector> ParseSelector() {
    if (++budget_->selectors > kMaxFilterSelectors) {
      return absl::InvalidArgumentError(absl::StrCat(
          "filters: more than ", kMaxFilterSelectors, " selectors"));
    }
    Selector sel;
    while (true) {
      ASSIGN_OR_RETURN(auto field, ParseField());
      sel.fieldpath.push_back(std::move(field));
      // No space before a '.' (one after it is skipped by ParseField).
      if (!AtEnd() && in_[pos_] == '.') {
        ++pos_;
        continue;
      }
      break;
    }
    if (sel.fieldpath[0] == "labels") {
      sel.label_key =
          absl::StrJoin(sel.fieldpath.begin() + 1, sel.fieldpath.end(), ".");
    }
    // A presence test ends right there: a space before ',' or the end
    // is an error, as in containerd.
    if (AtEnd() || in_[pos_] == ',') return sel;
    SkipSpace();
    // containerd scans an operator as the whole run of '=', '!' and '~'.
    size_t op_start = pos_;
    while (!AtEnd() && IsOperatorChar(in_[pos_])) ++pos_;
    absl::string_view op = in_.substr(op_start, pos_ - op_start);
    if (op == "==") {
      sel.op = Selector::Op::kEqual;
    } else if (op == "!=") {
      sel.op = Selector::Op::kNotEqual;
    } else if (op == "~=") {
      sel.op = Selector::Op::kMatches;
    } else {
      pos_ = op_start;
      return Error("expected an operator (==, != or ~=)");
    }
    SkipSpace();
    ASSIGN_OR_RETURN(auto value, ParseValue(sel.op == Selector::Op::kMatches));
    sel.value = std::move(value);
    if (sel.op == Selector::Op::kMatches) {
      sel.re = std::make_shared<RE2>(sel.value, RE2::Quiet);
      if (!sel.re->ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("filter \"", in_, "\": invalid regular expression \"",
                         sel.value, "\": ", sel.re->error()));
      }
      if (HasAnyByteEscape(sel.value)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "filter \"", in_, "\": invalid regular expression \"", sel.value,
            "\": invalid escape sequence: \\C (any byte: containerd's Go "
            "regexp does not support it)"));
      }
      budget_->regexp_size += sel.re->ProgramSize();
      if (budget_->regexp_size > kMaxFilterRegexpSize) {
        return absl::InvalidArgumentError(absl::StrCat(
            "filters: regular expressions too large (over ",
            kMaxFilterRegexpSize, " RE2 instructions together)"));
      }
    }
    return sel;
  }

  absl::StatusOr<std::string> ParseField() {
    SkipSpace();
    if (AtEnd()) return Error("expected a field");
    if (in_[pos_] == '"') return ParseQuoted();
    size_t start = pos_;
    while (!AtEnd() && IsFieldChar(in_[pos_])) ++pos_;
    if (pos_ == start) return Error("expected a field or a quoted string");
    return std::string(in_.substr(start, pos_ - start));
  }

  absl::StatusOr<std::string> ParseValue(bool allow_alt_quotes) {
    if (AtEnd()) return Error("expected a value");
    char c = in_[pos_];
    if (IsQuote(c)) {
      if (c != '"' && !allow_alt_quotes) return Error("invalid quote");
      return ParseQuoted();
    }
    // containerd reads '.' and ',' here as separators, and '=', '!', '~'
    // as an operator, not a value.
    if (c == '.' || c == ',' || IsOperatorChar(c)) {
      return Error("expected a value");
    }
    // Its first character whatever it is (the input is valid UTF-8, see
    // Parse), then up to a ',', a space or a rune that is not graphic (a
    // control or format character, private use, unassigned).
    size_t start = pos_;
    uint32_t cp = 0;
    pos_ += base::DecodeGoRune(in_.substr(pos_), &cp);
    while (!AtEnd() && in_[pos_] != ',' && SpaceAt() == 0) {
      size_t n = base::DecodeGoRune(in_.substr(pos_), &cp);
      const bool graphic = cp < 0x80 ? cp >= 0x20 && cp < 0x7F
                                     : IsGraphicRune(in_.substr(pos_, n));
      if (!graphic) break;
      pos_ += n;
    }
    return std::string(in_.substr(start, pos_ - start));
  }

  // Reads a quoted string starting at the quote, with Go-style escapes.
  absl::StatusOr<std::string> ParseQuoted() {
    const char quote = in_[pos_++];
    std::string out;
    while (true) {
      if (AtEnd()) return Error("quoted string not terminated");
      char c = in_[pos_++];
      if (c == quote) return out;
      if (c == '\n') return Error("quoted string not terminated");
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (AtEnd()) return Error("quoted string not terminated");
      char e = in_[pos_++];
      switch (e) {
        case 'a': out.push_back('\a'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'v': out.push_back('\v'); break;
        case '\\': out.push_back('\\'); break;
        case 'x': {
          auto v = ParseDigits(16, 2);
          if (!v) return Error("invalid \\x escape");
          out.push_back(static_cast<char>(*v));
          break;
        }
        case 'u':
        case 'U': {
          auto v = ParseDigits(16, e == 'u' ? 4 : 8);
          if (!v || *v > 0x10FFFF) return Error("invalid unicode escape");
          AppendUtf8(*v, &out);
          break;
        }
        default:
          if (e == quote) {
            out.push_back(e);
          } else if (e >= '0' && e <= '7') {
            --pos_;
            auto v = ParseDigits(8, 3);
            if (!v || *v > 255) return Error("invalid octal escape");
            out.push_back(static_cast<char>(*v));
          } else {
            return Error(absl::StrCat("invalid escape \\", std::string(1, e)));
          }
      }
    }
  }

  std::optional<uint32_t> ParseDigits(int base, int count) {
    uint32_t v = 0;
    for (int i = 0; i < count; ++i) {
      if (AtEnd()) return std::nullopt;
      char c = in_[pos_++];
      int d;
      if (c >= '0' && c <= '9') {
        d = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        d = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        d = c - 'A' + 10;
      } else {
        return std::nullopt;
      }
      if (d >= base) return std::nullopt;
      v = v * base + d;
    }
    return v;
  }

  static void AppendUtf8(uint32_t cp, std::string* out) {
    // Go's utf8.EncodeRune writes a surrogate as U+FFFD.
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  absl::string_view in_;
  Budget* budget_;
  size_t pos_ = 0;
};

// Looks a selector's field up in a snapshot's info (containerd's adaptor).
std::optional<absl::string_view> FieldOf(const InfoView& info,
                                         const Selector& sel) {
  const std::vector<std::string>& path = sel.fieldpath;
  if (path.empty()) return std::nullopt;
  const std::string& head = path[0];
  if (head == "kind") {
    if (info.kind == Kind::kUnknown) return std::nullopt;
    return KindName(info.kind);
  }
  if (head == "name") return info.name;
  if (head == "parent") return info.parent;
  if (head == "labels") {
    const std::string* value = info.Label(sel.label_key);
    if (value == nullptr) return std::nullopt;
    return absl::string_view(*value);
  }
  return std::nullopt;
}

bool SelectorMatches(const Selector& sel, const InfoView& info) {
  std::optional<absl::string_view> value = FieldOf(info, sel);
  switch (sel.op) {
    case Selector::Op::kPresent:
      return value.has_value();
    case Selector::Op::kEqual:
      return value.has_value() && *value == sel.value;
    case Selector::Op::kNotEqual:
      return value.value_or("") != sel.value;
    case Selector::Op::kMatches: {
      absl::string_view v = value.value_or("");
      return RE2::PartialMatch(re2::StringPiece(v.data(), v.size()), *sel.re);
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<SnapshotFilter> SnapshotFilter::Parse(
    const std::vector<std::string>& filters) {
  SnapshotFilter f;
  // As containerd's filters.ParseAll: "" is Parse's "always", and OR with
  // always matches everything; the other strings must still parse.
  bool always = false;
  Budget budget;
  for (const std::string& text : filters) {
    if (text.empty()) {
      always = true;
      continue;
    }
    ASSIGN_OR_RETURN(auto all, Parser(text, &budget).Parse());
    f.any_of_.push_back(std::move(all));
  }
  if (always) f.any_of_.clear();
  for (const auto& all : f.any_of_) {
    for (const Selector& sel : all) {
      f.has_regexps_ = f.has_regexps_ || sel.op == Selector::Op::kMatches;
    }
  }
  return f;
}

bool SnapshotFilter::Matches(const Info& info) const {
  if (any_of_.empty()) return true;
  InfoView::LabelRefs labels;
  return Matches(InfoView::Of(info, &labels));
}

bool SnapshotFilter::Matches(const InfoView& info,
                             const std::atomic<bool>* stop) const {
  if (any_of_.empty()) return true;
  for (const auto& all : any_of_) {
    bool ok = true;
    for (const Selector& sel : all) {
      if (stop != nullptr && stop->load(std::memory_order_relaxed)) {
        return false;
      }
      if (!SelectorMatches(sel, info)) {
        ok = false;
        break;
      }
    }
    if (ok) return true;
  }
  return false;
}

}  // namespace snapshotter
