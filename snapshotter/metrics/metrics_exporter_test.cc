// Tests for the Prometheus exporter: a real server on 127.0.0.1, scraped with
// curl, checked line by line.
#include "snapshotter/metrics/metrics_exporter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "snapshotter/version.h"

namespace snapshotter {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsSupersetOf;
using ::testing::Not;
using ::testing::StartsWith;
using Counts = std::map<std::string, int64_t>;

// Runs curl with `args` on http://127.0.0.1:<port><path>, the path sent as
// it is (dot segments too); error if curl fails (with --fail: on any
// non-2xx answer).
absl::StatusOr<std::string> Curl(const std::string& args, int port,
                                 const std::string& path) {
  std::string cmd = absl::StrCat("curl -sS --path-as-is --max-time 10 ", args,
                                 " http://127.0.0.1:", port, path, " 2>&1");
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return absl::InternalError("popen curl");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat(cmd, " -> ", rc, ": ", out));
  }
  return out;
}

// GETs http://127.0.0.1:<port><path>; error on any non-2xx answer.
absl::StatusOr<std::string> Get(int port, const std::string& path) {
  return Curl("--fail", port, path);
}

// The scrape's lines, HELP/TYPE comments included.
std::set<std::string> Scrape(const MetricsExporter& e) {
  absl::StatusOr<std::string> body = Get(e.port(), "/metrics");
  EXPECT_TRUE(body.ok()) << body.status();
  if (!body.ok()) return {};
  return absl::StrSplit(*body, '\n', absl::SkipEmpty());
}

// Lines of a scrape that start with `prefix`.
std::set<std::string> WithPrefix(const std::set<std::string>& lines,
                                 const std::string& prefix) {
  std::set<std::string> out;
  for (const auto& l : lines) {
    if (absl::StartsWith(l, prefix)) out.insert(l);
  }
  return out;
}

MetricsExporter::SnapshotCounter Fixed(Counts counts) {
  return [counts]() -> absl::StatusOr<Counts> { return counts; };
}

std::unique_ptr<MetricsExporter> StartLocal(
    MetricsExporter::SnapshotCounter counter) {
  auto e = MetricsExporter::Start("127.0.0.1:0", std::move(counter));
  EXPECT_TRUE(e.ok()) << e.status();
  if (!e.ok()) return nullptr;
  EXPECT_GT((*e)->port(), 0);
  return std::move(*e);
}

TEST(MetricsExporterTest, FreshExporterServesBuildInfoAndZeroSeries) {
  auto e = StartLocal(Fixed({}));
  ASSERT_NE(e, nullptr);
  auto lines = Scrape(*e);
  EXPECT_THAT(
      lines,
      IsSupersetOf(std::vector<std::string>{
          absl::StrCat("guest_pull_build_info{version=\"", kVersion, "\"} 1"),
          "# TYPE guest_pull_build_info gauge",
          "# TYPE guest_pull_snapshots gauge",
          "guest_pull_layer_cache_lookups_total{result=\"hit\"} 0",
          "guest_pull_layer_cache_lookups_total{result=\"miss\"} 0",
          "guest_pull_snapshots{kind=\"active\"} 0",
          "guest_pull_snapshots{kind=\"committed\"} 0",
          "guest_pull_snapshots{kind=\"view\"} 0",
          "guest_pull_snapshot_count_errors_total 0",
      }));
  // Labelled families without observations yet have no samples.
  EXPECT_THAT(lines, Not(Contains(StartsWith("guest_pull_rpc_"))));
  EXPECT_THAT(lines, Not(Contains(StartsWith("guest_pull_decisions_total"))));
}

TEST(MetricsExporterTest, RpcCountersErrorsAndHistogram) {
  auto e = StartLocal(Fixed({}));
  ASSERT_NE(e, nullptr);
  e->ObserveRpc("Prepare", absl::StatusCode::kOk, absl::Milliseconds(250));
  e->ObserveRpc("Prepare", absl::StatusCode::kNotFound,
                absl::Milliseconds(500));
  e->ObserveRpc("Stat", absl::StatusCode::kOk, absl::Seconds(40));
  e->ObserveRpc("Remove", absl::StatusCode::kFailedPrecondition,
                absl::Microseconds(100));
  e->ObserveRpc("Remove", absl::StatusCode::kFailedPrecondition,
                absl::Microseconds(-5));  // clock step: counted as 0 s
  auto lines = Scrape(*e);

  EXPECT_THAT(
      WithPrefix(lines, "guest_pull_rpc_requests_total{"),
      (std::set<std::string>{"guest_pull_rpc_requests_total{rpc=\"Prepare\"} 2",
                             "guest_pull_rpc_requests_total{rpc=\"Remove\"} 2",
                             "guest_pull_rpc_requests_total{rpc=\"Stat\"} 1"}));
  EXPECT_THAT(WithPrefix(lines, "guest_pull_rpc_errors_total{"),
              (std::set<std::string>{
                  "guest_pull_rpc_errors_total{code=\"FailedPrecondition\","
                  "rpc=\"Remove\"} 2",
                  "guest_pull_rpc_errors_total{code=\"NotFound\","
                  "rpc=\"Prepare\"} 1"}));
  EXPECT_THAT(
      lines,
      IsSupersetOf(std::vector<std::string>{
          "# TYPE guest_pull_rpc_duration_seconds histogram",
          "# TYPE guest_pull_rpc_errors_total counter",
          "guest_pull_rpc_duration_seconds_count{rpc=\"Prepare\"} 2",
          "guest_pull_rpc_duration_seconds_sum{rpc=\"Prepare\"} 0.75",
          "guest_pull_rpc_duration_seconds_bucket{rpc=\"Prepare\",le=\"0.1\"} "
          "0",
          "guest_pull_rpc_duration_seconds_bucket{rpc=\"Prepare\",le=\"0.25\"} "
          "1",
          "guest_pull_rpc_duration_seconds_bucket{rpc=\"Prepare\",le=\"0.5\"} "
          "2",
          "guest_pull_rpc_duration_seconds_bucket{rpc=\"Prepare\",le=\"+Inf\"} "
          "2",
          "guest_pull_rpc_duration_seconds_count{rpc=\"Stat\"} 1",
          "guest_pull_rpc_duration_seconds_sum{rpc=\"Stat\"} 40",
          "guest_pull_rpc_duration_seconds_bucket{rpc=\"Stat\",le=\"30\"} 0",
          "guest_pull_rpc_duration_seconds_bucket{rpc=\"Stat\",le=\"+Inf\"} 1",
          "guest_pull_rpc_duration_seconds_bucket{rpc=\"Remove\",le=\"0.0005\"}"
          " 2",
      }));
  // 20 finite buckets from 10 us to 30 s, plus +Inf.
  EXPECT_EQ(
      WithPrefix(lines, "guest_pull_rpc_duration_seconds_bucket{rpc=\"Stat\"")
          .size(),
      MetricsExporter::RpcDurationBuckets().size() + 1);
  EXPECT_EQ(MetricsExporter::RpcDurationBuckets().front(), 0.00001);
  EXPECT_EQ(MetricsExporter::RpcDurationBuckets().back(), 30);
}

// Reads answered from the index take microseconds: a 20 us Stat and a
// 400 us one must fall in different buckets (both were under the first,
// 0.5 ms).
TEST(MetricsExporterTest, MicrosecondReadsAreResolved) {
  auto e = StartLocal(Fixed({}));
  ASSERT_NE(e, nullptr);
  e->ObserveRpc("Stat", absl::StatusCode::kOk, absl::Microseconds(20));
  e->ObserveRpc("Stat", absl::StatusCode::kOk, absl::Microseconds(400));
  EXPECT_THAT(
      Scrape(*e),
      IsSupersetOf(std::vector<std::string>{
          "guest_pull_rpc_duration_seconds_bucket{rpc=\"Stat\",le=\"1e-05\"} 0",
          "guest_pull_rpc_duration_seconds_bucket{rpc=\"Stat\",le=\"2.5e-05\"} 1",
          "guest_pull_rpc_duration_seconds_bucket{rpc=\"Stat\",le=\"0.00025\"} 1",
          "guest_pull_rpc_duration_seconds_bucket{rpc=\"Stat\",le=\"0.0005\"} 2",
      }));
}

TEST(MetricsExporterTest, DecisionsAndLayerCacheLookups) {
  auto e = StartLocal(Fixed({}));
  ASSERT_NE(e, nullptr);
  e->ObserveDecision(true, "guest-pull");
  e->ObserveDecision(true, "guest-pull");
  e->ObserveDecision(false, "not-cri");
  e->ObserveDecision(false, "");
  e->ObserveLayerCacheLookup(true);
  e->ObserveLayerCacheLookup(false);
  e->ObserveLayerCacheLookup(false);
  auto lines = Scrape(*e);
  EXPECT_THAT(
      WithPrefix(lines, "guest_pull_decisions_total{"),
      (std::set<std::string>{
          "guest_pull_decisions_total{decision=\"skip\",reason=\"guest-pull\"} "
          "2",
          "guest_pull_decisions_total{decision=\"unpack\",reason=\"not-cri\"} "
          "1",
          "guest_pull_decisions_total{decision=\"unpack\",reason=\"unknown\"} "
          "1"}));
  EXPECT_THAT(lines,
              IsSupersetOf(std::vector<std::string>{
                  "guest_pull_layer_cache_lookups_total{result=\"hit\"} 1",
                  "guest_pull_layer_cache_lookups_total{result=\"miss\"} 2",
              }));
}

TEST(MetricsExporterTest, SnapshotGaugeIsReadAtEachScrape) {
  std::atomic<int> calls{0};
  auto e = StartLocal([&]() -> absl::StatusOr<Counts> {
    int n = ++calls;
    return Counts{{"active", n}, {"committed", 10 * n}, {"guest_pulled", 4}};
  });
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(calls.load(), 0);  // not called before the first scrape
  EXPECT_THAT(
      WithPrefix(Scrape(*e), "guest_pull_snapshots{"),
      (std::set<std::string>{"guest_pull_snapshots{kind=\"active\"} 1",
                             "guest_pull_snapshots{kind=\"committed\"} 10",
                             "guest_pull_snapshots{kind=\"guest_pulled\"} 4",
                             "guest_pull_snapshots{kind=\"view\"} 0"}));
  EXPECT_THAT(
      WithPrefix(Scrape(*e), "guest_pull_snapshots{"),
      (std::set<std::string>{"guest_pull_snapshots{kind=\"active\"} 2",
                             "guest_pull_snapshots{kind=\"committed\"} 20",
                             "guest_pull_snapshots{kind=\"guest_pulled\"} 4",
                             "guest_pull_snapshots{kind=\"view\"} 0"}));
  EXPECT_EQ(calls.load(), 2);
}

TEST(MetricsExporterTest, CounterFailureDropsGaugeAndCountsError) {
  std::atomic<bool> fail{true};
  auto e = StartLocal([&]() -> absl::StatusOr<Counts> {
    if (fail) return absl::UnavailableError("metadata store busy");
    return Counts{{"view", 3}};
  });
  ASSERT_NE(e, nullptr);
  auto failed = Scrape(*e);
  EXPECT_THAT(WithPrefix(failed, "guest_pull_snapshots{"), testing::IsEmpty());
  EXPECT_THAT(failed, Contains("guest_pull_snapshot_count_errors_total 1"));
  // The rest of the scrape is unaffected.
  EXPECT_THAT(failed, Contains(absl::StrCat("guest_pull_build_info{version=\"",
                                            kVersion, "\"} 1")));
  fail = false;
  auto ok = Scrape(*e);
  EXPECT_THAT(ok, IsSupersetOf(std::vector<std::string>{
                      "guest_pull_snapshots{kind=\"view\"} 3",
                      "guest_pull_snapshot_count_errors_total 1"}));
}

// Only /metrics: paths below it were served the scrape too (civetweb gives
// a handler its path's subtree), unlike containerd's /v1/metrics.
TEST(MetricsExporterTest, OnlyMetricsPathIsServed) {
  auto e = StartLocal(Fixed({}));
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(Get(e->port(), "/metrics").ok());
  for (const char* path : {"/", "/metrics/", "/metrics/anything",
                           "/metrics/metrics", "/metricsx", "/metrics.txt",
                           "/x/metrics", "/metrics/.."}) {
    absl::StatusOr<std::string> other = Get(e->port(), path);
    EXPECT_FALSE(other.ok()) << path << " served:\n" << other.value_or("");
    EXPECT_THAT(other.status().message(), HasSubstr("404")) << path;
  }
  // The same path, cleaned or percent-encoded, is the scrape.
  EXPECT_TRUE(Get(e->port(), "/x/../metrics").ok());
  EXPECT_TRUE(Get(e->port(), "/%6detrics").ok());
}

// HEAD (what health probes send) and POST on /metrics were "404 Not
// Found", as if there were no endpoint: prometheus-cpp's handler has GET
// only. HEAD gets a GET's status and headers; the methods that would
// change something 405 with the ones allowed.
TEST(MetricsExporterTest, HeadAnswersLikeGetAndOtherMethodsAreNotAllowed) {
  auto e = StartLocal(Fixed({}));
  ASSERT_NE(e, nullptr);
  absl::StatusOr<std::string> head = Curl("--fail -I", e->port(), "/metrics");
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_THAT(*head, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(*head, HasSubstr("Content-Type: text/plain; charset=utf-8\r\n"));
  absl::StatusOr<std::string> get = Curl("--fail -i", e->port(), "/metrics");
  ASSERT_TRUE(get.ok()) << get.status();
  EXPECT_THAT(*get, HasSubstr("Content-Type: text/plain; charset=utf-8\r\n"));
  // Other paths stay 404 for HEAD too.
  absl::StatusOr<std::string> other = Curl("-I", e->port(), "/metrics/x");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_THAT(*other, StartsWith("HTTP/1.1 404"));

  for (const char* args : {"-X POST", "-X POST -d x=1", "-X PUT -d x",
                           "-X DELETE", "-X PATCH -d x"}) {
    absl::StatusOr<std::string> answer =
        Curl(absl::StrCat("-i ", args), e->port(), "/metrics");
    ASSERT_TRUE(answer.ok()) << args << ": " << answer.status();
    EXPECT_THAT(*answer, StartsWith("HTTP/1.1 405 Method Not Allowed\r\n"))
        << args;
    EXPECT_THAT(*answer, HasSubstr("Allow: GET, HEAD\r\n")) << args;
    EXPECT_THAT(*answer, HasSubstr("/metrics answers GET and HEAD")) << args;
  }
  absl::StatusOr<std::string> post_other =
      Curl("-i -X POST", e->port(), "/other");
  ASSERT_TRUE(post_other.ok()) << post_other.status();
  EXPECT_THAT(*post_other, StartsWith("HTTP/1.1 404"));
  // The server still serves.
  EXPECT_THAT(Scrape(*e), Contains("guest_pull_snapshots{kind=\"view\"} 0"));
}

// A gauge read stuck in the disk (guest_pull_quarantined_entries lists a
// directory) held the scrape under prometheus-cpp's lock: that scrape,
// every later one, and the exporter's stop (the daemon's SIGTERM) hung
// until the read returned. Now the scrape waits for it
// ScrapeGauge::kReadTimeout at most, later ones not at all, and the stop
// leaves it running.
TEST(MetricsExporterTest, StuckGaugeReadHangsNeitherScrapesNorStop) {
  struct Blocked {
    absl::Notification release;
    std::atomic<int> calls{0};
    std::atomic<int> returned{0};
  };
  auto blocked = std::make_shared<Blocked>();
  auto e = StartLocal(Fixed({{"view", 2}}));
  ASSERT_NE(e, nullptr);
  e->AddScrapeGauge("guest_pull_test_stuck_entries", "help",
                    [blocked]() -> absl::StatusOr<int64_t> {
                      ++blocked->calls;
                      blocked->release.WaitForNotification();
                      ++blocked->returned;
                      return 1;
                    });
  e->AddScrapeGauge("guest_pull_test_entries", "help",
                    []() -> absl::StatusOr<int64_t> { return 7; });

  absl::Time start = absl::Now();
  auto first = Scrape(*e);
  EXPECT_LT(absl::Now() - start,
            ScrapeGauge::kReadTimeout + absl::Seconds(1));
  EXPECT_THAT(first, IsSupersetOf(std::vector<std::string>{
                         "guest_pull_test_stuck_entries_read_errors_total 1",
                         "guest_pull_test_entries 7",
                         "guest_pull_snapshots{kind=\"view\"} 2",
                     }));
  EXPECT_THAT(first,
              Not(Contains(StartsWith("guest_pull_test_stuck_entries "))));
  for (int i = 2; i <= 4; ++i) {
    start = absl::Now();
    auto later = Scrape(*e);
    EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
    EXPECT_THAT(later,
                Contains(absl::StrCat(
                    "guest_pull_test_stuck_entries_read_errors_total ", i)));
    EXPECT_THAT(later, Contains("guest_pull_test_entries 7"));
  }
  EXPECT_TRUE(Curl("--fail -I", e->port(), "/metrics").ok());
  EXPECT_EQ(blocked->calls.load(), 1);  // never a second stuck thread

  int port = e->port();
  start = absl::Now();
  EXPECT_FALSE(e->Stop());  // the read still runs
  e.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_FALSE(Get(port, "/metrics").ok());
  // It returns later, into state of its own.
  blocked->release.Notify();
  for (int i = 0; i < 500 && blocked->returned.load() == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(blocked->returned.load(), 1);
}

// A TCP connection to 127.0.0.1:`port` that sends nothing; -1 on failure.
int IdleConnection(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 &&
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Connections that send nothing each hold a worker: a few leave the
// others free to serve a scrape at once; as many as there are workers
// delay it by the request timeout at most (it was 10 s, Prometheus' whole
// scrape timeout, with two workers).
TEST(MetricsExporterTest, IdleConnectionsDelayAScrapeOnlyBriefly) {
  auto e = StartLocal(Fixed({}));
  ASSERT_NE(e, nullptr);
  std::vector<int> idle;
  auto timed_scrape = [&] {
    absl::SleepFor(absl::Milliseconds(200));  // the idle ones are taken
    absl::Time start = absl::Now();
    EXPECT_TRUE(Get(e->port(), "/metrics").ok());
    return absl::Now() - start;
  };
  for (int i = 0; i < 2; ++i) idle.push_back(IdleConnection(e->port()));
  EXPECT_LT(timed_scrape(), absl::Seconds(1));
  while (idle.size() < MetricsExporter::kHttpThreads) {
    idle.push_back(IdleConnection(e->port()));
  }
  EXPECT_LT(timed_scrape(),
            absl::Milliseconds(MetricsExporter::kRequestTimeoutMs) +
                absl::Seconds(2));
  for (int fd : idle) {
    EXPECT_GE(fd, 0);
    if (fd >= 0) close(fd);
  }
}

TEST(MetricsExporterTest, PortInUseIsAClearError) {
  auto first = StartLocal(Fixed({}));
  ASSERT_NE(first, nullptr);
  std::string address = absl::StrCat("127.0.0.1:", first->port());
  auto second = MetricsExporter::Start(address, Fixed({}));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(),
              HasSubstr(absl::StrCat("\"", address, "\"")));
  EXPECT_THAT(second.status().message(), HasSubstr("in use"));
  // The first exporter still serves.
  EXPECT_THAT(Scrape(*first),
              Contains("guest_pull_snapshots{kind=\"view\"} 0"));
}

TEST(MetricsExporterTest, DestroyingFreesThePort) {
  auto first = StartLocal(Fixed({}));
  ASSERT_NE(first, nullptr);
  int port = first->port();
  first.reset();
  EXPECT_FALSE(Get(port, "/metrics").ok());
  auto again =
      MetricsExporter::Start(absl::StrCat("127.0.0.1:", port), Fixed({}));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->port(), port);
  EXPECT_FALSE(Scrape(**again).empty());
}

// The daemon's stop destroys the exporter after the gRPC socket is gone,
// so its stop is part of every restart's downtime. civetweb's listener
// looks at its stop flag only between polls of 2 s: a stop waited out the
// rest of one (0-2 s, 1.9 s here, 100 ms into a poll). The exporter wakes
// it with a connection of its own.
TEST(MetricsExporterTest, StopsWithoutWaitingOutTheListenersPoll) {
  auto e = StartLocal(Fixed({}));
  ASSERT_NE(e, nullptr);
  int port = e->port();
  absl::SleepFor(absl::Milliseconds(100));  // the listener in its poll
  absl::Time start = absl::Now();
  e.reset();
  absl::Duration took = absl::Now() - start;
  EXPECT_LT(took, absl::Seconds(1));
  EXPECT_FALSE(Get(port, "/metrics").ok());
}

TEST(MetricsExporterTest, BadAddressesAreInvalidArgument) {
  for (const char* bad :
       {"bogus", "127.0.0.1", "127.0.0.1:70000", "999.1.1.1:9100", "[::1]:9100",
        "127.0.0.1:9100s", "metrics.example:9100"}) {
    auto e = MetricsExporter::Start(bad, Fixed({}));
    ASSERT_FALSE(e.ok()) << bad;
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(e.status().message(), HasSubstr(bad));
  }
}

TEST(MetricsExporterTest, EmptyCounterIsInvalidArgument) {
  auto e = MetricsExporter::Start("127.0.0.1:0", nullptr);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MetricsExporterTest, ConcurrentObservationsAndScrapesAddUp) {
  auto e = StartLocal(Fixed({{"active", 1}}));
  ASSERT_NE(e, nullptr);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 2000;
  std::atomic<bool> done{false};
  std::thread scraper([&] {
    for (int i = 0; i < 50 && !done; ++i) {
      EXPECT_TRUE(Get(e->port(), "/metrics").ok());
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      std::string rpc = (t % 2 == 0) ? "Prepare" : "Commit";
      for (int i = 0; i < kPerThread; ++i) {
        e->ObserveRpc(rpc,
                      i % 4 == 0 ? absl::StatusCode::kAlreadyExists
                                 : absl::StatusCode::kOk,
                      absl::Milliseconds(1));
        e->ObserveDecision(i % 2 == 0, "guest-pull");
        e->ObserveLayerCacheLookup(i % 3 == 0);
      }
    });
  }
  for (auto& w : workers) w.join();
  done = true;
  scraper.join();

  const int half = kThreads / 2 * kPerThread;
  auto lines = Scrape(*e);
  EXPECT_THAT(
      lines,
      IsSupersetOf(std::vector<std::string>{
          absl::StrCat("guest_pull_rpc_requests_total{rpc=\"Prepare\"} ", half),
          absl::StrCat("guest_pull_rpc_requests_total{rpc=\"Commit\"} ", half),
          absl::StrCat("guest_pull_rpc_errors_total{code=\"AlreadyExists\","
                       "rpc=\"Commit\"} ",
                       half / 4),
          absl::StrCat("guest_pull_rpc_duration_seconds_count{rpc=\"Commit\"} ",
                       half),
          absl::StrCat("guest_pull_decisions_total{decision=\"skip\","
                       "reason=\"guest-pull\"} ",
                       kThreads * kPerThread / 2),
          absl::StrCat("guest_pull_layer_cache_lookups_total{result=\"hit\"} ",
                       kThreads * ((kPerThread + 2) / 3)),
      }));
}

}  // namespace
}  // namespace snapshotter
