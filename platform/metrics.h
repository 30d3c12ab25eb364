// Prometheus instruments of the server runner, with the names and labels of go-grpc-prometheus
// so the usual dashboards and alerts work unchanged:
//   grpc_server_started_total{grpc_type,grpc_service,grpc_method}
//   grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}   grpc_code = "OK", ...
//   grpc_server_handling_seconds{grpc_type,grpc_service,grpc_method}          histogram
// and the scrape hook prometheus-cpp lacks.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "grpcpp/support/status_code_enum.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace parcours::metrics {

// "OK", "CANCELLED", ..., "UNAUTHENTICATED"; "UNKNOWN" for a value outside the enum.
const char* GrpcCodeName(grpc::StatusCode code);

// Latency buckets (seconds) from 100 µs to 10 s.
std::vector<double> HandlingSecondsBuckets();

class GrpcServerMetrics {
 public:
  // The instruments of one method, created on its first call and cached (prometheus-cpp's
  // Family::Add hashes the labels under a lock; a call should not pay that).
  class Method {
   public:
    void Started() { started_->Increment(); }
    void Handled(grpc::StatusCode code, double seconds);

   private:
    friend class GrpcServerMetrics;
    static constexpr int kNumCodes = 17;  // OK .. UNAUTHENTICATED
    prometheus::Family<prometheus::Counter>* handled_family_ = nullptr;
    std::map<std::string, std::string> labels_;
    prometheus::Counter* started_ = nullptr;
    prometheus::Histogram* handling_ = nullptr;
    std::array<std::atomic<prometheus::Counter*>, kNumCodes> handled_{};
    std::mutex handled_mu_;  // creation of handled_ entries
  };

  explicit GrpcServerMetrics(prometheus::Registry& registry);

  // full_method is "/package.Service/Method" (anything else is filed as service "unknown");
  // type is "unary", "client_stream", "server_stream" or "bidi_stream". Thread-safe; the
  // pointer stays valid as long as this object.
  Method* ForMethod(std::string_view full_method, std::string_view type);

 private:
  prometheus::Family<prometheus::Counter>& started_;
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Histogram>& handling_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Method>, std::less<>> methods_;  // key: method + type
};

// Wraps a registry so that callbacks (e.g. refreshing db pool gauges) run before each collection;
// register this, not the registry, with the Exposer.
class ScrapeHookCollectable : public prometheus::Collectable {
 public:
  explicit ScrapeHookCollectable(std::shared_ptr<prometheus::Registry> registry)
      : registry_(std::move(registry)) {}
  void OnScrape(std::function<void()> fn);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  mutable std::mutex mu_;  // guards hooks_ and serialises scrapes
  std::vector<std::function<void()>> hooks_;
};

}  // namespace parcours::metrics
