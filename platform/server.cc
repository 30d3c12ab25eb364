#include "platform/server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/impl/server_builder_option.h"
#include "grpcpp/impl/server_builder_plugin.h"
#include "grpcpp/impl/server_initializer.h"
#include "grpcpp/support/server_interceptor.h"
#include "parcours/admin/v1/admin.grpc.pb.h"
#include "parcours/bench/v1/bench.grpc.pb.h"
#include "platform/log.h"
#include "platform/memory_releaser.h"
#include "platform/readiness.h"
#include "platform/metrics.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"

namespace parcours {
namespace {

// ---------------------------------------------------------------------------------------------
// Transport security of the API port: TLS / mTLS from options.tls, plaintext without it.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ApiServerCredentials(
    const ServerOptions& options) {
  return MakeServerCredentials(options.tls);
}

// The admin port stays plaintext: Kubernetes' native gRPC probes cannot use TLS.
std::shared_ptr<grpc::ServerCredentials> AdminServerCredentials() {
  return grpc::InsecureServerCredentials();
}

// ---------------------------------------------------------------------------------------------
// Services of the runner itself.

struct BuildInfo {
  std::mutex mu;
  std::string service;
  int expected_schema_version = 0;
  int database_schema_version = 0;
  std::string dialect;
};

class AdminServiceImpl final : public parcours::admin::v1::AdminService::Service {
 public:
  explicit AdminServiceImpl(BuildInfo* info) : info_(info) {}

  grpc::Status GetBuildInfo(grpc::ServerContext*, const parcours::admin::v1::GetBuildInfoRequest*,
                            parcours::admin::v1::BuildInfo* response) override {
    std::lock_guard<std::mutex> lock(info_->mu);
    response->set_service(info_->service);
    response->set_expected_schema_version(info_->expected_schema_version);
    response->set_database_schema_version(info_->database_schema_version);
    response->set_database_dialect(info_->dialect);
    return grpc::Status::OK;
  }

 private:
  BuildInfo* info_;
};

class BenchEchoService final : public parcours::bench::v1::BenchService::Service {
 public:
  grpc::Status Echo(grpc::ServerContext*, const parcours::bench::v1::EchoRequest* request,
                    parcours::bench::v1::EchoResponse* response) override {
    response->set_payload(request->payload());
    return grpc::Status::OK;
  }
};

// ---------------------------------------------------------------------------------------------
// What a server serves, read the way the reflection plugin does: a builder plugin sees the
// ServerInitializer. InitServer runs before the server starts, with the registered services
// (and reflection's); the default health service is added by Server::Start, so Finish sees it.

// Methods a server implements. Calls to anything else (UNIMPLEMENTED) are counted under one
// label set, so a client cannot create metric series at will.
struct KnownMethods {
  std::set<std::string, std::less<>> methods;              // "/pkg.Service/Method"
  std::set<std::string, std::less<>> any_method_services;  // services without a descriptor

  void AddService(const std::string& service) {
    if (service == "grpc.health.v1.Health") {  // hand-written in gRPC, no protobuf descriptor
      methods.insert("/grpc.health.v1.Health/Check");
      methods.insert("/grpc.health.v1.Health/Watch");
      return;
    }
    const auto* descriptor =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
    if (descriptor == nullptr) {
      any_method_services.insert(service);
      return;
    }
    for (int i = 0; i < descriptor->method_count(); ++i) {
      methods.insert(absl::StrCat("/", service, "/", descriptor->method(i)->name()));
    }
  }

  bool Contains(std::string_view full_method) const {
    if (methods.find(full_method) != methods.end()) return true;
    if (any_method_services.empty() || full_method.size() < 2) return false;
    const size_t slash = full_method.find('/', 1);
    if (slash == std::string_view::npos) return false;
    return any_method_services.find(full_method.substr(1, slash - 1)) != any_method_services.end();
  }
};

class ServiceListPlugin final : public grpc::ServerBuilderPlugin {
 public:
  ServiceListPlugin(std::vector<std::string>* names, KnownMethods* known)
      : names_(names), known_(known) {}
  std::string name() override { return "parcours_service_list"; }
  void InitServer(grpc::ServerInitializer* si) override {
    if (known_ == nullptr) return;
    for (const auto& service : *si->GetServiceList()) known_->AddService(service);
    // Registered by Server::Start when enabled (it always is here).
    if (grpc::DefaultHealthCheckServiceEnabled()) known_->AddService("grpc.health.v1.Health");
  }
  void Finish(grpc::ServerInitializer* si) override { *names_ = *si->GetServiceList(); }
  void ChangeArguments(const std::string&, void*) override {}

 private:
  std::vector<std::string>* names_;
  KnownMethods* known_;
};

class ServiceListOption final : public grpc::ServerBuilderOption {
 public:
  ServiceListOption(std::vector<std::string>* names, KnownMethods* known)
      : names_(names), known_(known) {}
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->push_back(std::make_unique<ServiceListPlugin>(names_, known_));
  }

 private:
  std::vector<std::string>* names_;
  KnownMethods* known_;
};

// ---------------------------------------------------------------------------------------------
// Per-call interceptor: call ids for logs, metrics, one access-log line.

const char* RpcTypeName(grpc::experimental::ServerRpcInfo::Type type) {
  using T = grpc::experimental::ServerRpcInfo::Type;
  switch (type) {
    case T::UNARY:
      return "unary";
    case T::CLIENT_STREAMING:
      return "client_stream";
    case T::SERVER_STREAMING:
      return "server_stream";
    case T::BIDI_STREAMING:
      return "bidi_stream";
  }
  return "unary";
}

// A client-supplied x-request-id is kept when it is short and made of safe characters;
// otherwise a fresh one is generated.
bool IsAcceptableRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '+' ||
                    c == '=';
    if (!ok) return false;
  }
  return true;
}

// UUID version 4.
std::string NewRequestId() {
  thread_local absl::BitGen gen;
  uint64_t hi = absl::Uniform<uint64_t>(gen);
  uint64_t lo = absl::Uniform<uint64_t>(gen);
  hi = (hi & ~uint64_t{0xF000}) | uint64_t{0x4000};            // version 4
  lo = (lo & ~(uint64_t{0xC} << 60)) | (uint64_t{0x8} << 60);  // variant 10
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", hi >> 32, (hi >> 16) & 0xFFFF, hi & 0xFFFF,
                         lo >> 48, lo & 0xFFFFFFFFFFFFULL);
}

class CallInterceptor final : public grpc::experimental::Interceptor {
 public:
  CallInterceptor(grpc::experimental::ServerRpcInfo* info, metrics::GrpcServerMetrics* metrics,
                  const KnownMethods* known)
      : info_(info), metrics_(metrics), known_(known), start_(std::chrono::steady_clock::now()) {}

  ~CallInterceptor() override {
    // A call that never sent a status (torn down by shutdown or a transport failure).
    if (started_ && !ended_) {
      const double seconds = Elapsed();
      method_metrics_->Handled(grpc::StatusCode::CANCELLED, seconds);
      WriteAccessLog(grpc::StatusCode::CANCELLED, seconds);
    }
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using H = grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(H::POST_RECV_INITIAL_METADATA)) {
      Begin(methods->GetRecvInitialMetadata());
    }
    if (methods->QueryInterceptionHookPoint(H::PRE_SEND_INITIAL_METADATA)) {
      if (!started_) Begin(nullptr);
      if (auto* md = methods->GetSendInitialMetadata(); md != nullptr) {
        md->emplace("x-request-id", ids_.request_id);
      }
    }
    if (methods->QueryInterceptionHookPoint(H::PRE_SEND_STATUS)) {
      if (!started_) Begin(nullptr);
      End(methods->GetSendStatus());
    }
    methods->Proceed();
  }

 private:
  double Elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

  // Runs on the thread that then runs the handler (sync API), before it.
  void Begin(std::multimap<grpc::string_ref, grpc::string_ref>* metadata) {
    if (started_) return;
    started_ = true;
    const auto* md = metadata;
    if (md == nullptr && info_->server_context() != nullptr) {
      md = &info_->server_context()->client_metadata();
    }
    std::string_view request_id;
    if (md != nullptr) {
      for (const auto& [key, value] : *md) {
        const std::string_view k(key.data(), key.size());
        const std::string_view v(value.data(), value.size());
        if (k == "traceparent") {
          ids_.trace_id = log::TraceIdFromTraceparent(v);
        } else if (k == "x-request-id") {
          request_id = v;
        }
      }
    }
    ids_.request_id = IsAcceptableRequestId(request_id) ? std::string(request_id) : NewRequestId();
    const std::string_view method = info_->method() != nullptr ? info_->method() : "";
    const bool known = known_->Contains(method);
    // An unknown method's name comes from the client: bounded in the log, not a metric label.
    ids_.method = std::string(method.substr(0, 200));
    method_metrics_ = metrics_->ForMethod(known ? method : "unknown", RpcTypeName(info_->type()));
    method_metrics_->Started();
    log::SetCurrentCall(ids_);
  }

  void End(const grpc::Status& status) {
    if (ended_) return;
    ended_ = true;
    const double seconds = Elapsed();
    method_metrics_->Handled(status.error_code(), seconds);
    WriteAccessLog(status.error_code(), seconds);
    // Leave the handler's thread clean for its next call. (A status sent from another thread,
    // e.g. by a callback service, leaves that thread's ids alone.)
    if (log::CurrentCall().request_id == ids_.request_id) log::ClearCurrentCall();
  }

  // The ids are passed explicitly: this may run on a thread other than the handler's.
  void WriteAccessLog(grpc::StatusCode code, double seconds) {
    log::Write(log::Level::kInfo, "rpc",
               {{"trace_id", ids_.trace_id},
                {"request_id", ids_.request_id},
                {"method", ids_.method},
                {"grpc_code", metrics::GrpcCodeName(code)}},
               {{"duration_ms", seconds * 1000.0}});
  }

  grpc::experimental::ServerRpcInfo* info_;
  metrics::GrpcServerMetrics* metrics_;
  const KnownMethods* known_;
  metrics::GrpcServerMetrics::Method* method_metrics_ = nullptr;
  const std::chrono::steady_clock::time_point start_;
  log::CallIds ids_;
  bool started_ = false;
  bool ended_ = false;
};

class CallInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  CallInterceptorFactory(metrics::GrpcServerMetrics* metrics, const KnownMethods* known)
      : metrics_(metrics), known_(known) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new CallInterceptor(info, metrics_, known_);
  }

 private:
  metrics::GrpcServerMetrics* metrics_;
  const KnownMethods* known_;
};

// ---------------------------------------------------------------------------------------------
// Signals for RunUntilSignal: a handler writes the signal number to a pipe, whichever thread it
// lands on (gRPC's threads may exist before RunUntilSignal and do not block signals, so a
// sigwait in one thread would not be reliable).

std::atomic<int> g_signal_pipe_write{-1};

extern "C" void OnTerminationSignal(int sig) {
  const int saved_errno = errno;
  const int fd = g_signal_pipe_write.load();
  if (fd >= 0) {
    const char c = static_cast<char>(sig);
    [[maybe_unused]] ssize_t n = ::write(fd, &c, 1);
  }
  errno = saved_errno;
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& content) {
  const std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) {
    return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", strerror(errno)));
  }
  const bool written = std::fwrite(content.data(), 1, content.size(), f) == content.size();
  const bool closed = std::fclose(f) == 0;
  if (!written || !closed) {
    ::unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return absl::InternalError(
        absl::StrCat("cannot rename ", tmp, " to ", path, ": ", strerror(err)));
  }
  return absl::OkStatus();
}

// The address to connect to for a server listening on `listen` ("host:port", "[v6]:port").
std::string WakeHost(const std::string& listen) {
  std::string host = listen.substr(0, listen.rfind(':'));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host == "0.0.0.0" || host == "*") return "127.0.0.1";
  if (host == "::") return "::1";
  return host;
}

// Opens and closes a TCP connection, waiting at most ~100 ms for it to be accepted.
void PokeTcp(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0) return;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    const int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno == EINPROGRESS) {
      struct pollfd pfd {
        fd, POLLOUT, 0
      };
      ::poll(&pfd, 1, 100);
    }
    ::close(fd);
    break;
  }
  ::freeaddrinfo(res);
}

}  // namespace

// -----------------------------------------------------------------------------------------------

absl::StatusOr<ServerOptions> ServerOptions::FromConfig(const Config& config,
                                                        std::string service_name) {
  ServerOptions o;
  o.service_name = std::move(service_name);
  o.listen = config.GetString("server.listen", o.listen);
  o.admin_listen = config.GetString("server.admin_listen", o.admin_listen);
  o.metrics_listen = config.GetString("server.metrics_listen", o.metrics_listen);
  o.port_file = config.GetString("server.port_file", o.port_file);

  auto grace = config.GetDuration("server.drain_grace", o.drain_grace);
  if (!grace.ok()) return grace.status();
  o.drain_grace = *grace;
  auto timeout = config.GetDuration("server.drain_timeout", o.drain_timeout);
  if (!timeout.ok()) return timeout.status();
  o.drain_timeout = *timeout;
  auto age = config.GetDuration("server.max_connection_age", o.max_connection_age);
  if (!age.ok()) return age.status();
  o.max_connection_age = *age;
  auto age_grace = config.GetDuration("server.max_connection_age_grace", o.max_connection_age_grace);
  if (!age_grace.ok()) return age_grace.status();
  o.max_connection_age_grace = *age_grace;
  auto max_recv = config.GetInt("server.max_receive_message_bytes", o.max_receive_message_bytes);
  if (!max_recv.ok()) return max_recv.status();
  auto pollers = config.GetInt("server.max_pollers", o.max_pollers);
  if (!pollers.ok()) return pollers.status();
  if (*pollers < 1 || *pollers > 1024) return absl::InvalidArgumentError("server.max_pollers: must be 1..1024");
  o.max_pollers = static_cast<int>(*pollers);
  auto release = config.GetDuration("server.memory_release_interval", o.memory_release_interval);
  if (!release.ok()) return release.status();
  if (*release < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("server.memory_release_interval: must not be negative (0 = never)");
  }
  o.memory_release_interval = *release;
  auto bench = config.GetBool("server.bench_echo", o.bench_echo);
  if (!bench.ok()) return bench.status();
  o.bench_echo = *bench;
  auto tls = ServerTlsOptions::FromConfig(config);
  if (!tls.ok()) return tls.status();
  o.tls = *std::move(tls);

  if (o.listen.empty()) return absl::InvalidArgumentError("server.listen: must not be empty");
  if (o.admin_listen.empty()) {
    return absl::InvalidArgumentError("server.admin_listen: must not be empty");
  }
  if (o.drain_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("server.drain_grace: must not be negative");
  }
  if (o.drain_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("server.drain_timeout: must not be negative");
  }
  if (o.max_connection_age <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("server.max_connection_age: must be positive");
  }
  if (o.max_connection_age_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("server.max_connection_age_grace: must not be negative");
  }
  if (*max_recv <= 0 || *max_recv > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError("server.max_receive_message_bytes: must be in (0, 1 GiB]");
  }
  o.max_receive_message_bytes = static_cast<int>(*max_recv);
  return o;
}

struct ServerRunner::Impl {
  enum class State { kNew, kRunning, kStopping, kStopped };

  explicit Impl(ServerOptions o)
      : options(std::move(o)),
        registry(std::make_shared<prometheus::Registry>()),
        scrape(std::make_shared<metrics::ScrapeHookCollectable>(registry)),
        grpc_metrics(*registry),
        admin_service(&build_info) {
    build_info.service = options.service_name;
  }

  ServerOptions options;
  std::shared_ptr<prometheus::Registry> registry;
  std::shared_ptr<metrics::ScrapeHookCollectable> scrape;
  metrics::GrpcServerMetrics grpc_metrics;
  BuildInfo build_info;
  AdminServiceImpl admin_service;
  BenchEchoService bench_service;
  std::vector<grpc::Service*> services;

  std::unique_ptr<prometheus::Exposer> exposer;
  std::unique_ptr<MemoryReleaser> memory_releaser;  // while serving
  std::function<absl::Status()> readiness_check;
  absl::Duration readiness_period, readiness_timeout;
  std::unique_ptr<ReadinessLoop> readiness;  // while serving
  std::unique_ptr<grpc::Server> api_server;
  std::unique_ptr<grpc::Server> admin_server;
  std::vector<std::string> api_service_names;
  KnownMethods api_methods;  // filled before the API server starts, read-only afterwards
  std::vector<std::string> admin_service_names;
  std::atomic<int> port{0};
  std::atomic<int> admin_port{0};
  std::atomic<int> metrics_port{0};

  std::mutex mu;
  std::condition_variable cv;
  State state = State::kNew;  // guarded by mu
  int run_wake_fd = -1;       // guarded by mu: RunUntilSignal's pipe, woken by Shutdown

  void SetAllServing(bool serving) {
    for (grpc::Server* server : {api_server.get(), admin_server.get()}) {
      if (server == nullptr || server->GetHealthCheckService() == nullptr) continue;
      server->GetHealthCheckService()->SetServingStatus(serving);
    }
  }

  void StopEverything(std::chrono::system_clock::time_point api_deadline) {
    if (api_server) {
      // Ends health Watch streams so they do not hold the drain until the deadline.
      if (auto* health = api_server->GetHealthCheckService()) health->Shutdown();
      api_server->Shutdown(api_deadline);
      api_server->Wait();
    }
    if (admin_server) {
      // Admin calls are instantaneous; only health Watch streams could linger.
      if (auto* health = admin_server->GetHealthCheckService()) health->Shutdown();
      admin_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
      admin_server->Wait();
    }
    StopExposer();
    memory_releaser.reset();
    readiness.reset();
  }

  // The readiness loop's report: only while running (a drain's NOT_SERVING stays).
  void SetReady(bool ready, const std::string& reason) {
    std::lock_guard<std::mutex> lock(mu);
    if (state != State::kRunning) return;
    for (grpc::Server* server : {api_server.get(), admin_server.get()}) {
      if (server == nullptr || server->GetHealthCheckService() == nullptr) continue;
      server->GetHealthCheckService()->SetServingStatus(kReadinessService, ready);
    }
    if (ready) {
      log::Info("ready again");
    } else {
      log::Warn("not ready", {{"reason", reason}});
    }
  }

  // civetweb's listener thread polls with a 2 s timeout and only then sees the stop flag, so
  // a plain reset() takes up to 2 s. Connecting to the port while it stops wakes it at once.
  void StopExposer() {
    if (!exposer) return;
    std::atomic<bool> stopped{false};
    std::thread waker;
    const int port = metrics_port.load();
    if (port > 0) {
      waker = std::thread([&stopped, port, host = WakeHost(options.metrics_listen)] {
        while (!stopped.load()) {
          PokeTcp(host, port);
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      });
    }
    exposer.reset();
    stopped = true;
    if (waker.joinable()) waker.join();
  }
};

ServerRunner::ServerRunner(ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

ServerRunner::~ServerRunner() { Shutdown(); }

void ServerRunner::AddService(grpc::Service* service) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->state != Impl::State::kNew) {
    log::Error("ServerRunner::AddService called after Start: ignored");
    return;
  }
  impl_->services.push_back(service);
}

void ServerRunner::SetBuildInfo(int expected_schema_version, int database_schema_version,
                                std::string dialect) {
  std::lock_guard<std::mutex> lock(impl_->build_info.mu);
  impl_->build_info.expected_schema_version = expected_schema_version;
  impl_->build_info.database_schema_version = database_schema_version;
  impl_->build_info.dialect = std::move(dialect);
}

void ServerRunner::OnScrape(std::function<void()> fn) { impl_->scrape->OnScrape(std::move(fn)); }

void ServerRunner::SetReadinessCheck(std::function<absl::Status()> check, absl::Duration period,
                                     absl::Duration timeout) {
  impl_->readiness_check = std::move(check);
  impl_->readiness_period = period;
  impl_->readiness_timeout = timeout;
}

prometheus::Registry& ServerRunner::metrics_registry() { return *impl_->registry; }

int ServerRunner::port() const { return impl_->port.load(); }
int ServerRunner::admin_port() const { return impl_->admin_port.load(); }
int ServerRunner::metrics_port() const { return impl_->metrics_port.load(); }

absl::Status ServerRunner::Start() {
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (m.state != Impl::State::kNew) {
      return absl::FailedPreconditionError("ServerRunner::Start: already started or stopped");
    }
    m.state = Impl::State::kRunning;  // Shutdown() from now on stops what was started
  }
  const ServerOptions& o = m.options;
  if (!o.service_name.empty()) log::SetServiceName(o.service_name);

  // Process-wide switches, read when each server is built.
  grpc::EnableDefaultHealthCheckService(true);
  // Debian's Abseil is built without NDEBUG, so absl::Mutex (which gRPC uses everywhere) keeps
  // a lock graph and records stack traces on every acquisition: debug-only bookkeeping that
  // cost several percent of a call here. Services do not rely on it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  auto fail = [&](absl::Status status) {
    m.StopEverything(std::chrono::system_clock::now());
    m.port = 0;
    m.admin_port = 0;
    m.metrics_port = 0;
    {
      std::lock_guard<std::mutex> lock(m.mu);
      m.state = Impl::State::kStopped;
    }
    m.cv.notify_all();
    log::Error("server start failed", {{"error", std::string(status.message())}});
    return status;
  };

  // 1. Metrics endpoint.
  if (!o.metrics_listen.empty()) {
    try {
      m.exposer = std::make_unique<prometheus::Exposer>(o.metrics_listen, 2);
      m.exposer->RegisterCollectable(m.scrape, "/metrics");
      const std::vector<int> ports = m.exposer->GetListeningPorts();
      if (ports.empty()) throw std::runtime_error("no listening port");
      m.metrics_port = ports.front();
    } catch (const std::exception& e) {
      return fail(absl::UnavailableError(
          absl::StrCat("metrics: cannot listen on ", o.metrics_listen, ": ", e.what())));
    }
  }

  // 2. API server. Started before the admin server so that a probe never sees SERVING for a
  // port that is not yet accepting.
  {
    auto credentials = ApiServerCredentials(o);
    if (!credentials.ok()) return fail(credentials.status());
    grpc::ServerBuilder builder;
    int selected = 0;
    builder.AddListeningPort(o.listen, *credentials, &selected);
    builder.SetMaxReceiveMessageSize(o.max_receive_message_bytes);
    // A sync-API thread that finishes a call exits when max_pollers threads already wait for
    // work: with gRPC's default (2), a server under load creates and joins a thread per call.
    builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, o.max_pollers);
    if (o.max_connection_age != absl::InfiniteDuration()) {
      builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                                 static_cast<int>(std::min<int64_t>(
                                     absl::ToInt64Milliseconds(o.max_connection_age), INT32_MAX)));
      // gRPC's own default grace is infinite; the drain_timeout used before cut every stream
      // older than the age (an import, a feed reader) with UNAVAILABLE.
      if (o.max_connection_age_grace != absl::InfiniteDuration()) {
        builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                                   static_cast<int>(std::min<int64_t>(
                                       absl::ToInt64Milliseconds(o.max_connection_age_grace), INT32_MAX)));
      }
    }
    for (grpc::Service* service : m.services) builder.RegisterService(service);
    if (o.bench_echo) builder.RegisterService(&m.bench_service);
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(std::make_unique<CallInterceptorFactory>(&m.grpc_metrics, &m.api_methods));
    builder.experimental().SetInterceptorCreators(std::move(creators));
    builder.SetOption(std::make_unique<ServiceListOption>(&m.api_service_names, &m.api_methods));
    m.api_server = builder.BuildAndStart();
    if (m.api_server == nullptr || selected == 0) {
      return fail(absl::UnavailableError(absl::StrCat("cannot serve the API on ", o.listen)));
    }
    m.port = selected;
  }

  // 3. Admin server: health + AdminService (+ reflection), plaintext, no interceptor (probes
  // every few seconds would drown the access log and the API metrics).
  {
    grpc::ServerBuilder builder;
    int selected = 0;
    builder.AddListeningPort(o.admin_listen, AdminServerCredentials(), &selected);
    builder.RegisterService(&m.admin_service);
    builder.SetOption(std::make_unique<ServiceListOption>(&m.admin_service_names, nullptr));
    m.admin_server = builder.BuildAndStart();
    if (m.admin_server == nullptr || selected == 0) {
      return fail(absl::UnavailableError(absl::StrCat("cannot serve admin on ", o.admin_listen)));
    }
    m.admin_port = selected;
  }

  // 4. Health: "" and every API service on both servers, plus the admin server's own.
  for (grpc::Server* server : {m.api_server.get(), m.admin_server.get()}) {
    auto* health = server->GetHealthCheckService();
    if (health == nullptr) continue;
    health->SetServingStatus("", true);
    health->SetServingStatus(kReadinessService, true);
    for (const auto& name : m.api_service_names) health->SetServingStatus(name, true);
    if (server == m.admin_server.get()) {
      for (const auto& name : m.admin_service_names) health->SetServingStatus(name, true);
    }
  }

  if (o.memory_release_interval > absl::ZeroDuration()) {
    m.memory_releaser = std::make_unique<MemoryReleaser>(o.memory_release_interval);
  }
  if (m.readiness_check) {
    m.readiness = std::make_unique<ReadinessLoop>(
        m.readiness_check, m.readiness_period, m.readiness_timeout,
        [&m](bool ready, const std::string& reason) { m.SetReady(ready, reason); });
  }

  // 5. Port file, for scripts and tests that bind port 0.
  if (!o.port_file.empty()) {
    absl::Status written = WriteFileAtomically(
        o.port_file, absl::StrFormat("{\"port\":%d,\"admin_port\":%d,\"metrics_port\":%d}\n",
                                     m.port.load(), m.admin_port.load(), m.metrics_port.load()));
    if (!written.ok()) return fail(written);
  }

  log::Info("started", {{"port", absl::StrCat(m.port.load())},
                        {"admin_port", absl::StrCat(m.admin_port.load())},
                        {"metrics_port", absl::StrCat(m.metrics_port.load())},
                        {"bench_echo", o.bench_echo ? "true" : "false"},
                        {"api_tls", !o.tls.enabled() ? "off"
                                    : o.tls.client_auth == ServerTlsOptions::ClientAuth::kRequire
                                        ? "mtls"
                                        : "tls"}});
  return absl::OkStatus();
}

void ServerRunner::Shutdown() {
  Impl& m = *impl_;
  {
    std::unique_lock<std::mutex> lock(m.mu);
    if (m.run_wake_fd >= 0) {
      const char c = 0;  // wakes RunUntilSignal, which then joins this shutdown
      [[maybe_unused]] ssize_t n = ::write(m.run_wake_fd, &c, 1);
    }
    switch (m.state) {
      case Impl::State::kNew:
        m.state = Impl::State::kStopped;
        m.cv.notify_all();
        return;
      case Impl::State::kStopping:
        m.cv.wait(lock, [&] { return m.state == Impl::State::kStopped; });
        return;
      case Impl::State::kStopped:
        return;
      case Impl::State::kRunning:
        m.state = Impl::State::kStopping;
        break;
    }
  }
  const ServerOptions& o = m.options;

  m.SetAllServing(false);
  log::Info("draining", {{"drain_grace", absl::FormatDuration(o.drain_grace)},
                         {"drain_timeout", absl::FormatDuration(o.drain_timeout)}});
  if (o.drain_grace > absl::ZeroDuration()) absl::SleepFor(o.drain_grace);

  // An "inf" drain_timeout waits for a day at most (and keeps the arithmetic finite).
  const absl::Duration drain_timeout = std::min(o.drain_timeout, absl::Hours(24));
  const auto deadline = std::chrono::system_clock::now() +
                        std::chrono::microseconds(absl::ToInt64Microseconds(drain_timeout));
  m.StopEverything(deadline);

  {
    std::lock_guard<std::mutex> lock(m.mu);
    m.state = Impl::State::kStopped;
  }
  m.cv.notify_all();
  log::Info("stopped");
}

void ServerRunner::Wait() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->cv.wait(lock, [&] { return impl_->state == Impl::State::kStopped; });
}

absl::Status ServerRunner::RunUntilSignal() {
  Impl& m = *impl_;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", strerror(errno)));
  }
  int expected = -1;
  if (!g_signal_pipe_write.compare_exchange_strong(expected, fds[1])) {
    ::close(fds[0]);
    ::close(fds[1]);
    return absl::FailedPreconditionError("RunUntilSignal is already running in this process");
  }
  {
    std::lock_guard<std::mutex> lock(m.mu);
    m.run_wake_fd = fds[1];
  }

  // Handlers go in before Start so that a signal during start-up is not lost.
  struct sigaction action {};
  action.sa_handler = OnTerminationSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;
  struct sigaction old_term {
  }, old_int{};
  ::sigaction(SIGTERM, &action, &old_term);
  ::sigaction(SIGINT, &action, &old_int);
  bool handlers_installed = true;
  auto restore_handlers = [&] {
    if (!handlers_installed) return;
    handlers_installed = false;
    ::sigaction(SIGTERM, &old_term, nullptr);
    ::sigaction(SIGINT, &old_int, nullptr);
  };
  auto cleanup = [&] {
    restore_handlers();
    g_signal_pipe_write.store(-1);
    {
      std::lock_guard<std::mutex> lock(m.mu);
      m.run_wake_fd = -1;
    }
    ::close(fds[0]);
    ::close(fds[1]);
  };

  absl::Status started = Start();
  if (!started.ok()) {
    cleanup();
    return started;
  }

  int signal_number = 0;
  bool woken = false;
  while (!woken) {
    struct pollfd pfd {
      fds[0], POLLIN, 0
    };
    const int r = ::poll(&pfd, 1, -1);
    if (r < 0 && errno != EINTR) break;
    char buf[16];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof(buf))) > 0) {
      for (ssize_t i = 0; i < n; ++i) {
        if (buf[i] != 0 && signal_number == 0) signal_number = buf[i];
      }
      woken = true;
    }
  }
  // A second SIGTERM/SIGINT during the drain gets the default action: stop now.
  restore_handlers();
  if (signal_number != 0) {
    const char* name = signal_number == SIGTERM  ? "SIGTERM"
                       : signal_number == SIGINT ? "SIGINT"
                                                 : "signal";
    log::Info("signal received", {{"signal", name}});
  }
  Shutdown();
  cleanup();
  return absl::OkStatus();
}

}  // namespace parcours
