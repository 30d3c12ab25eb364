// The scenario steps that drive the gateway's public services (case files through
// OperatorService, the seed jury through CertifierService...), shared by gateway_service_test
// (in-process gateway) and e2e_test (the real binaries). The two authenticate differently, so each
// supplies how a call carries a principal's credentials.
#ifndef PARCOURS_GATEWAY_TESTING_GATEWAY_SCENARIO_H_
#define PARCOURS_GATEWAY_TESTING_GATEWAY_SCENARIO_H_

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/type/date.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "parcours/cep/v1/cep.grpc.pb.h"
#include "parcours/gateway/v1/certifier.grpc.pb.h"
#include "parcours/gateway/v1/national.grpc.pb.h"
#include "parcours/gateway/v1/operator.grpc.pb.h"
#include "parcours/gateway/v1/region.grpc.pb.h"

namespace parcours::gateway::testing {

// The seed CQP both tests load (referential-svc/data/cqp-technicien-maintenance-alimentaire.json).
inline constexpr char kScenarioSeedVersion[] = "certifications/CQP-TMSA/versions/1";
inline constexpr char kScenarioNational[] = "national";
inline constexpr char kScenarioCertifier[] = "certifier:CPNE-IA";

inline google::type::Date ScenarioDate(int year, int month, int day) {
  google::type::Date date;
  date.set_year(year);
  date.set_month(month);
  date.set_day(day);
  return date;
}

// A test fixture mixes this in and calls ConnectGateway() once its gateway is up: the steps then
// run against the stubs below, which the fixture's own checks use as well.
class GatewayScenario {
 public:
  using National = v1::NationalService::Stub;
  using Region = v1::RegionService::Stub;
  using Operator = v1::OperatorService::Stub;
  using Certifier = v1::CertifierService::Stub;
  // Puts `principal`'s credentials on `ctx` ("" = none): a plain principal for the in-process
  // gateway, a signed token for the real one.
  using Authenticate = std::function<void(grpc::ClientContext& ctx, const std::string& principal)>;

  // Again after a restart: the stubs follow the new gateway.
  void ConnectGateway(std::shared_ptr<grpc::Channel> channel, Authenticate authenticate) {
    channel_ = std::move(channel);
    authenticate_ = std::move(authenticate);
    national_ = v1::NationalService::NewStub(channel_);
    region_ = v1::RegionService::NewStub(channel_);
    operator_ = v1::OperatorService::NewStub(channel_);
    certifier_ = v1::CertifierService::NewStub(channel_);
  }

  // Calls `method` as `principal` ("" = no credentials).
  template <typename Stub, typename Req, typename Resp>
  grpc::Status Call(Stub* stub, const std::string& principal,
                    grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*), const Req& request,
                    Resp* response) const {
    grpc::ClientContext ctx;
    authenticate_(ctx, principal);
    ctx.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
    return (stub->*method)(&ctx, request, response);
  }

  // The same, for a step that must succeed: a failure is reported and the test carries on.
  template <typename Stub, typename Req, typename Resp>
  Resp MustCall(Stub* stub, const std::string& principal,
                grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*), const Req& request) const {
    Resp response;
    grpc::Status s = Call(stub, principal, method, request, &response);
    EXPECT_TRUE(s.ok()) << principal << " " << s.error_code() << ": " << s.error_message();
    return response;
  }

  // --- CEP (NationalService, OperatorService) ----------------------------------------------------

  void AddOperator(const std::string& id, ::parcours::cep::v1::OperatorKind kind, const std::vector<std::string>& regions) {
    ::parcours::cep::v1::CreateOperatorRequest req;
    req.set_operator_id(id);
    req.mutable_operator_()->set_display_name(absl::StrCat("Opérateur ", id));
    req.mutable_operator_()->set_kind(kind);
    for (const std::string& r : regions) req.mutable_operator_()->add_regions(r);
    MustCall(national_.get(), kScenarioNational, &National::CreateOperator, req);
  }

  // Registers a beneficiary (known by `external_id` to `op`) and opens her case.
  ::parcours::cep::v1::Case OpenCase(const std::string& op, const std::string& external_id, const std::string& department = "35") {
    ::parcours::cep::v1::RegisterBeneficiaryRequest reg;
    reg.set_external_id(external_id);
    reg.mutable_beneficiary()->set_birth_year(1988);
    reg.mutable_beneficiary()->set_sex(::parcours::cep::v1::SEX_FEMALE);
    reg.mutable_beneficiary()->set_department(department);
    reg.mutable_beneficiary()->set_status(::parcours::cep::v1::EMPLOYMENT_STATUS_EMPLOYEE);
    reg.mutable_contact()->set_display_name("Élodie Martin");
    reg.mutable_contact()->set_email("elodie.martin@example.fr");
    ::parcours::cep::v1::Beneficiary b = MustCall(operator_.get(), op, &Operator::RegisterBeneficiary, reg);
    ::parcours::cep::v1::OpenCaseRequest open;
    open.mutable_case_()->set_beneficiary(b.name());
    *open.mutable_case_()->mutable_opening_date() = ScenarioDate(2024, 3, 1);
    open.mutable_case_()->set_level("2019/2");
    open.mutable_case_()->add_demands(::parcours::cep::v1::DEMAND_KIND_SKILLS_RECOGNITION);
    open.set_request_id(absl::StrCat("open-", external_id));
    return MustCall(operator_.get(), op, &Operator::OpenCase, open);
  }

  void RecordService(const std::string& op, const std::string& case_name, ::parcours::cep::v1::ServiceKind kind, int day) {
    ::parcours::cep::v1::RecordServiceRequest service;
    service.set_name(case_name);
    service.mutable_service()->set_kind(kind);
    *service.mutable_service()->mutable_date() = ScenarioDate(2024, 3, day);
    MustCall(operator_.get(), op, &Operator::RecordService, service);
  }

  // The case's VAE outcome, pointing at an evaluation-svc candidacy: what the journey composes.
  void LinkVae(const std::string& op, const std::string& case_name, const std::string& candidacy) {
    ::parcours::cep::v1::RecordOutcomeRequest outcome;
    outcome.set_name(case_name);
    outcome.mutable_outcome()->set_kind(::parcours::cep::v1::OUTCOME_KIND_VAE);
    outcome.mutable_outcome()->set_candidacy(candidacy);
    *outcome.mutable_outcome()->mutable_date() = ScenarioDate(2024, 5, 2);
    MustCall(operator_.get(), op, &Operator::RecordOutcome, outcome);
  }

  // The status is the caller's to check: refusals and degraded journeys are what tests look at.
  v1::BeneficiaryJourney Journey(const std::string& op, const std::string& case_name, grpc::Status* status) const {
    v1::GetBeneficiaryJourneyRequest req;
    req.set_case_(case_name);
    v1::BeneficiaryJourney out;
    *status = Call(operator_.get(), op, &Operator::GetBeneficiaryJourney, req, &out);
    return out;
  }

  // --- Evaluation (CertifierService) ---------------------------------------------------------------

  // `cep_case`: the referring CEP case, which the candidacy names back (what a journey requires).
  ::parcours::evaluation::v1::Candidacy NewCandidacy(const std::string& candidate, const std::string& cep_case = "") {
    ::parcours::evaluation::v1::CreateCandidacyRequest req;
    req.mutable_candidacy()->set_candidate_id(candidate);
    req.mutable_candidacy()->set_cep_case(cep_case);
    req.mutable_candidacy()->set_candidate_display_name("Élodie Martin");
    req.mutable_candidacy()->set_referential_version(kScenarioSeedVersion);
    return MustCall(certifier_.get(), kScenarioCertifier, &Certifier::CreateCandidacy, req);
  }

  static ::parcours::evaluation::v1::JuryMember Member(const std::string& id, ::parcours::evaluation::v1::College college, bool president,
                                           ::parcours::evaluation::v1::Gender gender) {
    ::parcours::evaluation::v1::JuryMember m;
    m.set_member_id(id);
    m.set_display_name(absl::StrCat("Membre ", id));
    m.set_college(college);
    m.set_president(president);
    m.set_qualified(true);
    m.set_gender(gender);
    return m;
  }

  // A valid jury (J1 presides; three colleges, both genders) whose members are "jury-member:J<n>".
  ::parcours::evaluation::v1::JurySession NewSession() {
    namespace ev = ::parcours::evaluation::v1;
    ev::CreateJurySessionRequest req;
    *req.mutable_session()->mutable_date() = ScenarioDate(2026, 6, 12);
    req.mutable_session()->set_place("Rennes");
    *req.mutable_session()->add_members() = Member("J1", ev::COLLEGE_EMPLOYER, true, ev::GENDER_FEMALE);
    *req.mutable_session()->add_members() = Member("J2", ev::COLLEGE_EMPLOYEE, false, ev::GENDER_MALE);
    *req.mutable_session()->add_members() = Member("J3", ev::COLLEGE_QUALIFIED_PERSON, false, ev::GENDER_FEMALE);
    return MustCall(certifier_.get(), kScenarioCertifier, &Certifier::CreateJurySession, req);
  }

  // The seed jury scenario, each actor as itself: BC1, BC2 and BC4 acquired, BC3 and BC5 not
  // (PARTIAL). Returns the deliberation as sealed by the last signature.
  ::parcours::evaluation::v1::Deliberation JuryPartialResult(const ::parcours::evaluation::v1::Candidacy& c) {
    namespace ev = ::parcours::evaluation::v1;
    ev::RequestAdmissibilityRequest ask;
    ask.set_name(c.name());
    MustCall(certifier_.get(), kScenarioCertifier, &Certifier::RequestAdmissibility, ask);
    ev::DecideAdmissibilityRequest decide;
    decide.set_name(c.name());
    decide.set_admissible(true);
    decide.set_reason("trois ans d'expérience");
    MustCall(certifier_.get(), kScenarioCertifier, &Certifier::DecideAdmissibility, decide);
    ev::FileDossierRequest file;
    file.set_name(c.name());
    MustCall(certifier_.get(), kScenarioCertifier, &Certifier::FileDossier, file);
    ev::JurySession s = NewSession();
    ev::ScheduleCandidacyRequest schedule;
    schedule.set_session(s.name());
    schedule.set_candidacy(c.name());
    MustCall(certifier_.get(), kScenarioCertifier, &Certifier::ScheduleCandidacy, schedule);
    for (const char* m : {"J1", "J2", "J3"}) {
      ev::ConfirmPreparationRequest prepare;
      prepare.set_session(s.name());
      prepare.set_referential_read(true);
      prepare.set_no_conflict_of_interest(true);
      MustCall(certifier_.get(), absl::StrCat("jury-member:", m), &Certifier::ConfirmPreparation, prepare);
    }
    ev::StartJurySessionRequest go;
    go.set_name(s.name());
    MustCall(certifier_.get(), kScenarioCertifier, &Certifier::StartJurySession, go);
    ev::RecordPassageRequest passage;
    passage.set_session(s.name());
    passage.set_candidacy(c.name());
    passage.set_attendance(ev::ATTENDANCE_PRESENT);
    passage.set_presentation_seconds(540);
    passage.set_exchange_seconds(570);
    passage.set_question_count(8);
    MustCall(certifier_.get(), "jury-member:J1", &Certifier::RecordPassage, passage);

    ::parcours::referential::v1::GetVersionRequest get_version;
    get_version.set_name(kScenarioSeedVersion);
    ::parcours::referential::v1::Version version = MustCall(certifier_.get(), kScenarioCertifier, &Certifier::GetVersion, get_version);
    EXPECT_EQ(version.blocs_size(), 5);  // the percentages below cover the seed's five blocs
    const std::map<std::string, int> pct = {{"BC1", 80}, {"BC2", 75}, {"BC3", 60}, {"BC4", 72}, {"BC5", 55}};
    for (const char* m : {"J1", "J2", "J3"}) {
      ev::SubmitScoreSheetRequest sheet;
      sheet.set_candidacy(c.name());
      for (const auto& bloc : version.blocs()) {
        for (const auto& comp : bloc.competences()) {
          auto* cs = sheet.mutable_sheet()->add_competence_scores();
          cs->set_competence_code(comp.code());
          cs->set_mark(ev::DOSSIER_MARK_CLEAR);
          cs->set_percent(pct.at(bloc.code()));
        }
        auto* bs = sheet.mutable_sheet()->add_bloc_scores();
        bs->set_bloc_code(bloc.code());
        bs->set_percent(pct.at(bloc.code()));
        bs->set_interview_level(3);
      }
      MustCall(certifier_.get(), absl::StrCat("jury-member:", m), &Certifier::SubmitScoreSheet, sheet);
    }
    ev::OpenDeliberationRequest open;
    open.set_candidacy(c.name());
    ev::Deliberation d = MustCall(certifier_.get(), kScenarioCertifier, &Certifier::OpenDeliberation, open);
    ev::RecordDecisionRequest decision;
    decision.set_name(d.name());
    for (const auto& [bloc, percent] : pct) {
      auto* a = decision.add_appreciations();
      a->set_bloc_code(bloc);
      a->set_common_percent(percent);
      a->set_comment("appréciation du jury");
    }
    decision.set_proposal(ev::PROPOSAL_KIND_PARTIAL);
    MustCall(certifier_.get(), "jury-member:J1", &Certifier::RecordDecision, decision);
    ev::Deliberation signed_d;
    for (const char* m : {"J1", "J2", "J3"}) {
      ev::SignDeliberationRequest sign;
      sign.set_name(d.name());
      signed_d = MustCall(certifier_.get(), absl::StrCat("jury-member:", m), &Certifier::SignDeliberation, sign);
    }
    return signed_d;
  }

 protected:
  // Generous: the e2e cluster runs on a loaded CI machine.
  static constexpr std::chrono::seconds kCallTimeout{20};

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<National> national_;
  std::unique_ptr<Region> region_;
  std::unique_ptr<Operator> operator_;
  std::unique_ptr<Certifier> certifier_;
  Authenticate authenticate_;
};

}  // namespace parcours::gateway::testing

#endif  // PARCOURS_GATEWAY_TESTING_GATEWAY_SCENARIO_H_
