// Daemon lifecycle.
#include "snapshotter/daemon.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/server_posix.h>
#include <signal.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/status_macros.h"
#include "glog/logging.h"
#include "snapshotter/connection_listener.h"
#include "snapshotter/guest_pull/guest_pull_layers.h"
#include "snapshotter/guest_pull/labels.h"
#include "snapshotter/snapshot_dirs.h"
#include "snapshotter/store_recovery.h"
#include "snapshotter/metrics/metrics_exporter.h"
#include "snapshotter/service.h"
#include "snapshotter/snapshotter.h"
#include "snapshotter/socket_path.h"
#include "snapshotter/watchdog.h"

namespace snapshotter {
namespace {

// How long after a termination signal mutations already received but still
// queued for a write thread may start: well below the unit's
// TimeoutStopSec=30 (then SIGKILL), to leave time for the running calls,
// the watchdog and the database.
constexpr absl::Duration kShutdownGrace = absl::Seconds(20);
// How long the clients may then take to read the replies already sent
// before their connections end (both within TimeoutStopSec).
constexpr absl::Duration kReplyReadGrace = absl::Seconds(5);

// Streams one client connection may have open at once (gRPC's default is
// unlimited). Far above what containerd uses, and above the calls the
// service accepts in all (32 write threads + 256 queued, kMaxLists Lists):
// it only stops a single connection from opening streams without end.
constexpr int kMaxStreamsPerConnection = 1024;

// How often leftovers that could not be deleted are tried again (besides
// every Cleanup RPC).
constexpr absl::Duration kLeftoverRetry = absl::Minutes(5);

// Deletes what the startup recovery moved to trash, after READY: deleting
// data never delays serving (and a start that left none does no second
// sweep). Then retries, every kLeftoverRetry, whatever could not be
// deleted, until `stop` is notified. A stop of the daemon cuts a deletion
// short first (Snapshotter::StopLongWork).
void SweepLeftovers(Snapshotter* sn, absl::Notification* stop) {
  bool first = true;
  do {
    if (!(first && sn->TrashAfterOpen()) && sn->UndeletableCount() == 0) {
      first = false;
      continue;
    }
    auto removed = sn->Cleanup();
    if (!removed.ok()) {
      LOG(WARNING) << "leftover cleanup failed: " << removed.status();
    } else if (*removed > 0) {
      LOG(INFO) << "deleted " << *removed << " released snapshot directories";
    }
    if (int64_t left = sn->UndeletableCount(); left > 0) {
      LOG(WARNING) << left << " entries under " << sn->dirs().SnapshotsDir()
                   << " could not be deleted or moved; retrying every "
                   << absl::FormatDuration(kLeftoverRetry)
                   << " and at every Cleanup (metric "
                      "guest_pull_undeletable_entries)";
    }
    first = false;
  } while (!stop->WaitForNotificationWithTimeout(kLeftoverRetry));
}

// Starts the systemd watchdog when the unit asks for it (WatchdogSec=, i.e.
// WATCHDOG_USEC/WATCHDOG_PID for this process): WATCHDOG=1 every third of
// the period while the store answers (Snapshotter::CheckStore: a read of the
// database and an empty write transaction) within half the period.
std::unique_ptr<Watchdog> StartWatchdog(Snapshotter* snapshotter) {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return nullptr;
  absl::Duration period = absl::Microseconds(usec);
  Watchdog::Options options;
  options.probe = [snapshotter] { return snapshotter->CheckStore(); };
  options.ping = [] { sd_notify(0, "WATCHDOG=1"); };
  options.interval = period / 3;
  options.probe_timeout = period / 2;
  auto watchdog = std::make_unique<Watchdog>(std::move(options));
  watchdog->Start();
  // Said "systemd watchdog every 30s", which read as the ping interval.
  LOG(INFO) << "systemd watchdog (WatchdogSec=" << period << "): pinging every "
            << period / 3 << " while the store answers within " << period / 2;
  return watchdog;
}

// Blocks the termination signals in every thread (call before any thread
// starts) so that one thread can sigwait() for them.
sigset_t BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

// Waits for SIGTERM or SIGINT; SIGHUP is logged and ignored.
int WaitForTermination(const sigset_t& set) {
  while (true) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      LOG(INFO) << "SIGHUP received: nothing to reload (restart the daemon "
                   "to apply config changes); still serving";
      continue;
    }
    return sig;
  }
}

// A SIGTERM or SIGINT that arrived while the store was opening (the
// signals are blocked until WaitForTermination, and a recovery can take
// minutes), taken from the pending set; 0 if none. A pending SIGHUP is
// left for WaitForTermination, which logs it.
int TakePendingTermination() {
  sigset_t pending;
  if (sigpending(&pending) != 0) return 0;
  sigset_t stop;
  sigemptyset(&stop);
  for (int sig : {SIGTERM, SIGINT}) {
    if (sigismember(&pending, sig) == 1) sigaddset(&stop, sig);
  }
  struct timespec now = {0, 0};
  int sig = sigtimedwait(&stop, nullptr, &now);
  return sig > 0 ? sig : 0;
}

}  // namespace

absl::Status RunDaemon(const config::Config& cfg) {
  sigset_t signals = BlockTerminationSignals();
  // A refused start changes nothing: the checks that need no change come
  // first. The socket path, before anything under the root is touched:
  // a start refused for it (a foreign file, another daemon serving there)
  // must not create or recover a store first, nor one whose directory
  // cannot be made or hold a socket (a read-only place, sysfs:
  // CheckSocketPath tries). Its
  // directory is made and a stale socket removed once the store is open
  // (below), where it is checked again: another daemon may have bound
  // meanwhile.
  RETURN_IF_ERROR(CheckSocketPath(cfg.address));
  // Then the root: one that is not this daemon's (another user's, or a
  // directory of other files) is refused. Snapshotter::Open makes the root
  // and its lock, and OpenStore the rest once it accepts the store.
  if (absl::Status root = SnapshotDirs(cfg.root).CheckRoot(); !root.ok()) {
    // Exit kExitRefused: a restart would be refused the same way.
    return absl::IsFailedPrecondition(root) ? AsRefusal(root) : root;
  }

  // Metrics first: the exporter observes the guest-pull layer and the
  // service. Its snapshot gauges read the snapshotter opened below.
  std::unique_ptr<Snapshotter> snapshotter;
  // Read by the exporter's threads; set once the snapshotter is open.
  // Shared: a gauge read stuck in the disk may outlive this function.
  auto open_snapshotter = std::make_shared<std::atomic<Snapshotter*>>(nullptr);
  std::unique_ptr<MetricsExporter> metrics;
  if (!cfg.metrics.address.empty()) {
    ASSIGN_OR_RETURN(metrics, MetricsExporter::Start(
        cfg.metrics.address,
        [open_snapshotter]()
            -> absl::StatusOr<std::map<std::string, int64_t>> {
          Snapshotter* sn = open_snapshotter->load();
          if (sn == nullptr) {  // not an error: the store is opening
            return absl::FailedPreconditionError("snapshotter not open yet");
          }
          return sn->CountByKind(guest_pull::kLabelGuestPulled);
        }));
    metrics->AddScrapeGauge(
        "guest_pull_undeletable_entries",
        "Entries under snapshots/ that could not be deleted or moved aside; "
        "retried periodically and at every Cleanup.",
        [open_snapshotter]() -> absl::StatusOr<int64_t> {
          Snapshotter* sn = open_snapshotter->load();
          if (sn == nullptr) return absl::FailedPreconditionError("not open yet");
          return sn->UndeletableCount();
        });
    metrics->AddScrapeGauge(
        "guest_pull_quarantined_entries",
        "Entries in <root>/quarantine: data nothing proved deletable, kept "
        "for the operator.",
        [open_snapshotter]() -> absl::StatusOr<int64_t> {
          Snapshotter* sn = open_snapshotter->load();
          if (sn == nullptr) return absl::FailedPreconditionError("not open yet");
          return sn->QuarantineCount();
        });
    // The exporter logged where it listens (the port :0 picked, too).
  }

  // Always installed: even with guest pull disabled, layers pulled for the
  // guest earlier must keep getting guest-pull mounts, never an empty rootfs.
  ASSIGN_OR_RETURN(auto guest_pull_layers,
                   guest_pull::GuestPullLayers::Create(cfg.guest_pull, cfg.root,
                                                       metrics.get()));

  Snapshotter::Options options;
  options.root = cfg.root;
  options.remote = guest_pull_layers.get();
  options.spare_dirs = static_cast<int>(cfg.spare_dirs);
  options.on_commit_in_doubt = [](const absl::Status& s) {
    LOG(ERROR) << s.message() << ": exiting (status " << kExitCommitInDoubt
               << ") without changing anything more; the restart recovers "
                  "the commit or its absence from the WAL. An I/O error "
                  "usually means a failing disk";
    google::FlushLogFiles(google::GLOG_INFO);
    std::_Exit(kExitCommitInDoubt);
  };
  ASSIGN_OR_RETURN(snapshotter, Snapshotter::Open(options));
  open_snapshotter->store(snapshotter.get());
  // Closes the store after the exporter's threads. A gauge read stuck in
  // the disk (listing <root>/quarantine) is not waited for (the stop hung on
  // it until systemd's SIGKILL); it, or a stuck store probe
  // (`probe_done` false), still uses the snapshotter, which is then left
  // open, as a crash leaves it (closing would hang, or free what they use;
  // the next start recovers it). Idempotent: also every return of a start
  // that fails from here on.
  auto close_store = [&](bool probe_done) {
    if (snapshotter == nullptr) return;
    bool reads_done = metrics == nullptr || metrics->Stop();
    metrics.reset();
    open_snapshotter->store(nullptr);
    if (!probe_done || !reads_done) {
      LOG(WARNING) << (probe_done ? "a metrics read" : "the store probe")
                   << " is stuck: exiting without closing the store";
      static_cast<void>(snapshotter.release());
    }
    snapshotter.reset();  // closes the database
  };
  absl::Cleanup close_on_return = [&] { close_store(/*probe_done=*/true); };
  // From here on a failed start leaves a store the next start accepts.
  RETURN_IF_ERROR(guest_pull_layers->MakeEmptyDir());
  // A stop asked for while the store opened is honoured now, before the
  // socket is bound: the daemon used to bind it, say READY=1 and log
  // "serving" only to stop at once (its store closed cleanly all the same).
  if (int sig = TakePendingTermination(); sig != 0) {
    LOG(INFO) << "received " << strsignal(sig)
              << " while the store was opening: stopping before serving";
    // Its start-up writes (the -wal's header, store-open) are what a clean
    // close needs: without them the close neither advances the store's
    // generation nor folds the -wal into the database.
    absl::Status finished = snapshotter->FinishOpen();
    close_store(/*probe_done=*/true);
    if (!finished.ok()) {
      return absl::Status(
          finished.code(),
          absl::StrCat("the store's start-up could not finish (stopping "
                       "before serving; no write was acknowledged): ",
                       finished.message()));
    }
    LOG(INFO) << "stopped";
    return absl::OkStatus();
  }

  // Its directory made, a stale socket removed, and checked again: the
  // store may have taken a while to open (recovery, the quick_check), and
  // another daemon may have bound meanwhile. The
  // socket is bound under a name of our own, which PublishSocket links to
  // the address once it listens, and only if the address is still free
  // (socket_path.h).
  RETURN_IF_ERROR(PrepareSocketPath(cfg.address));
  std::string binding = BindingPath(cfg.address);
  if (binding == cfg.address) {
    LOG(WARNING) << "no name for the bind fits beside " << cfg.address
                 << " (108-byte limit): binding the address itself";
  }
  // Reads are answered on the service's completion-queue thread, mutations
  // on its bounded pool (beyond it: RESOURCE_EXHAUSTED; service.h).
  SnapshotsService service(snapshotter.get(), metrics.get());
  grpc::ServerBuilder builder;
  // Also applies to the connections added by fd below.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             kMaxStreamsPerConnection);
  service.AddTo(builder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    return absl::UnavailableError("cannot start the gRPC server");
  }
  service.Start();
  // The connections are accepted here and handed to gRPC, so that a
  // graceful stop can end them before gRPC's Shutdown (which would reset
  // the calls that reach it meanwhile: connection_listener.h). The socket
  // is created 0660 (rw for root and its group only).
  mode_t old_umask = umask(0117);
  absl::StatusOr<std::unique_ptr<ConnectionListener>> listener =
      ConnectionListener::Listen(binding, [&server](int fd) {
        grpc::AddInsecureChannelFromFd(server.get(), fd);
      });
  umask(old_umask);
  // What we bound, identified under our own name: at exit the address is
  // removed only if it is still this socket.
  absl::StatusOr<SocketFile> bound =
      listener.ok() ? IdentifySocket(binding) : listener.status();
  absl::Status published = bound.status();
  if (bound.ok()) {
    chmod(binding.c_str(), 0660);
    published = PublishSocket(binding, cfg.address);  // unlinks `binding`
  } else if (listener.ok() && binding != cfg.address) {
    unlink(binding.c_str());
  }
  if (!published.ok()) {
    // Nobody could reach it under the address: nothing to drain.
    if (listener.ok()) (*listener)->StopAccepting();
    server->Shutdown(absl::ToChronoTime(absl::Now()));
    server->Wait();
    service.Stop();
    if (absl::IsAlreadyExists(published)) {
      return absl::FailedPreconditionError(
          absl::StrCat(published.message(), ", for ", cfg.address,
                       "; is a second containerd-guest-pull-grpc running?"));
    }
    return published;
  }
  LOG(INFO) << "serving containerd.services.snapshots.v1 on " << cfg.address;
  sd_notify(0, "READY=1");
  absl::Notification stop_sweeping;
  // The store's start-up writes, which writes wait for (reads are served
  // already), then the leftovers. If they fail, the daemon stops as a
  // start that failed: no write was acknowledged.
  absl::Mutex finish_mu;
  absl::Status finished;
  std::thread sweeper([&] {
    if (absl::Status s = snapshotter->FinishOpen(); !s.ok()) {
      LOG(ERROR) << "the store's start-up could not finish: " << s;
      absl::MutexLock lock(&finish_mu);
      finished = s;
      kill(getpid(), SIGTERM);
      return;
    }
    // The layer cache is read now (not only at the first guest pull), so
    // that its state (loaded, missing, malformed) is in the start's log.
    guest_pull_layers->Refresh();
    SweepLeftovers(snapshotter.get(), &stop_sweeping);
  });
  std::unique_ptr<Watchdog> watchdog = StartWatchdog(snapshotter.get());

  int sig = WaitForTermination(signals);
  // Long filesystem work could hold the stop past TimeoutStopSec (the
  // sweeper is joined below, the drain waits for running calls): it stops
  // now (Snapshotter::StopLongWork). The deletions of the trash and of
  // removed snapshots' directories stop, and the next start deletes the
  // rest; a Commit still flushing its layer and an active snapshot's Usage
  // walk answer UNAVAILABLE, the Commit recording nothing.
  snapshotter->StopLongWork();
  absl::Status failed_start;
  {
    absl::MutexLock lock(&finish_mu);
    failed_start = finished;
  }
  if (failed_start.ok()) {
    LOG(INFO) << "received " << strsignal(sig)
              << ": stopping, finishing in-flight requests";
  } else {
    LOG(ERROR) << "stopping: the store's start-up could not finish (no "
                  "write was acknowledged); finishing in-flight reads";
  }
  sd_notify(0, "STOPPING=1");
  // The server first: stopping the watchdog may wait for a slow probe
  // (up to half WatchdogSec), which must not eat into the grace. The
  // server's Shutdown does not wait for the calls the service took.
  absl::Time drain_until = absl::Now() + kShutdownGrace;
  // New connections are refused; on the open ones a mutation that arrives
  // from now on gets a retryable UNAVAILABLE ("nothing was changed") and
  // reads are still answered, until the mutations that ran have sent their
  // replies; then new Lists are refused too, and the ones in progress
  // finish. Then the connections end, so that no call reaches gRPC's
  // Shutdown, which would reset it (CANCELLED: the client could not tell
  // whether it ran); a call on a connection that ends fails UNAVAILABLE.
  (*listener)->StopAccepting();
  // Gone with the listening socket: a client finds no daemon there, as
  // after an exit, rather than a socket that refuses it.
  if (absl::Status removed = RemoveSocketIfOurs(cfg.address, *bound);
      !removed.ok()) {
    LOG(WARNING) << removed.message();
  }
  if (!service.DrainMutations(drain_until)) {
    LOG(WARNING) << "some replies of mutations that ran were still not "
                    "sent when the grace ran out";
  }
  // A List in progress is let finish (a Walk cut in the middle fails after
  // it saw a part); one that arrives now is refused before its first
  // message. Both waits share the grace a client has to read its replies.
  absl::Time read_until = absl::Now() + kReplyReadGrace;
  if (!service.FinishLists(read_until)) {
    LOG(WARNING) << "some List calls were still streaming after "
                 << kReplyReadGrace << "; cutting them (UNAVAILABLE)";
  }
  if (int unread = (*listener)->WaitUntilRead(read_until); unread > 0) {
    LOG(WARNING) << unread << " client connection(s) had not read all their "
                 << "replies " << kReplyReadGrace << " after the drain"
                 << "; ending them anyway (those clients see UNAVAILABLE, "
                    "for calls that ran too)";
  }
  (*listener)->EndConnections();
  server->Shutdown(absl::ToChronoTime(drain_until));
  server->Wait();
  service.Stop(drain_until);
  // Its probe uses the snapshotter, closed below.
  bool probe_done = watchdog == nullptr || watchdog->Stop();
  stop_sweeping.Notify();
  sweeper.join();
  close_store(probe_done);
  {
    // Read again: a stop asked for meanwhile may have come first.
    absl::MutexLock lock(&finish_mu);
    failed_start = finished;
  }
  if (!failed_start.ok()) {
    return absl::Status(
        failed_start.code(),
        absl::StrCat("the store's start-up could not finish after serving "
                     "began (reads only; no write was acknowledged): ",
                     failed_start.message()));
  }
  LOG(INFO) << "stopped";
  return absl::OkStatus();
}

}  // namespace snapshotter
