// The agent's run: request -> manifest/config -> verified layers -> rootfs -> process.
#include "guest_agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "guest_agent/image_config.h"
#include "guest_agent/kernel.h"
#include "guest_agent/open_in_root.h"
#include "guest_agent/process_runner.h"
#include "guest_agent/request.h"
#include "guest_agent/rootfs_overlay.h"
#include "kata_volume/verity/bounded_read.h"

namespace guest_pull::guest_agent {

namespace {

constexpr uint64_t kMaxDocumentSize = 4 << 20;
// An image's /etc/passwd or /etc/group is a few KiB; this bounds what a
// hostile one costs.
constexpr size_t kMaxPasswdSize = 4 << 20;

absl::Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("mkdir ", path, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

// The image config's env with the request's entries added (same key: the
// request wins).
std::vector<std::string> MergeEnv(const std::vector<std::string>& base, const std::vector<std::string>& extra) {
  std::vector<std::string> out;
  auto key = [](const std::string& e) { return e.substr(0, e.find('=')); };
  for (const std::string& e : base) {
    bool overridden = false;
    for (const std::string& x : extra) overridden |= key(x) == key(e);
    if (!overridden) out.push_back(e);
  }
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

// The image's /etc/`name` (passwd, group): resolved inside `rootfs` (its
// symlinks, even absolute ones, name files of the image, never of the
// guest), a regular file (not /dev/zero, not a FIFO) of at most
// kMaxPasswdSize bytes; empty when the image has none.
absl::StatusOr<std::string> ReadImageEtcFile(const std::string& rootfs, absl::string_view name) {
  const std::string relative = absl::StrCat("etc/", name);
  const std::string path = absl::StrCat(rootfs, "/", relative);
  int root_fd = ::open(rootfs.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (root_fd < 0) return absl::InternalError(absl::StrCat("open ", rootfs, ": ", strerror(errno)));
  absl::Cleanup close_root = [root_fd] { ::close(root_fd); };
  int fd = OpenInRoot(root_fd, relative, O_RDONLY | O_NONBLOCK | O_NOCTTY);
  if (fd < 0 && errno == ENOENT) return std::string();
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", path, ": ", strerror(errno)));
  absl::Cleanup close_fd = [fd] { ::close(fd); };
  absl::StatusOr<verity::BoundedText> read = verity::ReadBounded(fd, path, kMaxPasswdSize);
  if (!read.ok()) return read.status();
  switch (read->refused) {
    case verity::BoundedText::Refused::kNone:
      return std::move(read->text);
    case verity::BoundedText::Refused::kNotRegular:
      return absl::InvalidArgumentError(absl::StrCat("the image's /", relative, " is not a regular file"));
    case verity::BoundedText::Refused::kTooLarge:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("the image's /", relative, " is ", read->size,
                                                 " bytes, more than ", kMaxPasswdSize));
}

}  // namespace

absl::Status ResolveUser(const std::string& user, const std::string& rootfs, RunSpec* spec) {
  if (user.empty()) return absl::OkStatus();
  std::vector<std::string> parts = absl::StrSplit(user, absl::MaxSplits(':', 1));
  uint32_t uid = 0, gid = 0;
  std::string name;  // the user's name in the image's /etc/passwd, if any
  const bool numeric = absl::SimpleAtoi(parts[0], &uid);
  // A name, or a uid without a group (the OCI image spec: the group of its
  // /etc/passwd entry; the root group when it has none, as containerd and
  // Docker run it), is looked up in the image's /etc/passwd.
  if (!numeric || parts.size() == 1) {
    absl::StatusOr<std::string> passwd = ReadImageEtcFile(rootfs, "passwd");
    if (!passwd.ok()) return passwd.status();
    bool found = false;
    for (absl::string_view line : absl::StrSplit(*passwd, '\n')) {
      std::vector<std::string> f = absl::StrSplit(line, ':');
      uint32_t entry_uid = 0, entry_gid = 0;
      if (f.size() < 4 || !absl::SimpleAtoi(f[2], &entry_uid) || !absl::SimpleAtoi(f[3], &entry_gid)) {
        continue;
      }
      if (numeric ? entry_uid == uid : f[0] == parts[0]) {
        uid = entry_uid;
        gid = entry_gid;
        name = f[0];
        found = true;
        break;
      }
    }
    if (!found && !numeric) {
      return absl::NotFoundError(absl::StrCat("user \"", parts[0], "\" not in the image's /etc/passwd"));
    }
  }
  if (parts.size() == 2 && !absl::SimpleAtoi(parts[1], &gid)) {
    // A group name (the OCI image spec allows user:group by name) is looked
    // up in the image's /etc/group.
    absl::StatusOr<std::string> groups = ReadImageEtcFile(rootfs, "group");
    if (!groups.ok()) return groups.status();
    bool found = false;
    for (absl::string_view line : absl::StrSplit(*groups, '\n')) {
      std::vector<std::string> f = absl::StrSplit(line, ':');
      if (f.size() >= 3 && f[0] == parts[1] && absl::SimpleAtoi(f[2], &gid)) {
        found = true;
        break;
      }
    }
    if (!found) {
      return absl::NotFoundError(absl::StrCat("group \"", parts[1], "\" not in the image's /etc/group"));
    }
  }
  // Without a group, the user's supplementary groups are those of the
  // image's /etc/group that list its name (the OCI image spec); with one,
  // that group alone.
  std::vector<gid_t> groups;
  if (parts.size() == 1 && !name.empty()) {
    absl::StatusOr<std::string> group_file = ReadImageEtcFile(rootfs, "group");
    if (!group_file.ok()) return group_file.status();
    for (absl::string_view line : absl::StrSplit(*group_file, '\n')) {
      std::vector<std::string> f = absl::StrSplit(line, ':');
      uint32_t member_of = 0;
      if (f.size() < 4 || !absl::SimpleAtoi(f[2], &member_of) || member_of == gid) continue;
      for (absl::string_view member : absl::StrSplit(f[3], ',')) {
        if (member == name && std::find(groups.begin(), groups.end(), member_of) == groups.end()) {
          groups.push_back(member_of);
        }
      }
    }
  }
  spec->uid = uid;
  spec->gid = gid;
  spec->supplementary_gids = std::move(groups);
  return absl::OkStatus();
}

void AddSupplementaryGroups(const std::vector<uint32_t>& gids, RunSpec* spec) {
  for (uint32_t gid : gids) {
    if (std::find(spec->supplementary_gids.begin(), spec->supplementary_gids.end(), gid) ==
        spec->supplementary_gids.end()) {
      spec->supplementary_gids.push_back(gid);
    }
  }
}

std::string FailureJson(const absl::Status& status, const AgentFailure& failure) {
  // The message may quote the host's text, up to a frame long: cut so that
  // the JSON (at most 6 bytes per escaped byte) still fits in a frame.
  constexpr size_t kMaxErrorBytes = 64 << 10;
  std::string error(status.message().substr(0, kMaxErrorBytes));
  if (status.message().size() > kMaxErrorBytes) error += "...";
  nlohmann::json json = {{"error", std::move(error)}, {"kind", failure.kind}};
  if (!failure.layer.empty()) json["layer"] = failure.layer;
  // The message may quote the host's error text or a tar path: bytes that
  // are not UTF-8 are replaced, not thrown on (which would kill init).
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::Status GuestAgent::Fail(std::string kind, std::string layer, absl::Status status) {
  failure_.kind = std::move(kind);
  failure_.layer = std::move(layer);
  return status;
}

absl::Status GuestAgent::Run() {
  nlohmann::json hello = {{"agent", "guest-pull-guest-agent"}, {"protocol", 1}, {"boot_seconds", SecondsSinceBoot()}};
  absl::Status status = channel()->Send(kFrameHello, hello.dump());
  if (!status.ok()) return Fail("internal", "", status);
  absl::StatusOr<Frame> frame = channel()->Receive();
  if (!frame.ok()) return Fail("request", "", frame.status());
  if (frame->type != kFrameRequest) {
    return Fail("request", "", absl::InvalidArgumentError("the host's first frame is not a request"));
  }
  absl::StatusOr<GuestRequest> request = ParseGuestRequest(frame->payload);
  if (!request.ok()) return Fail("request", "", request.status());
  const kata_volume::GuestPullImage& image = request->image;
  host_->Log(absl::StrCat("request: ", request->source, ", ", image.layers.size(), " layer(s)",
                          request->test.skip_blob_checks ? ", TEST: blob checks skipped" : ""));

  // Manifest and config: hashed here against the volume's manifest digest.
  Fetched fetched;
  absl::StatusOr<std::string> raw = host_->FetchToMemory("manifest", image.manifest_digest, kMaxDocumentSize, &fetched);
  if (!raw.ok()) return Fail("manifest", "", raw.status());
  if (fetched.digest != image.manifest_digest) {
    return Fail("manifest", "", absl::DataLossError(absl::StrCat("manifest hashes to ", fetched.digest,
                                                                 ", volume pins ", image.manifest_digest)));
  }
  absl::StatusOr<ImageManifest> manifest = ParseImageManifest(*raw);
  if (!manifest.ok()) return Fail("manifest", "", manifest.status());
  if (manifest->layer_digests.size() != image.layers.size()) {
    return Fail("manifest", "", absl::InvalidArgumentError(absl::StrCat(
        "manifest has ", manifest->layer_digests.size(), " layers, volume ", image.layers.size())));
  }
  for (size_t i = 0; i < image.layers.size(); ++i) {
    if (manifest->layer_digests[i] != image.layers[i].digest) {
      return Fail("manifest", image.layers[i].digest, absl::InvalidArgumentError(absl::StrCat(
          "layer ", i, ": manifest has ", manifest->layer_digests[i], ", volume expects ", image.layers[i].digest)));
    }
  }
  raw = host_->FetchToMemory("blob", manifest->config_digest, kMaxDocumentSize, &fetched);
  if (!raw.ok()) return Fail("config", "", raw.status());
  if (fetched.digest != manifest->config_digest) {
    return Fail("config", "", absl::DataLossError(absl::StrCat("image config hashes to ", fetched.digest,
                                                               ", manifest says ", manifest->config_digest)));
  }
  absl::StatusOr<ImageConfig> config = ParseImageConfig(*raw);
  if (!config.ok()) return Fail("config", "", config.status());
  if (config->diff_ids.size() != image.layers.size()) {
    return Fail("config", "", absl::InvalidArgumentError(absl::StrCat(
        "image config lists ", config->diff_ids.size(), " diff_ids for ", image.layers.size(), " layers")));
  }
  host_->Log(absl::StrCat("manifest ", image.manifest_digest, " and config ", manifest->config_digest, " verified"));

  // Layers, each through dm-verity into its own directory.
  std::vector<std::string> lower;
  for (size_t i = 0; i < image.layers.size(); ++i) {
    LayerJob job;
    job.index = i;
    job.expected = image.layers[i];
    job.config_diff_id = config->diff_ids[i];
    job.skip_blob_checks = request->test.skip_blob_checks;
    job.work_dir = work_dir_;
    job.layer_dir = absl::StrCat(work_dir_, "/layers/", i);
    status = MakeDir(absl::StrCat(work_dir_, "/layers"));
    if (status.ok()) status = MakeDir(job.layer_dir);
    if (!status.ok()) return Fail("internal", job.expected.digest, status);
    LayerFailure failure = LayerFailure::kNone;
    status = PrepareVerifiedLayer(job, host_, &failure);
    if (!status.ok()) return Fail(LayerFailureName(failure), job.expected.digest, status);
    lower.insert(lower.begin(), job.layer_dir);  // overlay wants the top layer first
  }

  // Rootfs: overlay of the verified layers under a writable tmpfs upper.
  const std::string rootfs = absl::StrCat(work_dir_, "/rootfs");
  for (const char* d : {"/upper", "/work", "/rootfs"}) {
    status = MakeDir(absl::StrCat(work_dir_, d));
    if (!status.ok()) return Fail("internal", "", status);
  }
  status = MountRootfsOverlay(lower, work_dir_ + "/upper", work_dir_ + "/work", rootfs);
  if (!status.ok()) return Fail("internal", "", status);
  for (const char* d : {"/proc", "/dev"}) MakeDir(rootfs + d).IgnoreError();
  if (::mount("proc", (rootfs + "/proc").c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0 ||
      ::mount("/dev", (rootfs + "/dev").c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    return Fail("internal", "", absl::InternalError(absl::StrCat("mount proc/dev in the rootfs: ", strerror(errno))));
  }

  RunSpec spec;
  spec.rootfs = rootfs;
  spec.args = request->process.args;
  if (spec.args.empty()) {
    spec.args = config->entrypoint;
    spec.args.insert(spec.args.end(), config->cmd.begin(), config->cmd.end());
  }
  if (spec.args.empty()) {
    return Fail("request", "", absl::InvalidArgumentError("no process args and the image has no entrypoint or cmd"));
  }
  spec.env = MergeEnv(config->env, request->process.env);
  spec.cwd = !request->process.cwd.empty() ? request->process.cwd
             : !config->working_dir.empty() ? config->working_dir : "/";
  status = ResolveUser(!request->process.user.empty() ? request->process.user : config->user, rootfs, &spec);
  if (!status.ok()) return Fail("request", "", status);
  AddSupplementaryGroups(request->process.additional_gids, &spec);
  host_->Log(absl::StrCat("rootfs assembled from ", lower.size(), " verified layer(s); running ",
                          absl::StrJoin(spec.args, " "), " as ", spec.uid, ":", spec.gid,
                          spec.supplementary_gids.empty() ? "" : " groups ",
                          absl::StrJoin(spec.supplementary_gids, ","), " at +",
                          SecondsSinceBoot(), "s"));
  absl::StatusOr<int> exit_code = RunProcess(spec, channel());
  if (!exit_code.ok()) return Fail("internal", "", exit_code.status());
  nlohmann::json exit = {{"exit_code", *exit_code}, {"boot_seconds", SecondsSinceBoot()}};
  status = channel()->Send(kFrameExit, exit.dump());
  if (!status.ok()) return Fail("internal", "", status);
  return absl::OkStatus();
}

}  // namespace guest_pull::guest_agent
