// The gateway over real gRPC, in front of the three real backends (in-process, SQLite, loopback
// ports picked by the kernel): forwarding, principal propagation, cross-tenant refusals that leak
// nothing, authorisation before validation on every method, rate limiting, the bulk import
// stream, and GetBeneficiaryJourney complete and with a backend down. A recording fake of
// cep-svc checks exactly what the gateway sends (regional rewrite, metadata, deadline) and that
// backend errors come back byte for byte.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "cep-svc/src/app.h"
#include "evaluation-svc/src/app.h"
#include "gateway/src/app.h"
#include "gateway/src/policy.h"
#include "gateway/testing/gateway_scenario.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "parcours/cep/v1/cep.grpc.pb.h"
#include "parcours/gateway/v1/certifier.grpc.pb.h"
#include "parcours/gateway/v1/national.grpc.pb.h"
#include "parcours/gateway/v1/operator.grpc.pb.h"
#include "parcours/gateway/v1/region.grpc.pb.h"
#include "parcours/referential/v1/referential.grpc.pb.h"
#include "platform/config.h"
#include "platform/db/db.h"
#include "platform/log.h"
#include "platform/principal.h"
#include "platform/server.h"
#include "platform/testing/mariadb.h"
#include "platform/testing/status_details.h"
#include "referential-svc/src/app.h"

namespace parcours::gateway {
namespace {

namespace cepv1 = ::parcours::cep::v1;
namespace ev = ::parcours::evaluation::v1;
namespace ref = ::parcours::referential::v1;
using ::parcours::testing::BadFields;
using National = v1::NationalService::Stub;
using Region = v1::RegionService::Stub;
using Operator = v1::OperatorService::Stub;
using Certifier = v1::CertifierService::Stub;

const char kSeedFile[] = PARCOURS_SOURCE_DIR "/referential-svc/data/cqp-technicien-maintenance-alimentaire.json";
const char kSeedVersion[] = "certifications/CQP-TMSA/versions/1";
const char kSeedTitle[] = "Technicien de maintenance du secteur alimentaire";
const char kNational[] = "national";
const char kFt[] = "operator:ft";
const char kApec[] = "operator:apec";
const char kCertifierPrincipal[] = "certifier:CPNE-IA";
const char kEmail[] = "elodie.martin@example.fr";  // the beneficiary OpenCase registers

// Test credentials: "authorization: Bearer <principal>" (the real Authenticator verifies JWTs
// and client certificates; the gateway only sees its interface). As the real one, it remembers
// the good tokens it verified and asks `before_verifying` before verifying any other.
class PrincipalTokenAuthenticator final : public Authenticator {
 public:
  using Authenticator::Authenticate;
  absl::StatusOr<Caller> Authenticate(const grpc::ServerContextBase& ctx,
                                      const BeforeVerifying& before_verifying) override {
    auto it = ctx.client_metadata().find("authorization");
    if (it == ctx.client_metadata().end()) return absl::UnauthenticatedError("no credentials");
    const std::string value(it->second.data(), it->second.size());
    if (!absl::StartsWith(value, "Bearer ")) return absl::UnauthenticatedError("not a bearer token");
    const std::string token = value.substr(7);
    {
      absl::MutexLock lock(&mu_);
      if (known_good_.count(token) > 0) return CallerOf(token);
    }
    if (before_verifying) {
      if (absl::Status s = before_verifying(); !s.ok()) return s;
    }
    absl::StatusOr<Caller> caller = VerifyToken(token);
    if (caller.ok()) {
      absl::MutexLock lock(&mu_);
      known_good_.insert(token);
    }
    return caller;
  }
  absl::StatusOr<Caller> VerifyToken(const std::string& token) override {
    verifications_.fetch_add(1);
    return CallerOf(token);
  }
  int verifications() const { return verifications_.load(); }

 private:
  static absl::StatusOr<Caller> CallerOf(const std::string& token) {
    auto principal = ParsePrincipal(token);
    if (!principal.ok()) return absl::UnauthenticatedError("bad token");
    return Caller{*principal, absl::StrCat("user-of-", token), Caller::Via::kJwt};
  }

  absl::Mutex mu_;
  std::set<std::string> known_good_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> verifications_{0};
};

std::unique_ptr<ServerRunner> Serve(const std::vector<grpc::Service*>& services, const std::string& name) {
  ServerOptions options;
  options.service_name = name;
  options.metrics_listen = "";
  options.drain_timeout = absl::Seconds(2);
  auto runner = std::make_unique<ServerRunner>(options);
  for (grpc::Service* s : services) runner->AddService(s);
  absl::Status started = runner->Start();
  EXPECT_TRUE(started.ok()) << started;
  return runner;
}

std::string Address(const ServerRunner& runner) { return absl::StrCat("127.0.0.1:", runner.port()); }

// Every log line, for the audit checks.
class LogCapture {
 public:
  LogCapture() {
    log::SetSinkForTesting([this](std::string_view line) {
      absl::MutexLock lock(&mu_);
      lines_.emplace_back(line);
    });
  }
  ~LogCapture() { log::SetSinkForTesting({}); }
  std::vector<std::string> Lines() {
    absl::MutexLock lock(&mu_);
    return lines_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> lines_;
};

// A cep-svc that records what it receives.
class RecordingCep final : public cepv1::CepService::Service {
 public:
  struct Seen {
    cepv1::QueryIndicatorsRequest query;
    std::string principal;
    std::string traceparent;
    std::string request_id;
    std::chrono::system_clock::time_point deadline;
  };

  // The next call of `method` fails with `code` (then calls succeed again).
  void FailOnce(const std::string& method, grpc::StatusCode code = grpc::StatusCode::UNAVAILABLE) {
    absl::MutexLock lock(&mu_);
    fail_once_[method] = code;
  }
  int Attempts(const std::string& method) {
    absl::MutexLock lock(&mu_);
    return attempts_[method];
  }

  grpc::Status CreateOperator(grpc::ServerContext*, const cepv1::CreateOperatorRequest* request,
                              cepv1::Operator* response) override {
    if (std::optional<grpc::Status> failed = Injected("CreateOperator")) return *failed;
    response->set_name("operators/" + request->operator_id());
    return grpc::Status::OK;
  }

  grpc::Status OpenCase(grpc::ServerContext*, const cepv1::OpenCaseRequest*, cepv1::Case* response) override {
    if (std::optional<grpc::Status> failed = Injected("OpenCase")) return *failed;
    response->set_name("cases/c-1");
    return grpc::Status::OK;
  }

  grpc::Status QueryIndicators(grpc::ServerContext* ctx, const cepv1::QueryIndicatorsRequest* request,
                               cepv1::QueryIndicatorsResponse* response) override {
    if (std::optional<grpc::Status> failed = Injected("QueryIndicators")) return *failed;
    Seen seen;
    seen.query = *request;
    seen.principal = Metadata(*ctx, kPrincipalMetadata);
    seen.traceparent = Metadata(*ctx, "traceparent");
    seen.request_id = Metadata(*ctx, "x-request-id");
    seen.deadline = ctx->deadline();
    {
      absl::MutexLock lock(&mu_);
      seen_.push_back(seen);
    }
    cepv1::IndicatorCell* cell = response->add_cells();
    cell->add_keys("FEMALE");
    cell->set_value(42);
    return grpc::Status::OK;
  }

  // Answers only once its caller has gone (at most 5 s): a call the gateway's caller cancels.
  grpc::Status GetCase(grpc::ServerContext* ctx, const cepv1::GetCaseRequest*, cepv1::Case*) override {
    {
      absl::MutexLock lock(&mu_);
      ++attempts_["GetCase"];
    }
    for (int i = 0; i < 500 && !ctx->IsCancelled(); ++i) absl::SleepFor(absl::Milliseconds(10));
    return grpc::Status(grpc::StatusCode::CANCELLED, "the caller went away");
  }

  // Slow and always unavailable: each attempt's deadline is recorded.
  grpc::Status GetOperator(grpc::ServerContext* ctx, const cepv1::GetOperatorRequest*, cepv1::Operator*) override {
    {
      absl::MutexLock lock(&mu_);
      ++attempts_["GetOperator"];
      deadlines_.push_back(ctx->deadline());
    }
    absl::SleepFor(absl::Milliseconds(150));
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "down");
  }
  std::vector<std::chrono::system_clock::time_point> deadlines() {
    absl::MutexLock lock(&mu_);
    return deadlines_;
  }

  // Always fails, with details: they must reach the gateway's caller unchanged.
  grpc::Status GetComplianceReport(grpc::ServerContext*, const cepv1::GetComplianceReportRequest*,
                                   cepv1::ComplianceReport*) override {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "as_of is in the future", ErrorDetails());
  }

  static std::string ErrorDetails() {
    google::rpc::Status status;
    status.set_code(grpc::StatusCode::FAILED_PRECONDITION);
    status.set_message("as_of is in the future");
    google::rpc::PreconditionFailure failure;
    auto* v = failure.add_violations();
    v->set_type("AS_OF_IN_FUTURE");
    v->set_subject("as_of");
    status.add_details()->PackFrom(failure);
    return status.SerializeAsString();
  }

  std::vector<Seen> seen() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

 private:
  static std::string Metadata(const grpc::ServerContext& ctx, const std::string& key) {
    auto it = ctx.client_metadata().find(key);
    return it == ctx.client_metadata().end() ? "" : std::string(it->second.data(), it->second.size());
  }

  // Counts the attempt; the failure FailOnce set for `method`, once.
  std::optional<grpc::Status> Injected(const std::string& method) {
    absl::MutexLock lock(&mu_);
    ++attempts_[method];
    auto it = fail_once_.find(method);
    if (it == fail_once_.end()) return std::nullopt;
    grpc::Status failed(it->second, "injected failure");
    fail_once_.erase(it);
    return failed;
  }

  absl::Mutex mu_;
  std::vector<Seen> seen_;
  std::vector<std::chrono::system_clock::time_point> deadlines_;
  std::map<std::string, grpc::StatusCode> fail_once_;
  std::map<std::string, int> attempts_;
};

class GatewayServiceTest : public ::testing::Test, public testing::GatewayScenario {
 protected:
  void SetUp() override {
    // referential-svc with the seed CQP.
    const std::string ref_dsn = ::parcours::testing::FreshSqliteDatabase();
    {
      auto db = db::Open(ref_dsn);
      ASSERT_TRUE(db.ok());
      ASSERT_TRUE(referential::Migrate(**db).ok());
    }
    auto ref_app = referential::App::Create(Config::FromMap({{"database.dsn", ref_dsn}}));
    ASSERT_TRUE(ref_app.ok()) << ref_app.status();
    referential_app_ = *std::move(ref_app);
    ASSERT_TRUE(referential_app_->LoadDocument(kSeedFile).ok());
    referential_ = Serve(referential_app_->services(), "referential-svc");

    const std::string eval_dsn = ::parcours::testing::FreshSqliteDatabase();
    {
      auto db = db::Open(eval_dsn);
      ASSERT_TRUE(db.ok());
      ASSERT_TRUE(evaluation::Migrate(**db).ok());
    }
    auto eval_app = evaluation::App::Create(Config::FromMap(
        {{"database.dsn", eval_dsn}, {"referential.address", Address(*referential_)}, {"referential.deadline", "1s"}}));
    ASSERT_TRUE(eval_app.ok()) << eval_app.status();
    evaluation_app_ = *std::move(eval_app);
    evaluation_ = Serve(evaluation_app_->services(), "evaluation-svc");

    const std::string cep_dsn = ::parcours::testing::FreshSqliteDatabase();
    {
      auto db = db::Open(cep_dsn);
      ASSERT_TRUE(db.ok());
      ASSERT_TRUE(cep::Migrate(**db).ok());
    }
    auto cep_app = cep::App::Create(Config::FromMap({{"database.dsn", cep_dsn}}));
    ASSERT_TRUE(cep_app.ok()) << cep_app.status();
    cep_app_ = *std::move(cep_app);
    cep_ = Serve(cep_app_->services(), "cep-svc");

    StartGateway({});
  }

  void TearDown() override {
    for (auto* runner : {gateway_.get(), cep_.get(), evaluation_.get(), referential_.get()}) {
      if (runner != nullptr) runner->Shutdown();
    }
  }

  std::map<std::string, std::string> GatewayConfig(const std::map<std::string, std::string>& overrides,
                                                   const std::string& cep_address = "") {
    std::map<std::string, std::string> config = {
        {"backends.referential.address", Address(*referential_)},
        {"backends.evaluation.address", Address(*evaluation_)},
        {"backends.cep.address", cep_address.empty() ? Address(*cep_) : cep_address},
        {"backends.part_deadline", "1s"},
        {"rate_limit.rate", "10000"},
        {"rate_limit.burst", "10000"},
        {"rate_limit.failed_auth_rate", "10000"},  // the refusal tests all come from 127.0.0.1
        {"rate_limit.failed_auth_burst", "10000"}};
    for (const auto& [k, v] : overrides) config[k] = v;
    return config;
  }

  void StartGateway(const std::map<std::string, std::string>& overrides) {
    auto authenticator = std::make_unique<PrincipalTokenAuthenticator>();
    authenticator_ = authenticator.get();
    auto app = App::Create(Config::FromMap(GatewayConfig(overrides)), std::move(authenticator));
    ASSERT_TRUE(app.ok()) << app.status();
    gateway_app_ = *std::move(app);
    gateway_ = Serve(gateway_app_->services(), "gateway");
    ConnectGateway(grpc::CreateChannel(Address(*gateway_), grpc::InsecureChannelCredentials()),
                   [](grpc::ClientContext& ctx, const std::string& principal) {
                     // PrincipalTokenAuthenticator takes the principal itself as the token.
                     if (!principal.empty()) ctx.AddMetadata("authorization", "Bearer " + principal);
                   });
  }

  // A second gateway whose cep-svc is a RecordingCep: what a backend receives, and how its
  // answers and failures come back.
  struct FakeCepGateway {
    std::unique_ptr<ServerRunner> backend;
    std::unique_ptr<App> app;
    std::unique_ptr<ServerRunner> gateway;
    std::shared_ptr<grpc::Channel> channel;
    void Shutdown() {
      if (gateway != nullptr) gateway->Shutdown();
      if (backend != nullptr) backend->Shutdown();
    }
    ~FakeCepGateway() { Shutdown(); }
  };
  void StartInFrontOf(RecordingCep& fake, FakeCepGateway* out,
                      const std::map<std::string, std::string>& overrides = {}) {
    out->backend = Serve({&fake}, "fake-cep");
    auto app = App::Create(Config::FromMap(GatewayConfig(overrides, Address(*out->backend))),
                           std::make_unique<PrincipalTokenAuthenticator>());
    ASSERT_TRUE(app.ok()) << app.status();
    out->app = *std::move(app);
    out->gateway = Serve(out->app->services(), "gateway-2");
    out->channel = grpc::CreateChannel(Address(*out->gateway), grpc::InsecureChannelCredentials());
  }

  // Calls `method` of `stub` as `principal` ("" = no credentials) with extra metadata.
  template <typename Stub, typename Req, typename Resp>
  grpc::Status Call(Stub* stub, const std::string& principal,
                    grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*), const Req& request,
                    Resp* response, const std::map<std::string, std::string>& metadata = {}) {
    grpc::ClientContext ctx;
    authenticate_(ctx, principal);
    for (const auto& [k, v] : metadata) ctx.AddMetadata(k, v);
    ctx.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
    return (stub->*method)(&ctx, request, response);
  }

  std::unique_ptr<referential::App> referential_app_;
  std::unique_ptr<evaluation::App> evaluation_app_;
  std::unique_ptr<cep::App> cep_app_;
  std::unique_ptr<App> gateway_app_;
  PrincipalTokenAuthenticator* authenticator_ = nullptr;  // owned by gateway_app_
  std::unique_ptr<ServerRunner> referential_;
  std::unique_ptr<ServerRunner> evaluation_;
  std::unique_ptr<ServerRunner> cep_;
  std::unique_ptr<ServerRunner> gateway_;
};

// --- Operators: forwarding, scoping, audit -------------------------------------------------------

TEST_F(GatewayServiceTest, OperatorCaseFilesAreForwardedScopedAndAudited) {
  LogCapture logs;
  AddOperator("ft", cepv1::OPERATOR_KIND_FRANCE_TRAVAIL, {"53", "11"});
  AddOperator("apec", cepv1::OPERATOR_KIND_APEC, {"53"});
  cepv1::Case c = OpenCase(kFt, "NIR-1");
  EXPECT_EQ(c.operator_(), "operators/ft");  // cep-svc saw the gateway's principal

  cepv1::GetCaseRequest get;
  get.set_name(c.name());
  EXPECT_EQ(MustCall(operator_.get(), kFt, &Operator::GetCase, get).name(), c.name());
  cepv1::RecordServiceRequest service;
  service.set_name(c.name());
  service.mutable_service()->set_kind(cepv1::SERVICE_KIND_INFORMATION);
  *service.mutable_service()->mutable_date() = testing::ScenarioDate(2024, 3, 4);
  EXPECT_EQ(MustCall(operator_.get(), kFt, &Operator::RecordService, service).services_size(), 1);
  cepv1::ListCasesRequest list;
  EXPECT_EQ(MustCall(operator_.get(), kFt, &Operator::ListCases, list).cases_size(), 1);

  // Another operator: NOT_FOUND, exactly as for a case that does not exist.
  cepv1::Case out;
  grpc::Status foreign = Call(operator_.get(), kApec, &Operator::GetCase, get, &out);
  cepv1::GetCaseRequest missing;
  missing.set_name("cases/0000000000000000");
  grpc::Status absent = Call(operator_.get(), kApec, &Operator::GetCase, missing, &out);
  EXPECT_EQ(foreign.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(absent.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(absl::StrReplaceAll(foreign.error_message(), {{c.name(), "<name>"}}),
            absl::StrReplaceAll(absent.error_message(), {{missing.name(), "<name>"}}));
  EXPECT_EQ(MustCall(operator_.get(), kApec, &Operator::ListCases, list).cases_size(), 0);
  // A client-sent principal header is not passed on: the gateway sets its own.
  grpc::Status spoofed = Call(operator_.get(), kApec, &Operator::GetCase, get, &out, {{kPrincipalMetadata, kFt}});
  EXPECT_EQ(spoofed.error_code(), grpc::StatusCode::NOT_FOUND);

  // Backend validation errors come back with their details.
  cepv1::OpenCaseRequest empty;
  grpc::Status invalid = Call(operator_.get(), kFt, &Operator::OpenCase, empty, &out);
  EXPECT_EQ(invalid.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_FALSE(BadFields(invalid).empty()) << invalid.error_message();

  // One audit line per personal-data call: who, what, which resource, the decision; no contact
  // detail, no token, anywhere in the logs.
  bool allowed_get = false;
  bool denied_region = false;
  cepv1::Case ignored;
  EXPECT_EQ(Call(operator_.get(), "region:53", &Operator::GetCase, get, &ignored).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // A NIR typed into a name field stays out of the logs, whether the caller is an operator or
  // has no credentials at all: the audit line says the name was malformed.
  cepv1::GetBeneficiaryRequest typed;
  typed.set_name("beneficiaries/1850775123456");
  cepv1::Beneficiary not_read;
  EXPECT_NE(Call(operator_.get(), kFt, &Operator::GetBeneficiary, typed, &not_read).error_code(),
            grpc::StatusCode::OK);
  EXPECT_EQ(Call(operator_.get(), "", &Operator::GetBeneficiary, typed, &not_read).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  int malformed = 0;
  for (const std::string& line : logs.Lines()) {
    EXPECT_EQ(line.find("1850775123456"), std::string::npos) << line;
    if (absl::StrContains(line, "\"resource\":\"(malformed name)\"")) ++malformed;
  }
  EXPECT_EQ(malformed, 2);
  for (const std::string& line : logs.Lines()) {
    EXPECT_EQ(line.find(kEmail), std::string::npos) << line;
    EXPECT_EQ(line.find("Bearer"), std::string::npos) << line;
    EXPECT_EQ(line.find("NIR-1"), std::string::npos) << line;
    if (line.find("\"msg\":\"audit\"") == std::string::npos) continue;
    if (absl::StrContains(line, "\"method\":\"/parcours.gateway.v1.OperatorService/GetCase\"") &&
        absl::StrContains(line, absl::StrCat("\"resource\":\"", c.name(), "\"")) &&
        absl::StrContains(line, "\"principal\":\"operator:ft\"") &&
        absl::StrContains(line, "\"subject\":\"user-of-operator:ft\"") &&
        absl::StrContains(line, "\"decision\":\"allow\"") && absl::StrContains(line, "\"grpc_code\":\"OK\"")) {
      allowed_get = true;
    }
    if (absl::StrContains(line, "\"principal\":\"region:53\"") && absl::StrContains(line, "\"decision\":\"deny\"") &&
        absl::StrContains(line, "PERMISSION_DENIED")) {
      denied_region = true;
    }
  }
  EXPECT_TRUE(allowed_get);
  EXPECT_TRUE(denied_region);
}

// A pending transfer is withdrawn through the gateway by its holder only; every call is audited
// on the transfer's name, the reason stays out of the logs.
// An audit line names its own call's request and trace ids. The line of an admitted call is
// written on whichever thread completed its backend call, which last served another call: the
// ids left on that thread are someone else's.
TEST_F(GatewayServiceTest, EveryAuditLineCarriesItsOwnCallsIds) {
  AddOperator("ft", cepv1::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  LogCapture logs;
  constexpr int kThreads = 4;
  constexpr int kCalls = 25;
  auto case_of = [](int t, int i) { return absl::StrFormat("cases/%016x", t * 1000 + i); };
  auto request_of = [](int t, int i) { return absl::StrCat("req-", t, "-", i); };
  auto trace_of = [](int t, int i) { return absl::StrFormat("%032x", t * 1000 + i + 1); };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        cepv1::GetCaseRequest get;
        get.set_name(case_of(t, i));
        cepv1::Case out;
        EXPECT_EQ(Call(operator_.get(), kFt, &Operator::GetCase, get, &out,
                       {{"x-request-id", request_of(t, i)},
                        {"traceparent", absl::StrCat("00-", trace_of(t, i), "-00f067aa0ba902b7-01")}})
                      .error_code(),
                  grpc::StatusCode::NOT_FOUND);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  int audited = 0;
  for (const std::string& line : logs.Lines()) {
    if (!absl::StrContains(line, "\"msg\":\"audit\"")) continue;
    for (int t = 0; t < kThreads; ++t) {
      for (int i = 0; i < kCalls; ++i) {
        if (!absl::StrContains(line, absl::StrCat("\"resource\":\"", case_of(t, i), "\""))) continue;
        ++audited;
        EXPECT_TRUE(absl::StrContains(line, absl::StrCat("\"request_id\":\"", request_of(t, i), "\""))) << line;
        EXPECT_TRUE(absl::StrContains(line, absl::StrCat("\"trace_id\":\"", trace_of(t, i), "\""))) << line;
      }
    }
  }
  EXPECT_EQ(audited, kThreads * kCalls);
}

TEST_F(GatewayServiceTest, TheHolderCancelsAPendingTransferThroughTheGateway) {
  LogCapture logs;
  AddOperator("ft", cepv1::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", cepv1::OPERATOR_KIND_APEC, {"53"});
  const cepv1::Case c = OpenCase(kFt, "NIR-CANCEL");
  cepv1::RequestTransferRequest request;
  request.mutable_transfer()->set_case_(c.name());
  request.mutable_transfer()->set_to_operator("operators/apec");
  request.mutable_transfer()->set_beneficiary_consent(true);
  const cepv1::Transfer sent = MustCall(operator_.get(), kFt, &Operator::RequestTransfer, request);

  cepv1::CancelTransferRequest cancel;
  cancel.set_name(sent.name());
  cancel.set_reason("consentement retiré par la personne");
  cepv1::Transfer out;
  EXPECT_EQ(Call(operator_.get(), kApec, &Operator::CancelTransfer, cancel, &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  const cepv1::Transfer cancelled = MustCall(operator_.get(), kFt, &Operator::CancelTransfer, cancel);
  EXPECT_EQ(cancelled.state(), cepv1::TRANSFER_STATE_CANCELLED);
  EXPECT_EQ(cancelled.reason(), cancel.reason());

  int audited = 0;
  for (const std::string& line : logs.Lines()) {
    EXPECT_EQ(line.find("consentement"), std::string::npos) << line;
    if (!absl::StrContains(line, "\"msg\":\"audit\"") ||
        !absl::StrContains(line, "\"method\":\"/parcours.gateway.v1.OperatorService/CancelTransfer\"")) {
      continue;
    }
    EXPECT_TRUE(absl::StrContains(line, absl::StrCat("\"resource\":\"", sent.name(), "\""))) << line;
    ++audited;
  }
  EXPECT_EQ(audited, 2);
}

// --- Authorisation before anything else, on every method ------------------------------------------

TEST_F(GatewayServiceTest, EveryMethodRefusesOtherAudiencesBeforeLookingAtTheRequest) {
  grpc::GenericStub generic(channel_);
  // An empty message: invalid for nearly every method (names are required), so a refusal other
  // than PERMISSION_DENIED would show validation ran first.
  grpc::Slice empty_slice("", 0);
  const grpc::ByteBuffer empty(&empty_slice, 1);
  auto call = [&](const std::string& method, const std::string& principal) {
    grpc::ClientContext ctx;
    if (!principal.empty()) ctx.AddMetadata("authorization", "Bearer " + principal);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::ByteBuffer response;
    absl::Notification done;
    grpc::Status status;
    generic.UnaryCall(&ctx, method, grpc::StubOptions(), &empty, &response, [&](grpc::Status s) {
      status = std::move(s);
      done.Notify();
    });
    done.WaitForNotification();
    return status;
  };
  int refused = 0;
  for (const google::protobuf::ServiceDescriptor* service : GatewayServices()) {
    for (int i = 0; i < service->method_count(); ++i) {
      const std::string method = absl::StrCat("/", service->full_name(), "/", service->method(i)->name());
      const MethodPolicy* policy = FindPolicy(method);
      ASSERT_NE(policy, nullptr) << method;
      for (Principal::Kind kind : kAllKinds) {
        if (Allows(*policy, kind)) continue;
        const std::string principal = Principal{kind, kind == Principal::Kind::kNational ? "" : "11"}.ToString();
        grpc::Status s = call(method, principal);
        EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << method << " as " << principal << ": "
                                                                        << s.error_message();
        ++refused;
      }
      EXPECT_EQ(call(method, "").error_code(), grpc::StatusCode::UNAUTHENTICATED) << method;
    }
  }
  EXPECT_GT(refused, 250);

  // The same invalid request from the right audience reaches validation.
  cepv1::CreateOperatorRequest invalid;
  cepv1::Operator out;
  EXPECT_EQ(Call(national_.get(), kFt, &National::CreateOperator, invalid, &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Call(national_.get(), kNational, &National::CreateOperator, invalid, &out).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::GetBeneficiaryJourneyRequest bad_case;
  bad_case.set_case_("not a case");
  v1::BeneficiaryJourney journey;
  EXPECT_EQ(Call(operator_.get(), "region:11", &Operator::GetBeneficiaryJourney, bad_case, &journey).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Call(operator_.get(), kFt, &Operator::GetBeneficiaryJourney, bad_case, &journey).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::QueryIndicatorsRequest other_region;
  other_region.set_filter("region = \"53\"");
  cepv1::QueryIndicatorsResponse cells;
  EXPECT_EQ(Call(region_.get(), kFt, &Region::QueryIndicators, other_region, &cells).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Call(region_.get(), "region:11", &Region::QueryIndicators, other_region, &cells).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

// --- Regions ------------------------------------------------------------------------------------

TEST_F(GatewayServiceTest, RegionSeesItsOwnTerritoryOnly) {
  AddOperator("ft", cepv1::OPERATOR_KIND_FRANCE_TRAVAIL, {"11", "53"});
  AddOperator("ml-rennes", cepv1::OPERATOR_KIND_MISSION_LOCALE, {"53"});
  AddOperator("ml-paris", cepv1::OPERATOR_KIND_MISSION_LOCALE, {"11"});
  OpenCase("operator:ml-rennes", "P-35", "35");
  OpenCase("operator:ml-paris", "P-75", "75");

  cepv1::GetComplianceReportRequest compliance;
  cepv1::ComplianceReport report = MustCall(region_.get(), "region:11", &Region::GetComplianceReport, compliance);
  std::set<std::string> operators;
  for (const auto& o : report.operators()) operators.insert(o.operator_());
  EXPECT_TRUE(operators.count("operators/ml-paris")) << report.DebugString();
  EXPECT_TRUE(operators.count("operators/ft")) << report.DebugString();
  EXPECT_FALSE(operators.count("operators/ml-rennes")) << report.DebugString();
  cepv1::ComplianceReport everyone = MustCall(national_.get(), kNational, &National::GetComplianceReport, compliance);
  EXPECT_EQ(everyone.operators_size(), 3);

  // Indicators on the real cep-svc, once it serves them: grouped by region, region 11 sees 11.
  v1::QueryIndicatorsRequest query;
  query.set_measure(cepv1::MEASURE_ENTRIES);
  query.set_from_month("2024-01");
  query.set_to_month("2024-12");
  query.add_group_by(cepv1::DIMENSION_REGION);
  query.set_total_over_period(true);
  cepv1::QueryIndicatorsResponse cells;
  grpc::Status s = Call(region_.get(), "region:11", &Region::QueryIndicators, query, &cells);
  if (s.error_code() != grpc::StatusCode::UNIMPLEMENTED) {
    ASSERT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
    EXPECT_GT(cells.cells_size(), 0);
    for (const auto& cell : cells.cells()) {
      ASSERT_EQ(cell.keys_size(), 1);
      EXPECT_EQ(cell.keys(0), "11") << cells.DebugString();
    }
  }
}

// A region filters on every dimension cep-svc filters on (each parcours.cep.v1.Dimension's
// field), on the real cep-svc.
TEST_F(GatewayServiceTest, RegionFiltersOnEveryDimensionOfTheIndicators) {
  AddOperator("ml-paris", cepv1::OPERATOR_KIND_MISSION_LOCALE, {"11"});
  OpenCase("operator:ml-paris", "P-75-F", "75");
  const std::map<cepv1::Dimension, std::pair<cepv1::Measure, std::string>> filters = {
      {cepv1::DIMENSION_OPERATOR, {cepv1::MEASURE_ENTRIES, "operator = \"ml-paris\""}},
      {cepv1::DIMENSION_REGION, {cepv1::MEASURE_ENTRIES, "region = \"11\""}},
      {cepv1::DIMENSION_SEX, {cepv1::MEASURE_ENTRIES, "sex = FEMALE"}},
      {cepv1::DIMENSION_AGE_BAND, {cepv1::MEASURE_ENTRIES, "age_band != \"55+\""}},
      {cepv1::DIMENSION_STATUS, {cepv1::MEASURE_ENTRIES, "status = JOB_SEEKER"}},
      {cepv1::DIMENSION_QUALIFICATION_LEVEL, {cepv1::MEASURE_ENTRIES, "qualification_level = 4"}},
      {cepv1::DIMENSION_LEVEL, {cepv1::MEASURE_ENTRIES, "level = \"2019/2\""}},
      {cepv1::DIMENSION_DEMAND, {cepv1::MEASURE_ENTRIES, "demand = SKILLS_RECOGNITION"}},
      {cepv1::DIMENSION_SERVICE_KIND, {cepv1::MEASURE_SERVICES, "service_kind = INFORMATION"}},
      {cepv1::DIMENSION_OUTCOME_KIND, {cepv1::MEASURE_OUTCOMES, "outcome_kind = VAE"}},
      {cepv1::DIMENSION_SATISFACTION, {cepv1::MEASURE_SATISFACTION_RESPONSES, "satisfaction = \"END/5\""}},
  };
  const google::protobuf::EnumDescriptor* dimensions = cepv1::Dimension_descriptor();
  for (int i = 0; i < dimensions->value_count(); ++i) {
    const auto d = static_cast<cepv1::Dimension>(dimensions->value(i)->number());
    if (d == cepv1::DIMENSION_UNSPECIFIED) continue;
    auto it = filters.find(d);
    ASSERT_NE(it, filters.end()) << "no filter tried for " << dimensions->value(i)->name();
    v1::QueryIndicatorsRequest query;
    query.set_measure(it->second.first);
    query.set_from_month("2024-01");
    query.set_to_month("2024-12");
    query.set_total_over_period(true);
    query.set_filter(it->second.second);
    cepv1::QueryIndicatorsResponse cells;
    grpc::Status s = Call(region_.get(), "region:11", &Region::QueryIndicators, query, &cells);
    EXPECT_TRUE(s.ok()) << query.filter() << ": " << s.error_code() << ": " << s.error_message();
  }
}

TEST_F(GatewayServiceTest, WhatTheBackendReceivesAndSendsBack) {
  LogCapture logs;
  RecordingCep fake;
  FakeCepGateway g;
  ASSERT_NO_FATAL_FAILURE(StartInFrontOf(fake, &g));
  auto region = v1::RegionService::NewStub(g.channel);

  v1::QueryIndicatorsRequest query;
  query.set_measure(cepv1::MEASURE_ENTRIES);
  query.set_from_month("2017-01");
  query.set_to_month("2017-12");
  query.add_group_by(cepv1::DIMENSION_SEX);
  query.set_filter("sex = FEMALE");
  const std::string traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const auto before = std::chrono::system_clock::now();
  cepv1::QueryIndicatorsResponse cells;
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer region:11");
    ctx.AddMetadata("traceparent", traceparent);
    ctx.AddMetadata("x-request-id", "req-42");
    ctx.AddMetadata(kPrincipalMetadata, "national");  // ignored
    ctx.set_deadline(before + std::chrono::seconds(5));
    grpc::Status s = region->QueryIndicators(&ctx, query, &cells);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  ASSERT_EQ(cells.cells_size(), 1);
  EXPECT_EQ(cells.cells(0).value(), 42);
  {
    // No deadline from the caller: the gateway's default (10 s) applies.
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer region:11");
    ASSERT_TRUE(region->QueryIndicators(&ctx, query, &cells).ok());
  }
  std::vector<RecordingCep::Seen> seen = fake.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].principal, "region:11");
  EXPECT_EQ(seen[0].query.filter(), "region = \"11\" AND sex = FEMALE");
  EXPECT_TRUE(seen[0].query.suppress_small_cells());
  EXPECT_EQ(seen[0].query.measure(), cepv1::MEASURE_ENTRIES);
  EXPECT_EQ(seen[0].traceparent, traceparent);
  EXPECT_EQ(seen[0].request_id, "req-42");
  // Deadlines travel as grpc-timeout, which gRPC rounds up (to 100 ms units at this size).
  const auto slack = std::chrono::milliseconds(200);
  EXPECT_LE(seen[0].deadline, before + std::chrono::seconds(5) + slack);
  EXPECT_GT(seen[0].deadline, before + std::chrono::seconds(4));
  // Generated when the caller sent none: the one of the gateway's own access log line.
  EXPECT_FALSE(seen[1].request_id.empty());
  bool same_id = false;
  for (const std::string& line : logs.Lines()) {
    if (absl::StrContains(line, "\"method\":\"/parcours.gateway.v1.RegionService/QueryIndicators\"") &&
        absl::StrContains(line, absl::StrCat("\"request_id\":\"", seen[1].request_id, "\""))) {
      same_id = true;
    }
  }
  EXPECT_TRUE(same_id) << seen[1].request_id;
  EXPECT_LE(seen[1].deadline, std::chrono::system_clock::now() + std::chrono::seconds(10) + slack);
  EXPECT_GT(seen[1].deadline, before + std::chrono::seconds(9));

  // A backend error: code, message and details unchanged.
  cepv1::GetComplianceReportRequest compliance;
  cepv1::ComplianceReport report;
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer region:11");
  grpc::Status failed = region->GetComplianceReport(&ctx, compliance, &report);
  EXPECT_EQ(failed.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(failed.error_message(), "as_of is in the future");
  EXPECT_EQ(failed.error_details(), RecordingCep::ErrorDetails());
  EXPECT_EQ(::parcours::testing::PreconditionTypes(failed), std::set<std::string>{"AS_OF_IN_FUTURE"});
}

// A caller without a deadline gets backends.default_deadline for the whole call, retries
// included: every attempt ends by the first one's deadline.
TEST_F(GatewayServiceTest, RetriesKeepTheFirstAttemptsDeadline) {
  RecordingCep fake;
  FakeCepGateway g;
  ASSERT_NO_FATAL_FAILURE(StartInFrontOf(fake, &g, {{"backends.default_deadline", "500ms"}}));
  auto op = v1::OperatorService::NewStub(g.channel);
  grpc::ClientContext ctx;  // no deadline
  ctx.AddMetadata("authorization", std::string("Bearer ") + kFt);
  cepv1::GetOperatorRequest get;
  get.set_name("operators/ft");
  cepv1::Operator out;
  const grpc::Status s = op->GetOperator(&ctx, get, &out);
  EXPECT_TRUE(s.error_code() == grpc::StatusCode::UNAVAILABLE || s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
      << s.error_code();
  const std::vector<std::chrono::system_clock::time_point> deadlines = fake.deadlines();
  ASSERT_GE(deadlines.size(), 2u);  // retried
  for (size_t i = 1; i < deadlines.size(); ++i) {
    EXPECT_LE(deadlines[i], deadlines[0] + std::chrono::milliseconds(20)) << "attempt " << i + 1;
  }
}

TEST_F(GatewayServiceTest, OnlyIdempotentCallsAreRetriedOnUnavailable) {
  RecordingCep fake;
  FakeCepGateway g;
  ASSERT_NO_FATAL_FAILURE(StartInFrontOf(fake, &g));
  const std::shared_ptr<grpc::Channel>& channel = g.channel;
  auto region = v1::RegionService::NewStub(channel);
  auto national = v1::NationalService::NewStub(channel);
  auto op = v1::OperatorService::NewStub(channel);

  // A read: retried, the caller sees the second attempt's answer.
  fake.FailOnce("QueryIndicators");
  v1::QueryIndicatorsRequest query;
  cepv1::QueryIndicatorsResponse cells;
  EXPECT_TRUE(Call(region.get(), "region:11", &Region::QueryIndicators, query, &cells).ok());
  EXPECT_EQ(fake.Attempts("QueryIndicators"), 2);

  // A write without an idempotency key: never retried, UNAVAILABLE comes back.
  fake.FailOnce("CreateOperator");
  cepv1::CreateOperatorRequest create;
  create.set_operator_id("ft");
  cepv1::Operator created;
  EXPECT_EQ(Call(national.get(), kNational, &National::CreateOperator, create, &created).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(fake.Attempts("CreateOperator"), 1);

  // A create: retried only when it carries a request_id.
  fake.FailOnce("OpenCase");
  cepv1::OpenCaseRequest open;
  cepv1::Case opened;
  EXPECT_EQ(Call(op.get(), kFt, &Operator::OpenCase, open, &opened).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(fake.Attempts("OpenCase"), 1);
  fake.FailOnce("OpenCase");
  open.set_request_id("3b0c1e0a-5f43-4c1e-9b7e-2d1f0a9c8e71");
  EXPECT_TRUE(Call(op.get(), kFt, &Operator::OpenCase, open, &opened).ok());
  EXPECT_EQ(fake.Attempts("OpenCase"), 3);

  // A backend that cancels a call (its drain deadline) may have written before: a read is
  // retried as for UNAVAILABLE; a write without a request_id is UNKNOWN (never "retry"), once.
  fake.FailOnce("QueryIndicators", grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(Call(region.get(), "region:11", &Region::QueryIndicators, query, &cells).ok());
  EXPECT_EQ(fake.Attempts("QueryIndicators"), 4);
  // A backend's UNKNOWN (a commit whose outcome it could not tell, an unmapped failure): retries
  // are on UNAVAILABLE only, so it comes back after one attempt, even for a read.
  fake.FailOnce("QueryIndicators", grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(Call(region.get(), "region:11", &Region::QueryIndicators, query, &cells).error_code(),
            grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(fake.Attempts("QueryIndicators"), 5);
  fake.FailOnce("CreateOperator", grpc::StatusCode::CANCELLED);
  const grpc::Status cancelled = Call(national.get(), kNational, &National::CreateOperator, create, &created);
  EXPECT_EQ(cancelled.error_code(), grpc::StatusCode::UNKNOWN) << cancelled.error_message();
  EXPECT_NE(cancelled.error_message().find("may have been applied"), std::string::npos) << cancelled.error_message();
  EXPECT_EQ(fake.Attempts("CreateOperator"), 2);
}

// A caller's own cancellation stays CANCELLED: before, the propagated cancellation read as a
// backend shutting down, so a read was retried and audited as UNAVAILABLE.
TEST_F(GatewayServiceTest, ACallersCancellationIsNeitherRetriedNorAuditedAsUnavailable) {
  LogCapture logs;
  RecordingCep fake;
  FakeCepGateway g;
  ASSERT_NO_FATAL_FAILURE(StartInFrontOf(fake, &g));
  auto op = v1::OperatorService::NewStub(g.channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", std::string("Bearer ") + kFt);
  cepv1::GetCaseRequest get;
  get.set_name("cases/c-1");
  cepv1::Case out;
  std::thread canceller([&ctx, &fake] {
    for (int i = 0; i < 500 && fake.Attempts("GetCase") == 0; ++i) absl::SleepFor(absl::Milliseconds(10));
    absl::SleepFor(absl::Milliseconds(50));
    ctx.TryCancel();
  });
  EXPECT_EQ(op->GetCase(&ctx, get, &out).error_code(), grpc::StatusCode::CANCELLED);
  canceller.join();
  g.Shutdown();  // the call's audit line is written by then
  EXPECT_EQ(fake.Attempts("GetCase"), 1);
  int audited = 0;
  for (const std::string& line : logs.Lines()) {
    if (!absl::StrContains(line, "\"msg\":\"audit\"") ||
        !absl::StrContains(line, "\"method\":\"/parcours.gateway.v1.OperatorService/GetCase\"")) {
      continue;
    }
    EXPECT_TRUE(absl::StrContains(line, "\"grpc_code\":\"CANCELLED\"")) << line;
    ++audited;
  }
  EXPECT_EQ(audited, 1);
}

// --- Certifiers and juries ------------------------------------------------------------------------

TEST_F(GatewayServiceTest, CertifiersAndJuryMembersSeeTheirOwnOnly) {
  ev::Candidacy c = NewCandidacy("cand-1");
  ev::JurySession s = NewSession();
  ev::GetCandidacyRequest get;
  get.set_name(c.name());
  ev::Candidacy out;
  EXPECT_EQ(Call(certifier_.get(), "certifier:OTHER", &Certifier::GetCandidacy, get, &out).error_code(),
            grpc::StatusCode::NOT_FOUND);
  ev::GetJurySessionRequest get_session;
  get_session.set_name(s.name());
  EXPECT_EQ(MustCall(certifier_.get(), "jury-member:J1", &Certifier::GetJurySession, get_session).name(), s.name());
  ev::JurySession session;
  EXPECT_EQ(Call(certifier_.get(), "jury-member:J9", &Certifier::GetJurySession, get_session, &session).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // A member may not create candidacies (gateway), nor sign for a session it does not sit on.
  ev::CreateCandidacyRequest create;
  EXPECT_EQ(Call(certifier_.get(), "jury-member:J1", &Certifier::CreateCandidacy, create, &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // The backend's field violations come back as they are.
  create.mutable_candidacy()->set_candidate_display_name("X");
  create.mutable_candidacy()->set_referential_version(kSeedVersion);
  grpc::Status invalid = Call(certifier_.get(), kCertifierPrincipal, &Certifier::CreateCandidacy, create, &out);
  EXPECT_EQ(invalid.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(BadFields(invalid), std::vector<std::string>{"candidacy.candidate_id"});
  // A certifier the seed CQP does not list opens no candidacy on it.
  create.mutable_candidacy()->set_candidate_id("cand-2");
  grpc::Status foreign = Call(certifier_.get(), "certifier:OTHER", &Certifier::CreateCandidacy, create, &out);
  EXPECT_EQ(foreign.error_code(), grpc::StatusCode::PERMISSION_DENIED) << foreign.error_message();
  ev::ListCandidaciesRequest list;
  EXPECT_EQ(MustCall(certifier_.get(), "certifier:OTHER", &Certifier::ListCandidacies, list).candidacies_size(), 0);
  // Référentiels are readable by both kinds, writable by neither.
  ref::GetCertificationRequest cert;
  cert.set_name("certifications/CQP-TMSA");
  EXPECT_EQ(MustCall(certifier_.get(), "jury-member:J1", &Certifier::GetCertification, cert).title(), kSeedTitle);
}

// --- Rate limit -----------------------------------------------------------------------------------

// The google.rpc.RetryInfo delay of a refusal, in whole seconds; -1 without one.
int64_t RetryDelaySeconds(const grpc::Status& status) {
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) return -1;
  for (const auto& any : details.details()) {
    google::rpc::RetryInfo info;
    if (any.UnpackTo(&info)) return info.retry_delay().seconds();
  }
  return -1;
}

TEST_F(GatewayServiceTest, RateLimitIsPerPrincipalWithRetryInfo) {
  gateway_->Shutdown();
  StartGateway({{"rate_limit.rate", "0.01"}, {"rate_limit.burst", "2"}});
  cepv1::ListLevelCataloguesRequest req;
  cepv1::ListLevelCataloguesResponse out;
  AddOperator("ft", cepv1::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", cepv1::OPERATOR_KIND_APEC, {"53"});
  EXPECT_TRUE(Call(operator_.get(), kFt, &Operator::ListLevelCatalogues, req, &out).ok());
  EXPECT_TRUE(Call(operator_.get(), kFt, &Operator::ListLevelCatalogues, req, &out).ok());
  grpc::Status limited = Call(operator_.get(), kFt, &Operator::ListLevelCatalogues, req, &out);
  EXPECT_EQ(limited.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_GT(RetryDelaySeconds(limited), 10);  // a token every 100 s
  // Another principal has its own budget.
  EXPECT_TRUE(Call(operator_.get(), kApec, &Operator::ListLevelCatalogues, req, &out).ok());
}

// A client address's failed authentications are limited: past the burst, a call whose token is not
// a remembered good one is RESOURCE_EXHAUSTED (with RetryInfo) before its token is verified; a
// caller whose token worked before goes on. Another address has its own allowance (not testable
// on loopback alone: every call comes from 127.0.0.1).
TEST_F(GatewayServiceTest, FailedAuthenticationsFromOneAddressAreLimitedBeforeVerification) {
  gateway_->Shutdown();
  StartGateway({{"rate_limit.failed_auth_rate", "0.01"}, {"rate_limit.failed_auth_burst", "2"}});
  cepv1::ListLevelCataloguesRequest req;
  cepv1::ListLevelCataloguesResponse out;
  AddOperator("ft", cepv1::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", cepv1::OPERATOR_KIND_APEC, {"53"});
  ASSERT_TRUE(Call(operator_.get(), kFt, &Operator::ListLevelCatalogues, req, &out).ok());  // now known good
  EXPECT_EQ(Call(operator_.get(), "", &Operator::ListLevelCatalogues, req, &out).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);  // no token: nothing to verify, still a failure
  EXPECT_EQ(Call(operator_.get(), "not-a-principal", &Operator::ListLevelCatalogues, req, &out).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  const int verified = authenticator_->verifications();
  grpc::Status limited = Call(operator_.get(), "still-not-a-principal", &Operator::ListLevelCatalogues, req, &out);
  EXPECT_EQ(limited.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << limited.error_message();
  EXPECT_GT(RetryDelaySeconds(limited), 10);  // one failure per 100 s
  // A good token never seen before is not verified either; the one that worked goes on.
  EXPECT_EQ(Call(operator_.get(), kApec, &Operator::ListLevelCatalogues, req, &out).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(authenticator_->verifications(), verified);
  EXPECT_TRUE(Call(operator_.get(), kFt, &Operator::ListLevelCatalogues, req, &out).ok());

  // A flood of refused calls on a personal method is not a line each in the audit stream: one per
  // address and second (the refusals above took this second's).
  absl::SleepFor(absl::Milliseconds(1100));
  LogCapture logs;
  const absl::Time start = absl::Now();
  cepv1::GetCaseRequest get;
  get.set_name("cases/0123456789abcdef");
  cepv1::Case c;
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(Call(operator_.get(), "forged", &Operator::GetCase, get, &c).error_code(),
              grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  int refusal_lines = 0;
  for (const std::string& line : logs.Lines()) {
    if (absl::StrContains(line, "\"audit\"") && absl::StrContains(line, "RESOURCE_EXHAUSTED")) ++refusal_lines;
  }
  EXPECT_GE(refusal_lines, 1);
  EXPECT_LE(refusal_lines, 1 + static_cast<int>(seconds) + 1) << seconds << " s";
}

// --- Bulk import ----------------------------------------------------------------------------------

// Streams `batches` messages of three rows (E-0.., P-0..) as `principal`, waiting `pause` before
// each batch after the first; the last batch has one bad row.
grpc::Status ImportThroughGateway(v1::OperatorService::Stub& stub, const std::string& principal, int batches,
                                  cepv1::ImportCasesResponse* out, absl::Duration pause = absl::ZeroDuration()) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + principal);
  auto writer = stub.ImportCases(&ctx, out);
  int n = 0;
  for (int b = 0; b < batches; ++b) {
    if (b > 0) absl::SleepFor(pause);
    cepv1::ImportCasesRequest req;
    for (int i = 0; i < 3; ++i, ++n) {
      cepv1::ImportedCase* row = req.add_cases();
      row->set_external_id(absl::StrCat("E-", n));
      row->set_beneficiary_external_id(absl::StrCat("P-", n));
      row->mutable_beneficiary()->set_birth_year(1980 + n);
      row->mutable_beneficiary()->set_sex(cepv1::SEX_MALE);
      row->mutable_beneficiary()->set_department("35");
      row->mutable_beneficiary()->set_status(cepv1::EMPLOYMENT_STATUS_JOB_SEEKER);
      *row->mutable_opening_date() = testing::ScenarioDate(2021, 2, 1 + n);
      row->set_level("2019/2");
      row->add_demands(cepv1::DEMAND_KIND_PROJECT);
    }
    if (b == batches - 1) req.mutable_cases(0)->set_level("1999/9");  // one bad row
    if (!writer->Write(req)) break;
  }
  writer->WritesDone();
  return writer->Finish();
}

TEST_F(GatewayServiceTest, ImportCasesStreamsThroughToCepSvc) {
  AddOperator("ft", cepv1::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  auto import = [&](const std::string& principal, int batches, cepv1::ImportCasesResponse* out) {
    return ImportThroughGateway(*operator_, principal, batches, out);
  };
  cepv1::ImportCasesResponse first;
  grpc::Status s = import(kFt, 3, &first);
  ASSERT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
  EXPECT_EQ(first.rows_received(), 9);
  EXPECT_EQ(first.cases_created(), 8);
  ASSERT_EQ(first.errors_size(), 1);
  EXPECT_EQ(first.errors(0).line(), 7);
  cepv1::ImportCasesResponse again;
  ASSERT_TRUE(import(kFt, 3, &again).ok());
  EXPECT_EQ(again.cases_unchanged(), 8);
  EXPECT_EQ(again.cases_created(), 0);
  cepv1::ListCasesRequest list;
  list.set_page_size(100);
  EXPECT_EQ(MustCall(operator_.get(), kFt, &Operator::ListCases, list).cases_size(), 8);
  // Not an operator: refused before anything reaches cep-svc.
  cepv1::ImportCasesResponse denied;
  EXPECT_EQ(import("region:53", 1, &denied).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // An operator unknown to cep-svc: cep-svc's refusal comes back.
  EXPECT_EQ(import("operator:ghost", 1, &denied).error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

// An import lasts as long as its client sends: without a deadline of the caller's,
// backends.default_deadline (a unary read's) does not cut the stream; the caller's does.
TEST_F(GatewayServiceTest, ImportCasesIsNotCutByTheDefaultDeadline) {
  AddOperator("ft", cepv1::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  StartGateway({{"backends.default_deadline", "300ms"}});
  cepv1::ImportCasesResponse slow;
  grpc::Status s = ImportThroughGateway(*operator_, kFt, 4, &slow, absl::Milliseconds(200));
  ASSERT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
  EXPECT_EQ(slow.rows_received(), 12);
  EXPECT_EQ(slow.cases_created(), 11);
  // A deadline the caller sets still ends the stream.
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + std::string(kFt));
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
  cepv1::ImportCasesResponse cut;
  auto writer = operator_->ImportCases(&ctx, &cut);
  absl::SleepFor(absl::Milliseconds(600));
  writer->WritesDone();
  EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
}

// --- GetNationalDashboard -------------------------------------------------------------------------

// Per region and for the nation: cases opened, those with a skills-recognition demand, VAE
// outcomes (cep-svc); beside them the jury results sealed in the period (evaluation-svc).
TEST_F(GatewayServiceTest, NationalDashboardPutsCepFiguresBesideVaeResults) {
  AddOperator("ft", cepv1::OPERATOR_KIND_FRANCE_TRAVAIL, {"53", "11"});
  cepv1::Case rennes = OpenCase(kFt, "NIR-DASH-1");        // 35: Bretagne (53), skills recognition
  OpenCase(kFt, "NIR-DASH-2", "75");                       // Île-de-France (11), skills recognition
  {
    cepv1::RegisterBeneficiaryRequest reg;                 // Bretagne, a project only
    reg.set_external_id("NIR-DASH-3");
    reg.mutable_beneficiary()->set_birth_year(1990);
    reg.mutable_beneficiary()->set_sex(cepv1::SEX_MALE);
    reg.mutable_beneficiary()->set_department("29");
    reg.mutable_beneficiary()->set_status(cepv1::EMPLOYMENT_STATUS_JOB_SEEKER);
    cepv1::Beneficiary b = MustCall(operator_.get(), kFt, &Operator::RegisterBeneficiary, reg);
    cepv1::OpenCaseRequest open;
    open.mutable_case_()->set_beneficiary(b.name());
    open.mutable_case_()->mutable_opening_date()->set_year(2024);
    open.mutable_case_()->mutable_opening_date()->set_month(4);
    open.mutable_case_()->mutable_opening_date()->set_day(2);
    open.mutable_case_()->set_level("2019/1");
    open.mutable_case_()->add_demands(cepv1::DEMAND_KIND_PROJECT);
    MustCall(operator_.get(), kFt, &Operator::OpenCase, open);
  }
  ev::Candidacy c = NewCandidacy("cand-dash", rennes.name());
  JuryPartialResult(c);  // sealed today
  LinkVae(kFt, rennes.name(), c.name());

  v1::GetNationalDashboardRequest req;
  req.set_from_month("2024-01");
  req.set_to_month(absl::FormatTime("%Y-%m", absl::Now(), absl::UTCTimeZone()));
  v1::NationalDashboard d = MustCall(national_.get(), kNational, &National::GetNationalDashboard, req);
  EXPECT_TRUE(d.missing().empty()) << d.DebugString();
  EXPECT_EQ(d.from_month(), "2024-01");
  ASSERT_EQ(d.regions_size(), 2) << d.DebugString();
  EXPECT_EQ(d.regions(0).region(), "11");
  EXPECT_EQ(d.regions(0).entries(), 1);
  EXPECT_EQ(d.regions(0).skills_recognition_entries(), 1);
  EXPECT_EQ(d.regions(0).vae_outcomes(), 0);
  EXPECT_EQ(d.regions(1).region(), "53");
  EXPECT_EQ(d.regions(1).entries(), 2);
  EXPECT_EQ(d.regions(1).skills_recognition_entries(), 1);
  EXPECT_EQ(d.regions(1).vae_outcomes(), 1);
  EXPECT_EQ(d.national().entries(), 3);
  EXPECT_EQ(d.national().skills_recognition_entries(), 2);
  EXPECT_EQ(d.national().vae_outcomes(), 1);
  ASSERT_EQ(d.certifications_size(), 1);
  EXPECT_EQ(d.certifications(0).certification_code(), "CQP-TMSA");
  EXPECT_EQ(d.certifications(0).partial(), 1);
  EXPECT_EQ(d.all_certifications().decided(), 1);
  EXPECT_EQ(d.all_certifications().partial(), 1);

  // A period before the jury sat: the CEP figures, no result yet.
  req.set_to_month("2024-12");
  d = MustCall(national_.get(), kNational, &National::GetNationalDashboard, req);
  EXPECT_EQ(d.national().entries(), 3);
  EXPECT_EQ(d.certifications_size(), 0);
  EXPECT_EQ(d.all_certifications().decided(), 0);

  // Bad months name their field and call no backend.
  v1::NationalDashboard out;
  req.set_from_month("2024-13");
  grpc::Status bad = Call(national_.get(), kNational, &National::GetNationalDashboard, req, &out);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(BadFields(bad), std::vector<std::string>{"from_month"});
  req.set_from_month("2025-01");
  bad = Call(national_.get(), kNational, &National::GetNationalDashboard, req, &out);
  EXPECT_EQ(BadFields(bad), std::vector<std::string>{"to_month"});
  // Longer than cep-svc answers: the caller's error, not a missing part of an OK answer.
  req.set_from_month("1990-01");
  req.set_to_month("2020-12");
  bad = Call(national_.get(), kNational, &National::GetNationalDashboard, req, &out);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad.error_message();
  EXPECT_EQ(BadFields(bad), std::vector<std::string>{"to_month"});
  req.set_to_month("2024-12");
  // Only France compétences.
  req.set_from_month("2024-01");
  EXPECT_EQ(Call(national_.get(), "region:53", &National::GetNationalDashboard, req, &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

// A backend down leaves its side empty and named in `missing`; both down fail the call.
TEST_F(GatewayServiceTest, NationalDashboardSaysWhatIsMissing) {
  AddOperator("ft", cepv1::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  OpenCase(kFt, "NIR-DASH-D");
  evaluation_->Shutdown();
  v1::GetNationalDashboardRequest req;
  req.set_from_month("2024-01");
  req.set_to_month("2024-12");
  v1::NationalDashboard d = MustCall(national_.get(), kNational, &National::GetNationalDashboard, req);
  EXPECT_EQ(d.national().entries(), 1);
  EXPECT_EQ(d.certifications_size(), 0);
  ASSERT_EQ(d.missing_size(), 1) << d.DebugString();
  EXPECT_EQ(d.missing(0).part(), v1::DashboardMissingPart::PART_VAE_RESULTS);
  EXPECT_EQ(d.missing(0).code(), google::rpc::UNAVAILABLE);

  cep_->Shutdown();
  v1::NationalDashboard none;
  grpc::Status down = Call(national_.get(), kNational, &National::GetNationalDashboard, req, &none);
  EXPECT_EQ(down.error_code(), grpc::StatusCode::UNAVAILABLE) << down.error_message();
  EXPECT_EQ(none.regions_size(), 0);
}

TEST_F(GatewayServiceTest, NationalDashboardWithCepSvcDownKeepsTheVaeResults) {
  ev::Candidacy c = NewCandidacy("cand-dash-cep-down");
  JuryPartialResult(c);
  cep_->Shutdown();
  v1::GetNationalDashboardRequest req;
  req.set_from_month("2024-01");
  req.set_to_month(absl::FormatTime("%Y-%m", absl::Now(), absl::UTCTimeZone()));
  v1::NationalDashboard d = MustCall(national_.get(), kNational, &National::GetNationalDashboard, req);
  EXPECT_EQ(d.regions_size(), 0);
  EXPECT_FALSE(d.has_national());
  EXPECT_EQ(d.all_certifications().partial(), 1);
  ASSERT_EQ(d.missing_size(), 1) << d.DebugString();
  EXPECT_EQ(d.missing(0).part(), v1::DashboardMissingPart::PART_CEP_FIGURES);
  EXPECT_EQ(d.missing(0).code(), google::rpc::UNAVAILABLE);
}

// --- GetBeneficiaryJourney ------------------------------------------------------------------------

TEST_F(GatewayServiceTest, JourneyComposesTheCaseTheCandidacyAndTheReferential) {
  AddOperator("ft", cepv1::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", cepv1::OPERATOR_KIND_APEC, {"53"});
  cepv1::Case kase = OpenCase(kFt, "NIR-J");
  ev::Candidacy c = NewCandidacy("cand-journey", kase.name());
  JuryPartialResult(c);
  LinkVae(kFt, kase.name(), c.name());

  grpc::Status status;
  v1::BeneficiaryJourney journey = Journey(kFt, kase.name(), &status);
  ASSERT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  EXPECT_EQ(journey.case_().name(), kase.name());
  EXPECT_TRUE(journey.missing().empty()) << journey.DebugString();
  ASSERT_EQ(journey.vae_size(), 1);
  const v1::VaeJourney& vae = journey.vae(0);
  EXPECT_EQ(vae.candidacy(), c.name());
  EXPECT_EQ(vae.state(), ev::CANDIDACY_STATE_DELIBERATED);
  EXPECT_EQ(vae.referential_version(), kSeedVersion);
  EXPECT_EQ(vae.certification_title(), kSeedTitle);
  EXPECT_EQ(vae.jury_proposal(), ev::PROPOSAL_KIND_PARTIAL);
  EXPECT_GT(vae.jury_seal_time().seconds(), 0);
  ASSERT_EQ(vae.blocs_size(), 5);
  std::set<std::string> acquired;
  for (const auto& b : vae.blocs()) {
    EXPECT_FALSE(b.title().empty()) << b.code();
    EXPECT_TRUE(b.targeted());
    if (b.acquired()) acquired.insert(b.code());
  }
  EXPECT_EQ(vae.blocs(0).code(), "BC1");
  EXPECT_EQ(acquired, (std::set<std::string>{"BC1", "BC2", "BC4"}));
  // No identity reached the operator through the statistics view... and none was needed.
  EXPECT_EQ(journey.DebugString().find("cand-journey"), std::string::npos);

  // Another operator: NOT_FOUND from cep-svc, nothing composed.
  v1::BeneficiaryJourney foreign = Journey(kApec, kase.name(), &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);

  // France compétences sees the counts.
  ev::GetOutcomeStatisticsRequest stats_req;
  ev::OutcomeStatistics stats = MustCall(national_.get(), kNational, &National::GetOutcomeStatistics, stats_req);
  ASSERT_EQ(stats.certifications_size(), 1);
  EXPECT_EQ(stats.certifications(0).certification_code(), "CQP-TMSA");
  EXPECT_EQ(stats.certifications(0).decided(), 1);
  EXPECT_EQ(stats.certifications(0).partial(), 1);
  EXPECT_EQ(stats.certifications(0).blocs_size(), 5);
}

// The operator writes the case's VAE link, the certifier the candidacy's: a candidacy is shown only
// on the case it names back. Linking another case's candidacy (or one that names none) shows
// exactly what linking a candidacy that does not exist shows.
TEST_F(GatewayServiceTest, JourneyShowsOnlyACandidacyThatNamesTheCaseBack) {
  AddOperator("ft", cepv1::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", cepv1::OPERATOR_KIND_APEC, {"53"});
  cepv1::Case theirs = OpenCase(kApec, "NIR-THEIRS");
  ev::Candidacy referred = NewCandidacy("cand-theirs", theirs.name());
  JuryPartialResult(referred);
  ev::Candidacy unreferred = NewCandidacy("cand-unreferred");
  cepv1::Case mine = OpenCase(kFt, "NIR-MINE");
  LinkVae(kFt, mine.name(), referred.name());
  LinkVae(kFt, mine.name(), unreferred.name());
  const std::string unknown = "candidacies/00000000deadbeef";
  LinkVae(kFt, mine.name(), unknown);

  grpc::Status status;
  v1::BeneficiaryJourney journey = Journey(kFt, mine.name(), &status);
  ASSERT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  ASSERT_EQ(journey.vae_size(), 3);
  std::map<std::string, std::set<std::tuple<int, int, std::string>>> missing;  // resource -> parts
  for (const auto& m : journey.missing()) {
    missing[m.resource()].insert({m.part(), m.code(), absl::StrReplaceAll(m.reason(), {{m.resource(), "X"}})});
  }
  ASSERT_EQ(missing.count(unknown), 1u) << journey.DebugString();
  for (const ev::Candidacy& c : {referred, unreferred}) {
    EXPECT_EQ(missing[c.name()], missing[unknown]) << c.name() << journey.DebugString();
  }
  for (const v1::VaeJourney& vae : journey.vae()) {
    EXPECT_EQ(vae.state(), ev::CANDIDACY_STATE_UNSPECIFIED) << vae.DebugString();
    EXPECT_EQ(vae.jury_proposal(), ev::PROPOSAL_KIND_UNSPECIFIED) << vae.DebugString();
    EXPECT_EQ(vae.blocs_size(), 0) << vae.DebugString();
    EXPECT_TRUE(vae.referential_version().empty()) << vae.DebugString();
  }
  EXPECT_EQ(*missing[unknown].begin(),
            std::make_tuple(static_cast<int>(v1::MissingPart::PART_CANDIDACY), static_cast<int>(google::rpc::NOT_FOUND),
                            std::get<2>(*missing[unknown].begin())));

  // On the case it names, the holder sees it.
  LinkVae(kApec, theirs.name(), referred.name());
  v1::BeneficiaryJourney own = Journey(kApec, theirs.name(), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(own.missing().empty()) << own.DebugString();
  ASSERT_EQ(own.vae_size(), 1);
  EXPECT_EQ(own.vae(0).state(), ev::CANDIDACY_STATE_DELIBERATED);
}

// A file that moved by transfer (twice here) keeps its VAE progress: the candidacy names the
// case as it was at the first holder, and the last holder's journey shows it.
TEST_F(GatewayServiceTest, JourneyFollowsTheFileAcrossTransfers) {
  AddOperator("ft", cepv1::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", cepv1::OPERATOR_KIND_APEC, {"53"});
  AddOperator("ml-rennes", cepv1::OPERATOR_KIND_MISSION_LOCALE, {"53"});
  cepv1::Case at_ft = OpenCase(kFt, "NIR-MOVES");
  ev::Candidacy candidacy = NewCandidacy("cand-moves", at_ft.name());
  JuryPartialResult(candidacy);
  LinkVae(kFt, at_ft.name(), candidacy.name());
  auto transfer = [&](const std::string& from, const std::string& case_name, const std::string& to,
                      const std::string& receiver) {
    cepv1::RequestTransferRequest request;
    request.mutable_transfer()->set_case_(case_name);
    request.mutable_transfer()->set_to_operator(to);
    request.mutable_transfer()->set_beneficiary_consent(true);
    const cepv1::Transfer sent = MustCall(operator_.get(), from, &Operator::RequestTransfer, request);
    cepv1::AcceptTransferRequest accept;
    accept.set_name(sent.name());
    return MustCall(operator_.get(), receiver, &Operator::AcceptTransfer, accept).new_case();
  };
  auto expect_progress = [&](const std::string& holder, const std::string& case_name) {
    SCOPED_TRACE(holder);
    grpc::Status status;
    v1::BeneficiaryJourney journey = Journey(holder, case_name, &status);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(journey.missing().empty()) << journey.DebugString();
    ASSERT_EQ(journey.vae_size(), 1);
    EXPECT_EQ(journey.vae(0).candidacy(), candidacy.name());
    EXPECT_EQ(journey.vae(0).state(), ev::CANDIDACY_STATE_DELIBERATED);
  };
  const std::string at_apec = transfer(kFt, at_ft.name(), "operators/apec", kApec);
  expect_progress(kApec, at_apec);
  const std::string at_ml = transfer(kApec, at_apec, "operators/ml-rennes", "operator:ml-rennes");
  expect_progress("operator:ml-rennes", at_ml);
  cepv1::GetCaseRequest get;
  get.set_name(at_ml);
  const cepv1::Case last = MustCall(operator_.get(), "operator:ml-rennes", &Operator::GetCase, get);
  EXPECT_EQ(std::vector<std::string>(last.received().former_cases().begin(), last.received().former_cases().end()),
            (std::vector<std::string>{at_ft.name(), at_apec}));
}

TEST_F(GatewayServiceTest, JourneyWithEvaluationDownSaysWhatIsMissing) {
  AddOperator("ft", cepv1::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  cepv1::Case kase = OpenCase(kFt, "NIR-D");
  ev::Candidacy c = NewCandidacy("cand-down", kase.name());
  LinkVae(kFt, kase.name(), c.name());
  evaluation_->Shutdown();

  grpc::Status status;
  v1::BeneficiaryJourney journey = Journey(kFt, kase.name(), &status);
  ASSERT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  EXPECT_EQ(journey.case_().name(), kase.name());
  ASSERT_EQ(journey.vae_size(), 1);
  EXPECT_EQ(journey.vae(0).candidacy(), c.name());
  EXPECT_EQ(journey.vae(0).state(), ev::CANDIDACY_STATE_UNSPECIFIED);
  std::set<std::pair<int, int>> missing;
  for (const auto& m : journey.missing()) {
    missing.insert({m.part(), m.code()});
    EXPECT_FALSE(m.resource().empty());
  }
  EXPECT_EQ(missing, (std::set<std::pair<int, int>>{{v1::MissingPart::PART_CANDIDACY, google::rpc::UNAVAILABLE},
                                                    {v1::MissingPart::PART_JURY_RESULT, google::rpc::UNAVAILABLE}}))
      << journey.DebugString();
}

TEST_F(GatewayServiceTest, JourneyWithReferentialDownKeepsTheCandidacy) {
  AddOperator("ft", cepv1::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  cepv1::Case kase = OpenCase(kFt, "NIR-R");
  ev::Candidacy c = NewCandidacy("cand-ref-down", kase.name());
  LinkVae(kFt, kase.name(), c.name());
  LinkVae(kFt, kase.name(), "candidacies/00000000deadbeef");  // a dangling link
  referential_->Shutdown();

  grpc::Status status;
  v1::BeneficiaryJourney journey = Journey(kFt, kase.name(), &status);
  ASSERT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  ASSERT_EQ(journey.vae_size(), 2);
  const v1::VaeJourney& vae = journey.vae(0);
  EXPECT_EQ(vae.state(), ev::CANDIDACY_STATE_INFORMATION);
  EXPECT_EQ(vae.certification_title(), kSeedTitle);  // recorded on the candidacy
  ASSERT_EQ(vae.blocs_size(), 5);
  EXPECT_TRUE(vae.blocs(0).title().empty());
  EXPECT_EQ(vae.jury_proposal(), ev::PROPOSAL_KIND_UNSPECIFIED);
  std::map<int, std::pair<std::string, int>> missing;
  for (const auto& m : journey.missing()) missing[m.part()] = {m.resource(), m.code()};
  ASSERT_EQ(journey.missing_size(), 2) << journey.DebugString();
  EXPECT_EQ(missing[v1::MissingPart::PART_REFERENTIAL],
            std::make_pair(std::string(kSeedVersion), static_cast<int>(google::rpc::UNAVAILABLE)));
  EXPECT_EQ(missing[v1::MissingPart::PART_CANDIDACY],
            std::make_pair(std::string("candidacies/00000000deadbeef"), static_cast<int>(google::rpc::NOT_FOUND)));
}

TEST_F(GatewayServiceTest, ReadsComeBackAsTheBackendEncodedThem) {
  // GetVersion and GetCertification are forwarded without decoding the reply: the bytes the
  // caller gets are the backend's own.
  auto direct = ref::ReferentialService::NewStub(
      grpc::CreateChannel(Address(*referential_), grpc::InsecureChannelCredentials()));
  ref::GetVersionRequest get;
  get.set_name(kSeedVersion);
  grpc::ClientContext ctx;
  ctx.AddMetadata(kPrincipalMetadata, kFt);
  ref::Version from_backend;
  ASSERT_TRUE(direct->GetVersion(&ctx, get, &from_backend).ok());
  const ref::Version through = MustCall(operator_.get(), kFt, &Operator::GetVersion, get);
  EXPECT_EQ(through.SerializeAsString(), from_backend.SerializeAsString());
  EXPECT_GT(through.blocs_size(), 0);
  ref::GetCertificationRequest cert;
  cert.set_name("certifications/CQP-TMSA");
  EXPECT_EQ(MustCall(certifier_.get(), kCertifierPrincipal, &Certifier::GetCertification, cert).title(), kSeedTitle);
  ref::GetVersionRequest absent;
  absent.set_name("certifications/CQP-TMSA/versions/99");
  ref::Version out;
  EXPECT_EQ(Call(national_.get(), kNational, &National::GetVersion, absent, &out).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(GatewayServiceTest, JourneyKeepsPublishedLabelsOnceRead) {
  AddOperator("ft", cepv1::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  cepv1::Case kase = OpenCase(kFt, "NIR-C");
  ev::Candidacy c = NewCandidacy("cand-cache", kase.name());
  LinkVae(kFt, kase.name(), c.name());
  grpc::Status status;
  v1::BeneficiaryJourney first = Journey(kFt, kase.name(), &status);
  ASSERT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  ASSERT_TRUE(first.missing().empty()) << first.DebugString();

  // The published version's labels (and the certification title) are kept by the gateway: the
  // next journey does not need referential-svc.
  referential_->Shutdown();
  v1::BeneficiaryJourney second = Journey(kFt, kase.name(), &status);
  ASSERT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  EXPECT_TRUE(second.missing().empty()) << second.DebugString();
  ASSERT_EQ(second.vae_size(), 1);
  EXPECT_EQ(second.vae(0).certification_title(), kSeedTitle);
  ASSERT_EQ(second.vae(0).blocs_size(), 5);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(second.vae(0).blocs(i).code(), first.vae(0).blocs(i).code());
    EXPECT_EQ(second.vae(0).blocs(i).title(), first.vae(0).blocs(i).title());
    EXPECT_FALSE(second.vae(0).blocs(i).title().empty());
  }
  // Only the journey caches: a direct read still goes to referential-svc.
  ref::GetVersionRequest get;
  get.set_name(kSeedVersion);
  ref::Version out;
  EXPECT_EQ(Call(operator_.get(), kFt, &Operator::GetVersion, get, &out).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(GatewayServiceTest, JourneyFailsWithCepSvcStatus) {
  cep_->Shutdown();
  grpc::Status status;
  Journey(kFt, "cases/0123456789abcdef", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

}  // namespace
}  // namespace parcours::gateway
