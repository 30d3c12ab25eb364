#include "evaluation-svc/src/referential_client.h"

#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "parcours/referential/v1/referential.grpc.pb.h"
#include "platform/errors.h"
#include "platform/log.h"

namespace parcours::evaluation {
namespace {

constexpr char kVersionUnknown[] = "REFERENTIAL_VERSION_UNKNOWN";
constexpr char kCertificationUnknown[] = "REFERENTIAL_CERTIFICATION_UNKNOWN";
constexpr char kUnavailableMessage[] = "referential-svc unavailable";

std::string CodeName(grpc::StatusCode code) {
  const int raw = static_cast<int>(code);
  if (raw < 0 || raw > 16) return absl::StrCat("CODE_", raw);
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(raw));
}

// What a call was about, for the error mapping.
struct Subject {
  const char* method;        // "GetVersion"
  const char* what;          // "référentiel version"
  const char* unknown_type;  // precondition type when it does not exist
};
constexpr Subject kVersion{"GetVersion", "référentiel version", kVersionUnknown};
constexpr Subject kCertification{"GetCertification", "certification", kCertificationUnknown};

// The one mapping of referential-svc errors to what evaluation-svc returns.
absl::Status MapError(const Subject& subject, const std::string& name, const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::INVALID_ARGUMENT:
      // The caller named something that does not exist (or cannot exist): its request is wrong.
      return FailedPrecondition(
          subject.unknown_type, name,
          absl::StrCat(subject.what, " ", name, " is unknown: ", status.error_message()));
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      log::Warn("referential-svc call failed",
                {{"rpc", subject.method},
                 {"resource", name},
                 {"code", CodeName(status.error_code())},
                 {"error", status.error_message()}});
      return absl::UnavailableError(kUnavailableMessage);
    default:
      // The message is for logs only: ToGrpcStatus replaces INTERNAL messages on the wire.
      return absl::InternalError(absl::StrCat("referential-svc ", subject.method, "(", name,
                                              ") failed with ", CodeName(status.error_code()),
                                              ": ", status.error_message()));
  }
}

template <typename T>
struct Entry {
  std::shared_ptr<const T> value;
  absl::Time fetched_at;
};

// Inserts or replaces; when full, a new name evicts an arbitrary entry.
template <typename T>
void StoreBounded(absl::flat_hash_map<std::string, Entry<T>>& cache, const std::string& name,
                  Entry<T> entry, int max_entries) {
  if (max_entries <= 0) return;
  auto it = cache.find(name);
  if (it != cache.end()) {
    it->second = std::move(entry);
    return;
  }
  if (static_cast<int>(cache.size()) >= max_entries) cache.erase(cache.begin());
  cache.emplace(name, std::move(entry));
}

class GrpcReferentialClient final : public ReferentialClient {
 public:
  GrpcReferentialClient(std::shared_ptr<grpc::ChannelInterface> channel, const Clock& clock,
                        ReferentialClientOptions options)
      : stub_(ref::ReferentialService::NewStub(std::move(channel))),
        clock_(clock),
        options_(options) {}

  // Concurrent misses for the same name may both fetch: harmless, the last one is kept.
  absl::StatusOr<std::shared_ptr<const ref::Version>> GetVersion(const std::string& name) override {
    if (auto cached = LookupVersion(name)) return cached;
    ref::GetVersionRequest request;
    request.set_name(name);
    request.set_view(ref::VERSION_VIEW_FULL);
    auto version = std::make_shared<ref::Version>();
    grpc::ClientContext context;
    SetDeadline(context);
    grpc::Status status = stub_->GetVersion(&context, request, version.get());
    if (!status.ok()) return MapError(kVersion, name, status);
    // PUBLISHED and RETIRED are cached; a DRAFT (or anything else) never is.
    if (version->state() == ref::VERSION_STATE_PUBLISHED || version->state() == ref::VERSION_STATE_RETIRED) {
      const absl::Time now = clock_.Now();
      absl::MutexLock lock(&mu_);
      StoreBounded(versions_, name, Entry<ref::Version>{version, now}, options_.max_entries);
    }
    return std::shared_ptr<const ref::Version>(std::move(version));
  }

  absl::StatusOr<ref::Certification> GetCertification(const std::string& name) override {
    {
      const absl::Time now = clock_.Now();
      absl::MutexLock lock(&mu_);
      auto it = certifications_.find(name);
      if (it != certifications_.end() && now - it->second.fetched_at < options_.state_ttl) {
        return *it->second.value;
      }
    }
    ref::GetCertificationRequest request;
    request.set_name(name);
    auto certification = std::make_shared<ref::Certification>();
    grpc::ClientContext context;
    SetDeadline(context);
    grpc::Status status = stub_->GetCertification(&context, request, certification.get());
    if (!status.ok()) return MapError(kCertification, name, status);
    {
      const absl::Time now = clock_.Now();
      absl::MutexLock lock(&mu_);
      StoreBounded(certifications_, name, Entry<ref::Certification>{certification, now},
                   options_.max_entries);
    }
    return *certification;
  }

 private:
  // A cached version still trusted now, or nullptr. RETIRED is final; a PUBLISHED entry is trusted
  // for state_ttl (another replica may retire it), its tree never changes.
  std::shared_ptr<const ref::Version> LookupVersion(const std::string& name) {
    const absl::Time now = clock_.Now();
    absl::MutexLock lock(&mu_);
    auto it = versions_.find(name);
    if (it == versions_.end()) return nullptr;
    const Entry<ref::Version>& e = it->second;
    if (e.value->state() == ref::VERSION_STATE_RETIRED || now - e.fetched_at < options_.state_ttl) {
      return e.value;
    }
    return nullptr;
  }

  // A fresh context with our own deadline (wall time, not the injected clock). When an incoming
  // call's deadline/cancellation should bound these calls, build the context with
  // grpc::ClientContext::FromServerContext / FromCallbackServerContext and keep the earlier of
  // both deadlines; that needs the server context passed through this API.
  void SetDeadline(grpc::ClientContext& context) const {
    if (options_.deadline == absl::InfiniteDuration()) return;
    context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(options_.deadline));
  }

  std::unique_ptr<ref::ReferentialService::Stub> stub_;
  const Clock& clock_;
  const ReferentialClientOptions options_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry<ref::Version>> versions_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Entry<ref::Certification>> certifications_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<ReferentialClient> NewGrpcReferentialClient(std::shared_ptr<grpc::ChannelInterface> channel,
                                                            const Clock& clock,
                                                            ReferentialClientOptions options) {
  return std::make_unique<GrpcReferentialClient>(std::move(channel), clock, options);
}

}  // namespace parcours::evaluation
