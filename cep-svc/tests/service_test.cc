// cep-svc over real gRPC, on SQLite and MariaDB: the case lifecycle, designations, pseudonymous
// beneficiaries, transfers, tenant isolation, input validation, idempotency, the audit trail, the
// data-sharing feed, compliance, erasure and retention. The service's clock is a FakeClock the
// tests move (it starts at the real time, so "today" checks behave as in production).
#include <algorithm>
#include <chrono>
#include <thread>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "parcours/cep/v1/cep.grpc.pb.h"
#include "absl/synchronization/notification.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "platform/clock.h"
#include "platform/config.h"
#include "platform/principal.h"
#include "platform/proto_time.h"
#include "platform/server.h"
#include "platform/testing/concurrently.h"
#include "platform/testing/mariadb.h"
#include "platform/testing/status_details.h"
#include "cep-svc/src/app.h"
#include "cep-svc/src/rules.h"
#include "cep-svc/src/service.h"
#include "platform/aip.h"
#include "platform/errors.h"

namespace parcours::cep {
namespace {

using ::parcours::testing::BadFields;
using ::parcours::testing::PreconditionTypes;
using Stub = pb::CepService::Stub;

const char kNational[] = "national";
const char kFt[] = "operator:ft";
const char kApec[] = "operator:apec";
const char kMl[] = "operator:ml-rennes";

google::type::Date D(int y, int m, int d) {
  google::type::Date date;
  date.set_year(y);
  date.set_month(m);
  date.set_day(d);
  return date;
}

// In-flight calls get 3 s to finish at shutdown (a following feed stream is cancelled then).
constexpr absl::Duration kDrainTimeout = absl::Seconds(3);

std::unique_ptr<ServerRunner> Serve(ServiceApp& app) {
  ServerOptions options;
  options.service_name = "cep-svc";
  options.metrics_listen = "";
  options.drain_timeout = kDrainTimeout;
  auto runner = std::make_unique<ServerRunner>(options);
  for (grpc::Service* s : app.services()) runner->AddService(s);
  EXPECT_TRUE(runner->Start().ok());
  return runner;
}

bool HasField(const grpc::Status& s, const std::string& field) {
  const std::vector<std::string> fields = BadFields(s);
  return std::find(fields.begin(), fields.end(), field) != fields.end();
}

std::string Fields(const grpc::Status& s) {
  std::string out;
  for (const std::string& f : BadFields(s)) absl::StrAppend(&out, out.empty() ? "" : ",", f);
  return out;
}

class CepServiceTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::string FreshDsn() {
    if (GetParam() == "mysql") {
      auto dsn = testing::FreshMysqlDatabase();
      EXPECT_TRUE(dsn.ok()) << dsn.status();
      return dsn.value_or("");
    }
    return testing::FreshSqliteDatabase();
  }

  void SetUp() override {
    dsn_ = FreshDsn();
    {
      auto db = db::Open(dsn_);
      ASSERT_TRUE(db.ok()) << db.status();
      ASSERT_TRUE(Migrate(**db).ok());
    }
    StartApp({});
  }

  // (Re)starts cep-svc on the test's database with `overrides` of the test configuration: small
  // feed batches so streams cross batch boundaries; a quick poll; a feed client that takes
  // nothing for 2 s is cut off; import transactions of 1,000 rows, so a few thousand rows cross
  // their boundaries too.
  void StartApp(const std::map<std::string, std::string>& overrides) {
    if (runner_) {
      runner_->Shutdown();
      runner_.reset();
    }
    std::map<std::string, std::string> config = {{"database.dsn", dsn_},
                                                 {"feed.batch_size", "3"},
                                                 {"feed.poll_interval", "50ms"},
                                                 {"feed.write_timeout", "2s"},
                                                 {"import.max_batch_rows", "1000"}};
    for (const auto& [k, v] : overrides) config[k] = v;
    auto app = App::Create(Config::FromMap(config), &clock_);
    ASSERT_TRUE(app.ok()) << app.status();
    app_ = *std::move(app);
    runner_ = Serve(*app_);
    stub_ = pb::CepService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", runner_->port()), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (runner_) runner_->Shutdown();
  }

  // Calls `method` as `principal` ("" = no principal at all).
  template <typename Req, typename Resp>
  grpc::Status Call(const std::string& principal, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                    const Req& request, Resp* response) {
    grpc::ClientContext ctx;
    if (!principal.empty()) ctx.AddMetadata(kPrincipalMetadata, principal);
    return (stub_.get()->*method)(&ctx, request, response);
  }

  template <typename Req, typename Resp>
  grpc::Status Status(const std::string& principal,
                      grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*), const Req& request) {
    Resp response;
    return Call(principal, method, request, &response);
  }

  template <typename Req, typename Resp>
  Resp MustCall(const std::string& principal, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                const Req& request) {
    Resp response;
    grpc::Status s = Call(principal, method, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message() << " " << Fields(s);
    return response;
  }

  pb::Operator AddOperator(const std::string& id, pb::OperatorKind kind, const std::vector<std::string>& regions) {
    pb::CreateOperatorRequest req;
    req.set_operator_id(id);
    req.mutable_operator_()->set_display_name(absl::StrCat("Opérateur ", id));
    req.mutable_operator_()->set_kind(kind);
    for (const std::string& r : regions) req.mutable_operator_()->add_regions(r);
    return MustCall(kNational, &Stub::CreateOperator, req);
  }

  grpc::Status Designate(const std::string& id, const std::string& region, google::type::Date start,
                         std::optional<google::type::Date> end, pb::Operator* out = nullptr,
                         const std::string& etag = "") {
    pb::DesignateOperatorRequest req;
    req.set_name(absl::StrCat("operators/", id));
    req.mutable_period()->set_region(region);
    *req.mutable_period()->mutable_start_date() = start;
    if (end) *req.mutable_period()->mutable_end_date() = *end;
    req.set_etag(etag);
    pb::Operator ignored;
    return Call(kNational, &Stub::DesignateOperator, req, out ? out : &ignored);
  }

  static pb::RegisterBeneficiaryRequest Registration(const std::string& external_id, const std::string& department = "35") {
    pb::RegisterBeneficiaryRequest req;
    req.set_external_id(external_id);
    pb::Beneficiary* b = req.mutable_beneficiary();
    b->set_birth_year(1988);
    b->set_sex(pb::SEX_FEMALE);
    b->set_department(department);
    b->set_status(pb::EMPLOYMENT_STATUS_EMPLOYEE);
    b->set_qualification_level(4);
    req.mutable_contact()->set_display_name("Élodie Martin");
    req.mutable_contact()->set_email("elodie.martin@example.fr");
    req.mutable_contact()->set_phone("+33 2 99 00 00 00");
    return req;
  }

  pb::Beneficiary Register(const std::string& op, const std::string& external_id, const std::string& department = "35") {
    return MustCall(op, &Stub::RegisterBeneficiary, Registration(external_id, department));
  }

  static pb::OpenCaseRequest Opening(const pb::Beneficiary& b, google::type::Date date,
                                     const std::string& level = "2019/2") {
    pb::OpenCaseRequest req;
    req.mutable_case_()->set_beneficiary(b.name());
    *req.mutable_case_()->mutable_opening_date() = date;
    req.mutable_case_()->set_level(level);
    req.mutable_case_()->add_demands(pb::DEMAND_KIND_PROJECT);
    return req;
  }

  pb::Case Open(const std::string& op, const pb::Beneficiary& b, google::type::Date date,
                const std::string& level = "2019/2") {
    return MustCall(op, &Stub::OpenCase, Opening(b, date, level));
  }

  grpc::Status TryOpen(const std::string& op, const pb::Beneficiary& b, google::type::Date date, pb::Case* out = nullptr) {
    pb::Case ignored;
    return Call(op, &Stub::OpenCase, Opening(b, date), out ? out : &ignored);
  }

  pb::Case Get(const std::string& op, const std::string& name) {
    pb::GetCaseRequest req;
    req.set_name(name);
    return MustCall(op, &Stub::GetCase, req);
  }

  grpc::Status Service(const std::string& op, const std::string& name, pb::ServiceKind kind, google::type::Date date,
                       pb::Case* out = nullptr) {
    pb::RecordServiceRequest req;
    req.set_name(name);
    req.mutable_service()->set_kind(kind);
    *req.mutable_service()->mutable_date() = date;
    pb::Case ignored;
    return Call(op, &Stub::RecordService, req, out ? out : &ignored);
  }

  grpc::Status Close(const std::string& op, const std::string& name, google::type::Date date, pb::Case* out = nullptr) {
    pb::CloseCaseRequest req;
    req.set_name(name);
    req.set_reason("projet formalisé");
    *req.mutable_closing_date() = date;
    pb::Case ignored;
    return Call(op, &Stub::CloseCase, req, out ? out : &ignored);
  }

  grpc::Status Satisfaction(const std::string& op, const std::string& name, pb::SatisfactionWhen when,
                            google::type::Date date, pb::Case* out = nullptr) {
    pb::RecordSatisfactionRequest req;
    req.set_name(name);
    req.mutable_satisfaction()->set_when(when);
    req.mutable_satisfaction()->set_score(4);
    *req.mutable_satisfaction()->mutable_date() = date;
    pb::Case ignored;
    return Call(op, &Stub::RecordSatisfaction, req, out ? out : &ignored);
  }

  grpc::Status Transfer(const std::string& op, const std::string& case_name, const std::string& to, bool consent,
                        pb::Transfer* out = nullptr) {
    pb::RequestTransferRequest req;
    req.mutable_transfer()->set_case_(case_name);
    req.mutable_transfer()->set_to_operator(to);
    req.mutable_transfer()->set_beneficiary_consent(consent);
    pb::Transfer ignored;
    return Call(op, &Stub::RequestTransfer, req, out ? out : &ignored);
  }

  grpc::Status Accept(const std::string& op, const std::string& transfer, pb::Transfer* out = nullptr) {
    pb::AcceptTransferRequest req;
    req.set_name(transfer);
    pb::Transfer ignored;
    return Call(op, &Stub::AcceptTransfer, req, out ? out : &ignored);
  }

  grpc::Status Reject(const std::string& op, const std::string& transfer, const std::string& reason,
                      pb::Transfer* out = nullptr) {
    pb::RejectTransferRequest req;
    req.set_name(transfer);
    req.set_reason(reason);
    pb::Transfer ignored;
    return Call(op, &Stub::RejectTransfer, req, out ? out : &ignored);
  }

  grpc::Status Cancel(const std::string& op, const std::string& transfer, const std::string& reason,
                      pb::Transfer* out = nullptr) {
    pb::CancelTransferRequest req;
    req.set_name(transfer);
    req.set_reason(reason);
    pb::Transfer ignored;
    return Call(op, &Stub::CancelTransfer, req, out ? out : &ignored);
  }

  // The caller's transfers in `state` (all when unspecified), straight from ListTransfers.
  int CountTransfers(const std::string& op, pb::TransferState state = pb::TRANSFER_STATE_UNSPECIFIED) {
    pb::ListTransfersRequest req;
    if (state != pb::TRANSFER_STATE_UNSPECIFIED) {
      req.set_filter(absl::StrCat("state = ", pb::TransferState_Name(state).substr(sizeof("TRANSFER_STATE_") - 1)));
    }
    return MustCall(op, &Stub::ListTransfers, req).transfers_size();
  }

  // Straight from the repository (no audit entry, unlike GetCase).
  int CountCases(const std::string& operator_id) {
    CaseQuery q;
    q.operator_id = operator_id;
    q.limit = 10000;
    auto cases = app_->repository().ListCases(q);
    EXPECT_TRUE(cases.ok()) << cases.status();
    return cases.ok() ? static_cast<int>(cases->size()) : -1;
  }

  std::vector<pb::ActivityEvent> Activity() {
    auto events = app_->repository().ReadActivity(0, 100000);
    EXPECT_TRUE(events.ok()) << events.status();
    return events.value_or(std::vector<pb::ActivityEvent>{});
  }

  std::vector<AuditEntry> AuditOf(const std::string& resource) {
    auto entries = app_->repository().ListAudit(resource);
    EXPECT_TRUE(entries.ok()) << entries.status();
    return entries.value_or(std::vector<AuditEntry>{});
  }

  int64_t StoredVersion(const std::string& case_name) {
    int64_t version = -1;
    EXPECT_TRUE(app_->repository()
                    .Transact([&](CepTx& tx) -> absl::Status {
                      auto c = tx.GetCase(case_name.substr(std::string("cases/").size()));
                      if (!c.ok()) return c.status();
                      version = c->version;
                      return absl::OkStatus();
                    })
                    .ok());
    return version;
  }

  // Sets the service's clock to 10:00 (Paris) on that day.
  void SetToday(int y, int m, int d) {
    absl::TimeZone paris;
    ASSERT_TRUE(absl::LoadTimeZone("Europe/Paris", &paris));
    const absl::Time target = absl::FromCivil(absl::CivilSecond(y, m, d, 10, 0, 0), paris);
    clock_.Advance(target - clock_.Now());
  }

  // The whole feed after `after` as `principal` (follow = false).
  std::vector<pb::ActivityEvent> Feed(const std::string& principal, const std::string& after = "",
                                      grpc::Status* status = nullptr) {
    grpc::ClientContext ctx;
    if (!principal.empty()) ctx.AddMetadata(kPrincipalMetadata, principal);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    pb::StreamActivityRequest req;
    req.set_after_cursor(after);
    auto reader = stub_->StreamActivity(&ctx, req);
    std::vector<pb::ActivityEvent> out;
    pb::ActivityEvent e;
    while (reader->Read(&e)) out.push_back(e);
    grpc::Status s = reader->Finish();
    if (status != nullptr) {
      *status = s;
    } else {
      EXPECT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
    }
    return out;
  }

  pb::RetentionReport Retention(google::type::Date as_of) {
    pb::RunRetentionRequest req;
    *req.mutable_as_of() = as_of;
    return MustCall(kNational, &Stub::RunRetention, req);
  }

  // Compliance per operator name, as `principal` (as_of unset when nullopt).
  std::map<std::string, pb::OperatorCompliance> Compliance(const std::string& principal,
                                                           std::optional<google::type::Date> as_of) {
    pb::GetComplianceReportRequest req;
    if (as_of) *req.mutable_as_of() = *as_of;
    std::map<std::string, pb::OperatorCompliance> out;
    const pb::ComplianceReport report = MustCall(principal, &Stub::GetComplianceReport, req);
    for (const pb::OperatorCompliance& oc : report.operators()) out[oc.operator_()] = oc;
    return out;
  }

  std::optional<pb::ContactDetails> ContactAt(const pb::Beneficiary& b, const std::string& operator_id) {
    std::optional<pb::ContactDetails> out;
    EXPECT_TRUE(app_->repository()
                    .Transact([&](CepTx& tx) -> absl::Status {
                      auto c = tx.GetContact(b.name().substr(std::string("beneficiaries/").size()), operator_id);
                      if (!c.ok()) return c.status();
                      out = *c;
                      return absl::OkStatus();
                    })
                    .ok());
    return out;
  }

  // Straight from the repository: no audit entry, no visibility rule.
  pb::Beneficiary StoredBeneficiary(const pb::Beneficiary& b) {
    pb::Beneficiary out;
    EXPECT_TRUE(app_->repository()
                    .Transact([&](CepTx& tx) -> absl::Status {
                      auto got = tx.GetBeneficiary(b.name().substr(std::string("beneficiaries/").size()));
                      if (!got.ok()) return got.status();
                      out = *got;
                      return absl::OkStatus();
                    })
                    .ok());
    return out;
  }

  FakeClock clock_{absl::Now()};
  std::string dsn_;
  std::unique_ptr<App> app_;
  std::unique_ptr<ServerRunner> runner_;
  std::unique_ptr<Stub> stub_;
};

// --- The lifecycle ------------------------------------------------------------------------------

// Without a mask an update changes what the request sets (AIP-134): demands alone keep the
// project (it was erased).
TEST_P(CepServiceTest, AnUpdateWithoutMaskChangesOnlyWhatItSets) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  pb::Case c = Open(kFt, Register(kFt, "NIR-2880735000009"), D(2024, 3, 4));
  pb::UpdateCaseRequest project;
  project.mutable_case_()->set_name(c.name());
  project.mutable_case_()->mutable_project()->set_goal("Devenir technicienne de maintenance");
  c = MustCall(kFt, &Stub::UpdateCase, project);
  ASSERT_EQ(c.project().goal(), "Devenir technicienne de maintenance");
  const int demands_before = c.demands_size();
  pb::UpdateCaseRequest demands_only;
  demands_only.mutable_case_()->set_name(c.name());
  demands_only.mutable_case_()->add_demands(pb::DEMAND_KIND_PROJECT);
  demands_only.mutable_case_()->add_demands(pb::DEMAND_KIND_TAKE_STOCK);
  pb::Case narrowed = MustCall(kFt, &Stub::UpdateCase, demands_only);
  EXPECT_EQ(narrowed.demands_size(), 2);
  EXPECT_NE(narrowed.demands_size(), demands_before);
  EXPECT_EQ(narrowed.project().goal(), "Devenir technicienne de maintenance");
}

TEST_P(CepServiceTest, CaseLifecycleOpenUpdateServicesOutcomeCloseSatisfactionReopen) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  const pb::Beneficiary b = Register(kFt, "NIR-2880735000001");
  EXPECT_EQ(b.region(), "53");  // filled from department 35

  pb::Case c = Open(kFt, b, D(2024, 3, 4));
  EXPECT_EQ(c.state(), pb::CASE_STATE_OPEN);
  EXPECT_EQ(c.operator_(), "operators/ft");
  EXPECT_EQ(c.beneficiary(), b.name());
  ASSERT_EQ(c.history_size(), 1);
  EXPECT_EQ(c.history(0).to(), pb::CASE_STATE_OPEN);
  EXPECT_EQ(c.history(0).actor(), kFt);
  EXPECT_TRUE(c.has_last_activity_time());
  EXPECT_FALSE(c.etag().empty());

  // Update demands and the project; a stale etag is refused.
  pb::UpdateCaseRequest update;
  update.mutable_case_()->set_name(c.name());
  update.mutable_case_()->set_etag(c.etag());
  update.mutable_case_()->add_demands(pb::DEMAND_KIND_PROJECT);
  update.mutable_case_()->add_demands(pb::DEMAND_KIND_SKILLS_RECOGNITION);
  update.mutable_case_()->mutable_project()->set_goal("Devenir technicienne de maintenance");
  pb::ActionStep* step = update.mutable_case_()->mutable_project()->add_steps();
  step->set_description("Déposer une demande de VAE");
  step->set_status(pb::STEP_STATUS_PLANNED);
  update.mutable_update_mask()->add_paths("demands");
  update.mutable_update_mask()->add_paths("project");
  pb::Case updated = MustCall(kFt, &Stub::UpdateCase, update);
  EXPECT_EQ(updated.demands_size(), 2);
  pb::UpdateCaseRequest same = update;  // the same content again: accepted, no activity on the feed
  same.mutable_case_()->set_etag(updated.etag());
  MustCall(kFt, &Stub::UpdateCase, same);
  EXPECT_EQ(updated.project().goal(), "Devenir technicienne de maintenance");
  EXPECT_NE(updated.etag(), c.etag());
  EXPECT_EQ(Status(kFt, &Stub::UpdateCase, update).error_code(), grpc::StatusCode::ABORTED);  // etag of before

  // Services: dated from the opening on.
  EXPECT_TRUE(Service(kFt, c.name(), pb::SERVICE_KIND_INFORMATION, D(2024, 3, 4)).ok());
  pb::Case with_services;
  ASSERT_TRUE(Service(kFt, c.name(), pb::SERVICE_KIND_SKILLS_IDENTIFICATION, D(2024, 4, 10), &with_services).ok());
  EXPECT_EQ(with_services.services_size(), 2);
  grpc::Status early = Service(kFt, c.name(), pb::SERVICE_KIND_INFORMATION, D(2024, 1, 2));
  EXPECT_EQ(early.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(PreconditionTypes(early).count("DATE_BEFORE_OPENING")) << early.error_message();

  // A VAE outcome names its candidacy.
  pb::RecordOutcomeRequest outcome;
  outcome.set_name(c.name());
  outcome.mutable_outcome()->set_kind(pb::OUTCOME_KIND_VAE);
  *outcome.mutable_outcome()->mutable_date() = D(2024, 5, 2);
  grpc::Status no_candidacy = Status(kFt, &Stub::RecordOutcome, outcome);
  EXPECT_EQ(no_candidacy.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(HasField(no_candidacy, "outcome.candidacy")) << Fields(no_candidacy);
  outcome.mutable_outcome()->set_candidacy("candidacies/0f3a9c2b7d1e4a56");
  // Not before the opening, as a service.
  pb::RecordOutcomeRequest early_outcome = outcome;
  *early_outcome.mutable_outcome()->mutable_date() = D(2024, 1, 2);
  grpc::Status outcome_too_early = Status(kFt, &Stub::RecordOutcome, early_outcome);
  EXPECT_EQ(outcome_too_early.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(PreconditionTypes(outcome_too_early).count("DATE_BEFORE_OPENING")) << outcome_too_early.error_message();
  pb::Case with_outcome = MustCall(kFt, &Stub::RecordOutcome, outcome);
  ASSERT_EQ(with_outcome.outcomes_size(), 1);
  EXPECT_EQ(with_outcome.outcomes(0).candidacy(), "candidacies/0f3a9c2b7d1e4a56");

  // Satisfaction at the end needs the closure.
  grpc::Status not_closed = Satisfaction(kFt, c.name(), pb::SATISFACTION_WHEN_END, D(2024, 6, 1));
  EXPECT_TRUE(PreconditionTypes(not_closed).count("CASE_NOT_CLOSED")) << not_closed.error_message();

  // Closing: not before the last service.
  grpc::Status too_soon = Close(kFt, c.name(), D(2024, 4, 1));
  EXPECT_TRUE(PreconditionTypes(too_soon).count("CLOSING_DATE")) << too_soon.error_message();
  pb::Case closed;
  ASSERT_TRUE(Close(kFt, c.name(), D(2024, 6, 28), &closed).ok());
  EXPECT_EQ(closed.state(), pb::CASE_STATE_CLOSED);
  EXPECT_EQ(closed.closing_date().month(), 6);
  EXPECT_EQ(closed.closing_reason(), "projet formalisé");
  EXPECT_EQ(closed.history_size(), 2);

  // A closed case no longer changes its file.
  update.mutable_case_()->set_etag(closed.etag());
  grpc::Status update_closed = Status(kFt, &Stub::UpdateCase, update);
  EXPECT_TRUE(PreconditionTypes(update_closed).count("CASE_NOT_OPEN")) << update_closed.error_message();
  EXPECT_TRUE(PreconditionTypes(Service(kFt, c.name(), pb::SERVICE_KIND_INFORMATION, D(2024, 7, 1)))
                  .count("CASE_NOT_OPEN"));
  pb::ChangeLevelRequest level_closed;
  level_closed.set_name(c.name());
  level_closed.set_level("2019/1");
  grpc::Status level_after = Status(kFt, &Stub::ChangeLevel, level_closed);
  EXPECT_TRUE(PreconditionTypes(level_after).count("CASE_NOT_OPEN")) << level_after.error_message();
  grpc::Status closed_twice = Close(kFt, c.name(), D(2024, 6, 29));
  EXPECT_TRUE(PreconditionTypes(closed_twice).count("CASE_NOT_OPEN")) << closed_twice.error_message();
  EXPECT_EQ(Get(kFt, c.name()).closing_date().day(), 28);

  // END after the closure, once; SIX_MONTHS from closing + 6 months.
  EXPECT_TRUE(Satisfaction(kFt, c.name(), pb::SATISFACTION_WHEN_END, D(2024, 6, 28)).ok());
  EXPECT_TRUE(PreconditionTypes(Satisfaction(kFt, c.name(), pb::SATISFACTION_WHEN_END, D(2024, 7, 2)))
                  .count("ALREADY_ANSWERED"));
  grpc::Status six_early = Satisfaction(kFt, c.name(), pb::SATISFACTION_WHEN_SIX_MONTHS, D(2024, 11, 15));
  EXPECT_EQ(six_early.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(PreconditionTypes(six_early).count("TOO_EARLY_FOR_SIX_MONTHS")) << six_early.error_message();
  pb::Case surveyed;
  ASSERT_TRUE(Satisfaction(kFt, c.name(), pb::SATISFACTION_WHEN_SIX_MONTHS, D(2024, 12, 30), &surveyed).ok());
  EXPECT_EQ(surveyed.satisfaction_size(), 2);

  // Reopen: a reason, only from CLOSED.
  pb::ReopenCaseRequest reopen;
  reopen.set_name(c.name());
  grpc::Status no_reason = Status(kFt, &Stub::ReopenCase, reopen);
  EXPECT_TRUE(HasField(no_reason, "reason")) << Fields(no_reason);
  reopen.set_reason("nouvelle demande de la bénéficiaire");
  pb::Case reopened = MustCall(kFt, &Stub::ReopenCase, reopen);
  EXPECT_EQ(reopened.state(), pb::CASE_STATE_OPEN);
  EXPECT_FALSE(reopened.has_closing_date());
  EXPECT_EQ(reopened.history_size(), 3);
  EXPECT_EQ(reopened.history(2).from(), pb::CASE_STATE_CLOSED);
  EXPECT_TRUE(PreconditionTypes(Status(kFt, &Stub::ReopenCase, reopen)).count("INVALID_TRANSITION"));

  // Levels move within their catalogue only.
  pb::ChangeLevelRequest level;
  level.set_name(c.name());
  level.set_level("2014/3");
  grpc::Status mismatch = Status(kFt, &Stub::ChangeLevel, level);
  EXPECT_TRUE(PreconditionTypes(mismatch).count("LEVEL_CATALOGUE_MISMATCH")) << mismatch.error_message();
  level.set_level("2019/1");
  EXPECT_EQ(MustCall(kFt, &Stub::ChangeLevel, level).level(), "2019/1");

  // The feed: every change as a pseudonymised event, in order.
  std::vector<pb::ActivityKind> kinds;
  for (const pb::ActivityEvent& e : Activity()) {
    kinds.push_back(e.kind());
    EXPECT_EQ(e.case_(), c.name());
    EXPECT_EQ(e.beneficiary(), b.name());
    EXPECT_EQ(e.region(), "53");
    EXPECT_EQ(e.operator_(), "operators/ft");
  }
  const std::vector<pb::ActivityKind> expected = {
      pb::ACTIVITY_KIND_CASE_OPENED,          pb::ACTIVITY_KIND_CASE_UPDATED,
      pb::ACTIVITY_KIND_SERVICE_DELIVERED,    pb::ACTIVITY_KIND_SERVICE_DELIVERED,
      pb::ACTIVITY_KIND_OUTCOME_RECORDED,
      pb::ACTIVITY_KIND_CASE_CLOSED,          pb::ACTIVITY_KIND_SATISFACTION_RECORDED,
      pb::ACTIVITY_KIND_SATISFACTION_RECORDED, pb::ACTIVITY_KIND_CASE_REOPENED,
      pb::ACTIVITY_KIND_LEVEL_CHANGED};
  EXPECT_EQ(kinds, expected);
  const std::vector<pb::ActivityEvent> events = Activity();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].month(), "2024-03");
  EXPECT_EQ(events[0].level(), "2019/2");
  EXPECT_EQ(events[2].service(), pb::SERVICE_KIND_INFORMATION);
}

// --- Designations -------------------------------------------------------------------------------

// An operator silent for 6 months loses its right to deliver CEP (France compétences decides
// from a date): from that day it opens no case, imports none opened then, accepts no transfer.
TEST_P(CepServiceTest, AnOperatorSilentForSixMonthsIsWithdrawnAndOpensNoCaseFromThatDay) {
  SetToday(2024, 1, 10);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  const pb::Beneficiary b = Register(kApec, "WD-0001");
  Open(kApec, b, D(2024, 1, 10));  // apec's last own activity
  auto withdraw = [&](const std::string& principal, google::type::Date from, const std::string& reason,
                      pb::Operator* out = nullptr) {
    pb::WithdrawOperatorRequest r;
    r.set_name("operators/apec");
    *r.mutable_effective_date() = from;
    r.set_reason(reason);
    pb::Operator ignored;
    return Call(principal, &Stub::WithdrawOperator, r, out ? out : &ignored);
  };
  const std::string decision = "Décision FC 2024-17 (mise en demeure du 2024-06-01)";

  // An operator entered in the directory today has not been silent for 6 months.
  AddOperator("ml-new", pb::OPERATOR_KIND_MISSION_LOCALE, {"53"});
  pb::WithdrawOperatorRequest brand_new;
  brand_new.set_name("operators/ml-new");
  *brand_new.mutable_effective_date() = D(2024, 1, 10);
  brand_new.set_reason("jamais actif");
  grpc::Status too_soon = Status(kNational, &Stub::WithdrawOperator, brand_new);
  EXPECT_TRUE(PreconditionTypes(too_soon).count("OPERATOR_NOT_SILENT")) << too_soon.error_message();
  EXPECT_NE(too_soon.error_message().find("entered the directory on 2024-01-10"), std::string::npos)
      << too_soon.error_message();

  // Four months without sharing: not yet.
  SetToday(2024, 5, 10);
  grpc::Status early = withdraw(kNational, D(2024, 6, 1), decision);
  EXPECT_TRUE(PreconditionTypes(early).count("OPERATOR_NOT_SILENT")) << early.error_message();
  // Six months and more: bad input first, then who may.
  SetToday(2024, 7, 15);
  grpc::Status past = withdraw(kNational, D(2024, 7, 14), decision);
  EXPECT_TRUE(HasField(past, "effective_date")) << Fields(past);
  grpc::Status no_reason = withdraw(kNational, D(2024, 8, 1), "");
  EXPECT_TRUE(HasField(no_reason, "reason")) << Fields(no_reason);
  EXPECT_EQ(withdraw(kApec, D(2024, 8, 1), decision).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(withdraw("region:53", D(2024, 8, 1), decision).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  pb::GetOperatorRequest get;
  get.set_name("operators/apec");
  EXPECT_FALSE(MustCall(kNational, &Stub::GetOperator, get).has_right_withdrawn_from());
  pb::Operator withdrawn;
  ASSERT_TRUE(withdraw(kNational, D(2024, 8, 1), decision, &withdrawn).ok());
  EXPECT_EQ(withdrawn.right_withdrawn_from().year() * 10000 + withdrawn.right_withdrawn_from().month() * 100 +
                withdrawn.right_withdrawn_from().day(),
            20240801);
  EXPECT_EQ(withdrawn.withdrawal_reason(), decision);
  EXPECT_TRUE(PreconditionTypes(withdraw(kNational, D(2024, 9, 1), decision)).count("ALREADY_WITHDRAWN"));
  // A caller cannot set the fields itself.
  pb::CreateOperatorRequest create;
  create.set_operator_id("ml-vannes");
  create.mutable_operator_()->set_display_name("Mission locale de Vannes");
  create.mutable_operator_()->set_kind(pb::OPERATOR_KIND_MISSION_LOCALE);
  create.mutable_operator_()->add_regions("53");
  *create.mutable_operator_()->mutable_right_withdrawn_from() = D(2024, 1, 1);
  EXPECT_FALSE(MustCall(kNational, &Stub::CreateOperator, create).has_right_withdrawn_from());

  // Until the day before, the right holds (even on a case recorded later, dated then).
  const pb::Beneficiary c = Register(kApec, "WD-0002");
  SetToday(2024, 8, 2);
  EXPECT_TRUE(TryOpen(kApec, c, D(2024, 7, 31)).ok());
  grpc::Status after = TryOpen(kApec, c, D(2024, 8, 1));
  EXPECT_TRUE(PreconditionTypes(after).count("OPERATOR_NOT_DESIGNATED")) << after.error_message();
  EXPECT_NE(after.error_message().find("withdrawn"), std::string::npos) << after.error_message();
  EXPECT_EQ(CountCases("apec"), 2);
  // Nor does it receive files any more; the other operators go on.
  const pb::Beneficiary d = Register(kFt, "WD-0003");
  const pb::Case at_ft = Open(kFt, d, D(2024, 8, 2));
  grpc::Status transfer = Transfer(kFt, at_ft.name(), "operators/apec", true);
  EXPECT_TRUE(PreconditionTypes(transfer).count("OPERATOR_NOT_DESIGNATED")) << transfer.error_message();
  EXPECT_NE(transfer.error_message().find("withdrawn"), std::string::npos) << transfer.error_message();
  EXPECT_EQ(Get(kFt, at_ft.name()).state(), pb::CASE_STATE_OPEN);
}

TEST_P(CepServiceTest, RegionalOperatorsOpenCasesOnlyWithinTheirDesignation) {
  AddOperator("reg-bzh", pb::OPERATOR_KIND_REGIONAL_EMPLOYED, {"53"});
  AddOperator("reg-bzh-bis", pb::OPERATOR_KIND_REGIONAL_EMPLOYED, {"53"});
  AddOperator("fongecif-bzh", pb::OPERATOR_KIND_OPACIF_FONGECIF, {"53"});
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("ml-rennes", pb::OPERATOR_KIND_MISSION_LOCALE, {"52"});

  // Only the national caller manages the directory.
  pb::CreateOperatorRequest create;
  create.set_operator_id("rogue");
  create.mutable_operator_()->set_display_name("Rogue");
  create.mutable_operator_()->set_kind(pb::OPERATOR_KIND_APEC);
  EXPECT_EQ(Status(kFt, &Stub::CreateOperator, create).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  create.set_operator_id("ft");
  EXPECT_EQ(Status(kNational, &Stub::CreateOperator, create).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  pb::DesignateOperatorRequest by_operator;
  by_operator.set_name("operators/reg-bzh");
  by_operator.mutable_period()->set_region("53");
  *by_operator.mutable_period()->mutable_start_date() = D(2020, 1, 1);
  EXPECT_EQ(Status(kFt, &Stub::DesignateOperator, by_operator).error_code(), grpc::StatusCode::PERMISSION_DENIED);

  const std::string reg = "operator:reg-bzh";
  const pb::Beneficiary b = Register(reg, "REG-0001");
  grpc::Status undesignated = TryOpen(reg, b, D(2021, 5, 3));
  EXPECT_TRUE(PreconditionTypes(undesignated).count("OPERATOR_NOT_DESIGNATED")) << undesignated.error_message();

  pb::Operator designated;
  ASSERT_TRUE(Designate("reg-bzh", "53", D(2020, 1, 1), D(2023, 12, 31), &designated).ok());
  ASSERT_EQ(designated.designations_size(), 1);
  EXPECT_EQ(designated.designations(0).region(), "53");
  EXPECT_TRUE(TryOpen(reg, b, D(2021, 5, 3)).ok());                                                 // inside
  EXPECT_TRUE(PreconditionTypes(TryOpen(reg, b, D(2024, 2, 1))).count("OPERATOR_NOT_DESIGNATED"));  // after
  EXPECT_TRUE(PreconditionTypes(TryOpen(reg, b, D(2019, 12, 31))).count("OPERATOR_NOT_DESIGNATED"));  // before
  EXPECT_EQ(CountCases("reg-bzh"), 1);

  // Periods of a region never overlap; only regional operators are designated, for their regions.
  grpc::Status overlap = Designate("reg-bzh-bis", "53", D(2023, 6, 1), std::nullopt);
  EXPECT_TRUE(PreconditionTypes(overlap).count("DESIGNATION_OVERLAP")) << overlap.error_message();
  EXPECT_TRUE(Designate("reg-bzh-bis", "53", D(2024, 1, 1), std::nullopt).ok());
  EXPECT_TRUE(PreconditionTypes(Designate("reg-bzh", "52", D(2024, 1, 1), std::nullopt)).count("REGION_NOT_SERVED"));
  EXPECT_TRUE(PreconditionTypes(Designate("ft", "53", D(2030, 1, 1), std::nullopt)).count("NOT_A_REGIONAL_OPERATOR"));
  grpc::Status backwards = Designate("reg-bzh", "53", D(2030, 1, 1), D(2029, 1, 1));
  EXPECT_TRUE(HasField(backwards, "period.end_date")) << Fields(backwards);
  EXPECT_EQ(Designate("reg-bzh", "53", D(2030, 1, 1), std::nullopt, nullptr, "\"1\"").error_code(),
            grpc::StatusCode::ABORTED);  // the designation above moved the etag on

  // Opacif/Fongécif: before 2020 only.
  const std::string fongecif = "operator:fongecif-bzh";
  const pb::Beneficiary f = Register(fongecif, "FON-0001");
  EXPECT_TRUE(TryOpen(fongecif, f, D(2019, 6, 3)).ok());
  grpc::Status after_2019 = TryOpen(fongecif, f, D(2020, 1, 15));
  EXPECT_TRUE(PreconditionTypes(after_2019).count("OPERATOR_NOT_DESIGNATED")) << after_2019.error_message();

  // A national network serves the regions it lists.
  const pb::Beneficiary breton = Register(kMl, "ML-0001", "35");
  EXPECT_TRUE(PreconditionTypes(TryOpen(kMl, breton, D(2024, 2, 1))).count("OPERATOR_NOT_DESIGNATED"));
  const pb::Beneficiary nantais = Register(kMl, "ML-0002", "44");
  EXPECT_TRUE(TryOpen(kMl, nantais, D(2024, 2, 1)).ok());

  // The directory, for any CEP principal.
  pb::GetOperatorRequest get;
  get.set_name("operators/reg-bzh");
  EXPECT_EQ(MustCall("region:53", &Stub::GetOperator, get).designations_size(), 1);
  pb::ListOperatorsRequest list;
  list.set_filter("kind = REGIONAL_EMPLOYED");
  EXPECT_EQ(MustCall(kFt, &Stub::ListOperators, list).operators_size(), 2);
  list.set_filter("region = \"52\"");
  pb::ListOperatorsResponse in_52 = MustCall(kNational, &Stub::ListOperators, list);
  ASSERT_EQ(in_52.operators_size(), 1);
  EXPECT_EQ(in_52.operators(0).name(), "operators/ml-rennes");
  std::set<std::string> seen;
  list.clear_filter();
  list.set_page_size(2);
  int pages = 0;
  do {
    pb::ListOperatorsResponse page = MustCall(kNational, &Stub::ListOperators, list);
    for (const pb::Operator& op : page.operators()) seen.insert(op.name());
    list.set_page_token(page.next_page_token());
  } while (!list.page_token().empty() && ++pages < 10);
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(pages, 2);  // 2 + 2 + 1
}

// --- Beneficiaries ------------------------------------------------------------------------------

TEST_P(CepServiceTest, SamePersonRegisteredAtTwoOperatorsIsOneBeneficiary) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  AddOperator("ml-rennes", pb::OPERATOR_KIND_MISSION_LOCALE, {"53"});

  const pb::Beneficiary at_ft = Register(kFt, "2880735123456");
  const pb::Beneficiary at_apec = Register(kApec, "2880735123456");
  EXPECT_EQ(at_ft.name(), at_apec.name());
  EXPECT_EQ(at_ft.name().size(), std::string("beneficiaries/").size() + 32);
  EXPECT_EQ(at_ft.name().find("2880735123456"), std::string::npos);  // the identifier is never stored
  EXPECT_NE(Register(kFt, "2880735123457").name(), at_ft.name());

  pb::GetBeneficiaryRequest get;
  get.set_name(at_ft.name());
  EXPECT_EQ(MustCall(kFt, &Stub::GetBeneficiary, get).birth_year(), 1988);
  EXPECT_EQ(MustCall(kApec, &Stub::GetBeneficiary, get).department(), "35");
  EXPECT_EQ(Status(kMl, &Stub::GetBeneficiary, get).error_code(), grpc::StatusCode::NOT_FOUND);

  // Contact details per operator.
  pb::UpdateContactDetailsRequest contact;
  contact.mutable_contact()->set_beneficiary(at_ft.name());
  contact.mutable_contact()->set_email("e.martin@example.org");
  EXPECT_EQ(MustCall(kApec, &Stub::UpdateContactDetails, contact).email(), "e.martin@example.org");
  EXPECT_EQ(Status(kMl, &Stub::UpdateContactDetails, contact).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Status(kMl, &Stub::OpenCase, Opening(at_ft, D(2024, 2, 1))).error_code(), grpc::StatusCode::NOT_FOUND);

  // Each operator holds its own case of the one person.
  const pb::Case ft_case = Open(kFt, at_ft, D(2024, 2, 1));
  const pb::Case apec_case = Open(kApec, at_apec, D(2024, 2, 5));
  EXPECT_EQ(ft_case.beneficiary(), apec_case.beneficiary());
  EXPECT_EQ(CountCases("ft"), 1);
  EXPECT_EQ(CountCases("apec"), 1);
}

TEST_P(CepServiceTest, PseudonymKeyComesFromTheSecretFile) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  const pb::Beneficiary with_dev_key = Register(kFt, "KEY-0001");

  // A second deployment with its own key (trailing newline ignored).
  const std::string key_file = ::testing::TempDir() + "/cep-pseudonym-key-" + GetParam();
  {
    std::ofstream out(key_file);
    out << "une-cle-secrete-de-production\n";
  }
  const std::string dsn = FreshDsn();
  {
    auto db = db::Open(dsn);
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE(Migrate(**db).ok());
  }
  auto app = App::Create(Config::FromMap({{"database.dsn", dsn}, {"pseudonym_key_file", key_file}}));
  ASSERT_TRUE(app.ok()) << app.status();
  std::unique_ptr<ServerRunner> runner = Serve(**app);
  auto stub = pb::CepService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", runner->port()), grpc::InsecureChannelCredentials()));
  auto call = [&](const std::string& principal, auto method, const auto& request, auto* response) {
    grpc::ClientContext ctx;
    ctx.AddMetadata(kPrincipalMetadata, principal);
    return (stub.get()->*method)(&ctx, request, response);
  };
  pb::CreateOperatorRequest create;
  create.set_operator_id("ft");
  create.mutable_operator_()->set_display_name("France Travail");
  create.mutable_operator_()->set_kind(pb::OPERATOR_KIND_FRANCE_TRAVAIL);
  create.mutable_operator_()->add_regions("53");
  pb::Operator op;
  ASSERT_TRUE(call(kNational, &Stub::CreateOperator, create, &op).ok());
  pb::Beneficiary with_file_key, again;
  ASSERT_TRUE(call(kFt, &Stub::RegisterBeneficiary, Registration("KEY-0001"), &with_file_key).ok());
  ASSERT_TRUE(call(kFt, &Stub::RegisterBeneficiary, Registration("KEY-0001"), &again).ok());
  EXPECT_EQ(with_file_key.name(), again.name());
  EXPECT_NE(with_file_key.name(), with_dev_key.name());
  EXPECT_EQ(with_file_key.name(), absl::StrCat("beneficiaries/", Pseudonym("une-cle-secrete-de-production", "KEY-0001")));
  EXPECT_EQ(with_dev_key.name(), absl::StrCat("beneficiaries/", Pseudonym(kDevelopmentPseudonymKey, "KEY-0001")));
  runner->Shutdown();

  // A key file that cannot be read stops the service from starting.
  EXPECT_FALSE(App::Create(Config::FromMap({{"database.dsn", dsn}, {"pseudonym_key_file", key_file + ".missing"}})).ok());
}

// --- Transfers ----------------------------------------------------------------------------------

// The receiver records from the day it received the file: a service, an outcome or a closing
// dated before is refused (what came before is the former holder's); a consent time is a valid
// instant, not in the future, not before the file's opening.
TEST_P(CepServiceTest, AReceivedFileTakesNothingDatedBeforeItsReceipt) {
  SetToday(2024, 3, 10);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  const pb::Case c = Open(kFt, Register(kFt, "RCPT-1"), D(2024, 1, 8));
  pb::RequestTransferRequest future;
  future.mutable_transfer()->set_case_(c.name());
  future.mutable_transfer()->set_to_operator("operators/apec");
  future.mutable_transfer()->set_beneficiary_consent(true);
  *future.mutable_transfer()->mutable_consent_time() = ToTimestamp(clock_.Now() + absl::Hours(48));
  EXPECT_TRUE(HasField(Status(kFt, &Stub::RequestTransfer, future), "transfer.consent_time"));
  // A back office's clock a few seconds ahead is tolerated (a minute).
  pb::RequestTransferRequest skewed = future;
  *skewed.mutable_transfer()->mutable_consent_time() = ToTimestamp(clock_.Now() + absl::Seconds(20));
  skewed.mutable_transfer()->set_to_operator("operators/nobody");  // refused later, for another reason
  EXPECT_EQ(Status(kFt, &Stub::RequestTransfer, skewed).error_code(), grpc::StatusCode::NOT_FOUND);
  // A consent record is a real instant, given once the file existed.
  for (auto [seconds, nanos] : std::vector<std::pair<int64_t, int32_t>>{
           {ToTimestamp(clock_.Now()).seconds(), -5}, {ToTimestamp(clock_.Now()).seconds(), 1000000000},
           {-62135596801, 0}, {int64_t{1} << 62, 0}}) {
    pb::RequestTransferRequest broken = future;
    broken.mutable_transfer()->mutable_consent_time()->set_seconds(seconds);
    broken.mutable_transfer()->mutable_consent_time()->set_nanos(nanos);
    EXPECT_TRUE(HasField(Status(kFt, &Stub::RequestTransfer, broken), "transfer.consent_time")) << seconds << " " << nanos;
  }
  pb::RequestTransferRequest before_opening = future;
  *before_opening.mutable_transfer()->mutable_consent_time() = ToTimestamp(absl::FromUnixSeconds(0));
  EXPECT_TRUE(PreconditionTypes(Status(kFt, &Stub::RequestTransfer, before_opening)).count("CONSENT_BEFORE_OPENING"));
  EXPECT_EQ(MustCall(kFt, &Stub::ListTransfers, pb::ListTransfersRequest()).transfers_size(), 0);

  pb::Transfer t;
  ASSERT_TRUE(Transfer(kFt, c.name(), "operators/apec", true, &t).ok());
  ASSERT_TRUE(Accept(kApec, t.name(), &t).ok());
  const pb::Case received = Get(kApec, t.new_case());
  grpc::Status early = Service(kApec, t.new_case(), pb::SERVICE_KIND_INFORMATION, D(2024, 2, 1));
  EXPECT_TRUE(PreconditionTypes(early).count("DATE_BEFORE_RECEIPT")) << early.error_message();
  pb::RecordOutcomeRequest outcome;
  outcome.set_name(t.new_case());
  outcome.mutable_outcome()->set_kind(pb::OUTCOME_KIND_JOB);
  *outcome.mutable_outcome()->mutable_date() = D(2024, 3, 9);
  grpc::Status early_outcome = Status(kApec, &Stub::RecordOutcome, outcome);
  EXPECT_TRUE(PreconditionTypes(early_outcome).count("DATE_BEFORE_RECEIPT")) << early_outcome.error_message();
  grpc::Status early_close = Close(kApec, t.new_case(), D(2024, 2, 20));
  EXPECT_TRUE(PreconditionTypes(early_close).count("CLOSING_DATE")) << early_close.error_message();
  EXPECT_EQ(Get(kApec, t.new_case()).DebugString(), received.DebugString());  // nothing changed
  // From the day of receipt on: accepted.
  EXPECT_TRUE(Service(kApec, t.new_case(), pb::SERVICE_KIND_INFORMATION, D(2024, 3, 10)).ok());
  EXPECT_TRUE(Close(kApec, t.new_case(), D(2024, 3, 10)).ok());
}

// A service, outcome or satisfaction answer recorded with a request id is recorded once however
// often the call is retried, including by attempts running at the same time; the key is the
// operator's own and names one request.
TEST_P(CepServiceTest, AppendsWithARequestIdAreRecordedOnceAcrossRetries) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  const pb::Case c = Open(kFt, Register(kFt, "APPEND-0001"), D(2024, 1, 8));
  pb::RecordServiceRequest req;
  req.set_name(c.name());
  req.mutable_service()->set_kind(pb::SERVICE_KIND_PROJECT_SUPPORT);
  *req.mutable_service()->mutable_date() = D(2024, 1, 15);
  req.set_request_id("svc-2024-01-15-1");
  constexpr int kAttempts = 6;
  std::vector<grpc::Status> statuses(kAttempts);
  std::vector<pb::Case> answers(kAttempts);
  ::parcours::testing::RunConcurrently(
      kAttempts, [&](int k) { statuses[k] = Call(kFt, &Stub::RecordService, req, &answers[k]); });
  for (int k = 0; k < kAttempts; ++k) {
    EXPECT_TRUE(statuses[k].ok()) << "attempt " << k << ": " << statuses[k].error_code() << " "
                                  << statuses[k].error_message();
    EXPECT_EQ(answers[k].services_size(), 1) << "attempt " << k;
  }
  pb::Case again;
  ASSERT_TRUE(Call(kFt, &Stub::RecordService, req, &again).ok());  // later: the case as it is now
  EXPECT_EQ(again.services_size(), 1);
  EXPECT_EQ(Get(kFt, c.name()).services_size(), 1);

  // The same key for another request is a client bug, and changes nothing.
  pb::RecordServiceRequest other = req;
  other.mutable_service()->set_kind(pb::SERVICE_KIND_INFORMATION);
  grpc::Status reused = Status(kFt, &Stub::RecordService, other);
  EXPECT_EQ(reused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(HasField(reused, "request_id")) << Fields(reused);
  EXPECT_EQ(Get(kFt, c.name()).services_size(), 1);
  // Without a key each call appends; an outcome's key is its own method's.
  ASSERT_TRUE(Service(kFt, c.name(), pb::SERVICE_KIND_PROJECT_SUPPORT, D(2024, 1, 15)).ok());
  EXPECT_EQ(Get(kFt, c.name()).services_size(), 2);
  pb::RecordOutcomeRequest outcome;
  outcome.set_name(c.name());
  outcome.mutable_outcome()->set_kind(pb::OUTCOME_KIND_TRAINING);
  *outcome.mutable_outcome()->mutable_date() = D(2024, 1, 20);
  outcome.set_request_id("svc-2024-01-15-1");
  pb::Case with_outcome;
  ASSERT_TRUE(Call(kFt, &Stub::RecordOutcome, outcome, &with_outcome).ok());
  ASSERT_TRUE(Call(kFt, &Stub::RecordOutcome, outcome, &with_outcome).ok());
  EXPECT_EQ(with_outcome.outcomes_size(), 1);
  EXPECT_TRUE(HasField(Status(kFt, &Stub::RecordOutcome, [] {
                         pb::RecordOutcomeRequest bad;
                         bad.set_name("cases/x");
                         bad.set_request_id(std::string(300, 'k'));
                         return bad;
                       }()),
                       "request_id"));
}

// Attempts of one request that run while the first is still in its transaction (a retry after a
// client timeout) all get the one transfer: none ABORTED by the first attempt's write of the case.
TEST_P(CepServiceTest, ConcurrentAttemptsOfOneTransferRequestAllGetTheSameTransfer) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  constexpr int kCases = 4;
  constexpr int kAttempts = 6;
  for (int i = 0; i < kCases; ++i) {
    const pb::Case c = Open(kFt, Register(kFt, absl::StrCat("TRF-RACE-", i)), D(2024, 1, 8));
    pb::RequestTransferRequest req;
    req.mutable_transfer()->set_case_(c.name());
    req.mutable_transfer()->set_to_operator("operators/apec");
    req.mutable_transfer()->set_beneficiary_consent(true);
    req.set_request_id(absl::StrCat("transfer-race-", i));
    std::vector<grpc::Status> statuses(kAttempts);
    std::vector<pb::Transfer> made(kAttempts);
    ::parcours::testing::RunConcurrently(
        kAttempts, [&](int k) { statuses[k] = Call(kFt, &Stub::RequestTransfer, req, &made[k]); });
    for (int k = 0; k < kAttempts; ++k) {
      EXPECT_TRUE(statuses[k].ok()) << "case " << i << " attempt " << k << ": " << statuses[k].error_code() << " "
                                    << statuses[k].error_message();
      EXPECT_EQ(made[k].name(), made[0].name()) << "case " << i << " attempt " << k;
    }
  }
  EXPECT_EQ(MustCall(kFt, &Stub::ListTransfers, pb::ListTransfersRequest()).transfers_size(), kCases);
}

TEST_P(CepServiceTest, TransferNeedsConsentMovesTheFileAndTheFormerHolderLosesAccess) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  AddOperator("ml-rennes", pb::OPERATOR_KIND_MISSION_LOCALE, {"53"});
  const pb::Beneficiary b = Register(kFt, "TRF-0001");
  const pb::Case c = Open(kFt, b, D(2024, 1, 8));
  ASSERT_TRUE(Service(kFt, c.name(), pb::SERVICE_KIND_PROJECT_SUPPORT, D(2024, 1, 15)).ok());

  grpc::Status no_consent = Transfer(kFt, c.name(), "operators/apec", false);
  EXPECT_EQ(no_consent.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(PreconditionTypes(no_consent).count("CONSENT_MISSING")) << no_consent.error_message();
  EXPECT_TRUE(HasField(Transfer(kFt, c.name(), "operators/ft", true), "transfer.to_operator"));
  EXPECT_EQ(Transfer(kFt, c.name(), "operators/nobody", true).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(MustCall(kFt, &Stub::ListTransfers, pb::ListTransfersRequest()).transfers_size(), 0);

  pb::Transfer t;
  ASSERT_TRUE(Transfer(kFt, c.name(), "operators/apec", true, &t).ok());
  EXPECT_EQ(t.state(), pb::TRANSFER_STATE_REQUESTED);
  EXPECT_EQ(t.from_operator(), "operators/ft");
  EXPECT_TRUE(t.has_consent_time());
  EXPECT_TRUE(PreconditionTypes(Transfer(kFt, c.name(), "operators/ml-rennes", true)).count("TRANSFER_PENDING"));

  // Only the receiver decides; a third operator sees nothing.
  EXPECT_EQ(Accept(kFt, t.name()).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Accept(kMl, t.name()).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Reject(kMl, t.name(), "pas chez nous").error_code(), grpc::StatusCode::NOT_FOUND);
  pb::ListTransfersRequest pending;
  pending.set_filter("state = REQUESTED");
  EXPECT_EQ(MustCall(kApec, &Stub::ListTransfers, pending).transfers_size(), 1);

  pb::Transfer accepted;
  ASSERT_TRUE(Accept(kApec, t.name(), &accepted).ok());
  EXPECT_EQ(accepted.state(), pb::TRANSFER_STATE_ACCEPTED);
  EXPECT_TRUE(accepted.has_decide_time());
  ASSERT_FALSE(accepted.new_case().empty());
  EXPECT_NE(accepted.new_case(), c.name());
  EXPECT_TRUE(PreconditionTypes(Accept(kApec, t.name())).count("TRANSFER_NOT_PENDING"));

  // The former holder: NOT_FOUND everywhere, nothing listed, the transfer in its history.
  pb::GetCaseRequest get_old;
  get_old.set_name(c.name());
  EXPECT_EQ(Status(kFt, &Stub::GetCase, get_old).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Service(kFt, c.name(), pb::SERVICE_KIND_INFORMATION, D(2024, 2, 1)).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Close(kFt, c.name(), D(2024, 2, 1)).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(MustCall(kFt, &Stub::ListCases, pb::ListCasesRequest()).cases_size(), 0);
  pb::ListTransfersResponse sent = MustCall(kFt, &Stub::ListTransfers, pb::ListTransfersRequest());
  ASSERT_EQ(sent.transfers_size(), 1);
  EXPECT_EQ(sent.transfers(0).state(), pb::TRANSFER_STATE_ACCEPTED);

  // The receiver: the file, open, with the beneficiary.
  const pb::Case moved = Get(kApec, accepted.new_case());
  EXPECT_EQ(moved.operator_(), "operators/apec");
  EXPECT_EQ(moved.state(), pb::CASE_STATE_OPEN);
  EXPECT_EQ(moved.beneficiary(), b.name());
  EXPECT_EQ(moved.level(), c.level());
  EXPECT_EQ(moved.opening_date().day(), 8);
  ASSERT_EQ(moved.services_size(), 1);
  EXPECT_EQ(moved.services(0).kind(), pb::SERVICE_KIND_PROJECT_SUPPORT);
  EXPECT_EQ(MustCall(kApec, &Stub::ListCases, pb::ListCasesRequest()).cases_size(), 1);
  pb::GetBeneficiaryRequest get_b;
  get_b.set_name(b.name());
  EXPECT_EQ(MustCall(kApec, &Stub::GetBeneficiary, get_b).name(), b.name());
  // The contact details went with the file; the former holder's copy is gone, and with it any
  // sight of the beneficiary.
  ASSERT_TRUE(app_->repository()
                  .Transact([&](CepTx& tx) -> absl::Status {
                    const std::string pseudonym = b.name().substr(std::string("beneficiaries/").size());
                    auto at_apec = tx.GetContact(pseudonym, "apec");
                    auto at_ft = tx.GetContact(pseudonym, "ft");
                    EXPECT_TRUE(at_apec.ok() && at_apec->has_value() &&
                                (*at_apec)->email() == "elodie.martin@example.fr");
                    EXPECT_TRUE(at_ft.ok() && !at_ft->has_value());
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(Status(kFt, &Stub::GetBeneficiary, get_b).error_code(), grpc::StatusCode::NOT_FOUND);
  // Traced: each listing of the transfer on the file it moves (the receiver's, the former
  // holder's), and the contact details' move on the person.
  auto audited = [&](const std::string& resource, const std::string& actor, const std::string& action,
                     const std::string& detail) {
    const std::vector<AuditEntry> entries = AuditOf(resource);
    return std::count_if(entries.begin(), entries.end(), [&](const AuditEntry& e) {
      return e.actor == actor && e.action == action && e.detail == detail;
    });
  };
  EXPECT_EQ(audited(c.name(), kApec, "ListTransfers", t.name()), 1);
  EXPECT_EQ(audited(c.name(), kFt, "ListTransfers", t.name()), 1);
  EXPECT_EQ(audited(b.name(), kApec, "AcceptTransfer", "contact details received from operators/ft"), 1);
  EXPECT_EQ(audited(b.name(), kApec, "AcceptTransfer", "contact details deleted at operators/ft"), 1);
  // On the feed, the file leaves ft (its case) and arrives at apec (the new case), in that order.
  std::vector<std::string> transfer_events;
  for (const pb::ActivityEvent& e : Activity()) {
    if (e.kind() == pb::ACTIVITY_KIND_CASE_TRANSFERRED || e.kind() == pb::ACTIVITY_KIND_CASE_TRANSFERRED_AWAY) {
      transfer_events.push_back(absl::StrCat(pb::ActivityKind_Name(e.kind()), " ", e.operator_(), " ", e.case_()));
    }
  }
  EXPECT_EQ(transfer_events,
            (std::vector<std::string>{absl::StrCat("ACTIVITY_KIND_CASE_TRANSFERRED_AWAY operators/ft ", c.name()),
                                      absl::StrCat("ACTIVITY_KIND_CASE_TRANSFERRED operators/apec ", moved.name())}));

  // A rejection needs a reason and leaves the file where it is; a new request may follow.
  pb::Transfer onward;
  ASSERT_TRUE(Transfer(kApec, moved.name(), "operators/ml-rennes", true, &onward).ok());
  EXPECT_TRUE(HasField(Reject(kMl, onward.name(), ""), "reason"));
  pb::Transfer rejected;
  ASSERT_TRUE(Reject(kMl, onward.name(), "hors de notre public (moins de 26 ans)", &rejected).ok());
  EXPECT_EQ(rejected.state(), pb::TRANSFER_STATE_REJECTED);
  EXPECT_EQ(Get(kApec, moved.name()).state(), pb::CASE_STATE_OPEN);

  // A receiver must be designated today for the beneficiary's region: asked already on request.
  AddOperator("reg-old", pb::OPERATOR_KIND_REGIONAL_EMPLOYED, {"53"});
  ASSERT_TRUE(Designate("reg-old", "53", D(2015, 1, 1), D(2019, 12, 31)).ok());
  grpc::Status not_designated = Transfer(kApec, moved.name(), "operators/reg-old", true);
  EXPECT_TRUE(PreconditionTypes(not_designated).count("OPERATOR_NOT_DESIGNATED")) << not_designated.error_message();
  EXPECT_EQ(Get(kApec, moved.name()).state(), pb::CASE_STATE_OPEN);
  EXPECT_EQ(CountCases("reg-old"), 0);
}

// A request the receiver could never accept is refused at once (the receiver is designated today
// in the file's region, the check AcceptTransfer makes): it would otherwise hold the file, every
// other request answered TRANSFER_PENDING. A designation that ends while a request waits is still
// caught on acceptance; the holder then cancels and sends the file elsewhere.
TEST_P(CepServiceTest, ATransferGoesOnlyToAnOperatorDesignatedForTheFileToday) {
  SetToday(2024, 3, 10);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  AddOperator("ml-paris", pb::OPERATOR_KIND_MISSION_LOCALE, {"11"});
  AddOperator("reg-old", pb::OPERATOR_KIND_REGIONAL_EMPLOYED, {"53"});
  ASSERT_TRUE(Designate("reg-old", "53", D(2015, 1, 1), D(2019, 12, 31)).ok());
  AddOperator("reg-now", pb::OPERATOR_KIND_REGIONAL_EMPLOYED, {"53"});
  ASSERT_TRUE(Designate("reg-now", "53", D(2024, 1, 1), D(2024, 3, 31)).ok());
  const pb::Case c = Open(kFt, Register(kFt, "DESIGNATED-0001", "35"), D(2024, 1, 8));  // Bretagne (53)
  const int64_t version = StoredVersion(c.name());

  for (const char* receiver : {"operators/reg-old", "operators/ml-paris"}) {
    grpc::Status refused = Transfer(kFt, c.name(), receiver, true);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << receiver;
    EXPECT_TRUE(PreconditionTypes(refused).count("OPERATOR_NOT_DESIGNATED")) << receiver << ": "
                                                                             << refused.error_message();
  }
  EXPECT_EQ(CountTransfers(kFt), 0);
  EXPECT_EQ(StoredVersion(c.name()), version);

  // Designated today, it gets the request; its designation ends before it answers.
  pb::Transfer t;
  ASSERT_TRUE(Transfer(kFt, c.name(), "operators/reg-now", true, &t).ok());
  SetToday(2024, 4, 2);
  grpc::Status ended = Accept("operator:reg-now", t.name());
  EXPECT_TRUE(PreconditionTypes(ended).count("OPERATOR_NOT_DESIGNATED")) << ended.error_message();
  EXPECT_EQ(CountCases("reg-now"), 0);
  EXPECT_TRUE(PreconditionTypes(Transfer(kFt, c.name(), "operators/apec", true)).count("TRANSFER_PENDING"));
  ASSERT_TRUE(Cancel(kFt, t.name(), "l'opérateur régional n'est plus désigné").ok());
  pb::Transfer onward;
  ASSERT_TRUE(Transfer(kFt, c.name(), "operators/apec", true, &onward).ok());
  ASSERT_TRUE(Accept(kApec, onward.name(), &onward).ok());
  EXPECT_EQ(Get(kApec, onward.new_case()).state(), pb::CASE_STATE_OPEN);
}

// The holder withdraws its own pending request (the person withdrew consent): the transfer ends
// CANCELLED with the reason and time, the file stays as it was and may move again. Only the
// holder cancels: the receiver sees the transfer and is refused, any other operator finds nothing.
TEST_P(CepServiceTest, TheHolderCancelsItsPendingTransferAndTheFileMayMoveAgain) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  AddOperator("ml-rennes", pb::OPERATOR_KIND_MISSION_LOCALE, {"53"});
  const pb::Case c = Open(kFt, Register(kFt, "CANCEL-0001"), D(2024, 1, 8));
  pb::Transfer t;
  ASSERT_TRUE(Transfer(kFt, c.name(), "operators/apec", true, &t).ok());
  const int64_t version = StoredVersion(c.name());
  const size_t events = Activity().size();

  // Bad input, and callers other than the holder, change nothing.
  constexpr char kWithdrawn[] = "la personne retire son consentement";
  EXPECT_TRUE(HasField(Cancel(kFt, t.name(), ""), "reason"));
  EXPECT_TRUE(HasField(Cancel(kFt, t.name(), std::string(501, 'x')), "reason"));
  EXPECT_TRUE(HasField(Cancel(kFt, "transferts/1", kWithdrawn), "name"));
  EXPECT_EQ(Cancel(kFt, "transfers/0123456789abcdef", kWithdrawn).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Cancel(kApec, t.name(), kWithdrawn).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Cancel(kMl, t.name(), kWithdrawn).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Cancel(kNational, t.name(), kWithdrawn).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(CountTransfers(kApec, pb::TRANSFER_STATE_REQUESTED), 1);

  pb::Transfer cancelled;
  ASSERT_TRUE(Cancel(kFt, t.name(), kWithdrawn, &cancelled).ok());
  EXPECT_EQ(cancelled.name(), t.name());
  EXPECT_EQ(cancelled.state(), pb::TRANSFER_STATE_CANCELLED);
  EXPECT_EQ(cancelled.reason(), kWithdrawn);
  EXPECT_EQ(FromTimestamp(cancelled.decide_time()), clock_.Now());
  EXPECT_EQ(cancelled.new_case(), "");
  // Ended: no party decides on it again; the receiver sees it cancelled, nothing pending.
  EXPECT_TRUE(PreconditionTypes(Cancel(kFt, t.name(), kWithdrawn)).count("TRANSFER_NOT_PENDING"));
  EXPECT_TRUE(PreconditionTypes(Accept(kApec, t.name())).count("TRANSFER_NOT_PENDING"));
  EXPECT_TRUE(PreconditionTypes(Reject(kApec, t.name(), "trop tard")).count("TRANSFER_NOT_PENDING"));
  EXPECT_EQ(CountTransfers(kApec, pb::TRANSFER_STATE_CANCELLED), 1);
  EXPECT_EQ(CountTransfers(kApec, pb::TRANSFER_STATE_REQUESTED), 0);
  EXPECT_EQ(CountCases("apec"), 0);

  // The file is as it was (no write, no event on the feed); the cancellation is traced on it.
  EXPECT_EQ(StoredVersion(c.name()), version);
  EXPECT_EQ(Get(kFt, c.name()).state(), pb::CASE_STATE_OPEN);
  EXPECT_EQ(Activity().size(), events);
  const std::vector<AuditEntry> audit = AuditOf(c.name());
  EXPECT_EQ(std::count_if(audit.begin(), audit.end(),
                          [&](const AuditEntry& e) {
                            return e.actor == kFt && e.action == "CancelTransfer" && e.detail == t.name();
                          }),
            1);

  // It may move again; once moved, the former holder's request is no longer pending.
  pb::Transfer again;
  ASSERT_TRUE(Transfer(kFt, c.name(), "operators/ml-rennes", true, &again).ok());
  ASSERT_TRUE(Accept(kMl, again.name()).ok());
  EXPECT_TRUE(PreconditionTypes(Cancel(kFt, again.name(), kWithdrawn)).count("TRANSFER_NOT_PENDING"));
}

// Only an open file moves: a closed one would arrive OPEN at the receiver, reopened by nobody and
// with no reason, and counted as followed again from the transfer's month. Its holder reopens it
// first (with its reason); a file closed while a transfer waits is refused on acceptance until
// the holder reopens it (or cancels).
TEST_P(CepServiceTest, OnlyAnOpenFileIsTransferred) {
  SetToday(2024, 3, 10);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  const pb::Case c = Open(kFt, Register(kFt, "CLOSED-0001"), D(2024, 1, 8));
  ASSERT_TRUE(Close(kFt, c.name(), D(2024, 2, 1)).ok());
  const int64_t closed_version = StoredVersion(c.name());
  grpc::Status closed = Transfer(kFt, c.name(), "operators/apec", true);
  EXPECT_EQ(closed.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(PreconditionTypes(closed).count("CASE_NOT_OPEN")) << closed.error_message();
  EXPECT_EQ(CountTransfers(kFt), 0);
  EXPECT_EQ(StoredVersion(c.name()), closed_version);

  pb::ReopenCaseRequest reopen;
  reopen.set_name(c.name());
  reopen.set_reason("la personne revient avec un projet de mobilité");
  MustCall(kFt, &Stub::ReopenCase, reopen);
  pb::Transfer t;
  ASSERT_TRUE(Transfer(kFt, c.name(), "operators/apec", true, &t).ok());

  // Closed again while the transfer waits: the receiver cannot take it, nothing moves.
  ASSERT_TRUE(Close(kFt, c.name(), D(2024, 3, 10)).ok());
  const int64_t version = StoredVersion(c.name());
  grpc::Status accept = Accept(kApec, t.name());
  EXPECT_EQ(accept.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(PreconditionTypes(accept).count("CASE_NOT_OPEN")) << accept.error_message();
  EXPECT_EQ(StoredVersion(c.name()), version);
  EXPECT_EQ(Get(kFt, c.name()).state(), pb::CASE_STATE_CLOSED);
  EXPECT_EQ(CountCases("apec"), 0);
  EXPECT_EQ(CountTransfers(kApec, pb::TRANSFER_STATE_REQUESTED), 1);

  // Reopened by its holder, it is accepted and goes on open at the receiver.
  MustCall(kFt, &Stub::ReopenCase, reopen);
  ASSERT_TRUE(Accept(kApec, t.name(), &t).ok());
  EXPECT_EQ(Get(kApec, t.new_case()).state(), pb::CASE_STATE_OPEN);
}

// --- Scope --------------------------------------------------------------------------------------

TEST_P(CepServiceTest, AnotherOperatorsCaseIsNotFoundAndOtherCallersAreDenied) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  const pb::Beneficiary b = Register(kFt, "SCOPE-0001");
  const pb::Case c = Open(kFt, b, D(2024, 4, 2));

  pb::GetCaseRequest get;
  get.set_name(c.name());
  grpc::Status read = Status(kApec, &Stub::GetCase, get);
  EXPECT_EQ(read.error_code(), grpc::StatusCode::NOT_FOUND);
  pb::GetCaseRequest missing;
  missing.set_name("cases/doesnotexist");
  grpc::Status absent = Status(kApec, &Stub::GetCase, missing);
  EXPECT_EQ(absent.error_code(), grpc::StatusCode::NOT_FOUND);
  // The answer has the shape of a case that does not exist: existence does not leak.
  EXPECT_EQ(absl::StrReplaceAll(read.error_message(), {{c.name(), "X"}}),
            absl::StrReplaceAll(absent.error_message(), {{missing.name(), "X"}}));
  pb::UpdateCaseRequest update;
  update.mutable_case_()->set_name(c.name());
  update.mutable_case_()->add_demands(pb::DEMAND_KIND_OTHER);
  update.mutable_update_mask()->add_paths("demands");
  EXPECT_EQ(Status(kApec, &Stub::UpdateCase, update).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Close(kApec, c.name(), D(2024, 5, 1)).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Service(kApec, c.name(), pb::SERVICE_KIND_INFORMATION, D(2024, 5, 1)).error_code(),
            grpc::StatusCode::NOT_FOUND);
  pb::ChangeLevelRequest level;
  level.set_name(c.name());
  level.set_level("2019/1");
  EXPECT_EQ(Status(kApec, &Stub::ChangeLevel, level).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Transfer(kApec, c.name(), "operators/ft", true).error_code(), grpc::StatusCode::NOT_FOUND);
  pb::RecordOutcomeRequest outcome;
  outcome.set_name(c.name());
  outcome.mutable_outcome()->set_kind(pb::OUTCOME_KIND_JOB);
  *outcome.mutable_outcome()->mutable_date() = D(2024, 5, 1);
  EXPECT_EQ(Status(kApec, &Stub::RecordOutcome, outcome).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Satisfaction(kApec, c.name(), pb::SATISFACTION_WHEN_END, D(2024, 5, 1)).error_code(),
            grpc::StatusCode::NOT_FOUND);
  pb::ReopenCaseRequest reopen;
  reopen.set_name(c.name());
  reopen.set_reason("nouvelle demande");
  EXPECT_EQ(Status(kApec, &Stub::ReopenCase, reopen).error_code(), grpc::StatusCode::NOT_FOUND);
  pb::GetBeneficiaryRequest get_b;
  get_b.set_name(b.name());
  EXPECT_EQ(Status(kApec, &Stub::GetBeneficiary, get_b).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(MustCall(kApec, &Stub::ListCases, pb::ListCasesRequest()).cases_size(), 0);
  // Nothing of that reached the file.
  const pb::Case intact = Get(kFt, c.name());
  EXPECT_EQ(intact.state(), pb::CASE_STATE_OPEN);
  EXPECT_EQ(intact.services_size(), 0);
  EXPECT_EQ(intact.demands(0), pb::DEMAND_KIND_PROJECT);
  EXPECT_EQ(intact.level(), "2019/2");
  EXPECT_EQ(intact.outcomes_size(), 0);
  EXPECT_EQ(intact.satisfaction_size(), 0);
  EXPECT_EQ(intact.history_size(), 1);

  // Case work is for operators of the directory.
  EXPECT_EQ(Status(kNational, &Stub::GetCase, get).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Status(kNational, &Stub::OpenCase, Opening(b, D(2024, 4, 2))).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Status(kNational, &Stub::ListCases, pb::ListCasesRequest()).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Status(kNational, &Stub::RegisterBeneficiary, Registration("X-1")).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Transfer(kNational, c.name(), "operators/apec", true).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Close(kNational, c.name(), D(2024, 5, 1)).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Status("region:53", &Stub::GetCase, get).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Status("operator:ghost", &Stub::ListCases, pb::ListCasesRequest()).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);  // not in the directory
  EXPECT_EQ(Status("operator:ghost", &Stub::GetCase, get).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Status("certifier:CPNE-IA", &Stub::ListLevelCatalogues, pb::ListLevelCataloguesRequest()).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Status("operator:ghost", &Stub::ListLevelCatalogues, pb::ListLevelCataloguesRequest()).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Status("", &Stub::GetCase, get).error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // Level catalogues are data, readable by every CEP caller.
  pb::ListLevelCataloguesResponse catalogues =
      MustCall("region:53", &Stub::ListLevelCatalogues, pb::ListLevelCataloguesRequest());
  std::map<std::string, int> levels;
  for (const pb::LevelCatalogue& cat : catalogues.catalogues()) levels[cat.id()] = cat.levels_size();
  EXPECT_EQ(levels, (std::map<std::string, int>{{"2014", 3}, {"2019", 2}}));
}

// --- Validation ---------------------------------------------------------------------------------

TEST_P(CepServiceTest, BadInputOnEveryMethodNamesTheFieldAndWritesNothing) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("reg-bzh", pb::OPERATOR_KIND_REGIONAL_EMPLOYED, {"53"});
  const pb::Beneficiary b = Register(kFt, "BAD-0001");
  const pb::Case c = Open(kFt, b, D(2024, 4, 2));
  pb::Transfer t;
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  ASSERT_TRUE(Transfer(kFt, c.name(), "operators/apec", true, &t).ok());

  struct Snapshot {
    int ft_cases, apec_cases, events, case_audit, beneficiary_audit, transfers, operators;
    int64_t case_version;
    bool operator==(const Snapshot& o) const {
      return ft_cases == o.ft_cases && apec_cases == o.apec_cases && events == o.events &&
             case_audit == o.case_audit && beneficiary_audit == o.beneficiary_audit && transfers == o.transfers &&
             operators == o.operators && case_version == o.case_version;
    }
  };
  auto snapshot = [&] {
    TransferQuery tq;
    tq.operator_id = "ft";
    tq.limit = 1000;
    OperatorQuery oq;
    oq.limit = 1000;
    return Snapshot{CountCases("ft"),
                    CountCases("apec"),
                    static_cast<int>(Activity().size()),
                    static_cast<int>(AuditOf(c.name()).size()),
                    static_cast<int>(AuditOf(b.name()).size()),
                    static_cast<int>(app_->repository().ListTransfers(tq).value().size()),
                    static_cast<int>(app_->repository().ListOperators(oq).value().size()),
                    StoredVersion(c.name())};
  };
  const Snapshot before = snapshot();

  std::vector<std::pair<std::string, std::function<grpc::Status()>>> cases;
  auto add = [&](const std::string& field, std::function<grpc::Status()> call) {
    cases.emplace_back(field, std::move(call));
  };
  add("operator_id", [&] {
    pb::CreateOperatorRequest r;
    r.set_operator_id("Bad_Id");
    r.mutable_operator_()->set_display_name("X");
    r.mutable_operator_()->set_kind(pb::OPERATOR_KIND_APEC);
    return Status(kNational, &Stub::CreateOperator, r);
  });
  add("operator.kind", [&] {
    pb::CreateOperatorRequest r;
    r.set_operator_id("new-op");
    r.mutable_operator_()->set_display_name("Nouvel opérateur");
    return Status(kNational, &Stub::CreateOperator, r);
  });
  add("name", [&] {
    pb::GetOperatorRequest r;
    r.set_name("opérateurs/ft");
    return Status(kNational, &Stub::GetOperator, r);
  });
  add("filter", [&] {
    pb::ListOperatorsRequest r;
    r.set_filter("kind = NOPE");
    return Status(kNational, &Stub::ListOperators, r);
  });
  add("period.region", [&] {
    pb::DesignateOperatorRequest r;
    r.set_name("operators/reg-bzh");
    r.mutable_period()->set_region("99");
    *r.mutable_period()->mutable_start_date() = D(2020, 1, 1);
    return Status(kNational, &Stub::DesignateOperator, r);
  });
  add("beneficiary.birth_year", [&] {
    pb::RegisterBeneficiaryRequest r = Registration("BAD-0002");
    r.mutable_beneficiary()->set_birth_year(1850);
    return Status(kFt, &Stub::RegisterBeneficiary, r);
  });
  add("external_id", [&] { return Status(kFt, &Stub::RegisterBeneficiary, Registration("")); });
  add("contact.email", [&] {
    pb::RegisterBeneficiaryRequest r = Registration("BAD-0001");  // known person: the contact must not change
    r.mutable_contact()->set_email("pas-une-adresse");
    return Status(kFt, &Stub::RegisterBeneficiary, r);
  });
  add("name", [&] {
    pb::GetBeneficiaryRequest r;
    r.set_name("cases/x");
    return Status(kFt, &Stub::GetBeneficiary, r);
  });
  add("contact.beneficiary", [&] {
    pb::UpdateContactDetailsRequest r;
    r.mutable_contact()->set_email("a@b.fr");
    return Status(kFt, &Stub::UpdateContactDetails, r);
  });
  add("case.demands", [&] {
    pb::OpenCaseRequest r = Opening(b, D(2024, 4, 3));
    r.mutable_case_()->clear_demands();
    return Status(kFt, &Stub::OpenCase, r);
  });
  add("case.level", [&] { return Status(kFt, &Stub::OpenCase, Opening(b, D(2024, 4, 3), "2030/9")); });
  add("case.opening_date", [&] { return Status(kFt, &Stub::OpenCase, Opening(b, D(2024, 2, 30))); });
  add("case.beneficiary", [&] {
    pb::OpenCaseRequest r = Opening(b, D(2024, 4, 3));
    r.mutable_case_()->set_beneficiary("people/x");
    return Status(kFt, &Stub::OpenCase, r);
  });
  add("request_id", [&] {
    pb::OpenCaseRequest r = Opening(b, D(2024, 4, 3));
    r.set_request_id("not a valid id!");
    return Status(kFt, &Stub::OpenCase, r);
  });
  add("name", [&] {
    pb::GetCaseRequest r;
    r.set_name("cases/");
    return Status(kFt, &Stub::GetCase, r);
  });
  add("filter", [&] {
    pb::ListCasesRequest r;
    r.set_filter("opened >= yesterday");
    return Status(kFt, &Stub::ListCases, r);
  });
  add("filter", [&] {
    pb::ListCasesRequest r;
    r.set_filter("opened >= 2024-01-01 AND");
    return Status(kFt, &Stub::ListCases, r);
  });
  add("page_size", [&] {
    pb::ListCasesRequest r;
    r.set_page_size(-1);
    return Status(kFt, &Stub::ListCases, r);
  });
  add("update_mask", [&] {
    pb::UpdateCaseRequest r;
    r.mutable_case_()->set_name(c.name());
    r.mutable_update_mask()->add_paths("state");
    return Status(kFt, &Stub::UpdateCase, r);
  });
  add("case.demands[0]", [&] {
    pb::UpdateCaseRequest r;
    r.mutable_case_()->set_name(c.name());
    r.mutable_case_()->add_demands(pb::DEMAND_KIND_UNSPECIFIED);
    r.mutable_update_mask()->add_paths("demands");
    return Status(kFt, &Stub::UpdateCase, r);
  });
  add("case.etag", [&] {
    pb::UpdateCaseRequest r;
    r.mutable_case_()->set_name(c.name());
    r.mutable_case_()->set_etag("W/nope");
    r.mutable_case_()->add_demands(pb::DEMAND_KIND_OTHER);
    r.mutable_update_mask()->add_paths("demands");
    return Status(kFt, &Stub::UpdateCase, r);
  });
  add("level", [&] {
    pb::ChangeLevelRequest r;
    r.set_name(c.name());
    return Status(kFt, &Stub::ChangeLevel, r);
  });
  add("level", [&] {
    pb::ChangeLevelRequest r;
    r.set_name(c.name());
    r.set_level("2019/7");
    return Status(kFt, &Stub::ChangeLevel, r);
  });
  add("service.kind", [&] { return Service(kFt, c.name(), pb::SERVICE_KIND_UNSPECIFIED, D(2024, 4, 5)); });
  add("outcome.candidacy", [&] {
    pb::RecordOutcomeRequest r;
    r.set_name(c.name());
    r.mutable_outcome()->set_kind(pb::OUTCOME_KIND_JOB);
    r.mutable_outcome()->set_candidacy("candidacies/x");
    *r.mutable_outcome()->mutable_date() = D(2024, 4, 5);
    return Status(kFt, &Stub::RecordOutcome, r);
  });
  add("satisfaction.score", [&] {
    pb::RecordSatisfactionRequest r;
    r.set_name(c.name());
    r.mutable_satisfaction()->set_when(pb::SATISFACTION_WHEN_END);
    r.mutable_satisfaction()->set_score(9);
    *r.mutable_satisfaction()->mutable_date() = D(2024, 4, 5);
    return Status(kFt, &Stub::RecordSatisfaction, r);
  });
  add("reason", [&] {
    pb::CloseCaseRequest r;
    r.set_name(c.name());
    *r.mutable_closing_date() = D(2024, 4, 5);
    return Status(kFt, &Stub::CloseCase, r);
  });
  add("closing_date", [&] {
    pb::CloseCaseRequest r;
    r.set_name(c.name());
    r.set_reason("fin");
    return Status(kFt, &Stub::CloseCase, r);
  });
  add("reason", [&] {
    pb::ReopenCaseRequest r;
    r.set_name(c.name());
    return Status(kFt, &Stub::ReopenCase, r);
  });
  add("transfer.case", [&] { return Transfer(kFt, "dossiers/1", "operators/apec", true); });
  add("name", [&] { return Accept(kApec, ""); });
  add("reason", [&] { return Reject(kApec, t.name(), ""); });
  add("filter", [&] {
    pb::ListTransfersRequest r;
    r.set_filter("state = LOST");
    return Status(kFt, &Stub::ListTransfers, r);
  });
  add("beneficiary", [&] {
    pb::RequestErasureRequest r;
    r.set_beneficiary(c.name());
    return Status(kFt, &Stub::RequestErasure, r);
  });
  add("beneficiary", [&] { return Status(kFt, &Stub::RequestErasure, pb::RequestErasureRequest()); });
  add("reason", [&] {
    pb::RequestErasureRequest r;
    r.set_beneficiary(b.name());
    r.set_reason(std::string(201, 'x'));
    return Status(kFt, &Stub::RequestErasure, r);
  });
  add("as_of", [&] { return Status(kNational, &Stub::RunRetention, pb::RunRetentionRequest()); });
  add("as_of", [&] {
    pb::RunRetentionRequest r;
    *r.mutable_as_of() = D(2099, 2, 30);  // far ahead: a pass that ran would notice every case
    return Status(kNational, &Stub::RunRetention, r);
  });
  add("as_of", [&] {
    pb::GetComplianceReportRequest r;
    *r.mutable_as_of() = D(2024, 13, 1);
    return Status(kNational, &Stub::GetComplianceReport, r);
  });

  for (const auto& [field, call] : cases) {
    grpc::Status s = call();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << field << ": " << s.error_message();
    EXPECT_TRUE(HasField(s, field)) << "expected " << field << ", got [" << Fields(s) << "] " << s.error_message();
  }
  EXPECT_TRUE(snapshot() == before);
  pb::Case unchanged = Get(kFt, c.name());
  EXPECT_EQ(unchanged.level(), "2019/2");
  EXPECT_EQ(unchanged.demands_size(), 1);
}

// What happened cannot be dated after today (the service's date): an opening, a formalised
// project, a service, an outcome, a closing, a satisfaction answer, a retention pass. Today itself
// is accepted; the end-of-case survey is answered on or after the closing.
TEST_P(CepServiceTest, EventsDatedAfterTodayAreRefusedWithTheirFieldAndWriteNothing) {
  SetToday(2025, 6, 1);
  const google::type::Date today = D(2025, 6, 1), tomorrow = D(2025, 6, 2);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  const pb::Beneficiary b = Register(kFt, "FUT-0001");
  const pb::Case c = Open(kFt, b, D(2025, 5, 2));
  const int64_t version = StoredVersion(c.name());
  const size_t events = Activity().size();

  std::vector<std::pair<std::string, std::function<grpc::Status()>>> cases;
  auto add = [&](const std::string& field, std::function<grpc::Status()> call) {
    cases.emplace_back(field, std::move(call));
  };
  add("case.opening_date", [&] { return Status(kFt, &Stub::OpenCase, Opening(b, tomorrow)); });
  add("case.project.formalised_date", [&] {
    pb::OpenCaseRequest r = Opening(b, today);
    r.mutable_case_()->mutable_project()->set_goal("Devenir technicienne de maintenance");
    *r.mutable_case_()->mutable_project()->mutable_formalised_date() = tomorrow;
    return Status(kFt, &Stub::OpenCase, r);
  });
  add("case.project.formalised_date", [&] {
    pb::UpdateCaseRequest r;
    r.mutable_case_()->set_name(c.name());
    r.mutable_case_()->mutable_project()->set_goal("Devenir technicienne de maintenance");
    *r.mutable_case_()->mutable_project()->mutable_formalised_date() = tomorrow;
    r.mutable_update_mask()->add_paths("project");
    return Status(kFt, &Stub::UpdateCase, r);
  });
  add("service.date", [&] { return Service(kFt, c.name(), pb::SERVICE_KIND_INFORMATION, tomorrow); });
  add("outcome.date", [&] {
    pb::RecordOutcomeRequest r;
    r.set_name(c.name());
    r.mutable_outcome()->set_kind(pb::OUTCOME_KIND_JOB);
    *r.mutable_outcome()->mutable_date() = tomorrow;
    return Status(kFt, &Stub::RecordOutcome, r);
  });
  add("closing_date", [&] { return Close(kFt, c.name(), tomorrow); });
  add("as_of", [&] {
    pb::RunRetentionRequest r;
    *r.mutable_as_of() = tomorrow;
    return Status(kNational, &Stub::RunRetention, r);
  });
  for (const auto& [field, call] : cases) {
    const grpc::Status st = call();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << field << ": " << st.error_message();
    EXPECT_TRUE(HasField(st, field)) << "expected " << field << ", got [" << Fields(st) << "] " << st.error_message();
  }
  EXPECT_EQ(CountCases("ft"), 1);
  EXPECT_EQ(StoredVersion(c.name()), version);
  EXPECT_EQ(Activity().size(), events);

  // Today is not the future.
  ASSERT_TRUE(Service(kFt, c.name(), pb::SERVICE_KIND_INFORMATION, today).ok());
  ASSERT_TRUE(Close(kFt, c.name(), today).ok());
  const grpc::Status answer_tomorrow = Satisfaction(kFt, c.name(), pb::SATISFACTION_WHEN_END, tomorrow);
  EXPECT_EQ(answer_tomorrow.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << answer_tomorrow.error_message();
  EXPECT_TRUE(HasField(answer_tomorrow, "satisfaction.date")) << Fields(answer_tomorrow);
  // The end-of-case survey follows the closing.
  const grpc::Status before_closing = Satisfaction(kFt, c.name(), pb::SATISFACTION_WHEN_END, D(2025, 5, 31));
  EXPECT_EQ(before_closing.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << before_closing.error_message();
  EXPECT_TRUE(PreconditionTypes(before_closing).count("ANSWER_BEFORE_CLOSING")) << before_closing.error_message();
  EXPECT_EQ(Get(kFt, c.name()).satisfaction_size(), 0);
  pb::Case answered;
  ASSERT_TRUE(Satisfaction(kFt, c.name(), pb::SATISFACTION_WHEN_END, today, &answered).ok());
  EXPECT_EQ(answered.satisfaction_size(), 1);
  pb::RunRetentionRequest run_today;
  *run_today.mutable_as_of() = today;
  EXPECT_TRUE(Status(kNational, &Stub::RunRetention, run_today).ok());
}

// --- Idempotency --------------------------------------------------------------------------------

TEST_P(CepServiceTest, SameRequestIdOpensOneCaseAndExternalIdsAreUniquePerOperator) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  const pb::Beneficiary b = Register(kFt, "IDEM-0001");
  pb::OpenCaseRequest req = Opening(b, D(2024, 3, 1));
  req.set_request_id("9b2f3c1e-open-1");
  const pb::Case first = MustCall(kFt, &Stub::OpenCase, req);
  const pb::Case again = MustCall(kFt, &Stub::OpenCase, req);
  EXPECT_EQ(first.name(), again.name());
  // The new case is answered as built and the retry as read back: the same message, and the
  // same as GetCase.
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(first, again))
      << first.DebugString() << again.DebugString();
  pb::GetCaseRequest get;
  get.set_name(first.name());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(first, MustCall(kFt, &Stub::GetCase, get)));
  EXPECT_EQ(CountCases("ft"), 1);
  // The retry's answer is a read of the file: traced like GetCase's.
  std::vector<std::string> trail;
  for (const AuditEntry& a : AuditOf(first.name())) trail.push_back(absl::StrCat(a.actor, " ", a.action, " ", a.detail));
  EXPECT_EQ(trail, (std::vector<std::string>{"operator:ft OpenCase ", "operator:ft OpenCase retry: the case as it is now",
                                             "operator:ft GetCase "}));
  int opened = 0;
  for (const pb::ActivityEvent& e : Activity()) opened += e.kind() == pb::ACTIVITY_KIND_CASE_OPENED;
  EXPECT_EQ(opened, 1);

  // The same key for another request is a client bug.
  pb::OpenCaseRequest other = req;
  other.mutable_case_()->set_level("2019/1");
  grpc::Status reused = Status(kFt, &Stub::OpenCase, other);
  EXPECT_EQ(reused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(HasField(reused, "request_id")) << Fields(reused);
  EXPECT_EQ(CountCases("ft"), 1);

  // Keys belong to their operator.
  const pb::Beneficiary at_apec = Register(kApec, "IDEM-0001");
  pb::OpenCaseRequest apec_req = Opening(at_apec, D(2024, 3, 1));
  apec_req.set_request_id("9b2f3c1e-open-1");
  EXPECT_NE(MustCall(kApec, &Stub::OpenCase, apec_req).name(), first.name());

  // The operator's own case id is unique for it.
  pb::OpenCaseRequest with_ext = Opening(b, D(2024, 3, 2));
  with_ext.mutable_case_()->set_external_id("FT-2024-000042");
  const pb::Case ext = MustCall(kFt, &Stub::OpenCase, with_ext);
  EXPECT_EQ(ext.external_id(), "FT-2024-000042");
  EXPECT_EQ(Status(kFt, &Stub::OpenCase, with_ext).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(CountCases("ft"), 2);
}

// --- Audit --------------------------------------------------------------------------------------

TEST_P(CepServiceTest, AuditTrailRecordsReadsAndChangesWithoutPersonalData) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  const pb::Beneficiary b = Register(kFt, "AUDIT-2880735");
  const pb::Case c = Open(kFt, b, D(2024, 3, 1));

  auto count = [&](const std::vector<AuditEntry>& entries, const std::string& actor, const std::string& action) {
    return std::count_if(entries.begin(), entries.end(),
                         [&](const AuditEntry& e) { return e.actor == actor && e.action == action; });
  };
  EXPECT_EQ(count(AuditOf(c.name()), kFt, "GetCase"), 0);
  Get(kFt, c.name());
  pb::GetCaseRequest get;
  get.set_name(c.name());
  EXPECT_EQ(Status(kApec, &Stub::GetCase, get).error_code(), grpc::StatusCode::NOT_FOUND);
  MustCall(kFt, &Stub::ListCases, pb::ListCasesRequest());
  ASSERT_TRUE(Service(kFt, c.name(), pb::SERVICE_KIND_INFORMATION, D(2024, 3, 5)).ok());

  const std::vector<AuditEntry> on_case = AuditOf(c.name());
  EXPECT_EQ(count(on_case, kFt, "OpenCase"), 1);
  EXPECT_EQ(count(on_case, kFt, "GetCase"), 1);
  EXPECT_EQ(count(on_case, kFt, "ListCases"), 1);
  EXPECT_EQ(count(on_case, kFt, "RecordService"), 1);
  EXPECT_EQ(count(on_case, kApec, "GetCase"), 0);  // refused reads leave nothing to trace
  for (const AuditEntry& e : on_case) EXPECT_EQ(e.resource, c.name());

  pb::GetBeneficiaryRequest get_b;
  get_b.set_name(b.name());
  MustCall(kFt, &Stub::GetBeneficiary, get_b);
  pb::UpdateContactDetailsRequest contact;
  contact.mutable_contact()->set_beneficiary(b.name());
  contact.mutable_contact()->set_display_name("Élodie Martin-Durand");
  contact.mutable_contact()->set_email("elodie.md@example.fr");
  MustCall(kFt, &Stub::UpdateContactDetails, contact);
  const std::vector<AuditEntry> on_beneficiary = AuditOf(b.name());
  EXPECT_EQ(count(on_beneficiary, kFt, "RegisterBeneficiary"), 1);
  EXPECT_EQ(count(on_beneficiary, kFt, "GetBeneficiary"), 1);
  EXPECT_EQ(count(on_beneficiary, kFt, "UpdateContactDetails"), 1);

  // Never personal data in the trail.
  std::vector<AuditEntry> all = on_case;
  all.insert(all.end(), on_beneficiary.begin(), on_beneficiary.end());
  for (const AuditEntry& e : all) {
    for (const std::string& personal : {std::string("Élodie"), std::string("Martin"), std::string("example.fr"),
                                        std::string("AUDIT-2880735"), std::string("+33")}) {
      EXPECT_EQ(e.detail.find(personal), std::string::npos) << e.action << ": " << e.detail;
      EXPECT_EQ(e.resource.find(personal), std::string::npos) << e.action << ": " << e.resource;
    }
  }
}

// --- Lists --------------------------------------------------------------------------------------

TEST_P(CepServiceTest, ListCasesFiltersAndPaginatesWithinTheOperator) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  const pb::Beneficiary b = Register(kFt, "LIST-0001");
  std::set<std::string> all;
  all.insert(Open(kFt, b, D(2023, 11, 2), "2014/2").name());
  all.insert(Open(kFt, b, D(2024, 1, 9)).name());
  all.insert(Open(kFt, b, D(2024, 2, 12)).name());
  const pb::Case march = Open(kFt, b, D(2024, 3, 4));
  all.insert(march.name());
  all.insert(Open(kFt, b, D(2024, 3, 18)).name());
  ASSERT_TRUE(Close(kFt, march.name(), D(2024, 4, 2)).ok());
  Open(kApec, Register(kApec, "LIST-0002"), D(2024, 3, 1));

  auto names = [&](const std::string& filter, int page_size, int* pages_out = nullptr) {
    std::set<std::string> seen;
    pb::ListCasesRequest req;
    req.set_filter(filter);
    req.set_page_size(page_size);
    int pages = 0;
    do {
      pb::ListCasesResponse page = MustCall(kFt, &Stub::ListCases, req);
      ++pages;
      for (const pb::Case& c : page.cases()) seen.insert(c.name());
      req.set_page_token(page.next_page_token());
    } while (!req.page_token().empty() && pages < 10);
    if (pages_out) *pages_out = pages;
    return seen;
  };
  int pages = 0;
  EXPECT_EQ(names("", 2, &pages), all);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(names("state = CLOSED", 50), std::set<std::string>{march.name()});
  EXPECT_EQ(names("level = \"2014/2\"", 50).size(), 1u);
  EXPECT_EQ(names("opened >= 2024-02-01", 50).size(), 3u);
  EXPECT_EQ(names("state = OPEN AND opened >= 2024-02-01", 1).size(), 2u);
  EXPECT_EQ(names("opened >= 2024-02-01 AND level = \"2019/2\" AND state = OPEN", 50).size(), 2u);

  // A token belongs to its list.
  pb::ListCasesRequest first;
  first.set_page_size(1);
  pb::ListCasesResponse page = MustCall(kFt, &Stub::ListCases, first);
  ASSERT_FALSE(page.next_page_token().empty());
  pb::ListCasesRequest elsewhere;
  elsewhere.set_page_size(1);
  elsewhere.set_filter("state = OPEN");
  elsewhere.set_page_token(page.next_page_token());
  EXPECT_TRUE(HasField(Status(kFt, &Stub::ListCases, elsewhere), "page_token"));
  EXPECT_EQ(Status(kApec, &Stub::ListCases, [&] {
              pb::ListCasesRequest r;
              r.set_page_size(1);
              r.set_page_token(page.next_page_token());
              return r;
            }())
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

// --- Data-sharing feed --------------------------------------------------------------------------

// What the feed tests compare of an event.
std::string Key(const pb::ActivityEvent& e) {
  return absl::StrCat(e.cursor(), " ", pb::ActivityKind_Name(e.kind()), " ", e.case_(), " ", e.operator_());
}

std::vector<std::string> Keys(const std::vector<pb::ActivityEvent>& events, size_t from = 0) {
  std::vector<std::string> out;
  for (size_t i = from; i < events.size(); ++i) out.push_back(Key(events[i]));
  return out;
}

int64_t CursorValue(const pb::ActivityEvent& e) {
  int64_t v = -1;
  EXPECT_TRUE(absl::SimpleAtoi(e.cursor(), &v)) << e.cursor();
  return v;
}

TEST_P(CepServiceTest, FeedResumedAfterEveryCursorGivesExactlyTheRest) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  const pb::Beneficiary b = Register(kFt, "FEED-0001");
  const pb::Beneficiary other = Register(kApec, "FEED-0002");
  const pb::Case c1 = Open(kFt, b, D(2024, 3, 4));
  const pb::Case c2 = Open(kApec, other, D(2024, 3, 6));
  ASSERT_TRUE(Service(kFt, c1.name(), pb::SERVICE_KIND_INFORMATION, D(2024, 3, 5)).ok());
  ASSERT_TRUE(Service(kApec, c2.name(), pb::SERVICE_KIND_SKILLS_IDENTIFICATION, D(2024, 3, 7)).ok());
  ASSERT_TRUE(Service(kFt, c1.name(), pb::SERVICE_KIND_PROJECT_SUPPORT, D(2024, 3, 12)).ok());
  pb::ChangeLevelRequest level;
  level.set_name(c2.name());
  level.set_level("2019/1");
  MustCall(kApec, &Stub::ChangeLevel, level);
  ASSERT_TRUE(Close(kFt, c1.name(), D(2024, 4, 2)).ok());
  ASSERT_TRUE(Close(kApec, c2.name(), D(2024, 4, 3)).ok());
  ASSERT_TRUE(Satisfaction(kFt, c1.name(), pb::SATISFACTION_WHEN_END, D(2024, 4, 2)).ok());

  // The feed is the stored log, whole and in order (9 events: three full batches of 3).
  const std::vector<pb::ActivityEvent> stored = Activity();
  ASSERT_EQ(stored.size(), 9u);
  const std::vector<pb::ActivityEvent> feed = Feed(kNational);
  ASSERT_EQ(feed.size(), stored.size());
  for (size_t i = 0; i < feed.size(); ++i) {
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(stored[i], feed[i])) << i;
    if (i > 0) {
      EXPECT_LT(CursorValue(feed[i - 1]), CursorValue(feed[i]));
    }
  }
  // Resumed after any cursor: exactly the events after it, none missing, none twice.
  for (size_t i = 0; i < feed.size(); ++i) {
    EXPECT_EQ(Keys(Feed(kNational, feed[i].cursor())), Keys(feed, i + 1)) << "after " << feed[i].cursor();
  }
  EXPECT_EQ(Keys(Feed(kNational, "")), Keys(feed));

  // Pseudonymised data only: no identifier, no contact detail.
  for (const pb::ActivityEvent& e : feed) {
    const std::string bytes = e.SerializeAsString();
    for (const char* personal : {"FEED-0001", "FEED-0002", "Élodie", "Martin", "example.fr", "+33"}) {
      EXPECT_EQ(bytes.find(personal), std::string::npos) << personal << " in " << e.ShortDebugString();
    }
    EXPECT_TRUE(e.beneficiary() == b.name() || e.beneficiary() == other.name()) << e.beneficiary();
    EXPECT_EQ(e.region(), "53");
  }

  // A later change comes after the last cursor.
  EXPECT_TRUE(Feed(kNational, feed.back().cursor()).empty());
  pb::ReopenCaseRequest reopen;
  reopen.set_name(c2.name());
  reopen.set_reason("nouvelle demande");
  MustCall(kApec, &Stub::ReopenCase, reopen);
  const std::vector<pb::ActivityEvent> more = Feed(kNational, feed.back().cursor());
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(more[0].kind(), pb::ACTIVITY_KIND_CASE_REOPENED);
  EXPECT_EQ(more[0].case_(), c2.name());
}

TEST_P(CepServiceTest, AnOperatorsFeedHoldsOnlyItsEventsAndOtherCallersOrBadCursorsAreRefused) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  AddOperator("ml-rennes", pb::OPERATOR_KIND_MISSION_LOCALE, {"53"});
  const pb::Case at_ft = Open(kFt, Register(kFt, "SCOPE-FEED-1"), D(2024, 3, 4));
  const pb::Case at_apec = Open(kApec, Register(kApec, "SCOPE-FEED-2"), D(2024, 3, 4));
  for (int day = 5; day < 9; ++day) {  // interleaved
    ASSERT_TRUE(Service(kFt, at_ft.name(), pb::SERVICE_KIND_INFORMATION, D(2024, 3, day)).ok());
    ASSERT_TRUE(Service(kApec, at_apec.name(), pb::SERVICE_KIND_INFORMATION, D(2024, 3, day)).ok());
  }
  const std::vector<pb::ActivityEvent> national = Feed(kNational);
  ASSERT_EQ(national.size(), 10u);
  for (const std::string op : {"ft", "apec"}) {
    std::vector<pb::ActivityEvent> expected;
    for (const pb::ActivityEvent& e : national) {
      if (e.operator_() == absl::StrCat("operators/", op)) expected.push_back(e);
    }
    ASSERT_EQ(expected.size(), 5u);
    const std::vector<pb::ActivityEvent> own = Feed(absl::StrCat("operator:", op));
    EXPECT_EQ(Keys(own), Keys(expected)) << op;
    for (size_t i = 0; i < own.size(); ++i) {
      EXPECT_EQ(Keys(Feed(absl::StrCat("operator:", op), own[i].cursor())), Keys(own, i + 1)) << op << " " << i;
    }
  }
  // A cursor is a position in the one feed: after another operator's cursor, the later own events.
  std::vector<std::string> ft_after;
  for (const pb::ActivityEvent& e : national) {
    if (e.operator_() == "operators/ft" && CursorValue(e) > CursorValue(national[3])) ft_after.push_back(Key(e));
  }
  EXPECT_EQ(national[3].operator_(), "operators/apec");
  EXPECT_EQ(Keys(Feed(kFt, national[3].cursor())), ft_after);
  EXPECT_TRUE(Feed(kMl).empty());

  // Reading the feed writes nothing.
  const size_t events = Activity().size();
  const size_t audit = AuditOf(at_ft.name()).size();

  grpc::Status st;
  for (const char* caller : {"region:53", "certifier:CPNE-IA", "jury-member:j1", "operator:ghost"}) {
    EXPECT_TRUE(Feed(caller, "", &st).empty());
    EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << caller;
  }
  Feed("", "", &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  for (const char* bad : {"abc", "-1", "+5", " 7", "7 ", "1e3", "0x10", "12345678901234567890"}) {
    EXPECT_TRUE(Feed(kNational, bad, &st).empty()) << bad;
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_TRUE(HasField(st, "after_cursor")) << bad << ": " << Fields(st);
    Feed(kFt, bad, &st);
    EXPECT_TRUE(HasField(st, "after_cursor")) << bad << ": " << Fields(st);
  }
  EXPECT_EQ(Activity().size(), events);
  EXPECT_EQ(AuditOf(at_ft.name()).size(), audit);
}

TEST_P(CepServiceTest, FollowingFeedDeliversNewEventsUntilTheClientCancels) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  const pb::Case c = Open(kFt, Register(kFt, "FOLLOW-0001"), D(2024, 3, 4));

  grpc::ClientContext ctx;
  ctx.AddMetadata(kPrincipalMetadata, kFt);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  pb::StreamActivityRequest req;
  req.set_follow(true);
  auto reader = stub_->StreamActivity(&ctx, req);
  pb::ActivityEvent opened;
  ASSERT_TRUE(reader->Read(&opened));
  EXPECT_EQ(opened.kind(), pb::ACTIVITY_KIND_CASE_OPENED);

  // Changes made after the stream started: another operator's (not in this feed), then its own.
  Open(kApec, Register(kApec, "FOLLOW-0002"), D(2024, 3, 5));
  ASSERT_TRUE(Service(kFt, c.name(), pb::SERVICE_KIND_INFORMATION, D(2024, 3, 6)).ok());
  pb::ActivityEvent next;
  ASSERT_TRUE(reader->Read(&next));
  EXPECT_EQ(next.kind(), pb::ACTIVITY_KIND_SERVICE_DELIVERED);
  EXPECT_EQ(next.case_(), c.name());
  EXPECT_EQ(next.operator_(), "operators/ft");
  EXPECT_GT(CursorValue(next), CursorValue(opened) + 1);  // the apec event in between is not ft's

  ctx.TryCancel();
  pb::ActivityEvent none;
  EXPECT_FALSE(reader->Read(&none));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The server's handler saw the cancellation: nothing is left for the shutdown to wait for.
  const absl::Time start = absl::Now();
  runner_->Shutdown();
  EXPECT_LT(absl::Now() - start, kDrainTimeout - absl::Seconds(1));
}

TEST_P(CepServiceTest, ShutdownEndsAFollowingFeedAtTheDrainDeadline) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  Open(kFt, Register(kFt, "DRAIN-0001"), D(2024, 3, 4));
  grpc::ClientContext ctx;
  ctx.AddMetadata(kPrincipalMetadata, kNational);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  pb::StreamActivityRequest req;
  req.set_follow(true);
  auto reader = stub_->StreamActivity(&ctx, req);
  pb::ActivityEvent e;
  ASSERT_TRUE(reader->Read(&e));  // the stream is live

  absl::Notification stopped;
  const absl::Time start = absl::Now();
  std::thread stopper([&] {
    runner_->Shutdown();
    stopped.Notify();
  });
  const bool ended = stopped.WaitForNotificationWithTimeout(kDrainTimeout + absl::Seconds(10));
  EXPECT_TRUE(ended) << "the shutdown hangs on a following feed";
  if (!ended) {
    stopper.detach();
    return;
  }
  stopper.join();
  // The stream is an in-flight call: the drain waited for it until the deadline, then cancelled it.
  EXPECT_GE(absl::Now() - start, kDrainTimeout - absl::Milliseconds(500));
  EXPECT_FALSE(reader->Read(&e));
  const grpc::Status s = reader->Finish();
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.error_code() == grpc::StatusCode::CANCELLED || s.error_code() == grpc::StatusCode::UNAVAILABLE)
      << s.error_code() << ": " << s.error_message();
}

TEST_P(CepServiceTest, AFeedClientThatStopsReadingIsCutOffAfterTheWriteTimeout) {
  // Far more than the HTTP/2 flow-control window (64 KiB without BDP probing) holds.
  constexpr int kEvents = 2000;
  ASSERT_TRUE(app_->repository()
                  .Transact([&](CepTx& tx) -> absl::Status {
                    for (int i = 0; i < kEvents; ++i) {
                      pb::ActivityEvent e;
                      e.set_kind(pb::ACTIVITY_KIND_SERVICE_DELIVERED);
                      e.set_operator_("operators/ft");
                      e.set_case_(absl::StrCat("cases/", i, std::string(300, 'x')));
                      e.set_beneficiary("beneficiaries/0123456789abcdef0123456789abcdef");
                      e.set_region("53");
                      e.set_month("2024-03");
                      if (auto cursor = tx.AppendActivity(e, clock_.Now()); !cursor.ok()) return cursor.status();
                    }
                    return absl::OkStatus();
                  })
                  .ok());
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  auto stub = pb::CepService::NewStub(grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", runner_->port()),
                                                                grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext ctx;
  ctx.AddMetadata(kPrincipalMetadata, kNational);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  pb::StreamActivityRequest req;
  req.set_follow(true);
  auto reader = stub->StreamActivity(&ctx, req);
  pb::ActivityEvent e;
  ASSERT_TRUE(reader->Read(&e));
  absl::SleepFor(absl::Seconds(5));  // reads nothing for more than the 2 s write timeout
  int received = 1;
  while (reader->Read(&e)) ++received;
  const grpc::Status s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::CANCELLED) << s.error_code() << ": " << s.error_message();
  EXPECT_LT(received, kEvents);
}

// --- Compliance ---------------------------------------------------------------------------------

TEST_P(CepServiceTest, ComplianceGivesEachOperatorsLastSharedActivityAndWhoIsSilentForSixMonths) {
  absl::TimeZone paris;
  ASSERT_TRUE(absl::LoadTimeZone("Europe/Paris", &paris));
  auto at_ten = [&](int y, int m, int d) { return absl::FromCivil(absl::CivilSecond(y, m, d, 10, 0, 0), paris); };
  SetToday(2024, 1, 2);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53", "52"});
  AddOperator("ml-nantes", pb::OPERATOR_KIND_MISSION_LOCALE, {"52"});
  AddOperator("reg-bzh", pb::OPERATOR_KIND_REGIONAL_EMPLOYED, {"53"});
  ASSERT_TRUE(Designate("reg-bzh", "53", D(2024, 1, 1), std::nullopt).ok());
  AddOperator("idle", pb::OPERATOR_KIND_CAP_EMPLOI, {"53"});

  SetToday(2024, 1, 15);
  Open(kFt, Register(kFt, "COMP-0001"), D(2024, 1, 15));
  SetToday(2024, 5, 20);
  Open(kApec, Register(kApec, "COMP-0002"), D(2024, 5, 20));
  SetToday(2024, 9, 2);
  Open("operator:ml-nantes", Register("operator:ml-nantes", "COMP-0003", "44"), D(2024, 9, 2));

  SetToday(2024, 11, 20);
  auto report = Compliance(kNational, D(2024, 11, 20));
  ASSERT_EQ(report.size(), 5u);
  auto last = [](const pb::OperatorCompliance& oc) { return FromTimestamp(oc.last_shared_activity()); };
  EXPECT_EQ(last(report["operators/ft"]), at_ten(2024, 1, 15));
  EXPECT_TRUE(report["operators/ft"].silent_six_months());
  EXPECT_EQ(last(report["operators/apec"]), at_ten(2024, 5, 20));
  EXPECT_FALSE(report["operators/apec"].silent_six_months());  // 2024-05-20 is the window's first day
  EXPECT_EQ(last(report["operators/ml-nantes"]), at_ten(2024, 9, 2));
  EXPECT_FALSE(report["operators/ml-nantes"].silent_six_months());
  for (const char* never : {"operators/reg-bzh", "operators/idle"}) {
    EXPECT_FALSE(report[never].has_last_shared_activity()) << never;
    EXPECT_TRUE(report[never].silent_six_months()) << never;
  }
  // One day later apec is silent too; unset as_of is today.
  EXPECT_TRUE(Compliance(kNational, D(2024, 11, 21))["operators/apec"].silent_six_months());
  auto today = Compliance(kNational, std::nullopt);
  EXPECT_FALSE(today["operators/apec"].silent_six_months());
  EXPECT_TRUE(today["operators/ft"].silent_six_months());

  // As of a past date: only what was shared by the end of that day.
  auto march = Compliance(kNational, D(2024, 3, 1));
  EXPECT_FALSE(march["operators/ft"].silent_six_months());
  EXPECT_FALSE(march["operators/apec"].has_last_shared_activity());
  // Nothing shared yet, but in the directory for 2 months only: not silent for 6.
  EXPECT_FALSE(march["operators/apec"].silent_six_months());
  // idle, entered on 2024-01-02 and never active: silent from 6 months later on.
  EXPECT_FALSE(Compliance(kNational, D(2024, 7, 2))["operators/idle"].silent_six_months());
  EXPECT_TRUE(Compliance(kNational, D(2024, 7, 3))["operators/idle"].silent_six_months());
  EXPECT_TRUE(Compliance(kNational, D(2024, 1, 15))["operators/ft"].has_last_shared_activity());
  EXPECT_FALSE(Compliance(kNational, D(2024, 1, 14))["operators/ft"].has_last_shared_activity());

  // A region sees the operators serving it or designated for it.
  std::set<std::string> bretagne, pays_de_la_loire;
  for (const auto& [name, oc] : Compliance("region:53", D(2024, 11, 20))) bretagne.insert(name);
  for (const auto& [name, oc] : Compliance("region:52", D(2024, 11, 20))) pays_de_la_loire.insert(name);
  EXPECT_EQ(bretagne, (std::set<std::string>{"operators/apec", "operators/ft", "operators/idle", "operators/reg-bzh"}));
  EXPECT_EQ(pays_de_la_loire, (std::set<std::string>{"operators/apec", "operators/ml-nantes"}));
  for (const char* caller : {kFt, "certifier:CPNE-IA", "region:99"}) {
    EXPECT_EQ(Status(caller, &Stub::GetComplianceReport, pb::GetComplianceReportRequest()).error_code(),
              grpc::StatusCode::PERMISSION_DENIED)
        << caller;
  }

  // The platform's events on an operator's cases are not its sharing: ft's case, inactive for
  // 2 years, gets a retention notice, and ft stays silent with the same last activity.
  SetToday(2026, 1, 20);
  EXPECT_EQ(Retention(D(2026, 1, 20)).notices_sent(), 1);
  auto later = Compliance(kNational, D(2026, 1, 20));
  EXPECT_EQ(last(later["operators/ft"]), at_ten(2024, 1, 15));
  EXPECT_TRUE(later["operators/ft"].silent_six_months());
  const std::vector<pb::ActivityEvent> ft_feed = Feed(kFt);
  ASSERT_FALSE(ft_feed.empty());
  EXPECT_EQ(ft_feed.back().kind(), pb::ACTIVITY_KIND_RETENTION_NOTICE);  // ft learns of it
}

// --- Erasure ------------------------------------------------------------------------------------

TEST_P(CepServiceTest, ErasureAnonymisesEveryCaseOfThePersonAndDeletesEveryContact) {
  SetToday(2024, 6, 3);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  AddOperator("ml-rennes", pb::OPERATOR_KIND_MISSION_LOCALE, {"53"});
  const pb::Beneficiary b = Register(kFt, "ERASE-0001");
  Register(kApec, "ERASE-0001");
  const pb::Beneficiary other = Register(kFt, "ERASE-0002");
  const pb::Case other_case = Open(kFt, other, D(2024, 5, 2));

  pb::OpenCaseRequest opening = Opening(b, D(2024, 5, 6));
  opening.mutable_case_()->set_external_id("FT-ERASE-0001");
  opening.mutable_case_()->mutable_project()->set_goal("Devenir ébéniste, atelier à Rennes");
  const pb::Case at_ft = MustCall(kFt, &Stub::OpenCase, opening);
  ASSERT_TRUE(Service(kFt, at_ft.name(), pb::SERVICE_KIND_TRAINING_PATH, D(2024, 5, 13)).ok());
  pb::RecordOutcomeRequest outcome;
  outcome.set_name(at_ft.name());
  outcome.mutable_outcome()->set_kind(pb::OUTCOME_KIND_VAE);
  *outcome.mutable_outcome()->mutable_date() = D(2024, 5, 27);
  outcome.mutable_outcome()->set_candidacy("candidacies/0f3a9c2b7d1e4a56");
  MustCall(kFt, &Stub::RecordOutcome, outcome);
  const pb::Case at_apec = Open(kApec, b, D(2024, 5, 2));
  ASSERT_TRUE(Close(kApec, at_apec.name(), D(2024, 6, 1)).ok());
  pb::RequestTransferRequest transfer;
  transfer.mutable_transfer()->set_case_(at_ft.name());
  transfer.mutable_transfer()->set_to_operator("operators/ml-rennes");
  transfer.mutable_transfer()->set_beneficiary_consent(true);
  transfer.mutable_transfer()->set_reason("Mme Martin déménage à Rennes");
  const pb::Transfer pending = MustCall(kFt, &Stub::RequestTransfer, transfer);

  // Only an operator that sees the person asks; the others learn nothing.
  pb::RequestErasureRequest req;
  req.set_beneficiary(b.name());
  req.set_reason("demande de la personne (article 17 RGPD)");
  EXPECT_EQ(Status(kMl, &Stub::RequestErasure, req).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Status(kNational, &Stub::RequestErasure, req).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  pb::RequestErasureRequest unknown;
  unknown.set_beneficiary("beneficiaries/00000000000000000000000000000000");
  EXPECT_EQ(Status(kFt, &Stub::RequestErasure, unknown).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Get(kApec, at_apec.name()).state(), pb::CASE_STATE_CLOSED);

  SetToday(2024, 6, 10);
  const size_t events_before = Activity().size();
  const pb::ErasureReceipt receipt = MustCall(kFt, &Stub::RequestErasure, req);
  EXPECT_EQ(receipt.beneficiary(), b.name());
  EXPECT_EQ(receipt.cases_anonymised(), 1);  // ft's own; apec's is anonymised too, not told
  EXPECT_EQ(FromTimestamp(receipt.time()), clock_.Now());

  // The holders still answer their cases: anonymised, statistics only.
  const pb::Case erased = Get(kFt, at_ft.name());
  EXPECT_EQ(erased.state(), pb::CASE_STATE_ANONYMISED);
  EXPECT_NE(erased.beneficiary(), b.name());  // the file left the person's pseudonym
  EXPECT_FALSE(erased.has_project());
  EXPECT_EQ(erased.external_id(), "");
  ASSERT_EQ(erased.outcomes_size(), 1);
  EXPECT_EQ(erased.outcomes(0).kind(), pb::OUTCOME_KIND_VAE);
  EXPECT_EQ(erased.outcomes(0).candidacy(), "");
  ASSERT_EQ(erased.services_size(), 1);
  EXPECT_EQ(erased.services(0).kind(), pb::SERVICE_KIND_TRAINING_PATH);
  EXPECT_EQ(erased.level(), "2019/2");
  EXPECT_EQ(erased.opening_date().day(), 6);
  ASSERT_GE(erased.history_size(), 2);
  const pb::CaseStateChange& last_change = erased.history(erased.history_size() - 1);
  EXPECT_EQ(last_change.from(), pb::CASE_STATE_OPEN);
  EXPECT_EQ(last_change.to(), pb::CASE_STATE_ANONYMISED);
  EXPECT_EQ(last_change.actor(), kFt);
  EXPECT_EQ(last_change.reason(), "demande de la personne (article 17 RGPD)");
  EXPECT_EQ(erased.history(0).reason(), "");
  const pb::Case erased_apec = Get(kApec, at_apec.name());
  EXPECT_EQ(erased_apec.state(), pb::CASE_STATE_ANONYMISED);
  EXPECT_EQ(erased_apec.closing_reason(), "");
  EXPECT_EQ(erased_apec.closing_date().day(), 1);
  const pb::CaseStateChange& apec_change = erased_apec.history(erased_apec.history_size() - 1);
  EXPECT_EQ(apec_change.from(), pb::CASE_STATE_CLOSED);
  EXPECT_EQ(apec_change.to(), pb::CASE_STATE_ANONYMISED);
  // apec learns that the person asked, not that ft was asked nor what ft wrote.
  EXPECT_EQ(apec_change.actor(), "erasure-request");
  EXPECT_EQ(apec_change.reason(), "erasure requested");
  EXPECT_EQ(erased_apec.DebugString().find("operator:ft"), std::string::npos) << erased_apec.DebugString();

  // No contact details at any operator; the beneficiary keeps its coarse attributes only.
  EXPECT_FALSE(ContactAt(b, "ft").has_value());
  EXPECT_FALSE(ContactAt(b, "apec").has_value());
  const pb::Beneficiary stored = StoredBeneficiary(b);
  EXPECT_TRUE(stored.anonymised());
  EXPECT_EQ(stored.birth_year(), 1988);
  EXPECT_EQ(stored.department(), "35");
  EXPECT_EQ(stored.region(), "53");
  pb::GetBeneficiaryRequest get_b;
  get_b.set_name(b.name());
  EXPECT_EQ(Status(kFt, &Stub::GetBeneficiary, get_b).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Status(kApec, &Stub::GetBeneficiary, get_b).error_code(), grpc::StatusCode::NOT_FOUND);
  // Another person's file is untouched.
  EXPECT_TRUE(ContactAt(other, "ft").has_value());
  EXPECT_EQ(Get(kFt, other_case.name()).state(), pb::CASE_STATE_OPEN);

  // The pending transfer is withdrawn and its free text gone.
  pb::ListTransfersResponse received = MustCall(kMl, &Stub::ListTransfers, pb::ListTransfersRequest());
  ASSERT_EQ(received.transfers_size(), 1);
  EXPECT_EQ(received.transfers(0).name(), pending.name());
  EXPECT_EQ(received.transfers(0).state(), pb::TRANSFER_STATE_REJECTED);
  EXPECT_EQ(received.transfers(0).reason().find("Martin"), std::string::npos) << received.transfers(0).reason();
  EXPECT_TRUE(PreconditionTypes(Accept(kMl, pending.name())).count("TRANSFER_NOT_PENDING"));

  // One ERASED event per case, for the case's operator, nothing personal.
  const std::vector<pb::ActivityEvent> events = Activity();
  ASSERT_EQ(events.size(), events_before + 2);
  std::map<std::string, std::string> erased_events;  // case -> operator
  for (size_t i = events_before; i < events.size(); ++i) {
    EXPECT_EQ(events[i].kind(), pb::ACTIVITY_KIND_ERASED);
    EXPECT_EQ(events[i].beneficiary(), b.name());
    EXPECT_EQ(events[i].month(), "2024-06");
    erased_events[events[i].case_()] = events[i].operator_();
  }
  EXPECT_EQ(erased_events, (std::map<std::string, std::string>{{at_ft.name(), "operators/ft"},
                                                                {at_apec.name(), "operators/apec"}}));
  // Traced: the request on the person and each case it changed, without personal data.
  auto has = [](const std::vector<AuditEntry>& entries, const std::string& action) {
    return std::any_of(entries.begin(), entries.end(),
                       [&](const AuditEntry& e) { return e.actor == kFt && e.action == action; });
  };
  EXPECT_TRUE(has(AuditOf(b.name()), "RequestErasure"));
  EXPECT_TRUE(has(AuditOf(at_ft.name()), "RequestErasure"));
  EXPECT_TRUE(has(AuditOf(at_apec.name()), "RequestErasure"));
  for (const AuditEntry& e : AuditOf(b.name())) EXPECT_EQ(e.detail.find("RGPD"), std::string::npos) << e.detail;

  // An anonymised case never changes again; a second request finds nobody.
  EXPECT_TRUE(PreconditionTypes(Service(kFt, at_ft.name(), pb::SERVICE_KIND_INFORMATION, D(2024, 6, 10)))
                  .count("CASE_ANONYMISED"));
  EXPECT_EQ(Status(kFt, &Stub::RequestErasure, req).error_code(), grpc::StatusCode::NOT_FOUND);
  // Nor is it transferred; and the erased person gets no new case before being registered again.
  grpc::Status move = Transfer(kFt, at_ft.name(), "operators/ml-rennes", true);
  EXPECT_TRUE(PreconditionTypes(move).count("CASE_NOT_TRANSFERABLE")) << move.error_message();
  EXPECT_EQ(TryOpen(kFt, b, D(2024, 6, 3)).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(CountCases("ml-rennes"), 0);

  // The person comes back later: registered again, a live beneficiary with a new file.
  SetToday(2025, 2, 3);
  const pb::Beneficiary again = Register(kApec, "ERASE-0001");
  EXPECT_EQ(again.name(), b.name());
  EXPECT_FALSE(again.anonymised());
  const pb::Case fresh = Open(kApec, again, D(2025, 2, 3));
  EXPECT_EQ(fresh.state(), pb::CASE_STATE_OPEN);
  EXPECT_EQ(Get(kApec, at_apec.name()).state(), pb::CASE_STATE_ANONYMISED);
  // Whoever knows the person's identifier gets the same name back, and finds none of the
  // anonymised files under it: they no longer carry the pseudonym.
  for (const char* op : {kApec, kFt}) {
    const pb::ListCasesResponse listed = MustCall(op, &Stub::ListCases, pb::ListCasesRequest());
    for (const pb::Case& c : listed.cases()) {
      if (c.name() != fresh.name()) {
        EXPECT_NE(c.beneficiary(), again.name()) << c.name();
      }
    }
  }
  EXPECT_EQ(MustCall(kApec, &Stub::ListCases, pb::ListCasesRequest()).cases_size(), 2);
}

// A person registered at two operators without a file anywhere: the erasure deletes both
// registrations and tells each operator, as retention tells it of a deleted registration (an
// ERASED event with no case), so their downstream copies of the person go too.
TEST_P(CepServiceTest, ErasureOfAPersonWithoutAFileTellsEachOperatorWhoseRegistrationGoes) {
  SetToday(2024, 6, 3);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53", "11"});
  AddOperator("ml-rennes", pb::OPERATOR_KIND_MISSION_LOCALE, {"53"});
  const pb::Beneficiary b = Register(kFt, "ERASE-NOFILE", "35");
  Register(kApec, "ERASE-NOFILE", "75");  // apec's own record: Paris
  const size_t events_before = Activity().size();

  pb::RequestErasureRequest req;
  req.set_beneficiary(b.name());
  const pb::ErasureReceipt receipt = MustCall(kFt, &Stub::RequestErasure, req);
  EXPECT_EQ(receipt.cases_anonymised(), 0);
  EXPECT_FALSE(ContactAt(b, "ft").has_value());
  EXPECT_FALSE(ContactAt(b, "apec").has_value());
  EXPECT_TRUE(StoredBeneficiary(b).anonymised());

  const std::vector<pb::ActivityEvent> events = Activity();
  std::multiset<std::string> erased;
  for (size_t i = events_before; i < events.size(); ++i) {
    const pb::ActivityEvent& e = events[i];
    erased.insert(absl::StrCat(pb::ActivityKind_Name(e.kind()), " ", e.operator_(), " case=", e.case_(), " ",
                               e.beneficiary(), " ", e.region(), " ", e.month()));
  }
  EXPECT_EQ(erased, (std::multiset<std::string>{
                        absl::StrCat("ACTIVITY_KIND_ERASED operators/apec case= ", b.name(), " 11 2024-06"),
                        absl::StrCat("ACTIVITY_KIND_ERASED operators/ft case= ", b.name(), " 53 2024-06")}));
  // Each operator reads its own on its feed; the platform's event is not its activity.
  const std::vector<pb::ActivityEvent> apec_feed = Feed(kApec);
  ASSERT_FALSE(apec_feed.empty());
  EXPECT_EQ(apec_feed.back().kind(), pb::ACTIVITY_KIND_ERASED);
  EXPECT_EQ(apec_feed.back().case_(), "");
  EXPECT_FALSE(Compliance(kNational, std::nullopt)["operators/apec"].has_last_shared_activity());
}

// --- Retention ----------------------------------------------------------------------------------

// A registration never followed by a file at its operator keeps contact details the case's
// retention never reaches: the operator's row gets the same clock (2 years without a write), a
// notice and deletion 30 days later; a write cancels the notice; a file there takes over.
TEST_P(CepServiceTest, RegistrationsWithoutAFileAreNoticedThenDeletedThirtyDaysLater) {
  SetToday(2023, 1, 10);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  const pb::Beneficiary alone = Register(kFt, "REG-ALONE");      // never a file anywhere
  const pb::Beneficiary touched = Register(kFt, "REG-TOUCHED");  // written again after its notice
  const pb::Beneficiary with_file = Register(kFt, "REG-FILE");   // ft's file decides
  const pb::Case file = Open(kFt, with_file, D(2023, 1, 10));
  const pb::Beneficiary elsewhere = Register(kApec, "REG-ELSEWHERE");  // a file at apec only
  Register(kFt, "REG-ELSEWHERE");
  const pb::Case at_apec = Open(kApec, elsewhere, D(2023, 1, 10));

  auto pass = [&](int y, int m, int d) {
    SetToday(y, m, d);
    pb::RunRetentionRequest r;
    *r.mutable_as_of() = D(y, m, d);
    return MustCall(kNational, &Stub::RunRetention, r);
  };
  const size_t events_before = Activity().size();
  pb::RetentionReport report = pass(2025, 3, 1);
  EXPECT_EQ(report.notices_sent(), 2);  // the two files
  EXPECT_EQ(report.registrations_noticed(), 3);
  std::multiset<std::string> notices;
  for (size_t i = events_before; i < Activity().size(); ++i) {
    const pb::ActivityEvent e = Activity()[i];
    if (e.case_().empty()) notices.insert(absl::StrCat(pb::ActivityKind_Name(e.kind()), " ", e.operator_(), " ", e.beneficiary()));
  }
  EXPECT_EQ(notices, (std::multiset<std::string>{
                         absl::StrCat("ACTIVITY_KIND_RETENTION_NOTICE operators/ft ", alone.name()),
                         absl::StrCat("ACTIVITY_KIND_RETENTION_NOTICE operators/ft ", touched.name()),
                         absl::StrCat("ACTIVITY_KIND_RETENTION_NOTICE operators/ft ", elsewhere.name())}));

  // A write of the row cancels its notice; a service keeps apec's file.
  SetToday(2025, 3, 15);
  pb::UpdateContactDetailsRequest contact;
  contact.mutable_contact()->set_beneficiary(touched.name());
  contact.mutable_contact()->set_email("toujours.la@example.org");
  MustCall(kFt, &Stub::UpdateContactDetails, contact);
  ASSERT_TRUE(Service(kApec, at_apec.name(), pb::SERVICE_KIND_INFORMATION, D(2025, 3, 15)).ok());

  report = pass(2025, 3, 30);  // 29 days: nothing
  EXPECT_EQ(report.registrations_deleted(), 0);
  EXPECT_TRUE(ContactAt(alone, "ft").has_value());
  report = pass(2025, 3, 31);
  EXPECT_EQ(report.files_anonymised(), 1);  // ft's file
  EXPECT_EQ(report.registrations_deleted(), 2);
  EXPECT_EQ(report.registrations_noticed(), 0);
  // The person without any file: no contact anywhere, coarse attributes only.
  EXPECT_FALSE(ContactAt(alone, "ft").has_value());
  EXPECT_TRUE(StoredBeneficiary(alone).anonymised());
  const std::vector<AuditEntry> trail = AuditOf(alone.name());
  EXPECT_TRUE(std::any_of(trail.begin(), trail.end(), [](const AuditEntry& e) {
    return e.actor == kNational && e.action == "RunRetention" &&
           absl::StartsWith(e.detail, "contact details deleted at operators/ft");
  }));
  // ft's record of the person apec still follows goes; apec's file and record stay.
  EXPECT_FALSE(ContactAt(elsewhere, "ft").has_value());
  EXPECT_TRUE(ContactAt(elsewhere, "apec").has_value());
  EXPECT_FALSE(StoredBeneficiary(elsewhere).anonymised());
  // The row written after its notice stays, with what was written.
  ASSERT_TRUE(ContactAt(touched, "ft").has_value());
  EXPECT_EQ(ContactAt(touched, "ft")->email(), "toujours.la@example.org");
  EXPECT_FALSE(StoredBeneficiary(touched).anonymised());
  EXPECT_EQ(Get(kFt, file.name()).state(), pb::CASE_STATE_ANONYMISED);
  EXPECT_FALSE(ContactAt(with_file, "ft").has_value());

  // Run again on the same date: nothing changes.
  report = pass(2025, 3, 31);
  EXPECT_EQ(report.registrations_noticed() + report.registrations_deleted() + report.notices_sent() +
                report.files_anonymised(),
            0);
}

// A pass re-run for a past date (after an outage) gives its notices today, not on that date:
// the file is anonymised 30 real days later, never on the day of the notice.
TEST_P(CepServiceTest, RetentionReRunForAPastDateDoesNotBackDateTheNotice) {
  SetToday(2023, 3, 1);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  const pb::Case inactive = Open(kFt, Register(kFt, "RET-PAST-1"), D(2023, 3, 1));
  SetToday(2025, 6, 1);
  pb::RunRetentionRequest past;
  *past.mutable_as_of() = D(2025, 4, 1);
  pb::RetentionReport r = MustCall(kNational, &Stub::RunRetention, past);
  EXPECT_EQ(r.notices_sent(), 1);
  EXPECT_EQ(r.files_anonymised(), 0);
  pb::RunRetentionRequest today;
  *today.mutable_as_of() = D(2025, 6, 1);
  r = MustCall(kNational, &Stub::RunRetention, today);
  EXPECT_EQ(r.files_anonymised(), 0);  // the notice is of today, not of 2025-04-01
  EXPECT_EQ(Get(kFt, inactive.name()).state(), pb::CASE_STATE_OPEN);
  SetToday(2025, 7, 1);
  *today.mutable_as_of() = D(2025, 7, 1);
  r = MustCall(kNational, &Stub::RunRetention, today);
  EXPECT_EQ(r.files_anonymised(), 1);
  const pb::Case anonymised = Get(kFt, inactive.name());
  EXPECT_EQ(anonymised.state(), pb::CASE_STATE_ANONYMISED);
  EXPECT_NE(anonymised.history(anonymised.history_size() - 1).reason().find("notice of 2025-06-01"), std::string::npos)
      << anonymised.history(anonymised.history_size() - 1).reason();
}

// A file's retention deletes its own operator's copy only: another operator that registered the
// person after the file's notice keeps its registration (its own clock), and the person stays live.
TEST_P(CepServiceTest, RetentionOfAFileKeepsAnotherOperatorsRecentRegistration) {
  SetToday(2023, 3, 1);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  const pb::Beneficiary person = Register(kFt, "RET-LATE-1");
  const pb::Case at_ft = Open(kFt, person, D(2023, 3, 1));
  SetToday(2025, 3, 2);
  EXPECT_EQ(Retention(D(2025, 3, 2)).notices_sent(), 1);
  // 12 days later apec registers the person, with contact details.
  SetToday(2025, 3, 14);
  EXPECT_EQ(Register(kApec, "RET-LATE-1").name(), person.name());

  SetToday(2025, 4, 1);
  const pb::RetentionReport report = Retention(D(2025, 4, 1));
  EXPECT_EQ(report.files_anonymised(), 1);
  EXPECT_EQ(report.registrations_deleted(), 0);
  EXPECT_EQ(Get(kFt, at_ft.name()).state(), pb::CASE_STATE_ANONYMISED);
  EXPECT_FALSE(ContactAt(person, "ft").has_value());
  // apec's acknowledged registration is still there and the person still live.
  ASSERT_TRUE(ContactAt(person, "apec").has_value());
  EXPECT_EQ(ContactAt(person, "apec")->email(), "elodie.martin@example.fr");
  EXPECT_FALSE(StoredBeneficiary(person).anonymised());
  pb::GetBeneficiaryRequest get;
  get.set_name(person.name());
  EXPECT_FALSE(MustCall(kApec, &Stub::GetBeneficiary, get).anonymised());
  EXPECT_EQ(Status(kFt, &Stub::GetBeneficiary, get).error_code(), grpc::StatusCode::NOT_FOUND);
  pb::Case fresh;
  const grpc::Status opened = TryOpen(kApec, person, D(2025, 4, 1), &fresh);
  EXPECT_TRUE(opened.ok()) << opened.error_code() << ": " << opened.error_message();
  EXPECT_EQ(fresh.state(), pb::CASE_STATE_OPEN);
}

// The same holds for the file's own operator: the person back at ft after the file's notice
// re-registers there; that registration has its own clock, and the file's retention leaves it.
TEST_P(CepServiceTest, RetentionOfAFileKeepsItsOperatorsRegistrationMadeAfterTheNotice) {
  SetToday(2023, 3, 1);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  const pb::Beneficiary person = Register(kFt, "RET-BACK-1");
  const pb::Case at_ft = Open(kFt, person, D(2023, 3, 1));
  SetToday(2025, 3, 2);
  EXPECT_EQ(Retention(D(2025, 3, 2)).notices_sent(), 1);
  // 12 days later the person comes back to ft, which registers them again.
  SetToday(2025, 3, 14);
  EXPECT_EQ(Register(kFt, "RET-BACK-1").name(), person.name());

  SetToday(2025, 4, 1);
  const pb::RetentionReport report = Retention(D(2025, 4, 1));
  EXPECT_EQ(report.files_anonymised(), 1);
  EXPECT_EQ(report.registrations_deleted(), 0);
  EXPECT_EQ(Get(kFt, at_ft.name()).state(), pb::CASE_STATE_ANONYMISED);
  // ft's new registration is still there and the person still live.
  ASSERT_TRUE(ContactAt(person, "ft").has_value());
  EXPECT_EQ(ContactAt(person, "ft")->email(), "elodie.martin@example.fr");
  EXPECT_FALSE(StoredBeneficiary(person).anonymised());
  pb::GetBeneficiaryRequest get;
  get.set_name(person.name());
  EXPECT_FALSE(MustCall(kFt, &Stub::GetBeneficiary, get).anonymised());
  pb::Case fresh;
  const grpc::Status opened = TryOpen(kFt, person, D(2025, 4, 1), &fresh);
  EXPECT_TRUE(opened.ok()) << opened.error_code() << ": " << opened.error_message();
  EXPECT_EQ(fresh.state(), pb::CASE_STATE_OPEN);
}

// An update that changes nothing (the same demands sent again, the level the case has) is no
// activity: nothing on the feed, the case as it was, and the retention notice runs on.
TEST_P(CepServiceTest, AnUpdateThatChangesNothingDoesNotCancelTheRetentionNotice) {
  SetToday(2023, 3, 1);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  const pb::Case opened = Open(kFt, Register(kFt, "RET-NOOP-1"), D(2023, 3, 1));
  SetToday(2025, 3, 2);
  EXPECT_EQ(Retention(D(2025, 3, 2)).notices_sent(), 1);

  SetToday(2025, 3, 10);
  const pb::Case noticed = Get(kFt, opened.name());
  const size_t events_before = Activity().size();
  pb::UpdateCaseRequest same;
  same.mutable_case_()->set_name(opened.name());
  same.mutable_case_()->add_demands(pb::DEMAND_KIND_PROJECT);
  same.mutable_update_mask()->add_paths("demands");
  const pb::Case updated = MustCall(kFt, &Stub::UpdateCase, same);
  EXPECT_EQ(updated.etag(), noticed.etag());
  EXPECT_EQ(FromTimestamp(updated.last_activity_time()), FromTimestamp(noticed.last_activity_time()));
  pb::ChangeLevelRequest level;
  level.set_name(opened.name());
  level.set_level(noticed.level());
  EXPECT_EQ(MustCall(kFt, &Stub::ChangeLevel, level).etag(), noticed.etag());
  EXPECT_EQ(Activity().size(), events_before);

  SetToday(2025, 4, 1);
  EXPECT_EQ(Retention(D(2025, 4, 1)).files_anonymised(), 1);
  EXPECT_EQ(Get(kFt, opened.name()).state(), pb::CASE_STATE_ANONYMISED);
}

TEST_P(CepServiceTest, RetentionNoticesFilesInactiveForTwoYearsThenAnonymisesThemThirtyDaysLater) {
  SetToday(2023, 3, 1);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  const pb::Beneficiary both = Register(kFt, "RET-0001");  // a file at ft (inactive) and at apec (active)
  Register(kApec, "RET-0001");
  const pb::Beneficiary touched = Register(kFt, "RET-0002");
  const pb::Beneficiary single = Register(kFt, "RET-0003");
  const pb::Beneficiary moved = Register(kFt, "RET-0004");
  const pb::Case inactive = Open(kFt, both, D(2023, 3, 1));
  const pb::Case kept = Open(kFt, touched, D(2023, 3, 1));
  const pb::Case closed = Open(kFt, single, D(2023, 3, 1));
  ASSERT_TRUE(Close(kFt, closed.name(), D(2023, 3, 1)).ok());
  pb::Transfer t;
  ASSERT_TRUE(Transfer(kFt, Open(kFt, moved, D(2023, 3, 1)).name(), "operators/apec", true, &t).ok());
  pb::Transfer accepted;
  ASSERT_TRUE(Accept(kApec, t.name(), &accepted).ok());  // ft keeps a TRANSFERRED record
  SetToday(2024, 6, 1);
  const pb::Case active = Open(kApec, both, D(2024, 6, 1));

  auto kinds = [&](pb::ActivityKind kind) {
    std::map<std::string, std::string> out;  // case -> operator
    for (const pb::ActivityEvent& e : Activity()) {
      if (e.kind() == kind) out[e.case_()] = e.operator_();
    }
    return out;
  };
  auto expect_report = [&](google::type::Date as_of, int notices, int anonymised) {
    const pb::RetentionReport r = Retention(as_of);
    EXPECT_EQ(r.notices_sent(), notices) << as_of.ShortDebugString();
    EXPECT_EQ(r.files_anonymised(), anonymised) << as_of.ShortDebugString();
  };

  // Exactly 2 years of inactivity: nothing yet.
  SetToday(2025, 3, 1);
  expect_report(D(2025, 3, 1), 0, 0);
  // 2 years and a day: a notice for each inactive file, whatever its state.
  SetToday(2025, 3, 2);
  expect_report(D(2025, 3, 2), 5, 0);
  const std::map<std::string, std::string> noticed = {{inactive.name(), "operators/ft"},
                                                       {kept.name(), "operators/ft"},
                                                       {closed.name(), "operators/ft"},
                                                       {t.case_(), "operators/ft"},
                                                       {accepted.new_case(), "operators/apec"}};
  EXPECT_EQ(kinds(pb::ACTIVITY_KIND_RETENTION_NOTICE), noticed);
  const size_t after_notices = Activity().size();
  expect_report(D(2025, 3, 2), 0, 0);  // the same date again changes nothing
  EXPECT_EQ(Activity().size(), after_notices);

  // New activity on a noticed file cancels its notice.
  SetToday(2025, 3, 10);
  ASSERT_TRUE(Service(kFt, kept.name(), pb::SERVICE_KIND_INFORMATION, D(2025, 3, 10)).ok());
  // 29 days after the notice: nothing.
  SetToday(2025, 3, 31);
  expect_report(D(2025, 3, 31), 0, 0);
  EXPECT_EQ(Get(kFt, inactive.name()).state(), pb::CASE_STATE_OPEN);
  // 30 days: the files still inactive are anonymised; the touched one is kept.
  SetToday(2025, 4, 1);
  expect_report(D(2025, 4, 1), 0, 4);
  EXPECT_EQ(kinds(pb::ACTIVITY_KIND_ANONYMISED),
            (std::map<std::string, std::string>{{inactive.name(), "operators/ft"},
                                                {closed.name(), "operators/ft"},
                                                {t.case_(), "operators/ft"},
                                                {accepted.new_case(), "operators/apec"}}));
  const pb::Case anonymised = Get(kFt, inactive.name());
  EXPECT_EQ(anonymised.state(), pb::CASE_STATE_ANONYMISED);
  EXPECT_EQ(anonymised.history(anonymised.history_size() - 1).actor(), kNational);
  EXPECT_NE(anonymised.beneficiary(), inactive.beneficiary());  // no longer the person's pseudonym
  EXPECT_EQ(Get(kFt, closed.name()).closing_reason(), "");
  const pb::Case still = Get(kFt, kept.name());
  EXPECT_EQ(still.state(), pb::CASE_STATE_OPEN);
  EXPECT_EQ(still.services_size(), 1);
  EXPECT_EQ(Get(kApec, accepted.new_case()).state(), pb::CASE_STATE_ANONYMISED);
  // The former holder's transferred record stays out of its reach, anonymised or not.
  pb::GetCaseRequest get_record;
  get_record.set_name(t.case_());
  EXPECT_EQ(Status(kFt, &Stub::GetCase, get_record).error_code(), grpc::StatusCode::NOT_FOUND);
  std::set<std::string> listed;
  const pb::ListCasesResponse ft_cases = MustCall(kFt, &Stub::ListCases, pb::ListCasesRequest());
  for (const pb::Case& c : ft_cases.cases()) listed.insert(c.name());
  EXPECT_EQ(listed, (std::set<std::string>{inactive.name(), kept.name(), closed.name()}));

  // Per beneficiary: a person with a live file elsewhere keeps it and its contact details there.
  EXPECT_FALSE(ContactAt(both, "ft").has_value());
  const std::vector<AuditEntry> both_audit = AuditOf(both.name());
  EXPECT_TRUE(std::any_of(both_audit.begin(), both_audit.end(), [](const AuditEntry& e) {
    return e.actor == kNational && e.action == "RunRetention" && e.detail == "contact details deleted at operators/ft";
  }));
  EXPECT_TRUE(ContactAt(both, "apec").has_value());
  EXPECT_FALSE(StoredBeneficiary(both).anonymised());
  EXPECT_EQ(Get(kApec, active.name()).state(), pb::CASE_STATE_OPEN);
  // A person whose every file is anonymised: no contact anywhere, anonymised.
  for (const pb::Beneficiary& gone : {single, moved}) {
    const std::vector<AuditEntry> trail = AuditOf(gone.name());  // traced on the person, not the file's new name
    EXPECT_TRUE(std::any_of(trail.begin(), trail.end(), [](const AuditEntry& e) {
      return e.action == "RunRetention" && e.detail == "ANONYMISED";
    })) << gone.name();
    EXPECT_FALSE(ContactAt(gone, "ft").has_value()) << gone.name();
    EXPECT_FALSE(ContactAt(gone, "apec").has_value()) << gone.name();
    EXPECT_TRUE(StoredBeneficiary(gone).anonymised()) << gone.name();
  }
  EXPECT_TRUE(ContactAt(touched, "ft").has_value());
  EXPECT_FALSE(StoredBeneficiary(touched).anonymised());

  // Run again on the same date: nothing changes.
  const size_t after_anonymisation = Activity().size();
  expect_report(D(2025, 4, 1), 0, 0);
  EXPECT_EQ(Activity().size(), after_anonymisation);

  // National only.
  pb::RunRetentionRequest req;
  *req.mutable_as_of() = D(2025, 4, 1);
  EXPECT_EQ(Status(kFt, &Stub::RunRetention, req).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Status("region:53", &Stub::RunRetention, req).error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

// --- Bulk import --------------------------------------------------------------------------------

// Row n of an import stream: person "P-<n % 700>" (some people have several cases), opened in 2021
// in Ille-et-Vilaine, one service on the opening day; odd rows closed on 2022-06-30, every tenth
// with a job found after the closing.
pb::ImportedCase ImportRow(int n, const std::string& department = "35") {
  pb::ImportedCase r;
  r.set_external_id(absl::StrCat("E-", n));
  r.set_beneficiary_external_id(absl::StrCat("P-", n % 700));
  pb::Beneficiary* b = r.mutable_beneficiary();
  b->set_birth_year(1970 + n % 30);
  b->set_sex(n % 2 == 0 ? pb::SEX_FEMALE : pb::SEX_MALE);
  b->set_department(department);
  b->set_status(pb::EMPLOYMENT_STATUS_JOB_SEEKER);
  b->set_qualification_level(n % 9);
  *r.mutable_opening_date() = D(2021, 1 + n % 12, 1 + n % 28);
  r.set_level(n % 4 == 0 ? "2014/3" : "2019/2");
  r.add_demands(pb::DEMAND_KIND_PROJECT);
  if (n % 3 == 0) r.add_demands(pb::DEMAND_KIND_TAKE_STOCK);
  pb::DeliveredService* s = r.add_services();
  s->set_kind(pb::SERVICE_KIND_INFORMATION);
  *s->mutable_date() = r.opening_date();
  if (n % 2 == 1) {
    *r.mutable_closing_date() = D(2022, 6, 30);
    r.set_closing_reason("projet formalisé");
    if (n % 10 == 1) {
      pb::Outcome* o = r.add_outcomes();
      o->set_kind(pb::OUTCOME_KIND_JOB);
      *o->mutable_date() = D(2022, 9, 1);
    }
  }
  return r;
}

class CepImportTest : public CepServiceTest {
 protected:
  grpc::Status Import(const std::string& principal, const std::vector<std::vector<pb::ImportedCase>>& messages,
                      pb::ImportCasesResponse* out) {
    grpc::ClientContext ctx;
    if (!principal.empty()) ctx.AddMetadata(kPrincipalMetadata, principal);
    auto writer = stub_->ImportCases(&ctx, out);
    for (const auto& message : messages) {
      pb::ImportCasesRequest req;
      for (const pb::ImportedCase& row : message) *req.add_cases() = row;
      if (!writer->Write(req)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }

  std::string CaseOf(const std::string& operator_id, const std::string& external_id) {
    std::string name;
    EXPECT_TRUE(app_->repository()
                    .Transact([&](CepTx& tx) -> absl::Status {
                      auto found = tx.FindCaseByExternalId(operator_id, external_id);
                      if (!found.ok()) return found.status();
                      if (found->has_value()) name = **found;
                      return absl::OkStatus();
                    })
                    .ok());
    return name;
  }
};

// A stream cancelled before its end (the client gone, its deadline, a drain) writes no partial
// tail: the rows that came after the last full batch are not the client's whole history, and the
// client, told CANCELLED, replays them anyway.
TEST_P(CepImportTest, ACancelledStreamWritesNoTail) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  grpc::ClientContext ctx;
  ctx.AddMetadata(kPrincipalMetadata, kFt);
  pb::ImportCasesResponse out;
  auto writer = stub_->ImportCases(&ctx, &out);
  pb::ImportCasesRequest req;
  *req.add_cases() = ImportRow(1);
  *req.add_cases() = ImportRow(2);
  ASSERT_TRUE(writer->Write(req));
  absl::SleepFor(absl::Milliseconds(200));  // the server has read the rows and waits for more
  ctx.TryCancel();
  EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::CANCELLED);
  absl::SleepFor(absl::Milliseconds(300));  // the handler has ended
  EXPECT_EQ(CountCases("ft"), 0);

  pb::ImportCasesResponse replay;
  ASSERT_TRUE(Import(kFt, {{ImportRow(1), ImportRow(2)}}, &replay).ok());
  EXPECT_EQ(replay.cases_created(), 2);
}

// Importing the same history again after an erasure changes nothing: the erased file is found by
// its external id's kept hash (unchanged), and the person is not brought back.
TEST_P(CepImportTest, AnErasedFileIsNotImportedAgain) {
  SetToday(2024, 1, 15);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  pb::ImportCasesResponse first;
  ASSERT_TRUE(Import(kFt, {{ImportRow(1), ImportRow(2)}}, &first).ok());
  ASSERT_EQ(first.cases_created(), 2);
  const pb::Case erased_case = Get(kFt, CaseOf("ft", "E-1"));
  pb::RequestErasureRequest erase;
  erase.set_beneficiary(erased_case.beneficiary());
  MustCall(kFt, &Stub::RequestErasure, erase);
  ASSERT_EQ(CaseOf("ft", "E-1"), "");  // the external id is gone with the rest
  const int cases_before = CountCases("ft");

  pb::ImportCasesResponse again;
  ASSERT_TRUE(Import(kFt, {{ImportRow(1), ImportRow(2)}}, &again).ok());
  EXPECT_EQ(again.cases_created(), 0);
  EXPECT_EQ(again.cases_unchanged(), 2);
  pb::Beneficiary person;
  person.set_name(erased_case.beneficiary());
  EXPECT_TRUE(StoredBeneficiary(person).anonymised());
  EXPECT_EQ(CaseOf("ft", "E-1"), "");
  EXPECT_EQ(CountCases("ft"), cases_before);
  // Another operator's history with the same external id is its own (of another person: the
  // erased one gets no new file at any operator).
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  pb::ImportedCase apec_row = ImportRow(1);
  apec_row.set_beneficiary_external_id("P-APEC-1");
  pb::ImportCasesResponse elsewhere;
  ASSERT_TRUE(Import(kApec, {{apec_row}}, &elsewhere).ok());
  EXPECT_EQ(elsewhere.cases_created(), 1);
  pb::ImportedCase erased_row = ImportRow(1);
  erased_row.set_external_id("A-1");
  pb::ImportCasesResponse erased_elsewhere;
  ASSERT_TRUE(Import(kApec, {{erased_row}}, &erased_elsewhere).ok());
  EXPECT_EQ(erased_elsewhere.cases_created(), 0);
  ASSERT_EQ(erased_elsewhere.errors_size(), 1);
  EXPECT_EQ(erased_elsewhere.errors(0).field(), "beneficiary_external_id");
  EXPECT_TRUE(StoredBeneficiary(person).anonymised());
}

// A row refused before an erasure and corrected afterwards does not bring the erased person back:
// OpenCase's rule (BENEFICIARY_ANONYMISED), reported on the row, nothing written for it. The
// person registered again (they came back) is imported as anyone.
TEST_P(CepImportTest, ACorrectedRowOfAnErasedPersonIsRefusedAndWritesNothing) {
  SetToday(2024, 1, 15);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  pb::ImportedCase good = ImportRow(1);
  pb::ImportedCase bad = ImportRow(3);  // the same person, a level that does not exist
  bad.set_beneficiary_external_id(good.beneficiary_external_id());
  bad.set_level("2019/9");
  pb::ImportCasesResponse first;
  ASSERT_TRUE(Import(kFt, {{good, bad}}, &first).ok());
  ASSERT_EQ(first.cases_created(), 1);
  ASSERT_EQ(first.errors_size(), 1);
  const pb::Case imported = Get(kFt, CaseOf("ft", "E-1"));
  pb::RequestErasureRequest erase;
  erase.set_beneficiary(imported.beneficiary());
  MustCall(kFt, &Stub::RequestErasure, erase);
  const int cases_before = CountCases("ft");
  const size_t events_before = Activity().size();

  bad.set_level("2019/2");
  pb::ImportCasesResponse again;
  ASSERT_TRUE(Import(kFt, {{good, bad}}, &again).ok());
  EXPECT_EQ(again.cases_created(), 0);
  EXPECT_EQ(again.cases_unchanged(), 1);  // E-1, erased
  ASSERT_EQ(again.errors_size(), 1);
  EXPECT_EQ(again.errors(0).line(), 2);
  EXPECT_EQ(again.errors(0).external_id(), "E-3");
  EXPECT_EQ(again.errors(0).field(), "beneficiary_external_id");
  EXPECT_TRUE(absl::StrContains(again.errors(0).reason(), "BENEFICIARY_ANONYMISED")) << again.errors(0).reason();
  // The person stays erased: no file, no record at ft, nothing on the feed.
  pb::Beneficiary person;
  person.set_name(imported.beneficiary());
  EXPECT_TRUE(StoredBeneficiary(person).anonymised());
  EXPECT_FALSE(ContactAt(person, "ft").has_value());
  pb::GetBeneficiaryRequest get;
  get.set_name(person.name());
  EXPECT_EQ(Status(kFt, &Stub::GetBeneficiary, get).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(CaseOf("ft", "E-3"), "");
  EXPECT_EQ(CountCases("ft"), cases_before);
  EXPECT_EQ(Activity().size(), events_before);

  // The person comes back and is registered again: the corrected row is imported.
  SetToday(2024, 3, 1);
  MustCall(kFt, &Stub::RegisterBeneficiary, Registration(good.beneficiary_external_id()));
  pb::ImportCasesResponse back;
  ASSERT_TRUE(Import(kFt, {{bad}}, &back).ok());
  EXPECT_EQ(back.cases_created(), 1);
  EXPECT_EQ(back.errors_size(), 0);
  EXPECT_EQ(Get(kFt, CaseOf("ft", "E-3")).beneficiary(), person.name());
}

// An imported file's last activity is the latest date of its history, not the import: retention
// notices a file inactive for two years on the next pass.
TEST_P(CepImportTest, AnImportedFileIsInactiveSinceItsLatestDate) {
  SetToday(2024, 1, 15);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  // Row 1: closed 2022-06-30, job found 2022-09-01. Row 2: open, opened and served 2021-03-03.
  pb::ImportCasesResponse response;
  ASSERT_TRUE(Import(kFt, {{ImportRow(1), ImportRow(2)}}, &response).ok());
  ASSERT_EQ(response.cases_created(), 2);
  const absl::TimeZone paris = [] {
    absl::TimeZone tz;
    EXPECT_TRUE(absl::LoadTimeZone("Europe/Paris", &tz));
    return tz;
  }();
  auto last_day = [&](const std::string& external_id) {
    return absl::ToCivilDay(FromTimestamp(Get(kFt, CaseOf("ft", external_id)).last_activity_time()), paris);
  };
  EXPECT_EQ(last_day("E-1"), absl::CivilDay(2022, 9, 1));
  EXPECT_EQ(last_day("E-2"), absl::CivilDay(2021, 3, 3));
  // Two years after 2021-03-03, not after 2022-09-01: one notice.
  EXPECT_EQ(Retention(D(2024, 1, 15)).notices_sent(), 1);
}

TEST_P(CepImportTest, GoodRowsAreImportedBadRowsReportedAndKnownExternalIdsLeftUnchanged) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  // An earlier import of rows 1..5 (row 3 has an unknown level).
  std::vector<pb::ImportedCase> earlier;
  for (int n = 1; n <= 5; ++n) earlier.push_back(ImportRow(n));
  earlier[2].set_level("2019/9");
  pb::ImportCasesResponse first;
  ASSERT_TRUE(Import(kFt, {earlier}, &first).ok());
  EXPECT_EQ(first.rows_received(), 5);
  EXPECT_EQ(first.cases_created(), 4);
  EXPECT_EQ(first.cases_unchanged(), 0);
  ASSERT_EQ(first.errors_size(), 1);
  EXPECT_EQ(first.errors(0).line(), 3);

  // 2,500 rows in three messages: three batches of the service (1,000 rows each).
  std::vector<pb::ImportedCase> rows;
  for (int n = 1; n <= 2500; ++n) rows.push_back(ImportRow(n));
  auto special = [&](int line) -> pb::ImportedCase& {
    pb::ImportedCase& r = rows[static_cast<size_t>(line - 1)];
    r.set_beneficiary_external_id(absl::StrCat("P-special-", line));
    return r;
  };
  special(3).set_level("2019/9");                                               // unknown level
  *special(1500).mutable_opening_date() = D(2099, 1, 4);                        // future
  *special(1999).mutable_services(0)->mutable_date() = D(2020, 1, 1);           // before the opening
  special(2001).mutable_beneficiary()->set_department("99");                    // no such department
  special(2100).clear_external_id();                                            // idempotency key missing
  *special(2201).mutable_closing_date() = D(2020, 12, 31);                      // closing before the opening
  special(2300).mutable_beneficiary()->set_department("44");                    // region 52: not served
  rows[2399] = rows[9];                                                         // line 2400 repeats line 10
  std::vector<std::vector<pb::ImportedCase>> messages = {
      {rows.begin(), rows.begin() + 900}, {rows.begin() + 900, rows.begin() + 1800}, {rows.begin() + 1800, rows.end()}};

  pb::ImportCasesResponse response;
  grpc::Status s = Import(kFt, messages, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.rows_received(), 2500);
  EXPECT_EQ(response.cases_unchanged(), 5);  // lines 1, 2, 4, 5 (earlier import) and 2400 (line 10)
  EXPECT_EQ(response.cases_created(), 2500 - 5 - 7);
  std::map<int64_t, std::set<std::string>> fields;
  for (const pb::ImportRowError& e : response.errors()) {
    fields[e.line()].insert(e.field());
    EXPECT_FALSE(e.reason().empty()) << e.line();
    if (e.line() != 2100) {
      EXPECT_EQ(e.external_id(), absl::StrCat("E-", e.line()));
    }
  }
  EXPECT_EQ(fields, (std::map<int64_t, std::set<std::string>>{{3, {"level"}},
                                                              {1500, {"opening_date"}},
                                                              {1999, {"services[0].date"}},
                                                              {2001, {"beneficiary.department"}},
                                                              {2100, {"external_id"}},
                                                              {2201, {"closing_date"}},
                                                              {2300, {"opening_date"}}}))
      << response.DebugString().substr(0, 3000);
  for (int i = 1; i < response.errors_size(); ++i) EXPECT_LT(response.errors(i - 1).line(), response.errors(i).line());
  for (const pb::ImportRowError& e : response.errors()) {
    if (e.line() == 2300) {
      EXPECT_NE(e.reason().find("not designated"), std::string::npos) << e.reason();
    }
    if (e.line() == 3) {
      EXPECT_NE(e.reason().find("2019/9"), std::string::npos) << e.reason();
    }
  }
  EXPECT_EQ(CountCases("ft"), 4 + response.cases_created());
  EXPECT_TRUE(CaseOf("ft", "E-2300").empty());
  EXPECT_TRUE(CaseOf("ft", "E-1500").empty());

  // An imported case is the one OpenCase + RecordService + RecordOutcome + CloseCase would leave.
  const std::string name = CaseOf("ft", "E-11");
  ASSERT_FALSE(name.empty());
  const pb::Case c = Get(kFt, name);
  const pb::ImportedCase& row = rows[10];
  EXPECT_EQ(c.operator_(), "operators/ft");
  EXPECT_EQ(c.state(), pb::CASE_STATE_CLOSED);
  EXPECT_EQ(c.external_id(), "E-11");
  EXPECT_EQ(c.level(), row.level());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(c.opening_date(), row.opening_date()));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(c.closing_date(), D(2022, 6, 30)));
  EXPECT_EQ(c.closing_reason(), "projet formalisé");
  ASSERT_EQ(c.services_size(), 1);
  ASSERT_EQ(c.outcomes_size(), 1);
  EXPECT_EQ(c.outcomes(0).kind(), pb::OUTCOME_KIND_JOB);
  ASSERT_EQ(c.history_size(), 2);
  EXPECT_EQ(c.history(0).to(), pb::CASE_STATE_OPEN);
  EXPECT_EQ(c.history(1).from(), pb::CASE_STATE_OPEN);
  EXPECT_EQ(c.history(1).to(), pb::CASE_STATE_CLOSED);
  EXPECT_EQ(c.history(1).actor(), kFt);
  EXPECT_EQ(c.beneficiary(), absl::StrCat("beneficiaries/", Pseudonym(kDevelopmentPseudonymKey, "P-11")));
  pb::GetBeneficiaryRequest get_b;
  get_b.set_name(c.beneficiary());
  const pb::Beneficiary b = MustCall(kFt, &Stub::GetBeneficiary, get_b);
  EXPECT_EQ(b.region(), "53");  // filled from the department
  EXPECT_EQ(b.birth_year(), row.beneficiary().birth_year());
  // An open one, listed with the others.
  const pb::Case open = Get(kFt, CaseOf("ft", "E-12"));
  EXPECT_EQ(open.state(), pb::CASE_STATE_OPEN);
  pb::ListCasesRequest list;
  list.set_filter("state=OPEN");
  list.set_page_size(1000);
  const pb::ListCasesResponse listed = MustCall(kFt, &Stub::ListCases, list);
  EXPECT_EQ(listed.cases_size(), 1000);  // the largest page; more follow
  EXPECT_FALSE(listed.next_page_token().empty());

  // The feed: one CASE_IMPORTED per created case (its month the opening's), in line order, and
  // nothing else; one audit entry per batch.
  std::vector<std::string> opened;
  for (const pb::ActivityEvent& e : Activity()) {
    EXPECT_EQ(e.kind(), pb::ACTIVITY_KIND_CASE_IMPORTED);
    opened.push_back(e.case_());
  }
  ASSERT_EQ(static_cast<int64_t>(opened.size()), 4 + response.cases_created());
  std::vector<int> lines;
  ASSERT_TRUE(app_->repository()
                  .Transact([&](CepTx& tx) -> absl::Status {
                    for (const std::string& case_name : opened) {
                      auto got = tx.GetCase(case_name.substr(std::string("cases/").size()));
                      if (!got.ok()) return got.status();
                      int n = 0;
                      EXPECT_TRUE(absl::SimpleAtoi(got->value.external_id().substr(2), &n));
                      lines.push_back(n);
                    }
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_TRUE(std::is_sorted(lines.begin() + 4, lines.end()));
  std::vector<std::string> details;
  for (const AuditEntry& a : AuditOf("operators/ft")) {
    if (a.action == "ImportCases") details.push_back(a.detail);
  }
  EXPECT_EQ(details, (std::vector<std::string>{"rows 1..5", "rows 1..1000", "rows 1001..2000", "rows 2001..2500"}));

  // The same stream again creates nothing.
  const size_t events = Activity().size();
  pb::ImportCasesResponse again;
  ASSERT_TRUE(Import(kFt, messages, &again).ok());
  EXPECT_EQ(again.rows_received(), 2500);
  EXPECT_EQ(again.cases_created(), 0);
  EXPECT_EQ(again.cases_unchanged(), 2500 - 7);
  EXPECT_EQ(again.errors_size(), 7);
  EXPECT_EQ(Activity().size(), events);
  EXPECT_EQ(CountCases("ft"), 4 + response.cases_created());
}

// An operator importing alone gets transactions of import.max_batch_rows rows: 2,500 rows on one
// stream are one batch at the default 4,000 (the fixture's 1,000 made three).
TEST_P(CepImportTest, OneStreamAloneIsWrittenInTheLargestBatches) {
  StartApp({{"import.max_batch_rows", "4000"}});
  SetToday(2024, 3, 20);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  std::vector<pb::ImportedCase> rows;
  for (int n = 1; n <= 2500; ++n) rows.push_back(ImportRow(n));
  std::vector<std::vector<pb::ImportedCase>> messages;
  for (size_t i = 0; i < rows.size(); i += 300) {
    messages.emplace_back(rows.begin() + i, rows.begin() + std::min(rows.size(), i + 300));
  }
  pb::ImportCasesResponse response;
  ASSERT_TRUE(Import(kFt, messages, &response).ok());
  EXPECT_EQ(response.cases_created(), 2500);
  std::vector<std::string> details;
  for (const AuditEntry& a : AuditOf("operators/ft")) {
    if (a.action == "ImportCases") details.push_back(a.detail);
  }
  EXPECT_EQ(details, (std::vector<std::string>{"rows 1..2500"}));
  EXPECT_FALSE(App::Create(Config::FromMap({{"database.dsn", dsn_}, {"import.max_batch_rows", "0"}})).ok());
}

TEST_P(CepImportTest, RegionalOperatorImportsOnlyInsideItsDesignationAndErrorsAreCapped) {
  AddOperator("reg-bzh", pb::OPERATOR_KIND_REGIONAL_EMPLOYED, {"53"});
  ASSERT_TRUE(Designate("reg-bzh", "53", D(2021, 1, 1), D(2021, 6, 30)).ok());
  std::vector<pb::ImportedCase> rows;
  for (int n = 1; n <= 12; ++n) {
    pb::ImportedCase r = ImportRow(n);
    *r.mutable_opening_date() = D(2021, n, 10);
    *r.mutable_services(0)->mutable_date() = r.opening_date();
    r.clear_closing_date();
    r.clear_closing_reason();
    r.clear_outcomes();
    rows.push_back(r);
  }
  pb::ImportCasesResponse response;
  ASSERT_TRUE(Import("operator:reg-bzh", {rows}, &response).ok());
  EXPECT_EQ(response.cases_created(), 6);  // January to June
  ASSERT_EQ(response.errors_size(), 6);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(response.errors(i).line(), 7 + i);
    EXPECT_EQ(response.errors(i).field(), "opening_date");
    EXPECT_NE(response.errors(i).reason().find("not designated"), std::string::npos);
  }

  // 1,005 bad rows: 1,000 listed, the last one saying the list is capped.
  std::vector<pb::ImportedCase> bad;
  for (int n = 1; n <= 1005; ++n) {
    pb::ImportedCase r = ImportRow(n);
    r.clear_demands();
    bad.push_back(r);
  }
  pb::ImportCasesResponse capped;
  ASSERT_TRUE(Import("operator:reg-bzh", {bad}, &capped).ok());
  EXPECT_EQ(capped.rows_received(), 1005);
  EXPECT_EQ(capped.cases_created(), 0);
  ASSERT_EQ(capped.errors_size(), 1000);
  EXPECT_EQ(capped.errors(999).line(), 1000);
  EXPECT_NE(capped.errors(999).reason().find("capped at 1000"), std::string::npos) << capped.errors(999).reason();
  EXPECT_NE(capped.errors(999).reason().find("1005 errors"), std::string::npos) << capped.errors(999).reason();
}

// An imported history is the past: a row with a service, an outcome or a closing after today is
// reported on the field and not imported; the other rows are.
TEST_P(CepImportTest, RowsWithEventsAfterTodayAreReportedOnTheirField) {
  SetToday(2023, 1, 10);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  std::vector<pb::ImportedCase> rows;
  for (int n = 1; n <= 4; ++n) rows.push_back(ImportRow(n));
  *rows[1].mutable_services(0)->mutable_date() = D(2023, 1, 11);
  rows[2].set_closing_reason("Projet abouti");
  *rows[2].mutable_closing_date() = D(2023, 2, 1);
  pb::Outcome* job = rows[3].add_outcomes();
  job->set_kind(pb::OUTCOME_KIND_JOB);
  *job->mutable_date() = D(2024, 1, 1);
  pb::ImportCasesResponse response;
  ASSERT_TRUE(Import(kFt, {rows}, &response).ok());
  EXPECT_EQ(response.cases_created(), 1);
  std::map<int64_t, std::string> fields;
  for (const pb::ImportRowError& e : response.errors()) {
    fields[e.line()] = e.field();
    EXPECT_NE(e.reason().find("future"), std::string::npos) << e.reason();
  }
  const int last_outcome = rows[3].outcomes_size() - 1;
  EXPECT_EQ(fields, (std::map<int64_t, std::string>{{2, "services[0].date"},
                                                    {3, "closing_date"},
                                                    {4, absl::StrCat("outcomes[", last_outcome, "].date")}}));
  EXPECT_EQ(CountCases("ft"), 1);
}

TEST_P(CepImportTest, OnlyAKnownOperatorImports) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  const std::vector<std::vector<pb::ImportedCase>> messages = {{ImportRow(1)}};
  pb::ImportCasesResponse response;
  EXPECT_EQ(Import("", messages, &response).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Import(kNational, messages, &response).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Import("region:53", messages, &response).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Import("operator:nobody", messages, &response).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(CountCases("ft"), 0);
  EXPECT_EQ(CountCases("nobody"), 0);
  // An empty stream is an empty report.
  pb::ImportCasesResponse empty;
  ASSERT_TRUE(Import(kFt, {}, &empty).ok());
  EXPECT_EQ(empty.rows_received(), 0);
  EXPECT_EQ(empty.errors_size(), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, CepImportTest, ::testing::Values("sqlite", "mysql"),
                         [](const auto& info) { return info.param; });

// --- National indicators ------------------------------------------------------------------------

// "month|key1|key2" -> value, or "month|keys" -> -1 for a suppressed cell.
std::map<std::string, int64_t> Cells(const pb::QueryIndicatorsResponse& r) {
  std::map<std::string, int64_t> out;
  for (const pb::IndicatorCell& c : r.cells()) {
    std::string key = c.month();
    for (const std::string& k : c.keys()) absl::StrAppend(&key, "|", k);
    EXPECT_TRUE(out.emplace(key, c.suppressed() ? -1 : c.value()).second) << "cell twice: " << key;
    if (c.suppressed()) {
      EXPECT_EQ(c.value(), 0) << key;
    }
  }
  return out;
}

pb::QueryIndicatorsRequest Indicators(pb::Measure measure, const std::string& from, const std::string& to,
                                      std::vector<pb::Dimension> group_by, const std::string& filter = "",
                                      bool total = false, bool suppress = false) {
  pb::QueryIndicatorsRequest r;
  r.set_measure(measure);
  r.set_from_month(from);
  r.set_to_month(to);
  for (pb::Dimension d : group_by) r.add_group_by(d);
  r.set_filter(filter);
  r.set_total_over_period(total);
  r.set_suppress_small_cells(suppress);
  return r;
}

// MariaDB compares keys PAD SPACE ("E-1" and "E-1 " are one key there, two in SQLite): an
// external id with white space at either end is refused on both backends, by OpenCase and by the
// import, and writes nothing; filters on keys compared by SQL refuse such values too.
TEST_P(CepImportTest, KeysWithWhiteSpaceAtEitherEndAreRefusedOnBothBackends) {
  SetToday(2024, 3, 20);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  const pb::Beneficiary b = Register(kFt, "WS-0001");
  pb::OpenCaseRequest first = Opening(b, D(2024, 3, 1));
  first.mutable_case_()->set_external_id("E-1");
  const pb::Case opened = MustCall(kFt, &Stub::OpenCase, first);
  const size_t events_before = Activity().size();
  for (const char* spaced : {"E-1 ", " E-1", "E-2\t"}) {
    pb::OpenCaseRequest again = Opening(b, D(2024, 3, 2));
    again.mutable_case_()->set_external_id(spaced);
    const grpc::Status s = Status(kFt, &Stub::OpenCase, again);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << "[" << spaced << "] " << s.error_message();
    EXPECT_TRUE(HasField(s, "case.external_id")) << "[" << spaced << "] " << Fields(s);
  }
  pb::ImportedCase row = ImportRow(1);
  row.set_external_id("E-1 ");
  pb::ImportCasesResponse imported;
  ASSERT_TRUE(Import(kFt, {{row}}, &imported).ok());
  EXPECT_EQ(imported.cases_created(), 0);
  EXPECT_EQ(imported.cases_unchanged(), 0);
  ASSERT_EQ(imported.errors_size(), 1);
  EXPECT_EQ(imported.errors(0).line(), 1);
  EXPECT_EQ(imported.errors(0).field(), "external_id");
  EXPECT_EQ(CountCases("ft"), 1);
  EXPECT_EQ(Activity().size(), events_before);
  EXPECT_EQ(CaseOf("ft", "E-1"), opened.name());

  pb::ListCasesRequest list;
  list.set_filter("level = \"2019/2 \"");
  grpc::Status s = Status(kFt, &Stub::ListCases, list);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_TRUE(HasField(s, "filter")) << Fields(s);
  s = Status(kNational, &Stub::QueryIndicators,
             Indicators(pb::MEASURE_ENTRIES, "2024-01", "2024-03", {pb::DIMENSION_REGION}, "operator = \"ft \""));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_TRUE(HasField(s, "filter")) << Fields(s);
}

// A row of a person already known counts the situation the row gives (status, region at that
// entry), birth year and sex as first registered, and leaves the stored person as it is.
TEST_P(CepImportTest, AKnownPersonsRowCountsItsOwnSituation) {
  SetToday(2024, 3, 20);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53", "11"});
  pb::ImportedCase first = ImportRow(2, "35");  // P-2, female, job seeker in Ille-et-Vilaine
  *first.mutable_opening_date() = D(2021, 3, 1);
  pb::ImportedCase later = ImportRow(702, "75");  // P-2 again, years later, in Paris
  later.mutable_beneficiary()->set_status(pb::EMPLOYMENT_STATUS_EMPLOYEE);
  later.mutable_beneficiary()->set_sex(pb::SEX_MALE);  // a typo in the later row
  *later.mutable_opening_date() = D(2023, 5, 2);
  later.clear_services();
  pb::ImportCasesResponse out;
  ASSERT_TRUE(Import(kFt, {{first}, {later}}, &out).ok());
  ASSERT_EQ(out.cases_created(), 2) << out.DebugString();
  using M = std::map<std::string, int64_t>;
  EXPECT_EQ(Cells(MustCall(kNational, &Stub::QueryIndicators,
                           Indicators(pb::MEASURE_ENTRIES, "2021-01", "2023-12",
                                      {pb::DIMENSION_REGION, pb::DIMENSION_SEX, pb::DIMENSION_STATUS}))),
            (M{{"2021-03|53|FEMALE|JOB_SEEKER", 1}, {"2023-05|11|FEMALE|EMPLOYEE", 1}}));
  pb::GetBeneficiaryRequest get;
  get.set_name(Get(kFt, CaseOf("ft", "E-2")).beneficiary());
  const pb::Beneficiary stored = MustCall(kFt, &Stub::GetBeneficiary, get);
  EXPECT_EQ(stored.department(), "35");
  EXPECT_EQ(stored.status(), pb::EMPLOYMENT_STATUS_JOB_SEEKER);

  // Transferred, the file goes on with the situation at its opening (Paris, not the person's
  // stored Ille-et-Vilaine): a regional operator designated in Île-de-France only receives it, one
  // designated in Bretagne only does not, and it counts in Île-de-France.
  AddOperator("ore-idf", pb::OPERATOR_KIND_REGIONAL_EMPLOYED, {"11"});
  AddOperator("ore-bzh", pb::OPERATOR_KIND_REGIONAL_EMPLOYED, {"53"});
  ASSERT_TRUE(Designate("ore-idf", "11", D(2020, 1, 1), std::nullopt).ok());
  ASSERT_TRUE(Designate("ore-bzh", "53", D(2020, 1, 1), std::nullopt).ok());
  grpc::Status not_designated = Transfer(kFt, CaseOf("ft", "E-702"), "operators/ore-bzh", true);
  EXPECT_TRUE(PreconditionTypes(not_designated).count("OPERATOR_NOT_DESIGNATED")) << not_designated.error_message();
  pb::Transfer t;
  ASSERT_TRUE(Transfer(kFt, CaseOf("ft", "E-702"), "operators/ore-idf", true, &t).ok());
  ASSERT_TRUE(Accept("operator:ore-idf", t.name(), &t).ok());
  EXPECT_EQ(Cells(MustCall(kNational, &Stub::QueryIndicators,
                           Indicators(pb::MEASURE_ACTIVE_BENEFICIARIES, "2024-03", "2024-03", {pb::DIMENSION_REGION},
                                      "operator = \"ore-idf\""))),
            (M{{"2024-03|11", 1}}));
}

// The same person at two operators is one beneficiary, but each operator keeps its own record of
// the person's situation (department, region, status, qualification): another operator's
// registration neither shows the first what it entered nor changes what the first one's cases
// count. Birth year and sex stay as first registered. A transferred file brings its holder's record
// to a receiver that had none. (An imported row of a known person counts its own situation:
// AKnownPersonsRowCountsItsOwnSituation.)
TEST_P(CepServiceTest, EachOperatorSeesAndCountsTheSituationItRegistered) {
  SetToday(2024, 3, 20);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53", "11"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53", "11"});
  AddOperator("ml-rennes", pb::OPERATOR_KIND_MISSION_LOCALE, {"53", "11"});
  pb::RegisterBeneficiaryRequest first = Registration("MOVED-0001", "35");
  first.mutable_beneficiary()->set_status(pb::EMPLOYMENT_STATUS_JOB_SEEKER);
  first.clear_contact();  // FT registers the person without contact details
  const pb::Beneficiary at_ft = MustCall(kFt, &Stub::RegisterBeneficiary, first);
  const pb::Case ft_case = Open(kFt, at_ft, D(2024, 1, 8));

  pb::RegisterBeneficiaryRequest later = Registration("MOVED-0001", "75");
  later.mutable_beneficiary()->set_status(pb::EMPLOYMENT_STATUS_EMPLOYEE);
  later.mutable_beneficiary()->set_qualification_level(6);
  later.mutable_beneficiary()->set_birth_year(1990);
  const pb::Beneficiary at_apec = MustCall(kApec, &Stub::RegisterBeneficiary, later);
  EXPECT_EQ(at_apec.name(), at_ft.name());
  EXPECT_EQ(at_apec.department(), "75");
  EXPECT_EQ(at_apec.birth_year(), 1988);
  struct Seen {
    const char* op;
    pb::EmploymentStatus status;
    const char* department;
    const char* region;
    int qualification;
  };
  const Seen ft_sees{kFt, pb::EMPLOYMENT_STATUS_JOB_SEEKER, "35", "53", 4};
  const Seen apec_sees{kApec, pb::EMPLOYMENT_STATUS_EMPLOYEE, "75", "11", 6};
  pb::GetBeneficiaryRequest get;
  get.set_name(at_ft.name());
  auto expect_seen = [&](const Seen& want) {
    SCOPED_TRACE(want.op);
    const pb::Beneficiary seen = MustCall(want.op, &Stub::GetBeneficiary, get);
    EXPECT_EQ(seen.status(), want.status);
    EXPECT_EQ(seen.department(), want.department);
    EXPECT_EQ(seen.region(), want.region);
    EXPECT_EQ(seen.qualification_level(), want.qualification);
    EXPECT_EQ(seen.birth_year(), 1988);
    EXPECT_EQ(seen.sex(), pb::SEX_FEMALE);
  };
  expect_seen(ft_sees);
  expect_seen(apec_sees);

  // Updating contact details changes no situation.
  pb::UpdateContactDetailsRequest contact;
  contact.mutable_contact()->set_beneficiary(at_ft.name());
  contact.mutable_contact()->set_email("e.martin@example.org");
  MustCall(kApec, &Stub::UpdateContactDetails, contact);
  expect_seen(apec_sees);
  expect_seen(ft_sees);
  const pb::Case ft_again = Open(kFt, at_ft, D(2024, 3, 4));
  const pb::Case apec_case = Open(kApec, at_apec, D(2024, 3, 5));
  using M = std::map<std::string, int64_t>;
  const auto entries = [&] {
    return Cells(MustCall(kNational, &Stub::QueryIndicators,
                          Indicators(pb::MEASURE_ENTRIES, "2024-01", "2024-03",
                                     {pb::DIMENSION_OPERATOR, pb::DIMENSION_REGION, pb::DIMENSION_STATUS})));
  };
  EXPECT_EQ(entries(), (M{{"2024-01|ft|53|JOB_SEEKER", 1},
                          {"2024-03|apec|11|EMPLOYEE", 1},
                          {"2024-03|ft|53|JOB_SEEKER", 1}}));
  EXPECT_NE(ft_again.name(), ft_case.name());

  // APEC's file goes to an operator that never registered the person: it gets APEC's record, and
  // APEC no longer sees the person. Sent on to FT, which registered the person itself (without
  // contact details), the file brings FT the contact details and leaves FT's own situation.
  pb::Transfer t;
  ASSERT_TRUE(Transfer(kApec, apec_case.name(), "operators/ml-rennes", true, &t).ok());
  ASSERT_TRUE(Accept(kMl, t.name(), &t).ok());
  expect_seen(Seen{kMl, pb::EMPLOYMENT_STATUS_EMPLOYEE, "75", "11", 6});
  EXPECT_EQ(Status(kApec, &Stub::GetBeneficiary, get).error_code(), grpc::StatusCode::NOT_FOUND);
  expect_seen(ft_sees);
  ASSERT_TRUE(Transfer(kMl, t.new_case(), "operators/ft", true, &t).ok());
  ASSERT_TRUE(Accept(kFt, t.name(), &t).ok());
  expect_seen(ft_sees);
  ASSERT_TRUE(ContactAt(at_ft, "ft").has_value());
  EXPECT_EQ(ContactAt(at_ft, "ft")->email(), "e.martin@example.org");

  // Registering again replaces the caller's own record, and only it.
  pb::RegisterBeneficiaryRequest again = Registration("MOVED-0001", "29");
  again.mutable_beneficiary()->set_status(pb::EMPLOYMENT_STATUS_PUBLIC_AGENT);
  again.clear_contact();
  const pb::Beneficiary ft_again_registered = MustCall(kFt, &Stub::RegisterBeneficiary, again);
  EXPECT_EQ(ft_again_registered.department(), "29");
  expect_seen(Seen{kFt, pb::EMPLOYMENT_STATUS_PUBLIC_AGENT, "29", "53", 4});
  EXPECT_EQ(Status(kMl, &Stub::GetBeneficiary, get).error_code(), grpc::StatusCode::NOT_FOUND);  // sent it on
  EXPECT_EQ(ContactAt(at_ft, "ft")->email(), "e.martin@example.org");  // kept: none given
}

// An operator importing the history of a person another operator registered keeps its own record
// of them (the situation of the person's first row), and the other's stays as it was.
TEST_P(CepImportTest, AnImportingOperatorKeepsItsOwnRecordOfAPersonAnotherRegistered) {
  SetToday(2024, 3, 20);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53", "11"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53", "11"});
  pb::RegisterBeneficiaryRequest reg = Registration("P-2", "35");
  reg.mutable_beneficiary()->set_status(pb::EMPLOYMENT_STATUS_SELF_EMPLOYED);
  const pb::Beneficiary at_ft = MustCall(kFt, &Stub::RegisterBeneficiary, reg);
  pb::ImportedCase row = ImportRow(2, "75");  // P-2 at APEC: a job seeker in Paris
  pb::ImportCasesResponse out;
  ASSERT_TRUE(Import(kApec, {{row}}, &out).ok());
  ASSERT_EQ(out.cases_created(), 1) << out.DebugString();
  pb::GetBeneficiaryRequest get;
  get.set_name(at_ft.name());
  const pb::Beneficiary at_apec = MustCall(kApec, &Stub::GetBeneficiary, get);
  EXPECT_EQ(at_apec.department(), "75");
  EXPECT_EQ(at_apec.region(), "11");
  EXPECT_EQ(at_apec.status(), pb::EMPLOYMENT_STATUS_JOB_SEEKER);
  EXPECT_EQ(at_apec.qualification_level(), 2);
  EXPECT_EQ(at_apec.birth_year(), 1988);  // the person's, as first registered
  const pb::Beneficiary still_at_ft = MustCall(kFt, &Stub::GetBeneficiary, get);
  EXPECT_EQ(still_at_ft.department(), "35");
  EXPECT_EQ(still_at_ft.status(), pb::EMPLOYMENT_STATUS_SELF_EMPLOYED);
}

// Followed beneficiaries count the months a file is followed, not the gaps: a case closed in
// February 2023 and reopened in June 2024 counts in neither of the months between; a closed case
// its holder reopens to transfer it (only an open file moves) counts at the former holder until
// its closing only, then at the receiver from the transfer's month. Counted by hand.
TEST_P(CepServiceTest, FollowedBeneficiariesLeaveOutTheMonthsAFileWasClosed) {
  SetToday(2023, 1, 12);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  const pb::Case reopened = Open(kFt, Register(kFt, "GAP-1"), D(2023, 1, 10));
  const pb::Case moved = Open(kFt, Register(kFt, "GAP-2"), D(2023, 1, 12));
  SetToday(2023, 3, 2);
  ASSERT_TRUE(Close(kFt, reopened.name(), D(2023, 2, 15)).ok());  // closed on a past date
  ASSERT_TRUE(Close(kFt, moved.name(), D(2023, 1, 31)).ok());
  SetToday(2024, 6, 3);
  pb::ReopenCaseRequest reopen;
  reopen.set_name(reopened.name());
  reopen.set_reason("nouvelle demande");
  MustCall(kFt, &Stub::ReopenCase, reopen);
  pb::ReopenCaseRequest reopen_to_move;
  reopen_to_move.set_name(moved.name());
  reopen_to_move.set_reason("la personne s'installe dans un autre réseau");
  MustCall(kFt, &Stub::ReopenCase, reopen_to_move);
  pb::Transfer t;
  ASSERT_TRUE(Transfer(kFt, moved.name(), "operators/apec", true, &t).ok());
  ASSERT_TRUE(Accept(kApec, t.name(), &t).ok());

  using M = std::map<std::string, int64_t>;
  const M months = Cells(MustCall(kNational, &Stub::QueryIndicators,
                                  Indicators(pb::MEASURE_ACTIVE_BENEFICIARIES, "2023-01", "2024-07",
                                             {pb::DIMENSION_OPERATOR})));
  EXPECT_EQ(months, (M{{"2023-01|ft", 2}, {"2023-02|ft", 1}, {"2024-06|ft", 1}, {"2024-06|apec", 1},
                       {"2024-07|ft", 1}, {"2024-07|apec", 1}}));
  // Over a period: each file once, reopened or not; a reopening counts when the file was not
  // followed earlier in the period.
  EXPECT_EQ(Cells(MustCall(kNational, &Stub::QueryIndicators,
                           Indicators(pb::MEASURE_ACTIVE_BENEFICIARIES, "2023-03", "2024-05", {}, "", true))),
            M{});
  auto total = [&](const std::string& from, const std::string& to) {
    return Cells(MustCall(kNational, &Stub::QueryIndicators,
                          Indicators(pb::MEASURE_ACTIVE_BENEFICIARIES, from, to, {pb::DIMENSION_OPERATOR}, "", true)));
  };
  EXPECT_EQ(total("2023-01", "2024-07"), (M{{"2023-01..2024-07|ft", 2}, {"2023-01..2024-07|apec", 1}}));
  EXPECT_EQ(total("2023-02", "2024-06"), (M{{"2023-02..2024-06|ft", 1}, {"2023-02..2024-06|apec", 1}}));
  EXPECT_EQ(total("2023-03", "2024-07"), (M{{"2023-03..2024-07|ft", 1}, {"2023-03..2024-07|apec", 1}}));
  // Closed again: not before the reopening, and the second span ends at its own closing date.
  pb::CloseCaseRequest close;
  close.set_name(reopened.name());
  close.set_reason("projet formalisé");
  *close.mutable_closing_date() = D(2024, 5, 20);
  grpc::Status early = Status(kFt, &Stub::CloseCase, close);
  EXPECT_TRUE(PreconditionTypes(early).count("CLOSING_DATE")) << early.error_message();
  *close.mutable_closing_date() = D(2024, 6, 3);
  MustCall(kFt, &Stub::CloseCase, close);
  EXPECT_EQ(Cells(MustCall(kNational, &Stub::QueryIndicators,
                           Indicators(pb::MEASURE_ACTIVE_BENEFICIARIES, "2024-06", "2024-07", {pb::DIMENSION_OPERATOR}))),
            (M{{"2024-06|ft", 1}, {"2024-06|apec", 1}, {"2024-07|apec", 1}}));
}

// Nine people, counted by hand: 7 women in Ille-et-Vilaine (region 53), job seekers, opened at ft in
// January 2024 (two also want to take stock; three get an information service that month; one is
// closed in February); 2 men in Paris (region 11), employees, opened at ft on 2024-01-10 and
// 2024-02-03; the second gets project support in February, is transferred to apec on 2024-03-10,
// and apec gives him an information service on that day.
TEST_P(CepServiceTest, IndicatorsCountedByHandOnASmallDatasetWithSuppression) {
  SetToday(2024, 3, 10);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53", "11"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53", "11"});
  std::vector<pb::Case> women;
  for (int i = 0; i < 7; ++i) {
    pb::RegisterBeneficiaryRequest reg = Registration(absl::StrCat("W", i), "35");
    reg.mutable_beneficiary()->set_status(pb::EMPLOYMENT_STATUS_JOB_SEEKER);
    const pb::Beneficiary b = MustCall(kFt, &Stub::RegisterBeneficiary, reg);
    pb::OpenCaseRequest open = Opening(b, D(2024, 1, 5 + i));
    if (i < 2) open.mutable_case_()->add_demands(pb::DEMAND_KIND_TAKE_STOCK);
    women.push_back(MustCall(kFt, &Stub::OpenCase, open));
    if (i < 3) {
      ASSERT_TRUE(Service(kFt, women.back().name(), pb::SERVICE_KIND_INFORMATION, D(2024, 1, 20)).ok());
    }
  }
  ASSERT_TRUE(Close(kFt, women[6].name(), D(2024, 2, 15)).ok());
  std::vector<pb::Case> men;
  for (int i = 0; i < 2; ++i) {
    pb::RegisterBeneficiaryRequest reg = Registration(absl::StrCat("M", i), "75");
    reg.mutable_beneficiary()->set_sex(pb::SEX_MALE);
    const pb::Beneficiary b = MustCall(kFt, &Stub::RegisterBeneficiary, reg);
    men.push_back(Open(kFt, b, i == 0 ? D(2024, 1, 10) : D(2024, 2, 3)));
  }
  ASSERT_TRUE(Service(kFt, men[1].name(), pb::SERVICE_KIND_PROJECT_SUPPORT, D(2024, 2, 5)).ok());
  pb::Transfer t;
  ASSERT_TRUE(Transfer(kFt, men[1].name(), "operators/apec", true, &t).ok());
  ASSERT_TRUE(Accept(kApec, t.name(), &t).ok());
  ASSERT_TRUE(Service(kApec, t.new_case(), pb::SERVICE_KIND_INFORMATION, D(2024, 3, 10)).ok());

  using M = std::map<std::string, int64_t>;
  auto query = [&](const std::string& principal, const pb::QueryIndicatorsRequest& r) {
    return Cells(MustCall(principal, &Stub::QueryIndicators, r));
  };
  // Entries per month by region x sex; then with small cells suppressed.
  EXPECT_EQ(query(kNational, Indicators(pb::MEASURE_ENTRIES, "2024-01", "2024-03",
                                        {pb::DIMENSION_REGION, pb::DIMENSION_SEX})),
            (M{{"2024-01|53|FEMALE", 7}, {"2024-01|11|MALE", 1}, {"2024-02|11|MALE", 1}}));
  EXPECT_EQ(query(kNational, Indicators(pb::MEASURE_ENTRIES, "2024-01", "2024-03",
                                        {pb::DIMENSION_REGION, pb::DIMENSION_SEX}, "", false, true)),
            (M{{"2024-01|53|FEMALE", 7}, {"2024-01|11|MALE", -1}, {"2024-02|11|MALE", -1}}));
  // A region sees only itself, always suppressed, whatever it asks.
  EXPECT_EQ(query("region:11", Indicators(pb::MEASURE_ENTRIES, "2024-01", "2024-03", {pb::DIMENSION_SEX}, "", true)),
            (M{{"2024-01..2024-03|MALE", -1}}));
  EXPECT_EQ(query("region:53", Indicators(pb::MEASURE_ENTRIES, "2024-01", "2024-03", {pb::DIMENSION_REGION}, "", true)),
            (M{{"2024-01..2024-03|53", 7}}));
  EXPECT_EQ(query("region:53", Indicators(pb::MEASURE_ENTRIES, "2024-01", "2024-03", {}, "region = \"11\"", true)),
            M{});
  // An operator sees only its own activity.
  EXPECT_EQ(query(kApec, Indicators(pb::MEASURE_SERVICES, "2024-01", "2024-03", {pb::DIMENSION_OPERATOR}, "", true)),
            (M{{"2024-01..2024-03|apec", 1}}));
  // Followed beneficiaries: the closed case still counts in February; the transferred case counts at
  // ft until February and at apec from March.
  EXPECT_EQ(query(kNational, Indicators(pb::MEASURE_ACTIVE_BENEFICIARIES, "2024-01", "2024-03",
                                        {pb::DIMENSION_OPERATOR})),
            (M{{"2024-01|ft", 8}, {"2024-02|ft", 9}, {"2024-03|ft", 7}, {"2024-03|apec", 1}}));
  EXPECT_EQ(query(kNational, Indicators(pb::MEASURE_ACTIVE_BENEFICIARIES, "2024-02", "2024-03",
                                        {pb::DIMENSION_OPERATOR}, "", true)),
            (M{{"2024-02..2024-03|ft", 9}, {"2024-02..2024-03|apec", 1}}));
  EXPECT_EQ(query(kNational, Indicators(pb::MEASURE_ACTIVE_BENEFICIARIES, "2023-06", "2023-12", {})), M{});
  // The operator x region x sex x status table month by month keeps every dimension of its
  // cuboid: read as stored (no grouping in the store), it says the same.
  const std::vector<pb::Dimension> table = {pb::DIMENSION_OPERATOR, pb::DIMENSION_REGION, pb::DIMENSION_SEX,
                                            pb::DIMENSION_STATUS};
  EXPECT_EQ(query(kNational, Indicators(pb::MEASURE_ENTRIES, "2024-01", "2024-03", table)),
            (M{{"2024-01|ft|53|FEMALE|JOB_SEEKER", 7},
               {"2024-01|ft|11|MALE|EMPLOYEE", 1},
               {"2024-02|ft|11|MALE|EMPLOYEE", 1}}));
  EXPECT_EQ(query(kNational, Indicators(pb::MEASURE_ACTIVE_BENEFICIARIES, "2024-01", "2024-03", table)),
            (M{{"2024-01|ft|53|FEMALE|JOB_SEEKER", 7},
               {"2024-01|ft|11|MALE|EMPLOYEE", 1},
               {"2024-02|ft|53|FEMALE|JOB_SEEKER", 7},
               {"2024-02|ft|11|MALE|EMPLOYEE", 2},
               {"2024-03|ft|53|FEMALE|JOB_SEEKER", 6},
               {"2024-03|ft|11|MALE|EMPLOYEE", 1},
               {"2024-03|apec|11|MALE|EMPLOYEE", 1}}));
  // A case with two demands counts under each; a filter on demand keeps the cases that have it.
  EXPECT_EQ(query(kNational, Indicators(pb::MEASURE_ENTRIES, "2024-01", "2024-03", {pb::DIMENSION_DEMAND}, "", true)),
            (M{{"2024-01..2024-03|PROJECT", 9}, {"2024-01..2024-03|TAKE_STOCK", 2}}));
  EXPECT_EQ(query(kNational, Indicators(pb::MEASURE_ENTRIES, "2024-01", "2024-03", {}, 
                                        "sex = FEMALE AND demand = TAKE_STOCK", true)),
            (M{{"2024-01..2024-03", 2}}));
  // Grouped by demand with a filter on one: only the cells the filter names (the cases it keeps
  // have other demands too).
  EXPECT_EQ(query(kNational, Indicators(pb::MEASURE_ENTRIES, "2024-01", "2024-03", {pb::DIMENSION_DEMAND},
                                        "demand = TAKE_STOCK", true)),
            (M{{"2024-01..2024-03|TAKE_STOCK", 2}}));
  // Two demands ANDed: the cases having both, under each of the two (was no cell at all).
  EXPECT_EQ(query(kNational, Indicators(pb::MEASURE_ENTRIES, "2024-01", "2024-03", {pb::DIMENSION_DEMAND},
                                        "demand = TAKE_STOCK AND demand = PROJECT", true)),
            (M{{"2024-01..2024-03|PROJECT", 2}, {"2024-01..2024-03|TAKE_STOCK", 2}}));
  EXPECT_EQ(query(kNational, Indicators(pb::MEASURE_ACTIVE_BENEFICIARIES, "2024-01", "2024-03", {pb::DIMENSION_DEMAND},
                                        "demand = TAKE_STOCK")),
            (M{{"2024-01|TAKE_STOCK", 2}, {"2024-02|TAKE_STOCK", 2}, {"2024-03|TAKE_STOCK", 2}}));
  EXPECT_EQ(query(kNational, Indicators(pb::MEASURE_ENTRIES, "2024-01", "2024-03", {pb::DIMENSION_DEMAND},
                                        "demand != TAKE_STOCK", true)),
            (M{{"2024-01..2024-03|PROJECT", 7}}));
  EXPECT_EQ(query(kNational, Indicators(pb::MEASURE_ENTRIES, "2024-01", "2024-03", {pb::DIMENSION_STATUS, pb::DIMENSION_AGE_BAND},
                                        "region != \"53\"", true)),
            (M{{"2024-01..2024-03|EMPLOYEE|35-44", 2}}));
  // The qualification level, with the person's attributes (everyone here registered at level 4).
  EXPECT_EQ(query(kNational, Indicators(pb::MEASURE_ENTRIES, "2024-01", "2024-03",
                                        {pb::DIMENSION_QUALIFICATION_LEVEL, pb::DIMENSION_SEX}, "", true)),
            (M{{"2024-01..2024-03|4|FEMALE", 7}, {"2024-01..2024-03|4|MALE", 2}}));
  // Services by kind: what came with the transferred file counts once, at ft.
  EXPECT_EQ(query(kNational, Indicators(pb::MEASURE_SERVICES, "2024-01", "2024-03",
                                        {pb::DIMENSION_OPERATOR, pb::DIMENSION_SERVICE_KIND}, "", true)),
            (M{{"2024-01..2024-03|ft|INFORMATION", 3},
               {"2024-01..2024-03|ft|PROJECT_SUPPORT", 1},
               {"2024-01..2024-03|apec|INFORMATION", 1}}));

  // Bad requests name the field; other callers are refused.
  auto bad = [&](const pb::QueryIndicatorsRequest& r) { return Status(kNational, &Stub::QueryIndicators, r); };
  grpc::Status s = bad(Indicators(pb::MEASURE_UNSPECIFIED, "2024-01", "2024-03", {}));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(HasField(s, "measure")) << Fields(s);
  s = bad(Indicators(pb::MEASURE_ENTRIES, "2024-13", "2024-03", {}));
  EXPECT_TRUE(HasField(s, "from_month")) << Fields(s);
  for (const char* month : {"2024-+3", " 2024-3", "2024-1"}) {  // the gateway's dashboard refuses them too
    s = bad(Indicators(pb::MEASURE_ENTRIES, month, "2024-03", {}));
    EXPECT_TRUE(HasField(s, "from_month")) << month << ": " << Fields(s);
  }
  s = bad(Indicators(pb::MEASURE_ENTRIES, "2024-03", "2024-01", {}));
  EXPECT_TRUE(HasField(s, "to_month")) << Fields(s);
  s = bad(Indicators(pb::MEASURE_ENTRIES, "2024-01", "2024-03", {pb::DIMENSION_SERVICE_KIND}));
  EXPECT_TRUE(HasField(s, "group_by[0]")) << Fields(s);
  s = bad(Indicators(pb::MEASURE_ENTRIES, "2024-01", "2024-03", {pb::DIMENSION_SEX, pb::DIMENSION_SEX}));
  EXPECT_TRUE(HasField(s, "group_by[1]")) << Fields(s);
  s = bad(Indicators(pb::MEASURE_ENTRIES, "2024-01", "2024-03",
                     {pb::DIMENSION_QUALIFICATION_LEVEL, pb::DIMENSION_OPERATOR}));
  EXPECT_TRUE(HasField(s, "group_by")) << Fields(s);  // no rollup keeps both
  EXPECT_EQ(Status(kFt, &Stub::QueryIndicators,
                   Indicators(pb::MEASURE_ENTRIES, "2024-01", "2024-03", {pb::DIMENSION_QUALIFICATION_LEVEL}))
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);  // an operator's own scope adds the operator
  s = bad(Indicators(pb::MEASURE_ENTRIES, "2024-01", "2024-03", {}, "colour = red"));
  EXPECT_TRUE(HasField(s, "filter")) << Fields(s);
  s = bad(Indicators(pb::MEASURE_ENTRIES, "2024-01", "2024-03", {}, "sex = PURPLE"));
  EXPECT_TRUE(HasField(s, "filter")) << Fields(s);
  EXPECT_EQ(Status("jury-member:j1", &Stub::QueryIndicators, Indicators(pb::MEASURE_ENTRIES, "2024-01", "2024-03", {}))
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Status("", &Stub::QueryIndicators, Indicators(pb::MEASURE_ENTRIES, "2024-01", "2024-03", {})).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

// Small cells are cells of 1..5 people, also for items: one person with six information services
// in January is a cell of one person, suppressed when suppression is asked for (always for a
// region) and worth 6 to a national caller that does not ask. Counted by hand, everyone at ft in
// Ille-et-Vilaine: A gets 6 information services and 6 training outcomes in January and 3 skills
// identifications in February; B..G get one information service each in February, B also 3
// skills identifications.
TEST_P(CepServiceTest, SmallCellsOfServicesAndOutcomesAreSuppressedOnThePeopleBehindThem) {
  SetToday(2024, 3, 10);
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  std::vector<pb::Case> cases;
  for (int i = 0; i < 7; ++i) cases.push_back(Open(kFt, Register(kFt, absl::StrCat("SMALL-", i)), D(2024, 1, 2)));
  for (int day = 3; day <= 8; ++day) {
    ASSERT_TRUE(Service(kFt, cases[0].name(), pb::SERVICE_KIND_INFORMATION, D(2024, 1, day)).ok());
    pb::RecordOutcomeRequest r;
    r.set_name(cases[0].name());
    r.mutable_outcome()->set_kind(pb::OUTCOME_KIND_TRAINING);
    *r.mutable_outcome()->mutable_date() = D(2024, 1, day);
    MustCall(kFt, &Stub::RecordOutcome, r);
  }
  for (int i = 1; i < 7; ++i) {
    ASSERT_TRUE(Service(kFt, cases[i].name(), pb::SERVICE_KIND_INFORMATION, D(2024, 2, 5)).ok());
  }
  for (int i = 0; i < 2; ++i) {
    for (int day = 6; day <= 8; ++day) {
      ASSERT_TRUE(Service(kFt, cases[i].name(), pb::SERVICE_KIND_SKILLS_IDENTIFICATION, D(2024, 2, day)).ok());
    }
  }

  using M = std::map<std::string, int64_t>;
  auto query = [&](const std::string& principal, const pb::QueryIndicatorsRequest& r) {
    return Cells(MustCall(principal, &Stub::QueryIndicators, r));
  };
  const std::vector<pb::Dimension> by_kind = {pb::DIMENSION_SERVICE_KIND};
  EXPECT_EQ(query(kNational, Indicators(pb::MEASURE_SERVICES, "2024-01", "2024-02", by_kind)),
            (M{{"2024-01|INFORMATION", 6}, {"2024-02|INFORMATION", 6}, {"2024-02|SKILLS_IDENTIFICATION", 6}}));
  const M suppressed_by_kind = {
      {"2024-01|INFORMATION", -1}, {"2024-02|INFORMATION", 6}, {"2024-02|SKILLS_IDENTIFICATION", -1}};
  EXPECT_EQ(query(kNational, Indicators(pb::MEASURE_SERVICES, "2024-01", "2024-02", by_kind, "", false, true)),
            suppressed_by_kind);
  EXPECT_EQ(query("region:53", Indicators(pb::MEASURE_SERVICES, "2024-01", "2024-02", by_kind)), suppressed_by_kind);
  EXPECT_EQ(query("region:53", Indicators(pb::MEASURE_OUTCOMES, "2024-01", "2024-02", {pb::DIMENSION_OUTCOME_KIND})),
            (M{{"2024-01|TRAINING", -1}}));
  EXPECT_EQ(query(kNational, Indicators(pb::MEASURE_OUTCOMES, "2024-01", "2024-02", {pb::DIMENSION_OUTCOME_KIND})),
            (M{{"2024-01|TRAINING", 6}}));
  // Not by kind: January is one person's 6 services, February 12 services of 7 people.
  EXPECT_EQ(query("region:53", Indicators(pb::MEASURE_SERVICES, "2024-01", "2024-02", {pb::DIMENSION_OPERATOR})),
            (M{{"2024-01|ft", -1}, {"2024-02|ft", 12}}));
  // The same read as stored (every dimension of the region cuboid, one kind or any kind).
  EXPECT_EQ(query("region:53", Indicators(pb::MEASURE_SERVICES, "2024-01", "2024-02", {pb::DIMENSION_REGION},
                                          "service_kind = INFORMATION")),
            (M{{"2024-01|53", -1}, {"2024-02|53", 6}}));
  EXPECT_EQ(query("region:53", Indicators(pb::MEASURE_SERVICES, "2024-01", "2024-02", {pb::DIMENSION_REGION})),
            (M{{"2024-01|53", -1}, {"2024-02|53", 12}}));
  // A filter leaving several kinds in a cell: at least the most people of one kind (here the 6
  // skills identifications of 2 people).
  EXPECT_EQ(query("region:53", Indicators(pb::MEASURE_SERVICES, "2024-02", "2024-02", {}, "service_kind != INFORMATION")),
            (M{{"2024-02", -1}}));
  EXPECT_EQ(query(kNational, Indicators(pb::MEASURE_SERVICES, "2024-02", "2024-02", {}, "service_kind != INFORMATION")),
            (M{{"2024-02", 6}}));
  // Over a period: at least the most people of one month (distinct people over months are not
  // kept): information 12 services, 6 people in February; skills identification 6 of 2.
  EXPECT_EQ(query("region:53", Indicators(pb::MEASURE_SERVICES, "2024-01", "2024-02", by_kind, "", true)),
            (M{{"2024-01..2024-02|INFORMATION", 12}, {"2024-01..2024-02|SKILLS_IDENTIFICATION", -1}}));
  EXPECT_EQ(query("region:53", Indicators(pb::MEASURE_SERVICES, "2024-01", "2024-02", {}, "", true)),
            (M{{"2024-01..2024-02", 18}}));
  EXPECT_EQ(query("region:53", Indicators(pb::MEASURE_SERVICES, "2024-01", "2024-01", {}, "", true)),
            (M{{"2024-01..2024-01", -1}}));
  // Rollups stored before the people were counted: every cell of items is suppressed (until
  // `migrate` counts them).
  ASSERT_TRUE(app_->db()
                  .Transact([](db::Tx& tx) {
                    return tx.Exec("DELETE FROM indicator_rollup WHERE measure = ?", {int64_t{indicators::kServicePeople}})
                        .status();
                  })
                  .ok());
  EXPECT_EQ(query("region:53", Indicators(pb::MEASURE_SERVICES, "2024-02", "2024-02", by_kind)),
            (M{{"2024-02|INFORMATION", -1}, {"2024-02|SKILLS_IDENTIFICATION", -1}}));
  EXPECT_EQ(query(kNational, Indicators(pb::MEASURE_SERVICES, "2024-02", "2024-02", by_kind)),
            (M{{"2024-02|INFORMATION", 6}, {"2024-02|SKILLS_IDENTIFICATION", 6}}));
}

// Every write path moves the rollups in its own transaction; after a random mix of them the stored
// rollups equal a recomputation from the cases, and the indicators agree with a count of the cases.
TEST_P(CepServiceTest, RollupsEqualARecomputationAfterRandomOperations) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53", "11", "84"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53", "11", "84"});
  const std::vector<std::string> ops = {kFt, kApec};
  const std::vector<std::string> departments = {"35", "75", "69", "29"};
  std::mt19937 rng(20261121);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
  struct Person { pb::Beneficiary b; std::string op; };
  std::vector<Person> people;
  std::map<std::string, std::string> holder;  // case name -> principal of its holder
  std::vector<std::string> cases;
  std::map<int, int> ok_by_action;  // action -> calls that went through
  for (int step = 0; step < 260; ++step) {
    if (step % 40 == 0) SetToday(2023, 1 + step / 40, 3);  // the months move on
    const google::type::Date day = D(2023, 1 + step / 40, 1 + pick(3));
    const int action = people.size() < 6 ? 0 : pick(11);
    grpc::Status st;
    if (action == 0 || cases.empty()) {
      const std::string op = ops[pick(2)];
      pb::RegisterBeneficiaryRequest reg = Registration(absl::StrCat("R", people.size()), departments[pick(4)]);
      reg.mutable_beneficiary()->set_sex(pick(2) ? pb::SEX_FEMALE : pb::SEX_MALE);
      reg.mutable_beneficiary()->set_birth_year(1960 + pick(45));
      reg.mutable_beneficiary()->set_status(static_cast<pb::EmploymentStatus>(1 + pick(5)));
      reg.mutable_beneficiary()->set_qualification_level(pick(9));
      pb::Beneficiary b;
      st = Call(op, &Stub::RegisterBeneficiary, reg, &b);
      if (!st.ok()) continue;
      people.push_back({b, op});
      pb::OpenCaseRequest open = Opening(b, day, pick(2) ? "2019/1" : "2019/2");
      if (pick(3) == 0) open.mutable_case_()->add_demands(pb::DEMAND_KIND_SKILLS_RECOGNITION);
      pb::Case c;
      st = Call(op, &Stub::OpenCase, open, &c);
      if (st.ok()) {
        cases.push_back(c.name());
        holder[c.name()] = op;
      }
    } else {
      const std::string name = cases[pick(static_cast<int>(cases.size()))];
      const std::string op = holder[name];
      switch (action) {
        case 1: case 2:
          st = Service(op, name, static_cast<pb::ServiceKind>(1 + pick(6)), day);
          break;
        case 3: {
          pb::RecordOutcomeRequest r;
          r.set_name(name);
          r.mutable_outcome()->set_kind(static_cast<pb::OutcomeKind>(1 + pick(5)));
          if (r.outcome().kind() == pb::OUTCOME_KIND_VAE) r.mutable_outcome()->set_candidacy("candidacies/c-1");
          *r.mutable_outcome()->mutable_date() = day;
          st = Status(op, &Stub::RecordOutcome, r);
          break;
        }
        case 4:
          st = Satisfaction(op, name, pick(2) ? pb::SATISFACTION_WHEN_END : pb::SATISFACTION_WHEN_SIX_MONTHS, day);
          break;
        case 5:
          st = Close(op, name, day);
          break;
        case 6: {
          pb::ReopenCaseRequest r;
          r.set_name(name);
          r.set_reason("nouvelle demande");
          st = Status(op, &Stub::ReopenCase, r);
          break;
        }
        case 7: {
          pb::ChangeLevelRequest r;
          r.set_name(name);
          r.set_level(pick(2) ? "2019/1" : "2019/2");
          st = Status(op, &Stub::ChangeLevel, r);
          break;
        }
        case 8: {
          pb::UpdateCaseRequest r;
          r.mutable_case_()->set_name(name);
          r.mutable_case_()->add_demands(pb::DEMAND_KIND_TAKE_STOCK);
          if (pick(2)) r.mutable_case_()->add_demands(pb::DEMAND_KIND_OTHER);
          r.mutable_update_mask()->add_paths("demands");
          st = Status(op, &Stub::UpdateCase, r);
          break;
        }
        case 9: {
          const std::string to = op == kFt ? kApec : kFt;
          pb::Transfer t;
          st = Transfer(op, name, to == kFt ? "operators/ft" : "operators/apec", true, &t);
          if (st.ok()) st = Accept(to, t.name(), &t);
          if (st.ok()) {
            cases.push_back(t.new_case());
            holder[t.new_case()] = to;
          }
          break;
        }
        case 10: {
          if (pick(4) != 0) break;  // erasure: rarer
          pb::Case c;
          pb::GetCaseRequest g;
          g.set_name(name);
          st = Call(op, &Stub::GetCase, g, &c);
          if (!st.ok()) break;
          pb::RequestErasureRequest r;
          r.set_beneficiary(c.beneficiary());
          st = Status(op, &Stub::RequestErasure, r);
          break;
        }
      }
    }
    if (st.ok()) ++ok_by_action[cases.empty() ? 0 : action];
  }
  // Every kind of write went through at least once (refusals by the rules are fine too).
  for (int action = 0; action <= 10; ++action) EXPECT_GT(ok_by_action[action], 0) << "action " << action;
  // Files closed by then reopened after a gap: their follow-up restarts; each gets the same
  // service twice that month (a repeat).
  SetToday(2023, 9, 4);
  int reopened = 0;
  for (const std::string& name : cases) {
    pb::ReopenCaseRequest r;
    r.set_name(name);
    r.set_reason("nouvelle demande");
    if (!Status(holder[name], &Stub::ReopenCase, r).ok()) continue;
    ++reopened;
    for (int day : {1, 4}) ASSERT_TRUE(Service(holder[name], name, pb::SERVICE_KIND_TRAINING_PATH, D(2023, 9, day)).ok());
  }
  EXPECT_GT(reopened, 0);
  // And an import batch on top.
  pb::ImportCasesRequest batch;
  for (int n = 0; n < 30; ++n) *batch.add_cases() = ImportRow(n);
  for (int n = 0; n < 10; ++n) {  // the same people again, elsewhere and employed: their own situation
    pb::ImportedCase again = ImportRow(700 + n, "75");
    again.mutable_beneficiary()->set_status(pb::EMPLOYMENT_STATUS_EMPLOYEE);
    *batch.add_cases() = again;
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata(kPrincipalMetadata, kFt);
    pb::ImportCasesResponse resp;
    auto writer = stub_->ImportCases(&ctx, &resp);
    ASSERT_TRUE(writer->Write(batch));
    writer->WritesDone();
    ASSERT_TRUE(writer->Finish().ok());
    EXPECT_EQ(resp.cases_created(), 40) << resp.DebugString();
  }
  SetToday(2026, 6, 1);  // a pass runs as of today at the latest
  Retention(D(2026, 6, 1));  // two years on: notices (no change to the figures)
  SetToday(2026, 7, 15);
  Retention(D(2026, 7, 15));  // anonymisation of the unanswered

  auto stored = app_->repository().ReadRollup();
  ASSERT_TRUE(stored.ok()) << stored.status();
  auto recomputed = app_->repository().RecomputeRollup();
  ASSERT_TRUE(recomputed.ok()) << recomputed.status();
  EXPECT_GT(stored->size(), 100u);
  EXPECT_TRUE(*stored == *recomputed) << "stored " << stored->size() << " cells, recomputed " << recomputed->size();
  for (const auto& [cell, value] : *recomputed) {
    auto it = stored->find(cell);
    if (it == stored->end() || it->second != value) {
      ADD_FAILURE() << "cuboid " << cell.cuboid << " measure " << cell.measure << " month " << cell.month << " op "
                    << cell.operator_id << " level " << cell.level << ": stored "
                    << (it == stored->end() ? 0 : it->second) << " recomputed " << value;
      break;
    }
  }

  // Every series is there: the people behind each kind of item (and repeated services), and
  // restarts of the follow-up.
  std::set<int> measures;
  int restarts = 0;
  for (const auto& [cell, value] : *stored) {
    measures.insert(cell.measure);
    if (cell.measure == indicators::kFollowStart && cell.detail != 0) ++restarts;
  }
  for (int m : {indicators::kServicePeople, indicators::kOutcomePeople, indicators::kSatisfactionPeople,
                indicators::kServiceRepeats}) {
    EXPECT_TRUE(measures.count(m)) << "measure " << m;
  }
  EXPECT_GT(restarts, 0);

  // The answer agrees with counting the cases directly: entries per operator over the year; and
  // per month the cases given at least one service that month (what came with a file received by
  // transfer counts at the former holder).
  std::map<std::string, int64_t> by_operator;
  std::map<int, int64_t> served_by_month;
  for (const std::string& op : {std::string("ft"), std::string("apec")}) {
    CaseQuery q;
    q.operator_id = op;
    q.limit = 100000;
    auto all = app_->repository().ListCases(q);
    ASSERT_TRUE(all.ok());
    for (const pb::Case& c : *all) {
      if (!c.has_received() && c.opening_date().year() == 2023) ++by_operator[absl::StrCat("2023-01..2023-12|", op)];
      std::set<int> months;
      for (int i = c.has_received() ? c.received().services() : 0; i < c.services_size(); ++i) {
        months.insert(c.services(i).date().year() * 100 + c.services(i).date().month());
      }
      for (int m : months) ++served_by_month[m];
    }
  }
  EXPECT_EQ(Cells(MustCall(kNational, &Stub::QueryIndicators,
                           Indicators(pb::MEASURE_ENTRIES, "2023-01", "2023-12", {pb::DIMENSION_OPERATOR}, "", true))),
            by_operator);
  std::map<int, int64_t> stored_served;
  for (const auto& [cell, value] : *stored) {
    if (cell.cuboid == indicators::CuboidFor(0)->id && cell.measure == indicators::kServicePeople && cell.detail == 0) {
      stored_served[cell.month] += value;
    }
  }
  EXPECT_FALSE(served_by_month.empty());
  EXPECT_EQ(stored_served, served_by_month);
}

// --- Case openings written in batches ---------------------------------------------------------

// The service's repository, except that its first `gated` transactions wait until Open(): calls
// made meanwhile queue behind them, and the test knows they will be written as one batch.
class GatedRepository final : public CepRepository {
 public:
  // fail_nth > 0: that transaction (1-based) fails with UNAVAILABLE instead of running, or, with
  // `commit_then_unknown`, runs and commits and then answers UNKNOWN (the connection lost during
  // COMMIT: the caller cannot tell that it committed).
  GatedRepository(CepRepository& inner, int gated, int fail_nth = 0, bool commit_then_unknown = false)
      : inner_(inner), gated_(gated), fail_nth_(fail_nth), commit_then_unknown_(commit_then_unknown) {}

  absl::Status Transact(const std::function<absl::Status(CepTx&)>& fn) override {
    bool unknown = false;
    {
      absl::MutexLock lock(&mu_);
      if (++transactions_ == fail_nth_) {
        if (!commit_then_unknown_) return absl::UnavailableError("database connection lost");
        unknown = true;
      }
      if (entered_ < gated_) {
        ++entered_;
        mu_.Await(absl::Condition(&open_));
      }
    }
    absl::Status st = inner_.Transact(fn);
    if (unknown && st.ok()) return absl::UnknownError("connection lost during COMMIT, outcome unknown");
    return st;
  }
  int transactions() {
    absl::MutexLock lock(&mu_);
    return transactions_;
  }
  void AwaitGated() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(+[](GatedRepository* r) { return r->entered_ == r->gated_; }, this));
  }
  void Open() {
    absl::MutexLock lock(&mu_);
    open_ = true;
  }

  absl::StatusOr<std::vector<pb::Case>> ListCases(const CaseQuery& q) override { return inner_.ListCases(q); }
  absl::StatusOr<std::vector<pb::Transfer>> ListTransfers(const TransferQuery& q) override {
    return inner_.ListTransfers(q);
  }
  absl::StatusOr<std::vector<pb::Operator>> ListOperators(const OperatorQuery& q) override {
    return inner_.ListOperators(q);
  }
  absl::StatusOr<std::vector<AuditEntry>> ListAudit(const std::string& r) override { return inner_.ListAudit(r); }
  absl::StatusOr<std::vector<pb::ActivityEvent>> ReadActivity(int64_t after, int limit) override {
    return inner_.ReadActivity(after, limit);
  }
  absl::StatusOr<std::vector<pb::ActivityEvent>> ReadOperatorActivity(const std::string& id, int64_t after,
                                                                      int limit) override {
    return inner_.ReadOperatorActivity(id, after, limit);
  }
  absl::StatusOr<std::map<std::string, int64_t>> LastOwnActivity(const std::vector<std::string>& ids,
                                                                 int64_t before) override {
    return inner_.LastOwnActivity(ids, before);
  }
  absl::Status DateUndatedContacts(int64_t now_micros) override { return inner_.DateUndatedContacts(now_micros); }
  absl::StatusOr<std::vector<InactiveRegistration>> ListInactiveRegistrations(
      const InactiveRegistrationQuery& q) override {
    return inner_.ListInactiveRegistrations(q);
  }
  absl::StatusOr<std::vector<InactiveCase>> ListInactiveCases(const InactiveCaseQuery& q) override {
    return inner_.ListInactiveCases(q);
  }
  absl::StatusOr<std::vector<std::pair<indicators::Cell, int64_t>>> QueryRollup(
      const indicators::RollupQuery& q) override {
    return inner_.QueryRollup(q);
  }
  absl::StatusOr<indicators::Rollup> ReadRollup() override { return inner_.ReadRollup(); }
  absl::StatusOr<indicators::Rollup> RecomputeRollup() override { return inner_.RecomputeRollup(); }
  absl::Status RebuildRollup() override { return inner_.RebuildRollup(); }

 private:
  CepRepository& inner_;
  const int gated_;
  const int fail_nth_;
  const bool commit_then_unknown_;
  absl::Mutex mu_;
  int entered_ ABSL_GUARDED_BY(mu_) = 0;
  int transactions_ ABSL_GUARDED_BY(mu_) = 0;
  bool open_ ABSL_GUARDED_BY(mu_) = false;
};

// Waits (10 s at most) until `n` OpenCase calls wait for the next batch.
void AwaitQueued(const Cep& logic, size_t n) {
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (logic.case_openings_queued() < n && absl::Now() < until) absl::SleepFor(absl::Milliseconds(1));
  ASSERT_EQ(logic.case_openings_queued(), n);
}

TEST_P(CepServiceTest, CaseOpeningsQueuedTogetherAreOneBatchAndEachGetsItsOwnAnswer) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  AddOperator("apec", pb::OPERATOR_KIND_APEC, {"53"});
  AddOperator("ore", pb::OPERATOR_KIND_REGIONAL_EMPLOYED, {"53"});  // designated for 53 from 2024
  const grpc::Status designated = Designate("ore", "53", D(2024, 1, 1), std::nullopt);
  ASSERT_TRUE(designated.ok()) << designated.error_message();
  std::vector<pb::Beneficiary> people;
  for (int i = 0; i < 8; ++i) people.push_back(Register(kFt, absl::StrCat("BATCH-", i)));
  const pb::Beneficiary apec_only = Register(kApec, "BATCH-APEC");
  const pb::Beneficiary at_ore = Register("operator:ore", "BATCH-ORE");  // region 53, as ft's
  pb::OpenCaseRequest stored = Opening(people[0], D(2024, 3, 4));
  stored.mutable_case_()->set_external_id("EXT-STORED");
  stored.set_request_id("11111111-1111-4111-8111-111111111111");
  const pb::Case holder = MustCall(kFt, &Stub::OpenCase, stored);
  const int events_before = static_cast<int>(Activity().size());

  // The logic over the same database, its first two writes held: the two openings that take the
  // two writers wait, and every call made meanwhile queues into the next batch.
  GatedRepository gated(app_->repository(), 2);
  Cep logic(gated, clock_, aip::PageTokenCodec("page-key"), "pseudonym-key", FeedOptions());
  const Principal ft{Principal::Kind::kOperator, "ft"};
  const Principal apec{Principal::Kind::kOperator, "apec"};
  const Principal ghost{Principal::Kind::kOperator, "ghost"};  // not in the directory
  const Principal ore{Principal::Kind::kOperator, "ore"};
  struct Call {
    std::string what;
    const Principal* p;
    pb::OpenCaseRequest r;
    absl::StatusOr<pb::Case> result = absl::UnknownError("not called");
  };
  std::vector<Call> calls;
  auto opening = [&](const std::string& what, const Principal& p, const pb::Beneficiary& b,
                     const std::string& external_id, const std::string& request_id) {
    pb::OpenCaseRequest r = Opening(b, D(2024, 5, 6));
    r.mutable_case_()->set_external_id(external_id);
    r.set_request_id(request_id);
    calls.push_back({what, &p, r});
  };
  auto uuid = [](int n) { return absl::StrFormat("00000000-0000-4000-8000-%012d", n); };
  opening("held 1", ft, people[1], "EXT-H1", uuid(1));
  opening("held 2", ft, people[2], "EXT-H2", uuid(2));
  opening("plain a", ft, people[3], "EXT-A", uuid(3));
  opening("plain b", ft, people[4], "", "");
  opening("same request 1", ft, people[5], "EXT-R", uuid(5));
  opening("same request 2", ft, people[5], "EXT-R", uuid(5));
  opening("same external id 1", ft, people[6], "EXT-TWICE", uuid(6));
  opening("same external id 2", ft, people[7], "EXT-TWICE", uuid(7));
  opening("stored external id", ft, people[3], "EXT-STORED", uuid(8));
  opening("not registered here", ft, apec_only, "EXT-NR", uuid(9));
  opening("unknown level", ft, people[4], "EXT-LEVEL", uuid(10));
  calls.back().r.mutable_case_()->set_level("2019/9");
  opening("request id of another request", ft, people[4], "EXT-OTHER", stored.request_id());
  opening("retry of the stored one", ft, people[0], "EXT-STORED", stored.request_id());
  calls.back().r = stored;
  opening("other operator", apec, apec_only, "EXT-A", uuid(3));  // its own ids
  opening("unknown operator", ghost, people[3], "EXT-G", uuid(14));
  // A regional operator's calls in the same batch as ft's, same region: its designation decides.
  opening("regional, designated", ore, at_ore, "EXT-ORE", uuid(15));
  opening("regional, before its designation", ore, at_ore, "EXT-ORE-2023", uuid(16));
  *calls.back().r.mutable_case_()->mutable_opening_date() = D(2023, 5, 6);

  std::vector<std::thread> threads;
  auto run = [&](size_t i) { threads.emplace_back([&, i] { calls[i].result = logic.OpenCase(*calls[i].p, calls[i].r); }); };
  run(0);
  run(1);
  gated.AwaitGated();
  for (size_t i = 2; i < calls.size(); ++i) run(i);
  AwaitQueued(logic, calls.size() - 2);  // every other call queued behind the held two
  gated.Open();
  for (auto& t : threads) t.join();
  EXPECT_EQ(logic.case_opening_batches(), 3) << "the queued calls were not written as one batch";
  // The two held, the batch, then the two calls repeating a request id of the batch, each alone
  // (as a retry): the batch's own transaction did not fail over to one transaction per call.
  EXPECT_EQ(gated.transactions(), 5);

  std::map<std::string, const Call*> by;
  for (const Call& c : calls) by[c.what] = &c;
  auto code = [&](const std::string& what) { return by[what]->result.status().code(); };
  for (const char* ok : {"held 1", "held 2", "plain a", "plain b", "same request 1", "same request 2",
                         "retry of the stored one", "other operator", "regional, designated"}) {
    ASSERT_TRUE(by[ok]->result.ok()) << ok << ": " << by[ok]->result.status();
  }
  // A retry racing its first attempt gets the same case; a retry of a stored request its case.
  EXPECT_EQ(by["same request 1"]->result->name(), by["same request 2"]->result->name());
  EXPECT_EQ(by["retry of the stored one"]->result->name(), holder.name());
  // One external id, two openings: one case, the other told which case holds it.
  const bool first_won = by["same external id 1"]->result.ok();
  const Call* won = by[first_won ? "same external id 1" : "same external id 2"];
  const Call* lost = by[first_won ? "same external id 2" : "same external id 1"];
  ASSERT_TRUE(won->result.ok()) << won->result.status();
  EXPECT_EQ(lost->result.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(lost->result.status().message().find(won->result->name()), std::string::npos) << lost->result.status();
  EXPECT_EQ(code("stored external id"), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(by["stored external id"]->result.status().message().find(holder.name()), std::string::npos);
  EXPECT_EQ(code("not registered here"), absl::StatusCode::kNotFound);
  EXPECT_EQ(code("unknown level"), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(HasField(ToGrpcStatus(by["unknown level"]->result.status()), "case.level"));
  EXPECT_EQ(code("request id of another request"), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(HasField(ToGrpcStatus(by["request id of another request"]->result.status()), "request_id"));
  EXPECT_EQ(code("unknown operator"), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(code("regional, before its designation"), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(PreconditionTypes(ToGrpcStatus(by["regional, before its designation"]->result.status()))
                  .count("OPERATOR_NOT_DESIGNATED"));

  // Each new case as answered is the stored one, with one CASE_OPENED event and one audit entry
  // of its opening (a retry's answer is audited as a read, "retry: ..."); the refused calls wrote
  // nothing.
  std::set<std::string> created;
  for (const Call& c : calls) {
    if (!c.result.ok() || c.result->name() == holder.name()) continue;
    if (!created.insert(c.result->name()).second) continue;
    const std::string op = absl::StrCat("operator:", c.result->operator_().substr(std::string("operators/").size()));
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*c.result, Get(op, c.result->name())))
        << c.what << "\nanswered: " << c.result->DebugString();
    int opened = 0;
    for (const AuditEntry& a : AuditOf(c.result->name())) opened += a.action == "OpenCase" && a.detail.empty() ? 1 : 0;
    EXPECT_EQ(opened, 1) << c.what;
  }
  EXPECT_EQ(created.size(), 8u);  // held 1 and 2, plain a and b, same request, same external id, other operator, regional
  std::map<std::string, int> opened_events;
  const std::vector<pb::ActivityEvent> events = Activity();
  for (size_t i = events_before; i < events.size(); ++i) {
    if (events[i].kind() == pb::ACTIVITY_KIND_CASE_OPENED) ++opened_events[events[i].case_()];
  }
  EXPECT_EQ(opened_events.size(), created.size());
  for (const std::string& name : created) EXPECT_EQ(opened_events[name], 1) << name;
  EXPECT_EQ(CountCases("ft"), 1 + 6);
  EXPECT_EQ(CountCases("apec"), 1);
  EXPECT_EQ(CountCases("ore"), 1);
}

TEST_P(CepServiceTest, ABatchOfCaseOpeningsThatFailsIsRetriedCallByCall) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  std::vector<pb::Beneficiary> people;
  for (int i = 0; i < 5; ++i) people.push_back(Register(kFt, absl::StrCat("RETRY-", i)));
  // The two held writes, then the batch queued behind them fails: each of its calls is written
  // again in its own transaction, with the answer it would have had.
  GatedRepository gated(app_->repository(), 2, /*fail_nth=*/3);
  Cep logic(gated, clock_, aip::PageTokenCodec("page-key"), "pseudonym-key", FeedOptions());
  const Principal ft{Principal::Kind::kOperator, "ft"};
  std::vector<pb::OpenCaseRequest> requests;
  for (int i = 0; i < 5; ++i) {
    requests.push_back(Opening(people[i], D(2024, 5, 6)));
    requests.back().mutable_case_()->set_external_id(absl::StrCat("EXT-", i));
  }
  requests[4].mutable_case_()->set_external_id("EXT-3");  // taken by the call before it
  std::vector<absl::StatusOr<pb::Case>> results(requests.size(), absl::UnknownError("not called"));
  std::vector<std::thread> threads;
  auto run = [&](size_t i) { threads.emplace_back([&, i] { results[i] = logic.OpenCase(ft, requests[i]); }); };
  run(0);
  run(1);
  gated.AwaitGated();
  for (size_t i = 2; i < requests.size(); ++i) run(i);
  AwaitQueued(logic, requests.size() - 2);
  gated.Open();
  for (auto& t : threads) t.join();
  EXPECT_EQ(gated.transactions(), 2 + 1 + 3);
  int created = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    if (i == 3 || i == 4) continue;
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status();
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*results[i], Get(kFt, results[i]->name())));
    ++created;
  }
  // EXT-3: whichever of the two ran first holds it; the other is told so.
  ASSERT_NE(results[3].ok(), results[4].ok());
  const absl::StatusOr<pb::Case>& lost = results[3].ok() ? results[4] : results[3];
  const absl::StatusOr<pb::Case>& won = results[3].ok() ? results[3] : results[4];
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(lost.status().message().find(won->name()), std::string::npos) << lost.status();
  EXPECT_EQ(CountCases("ft"), created + 1);
}

// A batch whose commit's outcome is unknown (the connection went during COMMIT) is not written
// again call by call: it may have committed, and it had (here it did), so writing again would
// open every case twice. Each call is told UNKNOWN; each case exists once.
TEST_P(CepServiceTest, ABatchOfCaseOpeningsWhoseCommitIsUnknownIsNotWrittenAgain) {
  AddOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"53"});
  std::vector<pb::Beneficiary> people;
  for (int i = 0; i < 5; ++i) people.push_back(Register(kFt, absl::StrCat("UNKNOWN-", i)));
  GatedRepository gated(app_->repository(), 2, /*fail_nth=*/3, /*commit_then_unknown=*/true);
  Cep logic(gated, clock_, aip::PageTokenCodec("page-key"), "pseudonym-key", FeedOptions());
  const Principal ft{Principal::Kind::kOperator, "ft"};
  std::vector<absl::StatusOr<pb::Case>> results(5, absl::UnknownError("not called"));
  std::vector<std::thread> threads;
  auto run = [&](size_t i) {
    threads.emplace_back([&, i] { results[i] = logic.OpenCase(ft, Opening(people[i], D(2024, 5, 6))); });
  };
  run(0);
  run(1);
  gated.AwaitGated();
  for (size_t i = 2; i < 5; ++i) run(i);
  AwaitQueued(logic, 3);
  gated.Open();
  for (auto& t : threads) t.join();
  EXPECT_EQ(gated.transactions(), 2 + 1);  // no call written again alone
  for (size_t i = 0; i < 2; ++i) EXPECT_TRUE(results[i].ok()) << i << ": " << results[i].status();
  for (size_t i = 2; i < 5; ++i) EXPECT_EQ(results[i].status().code(), absl::StatusCode::kUnknown) << i;
  EXPECT_EQ(CountCases("ft"), 5);  // the unknown batch did commit: once
}

INSTANTIATE_TEST_SUITE_P(Backends, CepServiceTest, ::testing::Values("sqlite", "mysql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace parcours::cep
