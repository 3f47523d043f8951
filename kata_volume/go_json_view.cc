// The volume JSON as kata's Go runtime reads it.
#include "kata_volume/go_json_view.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/go_utf8.h"
#include "base/status_macros.h"

namespace kata_volume {
namespace {

using Json = nlohmann::ordered_json;

struct Field;
using Fields = std::vector<Field>;

// A field of one of kata's Go structs, by its json tag.
struct Field {
  enum Kind { kString, kUint64, kStrings, kMetadata, kStruct };
  const char* name;
  Kind kind;
  const Fields* fields = nullptr;  // kStruct: its fields
};

const Fields& MetadataHolder() {  // DirectAssignedVolume, ImagePullVolume
  static const Fields* fields = new Fields{{"metadata", Field::kMetadata}};
  return *fields;
}

const Fields& VolumeFields() {
  static const Fields* nydus = new Fields{{"config", Field::kString},
                                          {"snapshot_dir", Field::kString}};
  static const Fields* verity = new Fields{
      {"hashtype", Field::kString},  {"hash", Field::kString},
      {"blocknum", Field::kUint64},  {"blocksize", Field::kUint64},
      {"hashsize", Field::kUint64},  {"offset", Field::kUint64}};
  static const Fields* volume = new Fields{
      {"volume_type", Field::kString},
      {"source", Field::kString},
      {"fs_type", Field::kString},
      {"options", Field::kStrings},
      {"direct_volume", Field::kStruct, &MetadataHolder()},
      {"image_pull", Field::kStruct, &MetadataHolder()},
      {"nydus_image", Field::kStruct, nydus},
      {"dm_verity", Field::kStruct, verity}};
  return *volume;
}

// The next code point of UTF-8 `s` at `*i` (advanced past it); JSON text
// nlohmann accepted is valid UTF-8.
char32_t NextRune(absl::string_view s, size_t* i) {
  unsigned char c = s[*i];
  int n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  char32_t r = n == 1 ? c : c & (0x7F >> n);
  for (int k = 1; k < n && *i + k < s.size(); ++k) r = (r << 6) | (s[*i + k] & 0x3F);
  *i += n;
  return r;
}

// Whether `key` names the field `name` (ASCII lower case, digits, '_') as
// Go's decoder matches them: exactly, else under simple case folding.
bool GoFoldEquals(absl::string_view key, absl::string_view name) {
  size_t i = 0, j = 0;
  while (i < key.size() && j < name.size()) {
    char32_t r = NextRune(key, &i);
    if (r >= 'A' && r <= 'Z') r += 'a' - 'A';
    if (r == 0x212A) r = 'k';  // KELVIN SIGN
    if (r == 0x017F) r = 's';  // LATIN SMALL LETTER LONG S
    if (r != static_cast<unsigned char>(name[j++])) return false;
  }
  return i == key.size() && j == name.size();
}

// `got` may be a PairsTree node: its type is the JSON value's.
absl::Status TypeError(const std::string& field, absl::string_view expected,
                       const Json& got) {
  return absl::InvalidArgumentError(absl::StrCat(
      "KataVirtualVolume field ", field, ": expected ", expected, ", got ",
      got.type_name(), " (Go's json.Unmarshal fails)"));
}

absl::Status MergeStruct(const Json& in, const Fields& fields,
                         const std::string& path, Json* out);

// Decodes `value` (a PairsTree node) into `field` of `*out` as Go does
// into what is there. `*backing` (kStrings): the elements of the slice's
// backing array, which outlive its length.
absl::Status MergeField(const Field& field, const Json& value,
                        const std::string& path, Json* out, Json* backing) {
  const std::string name = path + field.name;
  if (value.is_null()) {
    // A pointer, a map or a slice becomes nil; a string or number stays.
    if (field.kind != Field::kString && field.kind != Field::kUint64) {
      out->erase(field.name);
      *backing = Json::array();
    }
    return absl::OkStatus();
  }
  switch (field.kind) {
    case Field::kString:
      if (!value.is_string()) return TypeError(name, "a string", value);
      (*out)[field.name] = value;
      return absl::OkStatus();
    case Field::kUint64:
      if (!value.is_number_unsigned()) {
        return TypeError(name, "an unsigned 64-bit integer", value);
      }
      (*out)[field.name] = value;
      return absl::OkStatus();
    case Field::kStrings: {
      if (!value.is_array()) {
        return TypeError(name, "an array of strings", value);
      }
      // Go sets the slice's length to zero and decodes each element into
      // what its backing array holds there (a null element keeps it, ""
      // past what it ever held); an empty array leaves a new slice.
      if (!backing->is_array() || value.empty()) *backing = Json::array();
      for (size_t i = 0; i < value.size(); ++i) {
        if (i == backing->size()) backing->push_back("");
        if (value[i].is_string()) {
          (*backing)[i] = value[i];
        } else if (!value[i].is_null()) {
          return TypeError(absl::StrCat(name, "[", i, "]"), "a string",
                           value[i]);
        }
      }
      Json& slice = (*out)[field.name] = Json::array();
      for (size_t i = 0; i < value.size(); ++i) slice.push_back((*backing)[i]);
      return absl::OkStatus();
    }
    case Field::kMetadata: {
      if (!value.is_object()) return TypeError(name, "an object", value);
      Json& map = (*out)[field.name];
      if (!map.is_object()) map = Json::object();
      for (const Json& pair : value["pairs"]) {
        const std::string key = pair[0].get<std::string>();
        const Json& v = pair[1];
        if (v.is_null()) {
          map[key] = "";
        } else if (!v.is_string()) {
          return TypeError(absl::StrCat(name, "[\"", key, "\"]"), "a string",
                           v);
        } else {
          map[key] = v;
        }
      }
      return absl::OkStatus();
    }
    case Field::kStruct: {
      if (!value.is_object()) return TypeError(name, "an object", value);
      Json& sub = (*out)[field.name];
      if (!sub.is_object()) sub = Json::object();
      return MergeStruct(value, *field.fields, name + ".", &sub);
    }
  }
  return absl::OkStatus();
}

// The code unit of a \uXXXX escape at the start of `s`, or -1.
int EscapedUnit(absl::string_view s) {
  int unit = 0;
  if (s.size() < 6 || s[0] != '\\' || s[1] != 'u' ||
      !absl::SimpleHexAtoi(s.substr(2, 4), &unit)) {
    return -1;
  }
  return unit;
}

// `json` with what Go's decoder takes in a string and nlohmann refuses
// made U+FFFD, as Go reads it: each byte of invalid UTF-8, and a \u escape
// of a surrogate not in a pair.
std::string AsGoReadsStrings(absl::string_view json) {
  constexpr absl::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  bool in_string = false;
  for (size_t i = 0; i < json.size();) {  // each turn consumes a byte or more
    const char c = json[i];
    if (!in_string || c == '"') {
      in_string = in_string != (c == '"');
      out += c;
      ++i;
    } else if (c == '\\') {
      const int unit = EscapedUnit(json.substr(i));
      const int next = EscapedUnit(json.substr(std::min(i + 6, json.size())));
      if (unit >= 0xD800 && unit <= 0xDBFF && next >= 0xDC00 && next <= 0xDFFF) {
        absl::StrAppend(&out, json.substr(i, 12));  // a pair
        i += 12;
      } else if (unit >= 0xD800 && unit <= 0xDFFF) {
        absl::StrAppend(&out, kReplacement);
        i += 6;
      } else {
        const size_t n = std::min<size_t>(unit >= 0 ? 6 : 2, json.size() - i);
        absl::StrAppend(&out, json.substr(i, n));
        i += n;
      }
    } else if (uint32_t cp; size_t n = base::DecodeGoRune(json.substr(i), &cp)) {
      absl::StrAppend(&out, json.substr(i, n));
      i += n;
    } else {
      absl::StrAppend(&out, kReplacement);
      ++i;
    }
  }
  return out;
}

// JSON text as a tree whose every object is {"pairs": [[key, value], ...]}
// in the text's order, repeated keys kept (a parsed object keeps only the
// last of them, and Go merges objects a repeated key holds).
class PairsTree : public nlohmann::json_sax<Json> {
 public:
  Json root;
  std::string error;

  bool null() override { return Add(nullptr); }
  bool boolean(bool v) override { return Add(v); }
  bool number_integer(number_integer_t v) override { return Add(v); }
  bool number_unsigned(number_unsigned_t v) override { return Add(v); }
  bool number_float(number_float_t v, const string_t&) override { return Add(v); }
  bool string(string_t& v) override { return Add(v); }
  bool binary(binary_t&) override { return false; }  // not in JSON text
  bool start_object(std::size_t) override {
    open_.push_back({Json::object({{"pairs", Json::array()}}), ""});
    return true;
  }
  bool key(string_t& k) override {
    open_.back().key = k;
    return true;
  }
  bool end_object() override { return Close(); }
  bool start_array(std::size_t) override {
    open_.push_back({Json::array(), ""});
    return true;
  }
  bool end_array() override { return Close(); }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& e) override {
    error = e.what();
    return false;
  }

 private:
  struct Open {
    Json value;
    std::string key;  // an object's key whose value comes next
  };
  bool Add(Json v) {
    if (open_.empty()) {
      root = std::move(v);
    } else if (open_.back().value.is_object()) {
      Json pair = Json::array();
      pair.push_back(open_.back().key);
      pair.push_back(std::move(v));
      open_.back().value["pairs"].push_back(std::move(pair));
    } else {
      open_.back().value.push_back(std::move(v));
    }
    return true;
  }
  bool Close() {
    Json done = std::move(open_.back().value);
    open_.pop_back();
    return Add(std::move(done));
  }
  std::vector<Open> open_;
};

absl::Status MergeStruct(const Json& in, const Fields& fields,
                         const std::string& path, Json* out) {
  // Slices' backing arrays, by field (only the top struct has a slice, and
  // it is merged from one object).
  Json backings = Json::object();
  for (const Json& pair : in["pairs"]) {
    const std::string key = pair[0].get<std::string>();
    for (const Field& field : fields) {
      if (GoFoldEquals(key, field.name)) {
        RETURN_IF_ERROR(
            MergeField(field, pair[1], path, out, &backings[field.name]));
        break;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Json> GoJsonView(absl::string_view json) {
  if (absl::StartsWith(json, "\xEF\xBB\xBF")) {  // nlohmann would skip it
    return absl::InvalidArgumentError(
        "KataVirtualVolume JSON is malformed: it starts with a byte order mark "
        "(Go: invalid character looking for beginning of value)");
  }
  PairsTree tree;
  const std::string text = AsGoReadsStrings(json);
  if (!Json::sax_parse(text.begin(), text.end(), &tree)) {
    return absl::InvalidArgumentError(
        absl::StrCat("KataVirtualVolume JSON is malformed: ", tree.error));
  }
  Json out = Json::object();
  if (tree.root.is_null()) return out;  // Unmarshal leaves the struct as it was
  if (!tree.root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KataVirtualVolume must be a JSON object, got ", tree.root.type_name(),
        " (Go's json.Unmarshal fails)"));
  }
  RETURN_IF_ERROR(MergeStruct(tree.root, VolumeFields(), "", &out));
  return out;
}

}  // namespace kata_volume
