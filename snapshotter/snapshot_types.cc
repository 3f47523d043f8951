// Names of snapshot kinds; infos by reference.
#include "snapshotter/snapshot_types.h"

#include <algorithm>

namespace snapshotter {

absl::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kView:
      return "view";
    case Kind::kActive:
      return "active";
    case Kind::kCommitted:
      return "committed";
    case Kind::kUnknown:
      break;
  }
  return "unknown";
}

InfoView InfoView::Of(const Info& info, LabelRefs* refs) {
  refs->clear();
  refs->reserve(info.labels.size());
  for (const auto& [k, v] : info.labels) refs->emplace_back(&k, &v);
  InfoView view;
  view.name = info.name;
  view.parent = info.parent;
  view.kind = info.kind;
  view.created_ns = absl::ToUnixNanos(info.created);
  view.updated_ns = absl::ToUnixNanos(info.updated);
  view.labels = refs;
  return view;
}

Info InfoView::ToInfo() const {
  Info info;
  info.name = std::string(name);
  info.parent = std::string(parent);
  info.kind = kind;
  info.created = absl::FromUnixNanos(created_ns);
  info.updated = absl::FromUnixNanos(updated_ns);
  for (const auto& [k, v] : *labels) {
    info.labels.emplace_hint(info.labels.end(), *k, *v);
  }
  return info;
}

const std::string* InfoView::Label(absl::string_view key) const {
  auto it = std::lower_bound(
      labels->begin(), labels->end(), key,
      [](const auto& label, absl::string_view k) { return *label.first < k; });
  return it != labels->end() && *it->first == key ? it->second : nullptr;
}

}  // namespace snapshotter
