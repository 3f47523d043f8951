// Streaming ustar/PAX/GNU tar reader with raw positions (tar-rs semantics).
#include "kata_volume/verity/tar_reader.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/status_macros.h"

namespace guest_pull::verity {

namespace {

// Extension payloads (long names, PAX records) are read into memory; real
// ones are tiny, this bound stops a hostile header from exhausting memory.
constexpr uint64_t kMaxExtensionSize = 16 * 1024 * 1024;

// Raw header field offsets (POSIX ustar / GNU).
constexpr size_t kNameOff = 0, kNameLen = 100;
constexpr size_t kModeOff = 100, kUidOff = 108, kGidOff = 116, kIdLen = 8;
constexpr size_t kSizeOff = 124, kMtimeOff = 136, kNum12Len = 12;
constexpr size_t kChksumOff = 148, kChksumLen = 8;
constexpr size_t kTypeOff = 156;
constexpr size_t kLinkOff = 157, kLinkLen = 100;
constexpr size_t kMagicOff = 257, kVersionOff = 263;
constexpr size_t kDevMajorOff = 329, kDevMinorOff = 337;
constexpr size_t kPrefixOff = 345, kPrefixLen = 155;
constexpr size_t kGnuSparseOff = 386, kGnuIsExtendedOff = 482, kGnuRealSizeOff = 483;
constexpr size_t kSparseEntryLen = 24, kGnuSparseEntries = 4, kExtSparseEntries = 21;
constexpr size_t kExtIsExtendedOff = 504;

absl::string_view Field(const char* header, size_t off, size_t len) {
  return absl::string_view(header + off, len);
}

// tar-rs `truncate`: up to the first NUL.
absl::string_view Truncate(absl::string_view s) {
  size_t nul = s.find('\0');
  return nul == absl::string_view::npos ? s : s.substr(0, nul);
}

// UTF-8 encodings of the characters with the Unicode White_Space property,
// which Rust's `str::trim` removes (not only ASCII whitespace).
constexpr absl::string_view kRustWhitespace[] = {
    "\t", "\n", "\v", "\f", "\r", " ",
    "\xc2\x85", "\xc2\xa0", "\xe1\x9a\x80",
    "\xe2\x80\x80", "\xe2\x80\x81", "\xe2\x80\x82", "\xe2\x80\x83", "\xe2\x80\x84",
    "\xe2\x80\x85", "\xe2\x80\x86", "\xe2\x80\x87", "\xe2\x80\x88", "\xe2\x80\x89",
    "\xe2\x80\x8a", "\xe2\x80\xa8", "\xe2\x80\xa9", "\xe2\x80\xaf", "\xe2\x81\x9f",
    "\xe3\x80\x80"};

// Rust's `str::trim`.
absl::string_view TrimRustWhitespace(absl::string_view s) {
  for (bool again = true; again;) {
    again = false;
    for (absl::string_view ws : kRustWhitespace) {
      if (absl::ConsumePrefix(&s, ws)) again = true;
      if (absl::ConsumeSuffix(&s, ws)) again = true;
    }
  }
  return s;
}

bool IsUstar(const char* h) {
  return std::memcmp(h + kMagicOff, "ustar\0", 6) == 0 && std::memcmp(h + kVersionOff, "00", 2) == 0;
}

bool IsGnu(const char* h) {
  return std::memcmp(h + kMagicOff, "ustar ", 6) == 0 && std::memcmp(h + kVersionOff, " \0", 2) == 0;
}

std::string HeaderPath(const char* h) {
  absl::string_view name = Truncate(Field(h, kNameOff, kNameLen));
  if (IsUstar(h)) {
    absl::string_view prefix = Truncate(Field(h, kPrefixOff, kPrefixLen));
    if (!prefix.empty()) return absl::StrCat(prefix, "/", name);
  }
  return std::string(name);
}

std::optional<std::string> HeaderLinkName(const char* h) {
  if (h[kLinkOff] == 0) return std::nullopt;
  return std::string(Truncate(Field(h, kLinkOff, kLinkLen)));
}

// Rust's `str::parse::<u64>`: an optional '+', then decimal digits only (no
// whitespace, which absl::SimpleAtoi would skip).
std::optional<uint64_t> ParseRustU64(absl::string_view v) {
  if (!v.empty() && v[0] == '+') v.remove_prefix(1);
  if (v.empty()) return std::nullopt;
  uint64_t out = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    if (out > (UINT64_MAX - (c - '0')) / 10) return std::nullopt;
    out = out * 10 + (c - '0');
  }
  return out;
}

// One parsed PAX record (tar-rs PaxExtensions: records split on '\n', each
// "<len> <key>=<value>" with len == line length + 1).
struct PaxRecord {
  absl::string_view key, value;
};

// Iterates records; the end yields false.
class PaxIterator {
 public:
  explicit PaxIterator(absl::string_view data) : data_(data) {}
  // Returns false at the end; otherwise *well_formed says whether the
  // record parsed, into *record.
  bool Next(PaxRecord* record, bool* well_formed) {
    if (done_) return false;
    size_t nl = data_.find('\n');
    absl::string_view line = nl == absl::string_view::npos ? data_ : data_.substr(0, nl);
    if (nl == absl::string_view::npos) {
      done_ = true;
    } else {
      data_.remove_prefix(nl + 1);
    }
    if (line.empty()) {
      done_ = true;
      return false;
    }
    *well_formed = false;
    size_t sp = line.find(' ');
    if (sp == absl::string_view::npos) return true;
    std::optional<uint64_t> reported = ParseRustU64(line.substr(0, sp));
    if (!reported.has_value() || line.size() + 1 != *reported) return true;
    absl::string_view kv = line.substr(sp + 1);
    size_t eq = kv.find('=');
    if (eq == absl::string_view::npos) return true;
    *record = PaxRecord{kv.substr(0, eq), kv.substr(eq + 1)};
    *well_formed = true;
    return true;
  }

 private:
  absl::string_view data_;
  bool done_ = false;
};

// tar-rs `pax_extensions_value`: first record with `key`, parsed as u64;
// any malformed record before it ends the search.
std::optional<uint64_t> PaxNumber(absl::string_view pax, absl::string_view key) {
  PaxIterator it(pax);
  PaxRecord rec;
  bool well_formed = false;
  while (it.Next(&rec, &well_formed)) {
    if (!well_formed) return std::nullopt;
    if (rec.key != key) continue;
    return ParseRustU64(rec.value);
  }
  return std::nullopt;
}

// tar-rs path lookup: first well-formed record with `key`.
std::optional<std::string> PaxString(absl::string_view pax, absl::string_view key) {
  PaxIterator it(pax);
  PaxRecord rec;
  bool well_formed = false;
  while (it.Next(&rec, &well_formed)) {
    if (well_formed && rec.key == key) return std::string(rec.value);
  }
  return std::nullopt;
}

// The "SCHILY.xattr.<name>" records of a PAX payload, framed by their
// length prefix ("<len> <key>=<value>\n", len counting the whole record),
// not split on '\n' as tar-rs does: xattr values are binary.
std::vector<std::pair<std::string, std::string>> PaxXattrs(absl::string_view pax) {
  constexpr absl::string_view kPrefix = "SCHILY.xattr.";
  std::vector<std::pair<std::string, std::string>> out;
  while (!pax.empty()) {
    const size_t sp = pax.find(' ');
    std::optional<uint64_t> len =
        sp == absl::string_view::npos ? std::nullopt : ParseRustU64(pax.substr(0, sp));
    if (!len.has_value() || *len <= sp + 1 || *len > pax.size() || pax[*len - 1] != '\n') break;
    const absl::string_view kv = pax.substr(sp + 1, *len - sp - 2);
    pax.remove_prefix(*len);
    const size_t eq = kv.find('=');
    if (eq == absl::string_view::npos) break;
    const absl::string_view key = kv.substr(0, eq);
    if (absl::StartsWith(key, kPrefix) && key.size() > kPrefix.size()) {
      out.emplace_back(std::string(key.substr(kPrefix.size())), std::string(kv.substr(eq + 1)));
    }
  }
  return out;
}

// GNU long name/link payloads: one trailing NUL is dropped.
std::string StripOneNul(std::string s) {
  if (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}

}  // namespace

std::optional<uint64_t> ParseTarOctal(absl::string_view field) {
  absl::string_view s = TrimRustWhitespace(Truncate(field));
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  uint64_t out = 0;
  for (char c : s) {
    if (c < '0' || c > '7') return std::nullopt;
    if (out > (UINT64_MAX >> 3)) return std::nullopt;
    out = (out << 3) | static_cast<uint64_t>(c - '0');
  }
  return out;
}

std::optional<uint64_t> ParseTarNumber(absl::string_view field) {
  if (field.empty()) return std::nullopt;
  if ((static_cast<unsigned char>(field[0]) & 0x80) == 0) return ParseTarOctal(field);
  // GNU base-256: an 8-byte field keeps the low 7 bits of its first byte;
  // longer fields use their last 8 bytes.
  uint64_t out = 0;
  size_t skip = 1;
  if (field.size() == 8) {
    out = static_cast<unsigned char>(field[0]) ^ 0x80;
  } else {
    skip = field.size() - 8;
  }
  for (size_t i = skip; i < field.size(); ++i) {
    out = (out << 8) | static_cast<unsigned char>(field[i]);
  }
  return out;
}

absl::Status TarReader::ReadExact(char* buffer, size_t size) {
  size_t done = 0;
  while (done < size) {
    ASSIGN_OR_RETURN(size_t n, source_->Read(buffer + done, size - done));
    if (n == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("truncated tar archive: unexpected end of data at offset ", position_));
    }
    done += n;
    position_ += n;
  }
  return absl::OkStatus();
}

absl::Status TarReader::Skip(uint64_t amount) {
  while (amount > 0) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(amount, size_t{1} << 30));
    ASSIGN_OR_RETURN(size_t n, source_->Skip(chunk));
    if (n == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("truncated tar archive: unexpected end of data at offset ", position_));
    }
    position_ += n;
    amount -= n;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> TarReader::ReadSmallData(uint64_t size) {
  if (size > kMaxExtensionSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tar extension header at offset ", position_, " is too large (", size, " bytes)"));
  }
  std::string out(static_cast<size_t>(size), '\0');
  RETURN_IF_ERROR(ReadExact(out.data(), out.size()));
  data_remaining_ = 0;
  return out;
}

absl::StatusOr<bool> TarReader::ReadRawHeader(char* header, uint64_t* header_pos) {
  RETURN_IF_ERROR(Skip(next_header_ - position_));
  *header_pos = position_;
  size_t done = 0;
  while (done < kTarBlockSize) {
    ASSIGN_OR_RETURN(size_t n, source_->Read(header + done, kTarBlockSize - done));
    if (n == 0) break;
    done += n;
    position_ += n;
  }
  if (done == 0) return false;  // EOF on a block boundary ends the archive
  if (done < kTarBlockSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("truncated tar archive: partial header block at offset ", *header_pos));
  }
  if (std::all_of(header, header + kTarBlockSize, [](char c) { return c == 0; })) return false;
  uint32_t sum = 8 * 32;
  for (size_t i = 0; i < kTarBlockSize; ++i) {
    if (i >= kChksumOff && i < kChksumOff + kChksumLen) continue;
    sum += static_cast<unsigned char>(header[i]);
  }
  std::optional<uint64_t> stored = ParseTarOctal(Field(header, kChksumOff, kChksumLen));
  if (!stored.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid tar header at offset ", *header_pos, ": unparsable checksum"));
  }
  if (*stored != sum) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid tar header at offset ", *header_pos, ": checksum mismatch"));
  }
  return true;
}

absl::StatusOr<const TarEntry*> TarReader::Next() {
  if (ended_) return nullptr;
  std::optional<std::string> long_name, long_link, pax;
  for (int processed = 1;; ++processed) {
    char h[kTarBlockSize];
    uint64_t header_pos = 0;
    ASSIGN_OR_RETURN(bool got, ReadRawHeader(h, &header_pos));
    if (!got) {
      if (processed > 1) {
        return absl::InvalidArgumentError(
            "truncated tar archive: extension headers without a following member");
      }
      ended_ = true;
      return nullptr;
    }
    std::optional<uint64_t> size = ParseTarNumber(Field(h, kSizeOff, kNum12Len));
    if (!size.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid tar header at offset ", header_pos, ": unparsable size"));
    }
    TarEntry e;
    e.header_position = header_pos;
    e.data_position = header_pos + kTarBlockSize;
    e.type_flag = h[kTypeOff];
    e.is_ustar_or_gnu = IsUstar(h) || IsGnu(h);
    e.uid = ParseTarNumber(Field(h, kUidOff, kIdLen));
    e.gid = ParseTarNumber(Field(h, kGidOff, kIdLen));
    if (pax.has_value()) {
      // tar-rs applies PAX uid/gid to the header and PAX size when the
      // header's own size is zero, for every raw member after the 'x' one.
      if (auto v = PaxNumber(*pax, "uid")) e.uid = v;
      if (auto v = PaxNumber(*pax, "gid")) e.gid = v;
      if (*size == 0) {
        if (auto v = PaxNumber(*pax, "size")) size = v;
      }
    }
    e.size = *size;
    if (e.size > UINT64_MAX - e.data_position - kTarBlockSize) {
      return absl::InvalidArgumentError(absl::StrCat("tar member size overflow at ", header_pos));
    }
    next_header_ = e.data_position + ((e.size + kTarBlockSize - 1) & ~uint64_t{kTarBlockSize - 1});
    data_remaining_ = e.size;

    const char type = e.type_flag;
    if (e.is_ustar_or_gnu && (type == 'L' || type == 'K' || type == 'x')) {
      std::optional<std::string>* slot = type == 'L' ? &long_name : type == 'K' ? &long_link : &pax;
      if (slot->has_value()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "invalid tar archive at offset ", header_pos,
            ": two extension headers of the same kind describe one member"));
      }
      ASSIGN_OR_RETURN(std::string payload, ReadSmallData(e.size));
      *slot = std::move(payload);
      continue;
    }

    e.header_path = HeaderPath(h);
    e.header_link_name = HeaderLinkName(h);
    if (long_name.has_value()) {
      e.path = StripOneNul(*long_name);
    } else if (auto p = pax.has_value() ? PaxString(*pax, "path") : std::nullopt) {
      e.path = *p;
    } else {
      e.path = e.header_path;
    }
    if (long_link.has_value()) {
      e.link_name = StripOneNul(*long_link);
    } else if (auto l = pax.has_value() ? PaxString(*pax, "linkpath") : std::nullopt) {
      e.link_name = *l;
    } else {
      e.link_name = e.header_link_name;
    }
    if (auto m = ParseTarOctal(Field(h, kModeOff, kIdLen))) {
      e.mode = static_cast<uint32_t>(*m);
    }
    e.mtime = ParseTarNumber(Field(h, kMtimeOff, kNum12Len));
    if (pax.has_value()) e.xattrs = PaxXattrs(*pax);
    if (e.is_ustar_or_gnu) {
      if (auto v = ParseTarOctal(Field(h, kDevMajorOff, kIdLen))) e.dev_major = static_cast<uint32_t>(*v);
      if (auto v = ParseTarOctal(Field(h, kDevMinorOff, kIdLen))) e.dev_minor = static_cast<uint32_t>(*v);
    }

    if (type == 'S') {
      // GNU sparse member: extension blocks follow the header (before data)
      // and shift every later position, as in tar-rs.
      if (!IsGnu(h)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "invalid tar archive at offset ", header_pos, ": sparse member without a GNU header"));
      }
      uint64_t cur = 0, remaining = e.size;
      auto add_block = [&](const char* entry) -> absl::Status {
        if (entry[0] == 0 || entry[12] == 0) return absl::OkStatus();
        auto off = ParseTarNumber(absl::string_view(entry, 12));
        auto len = ParseTarNumber(absl::string_view(entry + 12, 12));
        if (!off || !len) return absl::InvalidArgumentError("invalid GNU sparse map entry");
        if (*len != 0 && (e.size - remaining) % kTarBlockSize != 0) {
          return absl::InvalidArgumentError("GNU sparse block not aligned to 512 bytes");
        }
        if (*off < cur) return absl::InvalidArgumentError("out of order GNU sparse blocks");
        if (*len > UINT64_MAX - *off) return absl::InvalidArgumentError("GNU sparse block overflow");
        cur = *off + *len;
        if (*len > remaining) {
          return absl::InvalidArgumentError("GNU sparse map larger than the member data");
        }
        remaining -= *len;
        return absl::OkStatus();
      };
      for (size_t i = 0; i < kGnuSparseEntries; ++i) {
        RETURN_IF_ERROR(add_block(h + kGnuSparseOff + i * kSparseEntryLen));
      }
      bool extended = h[kGnuIsExtendedOff] != 0;
      while (extended) {
        char ext[kTarBlockSize];
        RETURN_IF_ERROR(ReadExact(ext, sizeof(ext)));
        next_header_ += kTarBlockSize;
        for (size_t i = 0; i < kExtSparseEntries; ++i) {
          RETURN_IF_ERROR(add_block(ext + i * kSparseEntryLen));
        }
        extended = ext[kExtIsExtendedOff] != 0;
      }
      auto real_size = ParseTarNumber(Field(h, kGnuRealSizeOff, kNum12Len));
      if (!real_size || *real_size != cur || remaining > 0) {
        return absl::InvalidArgumentError("GNU sparse map does not match the member sizes");
      }
      data_remaining_ = 0;  // sparse data is never read through this reader
    }
    entry_ = std::move(e);
    return &entry_;
  }
}

absl::StatusOr<size_t> TarReader::ReadData(char* buffer, size_t size) {
  size_t want = static_cast<size_t>(std::min<uint64_t>(size, data_remaining_));
  if (want == 0) return 0;
  ASSIGN_OR_RETURN(size_t n, source_->Read(buffer, want));
  if (n == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("truncated tar archive: member data ends early at offset ", position_));
  }
  position_ += n;
  data_remaining_ -= n;
  return n;
}

absl::StatusOr<uint64_t> TarReader::Finish() {
  while (true) {
    ASSIGN_OR_RETURN(size_t n, source_->Skip(size_t{1} << 30));
    if (n == 0) break;
    position_ += n;
  }
  ended_ = true;
  data_remaining_ = 0;
  return position_;
}

}  // namespace guest_pull::verity
