// Key values as text: what flags and variables give, what --help and the
// startup log show. Internal to the config library.
#ifndef SNAPSHOTTER_CONFIG_VALUE_TEXT_H_
#define SNAPSHOTTER_CONFIG_VALUE_TEXT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "snapshotter/config/config.h"

namespace snapshotter {
namespace config {

// "a string", "a boolean (true or false)", ... for type errors.
std::string TypeName(KeyType type);

// A flag's or variable's text as a value of `type` (bool: true or false).
absl::StatusOr<Value> ValueFromText(KeyType type, absl::string_view text);

// /var/lib/x, "" (empty string), true, 1, [".*"].
std::string ValueText(const Value& value);

// A key's value as a config file writes it, for the config section of
// --help ("key = value" under "TOML"): as ValueText, but a string is always
// quoted (a file copied from --help with a bare one was a TOML syntax error).
std::string TomlValueText(const Value& value);

// "text" as a TOML basic string: a string in messages, in a list's
// ValueText and in --help's config section. " and \ are escaped, and the
// control characters (\b \t \n \f \r, the others and DEL as \uXXXX);
// UTF-8 stays as it is. A byte that is not UTF-8 (only a flag or a variable
// can carry one) is written \ooo in octal, which no TOML string can hold.
std::string Quoted(absl::string_view text);

}  // namespace config
}  // namespace snapshotter

#endif  // SNAPSHOTTER_CONFIG_VALUE_TEXT_H_
