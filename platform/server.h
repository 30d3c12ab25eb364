// The server runner every service binary uses: API server, plaintext admin server (standard
// health service for Kubernetes gRPC probes + AdminService), Prometheus /metrics over HTTP,
// JSON access logs with request and trace ids, server reflection, graceful shutdown.
//
// Shutdown: health goes NOT_SERVING on both servers, the runner waits `drain_grace` so load
// balancers notice, then stops accepting and lets in-flight calls finish up to `drain_timeout`.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "platform/config.h"
#include "platform/tls.h"

namespace prometheus { class Registry; }

namespace parcours {

struct ServerOptions {
  std::string service_name;                 // "referential-svc"
  std::string listen = "127.0.0.1:0";       // API; port 0 = pick a free port (read port())
  std::string admin_listen = "127.0.0.1:0"; // gRPC health + AdminService, plaintext
  std::string metrics_listen = "127.0.0.1:0"; // HTTP /metrics; "" disables
  absl::Duration drain_grace = absl::Seconds(0);    // NOT_SERVING before stopping to accept
  absl::Duration drain_timeout = absl::Seconds(20); // in-flight calls get this long to finish
  int max_receive_message_bytes = 4 << 20;
  absl::Duration max_connection_age = absl::InfiniteDuration();  // spread load over pods
  // How long calls open on an aged connection may still run before it is closed under them.
  // Infinite by default: a bulk import or a feed stream lasts as long as its client sends or
  // reads, and only new calls go to a new connection (gRPC's GOAWAY).
  absl::Duration max_connection_age_grace = absl::InfiniteDuration();
  // Idle sync-API threads kept waiting for calls (gRPC's MAX_POLLERS): threads beyond it exit
  // after their call, so it should cover the calls a server usually has in flight.
  int max_pollers = 64;
  // Free memory given back to the system (malloc_trim) this often while serving; 0 = never
  // (platform/memory_releaser.h).
  absl::Duration memory_release_interval = absl::Seconds(60);
  // Also serve parcours.bench.v1.BenchService (a no-op) on the API port: the baseline that
  // bench/ compares real methods with. Off in production configs.
  bool bench_echo = false;
  // When set, Start() writes {"port":P,"admin_port":A,"metrics_port":M} to this file (atomic
  // rename), so scripts and tests that bind port 0 can find the server.
  std::string port_file;
  // TLS on the API port (mTLS with a client CA, optionally restricted to listed client
  // identities); plaintext when tls.cert_file is empty. Admin and metrics stay plaintext.
  ServerTlsOptions tls;
  // Reads listen, admin_listen, metrics_listen, drain_grace, drain_timeout,
  // max_connection_age, max_connection_age_grace, max_pollers, memory_release_interval, bench_echo, port_file from a config (keys "server.listen", ...), keeping defaults otherwise,
  // and the TLS keys of ServerTlsOptions::FromConfig (server.tls_*, server.allowed_client_identities).
  static absl::StatusOr<ServerOptions> FromConfig(const Config& config, std::string service_name);
};

// The health service name of readiness (ServerRunner::SetReadinessCheck).
inline constexpr char kReadinessService[] = "parcours.readiness";

class ServerRunner {
 public:
  explicit ServerRunner(ServerOptions options);
  ~ServerRunner();

  // Services are owned by the caller and must outlive the runner.
  void AddService(grpc::Service* service);
  // Extra lines for AdminService.GetBuildInfo (schema versions, dialect).
  void SetBuildInfo(int expected_schema_version, int database_schema_version, std::string dialect);
  // Called on each /metrics scrape before collection (e.g. to refresh db pool gauges).
  void OnScrape(std::function<void()> fn);
  // Readiness (before Start): `check` runs every `period` while serving; the health service
  // kReadinessService on both ports follows it (NOT_SERVING while it fails or takes longer than
  // `timeout`), for the kubelet's readiness probe. "" and the API services' own statuses do not
  // follow it: the liveness probe must not restart every pod while a database is away.
  void SetReadinessCheck(std::function<absl::Status()> check, absl::Duration period = absl::Seconds(5),
                         absl::Duration timeout = absl::Seconds(2));
  // The registry services add their own metrics to.
  prometheus::Registry& metrics_registry();

  // Builds and starts the servers; health SERVING. Ports are known after this.
  absl::Status Start();
  int port() const;
  int admin_port() const;
  int metrics_port() const;  // 0 when disabled

  // NOT_SERVING, drain, stop. Safe to call twice and from any thread except a gRPC handler.
  void Shutdown();
  // Blocks until Shutdown() has completed.
  void Wait();
  // Start() then wait for SIGTERM or SIGINT, then Shutdown(). Logs each phase.
  absl::Status RunUntilSignal();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parcours
