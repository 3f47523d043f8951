// Concurrency stress of the snapshotter core with the guest-pull plug-in,
// driven through the public Snapshotter API as the service drives it, from
// many threads at once (Prepare, Mounts, Commit, View, Stat, Remove, Walk,
// Cleanup; two Prepares of one key; Commit racing Remove) while the layer
// cache file is rewritten and reloaded under Mounts of guest-pulled rootfs.
// Black-box: only the API and files. Run by the sanitizers suite under
// ThreadSanitizer (--config=tsan, see base/tsan_absl_mutex.cc); it also runs
// as an ordinary unit test. It stays below gRPC: Debian's gRPC hands
// requests between threads with atomics TSan cannot see (its in-process
// transport shows as races between protobuf's inline parser and gRPC's
// slice copies), and the service is a thin conversion tested elsewhere.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "kata_volume/verity/layer_cache.h"
#include "snapshotter/guest_pull/guest_pull_layers.h"
#include "snapshotter/guest_pull/labels.h"
#include "snapshotter/snapshotter.h"

namespace snapshotter {
namespace {

namespace verity = ::guest_pull::verity;

constexpr int kClients = 4;
constexpr int kRounds = 12;
constexpr int kGuestRounds = 10;

std::string Hex(int i, char fill = '0') {
  std::string n = std::to_string(i);
  return std::string(64 - n.size(), fill) + n;
}

class StressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::string(getenv("TEST_TMPDIR") ?: "/tmp") + "/stress-" +
            std::to_string(getpid());
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
    cache_path_ = root_ + "/layers-cache.json";
    WriteCache(0);
    guest_pull::GuestPullOptions options;
    options.layer_cache = cache_path_;
    auto layers = guest_pull::GuestPullLayers::Create(options, root_ + "/state",
                                                      nullptr);
    ASSERT_TRUE(layers.ok()) << layers.status();
    layers_ = *std::move(layers);
    Snapshotter::Options opts;
    opts.root = root_ + "/state";
    opts.remote = layers_.get();
    auto sn = Snapshotter::Open(opts);
    ASSERT_TRUE(sn.ok()) << sn.status();
    sn_ = *std::move(sn);
  }
  void TearDown() override {
    sn_.reset();
    std::filesystem::remove_all(root_);
  }

  // A cache of 40 layers; `version` changes the content (and the size) so
  // every rewrite is a reload.
  void WriteCache(int version) {
    verity::LayerCache cache;
    for (int i = 0; i < 40 + version % 3; ++i) {
      cache.push_back({"sha256:" + Hex(i), Hex(i + version, 'a'),
                       absl::StrCat("u", version, ":x:", i, ":0::/:/bin/sh\n"),
                       ""});
    }
    ASSERT_TRUE(verity::WriteLayerCacheFile(cache_path_, cache).ok());
  }

  // An RPC answered with a code outside `allowed` is recorded.
  void Expect(const std::string& what, const absl::Status& s,
              std::initializer_list<absl::StatusCode> allowed) {
    for (absl::StatusCode c : allowed) {
      if (s.code() == c) return;
    }
    absl::MutexLock lock(&mu_);
    unexpected_.push_back(absl::StrCat(what, ": ", s.ToString()));
  }

  absl::Status Prepare(const std::string& key, const std::string& parent,
                       const Labels& labels = {}) {
    return sn_->Prepare(key, parent, labels).status();
  }
  absl::Status View(const std::string& key, const std::string& parent) {
    return sn_->View(key, parent, {}).status();
  }
  absl::Status Mounts(const std::string& key) { return sn_->Mounts(key).status(); }
  absl::Status Commit(const std::string& name, const std::string& key) {
    return sn_->Commit(name, key, {});
  }
  absl::Status Remove(const std::string& key) { return sn_->Remove(key); }
  absl::Status Stat(const std::string& key) { return sn_->Stat(key).status(); }
  absl::Status Cleanup() { return sn_->Cleanup().status(); }
  std::vector<std::string> List(absl::Status* status) {
    std::vector<std::string> names;
    *status = sn_->Walk(SnapshotFilter(), [&](const Info& info) {
      names.push_back(info.name);
      return absl::OkStatus();
    });
    return names;
  }

  // One client: its own chain of snapshots on the shared base, then the
  // contended keys of round i.
  void Client(int t) {
    using C = absl::StatusCode;
    for (int i = 0; i < kRounds; ++i) {
      const std::string name = absl::StrCat("c", t, "-", i);
      const std::string active = name + "-active", view = name + "-view";
      Expect("Prepare " + active, Prepare(active, "base"), {C::kOk});
      Expect("Mounts " + active, Mounts(active), {C::kOk});
      Expect("Commit " + name, Commit(name, active), {C::kOk});
      Expect("View " + view, View(view, name), {C::kOk});
      Expect("Stat " + name, Stat(name), {C::kOk});
      Expect("Remove parent " + name, Remove(name), {C::kFailedPrecondition});
      Expect("Remove " + view, Remove(view), {C::kOk});
      Expect("Remove " + name, Remove(name), {C::kOk});
      Expect("Stat removed " + name, Stat(name), {C::kNotFound});
      // Every client prepares the same key: one wins; the key stays.
      const std::string twice = absl::StrCat("twice-", i);
      absl::Status p = Prepare(twice, "base");
      Expect("Prepare " + twice, p, {C::kOk, C::kAlreadyExists});
      if (p.ok()) ++prepared_twice_[i];
      // Commit racing Remove: an even client prepares and commits race-t-i
      // while the next client removes it.
      const int owner = t - t % 2;
      const std::string race = absl::StrCat("race-", owner, "-", i);
      const std::string raced = absl::StrCat("raced-", owner, "-", i);
      if (t == owner) {
        Expect("Prepare " + race, Prepare(race, "base"), {C::kOk});
        absl::Status c = Commit(raced, race);
        Expect("Commit " + raced, c, {C::kOk, C::kNotFound});
        absl::MutexLock lock(&mu_);
        (c.ok() ? raced_ok_ : raced_lost_).push_back(raced);
      } else {
        absl::Status r = Remove(race);
        Expect("Remove " + race, r, {C::kOk, C::kNotFound});
        if (r.ok()) {
          absl::MutexLock lock(&mu_);
          removed_race_.push_back(raced);
        }
      }
    }
  }

  // Lists, stats and cleans up until the clients are done.
  void Observer(const std::atomic<bool>& done) {
    using C = absl::StatusCode;
    for (int n = 0; n < 10000 && !done.load(); ++n) {
      absl::Status s;
      for (const std::string& name : List(&s)) {
        Expect("Stat listed " + name, Stat(name), {C::kOk, C::kNotFound});
      }
      Expect("List", s, {C::kOk});
      Expect("Cleanup", Cleanup(), {C::kOk});
    }
  }

  // Pulls guest-pulled layers as CRI does and mounts container rootfs on
  // them while the cache file is rewritten (each Mounts reloads it).
  void GuestPull() {
    using C = absl::StatusCode;
    using namespace guest_pull;  // NOLINT: the label names
    std::string parent_chain, parent_name;
    for (int i = 0; i < kGuestRounds; ++i) {
      const std::string chain = verity::ChainId(parent_chain, "sha256:" + Hex(i));
      const std::string target = absl::StrCat("k8s.io/", 100 + i, "/", chain);
      Labels labels = {{kLabelSnapshotRef, target},
                       {kLabelCriImageRef, "127.0.0.1:5000/stress:1"},
                       {kLabelCriLayerDigest, "sha256:" + Hex(i, 'd')},
                       {kLabelCriManifestDigest, "sha256:" + Hex(0, 'f')},
                       {kLabelCriImageLayers, "sha256:" + Hex(i, 'd')}};
      Expect("Prepare guest layer " + target,
             Prepare(absl::StrCat("k8s.io/", 200 + i, "/extract-", i, " ", chain),
                     parent_name, labels),
             {C::kAlreadyExists});
      const std::string rootfs = absl::StrCat("k8s.io/", 300 + i, "/rootfs");
      Expect("Prepare " + rootfs, Prepare(rootfs, target), {C::kOk});
      WriteCache(i + 1);
      absl::StatusOr<std::vector<Mount>> mounts = sn_->Mounts(rootfs);
      Expect("Mounts " + rootfs, mounts.status(), {C::kOk});
      if (mounts.ok() && (mounts->size() != 1 ||
                          (*mounts)[0].type != "fuse.guest-pull-overlayfs")) {
        Expect("Mounts " + rootfs + " type", absl::UnknownError("not guest-pull"), {});
      }
      Expect("Remove " + rootfs, Remove(rootfs), {C::kOk});
      parent_chain = chain;
      parent_name = target;
    }
  }

  std::string root_, cache_path_;
  std::unique_ptr<guest_pull::GuestPullLayers> layers_;
  std::unique_ptr<Snapshotter> sn_;
  std::atomic<int> prepared_twice_[kRounds] = {};
  absl::Mutex mu_;
  // Committed names of the Commit/Remove races: won by the Commit, lost to
  // the Remove, and the races whose Remove succeeded.
  std::vector<std::string> raced_ok_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> raced_lost_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> removed_race_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> unexpected_ ABSL_GUARDED_BY(mu_);
};

TEST_F(StressTest, ConcurrentRpcsKeepRecordsAndDirectoriesConsistent) {
  ASSERT_TRUE(Prepare("base-active", "").ok());
  ASSERT_TRUE(Commit("base", "base-active").ok());
  std::atomic<bool> done{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) clients.emplace_back([this, t] { Client(t); });
  clients.emplace_back([this] { GuestPull(); });
  std::thread observer([this, &done] { Observer(done); });
  for (std::thread& th : clients) th.join();
  done = true;
  observer.join();

  absl::MutexLock lock(&mu_);
  EXPECT_TRUE(unexpected_.empty()) << absl::StrJoin(unexpected_, "\n");
  for (int i = 0; i < kRounds; ++i) {
    EXPECT_EQ(prepared_twice_[i].load(), 1) << "twice-" << i;
  }
  // A Remove that succeeded made its Commit fail, and the other way round.
  std::sort(raced_lost_.begin(), raced_lost_.end());
  std::sort(removed_race_.begin(), removed_race_.end());
  EXPECT_EQ(raced_lost_, removed_race_);
  // What is left: base, twice-i, the races the Commit won and the
  // guest-pulled layers.
  absl::Status s;
  std::vector<std::string> names = List(&s);
  ASSERT_TRUE(s.ok()) << s;
  std::vector<std::string> expected = raced_ok_;
  expected.push_back("base");
  for (int i = 0; i < kRounds; ++i) expected.push_back(absl::StrCat("twice-", i));
  std::string parent_chain;
  for (int i = 0; i < kGuestRounds; ++i) {
    parent_chain = verity::ChainId(parent_chain, "sha256:" + Hex(i));
    expected.push_back(absl::StrCat("k8s.io/", 100 + i, "/", parent_chain));
  }
  std::sort(expected.begin(), expected.end());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, expected);
  EXPECT_EQ(raced_ok_.size() + raced_lost_.size(),
            static_cast<size_t>(kClients / 2 * kRounds));
  std::cout << "stress: " << kClients << " clients x " << kRounds
            << " rounds, " << raced_ok_.size() << " Commit/Remove races won by "
            << "Commit, " << raced_lost_.size() << " by Remove, "
            << kGuestRounds << " layer cache reloads under Mounts\n";
  // Records and directories agree once Cleanup has run (beside the spares
  // made ahead of Prepares, spare_dirs.h).
  ASSERT_TRUE(Cleanup().ok());
  size_t dirs = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(root_ + "/state/snapshots")) {
    dirs += entry.path().filename().string().rfind("spare-", 0) != 0;
  }
  EXPECT_EQ(dirs, names.size());
}

}  // namespace
}  // namespace snapshotter
