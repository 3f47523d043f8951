// The daemon's Prometheus exporter: an HTTP endpoint (/metrics) serving RPC,
// guest-pull and snapshot metrics. Off by default; the daemon starts one only
// when `[metrics] address = "host:port"` is configured, and passes it to the
// Snapshots service (RpcObserver) and the guest-pull logic
// (GuestPullObserver).
//
// Metrics:
//   guest_pull_rpc_requests_total{rpc}            counter
//   guest_pull_rpc_errors_total{rpc,code}         counter, non-OK only; code
//                                                 is the gRPC name ("NotFound")
//   guest_pull_rpc_duration_seconds{rpc}          histogram, 0.00001 .. 30 s
//   guest_pull_decisions_total{decision,reason}   counter, decision=skip|unpack
//   guest_pull_layer_cache_lookups_total{result}  counter, result=hit|miss
//   guest_pull_snapshots{kind}                    gauge, read at scrape time
//   guest_pull_snapshot_count_errors_total        counter
//   guest_pull_build_info{version}                gauge, always 1
//   AddScrapeGauge adds unlabelled gauges read at scrape time (the daemon's
//   guest_pull_undeletable_entries and guest_pull_quarantined_entries)
#ifndef SNAPSHOTTER_METRICS_METRICS_EXPORTER_H_
#define SNAPSHOTTER_METRICS_METRICS_EXPORTER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "snapshotter/guest_pull/observer.h"
#include "snapshotter/metrics/scrape_gauge.h"
#include "snapshotter/metrics/snapshot_collector.h"
#include "snapshotter/rpc_observer.h"

namespace snapshotter {

// Owns the metric registry and the HTTP server exposing it. Thread-safe: the
// Observe* methods may be called concurrently from any thread. Destroying it
// stops the server and frees the port.
class MetricsExporter : public RpcObserver, public guest_pull::GuestPullObserver {
 public:
  using SnapshotCounter = ::snapshotter::SnapshotCounter;

  // The HTTP server's worker threads. Each serves one connection at a time,
  // including one that sends nothing until kRequestTimeoutMs: a scrape
  // waits only when all of them hold such connections.
  static constexpr int kHttpThreads = 8;
  // How long a connection may take to send its request (and each read or
  // write takes): well within Prometheus' 10 s scrape timeout.
  static constexpr int kRequestTimeoutMs = 2000;

  // Upper bounds (seconds) of guest_pull_rpc_duration_seconds.
  static const std::vector<double>& RpcDurationBuckets();

  // Listens on `address` ("IPv4:port", "localhost:port" or ":port"; port 0
  // picks a free port, see port()). `counter` is called at every scrape.
  // Errors: InvalidArgument for a malformed address or empty counter;
  // Unavailable when the server cannot listen (e.g. address in use). Both
  // name the address.
  static absl::StatusOr<std::unique_ptr<MetricsExporter>> Start(
      const std::string& address, SnapshotCounter counter);

  ~MetricsExporter() override;
  MetricsExporter(const MetricsExporter&) = delete;
  MetricsExporter& operator=(const MetricsExporter&) = delete;

  // Stops the HTTP server (a scrape in progress finishes first; it waits
  // for no gauge read past ScrapeGauge::kReadTimeout), then the gauges'
  // reads: waits for a running one until its timeout is over at most.
  // Returns false if a read is still running (stuck): what its GaugeReader
  // uses must then stay alive. The destructor calls it.
  bool Stop();

  // The TCP port actually listened on.
  int port() const { return port_; }

  // Exports gauge `name`, read by `read` at every scrape, on a thread of its
  // own and waited for ScrapeGauge::kReadTimeout at most (scrape_gauge.h).
  // Nothing after Stop.
  void AddScrapeGauge(const std::string& name, const std::string& help,
                      GaugeReader read);

  void ObserveRpc(absl::string_view rpc, absl::StatusCode code,
                  absl::Duration latency) override;
  void ObserveDecision(bool skip, absl::string_view reason) override;
  void ObserveLayerCacheLookup(bool hit) override;

 private:
  explicit MetricsExporter(SnapshotCounter counter);
  void StopServer();

  // Declared before exposer_ so they outlive the server's threads.
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<SnapshotCollector> snapshots_;
  prometheus::Family<prometheus::Counter>& rpc_requests_;
  prometheus::Family<prometheus::Counter>& rpc_errors_;
  prometheus::Family<prometheus::Histogram>& rpc_duration_;
  prometheus::Family<prometheus::Counter>& decisions_;
  prometheus::Family<prometheus::Counter>& cache_lookups_;
  prometheus::Counter& cache_hits_;
  prometheus::Counter& cache_misses_;
  std::vector<std::shared_ptr<ScrapeGauge>> gauges_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string listen_host_;  // IPv4 literal of the listening spec
  int port_ = 0;
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_METRICS_METRICS_EXPORTER_H_
