#include "gateway/src/app.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gateway/src/backends.h"
#include "gateway/src/policy.h"
#include "gateway/src/gateway.h"
#include "gateway/src/rate_limiter.h"
#include "gateway/src/services.h"

namespace parcours::gateway {
namespace {

class AppImpl final : public App {
 public:
  AppImpl(std::unique_ptr<db::Db> db, std::unique_ptr<Authenticator> authenticator,
          std::unique_ptr<Backends> backends, RateLimitOptions limits, RateLimitOptions failed_auth_limits,
          const Clock* clock)
      : db_(std::move(db)),
        authenticator_(std::move(authenticator)),
        backends_(std::move(backends)),
        limiter_(limits, clock != nullptr ? *clock : system_clock_),
        failed_auth_limiter_(failed_auth_limits, clock != nullptr ? *clock : system_clock_,
                             "failed authentications from this address"),
        gate_audit_limiter_(RateLimitOptions{1, 1}, clock != nullptr ? *clock : system_clock_),
        gateway_(*authenticator_, *backends_, limiter_, failed_auth_limiter_, gate_audit_limiter_),
        national_(NewNationalService(gateway_)),
        region_(NewRegionService(gateway_)),
        operator_(NewOperatorService(gateway_)),
        certifier_(NewCertifierService(gateway_)) {}

  std::vector<grpc::Service*> services() override {
    return {national_.get(), region_.get(), operator_.get(), certifier_.get()};
  }
  db::Db& db() override { return *db_; }

 private:
  SystemClock system_clock_;
  std::unique_ptr<db::Db> db_;
  std::unique_ptr<Authenticator> authenticator_;
  std::unique_ptr<Backends> backends_;
  RateLimiter limiter_;
  RateLimiter failed_auth_limiter_;
  RateLimiter gate_audit_limiter_;  // one audit line per address and second for the gate's refusals
  Gateway gateway_;
  std::unique_ptr<grpc::Service> national_;
  std::unique_ptr<grpc::Service> region_;
  std::unique_ptr<grpc::Service> operator_;
  std::unique_ptr<grpc::Service> certifier_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<App>> App::Create(const Config& config, std::unique_ptr<Authenticator> authenticator,
                                                 const Clock* clock) {
  if (authenticator == nullptr) return absl::InvalidArgumentError("the gateway needs an authenticator");
  if (std::vector<std::string> gaps = PolicyGaps(); !gaps.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("the policy table does not match the gateway services: ",
                                                      absl::StrJoin(gaps, "; ")));
  }
  auto limits = RateLimitOptions::FromConfig(config);
  if (!limits.ok()) return limits.status();
  auto failed_auth_limits = RateLimitOptions::FailedAuthFromConfig(config);
  if (!failed_auth_limits.ok()) return failed_auth_limits.status();
  auto backends = Backends::Create(config);
  if (!backends.ok()) return backends.status();
  auto db = db::Open(kNoDatabaseDsn);
  if (!db.ok()) return db.status();
  return std::unique_ptr<App>(
      new AppImpl(*std::move(db), std::move(authenticator), *std::move(backends), *limits, *failed_auth_limits, clock));
}

}  // namespace parcours::gateway
