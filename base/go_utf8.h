// UTF-8 as Go's unicode/utf8 reads it, for inputs whose Go reading the
// project must match (containerd's filters, kata's JSON).
#ifndef BASE_GO_UTF8_H_
#define BASE_GO_UTF8_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace base {

// The length of the UTF-8 sequence at the start of `s` as Go's
// utf8.DecodeRuneInString reads it, with its code point in `*cp`; 0 for an
// empty `s` or an invalid sequence (an overlong form, a surrogate, past
// U+10FFFF, cut short: Go's RuneError of width 1).
size_t DecodeGoRune(absl::string_view s, uint32_t* cp);

}  // namespace base

#endif  // BASE_GO_UTF8_H_
