// Key values as text.
#include "snapshotter/config/value_text.h"

#include <cstdint>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/go_utf8.h"

namespace snapshotter {
namespace config {

std::string TypeName(KeyType type) {
  switch (type) {
    case KeyType::kInteger:
      return "an integer";
    case KeyType::kBool:
      return "a boolean (true or false)";
    case KeyType::kString:
      return "a string";
    case KeyType::kStringList:
      return "an array of strings";
  }
  return "unknown";
}

absl::StatusOr<Value> ValueFromText(KeyType type, absl::string_view text) {
  switch (type) {
    case KeyType::kString:
      return Value(std::string(text));
    case KeyType::kBool:
      if (text == "true") return Value(true);
      if (text == "false") return Value(false);
      break;
    case KeyType::kInteger:
      if (int64_t n = 0; absl::SimpleAtoi(text, &n)) return Value(n);
      break;
    case KeyType::kStringList:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("must be ", TypeName(type)));
}

std::string ValueText(const Value& value) {
  struct Text {
    std::string operator()(int64_t n) const { return absl::StrCat(n); }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(const std::string& s) const {
      // Plain where that reads back unambiguously in a "key=value" line.
      bool plain = !s.empty() && absl::c_all_of(s, [](char c) {
        return absl::ascii_isgraph(static_cast<unsigned char>(c)) &&
               c != '"' && c != '\\';
      });
      // UTF-8 stays readable; control bytes, quotes and backslashes are escaped.
      return plain ? s : absl::StrCat("\"", absl::Utf8SafeCEscape(s), "\"");
    }
    std::string operator()(const std::vector<std::string>& list) const {
      return absl::StrCat(
          "[",
          absl::StrJoin(list, ", ",
                        [](std::string* out, const std::string& s) {
                          absl::StrAppend(out, Quoted(s));
                        }),
          "]");
    }
  };
  return std::visit(Text(), value);
}

std::string TomlValueText(const Value& value) {
  if (const std::string* s = std::get_if<std::string>(&value)) return Quoted(*s);
  return ValueText(value);
}

std::string Quoted(absl::string_view text) {
  std::string out = "\"";
  absl::string_view rest = text;
  while (!rest.empty()) {
    const unsigned char c = static_cast<unsigned char>(rest[0]);
    if (c >= 0x80) {
      uint32_t rune = 0;
      const size_t n = base::DecodeGoRune(rest, &rune);
      if (n == 0) {
        // No TOML string holds it; octal (as CEscape wrote it) cannot be
        // read as a character (TOML 1.1's \xHH is the code point U+00HH).
        absl::StrAppendFormat(&out, "\\%03o", c);
        rest.remove_prefix(1);
      } else {
        out.append(rest.data(), n);
        rest.remove_prefix(n);
      }
      continue;
    }
    rest.remove_prefix(1);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          absl::StrAppendFormat(&out, "\\u%04X", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

}  // namespace config
}  // namespace snapshotter
