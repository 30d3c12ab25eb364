#include "platform/metrics.h"

#include <exception>

#include "platform/log.h"

namespace parcours::metrics {

const char* GrpcCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

std::vector<double> HandlingSecondsBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

void GrpcServerMetrics::Method::Handled(grpc::StatusCode code, double seconds) {
  handling_->Observe(seconds);
  int index = static_cast<int>(code);
  if (index < 0 || index >= kNumCodes) index = static_cast<int>(grpc::StatusCode::UNKNOWN);
  prometheus::Counter* counter = handled_[index].load(std::memory_order_acquire);
  if (counter == nullptr) {
    std::lock_guard<std::mutex> lock(handled_mu_);
    counter = handled_[index].load(std::memory_order_relaxed);
    if (counter == nullptr) {
      auto labels = labels_;
      labels["grpc_code"] = GrpcCodeName(static_cast<grpc::StatusCode>(index));
      counter = &handled_family_->Add(labels);
      handled_[index].store(counter, std::memory_order_release);
    }
  }
  counter->Increment();
}

GrpcServerMetrics::GrpcServerMetrics(prometheus::Registry& registry)
    : started_(prometheus::BuildCounter()
                   .Name("grpc_server_started_total")
                   .Help("Total number of RPCs started on the server.")
                   .Register(registry)),
      handled_(prometheus::BuildCounter()
                   .Name("grpc_server_handled_total")
                   .Help("Total number of RPCs completed on the server, regardless of success "
                         "or failure.")
                   .Register(registry)),
      handling_(prometheus::BuildHistogram()
                    .Name("grpc_server_handling_seconds")
                    .Help("Histogram of response latency (seconds) of gRPC that had been "
                          "application-level handled by the server.")
                    .Register(registry)) {}

GrpcServerMetrics::Method* GrpcServerMetrics::ForMethod(std::string_view full_method,
                                                        std::string_view type) {
  std::string key;
  key.reserve(full_method.size() + type.size() + 1);
  key.append(full_method).append(" ").append(type);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = methods_.find(key);
  if (it != methods_.end()) return it->second.get();

  std::string service = "unknown";
  std::string method = "unknown";
  // "/package.Service/Method"
  if (full_method.size() > 1 && full_method[0] == '/') {
    const size_t slash = full_method.find('/', 1);
    if (slash != std::string_view::npos && slash > 1 && slash + 1 < full_method.size()) {
      service = std::string(full_method.substr(1, slash - 1));
      method = std::string(full_method.substr(slash + 1));
    }
  }
  auto m = std::make_unique<Method>();
  m->labels_ = {
      {"grpc_type", std::string(type)}, {"grpc_service", service}, {"grpc_method", method}};
  m->handled_family_ = &handled_;
  m->started_ = &started_.Add(m->labels_);
  m->handling_ = &handling_.Add(m->labels_, HandlingSecondsBuckets());
  Method* result = m.get();
  methods_.emplace(std::move(key), std::move(m));
  return result;
}

void ScrapeHookCollectable::OnScrape(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  hooks_.push_back(std::move(fn));
}

std::vector<prometheus::MetricFamily> ScrapeHookCollectable::Collect() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& hook : hooks_) {
    try {
      hook();
    } catch (const std::exception& e) {
      log::Warn("metrics scrape hook failed", {{"error", e.what()}});
    }
  }
  return registry_->Collect();
}

}  // namespace parcours::metrics
