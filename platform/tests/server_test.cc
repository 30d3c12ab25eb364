// The server runner over real sockets: API + admin + /metrics, logs, shutdown, signals.
#include "platform/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "parcours/admin/v1/admin.grpc.pb.h"
#include "parcours/bench/v1/bench.grpc.pb.h"
#include "platform/config.h"
#include "platform/log.h"
#include "platform/testing/health_client.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace parcours {
namespace {

using ::parcours::bench::v1::BenchService;
using ::parcours::bench::v1::EchoRequest;
using ::parcours::bench::v1::EchoResponse;
using ::parcours::testing::CheckHealth;
using ::parcours::testing::ServingStatus;
using ::testing::HasSubstr;

constexpr char kTraceparent[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
constexpr char kTraceId[] = "4bf92f3577b34da6a3ce929d0e0e4736";

// A test-only BenchService: "sleep:<ms>" sleeps that long; every call logs from the handler.
class SlowEcho final : public BenchService::Service {
 public:
  grpc::Status Echo(grpc::ServerContext*, const EchoRequest* request,
                    EchoResponse* response) override {
    entered.fetch_add(1);
    log::Info("in handler");
    int ms = 0;
    if (absl::StartsWith(request->payload(), "sleep:") &&
        absl::SimpleAtoi(request->payload().substr(6), &ms)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
    response->set_payload(request->payload());
    return grpc::Status::OK;
  }
  std::atomic<int> entered{0};
};

// Captures log lines for the life of the object.
class LogCapture {
 public:
  LogCapture() {
    log::SetSinkForTesting([this](std::string_view line) {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.emplace_back(line);
    });
  }
  ~LogCapture() { log::SetSinkForTesting(nullptr); }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

std::shared_ptr<grpc::Channel> Channel(int port) {
  return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
}

grpc::Status CallEcho(int port, const std::string& payload, EchoResponse* response,
                      grpc::ClientContext* context = nullptr) {
  grpc::ClientContext local;
  if (context == nullptr) context = &local;
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  EchoRequest request;
  request.set_payload(payload);
  return BenchService::NewStub(Channel(port))->Echo(context, request, response);
}

// GET http://127.0.0.1:port/path; returns the body ("" on failure).
std::string HttpGet(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return "";
  }
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  if (::send(fd, request.data(), request.size(), 0) != static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return "";
  }
  std::string response;
  char buf[8192];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, static_cast<size_t>(n));
  ::close(fd);
  if (!absl::StartsWith(response, "HTTP/1.1 200") && !absl::StartsWith(response, "HTTP/1.0 200")) {
    return "";
  }
  const size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

// Value of the first sample of `name` whose labels contain every `label="value"` given; -1 if
// there is none.
double MetricValue(const std::string& body, const std::string& name,
                   const std::vector<std::string>& labels) {
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    if (!absl::StartsWith(line, absl::StrCat(name, "{"))) continue;
    bool all = true;
    for (const auto& l : labels) all = all && absl::StrContains(line, l);
    if (!all) continue;
    const size_t space = line.rfind(' ');
    double v;
    if (space != absl::string_view::npos && absl::SimpleAtod(line.substr(space + 1), &v)) return v;
  }
  return -1;
}

ServerOptions TestOptions() {
  ServerOptions o;
  o.service_name = "server-test";
  o.drain_timeout = absl::Seconds(5);
  return o;
}

// ---------------------------------------------------------------------------------------------

TEST(ServerRunnerTest, EchoOverRealChannel) {
  ServerOptions o = TestOptions();
  o.bench_echo = true;
  ServerRunner runner(o);
  ASSERT_TRUE(runner.Start().ok());
  ASSERT_GT(runner.port(), 0);
  ASSERT_GT(runner.admin_port(), 0);
  ASSERT_GT(runner.metrics_port(), 0);
  EXPECT_NE(runner.port(), runner.admin_port());

  EchoResponse response;
  grpc::ClientContext context;
  context.AddMetadata("x-request-id", "req-123");
  grpc::Status status = CallEcho(runner.port(), "hello", &response, &context);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.payload(), "hello");
  // The request id comes back in the response metadata.
  auto it = context.GetServerInitialMetadata().find("x-request-id");
  ASSERT_NE(it, context.GetServerInitialMetadata().end());
  EXPECT_EQ(std::string(it->second.data(), it->second.size()), "req-123");

  // Not served on the admin port.
  status = CallEcho(runner.admin_port(), "hello", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  runner.Shutdown();
}

TEST(ServerRunnerTest, BenchEchoIsOffByDefault) {
  ServerRunner runner(TestOptions());
  ASSERT_TRUE(runner.Start().ok());
  EchoResponse response;
  EXPECT_EQ(CallEcho(runner.port(), "x", &response).error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST(ServerRunnerTest, HealthAndBuildInfoOnAdminPort) {
  SlowEcho service;
  ServerRunner runner(TestOptions());
  runner.AddService(&service);
  runner.SetBuildInfo(3, 2, "sqlite");
  ASSERT_TRUE(runner.Start().ok());

  auto admin = Channel(runner.admin_port());
  ServingStatus s = ServingStatus::kUnknown;
  ASSERT_TRUE(CheckHealth(admin, "", &s).ok());
  EXPECT_EQ(s, ServingStatus::kServing);
  s = ServingStatus::kUnknown;
  ASSERT_TRUE(CheckHealth(admin, "parcours.bench.v1.BenchService", &s).ok());
  EXPECT_EQ(s, ServingStatus::kServing);
  s = ServingStatus::kUnknown;
  ASSERT_TRUE(CheckHealth(admin, "parcours.admin.v1.AdminService", &s).ok());
  EXPECT_EQ(s, ServingStatus::kServing);
  EXPECT_EQ(CheckHealth(admin, "no.such.Service", &s).error_code(), grpc::StatusCode::NOT_FOUND);

  // The API port has the health service too.
  s = ServingStatus::kUnknown;
  ASSERT_TRUE(CheckHealth(Channel(runner.port()), "parcours.bench.v1.BenchService", &s).ok());
  EXPECT_EQ(s, ServingStatus::kServing);

  grpc::ClientContext context;
  admin::v1::BuildInfo info;
  ASSERT_TRUE(admin::v1::AdminService::NewStub(admin)
                  ->GetBuildInfo(&context, admin::v1::GetBuildInfoRequest(), &info)
                  .ok());
  EXPECT_EQ(info.service(), "server-test");
  EXPECT_EQ(info.expected_schema_version(), 3);
  EXPECT_EQ(info.database_schema_version(), 2);
  EXPECT_EQ(info.database_dialect(), "sqlite");
}

TEST(ServerRunnerTest, MetricsCountCallsByMethodAndCode) {
  ServerOptions o = TestOptions();
  o.bench_echo = true;
  ServerRunner runner(o);
  auto& gauge_family = prometheus::BuildGauge()
                           .Name("test_scrapes")
                           .Help("scrapes")
                           .Register(runner.metrics_registry());
  auto& gauge = gauge_family.Add({});
  runner.OnScrape([&gauge] { gauge.Increment(); });
  ASSERT_TRUE(runner.Start().ok());

  EchoResponse response;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(CallEcho(runner.port(), "x", &response).ok());
  // An unknown method on a known service and on an unknown one.
  for (const char* method : {"/parcours.bench.v1.BenchService/Nope", "/no.such.Service/Call"}) {
    grpc::ClientContext context;
    std::string out;
    grpc::Status status =
        testing::RawUnaryCall(Channel(runner.port()).get(), method, "", &out, &context);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << method;
  }

  // The health service on the API port is a known service.
  ServingStatus serving;
  ASSERT_TRUE(CheckHealth(Channel(runner.port()), "", &serving).ok());

  const std::string body = HttpGet(runner.metrics_port(), "/metrics");
  ASSERT_FALSE(body.empty());
  EXPECT_EQ(MetricValue(body, "grpc_server_handled_total",
                        {"grpc_service=\"grpc.health.v1.Health\"", "grpc_method=\"Check\"",
                         "grpc_code=\"OK\""}),
            1);
  EXPECT_EQ(MetricValue(body, "grpc_server_handled_total",
                        {"grpc_service=\"parcours.bench.v1.BenchService\"", "grpc_method=\"Echo\"",
                         "grpc_code=\"OK\""}),
            3);
  EXPECT_EQ(
      MetricValue(body, "grpc_server_started_total",
                  {"grpc_service=\"parcours.bench.v1.BenchService\"", "grpc_method=\"Echo\""}),
      3);
  EXPECT_EQ(MetricValue(body, "grpc_server_handling_seconds_count", {"grpc_method=\"Echo\""}), 3);
  EXPECT_EQ(MetricValue(body, "grpc_server_handling_seconds_bucket",
                        {"grpc_method=\"Echo\"", "le=\"+Inf\""}),
            3);
  // Unknown methods are counted under one label set: clients cannot create series at will.
  EXPECT_EQ(MetricValue(body, "grpc_server_handled_total",
                        {"grpc_service=\"unknown\"", "grpc_method=\"unknown\"",
                         "grpc_code=\"UNIMPLEMENTED\""}),
            2)
      << body;
  EXPECT_THAT(body, ::testing::Not(HasSubstr("Nope")));
  EXPECT_THAT(body, ::testing::Not(HasSubstr("no.such.Service")));
  // The scrape hook ran before collection.
  EXPECT_THAT(body, HasSubstr("test_scrapes 1"));
  const std::string body2 = HttpGet(runner.metrics_port(), "/metrics");
  EXPECT_THAT(body2, HasSubstr("test_scrapes 2"));
}

TEST(ServerRunnerTest, MetricsCanBeDisabled) {
  ServerOptions o = TestOptions();
  o.metrics_listen = "";
  ServerRunner runner(o);
  ASSERT_TRUE(runner.Start().ok());
  EXPECT_EQ(runner.metrics_port(), 0);
}

TEST(ServerRunnerTest, AccessLogCarriesTraceAndRequestIds) {
  LogCapture capture;
  SlowEcho service;
  ServerRunner runner(TestOptions());
  runner.AddService(&service);
  ASSERT_TRUE(runner.Start().ok());

  EchoResponse response;
  {
    grpc::ClientContext context;
    context.AddMetadata("traceparent", kTraceparent);
    context.AddMetadata("x-request-id", "abc-42");
    ASSERT_TRUE(CallEcho(runner.port(), "x", &response, &context).ok());
  }
  {
    grpc::ClientContext context;  // no ids: a request id is generated, no trace id
    context.AddMetadata("traceparent", "garbage");
    ASSERT_TRUE(CallEcho(runner.port(), "y", &response, &context).ok());
  }
  runner.Shutdown();

  std::vector<std::string> access, handler;
  for (const auto& line : capture.lines()) {
    if (absl::StrContains(line, "\"msg\":\"rpc\"")) access.push_back(line);
    if (absl::StrContains(line, "\"msg\":\"in handler\"")) handler.push_back(line);
  }
  ASSERT_EQ(access.size(), 2u);
  ASSERT_EQ(handler.size(), 2u);

  EXPECT_THAT(access[0], HasSubstr(absl::StrCat("\"trace_id\":\"", kTraceId, "\"")));
  EXPECT_THAT(access[0], HasSubstr("\"request_id\":\"abc-42\""));
  EXPECT_THAT(access[0], HasSubstr("\"method\":\"/parcours.bench.v1.BenchService/Echo\""));
  EXPECT_THAT(access[0], HasSubstr("\"grpc_code\":\"OK\""));
  EXPECT_THAT(access[0], HasSubstr("\"duration_ms\":"));
  EXPECT_THAT(access[0], HasSubstr("\"service\":\"server-test\""));
  EXPECT_THAT(access[0], ::testing::StartsWith("{\"ts\":\""));
  // A line logged inside the handler carries the same ids.
  EXPECT_THAT(handler[0], HasSubstr(absl::StrCat("\"trace_id\":\"", kTraceId, "\"")));
  EXPECT_THAT(handler[0], HasSubstr("\"request_id\":\"abc-42\""));

  EXPECT_THAT(access[1], ::testing::Not(HasSubstr("trace_id")));
  EXPECT_THAT(access[1],
              ::testing::ContainsRegex(
                  "\"request_id\":\"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                  "[0-9a-f]{12}\""));
  // Nothing about the peer.
  EXPECT_THAT(access[0], ::testing::Not(HasSubstr("127.0.0.1")));
  // The handler thread is left clean.
  EXPECT_TRUE(log::CurrentCall().request_id.empty());
}

TEST(ServerRunnerTest, GracefulShutdown) {
  SlowEcho service;
  ServerOptions o = TestOptions();
  o.drain_grace = absl::Milliseconds(300);
  o.drain_timeout = absl::Seconds(5);
  ServerRunner runner(o);
  runner.AddService(&service);
  ASSERT_TRUE(runner.Start().ok());
  const int port = runner.port();
  auto admin = Channel(runner.admin_port());
  ServingStatus s = ServingStatus::kUnknown;
  ASSERT_TRUE(CheckHealth(admin, "", &s).ok());
  ASSERT_EQ(s, ServingStatus::kServing);

  // A slow call in flight.
  auto slow = std::async(std::launch::async, [port] {
    EchoResponse response;
    return CallEcho(port, "sleep:700", &response);
  });
  const auto wait_start = std::chrono::steady_clock::now();
  while (service.entered.load() == 0 &&
         std::chrono::steady_clock::now() - wait_start < std::chrono::seconds(5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(service.entered.load(), 1);

  const auto shutdown_start = std::chrono::steady_clock::now();
  std::thread stopper([&runner] { runner.Shutdown(); });

  // Health turns NOT_SERVING on the admin port while the runner drains.
  bool saw_not_serving = false;
  for (int i = 0; i < 100 && !saw_not_serving; ++i) {
    ServingStatus now = ServingStatus::kUnknown;
    if (CheckHealth(admin, "", &now).ok() && now == ServingStatus::kNotServing) {
      saw_not_serving = true;
      ServingStatus svc = ServingStatus::kUnknown;
      EXPECT_TRUE(CheckHealth(admin, "parcours.bench.v1.BenchService", &svc).ok());
      EXPECT_EQ(svc, ServingStatus::kNotServing);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  EXPECT_TRUE(saw_not_serving);
  // During the grace period the API still answers (load balancers are catching up).
  EchoResponse response;
  EXPECT_TRUE(CallEcho(port, "during-grace", &response).ok());

  // The in-flight call completes.
  grpc::Status slow_status = slow.get();
  EXPECT_TRUE(slow_status.ok()) << slow_status.error_message();
  stopper.join();
  // Shutdown waited the grace period, then for the slow call.
  EXPECT_GE(std::chrono::steady_clock::now() - shutdown_start, std::chrono::milliseconds(300));

  // New calls fail.
  grpc::Status after = CallEcho(port, "after", &response);
  EXPECT_EQ(after.error_code(), grpc::StatusCode::UNAVAILABLE) << after.error_message();
  EXPECT_FALSE(CheckHealth(admin, "", &s, std::chrono::milliseconds(500)).ok());

  runner.Shutdown();  // a second call is harmless
  runner.Wait();
}

TEST(ServerRunnerTest, DrainTimeoutCancelsCallsThatDoNotFinish) {
  SlowEcho service;
  ServerOptions o = TestOptions();
  o.drain_timeout = absl::Milliseconds(200);
  ServerRunner runner(o);
  runner.AddService(&service);
  ASSERT_TRUE(runner.Start().ok());
  const int port = runner.port();
  auto slow = std::async(std::launch::async, [port] {
    EchoResponse response;
    return CallEcho(port, "sleep:1000", &response);
  });
  while (service.entered.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto start = std::chrono::steady_clock::now();
  std::thread stopper([&runner] { runner.Shutdown(); });
  // The client sees its call cancelled at the deadline, not after 1 s. (A sync handler
  // cannot be interrupted: Shutdown() itself returns when the handler does.)
  grpc::Status status = slow.get();
  EXPECT_FALSE(status.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(700));
  stopper.join();
}

// A connection past its max_connection_age takes no new calls, but the calls open on it run to
// their end: a long import or feed stream is not cut (with the drain timeout as its grace, the
// call below was cut with UNAVAILABLE after about 400 ms).
TEST(ServerRunnerTest, AnAgedConnectionLetsItsOpenCallsFinish) {
  SlowEcho service;
  ServerOptions o = TestOptions();
  o.drain_timeout = absl::Milliseconds(200);
  o.max_connection_age = absl::Milliseconds(200);
  ServerRunner runner(o);
  runner.AddService(&service);
  ASSERT_TRUE(runner.Start().ok());
  EchoResponse response;
  const grpc::Status status = CallEcho(runner.port(), "sleep:1500", &response);
  EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  EXPECT_EQ(response.payload(), "sleep:1500");
  // A grace that is set still bounds them.
  runner.Shutdown();
  SlowEcho bounded_service;
  o.max_connection_age_grace = absl::Milliseconds(200);
  ServerRunner bounded(o);
  bounded.AddService(&bounded_service);
  ASSERT_TRUE(bounded.Start().ok());
  EXPECT_EQ(CallEcho(bounded.port(), "sleep:1500", &response).error_code(), grpc::StatusCode::UNAVAILABLE);
  bounded.Shutdown();
}

// The readiness probe's service follows the check (failing, or slower than its timeout); the
// liveness probe's "" and the API services do not.
TEST(ServerRunnerTest, ReadinessFollowsItsCheckAndLivenessDoesNot) {
  enum Mode { kOk, kFailing, kHanging };
  std::atomic<int> mode{kOk};
  ServerOptions o = TestOptions();
  o.bench_echo = true;
  ServerRunner runner(o);
  runner.SetReadinessCheck(
      [&mode]() -> absl::Status {
        if (mode.load() == kFailing) return absl::UnavailableError("database unreachable");
        if (mode.load() == kHanging) std::this_thread::sleep_for(std::chrono::milliseconds(600));
        return absl::OkStatus();
      },
      absl::Milliseconds(20), absl::Milliseconds(200));
  ASSERT_TRUE(runner.Start().ok());
  auto admin = Channel(runner.admin_port());
  auto status_of = [&](const std::string& service) {
    ServingStatus s = ServingStatus::kUnknown;
    EXPECT_TRUE(CheckHealth(admin, service, &s).ok()) << service;
    return s;
  };
  // Polls until `service` shows `want` (at most 3 s).
  auto eventually = [&](const std::string& service, ServingStatus want) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (status_of(service) != want && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return status_of(service);
  };
  EXPECT_EQ(status_of(kReadinessService), ServingStatus::kServing);
  mode = kFailing;
  EXPECT_EQ(eventually(kReadinessService, ServingStatus::kNotServing), ServingStatus::kNotServing);
  EXPECT_EQ(status_of(""), ServingStatus::kServing);
  EXPECT_EQ(status_of("parcours.bench.v1.BenchService"), ServingStatus::kServing);
  mode = kOk;
  EXPECT_EQ(eventually(kReadinessService, ServingStatus::kServing), ServingStatus::kServing);
  mode = kHanging;
  EXPECT_EQ(eventually(kReadinessService, ServingStatus::kNotServing), ServingStatus::kNotServing);
  mode = kOk;
  EXPECT_EQ(eventually(kReadinessService, ServingStatus::kServing), ServingStatus::kServing);
  runner.Shutdown();
}

TEST(ServerRunnerTest, PortFileIsWrittenAfterStart) {
  char dir_template[] = "/tmp/parcours-server-test-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string path = absl::StrCat(dir_template, "/ports.json");
  ServerOptions o = TestOptions();
  o.port_file = path;
  ServerRunner runner(o);
  ASSERT_TRUE(runner.Start().ok());
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  EXPECT_EQ(content.str(),
            absl::StrCat("{\"port\":", runner.port(), ",\"admin_port\":", runner.admin_port(),
                         ",\"metrics_port\":", runner.metrics_port(), "}\n"));
  runner.Shutdown();
  ::unlink(path.c_str());
  ::rmdir(dir_template);
}

TEST(ServerRunnerTest, StartFailsOnBadAddress) {
  ServerOptions o = TestOptions();
  o.listen = "256.1.1.1:1";
  ServerRunner runner(o);
  EXPECT_FALSE(runner.Start().ok());
  runner.Wait();  // a failed start leaves the runner stopped
}

TEST(ServerRunnerTest, RunUntilSignalReturnsOnSigterm) {
  struct sigaction before {};
  ::sigaction(SIGTERM, nullptr, &before);

  ServerOptions o = TestOptions();
  o.bench_echo = true;
  ServerRunner runner(o);
  std::thread killer([&runner] {
    const auto start = std::chrono::steady_clock::now();
    while (runner.admin_port() == 0 &&
           std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    // Serving before the signal.
    EchoResponse response;
    EXPECT_TRUE(CallEcho(runner.port(), "x", &response).ok());
    ::kill(::getpid(), SIGTERM);  // process-directed, may land on any thread
  });
  LogCapture capture;
  absl::Status status = runner.RunUntilSignal();
  killer.join();
  EXPECT_TRUE(status.ok()) << status;
  runner.Wait();  // already stopped

  // The phases are logged.
  bool saw_signal = false, saw_draining = false, saw_stopped = false;
  for (const auto& line : capture.lines()) {
    saw_signal |= absl::StrContains(line, "\"msg\":\"signal received\"") &&
                  absl::StrContains(line, "SIGTERM");
    saw_draining |= absl::StrContains(line, "\"msg\":\"draining\"");
    saw_stopped |= absl::StrContains(line, "\"msg\":\"stopped\"");
  }
  EXPECT_TRUE(saw_signal);
  EXPECT_TRUE(saw_draining);
  EXPECT_TRUE(saw_stopped);
  // The previous disposition is back.
  struct sigaction after {};
  ::sigaction(SIGTERM, nullptr, &after);
  EXPECT_EQ(after.sa_handler, before.sa_handler);
}

TEST(ServerRunnerTest, RunUntilSignalReturnsWhenShutdownIsCalled) {
  ServerRunner runner(TestOptions());
  std::thread stopper([&runner] {
    while (runner.admin_port() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    runner.Shutdown();
  });
  EXPECT_TRUE(runner.RunUntilSignal().ok());
  stopper.join();
}

TEST(ServerOptionsTest, FromConfig) {
  Config config = Config::FromMap({{"server.listen", "0.0.0.0:8443"},
                                   {"server.admin_listen", "0.0.0.0:8081"},
                                   {"server.metrics_listen", ""},
                                   {"server.drain_grace", "5s"},
                                   {"server.drain_timeout", "30s"},
                                   {"server.max_connection_age", "5m"},
                                   {"server.max_connection_age_grace", "1h"},
                                   {"server.max_pollers", "8"},
                                   {"server.memory_release_interval", "0s"},
                                   {"server.bench_echo", "true"},
                                   {"server.port_file", "/run/ports.json"}});
  auto o = ServerOptions::FromConfig(config, "svc");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->service_name, "svc");
  EXPECT_EQ(o->listen, "0.0.0.0:8443");
  EXPECT_EQ(o->admin_listen, "0.0.0.0:8081");
  EXPECT_EQ(o->metrics_listen, "");
  EXPECT_EQ(o->drain_grace, absl::Seconds(5));
  EXPECT_EQ(o->drain_timeout, absl::Seconds(30));
  EXPECT_EQ(o->max_connection_age, absl::Minutes(5));
  EXPECT_EQ(o->max_connection_age_grace, absl::Hours(1));
  EXPECT_EQ(o->max_pollers, 8);
  EXPECT_EQ(o->memory_release_interval, absl::ZeroDuration());
  EXPECT_TRUE(o->bench_echo);
  EXPECT_EQ(o->port_file, "/run/ports.json");

  auto defaults = ServerOptions::FromConfig(Config::FromMap({}), "svc");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->listen, ServerOptions().listen);
  EXPECT_EQ(defaults->drain_timeout, ServerOptions().drain_timeout);
  EXPECT_EQ(defaults->max_connection_age, absl::InfiniteDuration());
  EXPECT_EQ(defaults->max_connection_age_grace, absl::InfiniteDuration());
  EXPECT_FALSE(defaults->bench_echo);
  EXPECT_EQ(defaults->memory_release_interval, absl::Seconds(60));

  EXPECT_FALSE(
      ServerOptions::FromConfig(Config::FromMap({{"server.drain_grace", "soon"}}), "s").ok());
  EXPECT_FALSE(
      ServerOptions::FromConfig(Config::FromMap({{"server.bench_echo", "maybe"}}), "s").ok());
  EXPECT_FALSE(
      ServerOptions::FromConfig(Config::FromMap({{"server.drain_timeout", "-1s"}}), "s").ok());
  EXPECT_FALSE(ServerOptions::FromConfig(Config::FromMap({{"server.max_pollers", "0"}}), "s").ok());
  EXPECT_FALSE(
      ServerOptions::FromConfig(Config::FromMap({{"server.memory_release_interval", "-1s"}}), "s").ok());
}

// ---------------------------------------------------------------------------------------------
// log

TEST(LogTest, TraceIdFromTraceparent) {
  EXPECT_EQ(log::TraceIdFromTraceparent(kTraceparent), kTraceId);
  // Future versions may append fields.
  EXPECT_EQ(
      log::TraceIdFromTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"),
      kTraceId);
  for (const char* bad : {
           "", "garbage",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  // v00 has no more
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        // invalid version
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",        // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",        // zero parent id
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",        // upper case
           "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",         // short trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",        // bad flags
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        // separator
           "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",       // no dash after
       }) {
    EXPECT_EQ(log::TraceIdFromTraceparent(bad), "") << bad;
  }
}

TEST(LogTest, JsonEscaping) {
  std::string out;
  log::AppendJsonString(&out,
                        "a\"b\\c\nd\te\x01\x1f"
                        "\x7f");
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\nd\\te\\u0001\\u001f\x7f\"");
  out.clear();
  log::AppendJsonString(&out, "élève – 日本 😀");  // valid UTF-8 passes through
  EXPECT_EQ(out, "\"élève – 日本 😀\"");
  out.clear();
  log::AppendJsonString(&out, "x\xff y\xc3");  // invalid bytes, truncated sequence
  EXPECT_EQ(out, "\"x\\ufffd y\\ufffd\"");
  out.clear();
  log::AppendJsonString(&out, "\xed\xa0\x80");  // UTF-16 surrogate encoded: invalid
  EXPECT_EQ(out, "\"\\ufffd\\ufffd\\ufffd\"");
  out.clear();
  log::AppendJsonString(&out, std::string_view("nul\0", 4));
  EXPECT_EQ(out, "\"nul\\u0000\"");
}

TEST(LogTest, LineShape) {
  LogCapture capture;
  log::SetCurrentCall({"t1", "r1", "/p.S/M"});
  log::Warn("careful \"now\"", {{"resource", "certifications/X"}});
  log::Write(log::Level::kError, "numbers", {{"request_id", "override"}},
             {{"duration_ms", 12.5}, {"n", 3}});
  log::Write(log::Level::kInfo, "suppressed", {{"trace_id", ""}});
  log::ClearCurrentCall();
  log::Info("plain");
  auto lines = capture.lines();
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_THAT(lines[0],
              ::testing::MatchesRegex(
                  "\\{\"ts\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z\","
                  "\"level\":\"warn\",.*\"msg\":\"careful \\\\\"now\\\\\"\","
                  "\"trace_id\":\"t1\",\"request_id\":\"r1\",\"method\":\"/p.S/M\","
                  "\"resource\":\"certifications/X\"\\}"));
  EXPECT_THAT(lines[1], HasSubstr("\"level\":\"error\""));
  EXPECT_THAT(lines[1], HasSubstr("\"request_id\":\"override\""));
  EXPECT_THAT(lines[1], ::testing::Not(HasSubstr("\"r1\"")));
  EXPECT_THAT(lines[1], HasSubstr("\"duration_ms\":12.5,\"n\":3}"));
  // An explicit empty standard key leaves it out, even when the call has one.
  EXPECT_THAT(lines[2], ::testing::Not(HasSubstr("trace_id")));
  EXPECT_THAT(lines[2], HasSubstr("\"request_id\":\"r1\""));
  EXPECT_THAT(lines[3], ::testing::Not(HasSubstr("trace_id")));
  EXPECT_THAT(lines[3], ::testing::Not(HasSubstr("request_id")));
}

TEST(LogTest, ConcurrentLinesOnStdoutDoNotInterleave) {
  char path[] = "/tmp/parcours-log-test-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  std::fflush(stdout);
  const int saved_stdout = ::dup(STDOUT_FILENO);
  ASSERT_GE(::dup2(fd, STDOUT_FILENO), 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 200; ++i) {
        log::Info("x", {{"k", std::string(3000, static_cast<char>('a' + t))}});
      }
    });
  }
  for (auto& th : threads) th.join();
  ::dup2(saved_stdout, STDOUT_FILENO);
  ::close(saved_stdout);
  ::close(fd);

  std::ifstream in(path);
  std::string line;
  int count = 0;
  while (std::getline(in, line)) {
    ++count;
    ASSERT_TRUE(absl::StartsWith(line, "{\"ts\":\"")) << line.substr(0, 80);
    ASSERT_TRUE(absl::EndsWith(line, "\"}")) << line.substr(0, 80);
    const size_t k = line.find("\"k\":\"");
    ASSERT_NE(k, std::string::npos);
    const std::string value = line.substr(k + 5, 3000);
    ASSERT_EQ(value, std::string(3000, value[0]));
  }
  EXPECT_EQ(count, 800);
  ::unlink(path);
}

}  // namespace
}  // namespace parcours
