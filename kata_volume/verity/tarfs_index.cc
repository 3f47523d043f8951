// tarfs index builder (tardev-snapshotter tarindex compatible).
#include "kata_volume/verity/tarfs_index.h"

#include <cstring>
#include <deque>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"

namespace guest_pull::verity {

namespace {

constexpr uint16_t kIfMt = 0170000, kIfSock = 0140000, kIfLnk = 0120000, kIfReg = 0100000,
                   kIfBlk = 0060000, kIfDir = 0040000, kIfChr = 0020000, kIfIfo = 0010000;
constexpr uint8_t kOpaqueFlag = 1;
// Symlink targets that fit the header are read from its linkname field.
constexpr uint64_t kLinkNameFieldOffset = 157;
// A breadth-first walk that revisits shared nodes this often is hostile input.
constexpr uint64_t kMaxVisits = 50'000'000;

uint8_t DirentType(uint16_t mode) {
  switch (mode & kIfMt) {
    case kIfSock: return 12;
    case kIfLnk: return 10;
    case kIfReg: return 8;
    case kIfBlk: return 6;
    case kIfDir: return 4;
    case kIfChr: return 2;
    case kIfIfo: return 1;
    default: return 0;
  }
}

void PutLe(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Reference `clean_path`: drops empty and "." parts, ".." pops; nullopt when
// the path escapes the root.
std::optional<std::vector<std::string>> CleanPath(const std::string& path) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (out.empty()) return std::nullopt;
      out.pop_back();
      continue;
    }
    out.emplace_back(part);
  }
  return out;
}

}  // namespace

// A tree node. Hardlinks make several parents point at one node.
struct TarfsIndexBuilder::Node {
  uint64_t offset = 0;
  uint64_t size = 0;
  std::map<std::string, Node*> children;  // std::string orders by unsigned bytes
  uint16_t mode = 0;
  uint64_t ino = 0;
  bool emitted = false;
  bool opaque = false;
  uint64_t mtime = 0;
  uint32_t owner = 0;
  uint32_t group = 0;
};

TarfsIndexBuilder::TarfsIndexBuilder() {
  root_ = NewNode();
  root_->mode = kIfDir | 0555;
}

TarfsIndexBuilder::~TarfsIndexBuilder() = default;

TarfsIndexBuilder::Node* TarfsIndexBuilder::NewNode() {
  arena_.push_back(std::make_unique<Node>());
  return arena_.back().get();
}

TarfsIndexBuilder::Node* TarfsIndexBuilder::Traverse(const std::vector<std::string>& path) {
  Node* n = root_;
  for (const std::string& part : path) {
    Node*& child = n->children[part];
    if (child == nullptr) child = NewNode();
    n = child;
  }
  return n;
}

void TarfsIndexBuilder::AddEntry(const TarEntry& e) {
  if (!e.mode.has_value()) {
    Skip(absl::StrCat("unparsable mode: ", e.path));
    return;
  }
  uint16_t mode = static_cast<uint16_t>(*e.mode) & 0x1ff;
  uint64_t size = 0, offset = 0;
  switch (e.type_flag) {
    case '\0':
    case '0':
      mode |= kIfReg;
      size = e.size;
      offset = e.data_position;
      break;
    case '5':
      mode |= kIfDir;
      break;
    case '6':
      mode |= kIfIfo;
      break;
    case '3':
    case '4':
      mode |= e.type_flag == '3' ? kIfChr : kIfBlk;
      if (!e.dev_major.has_value() || !e.dev_minor.has_value()) {
        Skip(absl::StrCat("device without major/minor numbers: ", e.path));
        return;
      }
      offset = uint64_t{*e.dev_minor} | (uint64_t{*e.dev_major} << 32);
      break;
    case '2': {
      mode |= kIfLnk;
      if (!e.link_name.has_value()) {
        Skip(absl::StrCat("symlink without a target: ", e.path));
        return;
      }
      if (e.header_link_name.value_or("") != *e.link_name) {
        long_link_targets_.push_back(*e.link_name);  // stored in the index
        offset = 0;
      } else {
        offset = e.header_position + kLinkNameFieldOffset;
      }
      size = e.link_name->size();
      break;
    }
    case '1':
      if (!e.link_name.has_value()) {
        Skip(absl::StrCat("hardlink without a target: ", e.path));
      } else {
        AddHardlink(e.path, *e.link_name);
      }
      return;
    default:
      Skip(absl::StrCat("unhandled member type '", std::string(1, e.type_flag), "': ", e.path));
      return;
  }

  std::optional<std::vector<std::string>> path = CleanPath(e.path);
  if (!path.has_value()) {
    Skip(absl::StrCat("path escapes the root: ", e.path));
    return;
  }
  if (!path->empty()) {
    std::string& last = path->back();
    if (last == ".wh..wh..opq") {
      path->pop_back();
      Traverse(*path)->opaque = true;
      return;
    }
    if (absl::StartsWith(last, ".wh.")) {
      // Whiteout: the named node becomes a 0/0 character device.
      last = last.substr(4);
      Node* n = Traverse(*path);
      n->children.clear();
      n->mode = static_cast<uint16_t>((n->mode & ~kIfMt) | kIfChr);
      n->size = 0;
      n->offset = 0;
      return;
    }
  }
  Node* n = Traverse(*path);
  *n = Node{};  // a later member replaces the earlier one, children included
  n->mode = mode;
  n->size = size;
  n->offset = offset;
  n->mtime = e.mtime.value_or(0);
  n->owner = static_cast<uint32_t>(e.uid.value_or(0));
  n->group = static_cast<uint32_t>(e.gid.value_or(0));
}

void TarfsIndexBuilder::AddHardlink(const std::string& name, const std::string& link_name) {
  std::optional<std::vector<std::string>> target = CleanPath(link_name);
  if (!target.has_value()) {
    Skip(absl::StrCat("hardlink target escapes the root: ", link_name));
    return;
  }
  Node* existing = Traverse(*target);  // like the reference, creates missing nodes
  if ((existing->mode & kIfMt) != kIfReg) {
    Skip(absl::StrCat("hardlink to a non-regular file: ", link_name));
    return;
  }
  std::optional<std::vector<std::string>> path = CleanPath(name);
  if (!path.has_value()) {
    Skip(absl::StrCat("path escapes the root: ", name));
    return;
  }
  if (path->empty()) {
    root_ = existing;
    return;
  }
  std::string last = path->back();
  path->pop_back();
  Traverse(*path)->children[last] = existing;
}

absl::Status TarfsIndexBuilder::CheckAcyclic() {
  // Iterative DFS over the node graph; grey = on the current path.
  enum Color { kWhite, kGrey, kBlack };
  std::unordered_map<const Node*, Color> color;
  struct Frame {
    const Node* node;
    std::map<std::string, Node*>::const_iterator next;
  };
  std::vector<Frame> stack;
  color[root_] = kGrey;
  stack.push_back({root_, root_->children.begin()});
  while (!stack.empty()) {
    Frame& f = stack.back();
    if (f.next == f.node->children.end()) {
      color[f.node] = kBlack;
      stack.pop_back();
      continue;
    }
    const Node* child = (f.next++)->second;
    Color c = color.count(child) ? color[child] : kWhite;
    if (c == kGrey) {
      return absl::InvalidArgumentError(
          "hardlinks in the layer form a cycle; the tarfs index cannot be built");
    }
    if (c == kWhite) {
      color[child] = kGrey;
      stack.push_back({child, child->children.begin()});
    }
  }
  return absl::OkStatus();
}

absl::Status TarfsIndexBuilder::VisitBreadthFirst(const std::function<void(Node*)>& visit) {
  std::deque<Node*> queue{root_};
  uint64_t visits = 0;
  while (!queue.empty()) {
    Node* n = queue.front();
    queue.pop_front();
    if (++visits > kMaxVisits) {
      return absl::InvalidArgumentError("layer tree too large (hardlink sharing explodes the index)");
    }
    visit(n);
    for (auto& [name, child] : n->children) queue.push_back(child);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> TarfsIndexBuilder::Serialize(uint64_t contents_size) {
  RETURN_IF_ERROR(CheckAcyclic());

  uint64_t inode_count = 0;
  absl::Status s = VisitBreadthFirst([&](Node* n) {
    if (n->ino == 0) n->ino = ++inode_count;
  });
  if (!s.ok()) return s;

  uint64_t offset = contents_size + kTarfsInodeSize * inode_count;
  s = VisitBreadthFirst([&](Node* n) {
    if ((n->mode & kIfMt) != kIfDir) return;
    n->offset = offset;
    n->size = kTarfsDirEntrySize * n->children.size();
    offset += n->size;
  });
  if (!s.ok()) return s;

  std::string out;
  uint64_t symlink_offset = offset;  // long symlink targets follow the dirents
  s = VisitBreadthFirst([&](Node* n) {
    if (n->emitted) return;
    uint64_t inode_offset = n->offset;
    if ((n->mode & kIfMt) == kIfLnk && n->offset == 0) {
      inode_offset = symlink_offset;
      symlink_offset += n->size;
    }
    n->emitted = true;
    PutLe(&out, n->mode, 2);
    out.push_back(static_cast<char>(n->opaque ? kOpaqueFlag : 0));
    out.push_back(static_cast<char>((n->mtime >> 32) & 0xf));
    PutLe(&out, n->owner, 4);
    PutLe(&out, n->group, 4);
    PutLe(&out, n->mtime & 0xffffffffu, 4);
    PutLe(&out, n->size, 8);
    PutLe(&out, inode_offset, 8);
  });
  if (!s.ok()) return s;

  // Directory entries; names are laid out after the long symlink area.
  uint64_t end_offset = symlink_offset;
  s = VisitBreadthFirst([&](Node* n) {
    if ((n->mode & kIfMt) != kIfDir) return;
    for (const auto& [name, child] : n->children) {
      PutLe(&out, child->ino, 8);
      PutLe(&out, end_offset, 8);
      PutLe(&out, name.size(), 8);
      out.push_back(static_cast<char>(DirentType(child->mode)));
      out.append(7, '\0');
      end_offset += name.size();
    }
  });
  if (!s.ok()) return s;

  for (const std::string& target : long_link_targets_) {
    out.append(target);
    end_offset += target.size();
  }
  // The names, again counted into end_offset: the reference's rounding bug.
  s = VisitBreadthFirst([&](Node* n) {
    if ((n->mode & kIfMt) != kIfDir) return;
    for (const auto& [name, child] : n->children) {
      out.append(name);
      end_offset += name.size();
    }
  });
  if (!s.ok()) return s;

  end_offset = (end_offset + kTarfsAlignment - 1) / kTarfsAlignment * kTarfsAlignment;
  const uint64_t total = end_offset + kTarfsAlignment;
  if (contents_size + out.size() > end_offset) {
    return absl::InternalError("tarfs index layout overflow");  // cannot happen; see header
  }
  out.resize(total - contents_size, '\0');
  std::string superblock;
  PutLe(&superblock, contents_size, 8);
  PutLe(&superblock, inode_count, 8);
  std::memcpy(out.data() + (total - kTarfsSuperBlockTail - contents_size), superblock.data(),
              superblock.size());
  return out;
}

}  // namespace guest_pull::verity
