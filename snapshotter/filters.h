// containerd's filter language for List/Walk:
//   <fieldpath>[<op><value>] joined by ',' (AND); several filter strings OR.
// Field paths are '.'-separated identifiers or "quoted" parts
// (labels."containerd.io/snapshot.ref"); operators are ==, != and ~=
// (RE2, unanchored like Go's MatchString; \C, any byte, is refused as Go's
// regexp refuses it); a selector without an operator
// tests presence. Values are bare or quoted ("...", and /.../ or |...| for
// ~=). Snapshot fields: name, parent, kind (view|active|committed),
// labels.<key>.
#ifndef SNAPSHOTTER_FILTERS_H_
#define SNAPSHOTTER_FILTERS_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "re2/re2.h"
#include "snapshotter/snapshot_types.h"

namespace snapshotter {

// Bounds on one List request's filters, all strings together: a List is
// parsed and matched on the thread that answers every read, and each ~=
// compiles a regexp (a 4 MiB request of "name~=[a-z]{1000}," took 55 s
// and 4.6 GB). containerd's own filters have a few selectors.
inline constexpr size_t kMaxFilterSelectors = 1024;
// RE2 program instructions of all ~= regexps (RE2::ProgramSize).
inline constexpr int kMaxFilterRegexpSize = 64 * 1024;

// One parsed <fieldpath>[<op><value>] term.
struct Selector {
  enum class Op { kPresent, kEqual, kNotEqual, kMatches };
  std::vector<std::string> fieldpath;
  std::string label_key;  // for labels.<key>: the key, parts joined by '.'
  Op op = Op::kPresent;
  std::string value;
  std::shared_ptr<RE2> re;  // set for kMatches
};

// A parsed set of filter strings; matches when any string's selectors all
// match. No strings, or an empty string among them, matches everything (as
// containerd's filters.ParseAll, where Parse("") is "always").
class SnapshotFilter {
 public:
  // Parses the filter strings of a List request. Errors are
  // InvalidArgument naming the filter and the position, an invalid regexp
  // (what RE2 refuses, and \C, which Go's regexp refuses), or the limit
  // (kMaxFilterSelectors, kMaxFilterRegexpSize) exceeded.
  static absl::StatusOr<SnapshotFilter> Parse(
      const std::vector<std::string>& filters);

  bool Matches(const Info& info) const;
  // The same, on a record read in place (no copy of its labels). Once
  // `*stop` is true it gives up at the next selector: false.
  bool Matches(const InfoView& info,
               const std::atomic<bool>* stop = nullptr) const;
  // Whether a selector is a ~= regexp: matching may then take long on a
  // record (seconds on a 32 KiB key when RE2's DFA gives up and its NFA
  // steps every byte), too long to do under a lock others wait for.
  bool HasRegexps() const { return has_regexps_; }

 private:
  std::vector<std::vector<Selector>> any_of_;
  bool has_regexps_ = false;
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_FILTERS_H_
