// The Prometheus exporter: metric families, observers and the HTTP server.
#include "snapshotter/metrics/metrics_exporter.h"

#include <exception>
#include <string>
#include <thread>
#include <utility>

#include "CivetServer.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "glog/logging.h"
#include "prometheus/gauge.h"
#include "snapshotter/metrics/grpc_code_name.h"
#include "snapshotter/metrics/listen_address.h"
#include "snapshotter/metrics/wake_listener.h"
#include "snapshotter/version.h"
#include "base/status_macros.h"

namespace snapshotter {
namespace {

// civetweb reports why it failed to start only through its log callback, on
// the thread calling mg_start; Start() points this at a buffer meanwhile.
thread_local std::string* civetweb_capture = nullptr;

int CivetwebLog(const mg_connection*, const char* message) {
  if (civetweb_capture != nullptr) {
    if (!civetweb_capture->empty()) civetweb_capture->append("; ");
    civetweb_capture->append(message);
  } else {
    LOG(WARNING) << "metrics http server: " << message;
  }
  return 1;  // Handled: civetweb must not write to stderr itself.
}

// The one path served. civetweb gives a handler its path's whole subtree
// (a handler for /metrics answers /metrics/ and /metrics/x too): every
// other path is answered 404 here, before civetweb picks a handler, as Go's
// http.ServeMux does for containerd's /v1/metrics.
constexpr char kMetricsPath[] = "/metrics";
// What prometheus-cpp's GET answers with.
constexpr char kContentType[] = "text/plain; charset=utf-8";
constexpr char kNotAllowed[] =
    "Error 405: Method Not Allowed\n/metrics answers GET and HEAD\n";

// The path, and the methods prometheus-cpp does not serve: its handler has
// GET only, and civetweb answered any other method on /metrics "404 Not
// Found", as if there were no such endpoint. HEAD (health probes) gets the
// headers of a GET without collecting (the body's length is known only by
// collecting it; RFC 9110 lets a HEAD answer leave it out); other methods
// 405 with Allow: the endpoint changes nothing, and Prometheus scrapes with
// GET.
int OnlyMetricsPath(mg_connection* conn) {
  const mg_request_info* request = mg_get_request_info(conn);
  if (request == nullptr || request->local_uri == nullptr ||
      absl::string_view(request->local_uri) != kMetricsPath) {
    mg_send_http_error(conn, 404, "%s", "Not Found");
    return 404;
  }
  absl::string_view method =
      request->request_method == nullptr ? "" : request->request_method;
  if (method == "GET") return 0;  // prometheus-cpp serves it
  if (method == "HEAD") {
    mg_response_header_start(conn, 200);
    mg_response_header_add(conn, "Content-Type", kContentType, -1);
    mg_response_header_send(conn);
    return 200;
  }
  const std::string length = std::to_string(sizeof(kNotAllowed) - 1);
  mg_response_header_start(conn, 405);
  mg_response_header_add(conn, "Allow", "GET, HEAD", -1);
  mg_response_header_add(conn, "Content-Type", kContentType, -1);
  mg_response_header_add(conn, "Content-Length", length.c_str(), -1);
  mg_response_header_send(conn);
  mg_write(conn, kNotAllowed, sizeof(kNotAllowed) - 1);
  return 405;
}

std::string Label(absl::string_view value) {
  return value.empty() ? "unknown" : std::string(value);
}

}  // namespace

const std::vector<double>& MetricsExporter::RpcDurationBuckets() {
  // From 10 us: the reads answered from the index (Stat, List, Mounts)
  // take a few to tens of microseconds, and all fell in a first bucket of
  // 0.5 ms, so a read slowing down a hundredfold did not show.
  static const std::vector<double>* buckets = new std::vector<double>{
      0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
      0.0025,  0.005,    0.01,    0.025,  0.05,    0.1,    0.25,
      0.5,     1,        2.5,     5,      10,      30};
  return *buckets;
}

MetricsExporter::MetricsExporter(SnapshotCounter counter)
    : registry_(std::make_shared<prometheus::Registry>()),
      snapshots_(std::make_shared<SnapshotCollector>(std::move(counter))),
      rpc_requests_(prometheus::BuildCounter()
                        .Name("guest_pull_rpc_requests_total")
                        .Help("Finished Snapshots service RPCs.")
                        .Register(*registry_)),
      rpc_errors_(prometheus::BuildCounter()
                      .Name("guest_pull_rpc_errors_total")
                      .Help("Snapshots service RPCs that returned an error, "
                            "by gRPC code.")
                      .Register(*registry_)),
      rpc_duration_(prometheus::BuildHistogram()
                        .Name("guest_pull_rpc_duration_seconds")
                        .Help("Latency of Snapshots service RPCs.")
                        .Register(*registry_)),
      decisions_(prometheus::BuildCounter()
                     .Name("guest_pull_decisions_total")
                     .Help("Guest-pull decisions for CRI layers: skip (not "
                           "unpacked on the host) or unpack, with reason.")
                     .Register(*registry_)),
      cache_lookups_(prometheus::BuildCounter()
                         .Name("guest_pull_layer_cache_lookups_total")
                         .Help("Layer cache lookups while building a rootfs.")
                         .Register(*registry_)),
      cache_hits_(cache_lookups_.Add({{"result", "hit"}})),
      cache_misses_(cache_lookups_.Add({{"result", "miss"}})) {
  prometheus::BuildGauge()
      .Name("guest_pull_build_info")
      .Help("Build information; the value is always 1.")
      .Register(*registry_)
      .Add({{"version", kVersion}})
      .Set(1);
}

MetricsExporter::~MetricsExporter() { Stop(); }

bool MetricsExporter::Stop() {
  if (exposer_ != nullptr) StopServer();
  // No scrape runs now: the gauges' reads still running are the ones a
  // scrape gave up on, stuck (or about to be).
  bool reads_done = true;
  for (const auto& gauge : gauges_) {
    if (!gauge->Stop()) reads_done = false;
  }
  return reads_done;
}

void MetricsExporter::StopServer() {
  // civetweb's listener looks at its stop flag only between polls of 2 s
  // (SOCKET_TIMEOUT_QUANTUM), which the stop waited out: up to 2 s more of
  // every daemon stop, after its gRPC socket is gone. Connections wake it,
  // until the server is down (bounded: past 2 s the poll ends anyway). Each
  // waits 50 ms at most for its handshake: a firewall rule dropping packets
  // to the port held a blocking connect, and the stop, for two minutes.
  // The server's stop also waits for a scrape in progress, which waits for
  // no gauge read past its timeout (scrape_gauge.h).
  absl::Notification stopped;
  std::thread knocker([this, &stopped] {
    const std::string host = listen_host_ == "0.0.0.0" ? "127.0.0.1"
                                                       : listen_host_;
    for (int i = 0; i < 100 && !stopped.WaitForNotificationWithTimeout(
                                   absl::Milliseconds(20));
         ++i) {
      WakeListener(host, port_, absl::Milliseconds(50));
    }
  });
  exposer_.reset();
  stopped.Notify();
  knocker.join();
}

absl::StatusOr<std::unique_ptr<MetricsExporter>> MetricsExporter::Start(
    const std::string& address, SnapshotCounter counter) {
  ASSIGN_OR_RETURN(std::string spec, ListenSpec(address));
  if (!counter) {
    return absl::InvalidArgumentError("metrics: no snapshot counter");
  }

  std::unique_ptr<MetricsExporter> exporter(
      new MetricsExporter(std::move(counter)));

  CivetCallbacks callbacks;
  callbacks.log_message = &CivetwebLog;
  callbacks.begin_request = &OnlyMetricsPath;
  std::string why;
  civetweb_capture = &why;
  try {
    exporter->exposer_ = std::make_unique<prometheus::Exposer>(
        std::vector<std::string>{"listening_ports", spec,
                                 "num_threads", std::to_string(kHttpThreads),
                                 "request_timeout_ms",
                                 std::to_string(kRequestTimeoutMs)},
        &callbacks);
  } catch (const std::exception& e) {
    civetweb_capture = nullptr;
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot listen on \"", address,
                     "\": ", why.empty() ? e.what() : why));
  }
  civetweb_capture = nullptr;

  std::vector<int> ports = exporter->exposer_->GetListeningPorts();
  if (ports.size() != 1 || ports[0] <= 0) {
    return absl::InternalError(absl::StrCat("metrics: listening on \"", address,
                                            "\" gave no usable port"));
  }
  exporter->port_ = ports[0];
  exporter->listen_host_ = spec.substr(0, spec.rfind(':'));
  exporter->exposer_->RegisterCollectable(exporter->registry_, kMetricsPath);
  exporter->exposer_->RegisterCollectable(exporter->snapshots_, kMetricsPath);
  LOG(INFO) << "metrics: serving http://" << exporter->listen_host_
            << ":" << exporter->port_ << kMetricsPath;
  return exporter;
}

void MetricsExporter::AddScrapeGauge(const std::string& name,
                                     const std::string& help,
                                     GaugeReader read) {
  if (exposer_ == nullptr) return;  // stopped
  gauges_.push_back(std::make_shared<ScrapeGauge>(name, help, std::move(read)));
  exposer_->RegisterCollectable(gauges_.back(), kMetricsPath);
}

void MetricsExporter::ObserveRpc(absl::string_view rpc, absl::StatusCode code,
                                 absl::Duration latency) {
  std::string name = Label(rpc);
  rpc_requests_.Add({{"rpc", name}}).Increment();
  if (code != absl::StatusCode::kOk) {
    rpc_errors_.Add({{"rpc", name}, {"code", GrpcCodeName(code)}}).Increment();
  }
  double seconds = absl::ToDoubleSeconds(latency);
  if (seconds < 0) seconds = 0;
  rpc_duration_.Add({{"rpc", name}}, RpcDurationBuckets()).Observe(seconds);
}

void MetricsExporter::ObserveDecision(bool skip, absl::string_view reason) {
  decisions_
      .Add({{"decision", skip ? "skip" : "unpack"}, {"reason", Label(reason)}})
      .Increment();
}

void MetricsExporter::ObserveLayerCacheLookup(bool hit) {
  (hit ? cache_hits_ : cache_misses_).Increment();
}

}  // namespace snapshotter
