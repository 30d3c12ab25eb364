// End to end, multi-process: the four real binaries (tests/e2e/harness.h) on MariaDB with mTLS
// between them, driven only through the gateway's public TLS port with real ES256 bearer tokens
// (except where a test talks to a backend directly to check that it refuses to).
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/rpc/code.pb.h"
#include "gateway/testing/gateway_scenario.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "parcours/cep/v1/cep.grpc.pb.h"
#include "parcours/gateway/v1/certifier.grpc.pb.h"
#include "parcours/gateway/v1/national.grpc.pb.h"
#include "parcours/gateway/v1/operator.grpc.pb.h"
#include "parcours/gateway/v1/region.grpc.pb.h"
#include "tests/e2e/harness.h"

namespace parcours::e2e {
namespace {

namespace cepv1 = ::parcours::cep::v1;
namespace ev = ::parcours::evaluation::v1;
namespace ref = ::parcours::referential::v1;
namespace gw = ::parcours::gateway::v1;
using National = gw::NationalService::Stub;
using Region = gw::RegionService::Stub;
using Operator = gw::OperatorService::Stub;
using Certifier = gw::CertifierService::Stub;
using testing::ServingStatus;

const char kNational[] = "national";
const char kOpA[] = "operator:ft";
const char kOpB[] = "operator:apec";
const char kCertifier[] = "certifier:CPNE-IA";

std::string Describe(const grpc::Status& s) { return absl::StrCat(s.error_code(), ": ", s.error_message()); }

class E2eTest : public ::testing::Test, public gateway::testing::GatewayScenario {
 protected:
  void SetUp() override {
    auto cluster = Cluster::Start();
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    ConnectGateway(cluster_->GatewayChannel(), [this](grpc::ClientContext& ctx, const std::string& principal) {
      if (!principal.empty()) ctx.AddMetadata("authorization", "Bearer " + TokenFor(principal));
    });
  }

  // Calls as `principal` with a real token ("" = no credentials); `raw_token` overrides it.
  template <typename Stub, typename Req, typename Resp>
  grpc::Status Call(Stub* stub, const std::string& principal,
                    grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*), const Req& request,
                    Resp* response, const std::string& raw_token = "") {
    grpc::ClientContext ctx;
    if (raw_token.empty()) {
      authenticate_(ctx, principal);
    } else {
      ctx.AddMetadata("authorization", "Bearer " + raw_token);
    }
    ctx.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
    return (stub->*method)(&ctx, request, response);
  }

  const std::string& TokenFor(const std::string& principal) {
    std::lock_guard<std::mutex> lock(tokens_mu_);
    auto it = tokens_.find(principal);
    if (it == tokens_.end()) it = tokens_.emplace(principal, cluster_->Token(principal)).first;
    return it->second;
  }

  std::unique_ptr<Cluster> cluster_;
  std::mutex tokens_mu_;
  std::map<std::string, std::string> tokens_;
};

void ExpectCompleteJourney(const gw::BeneficiaryJourney& journey, const std::string& case_name,
                           const std::string& candidacy) {
  EXPECT_EQ(journey.case_().name(), case_name);
  EXPECT_TRUE(journey.missing().empty()) << journey.DebugString();
  ASSERT_EQ(journey.vae_size(), 1) << journey.DebugString();
  const gw::VaeJourney& vae = journey.vae(0);
  EXPECT_EQ(vae.candidacy(), candidacy);
  EXPECT_EQ(vae.state(), ev::CANDIDACY_STATE_DELIBERATED);
  EXPECT_EQ(vae.referential_version(), kSeedVersion);
  EXPECT_EQ(vae.certification_title(), kSeedTitle);
  EXPECT_EQ(vae.jury_proposal(), ev::PROPOSAL_KIND_PARTIAL);
  EXPECT_GT(vae.jury_seal_time().seconds(), 0);
  ASSERT_EQ(vae.blocs_size(), 5);
  std::set<std::string> acquired;
  for (const auto& b : vae.blocs()) {
    EXPECT_FALSE(b.title().empty()) << b.code();
    EXPECT_TRUE(b.targeted()) << b.code();
    if (b.acquired()) acquired.insert(b.code());
  }
  EXPECT_EQ(vae.blocs(0).code(), "BC1");
  EXPECT_EQ(acquired, (std::set<std::string>{"BC1", "BC2", "BC4"}));
}

// --- a. The seed journey, through the gateway only --------------------------------------------

TEST_F(E2eTest, SeedJourneyThroughTheGateway) {
  // National: the operator directory (the seed CQP was loaded with `referential-svc load`).
  AddOperator("ft", cepv1::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  ref::GetCertificationRequest cert;
  cert.set_name("certifications/CQP-TMSA");
  EXPECT_EQ(MustCall(operator_.get(), kOpA, &Operator::GetCertification, cert).title(), kSeedTitle);

  // The operator: beneficiary, case, services.
  cepv1::Case kase = OpenCase(kOpA, "NIR-SEED");
  EXPECT_EQ(kase.operator_(), "operators/ft");
  RecordService(kOpA, kase.name(), cepv1::SERVICE_KIND_INFORMATION, 4);
  RecordService(kOpA, kase.name(), cepv1::SERVICE_KIND_INFORMATION, 11);

  // The certifier and the jury members, each with its own token.
  ev::Candidacy c = NewCandidacy("cand-seed", kase.name());  // referred by the case
  ev::Deliberation d = JuryPartialResult(c);
  EXPECT_EQ(d.state(), ev::DELIBERATION_STATE_SEALED) << d.DebugString();
  EXPECT_EQ(d.proposal(), ev::PROPOSAL_KIND_PARTIAL);
  ev::ListAcquiredBlocsRequest ledger_req;
  ledger_req.set_parent("candidates/cand-seed");
  ev::ListAcquiredBlocsResponse ledger =
      MustCall(certifier_.get(), kCertifier, &Certifier::ListAcquiredBlocs, ledger_req);
  std::set<std::string> ledger_blocs;
  for (const auto& b : ledger.blocs()) ledger_blocs.insert(b.bloc_code());
  EXPECT_EQ(ledger_blocs, (std::set<std::string>{"BC1", "BC2", "BC4"})) << ledger.DebugString();

  // The operator links the candidacy; the journey composes the three backends.
  LinkVae(kOpA, kase.name(), c.name());
  cepv1::GetCaseRequest get;
  get.set_name(kase.name());
  cepv1::Case now = MustCall(operator_.get(), kOpA, &Operator::GetCase, get);
  EXPECT_EQ(now.services_size(), 2);
  grpc::Status status;
  gw::BeneficiaryJourney journey = Journey(kOpA, kase.name(), &status);
  ASSERT_TRUE(status.ok()) << Describe(status);
  ExpectCompleteJourney(journey, kase.name(), c.name());
  EXPECT_EQ(journey.case_().services_size(), 2);
  EXPECT_EQ(journey.DebugString().find("cand-seed"), std::string::npos);  // statistics view only

  // France compétences: the dashboard puts the case beside the sealed result.
  gw::GetNationalDashboardRequest dash;
  dash.set_from_month("2024-01");
  dash.set_to_month(absl::FormatTime("%Y-%m", absl::Now(), absl::UTCTimeZone()));
  gw::NationalDashboard board = MustCall(national_.get(), "national", &National::GetNationalDashboard, dash);
  EXPECT_TRUE(board.missing().empty()) << board.DebugString();
  EXPECT_EQ(board.national().entries(), 1);
  EXPECT_EQ(board.national().skills_recognition_entries(), 1);
  EXPECT_EQ(board.national().vae_outcomes(), 1);
  EXPECT_EQ(board.all_certifications().partial(), 1);
}

// --- b. Cross-tenant and bad tokens -------------------------------------------------------------

TEST_F(E2eTest, CrossTenantAndBadTokensAreRefused) {
  AddOperator("ft", cepv1::OPERATOR_KIND_FRANCE_TRAVAIL, {"11", "76"});
  AddOperator("apec", cepv1::OPERATOR_KIND_APEC, {"11", "76"});
  cepv1::Case kase = OpenCase(kOpA, "NIR-A", "75");

  // Operator B on A's case: NOT_FOUND exactly as a missing case.
  cepv1::GetCaseRequest get;
  get.set_name(kase.name());
  cepv1::GetCaseRequest missing;
  missing.set_name("cases/0000000000000000");
  cepv1::Case out;
  grpc::Status foreign = Call(operator_.get(), kOpB, &Operator::GetCase, get, &out);
  grpc::Status absent = Call(operator_.get(), kOpB, &Operator::GetCase, missing, &out);
  EXPECT_EQ(foreign.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(foreign);
  EXPECT_EQ(absent.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(absent);
  EXPECT_EQ(absl::StrReplaceAll(foreign.error_message(), {{kase.name(), "<name>"}}),
            absl::StrReplaceAll(absent.error_message(), {{missing.name(), "<name>"}}));
  EXPECT_EQ(foreign.error_details().empty(), absent.error_details().empty());
  grpc::Status journey_status;
  Journey(kOpB, kase.name(), &journey_status);
  EXPECT_EQ(journey_status.error_code(), grpc::StatusCode::NOT_FOUND);
  cepv1::ListCasesRequest list;
  EXPECT_EQ(MustCall(operator_.get(), kOpB, &Operator::ListCases, list).cases_size(), 0);

  // Region 11 sees no region-76 cell (6 cases each side, so nothing is suppressed).
  for (int i = 0; i < 6; ++i) {
    OpenCase(kOpA, absl::StrCat("NIR-11-", i), "75");
    OpenCase(kOpB, absl::StrCat("NIR-76-", i), "31");
  }
  gw::QueryIndicatorsRequest query;
  query.set_measure(cepv1::MEASURE_ENTRIES);
  query.set_from_month("2024-01");
  query.set_to_month("2024-12");
  query.add_group_by(cepv1::DIMENSION_REGION);
  query.set_total_over_period(true);
  cepv1::QueryIndicatorsResponse cells = MustCall(region_.get(), "region:11", &Region::QueryIndicators, query);
  EXPECT_GT(cells.cells_size(), 0);
  for (const auto& cell : cells.cells()) {
    ASSERT_EQ(cell.keys_size(), 1) << cells.DebugString();
    EXPECT_EQ(cell.keys(0), "11") << cells.DebugString();
  }
  EXPECT_EQ(cells.DebugString().find("\"76\""), std::string::npos) << cells.DebugString();
  query.set_filter("region = \"76\"");
  EXPECT_EQ(Call(region_.get(), "region:11", &Region::QueryIndicators, query, &cells).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // A jury member on a session it does not sit on: NOT_FOUND, as a session that does not exist.
  ev::JurySession s = NewSession();
  ev::GetJurySessionRequest get_session;
  get_session.set_name(s.name());
  EXPECT_EQ(MustCall(certifier_.get(), "jury-member:J1", &Certifier::GetJurySession, get_session).name(), s.name());
  ev::JurySession session;
  grpc::Status other = Call(certifier_.get(), "jury-member:J9", &Certifier::GetJurySession, get_session, &session);
  ev::GetJurySessionRequest no_session;
  no_session.set_name("sessions/00000000deadbeef");
  grpc::Status nowhere = Call(certifier_.get(), "jury-member:J9", &Certifier::GetJurySession, no_session, &session);
  EXPECT_EQ(other.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(other);
  EXPECT_EQ(nowhere.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(nowhere);
  EXPECT_EQ(absl::StrReplaceAll(other.error_message(), {{s.name(), "<name>"}}),
            absl::StrReplaceAll(nowhere.error_message(), {{no_session.name(), "<name>"}}));
  EXPECT_EQ(other.error_message().find("J1"), std::string::npos);

  // A certifier the seed CQP's fiche does not list opens no candidacy on it.
  ev::CreateCandidacyRequest foreign_candidacy;
  foreign_candidacy.mutable_candidacy()->set_candidate_id("cand-foreign");
  foreign_candidacy.mutable_candidacy()->set_candidate_display_name("Paul Girard");
  foreign_candidacy.mutable_candidacy()->set_referential_version(kSeedVersion);
  ev::Candidacy not_created;
  grpc::Status not_its_own =
      Call(certifier_.get(), "certifier:OTHER", &Certifier::CreateCandidacy, foreign_candidacy, &not_created);
  EXPECT_EQ(not_its_own.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(not_its_own);

  // An operator on a NationalService method.
  cepv1::CreateOperatorRequest create;
  create.set_operator_id("rogue");
  cepv1::Operator created;
  EXPECT_EQ(Call(national_.get(), kOpA, &National::CreateOperator, create, &created).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  // Tokens: none, alg none, unknown kid, wrong audience, expired, tampered.
  const std::string key = cluster_->jwt_key_pem();
  const std::string header = absl::StrCat(R"({"alg":"ES256","typ":"JWT","kid":")", kKid, R"("})");
  const std::string good = cluster_->Token(kOpA);
  std::map<std::string, std::string> bad;
  bad["alg none"] = absl::StrCat(Base64Url(absl::StrCat(R"({"alg":"none","typ":"JWT","kid":")", kKid, R"("})")),
                                 ".", Base64Url(Claims(kOpA)), ".");
  bad["unknown kid"] =
      MakeJwt(R"({"alg":"ES256","typ":"JWT","kid":"someone-else"})", Claims(kOpA), testing::NewEcP256KeyPem());
  bad["right kid, another key"] = MakeJwt(header, Claims(kOpA), testing::NewEcP256KeyPem());
  bad["wrong audience"] = MakeJwt(header, Claims(kOpA, absl::Hours(1), "another-api"), key);
  bad["wrong issuer"] = MakeJwt(header, Claims(kOpA, absl::Hours(1), kAudience, "https://evil.example"), key);
  bad["expired"] = MakeJwt(header, Claims(kOpA, absl::Minutes(-10)), key);
  {
    // Claims swapped for national's, signature kept.
    const size_t dot1 = good.find('.'), dot2 = good.rfind('.');
    bad["tampered"] = absl::StrCat(good.substr(0, dot1), ".", Base64Url(Claims(kNational)), good.substr(dot2));
    std::string flipped = good;
    flipped[dot2 + 5] = flipped[dot2 + 5] == 'A' ? 'B' : 'A';
    bad["bad signature"] = flipped;
  }
  bad["garbage"] = "not-a-jwt";
  cepv1::ListCasesResponse cases;
  EXPECT_TRUE(Call(operator_.get(), kOpA, &Operator::ListCases, list, &cases, good).ok());
  grpc::Status none = Call(operator_.get(), "", &Operator::ListCases, list, &cases);
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(none);
  for (const auto& [what, token] : bad) {
    grpc::Status s = Call(operator_.get(), kOpA, &Operator::ListCases, list, &cases, token);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << what << ": " << Describe(s);
    EXPECT_EQ(s.error_message().find(token), std::string::npos) << what;
    cepv1::Operator op_out;
    grpc::Status n = Call(national_.get(), kNational, &National::CreateOperator, create, &op_out, token);
    EXPECT_EQ(n.error_code(), grpc::StatusCode::UNAUTHENTICATED) << what << ": " << Describe(n);
  }
}

// --- c. A backend killed mid-test ---------------------------------------------------------------

TEST_F(E2eTest, EvaluationKilledThenRestarted) {
  AddOperator("ft", cepv1::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  cepv1::Case kase = OpenCase(kOpA, "NIR-K");
  ev::Candidacy c = NewCandidacy("cand-kill", kase.name());
  JuryPartialResult(c);
  LinkVae(kOpA, kase.name(), c.name());
  grpc::Status status;
  ExpectCompleteJourney(Journey(kOpA, kase.name(), &status), kase.name(), c.name());
  ASSERT_TRUE(status.ok()) << Describe(status);

  ASSERT_TRUE(cluster_->Kill(Svc::kEvaluation).ok());
  gw::BeneficiaryJourney partial = Journey(kOpA, kase.name(), &status);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(partial.case_().name(), kase.name());
  ASSERT_EQ(partial.vae_size(), 1);
  EXPECT_EQ(partial.vae(0).candidacy(), c.name());
  EXPECT_EQ(partial.vae(0).state(), ev::CANDIDACY_STATE_UNSPECIFIED);
  std::set<std::pair<int, int>> missing;
  for (const auto& m : partial.missing()) {
    missing.insert({m.part(), m.code()});
    EXPECT_FALSE(m.resource().empty());
  }
  EXPECT_EQ(missing, (std::set<std::pair<int, int>>{{gw::MissingPart::PART_CANDIDACY, google::rpc::UNAVAILABLE},
                                                    {gw::MissingPart::PART_JURY_RESULT, google::rpc::UNAVAILABLE}}))
      << partial.DebugString();
  ev::GetCandidacyRequest get;
  get.set_name(c.name());
  ev::Candidacy out;
  grpc::Status down = Call(certifier_.get(), kCertifier, &Certifier::GetCandidacy, get, &out);
  EXPECT_EQ(down.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(down);

  ASSERT_TRUE(cluster_->Restart(Svc::kEvaluation).ok()) << cluster_->LogTail(Svc::kEvaluation);
  // The gateway's channel reconnects on its own (connection backoff): complete again soon.
  gw::BeneficiaryJourney again;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  do {
    again = Journey(kOpA, kase.name(), &status);
    if (status.ok() && again.missing().empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  } while (std::chrono::steady_clock::now() < deadline);
  ASSERT_TRUE(status.ok()) << Describe(status);
  ExpectCompleteJourney(again, kase.name(), c.name());
  EXPECT_TRUE(Call(certifier_.get(), kCertifier, &Certifier::GetCandidacy, get, &out).ok());
}

// --- d. Cluster-like: probes, mTLS identities, SIGTERM under load -----------------------------

TEST_F(E2eTest, ProbesPlaintextApiMtlsOnlyForAllowedIdentities) {
  for (Svc svc : kAllSvcs) {
    ServingStatus st = ServingStatus::kUnknown;
    grpc::Status s = cluster_->Health(svc, &st);
    EXPECT_TRUE(s.ok() && st == ServingStatus::kServing) << SvcName(svc) << " " << Describe(s);
  }
  const CertFiles intruder = cluster_->IssueClientCert("intruder", "spiffe://parcours.fr/service/intruder");
  for (Svc svc : kBackends) {
    SCOPED_TRACE(SvcName(svc));
    ServingStatus st = ServingStatus::kUnknown;
    // The gateway's identity: accepted.
    grpc::Status as_gateway = testing::CheckHealth(
        cluster_->BackendChannel(svc, cluster_->service_cert(Svc::kGateway)), "", &st, std::chrono::seconds(5));
    EXPECT_TRUE(as_gateway.ok() && st == ServingStatus::kServing) << Describe(as_gateway);
    // Same CA, another identity: UNAUTHENTICATED.
    grpc::Status as_intruder =
        testing::CheckHealth(cluster_->BackendChannel(svc, intruder), "", &st, std::chrono::seconds(5));
    EXPECT_EQ(as_intruder.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(as_intruder);
    // evaluation-svc's identity: referential-svc only.
    grpc::Status as_evaluation = testing::CheckHealth(
        cluster_->BackendChannel(svc, cluster_->service_cert(Svc::kEvaluation)), "", &st, std::chrono::seconds(5));
    if (svc == Svc::kReferential) {
      EXPECT_TRUE(as_evaluation.ok()) << Describe(as_evaluation);
    } else {
      EXPECT_EQ(as_evaluation.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(as_evaluation);
    }
    // No client certificate: the handshake fails.
    grpc::Status no_cert =
        testing::CheckHealth(cluster_->BackendChannel(svc, CertFiles{}), "", &st, std::chrono::seconds(5));
    EXPECT_FALSE(no_cert.ok());
    // Plaintext on the API port: refused.
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    grpc::Status plaintext = testing::CheckHealth(
        grpc::CreateCustomChannel(cluster_->ApiAddress(svc), grpc::InsecureChannelCredentials(), args), "", &st,
        std::chrono::seconds(5));
    EXPECT_FALSE(plaintext.ok());
    // And a principal header sent directly is never a way around the gateway.
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-parcours-principal", "national");
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    std::string response;
    grpc::Status direct = testing::RawUnaryCall(cluster_->BackendChannel(svc, intruder).get(),
                                                "/grpc.health.v1.Health/Check", "", &response, &ctx);
    EXPECT_EQ(direct.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  // The gateway's public port: TLS, health for anyone.
  ServingStatus st = ServingStatus::kUnknown;
  EXPECT_TRUE(testing::CheckHealth(channel_, "", &st).ok());
}

TEST_F(E2eTest, CepSigtermUnderLoadOnlyUnavailableAfterNotServing) {
  AddOperator("ft", cepv1::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  cepv1::Case kase = OpenCase(kOpA, "NIR-LOAD");
  const std::string token = TokenFor(kOpA);

  using Clock = std::chrono::steady_clock;
  std::atomic<bool> stop{false};
  std::mutex mu;
  Clock::time_point first_not_serving = Clock::time_point::max();  // health != SERVING first seen
  bool saw_not_serving_status = false;                             // an explicit NOT_SERVING answer
  struct Failure {
    grpc::StatusCode code;
    std::string message;
    Clock::time_point at;
  };
  std::vector<Failure> failures;
  std::atomic<int> ok_calls{0}, ok_after_not_serving{0};

  std::thread health([&] {
    auto channel = cluster_->AdminChannel(Svc::kCep);
    while (!stop.load()) {
      ServingStatus st = ServingStatus::kUnknown;
      grpc::Status s = testing::CheckHealth(channel, "", &st, std::chrono::milliseconds(500));
      if (!s.ok() || st != ServingStatus::kServing) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_not_serving == Clock::time_point::max()) first_not_serving = Clock::now();
        if (s.ok() && st == ServingStatus::kNotServing) saw_not_serving_status = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      auto stub = gw::OperatorService::NewStub(channel_);
      for (int i = 0; !stop.load(); ++i) {
        grpc::ClientContext ctx;
        ctx.AddMetadata("authorization", "Bearer " + token);
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        grpc::Status s;
        if ((t + i) % 2 == 0) {
          cepv1::GetCaseRequest req;
          req.set_name(kase.name());
          cepv1::Case out;
          s = stub->GetCase(&ctx, req, &out);
        } else {
          cepv1::ListCasesRequest req;
          cepv1::ListCasesResponse out;
          s = stub->ListCases(&ctx, req, &out);
        }
        const auto at = Clock::now();
        std::lock_guard<std::mutex> lock(mu);
        if (s.ok()) {
          ++ok_calls;
          if (at > first_not_serving) ++ok_after_not_serving;
        } else {
          failures.push_back({s.error_code(), s.error_message(), at});
        }
      }
    });
  }
  // Load before the signal.
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  const int ok_before = ok_calls.load();
  ASSERT_TRUE(cluster_->Terminate(Svc::kCep).ok());
  int exit_code = -1;
  absl::Status exited = cluster_->WaitExit(Svc::kCep, absl::Seconds(30), &exit_code);
  // A little more load against the stopped backend.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop = true;
  for (auto& c : clients) c.join();
  health.join();

  EXPECT_TRUE(exited.ok()) << exited;
  EXPECT_EQ(exit_code, 0) << cluster_->LogTail(Svc::kCep);
  EXPECT_GT(ok_before, 0);
  EXPECT_TRUE(saw_not_serving_status) << "the drain grace never showed NOT_SERVING";
  // Calls kept succeeding during the drain grace (NOT_SERVING but still serving).
  EXPECT_GT(ok_after_not_serving.load(), 0);
  // Zero failures other than UNAVAILABLE: a call that reaches cep-svc at the instant it calls
  // Shutdown is cancelled by gRPC before any handler runs; the gateway answers this read (an
  // idempotent call) UNAVAILABLE and retries it, never CANCELLED. (A write cancelled so is
  // UNKNOWN: its handler may have committed.)
  int unavailable = 0;
  for (const Failure& f : failures) {
    if (f.code == grpc::StatusCode::UNAVAILABLE) {
      ++unavailable;
    } else {
      ADD_FAILURE() << "failure other than UNAVAILABLE: " << f.code << ": " << f.message;
    }
    EXPECT_GT(f.at, first_not_serving) << "failure before the health went NOT_SERVING: " << f.message;
  }
  EXPECT_GT(unavailable, 0);  // once gone, calls fail UNAVAILABLE
  std::cout << "[ load ] ok=" << ok_calls.load() << " ok_after_not_serving=" << ok_after_not_serving.load()
            << " unavailable=" << unavailable << " failures=" << failures.size() << "\n";

  // Restarted on the same ports, the gateway finds it again.
  ASSERT_TRUE(cluster_->Restart(Svc::kCep).ok()) << cluster_->LogTail(Svc::kCep);
  cepv1::GetCaseRequest req;
  req.set_name(kase.name());
  cepv1::Case out;
  grpc::Status s;
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  do {
    s = Call(operator_.get(), kOpA, &Operator::GetCase, req, &out);
    if (s.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  } while (Clock::now() < deadline);
  EXPECT_TRUE(s.ok()) << Describe(s);
}

}  // namespace
}  // namespace parcours::e2e
