// Key values as text.
#include "snapshotter/config/value_text.h"

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

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
  return absl::StrCat("\"", absl::CEscape(text), "\"");
}

}  // namespace config
}  // namespace snapshotter
