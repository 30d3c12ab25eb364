// evaluation-svc over real gRPC with a real referential-svc, on SQLite and MariaDB: the seed's
// jury scenario end to end, and each jury rule broken once.
#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/util/json_util.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "parcours/evaluation/v1/evaluation.grpc.pb.h"
#include "parcours/referential/v1/referential.grpc.pb.h"
#include "platform/clock.h"
#include "platform/config.h"
#include "platform/db/db.h"
#include "platform/principal.h"
#include "platform/server.h"
#include "platform/testing/concurrently.h"
#include "platform/testing/lock_race.h"
#include "platform/testing/mariadb.h"
#include "platform/testing/status_details.h"
#include "platform/testing/national_context.h"
#include "evaluation-svc/src/app.h"
#include "evaluation-svc/src/repository.h"
#include "evaluation-svc/src/rules.h"
#include "referential-svc/src/app.h"

namespace parcours::evaluation {
namespace {

using ::parcours::testing::BadFields;
using ::parcours::testing::PreconditionTypes;
namespace pb = ::parcours::evaluation::v1;
namespace ref = ::parcours::referential::v1;

const char kSeedFile[] = PARCOURS_SOURCE_DIR "/referential-svc/data/cqp-technicien-maintenance-alimentaire.json";
const char kSeedVersion[] = "certifications/CQP-TMSA/versions/1";
const char kCertifier[] = "certifier:CPNE-IA";



// Starts a ServerRunner on loopback for one app.
std::unique_ptr<ServerRunner> Serve(ServiceApp& app, const std::string& name) {
  ServerOptions options;
  options.service_name = name;
  options.metrics_listen = "";
  auto runner = std::make_unique<ServerRunner>(options);
  for (grpc::Service* s : app.services()) runner->AddService(s);
  EXPECT_TRUE(runner->Start().ok());
  return runner;
}

class EvaluationServiceTest : public ::testing::TestWithParam<std::string> {
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
    // referential-svc with the seed CQP.
    const std::string ref_dsn = testing::FreshSqliteDatabase();
    {
      auto db = db::Open(ref_dsn);
      ASSERT_TRUE(db.ok());
      ASSERT_TRUE(referential::Migrate(**db).ok());
    }
    auto ref_app = referential::App::Create(Config::FromMap({{"database.dsn", ref_dsn}}));
    ASSERT_TRUE(ref_app.ok()) << ref_app.status();
    referential_app_ = *std::move(ref_app);
    ASSERT_TRUE(referential_app_->LoadDocument(kSeedFile).ok());
    referential_runner_ = Serve(*referential_app_, "referential-svc");
    referential_stub_ = ref::ReferentialService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", referential_runner_->port()), grpc::InsecureChannelCredentials()));

    const std::string dsn = FreshDsn();
    dsn_ = dsn;
    {
      auto db = db::Open(dsn);
      ASSERT_TRUE(db.ok()) << db.status();
      ASSERT_TRUE(Migrate(**db).ok());
    }
    auto app = App::Create(Config::FromMap({{"database.dsn", dsn},
                                            {"referential.address",
                                             absl::StrCat("127.0.0.1:", referential_runner_->port())},
                                            {"referential.deadline", "500ms"},
                                            // Every read sees the fiche as France compétences left it.
                                            {"referential.state_ttl", "0s"}}),
                           &clock_);
    ASSERT_TRUE(app.ok()) << app.status();
    app_ = *std::move(app);
    runner_ = Serve(*app_, "evaluation-svc");
    stub_ = pb::EvaluationService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", runner_->port()), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (runner_) runner_->Shutdown();
    if (referential_runner_) referential_runner_->Shutdown();
  }

  // Calls `method` as `principal`.
  template <typename Req, typename Resp>
  grpc::Status Call(const std::string& principal,
                    grpc::Status (pb::EvaluationService::Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                    const Req& request, Resp* response) {
    grpc::ClientContext ctx;
    ctx.AddMetadata(kPrincipalMetadata, principal);
    return (stub_.get()->*method)(&ctx, request, response);
  }

  template <typename Req, typename Resp>
  Resp MustCall(const std::string& principal,
                grpc::Status (pb::EvaluationService::Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                const Req& request) {
    Resp response;
    grpc::Status s = Call(principal, method, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
    return response;
  }

  pb::Candidacy NewCandidacy(const std::string& candidate, const std::string& version = kSeedVersion) {
    pb::CreateCandidacyRequest req;
    req.mutable_candidacy()->set_candidate_id(candidate);
    req.mutable_candidacy()->set_candidate_display_name("Élodie Martin");
    req.mutable_candidacy()->set_referential_version(version);
    return MustCall(kCertifier, &pb::EvaluationService::Stub::CreateCandidacy, req);
  }

  // Information -> admissible -> dossier filed.
  pb::Candidacy ToDossierFiled(const pb::Candidacy& c) {
    pb::RequestAdmissibilityRequest ask;
    ask.set_name(c.name());
    MustCall(kCertifier, &pb::EvaluationService::Stub::RequestAdmissibility, ask);
    pb::DecideAdmissibilityRequest decide;
    decide.set_name(c.name());
    decide.set_admissible(true);
    decide.set_reason("trois ans d'expérience en maintenance");
    MustCall(kCertifier, &pb::EvaluationService::Stub::DecideAdmissibility, decide);
    pb::FileDossierRequest file;
    file.set_name(c.name());
    return MustCall(kCertifier, &pb::EvaluationService::Stub::FileDossier, file);
  }

  static pb::JuryMember Member(const std::string& id, const std::string& name, pb::College college, bool president,
                               pb::Gender gender) {
    pb::JuryMember m;
    m.set_member_id(id);
    m.set_display_name(name);
    m.set_function(college == pb::COLLEGE_EMPLOYER ? "Responsable maintenance" : "Technicien de maintenance");
    m.set_college(college);
    m.set_president(president);
    m.set_qualified(true);
    m.set_gender(gender);
    return m;
  }

  // The seed's 3-member jury: a president (employer college), an employee, a qualified person.
  pb::JurySession NewSession(const std::vector<pb::JuryMember>& members, absl::CivilDay date = absl::CivilDay(2026, 6, 12)) {
    pb::CreateJurySessionRequest req;
    req.mutable_session()->mutable_date()->set_year(static_cast<int32_t>(date.year()));
    req.mutable_session()->mutable_date()->set_month(date.month());
    req.mutable_session()->mutable_date()->set_day(date.day());
    req.mutable_session()->set_place("Rennes");
    for (const auto& m : members) *req.mutable_session()->add_members() = m;
    return MustCall(kCertifier, &pb::EvaluationService::Stub::CreateJurySession, req);
  }

  static std::vector<pb::JuryMember> SeedJury() {
    return {Member("J1", "Anne Leroy", pb::COLLEGE_EMPLOYER, true, pb::GENDER_FEMALE),
            Member("J2", "Marc Petit", pb::COLLEGE_EMPLOYEE, false, pb::GENDER_MALE),
            Member("J3", "Sofia Durand", pb::COLLEGE_QUALIFIED_PERSON, false, pb::GENDER_FEMALE)};
  }

  // Another jury (members K1, K2, K3; K1 presides), none of whom sits on SeedJury().
  static std::vector<pb::JuryMember> SecondJury() {
    return {Member("K1", "Claire Morel", pb::COLLEGE_EMPLOYER, true, pb::GENDER_FEMALE),
            Member("K2", "Paul Girard", pb::COLLEGE_EMPLOYEE, false, pb::GENDER_MALE),
            Member("K3", "Nadia Bensaïd", pb::COLLEGE_QUALIFIED_PERSON, false, pb::GENDER_FEMALE)};
  }

  void PrepareAll(const pb::JurySession& s) {
    for (const auto& m : s.members()) {
      pb::ConfirmPreparationRequest req;
      req.set_session(s.name());
      req.set_referential_read(true);
      req.set_no_conflict_of_interest(true);
      MustCall("jury-member:" + m.member_id(), &pb::EvaluationService::Stub::ConfirmPreparation, req);
    }
  }

  // Starts the session (as the certifier).
  pb::JurySession Start(const pb::JurySession& s) {
    pb::StartJurySessionRequest go;
    go.set_name(s.name());
    return MustCall(kCertifier, &pb::EvaluationService::Stub::StartJurySession, go);
  }

  // Records that the candidate did not come (as the seed jury's president, J1).
  void RecordAbsent(const pb::JurySession& s, const pb::Candidacy& c) {
    pb::RecordPassageRequest passage;
    passage.set_session(s.name());
    passage.set_candidacy(c.name());
    passage.set_attendance(pb::ATTENDANCE_ABSENT);
    MustCall("jury-member:J1", &pb::EvaluationService::Stub::RecordPassage, passage);
  }

  // Puts the candidacy on the session (as the certifier).
  pb::JurySession Schedule(const pb::JurySession& s, const pb::Candidacy& c) {
    pb::ScheduleCandidacyRequest schedule;
    schedule.set_session(s.name());
    schedule.set_candidacy(c.name());
    return MustCall(kCertifier, &pb::EvaluationService::Stub::ScheduleCandidacy, schedule);
  }

  // Schedules, starts the session and records a present passage.
  void Pass(const pb::JurySession& s, const pb::Candidacy& c, bool start = true) {
    Schedule(s, c);
    if (start) {
      PrepareAll(s);
      Start(s);
    }
    pb::RecordPassageRequest passage;
    passage.set_session(s.name());
    passage.set_candidacy(c.name());
    passage.set_attendance(pb::ATTENDANCE_PRESENT);
    passage.set_presentation_seconds(540);
    passage.set_exchange_seconds(570);
    passage.set_question_count(8);
    MustCall("jury-member:J1", &pb::EvaluationService::Stub::RecordPassage, passage);
  }

  ref::Version SeedVersion() {
    ref::GetVersionRequest get;
    get.set_name(kSeedVersion);
    ref::Version v;
    grpc::ClientContext ctx;
    EXPECT_TRUE(referential_stub_->GetVersion(&ctx, get, &v).ok());
    return v;
  }

  // A complete sheet for the blocs to evaluate, interview % per bloc from `percents` (+ offset).
  pb::ScoreSheet Sheet(const std::vector<std::string>& blocs, const std::map<std::string, int>& percents, int offset) {
    ref::Version v = SeedVersion();
    pb::ScoreSheet sheet;
    for (const auto& bloc : v.blocs()) {
      if (std::find(blocs.begin(), blocs.end(), bloc.code()) == blocs.end()) continue;
      for (const auto& comp : bloc.competences()) {
        auto* cs = sheet.add_competence_scores();
        cs->set_competence_code(comp.code());
        cs->set_mark(percents.at(bloc.code()) >= 70 ? pb::DOSSIER_MARK_CLEAR : pb::DOSSIER_MARK_PARTIAL);
        cs->set_percent(percents.at(bloc.code()));
      }
      auto* bs = sheet.add_bloc_scores();
      bs->set_bloc_code(bloc.code());
      bs->set_percent(std::clamp(percents.at(bloc.code()) + offset, 0, 100));
      bs->set_interview_level(percents.at(bloc.code()) >= 70 ? 3 : 2);
    }
    return sheet;
  }

  void ScoreAll(const pb::Candidacy& c, const std::vector<std::string>& blocs, const std::map<std::string, int>& pct,
                const std::vector<std::string>& members = {"J1", "J2", "J3"}) {
    int offset = -3;
    for (const std::string& member : members) {
      pb::SubmitScoreSheetRequest req;
      req.set_candidacy(c.name());
      *req.mutable_sheet() = Sheet(blocs, pct, offset);
      offset += 3;
      MustCall(absl::StrCat("jury-member:", member), &pb::EvaluationService::Stub::SubmitScoreSheet, req);
    }
  }

  pb::RecordDecisionRequest Decision(const std::string& deliberation, const std::map<std::string, int>& pct,
                                     pb::ProposalKind proposal) {
    pb::RecordDecisionRequest req;
    req.set_name(deliberation);
    for (const auto& [bloc, percent] : pct) {
      auto* a = req.add_appreciations();
      a->set_bloc_code(bloc);
      a->set_common_percent(percent);
      a->set_comment(percent >= 70 ? "Maîtrise démontrée" : "À consolider");
    }
    req.set_proposal(proposal);
    return req;
  }

  pb::Deliberation SignAll(const std::string& deliberation,
                           const std::vector<std::string>& members = {"J1", "J2", "J3"}) {
    pb::Deliberation d;
    for (const std::string& member : members) {
      pb::SignDeliberationRequest sign;
      sign.set_name(deliberation);
      d = MustCall(absl::StrCat("jury-member:", member), &pb::EvaluationService::Stub::SignDeliberation, sign);
    }
    return d;
  }

  // Opens the candidacy's deliberation (as `opener`), records `proposal` with the common `pct` as
  // the president, and has every member sign: the sealed round.
  pb::Deliberation Seal(const pb::Candidacy& c, const std::map<std::string, int>& pct, pb::ProposalKind proposal,
                        const std::string& opener = kCertifier) {
    pb::OpenDeliberationRequest open;
    open.set_candidacy(c.name());
    pb::Deliberation d = MustCall(opener, &pb::EvaluationService::Stub::OpenDeliberation, open);
    MustCall("jury-member:J1", &pb::EvaluationService::Stub::RecordDecision, Decision(d.name(), pct, proposal));
    return SignAll(d.name());
  }

  // A jury for `c` alone: a session, the candidate's passage, every member's sheet on `blocs`
  // (ScoreAll), the `proposal` decided and signed (Seal).
  pb::Deliberation SealedResult(const pb::Candidacy& c, const std::vector<std::string>& blocs,
                                const std::map<std::string, int>& pct, pb::ProposalKind proposal) {
    pb::JurySession s = NewSession(SeedJury());
    Pass(s, c);
    ScoreAll(c, blocs, pct);
    return Seal(c, pct, proposal);
  }

  // France compétences changes the seed CQP's fiche (`path` of UpdateCertification's mask).
  void UpdateSeedCertification(const std::string& path, const std::function<void(ref::Certification&)>& change) {
    ref::UpdateCertificationRequest update;
    update.mutable_certification()->set_name("certifications/CQP-TMSA");
    change(*update.mutable_certification());
    update.mutable_update_mask()->add_paths(path);
    ref::Certification updated;
    testing::NationalContext ctx;
    grpc::Status s = referential_stub_->UpdateCertification(&ctx, update, &updated);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  // An RS fiche without blocs, certifications/RS5001 (version 1): the seed's document otherwise.
  void LoadRsFiche() {
  std::ifstream in(kSeedFile);
  std::string seed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ref::ReferentialDocument rs;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(seed, &rs).ok());
  rs.mutable_certification()->set_code("RS5001");
  rs.mutable_certification()->set_kind(ref::CERTIFICATION_KIND_RS);
  rs.mutable_certification()->set_title("Habilitation à la maintenance des lignes de conditionnement");
  rs.mutable_version()->clear_blocs();
  rs.mutable_version()->clear_correspondences();
  std::string json;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(rs, &json).ok());
  const std::string path = ::testing::TempDir() + "/rs5001-" + GetParam() + ".json";
  std::ofstream(path) << json;
  absl::Status loaded = referential_app_->LoadDocument(path);
  ASSERT_TRUE(loaded.ok()) << loaded;
  }

  // A published copy of the seed version whose acquired blocs are valid `months` months.
  ref::Version PublishSeedCopyWithBlocValidity(int months) {
    ref::CreateVersionRequest draft;
    draft.set_parent("certifications/CQP-TMSA");
    draft.set_source_version(kSeedVersion);
    ref::Version v;
    {
      testing::NationalContext ctx;
      grpc::Status s = referential_stub_->CreateVersion(&ctx, draft, &v);
      EXPECT_TRUE(s.ok()) << s.error_message();
    }
    ref::UpdateVersionRequest update;
    *update.mutable_version() = v;
    update.mutable_version()->mutable_validation_rules()->set_acquired_bloc_validity_months(months);
    update.mutable_update_mask()->add_paths("validation_rules");
    {
      testing::NationalContext ctx;
      grpc::Status s = referential_stub_->UpdateVersion(&ctx, update, &v);
      EXPECT_TRUE(s.ok()) << s.error_message();
    }
    ref::PublishVersionRequest publish;
    publish.set_name(v.name());
    testing::NationalContext ctx;
    grpc::Status s = referential_stub_->PublishVersion(&ctx, publish, &v);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return v;
  }

  // The text of the round's synthesis grid (pdftotext), lines joined by spaces.
  std::string GridText(const std::string& deliberation) {
    pb::RenderSynthesisGridRequest render;
    render.set_name(deliberation);
    pb::Document pdf = MustCall(kCertifier, &pb::EvaluationService::Stub::RenderSynthesisGrid, render);
    const std::string path = ::testing::TempDir() + "/grid-" + GetParam() + "-" +
                             absl::StrReplaceAll(deliberation, {{"/", "-"}}) + ".pdf";
    std::ofstream(path, std::ios::binary) << pdf.content();
    std::string text;
    FILE* pipe = popen(("pdftotext " + path + " -").c_str(), "r");
    EXPECT_NE(pipe, nullptr);
    if (pipe == nullptr) return text;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) text.append(buf, n);
    EXPECT_EQ(pclose(pipe), 0) << "pdftotext failed";
    return absl::StrReplaceAll(text, {{"\n", " "}});
  }

  int CountCandidacies() {
    pb::ListCandidaciesRequest list;
    list.set_page_size(1000);
    return MustCall(kCertifier, &pb::EvaluationService::Stub::ListCandidacies, list).candidacies_size();
  }

  // evaluation-svc's clock: today, until a test moves it on.
  FakeClock clock_{absl::Now()};
  std::string dsn_;  // evaluation-svc's database
  std::unique_ptr<referential::App> referential_app_;
  std::unique_ptr<ServerRunner> referential_runner_;
  std::unique_ptr<ref::ReferentialService::Stub> referential_stub_;
  std::unique_ptr<App> app_;
  std::unique_ptr<ServerRunner> runner_;
  std::unique_ptr<pb::EvaluationService::Stub> stub_;
};

const std::vector<std::string> kAllBlocs = {"BC1", "BC2", "BC3", "BC4", "BC5"};
const std::map<std::string, int> kFirstJury = {{"BC1", 80}, {"BC2", 75}, {"BC3", 60}, {"BC4", 72}, {"BC5", 55}};
// Every bloc acquired: a TOTAL.
const std::map<std::string, int> kAllAcquired = {{"BC1", 82}, {"BC2", 78}, {"BC3", 74}, {"BC4", 80}, {"BC5", 76}};

// A passage is recorded once: after the seal, recording it again (by the president or the
// certifier) is refused and changes nothing; the signed result stays DELIBERATED.
TEST_P(EvaluationServiceTest, APassageAfterTheSealIsRefused) {
  pb::Candidacy c = ToDossierFiled(NewCandidacy("cand-sealed-passage"));
  pb::JurySession s = NewSession(SeedJury());
  Pass(s, c);
  ScoreAll(c, kAllBlocs, kFirstJury);
  Seal(c, kFirstJury, pb::PROPOSAL_KIND_PARTIAL);
  pb::GetJurySessionRequest get_session;
  get_session.set_name(s.name());
  const pb::JurySession before = MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get_session);
  pb::GetCandidacyRequest get;
  get.set_name(c.name());
  ASSERT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get).state(),
            pb::CANDIDACY_STATE_DELIBERATED);
  for (const std::string who : {"jury-member:J1", kCertifier}) {
    pb::RecordPassageRequest again;
    again.set_session(s.name());
    again.set_candidacy(c.name());
    again.set_attendance(pb::ATTENDANCE_ABSENT);
    pb::JurySession out;
    grpc::Status refused = Call(who, &pb::EvaluationService::Stub::RecordPassage, again, &out);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << who;
    EXPECT_TRUE(PreconditionTypes(refused).count("INVALID_TRANSITION")) << refused.error_message();
  }
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get).state(),
            pb::CANDIDACY_STATE_DELIBERATED);
  const pb::JurySession after = MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get_session);
  EXPECT_EQ(after.etag(), before.etag());
  EXPECT_EQ(after.slots(0).attendance(), pb::ATTENDANCE_PRESENT);
}

// A candidate id is its certifier's: another certifier of the same certification that opens a
// candidacy under the same id has another person, who holds none of the first one's blocs and
// whose ledger shows none of them.
TEST_P(EvaluationServiceTest, AnotherCertifiersCandidateOfTheSameIdHoldsNoneOfItsBlocs) {
  pb::Candidacy c = ToDossierFiled(NewCandidacy("cand-same-id"));
  SealedResult(c, kAllBlocs, kFirstJury, pb::PROPOSAL_KIND_PARTIAL);  // BC1, BC2, BC4 acquired
  pb::ListAcquiredBlocsRequest ledger;
  ledger.set_parent("candidates/cand-same-id");
  ASSERT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::ListAcquiredBlocs, ledger).blocs_size(), 3);
  // A malformed version is the caller's mistake, not an unknown référentiel.
  ledger.set_for_version("CQP-TMSA/1");
  pb::ListAcquiredBlocsResponse none;
  grpc::Status malformed = Call(kCertifier, &pb::EvaluationService::Stub::ListAcquiredBlocs, ledger, &none);
  EXPECT_EQ(malformed.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << malformed.error_message();
  EXPECT_EQ(BadFields(malformed), std::vector<std::string>{"for_version"});
  ledger.clear_for_version();
  UpdateSeedCertification("certifiers", [](ref::Certification& cert) {
    for (const char* id : {"CPNE-IA", "OTHER"}) {
      ref::Certifier* certifier = cert.add_certifiers();
      certifier->set_name(absl::StrCat("Certificateur ", id));
      certifier->set_principal_id(id);
      certifier->set_active(true);
    }
  });
  pb::CreateCandidacyRequest req;
  req.mutable_candidacy()->set_candidate_id("cand-same-id");
  req.mutable_candidacy()->set_candidate_display_name("Autre personne");
  req.mutable_candidacy()->set_referential_version(kSeedVersion);
  const pb::Candidacy theirs = MustCall("certifier:OTHER", &pb::EvaluationService::Stub::CreateCandidacy, req);
  EXPECT_EQ(theirs.held_blocs_size(), 0) << theirs.DebugString();
  EXPECT_EQ(theirs.blocs_to_evaluate_size(), 5);
  EXPECT_EQ(MustCall("certifier:OTHER", &pb::EvaluationService::Stub::ListAcquiredBlocs, ledger).blocs_size(), 0);
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::ListAcquiredBlocs, ledger).blocs_size(), 3);
}

// A refusal grants nothing: there is no certificate to issue, and the ledger stays empty.
TEST_P(EvaluationServiceTest, ARefusalHasNothingToIssue) {
  pb::Candidacy c = ToDossierFiled(NewCandidacy("cand-refused"));
  pb::JurySession s = NewSession(SeedJury());
  Pass(s, c);
  const std::map<std::string, int> low = {{"BC1", 40}, {"BC2", 35}, {"BC3", 30}, {"BC4", 45}, {"BC5", 20}};
  ScoreAll(c, kAllBlocs, low);
  pb::Deliberation d = Seal(c, low, pb::PROPOSAL_KIND_REFUSAL, "jury-member:J1");
  ASSERT_EQ(d.state(), pb::DELIBERATION_STATE_SEALED);
  EXPECT_EQ(d.proposed_blocs_size(), 0);
  pb::IssueCertificateRequest issue;
  issue.set_name(c.name());
  pb::Candidacy after;
  grpc::Status refused = Call(kCertifier, &pb::EvaluationService::Stub::IssueCertificate, issue, &after);
  EXPECT_TRUE(PreconditionTypes(refused).count("NOTHING_TO_ISSUE")) << refused.error_message();
  pb::GetCandidacyRequest get;
  get.set_name(c.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get).state(),
            pb::CANDIDACY_STATE_DELIBERATED);
  pb::ListAcquiredBlocsRequest ledger;
  ledger.set_parent("candidates/cand-refused");
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::ListAcquiredBlocs, ledger).blocs_size(), 0);
}

// Candidacies on a certification are its certifiers' own: another certifier is refused, nothing
// is written.
TEST_P(EvaluationServiceTest, OnlyACertifierOfTheCertificationOpensCandidaciesOnIt) {
  pb::CreateCandidacyRequest req;
  req.mutable_candidacy()->set_candidate_id("cand-elsewhere");
  req.mutable_candidacy()->set_candidate_display_name("Paul Girard");
  req.mutable_candidacy()->set_referential_version(kSeedVersion);
  pb::Candidacy out;
  grpc::Status other = Call("certifier:OTHER", &pb::EvaluationService::Stub::CreateCandidacy, req, &out);
  EXPECT_EQ(other.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(other.error_message().find("CQP-TMSA"), std::string::npos) << other.error_message();
  // Whatever it asks for: not its certification comes first.
  pb::CreateCandidacyRequest odd = req;
  odd.mutable_candidacy()->add_target_blocs("BC9");
  EXPECT_EQ(Call("certifier:OTHER", &pb::EvaluationService::Stub::CreateCandidacy, odd, &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  pb::ListCandidaciesRequest list;
  EXPECT_EQ(MustCall("certifier:OTHER", &pb::EvaluationService::Stub::ListCandidacies, list).candidacies_size(), 0);
  EXPECT_EQ(CountCandidacies(), 0);
  // The certifier's own call, retried: one candidacy. The other certifier sending the same
  // request with the same request id gets the same refusal, not that candidacy.
  req.set_request_id("create-elsewhere-1");
  pb::Candidacy first = MustCall(kCertifier, &pb::EvaluationService::Stub::CreateCandidacy, req);
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::CreateCandidacy, req).name(), first.name());
  grpc::Status replay = Call("certifier:OTHER", &pb::EvaluationService::Stub::CreateCandidacy, req, &out);
  EXPECT_EQ(replay.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(replay.error_message().find(first.name()), std::string::npos) << replay.error_message();
  EXPECT_EQ(CountCandidacies(), 1);
}

// A request id is the certifier's own: another certifier sending the same one, with the same
// body or another, creates a session of its own and learns nothing of the first.
TEST_P(EvaluationServiceTest, AnotherCertifiersRequestIdCreatesItsOwnSession) {
  pb::CreateJurySessionRequest req;
  req.mutable_session()->mutable_date()->set_year(2026);
  req.mutable_session()->mutable_date()->set_month(6);
  req.mutable_session()->mutable_date()->set_day(12);
  req.mutable_session()->set_place("Rennes");
  for (const auto& m : SeedJury()) *req.mutable_session()->add_members() = m;
  req.set_request_id("session-2026-06-12");
  const pb::JurySession mine = MustCall(kCertifier, &pb::EvaluationService::Stub::CreateJurySession, req);
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::CreateJurySession, req).name(), mine.name());
  const pb::JurySession theirs = MustCall("certifier:OTHER", &pb::EvaluationService::Stub::CreateJurySession, req);
  EXPECT_NE(theirs.name(), mine.name());
  EXPECT_EQ(theirs.certifier(), "OTHER");
  pb::CreateJurySessionRequest other_body = req;
  other_body.mutable_session()->set_place("Brest");
  pb::JurySession out;
  grpc::Status again = Call("certifier:OTHER", &pb::EvaluationService::Stub::CreateJurySession, other_body, &out);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::INVALID_ARGUMENT);  // its own id, reused for another body
  EXPECT_EQ(again.error_message().find(mine.name()), std::string::npos) << again.error_message();
  // A third certifier, with another body under the same id: a fresh session, not "already used".
  const pb::JurySession third = MustCall("certifier:THIRD", &pb::EvaluationService::Stub::CreateJurySession, other_body);
  EXPECT_NE(third.name(), mine.name());
  EXPECT_NE(third.name(), theirs.name());
  pb::GetJurySessionRequest get;
  get.set_name(mine.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get).place(), "Rennes");
}

// Without a mask an update changes what the request sets (AIP-134): a new place keeps the
// members and the date (they were reset, leaving a session without its jury).
TEST_P(EvaluationServiceTest, AnUpdateWithoutMaskChangesOnlyWhatItSets) {
  const pb::JurySession s = NewSession(SeedJury());
  ASSERT_GT(s.members_size(), 0);
  pb::UpdateJurySessionRequest update;
  update.mutable_session()->set_name(s.name());
  update.mutable_session()->set_place("Lorient");
  const pb::JurySession moved = MustCall(kCertifier, &pb::EvaluationService::Stub::UpdateJurySession, update);
  EXPECT_EQ(moved.place(), "Lorient");
  EXPECT_EQ(moved.members_size(), s.members_size());
  EXPECT_EQ(moved.date().day(), s.date().day());
  EXPECT_EQ(moved.remote(), s.remote());
}

// Dates are real calendar days: "day <= 31" let a session on 2026-02-30 and statistics from
// 2023-02-31 through.
TEST_P(EvaluationServiceTest, ImpossibleDatesAreRefusedNamingTheirField) {
  pb::CreateJurySessionRequest req;
  req.mutable_session()->mutable_date()->set_year(2026);
  req.mutable_session()->mutable_date()->set_month(2);
  req.mutable_session()->mutable_date()->set_day(30);
  req.mutable_session()->set_place("Rennes");
  for (const auto& m : SeedJury()) *req.mutable_session()->add_members() = m;
  pb::JurySession session;
  grpc::Status s = Call(kCertifier, &pb::EvaluationService::Stub::CreateJurySession, req, &session);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(BadFields(s), std::vector<std::string>{"session.date"});
  pb::ListJurySessionsRequest list;
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::ListJurySessions, list).sessions_size(), 0);

  pb::GetOutcomeStatisticsRequest stats;
  stats.mutable_from_date()->set_year(2023);
  stats.mutable_from_date()->set_month(2);
  stats.mutable_from_date()->set_day(31);
  pb::OutcomeStatistics out;
  s = Call("national", &pb::EvaluationService::Stub::GetOutcomeStatistics, stats, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(BadFields(s), std::vector<std::string>{"from_date"});
}

// A malformed session name or etag is refused naming the request's own field: `session` where
// the request takes the session so, `session.name` and `session.etag` in UpdateJurySession.
// Nothing is written.
TEST_P(EvaluationServiceTest, AMalformedSessionIsRefusedNamingTheRequestsField) {
  const pb::Candidacy c = ToDossierFiled(NewCandidacy("cand-bad-session"));
  const pb::JurySession s = NewSession(SeedJury());
  const std::string bad = "session/" + s.name().substr(std::string("sessions/").size());
  pb::JurySession out;

  pb::ScheduleCandidacyRequest schedule;
  schedule.set_session(bad);
  schedule.set_candidacy(c.name());
  grpc::Status st = Call(kCertifier, &pb::EvaluationService::Stub::ScheduleCandidacy, schedule, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_EQ(BadFields(st), std::vector<std::string>{"session"}) << "ScheduleCandidacy";

  pb::ConfirmPreparationRequest confirm;
  confirm.set_session(bad);
  confirm.set_referential_read(true);
  confirm.set_no_conflict_of_interest(true);
  st = Call("jury-member:J1", &pb::EvaluationService::Stub::ConfirmPreparation, confirm, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_EQ(BadFields(st), std::vector<std::string>{"session"}) << "ConfirmPreparation";

  pb::RecordPassageRequest passage;
  passage.set_session(bad);
  passage.set_candidacy(c.name());
  passage.set_attendance(pb::ATTENDANCE_PRESENT);
  st = Call(kCertifier, &pb::EvaluationService::Stub::RecordPassage, passage, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_EQ(BadFields(st), std::vector<std::string>{"session"}) << "RecordPassage";

  pb::UpdateJurySessionRequest update;
  update.mutable_session()->set_name(bad);
  update.mutable_session()->set_place("Lorient");
  st = Call(kCertifier, &pb::EvaluationService::Stub::UpdateJurySession, update, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_EQ(BadFields(st), std::vector<std::string>{"session.name"}) << "UpdateJurySession";
  update.mutable_session()->set_name(s.name());
  update.mutable_session()->set_etag("7");  // not quoted: no etag this service returns
  st = Call(kCertifier, &pb::EvaluationService::Stub::UpdateJurySession, update, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_EQ(BadFields(st), std::vector<std::string>{"session.etag"}) << "UpdateJurySession";

  pb::GetJurySessionRequest get_s;
  get_s.set_name(s.name());
  const pb::JurySession after = MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get_s);
  EXPECT_EQ(after.etag(), s.etag());
  EXPECT_EQ(after.slots_size(), 0);
  pb::GetCandidacyRequest get;
  get.set_name(c.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get).state(),
            pb::CANDIDACY_STATE_DOSSIER_FILED);
}

// A member id is the id of the member's principal (jury-member:<member_id>): one no caller can
// have ("jury-member:J1", "J 1") is refused on creation and on update, naming the member, and
// nothing is written.
TEST_P(EvaluationServiceTest, AMemberIdNoCallerCanHaveIsRefused) {
  for (const std::string id : {"jury-member:J4", "J 4"}) {
    SCOPED_TRACE(id);
    pb::CreateJurySessionRequest create;
    create.mutable_session()->mutable_date()->set_year(2026);
    create.mutable_session()->mutable_date()->set_month(6);
    create.mutable_session()->mutable_date()->set_day(12);
    for (const auto& m : SeedJury()) *create.mutable_session()->add_members() = m;
    *create.mutable_session()->add_members() = Member(id, "Luc Morin", pb::COLLEGE_EMPLOYEE, false, pb::GENDER_MALE);
    pb::JurySession out;
    grpc::Status st = Call(kCertifier, &pb::EvaluationService::Stub::CreateJurySession, create, &out);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_EQ(BadFields(st), std::vector<std::string>{"session.members[3].member_id"});
  }
  pb::ListJurySessionsRequest list;
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::ListJurySessions, list).sessions_size(), 0);

  const pb::JurySession s = NewSession(SeedJury());
  for (const std::string id : {"jury-member:J2", "J 2"}) {
    SCOPED_TRACE(id);
    pb::UpdateJurySessionRequest update;
    *update.mutable_session() = s;
    update.mutable_session()->mutable_members(1)->set_member_id(id);
    update.mutable_update_mask()->add_paths("members");
    pb::JurySession out;
    grpc::Status st = Call(kCertifier, &pb::EvaluationService::Stub::UpdateJurySession, update, &out);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_EQ(BadFields(st), std::vector<std::string>{"session.members[1].member_id"});
  }
  pb::GetJurySessionRequest get_s;
  get_s.set_name(s.name());
  const pb::JurySession after = MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get_s);
  EXPECT_EQ(after.etag(), s.etag());
  EXPECT_EQ(after.members(1).member_id(), "J2");
}

TEST_P(EvaluationServiceTest, AnInactiveCertificationTakesNoNewCandidacy) {
  // France compétences marks the fiche inactive (before evaluation-svc reads and caches it).
  UpdateSeedCertification("active", [](ref::Certification& c) { c.set_active(false); });
  pb::CreateCandidacyRequest req;
  req.mutable_candidacy()->set_candidate_id("cand-too-late");
  req.mutable_candidacy()->set_candidate_display_name("Paul Girard");
  req.mutable_candidacy()->set_referential_version(kSeedVersion);
  pb::Candidacy out;
  grpc::Status inactive = Call(kCertifier, &pb::EvaluationService::Stub::CreateCandidacy, req, &out);
  EXPECT_EQ(inactive.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(PreconditionTypes(inactive).count("CERTIFICATION_INACTIVE")) << inactive.error_message();
  EXPECT_EQ(CountCandidacies(), 0);
}

// After the fiche's issuance deadline no certificate is issued, and the candidacy stays as it was.
TEST_P(EvaluationServiceTest, NoCertificateAfterTheIssuanceDeadline) {
  UpdateSeedCertification("issuance_deadline", [](ref::Certification& c) {
    c.mutable_issuance_deadline()->set_year(2020);
    c.mutable_issuance_deadline()->set_month(12);
    c.mutable_issuance_deadline()->set_day(31);
  });
  pb::Candidacy c = ToDossierFiled(NewCandidacy("cand-late"));
  pb::IssueCertificateRequest issue;
  issue.set_name(c.name());
  pb::Candidacy after;
  grpc::Status late = Call(kCertifier, &pb::EvaluationService::Stub::IssueCertificate, issue, &after);
  EXPECT_EQ(late.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(PreconditionTypes(late).count("ISSUANCE_DEADLINE_PASSED")) << late.error_message();
  EXPECT_NE(late.error_message().find("2020-12-31"), std::string::npos) << late.error_message();
  pb::GetCandidacyRequest get;
  get.set_name(c.name());
  pb::Candidacy now = MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get);
  EXPECT_EQ(now.state(), pb::CANDIDACY_STATE_DOSSIER_FILED);
  EXPECT_EQ(now.etag(), c.etag());
  // A malformed etag is malformed input, whatever referential-svc says.
  pb::IssueCertificateRequest bad_etag = issue;
  bad_etag.set_etag("not-an-etag");
  grpc::Status malformed = Call(kCertifier, &pb::EvaluationService::Stub::IssueCertificate, bad_etag, &after);
  EXPECT_EQ(malformed.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(BadFields(malformed), std::vector<std::string>{"etag"});
  // A candidacy that could not be issued anyway is told so by its state first.
  pb::Candidacy fresh = NewCandidacy("cand-fresh");
  issue.set_name(fresh.name());
  grpc::Status too_soon = Call(kCertifier, &pb::EvaluationService::Stub::IssueCertificate, issue, &after);
  EXPECT_EQ(PreconditionTypes(too_soon), std::set<std::string>{"INVALID_TRANSITION"}) << too_soon.error_message();
}

// A certifier removed from the fiche (or made inactive there) since it opened a candidacy no
// longer issues its certificate; restored, it does.
TEST_P(EvaluationServiceTest, OnlyAListedCertifierIssuesTheCertificate) {
  pb::Candidacy c = ToDossierFiled(NewCandidacy("cand-removed"));
  UpdateSeedCertification("certifiers", [](ref::Certification& cert) {
    ref::Certifier* certifier = cert.add_certifiers();
    certifier->set_name("Organisme certificateur du secteur alimentaire");
    certifier->set_principal_id("CPNE-IA");
    certifier->set_active(false);
  });
  pb::IssueCertificateRequest issue;
  issue.set_name(c.name());
  pb::Candidacy after;
  grpc::Status removed = Call(kCertifier, &pb::EvaluationService::Stub::IssueCertificate, issue, &after);
  EXPECT_EQ(removed.error_code(), grpc::StatusCode::PERMISSION_DENIED) << removed.error_message();
  pb::GetCandidacyRequest get;
  get.set_name(c.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get).etag(), c.etag());
  UpdateSeedCertification("certifiers", [](ref::Certification& cert) {
    ref::Certifier* certifier = cert.add_certifiers();
    certifier->set_name("Organisme certificateur du secteur alimentaire");
    certifier->set_principal_id("CPNE-IA");
    certifier->set_active(true);
  });
  // Restored: what stands between the candidacy and its certificate is the ledger, no longer who asks.
  grpc::Status restored = Call(kCertifier, &pb::EvaluationService::Stub::IssueCertificate, issue, &after);
  EXPECT_TRUE(PreconditionTypes(restored).count("BLOCS_NOT_ALL_HELD")) << restored.error_message();
}

// A whole certificate counts blocs carried from the ledger only while they are still held: once
// the result that granted them is revoked, the second candidacy's TOTAL cannot be issued; once
// they are granted again it can. A result is revoked only before its certificate is issued.
TEST_P(EvaluationServiceTest, ACertificateCountsOnlyBlocsStillHeld) {
  pb::Candidacy first = ToDossierFiled(NewCandidacy("cand-rev"));
  pb::Deliberation d1 = SealedResult(first, kAllBlocs, kFirstJury, pb::PROPOSAL_KIND_PARTIAL);
  ASSERT_EQ(d1.state(), pb::DELIBERATION_STATE_SEALED);

  pb::Candidacy second = ToDossierFiled(NewCandidacy("cand-rev"));
  ASSERT_EQ(second.held_blocs_size(), 3);
  const std::map<std::string, int> second_jury = {{"BC3", 74}, {"BC5", 81}};
  pb::Deliberation d2 = SealedResult(second, {"BC3", "BC5"}, second_jury, pb::PROPOSAL_KIND_TOTAL);
  ASSERT_EQ(d2.state(), pb::DELIBERATION_STATE_SEALED);

  // The first result is revoked: BC1, BC2 and BC4 leave the ledger.
  pb::RevokeDeliberationRequest revoke;
  revoke.set_name(d1.name());
  revoke.set_reason("jury irregularly composed");
  pb::Deliberation round2 = MustCall(kCertifier, &pb::EvaluationService::Stub::RevokeDeliberation, revoke);
  pb::IssueCertificateRequest issue;
  issue.set_name(second.name());
  pb::Candidacy after;
  grpc::Status lapsed = Call(kCertifier, &pb::EvaluationService::Stub::IssueCertificate, issue, &after);
  EXPECT_EQ(lapsed.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(PreconditionTypes(lapsed).count("BLOCS_NOT_ALL_HELD")) << lapsed.error_message();
  EXPECT_NE(lapsed.error_message().find("BC1, BC2, BC4"), std::string::npos) << lapsed.error_message();
  pb::GetCandidacyRequest get;
  get.set_name(second.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get).state(),
            pb::CANDIDACY_STATE_DELIBERATED);

  // The first candidacy's new round grants them again: the certificate is issued.
  MustCall("jury-member:J1", &pb::EvaluationService::Stub::RecordDecision,
           Decision(round2.name(), kFirstJury, pb::PROPOSAL_KIND_PARTIAL));
  ASSERT_EQ(SignAll(round2.name()).state(), pb::DELIBERATION_STATE_SEALED);
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::IssueCertificate, issue).state(),
            pb::CANDIDACY_STATE_CERTIFICATE_ISSUED);

  // An issued certificate's result is not revoked; the ledger keeps its blocs.
  revoke.set_name(d2.name());
  pb::Deliberation none;
  grpc::Status too_late = Call(kCertifier, &pb::EvaluationService::Stub::RevokeDeliberation, revoke, &none);
  EXPECT_EQ(too_late.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(PreconditionTypes(too_late).count("INVALID_STATE")) << too_late.error_message();
  pb::ListAcquiredBlocsRequest ledger;
  ledger.set_parent("candidates/cand-rev");
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::ListAcquiredBlocs, ledger).blocs_size(), 5);

  // The first candidacy's new round is counted by that certificate (BC1, BC2, BC4 held from it
  // alone): revoking it is refused, and the round and the ledger stay as they are.
  revoke.set_name(round2.name());
  grpc::Status counted = Call(kCertifier, &pb::EvaluationService::Stub::RevokeDeliberation, revoke, &none);
  EXPECT_EQ(counted.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(PreconditionTypes(counted).count("RESULT_COUNTED_BY_CERTIFICATE")) << counted.error_message();
  for (const char* bloc : {"BC1", "BC2", "BC4"}) {
    EXPECT_NE(counted.error_message().find(absl::StrCat(second.name(), " (", bloc, ")")), std::string::npos)
        << counted.error_message();
  }
  EXPECT_EQ(counted.error_message().find("BC3"), std::string::npos) << counted.error_message();
  pb::GetDeliberationRequest get_round;
  get_round.set_name(round2.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetDeliberation, get_round).state(),
            pb::DELIBERATION_STATE_SEALED);
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::ListAcquiredBlocs, ledger).blocs_size(), 5);
}

// A certificate counts every result that held a bloc when it was issued: one of them may be
// revoked while every bloc it gave stays held by another; the last one may not.
TEST_P(EvaluationServiceTest, AResultIsRevokedOnlyIfNoCertificateCountsABlocItAloneHolds) {
  // Two candidacies at once: the first ends PARTIAL (BC1, BC2, BC4), the second TOTAL.
  pb::Candidacy partial = ToDossierFiled(NewCandidacy("cand-two"));
  pb::Candidacy total = ToDossierFiled(NewCandidacy("cand-two"));
  ASSERT_EQ(total.held_blocs_size(), 0);
  pb::Deliberation d_partial = SealedResult(partial, kAllBlocs, kFirstJury, pb::PROPOSAL_KIND_PARTIAL);
  ASSERT_EQ(d_partial.state(), pb::DELIBERATION_STATE_SEALED);
  pb::Deliberation d_total = SealedResult(total, kAllBlocs, kAllAcquired, pb::PROPOSAL_KIND_TOTAL);
  ASSERT_EQ(d_total.state(), pb::DELIBERATION_STATE_SEALED);

  // A third candidacy holds every bloc: issued without a jury, from both results.
  pb::Candidacy third = ToDossierFiled(NewCandidacy("cand-two"));
  ASSERT_EQ(third.blocs_to_evaluate_size(), 0);
  pb::IssueCertificateRequest issue;
  issue.set_name(third.name());
  ASSERT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::IssueCertificate, issue).state(),
            pb::CANDIDACY_STATE_CERTIFICATE_ISSUED);

  // The partial result's blocs are all held by the total one too: it may be revoked.
  pb::RevokeDeliberationRequest revoke;
  revoke.set_name(d_partial.name());
  revoke.set_reason("membre du jury lié au candidat");
  MustCall(kCertifier, &pb::EvaluationService::Stub::RevokeDeliberation, revoke);
  // The total result is now the only one behind every bloc of the certificate.
  revoke.set_name(d_total.name());
  pb::Deliberation none;
  grpc::Status counted = Call(kCertifier, &pb::EvaluationService::Stub::RevokeDeliberation, revoke, &none);
  EXPECT_EQ(counted.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(PreconditionTypes(counted).count("RESULT_COUNTED_BY_CERTIFICATE")) << counted.error_message();
  for (const char* bloc : {"BC1", "BC2", "BC3", "BC4", "BC5"}) {
    EXPECT_NE(counted.error_message().find(absl::StrCat(third.name(), " (", bloc, ")")), std::string::npos)
        << counted.error_message();
  }
  pb::ListAcquiredBlocsRequest ledger;
  ledger.set_parent("candidates/cand-two");
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::ListAcquiredBlocs, ledger).blocs_size(), 5);
}

// A round has one spelling. "01" found round 1 but the ledger, keyed on the name, matched
// nothing: the revocation left every bloc in the ledger and skipped the certificate check.
TEST_P(EvaluationServiceTest, ARoundNumberSpelledOtherwiseIsRefusedAndChangesNothing) {
  pb::Candidacy c = ToDossierFiled(NewCandidacy("cand-spelling"));
  const pb::Deliberation d = SealedResult(c, kAllBlocs, kAllAcquired, pb::PROPOSAL_KIND_TOTAL);
  ASSERT_EQ(d.state(), pb::DELIBERATION_STATE_SEALED);
  ASSERT_TRUE(absl::EndsWith(d.name(), "/deliberations/1")) << d.name();
  const std::string stem = d.name().substr(0, d.name().size() - 1);
  for (const std::string& other : {stem + "01", stem + "+1", stem + " 1"}) {
    SCOPED_TRACE(other);
    pb::RevokeDeliberationRequest revoke;
    revoke.set_name(other);
    revoke.set_reason("membre du jury lié au candidat");
    pb::Deliberation none;
    grpc::Status s = Call(kCertifier, &pb::EvaluationService::Stub::RevokeDeliberation, revoke, &none);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_EQ(BadFields(s), std::vector<std::string>{"name"});
    pb::GetDeliberationRequest get;
    get.set_name(other);
    s = Call(kCertifier, &pb::EvaluationService::Stub::GetDeliberation, get, &none);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  }
  pb::GetDeliberationRequest get;
  get.set_name(d.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetDeliberation, get).state(),
            pb::DELIBERATION_STATE_SEALED);
  pb::ListAcquiredBlocsRequest ledger;
  ledger.set_parent("candidates/cand-spelling");
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::ListAcquiredBlocs, ledger).blocs_size(), 5);
}

// A result revoked after its blocs' candidacy was scheduled: when the session starts (the jury's
// day) they go to the jury, and the jury then scores and grants them.
TEST_P(EvaluationServiceTest, HeldBlocsWithdrawnAfterSchedulingGoToTheJuryWhenTheSessionStarts) {
  pb::Candidacy first = ToDossierFiled(NewCandidacy("cand-withdrawn"));
  pb::Deliberation d1 = SealedResult(first, kAllBlocs, kFirstJury, pb::PROPOSAL_KIND_PARTIAL);
  pb::Candidacy second = ToDossierFiled(NewCandidacy("cand-withdrawn"));
  ASSERT_EQ(second.held_blocs_size(), 3);
  pb::Candidacy withdrawn = ToDossierFiled(NewCandidacy("cand-withdrawn"));
  pb::JurySession s2 = NewSession(SeedJury());
  pb::ScheduleCandidacyRequest schedule;
  schedule.set_session(s2.name());
  for (const pb::Candidacy& c : {second, withdrawn}) {
    schedule.set_candidacy(c.name());
    MustCall(kCertifier, &pb::EvaluationService::Stub::ScheduleCandidacy, schedule);
  }
  pb::WithdrawCandidacyRequest withdraw;
  withdraw.set_name(withdrawn.name());
  withdraw.set_reason("le candidat renonce");
  const pb::Candidacy withdrawn_before = MustCall(kCertifier, &pb::EvaluationService::Stub::WithdrawCandidacy, withdraw);

  pb::RevokeDeliberationRequest revoke;
  revoke.set_name(d1.name());
  revoke.set_reason("jury irrégulièrement composé");
  MustCall(kCertifier, &pb::EvaluationService::Stub::RevokeDeliberation, revoke);
  pb::GetCandidacyRequest get;
  get.set_name(second.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get).held_blocs_size(), 3);

  PrepareAll(s2);
  Start(s2);
  const pb::Candidacy started = MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get);
  EXPECT_EQ(started.held_blocs_size(), 0);
  EXPECT_EQ(std::vector<std::string>(started.blocs_to_evaluate().begin(), started.blocs_to_evaluate().end()), kAllBlocs);
  get.set_name(withdrawn.name());  // withdrawn: no longer waiting for this jury, left as it was
  const pb::Candidacy left = MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get);
  EXPECT_EQ(left.held_blocs_size(), 3);
  EXPECT_EQ(left.etag(), withdrawn_before.etag());
  get.set_name(second.name());

  pb::RecordPassageRequest passage;
  passage.set_session(s2.name());
  passage.set_candidacy(second.name());
  passage.set_attendance(pb::ATTENDANCE_PRESENT);
  MustCall("jury-member:J1", &pb::EvaluationService::Stub::RecordPassage, passage);
  ScoreAll(second, kAllBlocs, kAllAcquired);
  ASSERT_EQ(Seal(second, kAllAcquired, pb::PROPOSAL_KIND_TOTAL).state(), pb::DELIBERATION_STATE_SEALED);
  pb::IssueCertificateRequest issue;
  issue.set_name(second.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::IssueCertificate, issue).state(),
            pb::CANDIDACY_STATE_CERTIFICATE_ISSUED);
}

// The jury's TOTAL counted blocs held on the candidate's passage: one lapsing before the
// certificate is asked for does not undo it (it could no longer go back to the jury).
TEST_P(EvaluationServiceTest, AHeldBlocLapsingAfterTheJurysResultStillCountsInItsCertificate) {
  const ref::Version v = PublishSeedCopyWithBlocValidity(2);
  pb::Candidacy first = ToDossierFiled(NewCandidacy("cand-late", v.name()));
  ASSERT_EQ(SealedResult(first, kAllBlocs, kFirstJury, pb::PROPOSAL_KIND_PARTIAL).state(), pb::DELIBERATION_STATE_SEALED);
  pb::Candidacy second = ToDossierFiled(NewCandidacy("cand-late", v.name()));
  ASSERT_EQ(second.held_blocs_size(), 3);
  const std::map<std::string, int> second_jury = {{"BC3", 74}, {"BC5", 81}};
  ASSERT_EQ(SealedResult(second, {"BC3", "BC5"}, second_jury, pb::PROPOSAL_KIND_TOTAL).state(), pb::DELIBERATION_STATE_SEALED);

  clock_.Advance(absl::Hours(24 * 92));  // BC1, BC2 and BC4 (valid two months) have lapsed
  pb::IssueCertificateRequest issue;
  issue.set_name(second.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::IssueCertificate, issue).state(),
            pb::CANDIDACY_STATE_CERTIFICATE_ISSUED);
}

// Two revocations at once of the two results behind every bloc of a certificate: each alone is
// allowed, both are not. The second waits for the first (it locks the certificate's candidacy)
// and then finds itself the last result behind the blocs.
TEST_P(EvaluationServiceTest, OfTwoResultsBehindACertificateRevokedAtOnceOneStays) {
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    const std::string candidate = absl::StrCat("cand-race-", round);
    std::vector<pb::Candidacy> twins = {ToDossierFiled(NewCandidacy(candidate)), ToDossierFiled(NewCandidacy(candidate))};
    std::vector<std::string> results;
    for (const pb::Candidacy& c : twins) {
      results.push_back(SealedResult(c, kAllBlocs, kAllAcquired, pb::PROPOSAL_KIND_TOTAL).name());
    }
    pb::Candidacy third = ToDossierFiled(NewCandidacy(candidate));
    pb::IssueCertificateRequest issue;
    issue.set_name(third.name());
    ASSERT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::IssueCertificate, issue).state(),
              pb::CANDIDACY_STATE_CERTIFICATE_ISSUED);
    // Another person's entries right after each result's in the ledger's source index, as in a
    // live ledger: with the two results adjacent there, InnoDB's lock on the next index record
    // happens to order the two deletions, which would hide a missing lock.
    ASSERT_TRUE(app_->db()
                    .Transact([&](db::Tx& tx) -> absl::Status {
                      for (const std::string& r : results) {
                        absl::Status st = tx.Exec("INSERT INTO acquired_blocs (candidate_id, certification_code, "
                                                  "bloc_code, acquired_date, expiry_date, source_deliberation) "
                                                  "VALUES ('someone-else', 'CQP-TMSA', 'BC1', 20260101, 0, ?)",
                                                  {absl::StrCat(r, "0")})
                                              .status();
                        if (!st.ok()) return st;
                      }
                      return absl::OkStatus();
                    })
                    .ok());

    std::vector<grpc::Status> outcomes(2);
    testing::RunConcurrently(2, [&](int k) {
      pb::RevokeDeliberationRequest revoke;
      revoke.set_name(results[k]);
      revoke.set_reason("jury irrégulier");
      pb::Deliberation next;
      outcomes[k] = Call(kCertifier, &pb::EvaluationService::Stub::RevokeDeliberation, revoke, &next);
    });
    const int revoked = static_cast<int>(outcomes[0].ok()) + static_cast<int>(outcomes[1].ok());
    EXPECT_EQ(revoked, 1) << outcomes[0].error_message() << " | " << outcomes[1].error_message();
    for (const grpc::Status& o : outcomes) {
      if (o.ok()) continue;
      EXPECT_EQ(o.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << o.error_message();
      EXPECT_TRUE(PreconditionTypes(o).count("RESULT_COUNTED_BY_CERTIFICATE")) << o.error_message();
    }
    pb::ListAcquiredBlocsRequest ledger;
    ledger.set_parent(absl::StrCat("candidates/", candidate));
    EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::ListAcquiredBlocs, ledger).blocs_size(), 5);
  }
}

// A bloc held from the ledger when a candidacy opened, lapsed by its jury's day (the version's
// validity in months), goes back to the jury when the candidacy is scheduled: without that the jury
// would pass over it and the certificate be refused after (BLOCS_NOT_ALL_HELD). One still valid
// on the jury's day stays held.
TEST_P(EvaluationServiceTest, AHeldBlocLapsedByTheJurysDayGoesBackToTheJuryAtScheduling) {
  const ref::Version v = PublishSeedCopyWithBlocValidity(2);
  pb::Candidacy first = ToDossierFiled(NewCandidacy("cand-lapse", v.name()));
  ASSERT_EQ(SealedResult(first, kAllBlocs, kFirstJury, pb::PROPOSAL_KIND_PARTIAL).state(), pb::DELIBERATION_STATE_SEALED);

  // Two later candidacies hold BC1, BC2 and BC4 (acquired today, valid two months).
  pb::Candidacy late = ToDossierFiled(NewCandidacy("cand-lapse", v.name()));
  pb::Candidacy soon = ToDossierFiled(NewCandidacy("cand-lapse", v.name()));
  ASSERT_EQ(std::vector<std::string>(late.held_blocs().begin(), late.held_blocs().end()),
            (std::vector<std::string>{"BC1", "BC2", "BC4"}));
  const absl::CivilDay today = absl::ToCivilDay(absl::Now(), absl::UTCTimeZone());
  pb::JurySession in_three_months = NewSession(SeedJury(), today + 92);
  pb::JurySession in_a_month = NewSession(SeedJury(), today + 30);
  auto schedule = [&](const pb::JurySession& s, const pb::Candidacy& c) {
    pb::ScheduleCandidacyRequest req;
    req.set_session(s.name());
    req.set_candidacy(c.name());
    MustCall(kCertifier, &pb::EvaluationService::Stub::ScheduleCandidacy, req);
    pb::GetCandidacyRequest get;
    get.set_name(c.name());
    return MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get);
  };
  const pb::Candidacy late_scheduled = schedule(in_three_months, late);
  EXPECT_EQ(late_scheduled.held_blocs_size(), 0);
  EXPECT_EQ(std::vector<std::string>(late_scheduled.blocs_to_evaluate().begin(), late_scheduled.blocs_to_evaluate().end()),
            kAllBlocs);
  EXPECT_NE(late_scheduled.history().rbegin()->reason().find("evaluated: BC1, BC2, BC4"), std::string::npos)
      << late_scheduled.history().rbegin()->reason();
  const pb::Candidacy soon_scheduled = schedule(in_a_month, soon);
  EXPECT_EQ(std::vector<std::string>(soon_scheduled.held_blocs().begin(), soon_scheduled.held_blocs().end()),
            (std::vector<std::string>{"BC1", "BC2", "BC4"}));
  EXPECT_EQ(std::vector<std::string>(soon_scheduled.blocs_to_evaluate().begin(),
                                     soon_scheduled.blocs_to_evaluate().end()),
            (std::vector<std::string>{"BC3", "BC5"}));
}

// A slot's start time is a Timestamp as protobuf defines it: two arbitrary integers are refused
// naming the field, and nothing is scheduled.
TEST_P(EvaluationServiceTest, ASlotStartTimeOutOfRangeIsRefusedAndNothingIsScheduled) {
  pb::Candidacy c = ToDossierFiled(NewCandidacy("cand-slot-time"));
  pb::JurySession s = NewSession(SeedJury());
  pb::ScheduleCandidacyRequest req;
  req.set_session(s.name());
  req.set_candidacy(c.name());
  req.mutable_start_time()->set_seconds(1780000000);
  req.mutable_start_time()->set_nanos(-1);
  pb::JurySession out;
  grpc::Status st = Call(kCertifier, &pb::EvaluationService::Stub::ScheduleCandidacy, req, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_EQ(BadFields(st), std::vector<std::string>{"start_time"});
  req.mutable_start_time()->set_nanos(0);
  req.mutable_start_time()->set_seconds(253402300800);  // 10000-01-01
  st = Call(kCertifier, &pb::EvaluationService::Stub::ScheduleCandidacy, req, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();

  pb::GetJurySessionRequest get;
  get.set_name(s.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get).slots_size(), 0);
  pb::GetCandidacyRequest get_c;
  get_c.set_name(c.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get_c).state(),
            pb::CANDIDACY_STATE_DOSSIER_FILED);
  req.mutable_start_time()->set_seconds(1780000000);
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::ScheduleCandidacy, req).slots_size(), 1);
}

// A session sits for one certification: a candidacy on another (same certifier) is not scheduled
// on it, and goes on a session of its own.
TEST_P(EvaluationServiceTest, ASessionSitsForOneCertification) {
  // A second CQP of the same certifier: the seed's document under another code.
  std::ifstream in(kSeedFile);
  std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_NE(doc.find("\"CQP-TMSA\""), std::string::npos);
  doc.replace(doc.find("\"CQP-TMSA\""), std::string("\"CQP-TMSA\"").size(), "\"CQP-TLA\"");
  const std::string path = ::testing::TempDir() + "/cqp-tla-" + GetParam() + ".json";
  std::ofstream(path) << doc;
  ASSERT_TRUE(referential_app_->LoadDocument(path).ok());

  pb::Candidacy tmsa = ToDossierFiled(NewCandidacy("cand-tmsa"));
  pb::Candidacy tla = ToDossierFiled(NewCandidacy("cand-tla", "certifications/CQP-TLA/versions/1"));
  pb::JurySession s = NewSession(SeedJury());
  pb::ScheduleCandidacyRequest schedule;
  schedule.set_session(s.name());
  schedule.set_candidacy(tmsa.name());
  MustCall(kCertifier, &pb::EvaluationService::Stub::ScheduleCandidacy, schedule);
  schedule.set_candidacy(tla.name());
  pb::JurySession out;
  grpc::Status mixed = Call(kCertifier, &pb::EvaluationService::Stub::ScheduleCandidacy, schedule, &out);
  EXPECT_EQ(mixed.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(PreconditionTypes(mixed).count("SESSION_CERTIFICATION_MISMATCH")) << mixed.error_message();
  pb::GetCandidacyRequest get;
  get.set_name(tla.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get).state(),
            pb::CANDIDACY_STATE_DOSSIER_FILED);
  pb::GetJurySessionRequest get_session;
  get_session.set_name(s.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get_session).slots_size(), 1);

  pb::JurySession own = NewSession(SeedJury());
  schedule.set_session(own.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::ScheduleCandidacy, schedule).slots_size(), 1);
}

// An RS fiche has no blocs: the jury judges the certification as a whole, and a sealed TOTAL is
// issued (a refusal still has nothing to issue).
TEST_P(EvaluationServiceTest, AnRsCertificationIsJudgedAsAWholeAndItsTotalIssued) {
  ASSERT_NO_FATAL_FAILURE(LoadRsFiche());

  for (const auto& [candidate, proposal] : {std::pair{"cand-rs-ok", pb::PROPOSAL_KIND_TOTAL},
                                            std::pair{"cand-rs-no", pb::PROPOSAL_KIND_REFUSAL}}) {
    pb::Candidacy c = ToDossierFiled(NewCandidacy(candidate, "certifications/RS5001/versions/1"));
    EXPECT_EQ(c.target_blocs_size(), 0);
    pb::Deliberation d = SealedResult(c, {}, {}, proposal);
    ASSERT_EQ(d.state(), pb::DELIBERATION_STATE_SEALED);
    EXPECT_EQ(d.proposed_blocs_size(), 0);
    pb::IssueCertificateRequest issue;
    issue.set_name(c.name());
    pb::Candidacy after;
    grpc::Status issued = Call(kCertifier, &pb::EvaluationService::Stub::IssueCertificate, issue, &after);
    if (proposal == pb::PROPOSAL_KIND_TOTAL) {
      ASSERT_TRUE(issued.ok()) << issued.error_message();
      EXPECT_EQ(after.state(), pb::CANDIDACY_STATE_CERTIFICATE_ISSUED);
    } else {
      EXPECT_TRUE(PreconditionTypes(issued).count("NOTHING_TO_ISSUE")) << issued.error_message();
      EXPECT_NE(issued.error_message().find("REFUSAL"), std::string::npos) << issued.error_message();
    }
  }
}

// Once a session has started, its members, candidates and preparations no longer change.
TEST_P(EvaluationServiceTest, ASessionChangesOnlyWhilePlanned) {
  pb::Candidacy c = ToDossierFiled(NewCandidacy("cand-planned"));
  pb::Candidacy late = ToDossierFiled(NewCandidacy("cand-latecomer"));
  pb::JurySession s = NewSession(SeedJury());
  Pass(s, c);

  pb::GetJurySessionRequest get;
  get.set_name(s.name());
  const pb::JurySession started = MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get);
  ASSERT_EQ(started.state(), pb::SESSION_STATE_IN_PROGRESS);
  pb::JurySession out;

  pb::UpdateJurySessionRequest update;
  *update.mutable_session() = started;
  update.mutable_session()->set_place("Lorient");
  update.mutable_update_mask()->add_paths("place");
  grpc::Status moved = Call(kCertifier, &pb::EvaluationService::Stub::UpdateJurySession, update, &out);
  EXPECT_TRUE(PreconditionTypes(moved).count("SESSION_NOT_PLANNED")) << moved.error_message();

  pb::ScheduleCandidacyRequest schedule;
  schedule.set_session(s.name());
  schedule.set_candidacy(late.name());
  grpc::Status scheduled = Call(kCertifier, &pb::EvaluationService::Stub::ScheduleCandidacy, schedule, &out);
  EXPECT_TRUE(PreconditionTypes(scheduled).count("SESSION_NOT_PLANNED")) << scheduled.error_message();

  pb::ConfirmPreparationRequest prepare;
  prepare.set_session(s.name());
  prepare.set_referential_read(true);
  prepare.set_no_conflict_of_interest(true);
  grpc::Status prepared = Call("jury-member:J2", &pb::EvaluationService::Stub::ConfirmPreparation, prepare, &out);
  EXPECT_TRUE(PreconditionTypes(prepared).count("SESSION_NOT_PLANNED")) << prepared.error_message();

  pb::StartJurySessionRequest again;
  again.set_name(s.name());
  grpc::Status restarted = Call(kCertifier, &pb::EvaluationService::Stub::StartJurySession, again, &out);
  EXPECT_TRUE(PreconditionTypes(restarted).count("SESSION_NOT_PLANNED")) << restarted.error_message();

  // Nothing changed: the session as it started, the latecomer not scheduled.
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get).etag(), started.etag());
  pb::GetCandidacyRequest get_late;
  get_late.set_name(late.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get_late).state(),
            pb::CANDIDACY_STATE_DOSSIER_FILED);
}

TEST_P(EvaluationServiceTest, SeedScenarioPartialThenSecondCandidacyCompletesTheCqp) {
  pb::Candidacy c = ToDossierFiled(NewCandidacy("cand-001"));
  EXPECT_EQ(c.state(), pb::CANDIDACY_STATE_DOSSIER_FILED);
  EXPECT_EQ(c.blocs_to_evaluate_size(), 5);
  EXPECT_EQ(c.history_size(), 4);
  EXPECT_EQ(c.certification_title(), "Technicien de maintenance du secteur alimentaire");

  pb::JurySession s = NewSession(SeedJury());
  Pass(s, c);
  ScoreAll(c, kAllBlocs, kFirstJury);

  pb::OpenDeliberationRequest open;
  open.set_candidacy(c.name());
  pb::Deliberation d = MustCall("jury-member:J1", &pb::EvaluationService::Stub::OpenDeliberation, open);
  ASSERT_EQ(d.spreads_size(), 5);
  EXPECT_EQ(d.spreads(0).max_percent() - d.spreads(0).min_percent(), 6);

  // TOTAL disagrees with BC3 and BC5 under the threshold.
  pb::Deliberation out;
  grpc::Status total = Call("jury-member:J1", &pb::EvaluationService::Stub::RecordDecision,
                            Decision(d.name(), kFirstJury, pb::PROPOSAL_KIND_TOTAL), &out);
  EXPECT_EQ(total.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(PreconditionTypes(total).count("PROPOSAL_DISAGREES_WITH_BLOCS")) << total.error_message();

  d = MustCall("jury-member:J1", &pb::EvaluationService::Stub::RecordDecision,
               Decision(d.name(), kFirstJury, pb::PROPOSAL_KIND_PARTIAL));
  EXPECT_EQ(std::vector<std::string>(d.proposed_blocs().begin(), d.proposed_blocs().end()),
            (std::vector<std::string>{"BC1", "BC2", "BC4"}));
  d = SignAll(d.name());
  EXPECT_EQ(d.state(), pb::DELIBERATION_STATE_SEALED);
  EXPECT_EQ(d.signatures_size(), 3);

  // Sealed results never change.
  grpc::Status edit = Call("jury-member:J1", &pb::EvaluationService::Stub::RecordDecision,
                           Decision(d.name(), kFirstJury, pb::PROPOSAL_KIND_PARTIAL), &out);
  EXPECT_EQ(edit.error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  // The synthesis grid carries the values.
  pb::RenderSynthesisGridRequest render;
  render.set_name(d.name());
  pb::Document pdf = MustCall(kCertifier, &pb::EvaluationService::Stub::RenderSynthesisGrid, render);
  EXPECT_EQ(pdf.content_type(), "application/pdf");
  const std::string path = ::testing::TempDir() + "/grid-" + GetParam() + ".pdf";
  std::ofstream(path, std::ios::binary) << pdf.content();
  std::string text;
  FILE* pipe = popen(("pdftotext -layout " + path + " -").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) text.append(buf, n);
  ASSERT_EQ(pclose(pipe), 0) << "pdftotext failed";
  for (const char* expected : {"Élodie Martin", "BC1", "80", "BC3", "60", "BC5", "55", "Anne Leroy", "Marc Petit",
                               "Sofia Durand", "BC1, BC2, BC4"}) {
    EXPECT_NE(text.find(expected), std::string::npos) << expected << " missing from the grid:\n" << text;
  }

  // The ledger holds BC1, BC2, BC4.
  pb::ListAcquiredBlocsRequest ledger;
  ledger.set_parent("candidates/cand-001");
  auto blocs = MustCall(kCertifier, &pb::EvaluationService::Stub::ListAcquiredBlocs, ledger);
  ASSERT_EQ(blocs.blocs_size(), 3);
  EXPECT_EQ(blocs.blocs(0).bloc_code(), "BC1");
  EXPECT_EQ(blocs.blocs(2).bloc_code(), "BC4");
  // Another certifier, without a candidacy of that candidate, learns nothing: the same answer as
  // for a candidate nobody knows.
  pb::ListAcquiredBlocsResponse foreign;
  grpc::Status other = Call("certifier:OTHER", &pb::EvaluationService::Stub::ListAcquiredBlocs, ledger, &foreign);
  EXPECT_EQ(other.error_code(), grpc::StatusCode::NOT_FOUND);
  pb::ListAcquiredBlocsRequest unknown;
  unknown.set_parent("candidates/cand-nobody");
  grpc::Status nobody = Call(kCertifier, &pb::EvaluationService::Stub::ListAcquiredBlocs, unknown, &foreign);
  EXPECT_EQ(nobody.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(absl::StrReplaceAll(other.error_message(), {{"cand-001", "X"}}),
            absl::StrReplaceAll(nobody.error_message(), {{"cand-nobody", "X"}}));

  pb::IssueCertificateRequest issue;
  issue.set_name(c.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::IssueCertificate, issue).state(),
            pb::CANDIDACY_STATE_CERTIFICATE_ISSUED);

  // Second candidacy: only BC3 and BC5 are evaluated.
  pb::Candidacy second = ToDossierFiled(NewCandidacy("cand-001"));
  EXPECT_EQ(std::vector<std::string>(second.held_blocs().begin(), second.held_blocs().end()),
            (std::vector<std::string>{"BC1", "BC2", "BC4"}));
  EXPECT_EQ(std::vector<std::string>(second.blocs_to_evaluate().begin(), second.blocs_to_evaluate().end()),
            (std::vector<std::string>{"BC3", "BC5"}));
  pb::JurySession s2 = NewSession(SeedJury());
  Pass(s2, second);
  // Scoring a bloc outside the target is refused.
  {
    pb::SubmitScoreSheetRequest req;
    req.set_candidacy(second.name());
    *req.mutable_sheet() = Sheet({"BC1", "BC3", "BC5"}, kFirstJury, 0);
    pb::ScoreSheet sheet;
    grpc::Status s = Call("jury-member:J1", &pb::EvaluationService::Stub::SubmitScoreSheet, req, &sheet);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  const std::map<std::string, int> second_jury = {{"BC3", 74}, {"BC5", 81}};
  ScoreAll(second, {"BC3", "BC5"}, second_jury);
  open.set_candidacy(second.name());
  pb::Deliberation d2 = MustCall(kCertifier, &pb::EvaluationService::Stub::OpenDeliberation, open);
  d2 = MustCall("jury-member:J1", &pb::EvaluationService::Stub::RecordDecision,
                Decision(d2.name(), second_jury, pb::PROPOSAL_KIND_TOTAL));
  d2 = SignAll(d2.name());
  EXPECT_EQ(d2.state(), pb::DELIBERATION_STATE_SEALED);
  blocs = MustCall(kCertifier, &pb::EvaluationService::Stub::ListAcquiredBlocs, ledger);
  EXPECT_EQ(blocs.blocs_size(), 5);
  issue.set_name(second.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::IssueCertificate, issue).state(),
            pb::CANDIDACY_STATE_CERTIFICATE_ISSUED);

  // A third candidacy finds every bloc held: issuance without a jury.
  pb::Candidacy third = ToDossierFiled(NewCandidacy("cand-001"));
  EXPECT_EQ(third.blocs_to_evaluate_size(), 0);
  issue.set_name(third.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::IssueCertificate, issue).state(),
            pb::CANDIDACY_STATE_CERTIFICATE_ISSUED);
}

TEST_P(EvaluationServiceTest, EachJuryRuleBrokenOnce) {
  pb::Candidacy c = ToDossierFiled(NewCandidacy("cand-002"));

  // A jury without president nor qualified member cannot start.
  std::vector<pb::JuryMember> weak = SeedJury();
  for (auto& m : weak) {
    m.set_president(false);
    m.set_qualified(false);
  }
  pb::JurySession bad = NewSession(weak);
  pb::ScheduleCandidacyRequest schedule;
  schedule.set_session(bad.name());
  schedule.set_candidacy(c.name());
  MustCall(kCertifier, &pb::EvaluationService::Stub::ScheduleCandidacy, schedule);
  PrepareAll(bad);
  pb::StartJurySessionRequest go;
  go.set_name(bad.name());
  pb::JurySession out;
  grpc::Status start = Call(kCertifier, &pb::EvaluationService::Stub::StartJurySession, go, &out);
  EXPECT_EQ(start.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(PreconditionTypes(start).count("PRESIDENT_MISSING")) << start.error_message();
  EXPECT_TRUE(PreconditionTypes(start).count("MIN_QUALIFIED_MEMBERS")) << start.error_message();

  // A fresh candidacy on a proper jury.
  pb::Candidacy c2 = ToDossierFiled(NewCandidacy("cand-003"));
  pb::JurySession s = NewSession(SeedJury());
  // Starting before the members confirmed their preparation.
  schedule.set_session(s.name());
  schedule.set_candidacy(c2.name());
  MustCall(kCertifier, &pb::EvaluationService::Stub::ScheduleCandidacy, schedule);
  go.set_name(s.name());
  start = Call(kCertifier, &pb::EvaluationService::Stub::StartJurySession, go, &out);
  EXPECT_TRUE(PreconditionTypes(start).count("MEMBER_NOT_PREPARED")) << start.error_message();
  // A member linked to a candidate, or who has not read the référentiel, cannot confirm; its
  // declaration withdraws an earlier confirmation, so the session cannot start with it. Someone
  // not on the jury learns nothing about the session.
  {
    PrepareAll(s);
    pb::ConfirmPreparationRequest linked;
    linked.set_session(s.name());
    linked.set_referential_read(true);
    linked.set_no_conflict_of_interest(false);
    grpc::Status conflict = Call("jury-member:J2", &pb::EvaluationService::Stub::ConfirmPreparation, linked, &out);
    EXPECT_EQ(conflict.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(PreconditionTypes(conflict), std::set<std::string>{"CONFLICT_OF_INTEREST"});
    EXPECT_EQ(Call("jury-member:J9", &pb::EvaluationService::Stub::ConfirmPreparation, linked, &out).error_code(),
              grpc::StatusCode::NOT_FOUND);
    pb::GetJurySessionRequest get_s;
    get_s.set_name(s.name());
    const std::string etag = MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get_s).etag();
    // J2 does not take its declaration back: whatever it answers next is refused, nothing written.
    pb::ConfirmPreparationRequest unread;
    unread.set_session(s.name());
    unread.set_no_conflict_of_interest(true);
    grpc::Status not_read = Call("jury-member:J2", &pb::EvaluationService::Stub::ConfirmPreparation, unread, &out);
    EXPECT_EQ(PreconditionTypes(not_read), std::set<std::string>{"CONFLICT_OF_INTEREST"});
    EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get_s).etag(), etag);
    start = Call(kCertifier, &pb::EvaluationService::Stub::StartJurySession, go, &out);
    EXPECT_EQ(PreconditionTypes(start), (std::set<std::string>{"CONFLICT_OF_INTEREST", "MEMBER_NOT_PREPARED"}))
        << start.error_message();
    EXPECT_NE(start.error_message().find("J2"), std::string::npos) << start.error_message();
    EXPECT_EQ(start.error_message().find("J1"), std::string::npos) << start.error_message();
    // A linked member does not score the session's candidates, not even on reading the dossier.
    pb::SubmitScoreSheetRequest linked_sheet;
    linked_sheet.set_candidacy(c2.name());
    *linked_sheet.mutable_sheet() = Sheet(kAllBlocs, kFirstJury, 0);
    linked_sheet.mutable_sheet()->clear_bloc_scores();
    pb::ScoreSheet sheet_out;
    grpc::Status linked_scores =
        Call("jury-member:J2", &pb::EvaluationService::Stub::SubmitScoreSheet, linked_sheet, &sheet_out);
    EXPECT_EQ(PreconditionTypes(linked_scores), std::set<std::string>{"CONFLICT_OF_INTEREST"})
        << linked_scores.error_message();
    // A request without a sheet would have replaced the member's with an empty one.
    linked_sheet.clear_sheet();
    grpc::Status no_sheet = Call("jury-member:J1", &pb::EvaluationService::Stub::SubmitScoreSheet, linked_sheet, &sheet_out);
    EXPECT_EQ(no_sheet.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << no_sheet.error_message();
    EXPECT_EQ(BadFields(no_sheet), std::vector<std::string>{"sheet"});
    pb::GetScoreSheetRequest get_sheet;
    get_sheet.set_name(absl::StrCat(c2.name(), "/scoreSheets/J2"));
    EXPECT_EQ(Call("jury-member:J2", &pb::EvaluationService::Stub::GetScoreSheet, get_sheet, &sheet_out).error_code(),
              grpc::StatusCode::NOT_FOUND);  // nothing written
    // The certifier replaces the linked member.
    pb::UpdateJurySessionRequest replace;
    *replace.mutable_session() = MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get_s);
    *replace.mutable_session()->mutable_members(1) =
        Member("J4", "Luc Bernard", pb::COLLEGE_EMPLOYEE, false, pb::GENDER_MALE);
    replace.mutable_update_mask()->add_paths("members");
    s = MustCall(kCertifier, &pb::EvaluationService::Stub::UpdateJurySession, replace);  // PrepareAll(s) below: J4
    const std::string replaced = s.etag();
    // J4 has not read the référentiel: refused; it was not prepared, so nothing is withdrawn or written.
    not_read = Call("jury-member:J4", &pb::EvaluationService::Stub::ConfirmPreparation, unread, &out);
    EXPECT_EQ(PreconditionTypes(not_read), std::set<std::string>{"REFERENTIAL_NOT_READ"});
    EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get_s).etag(), replaced);
  }
  // The % per bloc is given during the interview: not before the session starts; the marks on
  // reading the dossier may be.
  pb::SubmitScoreSheetRequest too_soon;
  too_soon.set_candidacy(c2.name());
  *too_soon.mutable_sheet() = Sheet(kAllBlocs, kFirstJury, 0);
  ASSERT_GT(too_soon.sheet().bloc_scores_size(), 0);
  pb::ScoreSheet not_taken;
  grpc::Status early_scores = Call("jury-member:J1", &pb::EvaluationService::Stub::SubmitScoreSheet, too_soon, &not_taken);
  EXPECT_TRUE(PreconditionTypes(early_scores).count("SESSION_NOT_STARTED")) << early_scores.error_message();
  too_soon.mutable_sheet()->clear_bloc_scores();
  EXPECT_TRUE(Call("jury-member:J1", &pb::EvaluationService::Stub::SubmitScoreSheet, too_soon, &not_taken).ok());
  PrepareAll(s);
  // A candidate scheduled after the members' declarations (no link with the candidates) is not
  // covered by them: they declare again before the session starts.
  pb::Candidacy late = ToDossierFiled(NewCandidacy("cand-003-late"));
  pb::ScheduleCandidacyRequest schedule_late;
  schedule_late.set_session(s.name());
  schedule_late.set_candidacy(late.name());
  const pb::JurySession rescheduled = MustCall(kCertifier, &pb::EvaluationService::Stub::ScheduleCandidacy, schedule_late);
  for (const pb::JuryMember& m : rescheduled.members()) EXPECT_FALSE(m.prepared()) << m.member_id();
  start = Call(kCertifier, &pb::EvaluationService::Stub::StartJurySession, go, &out);
  EXPECT_TRUE(PreconditionTypes(start).count("MEMBER_NOT_PREPARED")) << start.error_message();
  PrepareAll(s);
  MustCall(kCertifier, &pb::EvaluationService::Stub::StartJurySession, go);
  pb::RecordPassageRequest passage;
  passage.set_session(s.name());
  passage.set_candidacy(c2.name());
  passage.set_attendance(pb::ATTENDANCE_PRESENT);
  MustCall(kCertifier, &pb::EvaluationService::Stub::RecordPassage, passage);

  // Only J1 and J4 score: the deliberation cannot open.
  for (const char* member : {"J1", "J4"}) {
    pb::SubmitScoreSheetRequest req;
    req.set_candidacy(c2.name());
    *req.mutable_sheet() = Sheet(kAllBlocs, kFirstJury, 0);
    MustCall(absl::StrCat("jury-member:", member), &pb::EvaluationService::Stub::SubmitScoreSheet, req);
  }
  // J4 cannot read J1's scores before the deliberation.
  pb::GetScoreSheetRequest peek;
  peek.set_name(c2.name() + "/scoreSheets/J1");
  pb::ScoreSheet sheet;
  EXPECT_EQ(Call("jury-member:J4", &pb::EvaluationService::Stub::GetScoreSheet, peek, &sheet).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(Call("jury-member:J1", &pb::EvaluationService::Stub::GetScoreSheet, peek, &sheet).ok());

  pb::OpenDeliberationRequest open;
  open.set_candidacy(c2.name());
  pb::Deliberation d;
  grpc::Status opened = Call(kCertifier, &pb::EvaluationService::Stub::OpenDeliberation, open, &d);
  EXPECT_EQ(opened.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(PreconditionTypes(opened).count("SCORES_MISSING"));

  pb::SubmitScoreSheetRequest last;
  last.set_candidacy(c2.name());
  *last.mutable_sheet() = Sheet(kAllBlocs, kFirstJury, 0);
  MustCall("jury-member:J3", &pb::EvaluationService::Stub::SubmitScoreSheet, last);
  d = MustCall(kCertifier, &pb::EvaluationService::Stub::OpenDeliberation, open);
  // Now J4 may read J1's sheet, and nobody changes a score any more.
  EXPECT_TRUE(Call("jury-member:J4", &pb::EvaluationService::Stub::GetScoreSheet, peek, &sheet).ok());
  grpc::Status rescore = Call("jury-member:J3", &pb::EvaluationService::Stub::SubmitScoreSheet, last, &sheet);
  EXPECT_TRUE(PreconditionTypes(rescore).count("DELIBERATION_OPEN")) << rescore.error_message();
  pb::Deliberation not_signed;
  grpc::Status reopened = Call(kCertifier, &pb::EvaluationService::Stub::OpenDeliberation, open, &not_signed);
  EXPECT_TRUE(PreconditionTypes(reopened).count("DELIBERATION_ALREADY_OPEN")) << reopened.error_message();
  // Nothing to sign before the president records the decision.
  pb::SignDeliberationRequest early_sign;
  early_sign.set_name(d.name());
  grpc::Status unsigned_yet = Call("jury-member:J4", &pb::EvaluationService::Stub::SignDeliberation, early_sign, &not_signed);
  EXPECT_TRUE(PreconditionTypes(unsigned_yet).count("NO_DECISION")) << unsigned_yet.error_message();

  // BC3 at 65 counts only with a justification ("rattrapage").
  std::map<std::string, int> pct = {{"BC1", 80}, {"BC2", 75}, {"BC3", 65}, {"BC4", 72}, {"BC5", 90}};
  pb::RecordDecisionRequest total = Decision(d.name(), pct, pb::PROPOSAL_KIND_TOTAL);
  EXPECT_EQ(Call("jury-member:J1", &pb::EvaluationService::Stub::RecordDecision, total, &d).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  // Only the president records the decision.
  EXPECT_EQ(Call("jury-member:J4", &pb::EvaluationService::Stub::RecordDecision, total, &d).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  for (auto& a : *total.mutable_appreciations()) {
    if (a.bloc_code() == "BC3") a.set_justification("Expérience en diagnostic compensant l'écart");
  }
  // A decision or a signature on a stale read is ABORTED: the president and the members act on the
  // text they read.
  const std::string read_before = d.etag();
  d = MustCall("jury-member:J1", &pb::EvaluationService::Stub::RecordDecision, total);
  EXPECT_EQ(d.proposed_blocs_size(), 5);
  pb::RecordDecisionRequest stale = total;
  stale.set_etag(read_before);
  pb::Deliberation refused;
  EXPECT_EQ(Call("jury-member:J1", &pb::EvaluationService::Stub::RecordDecision, stale, &refused).error_code(),
            grpc::StatusCode::ABORTED);
  pb::SignDeliberationRequest stale_sign;
  stale_sign.set_name(d.name());
  stale_sign.set_etag(read_before);
  EXPECT_EQ(Call("jury-member:J4", &pb::EvaluationService::Stub::SignDeliberation, stale_sign, &refused).error_code(),
            grpc::StatusCode::ABORTED);
  total.set_etag(d.etag());
  d = MustCall("jury-member:J1", &pb::EvaluationService::Stub::RecordDecision, total);  // same text, current read
  EXPECT_EQ(d.signatures_size(), 0);
  // Only a sealed result is revoked, and only with a reason.
  pb::RevokeDeliberationRequest revoke_open;
  revoke_open.set_name(d.name());
  revoke_open.set_reason("erreur de saisie");
  grpc::Status not_sealed = Call(kCertifier, &pb::EvaluationService::Stub::RevokeDeliberation, revoke_open, &refused);
  EXPECT_TRUE(PreconditionTypes(not_sealed).count("DELIBERATION_NOT_SEALED")) << not_sealed.error_message();
  revoke_open.clear_reason();
  grpc::Status no_reason = Call(kCertifier, &pb::EvaluationService::Stub::RevokeDeliberation, revoke_open, &refused);
  EXPECT_EQ(no_reason.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << no_reason.error_message();
  EXPECT_NE(no_reason.error_message().find("reason"), std::string::npos) << no_reason.error_message();
  // Once a member has signed, the text no longer changes and nobody signs twice.
  pb::SignDeliberationRequest first_sign;
  first_sign.set_name(d.name());
  MustCall("jury-member:J4", &pb::EvaluationService::Stub::SignDeliberation, first_sign);
  grpc::Status twice = Call("jury-member:J4", &pb::EvaluationService::Stub::SignDeliberation, first_sign, &refused);
  EXPECT_TRUE(PreconditionTypes(twice).count("ALREADY_SIGNED")) << twice.error_message();
  total.clear_etag();
  grpc::Status changed = Call("jury-member:J1", &pb::EvaluationService::Stub::RecordDecision, total, &refused);
  EXPECT_TRUE(PreconditionTypes(changed).count("ALREADY_SIGNED")) << changed.error_message();
  for (const char* member : {"J1", "J3"}) {
    d = MustCall(absl::StrCat("jury-member:", member), &pb::EvaluationService::Stub::SignDeliberation, first_sign);
  }
  ASSERT_EQ(d.state(), pb::DELIBERATION_STATE_SEALED);

  // Revocation keeps the old result, empties the ledger of its blocs and opens round 2.
  pb::RevokeDeliberationRequest revoke;
  revoke.set_name(d.name());
  revoke.set_reason("erreur de saisie du pourcentage BC5");
  pb::Deliberation next = MustCall(kCertifier, &pb::EvaluationService::Stub::RevokeDeliberation, revoke);
  EXPECT_EQ(next.name(), c2.name() + "/deliberations/2");
  EXPECT_EQ(next.state(), pb::DELIBERATION_STATE_OPEN);
  pb::GetDeliberationRequest get_old;
  get_old.set_name(d.name());
  pb::Deliberation old = MustCall(kCertifier, &pb::EvaluationService::Stub::GetDeliberation, get_old);
  EXPECT_EQ(old.state(), pb::DELIBERATION_STATE_REVOKED);
  EXPECT_EQ(old.proposed_blocs_size(), 5);
  pb::ListAcquiredBlocsRequest ledger;
  ledger.set_parent("candidates/cand-003");
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::ListAcquiredBlocs, ledger).blocs_size(), 0);

  // Another certifier sees nothing of it; a member of another session neither.
  pb::GetCandidacyRequest get;
  get.set_name(c2.name());
  pb::Candidacy hidden;
  EXPECT_EQ(Call("certifier:OTHER", &pb::EvaluationService::Stub::GetCandidacy, get, &hidden).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Call("jury-member:J9", &pb::EvaluationService::Stub::GetCandidacy, get, &hidden).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // No principal at all.
  grpc::ClientContext anonymous;
  EXPECT_EQ(stub_->GetCandidacy(&anonymous, get, &hidden).error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // A transition the machine does not allow names the state.
  pb::FileDossierRequest file;
  file.set_name(c2.name());
  grpc::Status again = Call(kCertifier, &pb::EvaluationService::Stub::FileDossier, file, &hidden);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(again.error_message().find("EVALUATED"), std::string::npos) << again.error_message();
}

TEST_P(EvaluationServiceTest, UnpublishedVersionAndReferentialDownWriteNothing) {
  // A draft version 2 of the seed CQP.
  ref::CreateVersionRequest draft;
  draft.set_parent("certifications/CQP-TMSA");
  draft.set_source_version(kSeedVersion);
  ref::Version v2;
  {
    testing::NationalContext ctx;
    ASSERT_TRUE(referential_stub_->CreateVersion(&ctx, draft, &v2).ok());
  }
  pb::CreateCandidacyRequest req;
  req.mutable_candidacy()->set_candidate_id("cand-004");
  req.mutable_candidacy()->set_candidate_display_name("Paul Girard");
  req.mutable_candidacy()->set_referential_version(v2.name());
  pb::Candidacy out;
  grpc::Status s = Call(kCertifier, &pb::EvaluationService::Stub::CreateCandidacy, req, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(PreconditionTypes(s).count("VERSION_NOT_PUBLISHED")) << s.error_message();

  // Malformed input names the field.
  req.mutable_candidacy()->set_candidate_id("");
  s = Call(kCertifier, &pb::EvaluationService::Stub::CreateCandidacy, req, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(BadFields(s), std::vector<std::string>{"candidacy.candidate_id"});
  req.mutable_candidacy()->set_candidate_id("cand-004");
  req.mutable_candidacy()->set_cep_case("dossiers/42");  // the referring case: cases/{case} or nothing
  s = Call(kCertifier, &pb::EvaluationService::Stub::CreateCandidacy, req, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(BadFields(s), std::vector<std::string>{"candidacy.cep_case"});
  req.mutable_candidacy()->clear_cep_case();

  // Only certifiers create candidacies.
  req.mutable_candidacy()->set_referential_version(kSeedVersion);
  EXPECT_EQ(Call("jury-member:J1", &pb::EvaluationService::Stub::CreateCandidacy, req, &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  // referential-svc down: UNAVAILABLE, nothing written.
  referential_runner_->Shutdown();
  req.mutable_candidacy()->set_referential_version("certifications/CQP-TMSA/versions/3");
  s = Call(kCertifier, &pb::EvaluationService::Stub::CreateCandidacy, req, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_EQ(CountCandidacies(), 0);
}

// Retries that run while the first attempt is still in its transaction (a client timing out and
// retrying, the gateway retrying on another replica): every attempt gets the one candidacy, none
// ALREADY_EXISTS or ABORTED for the caller's own create.
TEST_P(EvaluationServiceTest, ConcurrentAttemptsOfOneCreateAllGetTheSameCandidacy) {
  constexpr int kRequests = 6;
  constexpr int kAttempts = 6;
  for (int i = 0; i < kRequests; ++i) {
    pb::CreateCandidacyRequest req;
    req.mutable_candidacy()->set_candidate_id(absl::StrCat("cand-race-", i));
    req.mutable_candidacy()->set_candidate_display_name("Léa Morel");
    req.mutable_candidacy()->set_referential_version(kSeedVersion);
    req.set_request_id(absl::StrCat("req-race-", i));
    std::vector<grpc::Status> statuses(kAttempts);
    std::vector<pb::Candidacy> created(kAttempts);
    ::parcours::testing::RunConcurrently(kAttempts, [&](int k) {
      statuses[k] = Call(kCertifier, &pb::EvaluationService::Stub::CreateCandidacy, req, &created[k]);
    });
    for (int k = 0; k < kAttempts; ++k) {
      EXPECT_TRUE(statuses[k].ok()) << "request " << i << " attempt " << k << ": " << statuses[k].error_code() << " "
                                    << statuses[k].error_message();
      EXPECT_EQ(created[k].name(), created[0].name()) << "request " << i << " attempt " << k;
    }
  }
  EXPECT_EQ(CountCandidacies(), kRequests);
}

TEST_P(EvaluationServiceTest, SameRequestIdCreatesOneCandidacyAndSessionReportFlagsUnequalTreatment) {
  pb::CreateCandidacyRequest req;
  req.mutable_candidacy()->set_candidate_id("cand-005");
  req.mutable_candidacy()->set_candidate_display_name("Léa Morel");
  req.mutable_candidacy()->set_referential_version(kSeedVersion);
  req.set_request_id("req-cand-005");
  pb::Candidacy a = MustCall(kCertifier, &pb::EvaluationService::Stub::CreateCandidacy, req);
  pb::Candidacy b = MustCall(kCertifier, &pb::EvaluationService::Stub::CreateCandidacy, req);
  EXPECT_EQ(a.name(), b.name());
  EXPECT_EQ(CountCandidacies(), 1);

  // Two candidates, one with a much shorter exchange and fewer questions.
  pb::Candidacy c1 = ToDossierFiled(a);
  pb::Candidacy c2 = ToDossierFiled(NewCandidacy("cand-006"));
  pb::Candidacy c3 = ToDossierFiled(NewCandidacy("cand-007"));
  pb::JurySession s = NewSession(SeedJury());
  for (const auto* c : {&c1, &c2, &c3}) {
    pb::ScheduleCandidacyRequest schedule;
    schedule.set_session(s.name());
    schedule.set_candidacy(c->name());
    MustCall(kCertifier, &pb::EvaluationService::Stub::ScheduleCandidacy, schedule);
  }
  PrepareAll(s);
  Start(s);
  const std::vector<std::tuple<const pb::Candidacy*, int, int, int>> passages = {
      {&c1, 560, 580, 9}, {&c2, 550, 590, 8}, {&c3, 500, 180, 2}};
  for (const auto& [c, presentation, exchange, questions] : passages) {
    pb::RecordPassageRequest p;
    p.set_session(s.name());
    p.set_candidacy(c->name());
    p.set_attendance(pb::ATTENDANCE_PRESENT);
    p.set_presentation_seconds(presentation);
    p.set_exchange_seconds(exchange);
    p.set_question_count(questions);
    MustCall(kCertifier, &pb::EvaluationService::Stub::RecordPassage, p);
  }
  pb::GetSessionReportRequest report_req;
  report_req.set_session(s.name());
  pb::SessionReport report = MustCall(kCertifier, &pb::EvaluationService::Stub::GetSessionReport, report_req);
  EXPECT_EQ(report.candidates_present(), 3);
  std::set<std::string> flagged;
  for (const auto& f : report.findings()) flagged.insert(f.candidacy() + "|" + f.measure());
  EXPECT_TRUE(flagged.count(c3.name() + "|exchange_seconds"));
  EXPECT_TRUE(flagged.count(c3.name() + "|question_count"));
  EXPECT_FALSE(flagged.count(c1.name() + "|exchange_seconds"));
}

TEST_P(EvaluationServiceTest, ListsPaginateFilterAndStayWithinTheCertifier) {
  std::set<std::string> created;
  for (int i = 0; i < 5; ++i) created.insert(NewCandidacy(absl::StrCat("cand-list-", i)).name());
  ToDossierFiled(NewCandidacy("cand-list-filed"));

  std::set<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    pb::ListCandidaciesRequest list;
    list.set_page_size(2);
    list.set_filter("state = INFORMATION AND certification = \"CQP-TMSA\"");
    list.set_page_token(token);
    auto page = MustCall(kCertifier, &pb::EvaluationService::Stub::ListCandidacies, list);
    for (const auto& c : page.candidacies()) seen.insert(c.name());
    token = page.next_page_token();
  } while (!token.empty() && ++pages < 10);
  EXPECT_EQ(seen, created);
  EXPECT_EQ(pages, 2);  // 2 + 2 + 1

  pb::ListCandidaciesRequest other;
  pb::ListCandidaciesResponse none = MustCall("certifier:OTHER", &pb::EvaluationService::Stub::ListCandidacies, other);
  EXPECT_EQ(none.candidacies_size(), 0);
  pb::ListCandidaciesResponse denied;
  EXPECT_EQ(Call("jury-member:J1", &pb::EvaluationService::Stub::ListCandidacies, other, &denied).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  other.set_filter("state = NOPE");
  EXPECT_EQ(Call(kCertifier, &pb::EvaluationService::Stub::ListCandidacies, other, &denied).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  NewSession(SeedJury());
  pb::ListJurySessionsRequest sessions;
  sessions.set_filter("date = 2026-06-12 AND state = PLANNED");
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::ListJurySessions, sessions).sessions_size(), 1);
  sessions.set_filter("date = 2026-06-13");
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::ListJurySessions, sessions).sessions_size(), 0);
  // Not a calendar date: refused, not an empty list.
  for (const char* bad : {"date = 2026-02-30", "date = 2026-06-12xyz", "date = 2026-6-12"}) {
    sessions.set_filter(bad);
    pb::ListJurySessionsResponse none;
    EXPECT_EQ(Call(kCertifier, &pb::EvaluationService::Stub::ListJurySessions, sessions, &none).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT)
        << bad;
  }
}

TEST_P(EvaluationServiceTest, NationalGetsOutcomeStatisticsAndOnlyAStatisticsView) {
  // c1: partial (BC1, BC2, BC4 acquired); c2: total.
  pb::Candidacy c1 = ToDossierFiled(NewCandidacy("cand-stat-1"));
  Pass(NewSession(SeedJury()), c1);
  ScoreAll(c1, kAllBlocs, kFirstJury);
  pb::OpenDeliberationRequest open;
  open.set_candidacy(c1.name());
  pb::Deliberation d1 = MustCall(kCertifier, &pb::EvaluationService::Stub::OpenDeliberation, open);
  MustCall("jury-member:J1", &pb::EvaluationService::Stub::RecordDecision,
           Decision(d1.name(), kFirstJury, pb::PROPOSAL_KIND_PARTIAL));
  SignAll(d1.name());

  const std::map<std::string, int> all_good = {{"BC1", 80}, {"BC2", 75}, {"BC3", 72}, {"BC4", 90}, {"BC5", 85}};
  pb::Candidacy c2 = ToDossierFiled(NewCandidacy("cand-stat-2"));
  Pass(NewSession(SeedJury()), c2);
  ScoreAll(c2, kAllBlocs, all_good);
  open.set_candidacy(c2.name());
  pb::Deliberation d2 = MustCall(kCertifier, &pb::EvaluationService::Stub::OpenDeliberation, open);
  MustCall("jury-member:J1", &pb::EvaluationService::Stub::RecordDecision,
           Decision(d2.name(), all_good, pb::PROPOSAL_KIND_TOTAL));
  SignAll(d2.name());

  pb::GetOutcomeStatisticsRequest stats_req;
  pb::OutcomeStatistics stats = MustCall("national", &pb::EvaluationService::Stub::GetOutcomeStatistics, stats_req);
  ASSERT_EQ(stats.certifications_size(), 1);
  const pb::CertificationOutcomeCount& tmsa = stats.certifications(0);
  EXPECT_EQ(tmsa.certification_code(), "CQP-TMSA");
  EXPECT_EQ(tmsa.decided(), 2);
  EXPECT_EQ(tmsa.total(), 1);
  EXPECT_EQ(tmsa.partial(), 1);
  EXPECT_EQ(tmsa.refusal(), 0);
  std::map<std::string, std::pair<int64_t, int64_t>> blocs;
  for (const auto& b : tmsa.blocs()) blocs[b.bloc_code()] = {b.evaluated(), b.acquired()};
  EXPECT_EQ(blocs, (std::map<std::string, std::pair<int64_t, int64_t>>{
                       {"BC1", {2, 2}}, {"BC2", {2, 2}}, {"BC3", {2, 1}}, {"BC4", {2, 2}}, {"BC5", {2, 1}}}));

  // Filters: another certification, a period before today.
  stats_req.set_filter("certification = \"RNCP40344\"");
  EXPECT_EQ(MustCall("national", &pb::EvaluationService::Stub::GetOutcomeStatistics, stats_req).certifications_size(),
            0);
  stats_req.clear_filter();
  stats_req.mutable_to_date()->set_year(2020);
  stats_req.mutable_to_date()->set_month(1);
  stats_req.mutable_to_date()->set_day(1);
  EXPECT_EQ(MustCall("national", &pb::EvaluationService::Stub::GetOutcomeStatistics, stats_req).certifications_size(),
            0);
  stats_req.mutable_from_date()->set_year(2021);
  stats_req.mutable_from_date()->set_month(1);
  stats_req.mutable_from_date()->set_day(1);
  pb::OutcomeStatistics none;
  EXPECT_EQ(Call("national", &pb::EvaluationService::Stub::GetOutcomeStatistics, stats_req, &none).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // Nobody else reads them.
  stats_req.Clear();
  EXPECT_EQ(Call(kCertifier, &pb::EvaluationService::Stub::GetOutcomeStatistics, stats_req, &none).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  // The statistics view of a candidacy and its result: no identity, no free text.
  pb::GetCandidacyRequest get;
  get.set_name(c1.name());
  pb::Candidacy seen = MustCall("national", &pb::EvaluationService::Stub::GetCandidacy, get);
  EXPECT_EQ(seen.state(), pb::CANDIDACY_STATE_DELIBERATED);
  EXPECT_EQ(seen.referential_version(), kSeedVersion);
  EXPECT_TRUE(seen.candidate_id().empty());
  EXPECT_TRUE(seen.candidate_display_name().empty());
  for (const auto& change : seen.history()) {
    EXPECT_TRUE(change.actor().empty());
    EXPECT_TRUE(change.reason().empty());
  }
  pb::GetDeliberationRequest get_d;
  get_d.set_name(c1.name() + "/deliberations/-");
  pb::Deliberation result = MustCall("national", &pb::EvaluationService::Stub::GetDeliberation, get_d);
  EXPECT_EQ(result.state(), pb::DELIBERATION_STATE_SEALED);
  EXPECT_EQ(result.proposal(), pb::PROPOSAL_KIND_PARTIAL);
  EXPECT_EQ(result.proposed_blocs_size(), 3);
  for (const auto& a : result.appreciations()) EXPECT_TRUE(a.comment().empty());
  for (const auto& sig : result.signatures()) EXPECT_TRUE(sig.member_id().empty());
  // Both in one read, in the same view.
  pb::GetCandidacyProgressRequest get_p;
  get_p.set_name(c1.name());
  pb::CandidacyProgress progress = MustCall("national", &pb::EvaluationService::Stub::GetCandidacyProgress, get_p);
  EXPECT_EQ(progress.candidacy().state(), pb::CANDIDACY_STATE_DELIBERATED);
  EXPECT_TRUE(progress.candidacy().candidate_id().empty());
  EXPECT_TRUE(progress.candidacy().candidate_display_name().empty());
  for (const auto& change : progress.candidacy().history()) EXPECT_TRUE(change.reason().empty());
  EXPECT_EQ(progress.current_deliberation().name(), d1.name());
  EXPECT_EQ(progress.current_deliberation().proposal(), pb::PROPOSAL_KIND_PARTIAL);
  EXPECT_EQ(progress.current_deliberation().proposed_blocs_size(), 3);
  for (const auto& a : progress.current_deliberation().appreciations()) EXPECT_TRUE(a.comment().empty());
  for (const auto& sig : progress.current_deliberation().signatures()) EXPECT_TRUE(sig.member_id().empty());
  // Its certifier sees everything; a candidacy without a deliberation has none; another
  // certifier's candidacy is NOT_FOUND; a bad name names the field.
  pb::CandidacyProgress own = MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacyProgress, get_p);
  EXPECT_EQ(own.candidacy().candidate_id(), c1.candidate_id());
  EXPECT_EQ(own.current_deliberation().name(), d1.name());
  // The referring CEP case stays in the statistics view: the gateway shows a candidacy on that
  // case only.
  pb::CreateCandidacyRequest referred;
  referred.mutable_candidacy()->set_candidate_id("cand-stat-referred");
  referred.mutable_candidacy()->set_candidate_display_name("Inès Robert");
  referred.mutable_candidacy()->set_referential_version(kSeedVersion);
  referred.mutable_candidacy()->set_cep_case("cases/0123456789abcdef");
  const pb::Candidacy with_case = MustCall(kCertifier, &pb::EvaluationService::Stub::CreateCandidacy, referred);
  EXPECT_EQ(with_case.cep_case(), "cases/0123456789abcdef");
  pb::GetCandidacyProgressRequest get_referred;
  get_referred.set_name(with_case.name());
  const pb::CandidacyProgress referred_seen =
      MustCall("national", &pb::EvaluationService::Stub::GetCandidacyProgress, get_referred);
  EXPECT_EQ(referred_seen.candidacy().cep_case(), "cases/0123456789abcdef");
  EXPECT_TRUE(referred_seen.candidacy().candidate_id().empty());
  get_p.set_name(NewCandidacy("cand-stat-3").name());
  EXPECT_FALSE(MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacyProgress, get_p).has_current_deliberation());
  pb::CandidacyProgress other;
  EXPECT_EQ(Call("certifier:OTHER", &pb::EvaluationService::Stub::GetCandidacyProgress, get_p, &other).error_code(),
            grpc::StatusCode::NOT_FOUND);
  get_p.set_name("candidacies/");
  grpc::Status bad = Call("national", &pb::EvaluationService::Stub::GetCandidacyProgress, get_p, &other);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(bad.error_message().find("name"), std::string::npos) << bad.error_message();
  // Nothing more: not the grid (it names the candidate), not the lists, not the sheets.
  pb::RenderSynthesisGridRequest render;
  render.set_name(d1.name());
  pb::Document doc;
  EXPECT_EQ(Call("national", &pb::EvaluationService::Stub::RenderSynthesisGrid, render, &doc).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  pb::ListCandidaciesRequest list;
  pb::ListCandidaciesResponse listed;
  EXPECT_EQ(Call("national", &pb::EvaluationService::Stub::ListCandidacies, list, &listed).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  pb::GetScoreSheetRequest sheet_req;
  sheet_req.set_name(c1.name() + "/scoreSheets/J1");
  pb::ScoreSheet sheet;
  EXPECT_EQ(Call("national", &pb::EvaluationService::Stub::GetScoreSheet, sheet_req, &sheet).error_code(),
            grpc::StatusCode::NOT_FOUND);
  pb::SignDeliberationRequest sign;
  sign.set_name(d1.name());
  EXPECT_EQ(Call("national", &pb::EvaluationService::Stub::SignDeliberation, sign, &result).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

// A candidate who was absent or excused had no passage: no durations or questions, no score
// sheet once the passage is recorded, no spread of sheets given before it, no appreciation; the
// statistics count none of its blocs as evaluated. Each refusal changes nothing.
TEST_P(EvaluationServiceTest, AnAbsentOrExcusedCandidateIsNeitherMeasuredScoredNorAppreciated) {
  pb::Candidacy absent = ToDossierFiled(NewCandidacy("cand-absent"));
  pb::Candidacy excused = ToDossierFiled(NewCandidacy("cand-excused"));
  pb::JurySession s = NewSession(SeedJury());
  for (const pb::Candidacy* c : {&absent, &excused}) {
    pb::ScheduleCandidacyRequest schedule;
    schedule.set_session(s.name());
    schedule.set_candidacy(c->name());
    MustCall(kCertifier, &pb::EvaluationService::Stub::ScheduleCandidacy, schedule);
  }
  PrepareAll(s);
  Start(s);
  // A sheet given during the session, before the passage is recorded.
  pb::SubmitScoreSheetRequest early;
  early.set_candidacy(absent.name());
  *early.mutable_sheet() = Sheet(kAllBlocs, kFirstJury, 0);
  MustCall("jury-member:J2", &pb::EvaluationService::Stub::SubmitScoreSheet, early);

  pb::GetJurySessionRequest get_session;
  get_session.set_name(s.name());
  const pb::JurySession before = MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get_session);
  pb::RecordPassageRequest passage;
  passage.set_session(s.name());
  passage.set_candidacy(absent.name());
  passage.set_attendance(pb::ATTENDANCE_ABSENT);
  passage.set_presentation_seconds(300);
  passage.set_exchange_seconds(200);
  pb::JurySession out;
  grpc::Status measured = Call("jury-member:J1", &pb::EvaluationService::Stub::RecordPassage, passage, &out);
  EXPECT_EQ(measured.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(BadFields(measured), (std::vector<std::string>{"presentation_seconds", "exchange_seconds"}));
  passage.set_candidacy(excused.name());
  passage.set_attendance(pb::ATTENDANCE_EXCUSED);
  passage.clear_presentation_seconds();
  passage.clear_exchange_seconds();
  passage.set_question_count(3);
  measured = Call("jury-member:J1", &pb::EvaluationService::Stub::RecordPassage, passage, &out);
  EXPECT_EQ(measured.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(BadFields(measured), (std::vector<std::string>{"question_count"}));
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get_session).etag(), before.etag());
  pb::GetCandidacyRequest get;
  get.set_name(absent.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get).state(),
            pb::CANDIDACY_STATE_JURY_SCHEDULED);

  passage.clear_question_count();
  MustCall("jury-member:J1", &pb::EvaluationService::Stub::RecordPassage, passage);
  passage.set_candidacy(absent.name());
  passage.set_attendance(pb::ATTENDANCE_ABSENT);
  MustCall("jury-member:J1", &pb::EvaluationService::Stub::RecordPassage, passage);

  // No sheet once the candidate is known not to have come.
  for (const pb::Candidacy* c : {&absent, &excused}) {
    pb::SubmitScoreSheetRequest late;
    late.set_candidacy(c->name());
    *late.mutable_sheet() = Sheet(kAllBlocs, kFirstJury, 0);
    pb::ScoreSheet sheet;
    grpc::Status refused = Call("jury-member:J3", &pb::EvaluationService::Stub::SubmitScoreSheet, late, &sheet);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << c->name();
    EXPECT_TRUE(PreconditionTypes(refused).count("CANDIDATE_NOT_PRESENT")) << refused.error_message();
    pb::GetScoreSheetRequest read;
    read.set_name(c->name() + "/scoreSheets/J3");
    EXPECT_EQ(Call("jury-member:J3", &pb::EvaluationService::Stub::GetScoreSheet, read, &sheet).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }

  // The sheet given before the passage is not spread; an appreciation is malformed input.
  pb::OpenDeliberationRequest open;
  open.set_candidacy(absent.name());
  const pb::Deliberation opened = MustCall(kCertifier, &pb::EvaluationService::Stub::OpenDeliberation, open);
  EXPECT_EQ(opened.spreads_size(), 0) << opened.DebugString();
  pb::Deliberation d;
  grpc::Status appreciated = Call("jury-member:J1", &pb::EvaluationService::Stub::RecordDecision,
                                  Decision(opened.name(), kFirstJury, pb::PROPOSAL_KIND_CANDIDATE_ABSENT), &d);
  EXPECT_EQ(appreciated.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(BadFields(appreciated), (std::vector<std::string>{"appreciations"}));
  pb::GetDeliberationRequest get_d;
  get_d.set_name(opened.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetDeliberation, get_d).etag(), opened.etag());
  MustCall("jury-member:J1", &pb::EvaluationService::Stub::RecordDecision,
           Decision(opened.name(), {}, pb::PROPOSAL_KIND_CANDIDATE_ABSENT));
  const pb::Deliberation sealed = SignAll(opened.name());
  EXPECT_EQ(sealed.state(), pb::DELIBERATION_STATE_SEALED);
  EXPECT_EQ(sealed.appreciations_size(), 0);

  // A result sealed before these rules, with appreciations of an absent candidate: its blocs are
  // still not counted as evaluated.
  {
    auto db = db::Open(dsn_);
    ASSERT_TRUE(db.ok()) << db.status();
    auto repository = NewSqlRepository(**db);
    ASSERT_TRUE(repository
                    ->Transact([&](EvaluationTx& tx) -> absl::Status {
                      const std::string id = absent.name().substr(std::string("candidacies/").size());
                      auto stored = tx.GetDeliberation(id, 1);
                      if (!stored.ok()) return stored.status();
                      pb::BlocAppreciation* a = stored->value.add_appreciations();
                      a->set_bloc_code("BC1");
                      a->set_common_percent(80);
                      return tx.PutDeliberation(id, 1, stored->value, stored->version, clock_.Now());
                    })
                    .ok());
  }
  pb::GetOutcomeStatisticsRequest stats_req;
  const pb::OutcomeStatistics stats =
      MustCall("national", &pb::EvaluationService::Stub::GetOutcomeStatistics, stats_req);
  ASSERT_EQ(stats.certifications_size(), 1);
  EXPECT_EQ(stats.certifications(0).candidate_absent(), 1);
  EXPECT_EQ(stats.certifications(0).blocs_size(), 0) << stats.DebugString();
}

// A candidate absent at its jury is called before a later session: the sealed absence stays as
// history, the earlier jury's sheets are set aside (kept, not mixed with the new jury's), its
// members no longer see the candidacy, and the new jury's deliberation is the next round, which
// becomes the current result and is issued. A decided result (a refusal, a grant) is not called
// again this way, and the refusal changes nothing.
TEST_P(EvaluationServiceTest, AnAbsentCandidateIsCalledBeforeALaterSessionAndCertified) {
  pb::Candidacy c = ToDossierFiled(NewCandidacy("cand-called-again"));
  pb::JurySession first = NewSession(SeedJury());
  pb::ScheduleCandidacyRequest schedule;
  schedule.set_session(first.name());
  schedule.set_candidacy(c.name());
  MustCall(kCertifier, &pb::EvaluationService::Stub::ScheduleCandidacy, schedule);
  PrepareAll(first);
  Start(first);
  // J2 scored before the candidate was found absent: that sheet must not reach the next jury.
  const std::map<std::string, int> zeros = {{"BC1", 0}, {"BC2", 0}, {"BC3", 0}, {"BC4", 0}, {"BC5", 0}};
  pb::SubmitScoreSheetRequest early;
  early.set_candidacy(c.name());
  *early.mutable_sheet() = Sheet(kAllBlocs, zeros, 0);
  MustCall("jury-member:J2", &pb::EvaluationService::Stub::SubmitScoreSheet, early);
  RecordAbsent(first, c);
  const pb::Deliberation absence = Seal(c, {}, pb::PROPOSAL_KIND_CANDIDATE_ABSENT);
  ASSERT_EQ(absence.state(), pb::DELIBERATION_STATE_SEALED);
  EXPECT_EQ(absence.session(), first.name());

  // Decided results are not called again: a refusal and a partial grant.
  pb::JurySession second = NewSession(SecondJury(), absl::CivilDay(2026, 9, 18));
  pb::GetJurySessionRequest get_second;
  get_second.set_name(second.name());
  const std::map<std::string, int> none_acquired = {{"BC1", 30}, {"BC2", 35}, {"BC3", 40}, {"BC4", 20}, {"BC5", 25}};
  pb::Candidacy refused = ToDossierFiled(NewCandidacy("cand-called-refused"));
  SealedResult(refused, kAllBlocs, none_acquired, pb::PROPOSAL_KIND_REFUSAL);
  pb::Candidacy granted = ToDossierFiled(NewCandidacy("cand-called-granted"));
  SealedResult(granted, kAllBlocs, kFirstJury, pb::PROPOSAL_KIND_PARTIAL);
  const pb::JurySession planned = MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get_second);
  for (const pb::Candidacy* decided : {&refused, &granted}) {
    pb::ScheduleCandidacyRequest again;
    again.set_session(second.name());
    again.set_candidacy(decided->name());
    pb::JurySession out;
    grpc::Status st = Call(kCertifier, &pb::EvaluationService::Stub::ScheduleCandidacy, again, &out);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << decided->name();
    EXPECT_TRUE(PreconditionTypes(st).count("RESULT_DECIDED")) << st.error_message();
    pb::GetCandidacyRequest get;
    get.set_name(decided->name());
    EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get).state(),
              pb::CANDIDACY_STATE_DELIBERATED);
  }
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get_second).etag(), planned.etag());

  // The absent candidate is called before the second session.
  schedule.set_session(second.name());
  MustCall(kCertifier, &pb::EvaluationService::Stub::ScheduleCandidacy, schedule);
  pb::GetCandidacyRequest get;
  get.set_name(c.name());
  const pb::Candidacy called = MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get);
  EXPECT_EQ(called.state(), pb::CANDIDACY_STATE_JURY_SCHEDULED);
  EXPECT_EQ(called.session(), second.name());
  const pb::StateChange& last = called.history(called.history_size() - 1);
  EXPECT_EQ(last.from(), pb::CANDIDACY_STATE_DELIBERATED);
  EXPECT_EQ(last.to(), pb::CANDIDACY_STATE_JURY_SCHEDULED);
  EXPECT_NE(last.reason().find("CANDIDATE_ABSENT"), std::string::npos) << last.reason();
  EXPECT_NE(last.reason().find("1 score sheet(s) of " + first.name() + " set aside"), std::string::npos)
      << last.reason();
  // The earlier sheet is kept aside, under its session, and no longer among the candidacy's.
  {
    auto db = db::Open(dsn_);
    ASSERT_TRUE(db.ok()) << db.status();
    auto repository = NewSqlRepository(**db);
    ASSERT_TRUE(repository
                    ->Transact([&](EvaluationTx& tx) -> absl::Status {
                      const std::string id = c.name().substr(std::string("candidacies/").size());
                      auto current = tx.ListScoreSheets(id);
                      if (!current.ok()) return current.status();
                      EXPECT_TRUE(current->empty());
                      auto past = tx.ListPastScoreSheets(id);
                      if (!past.ok()) return past.status();
                      EXPECT_EQ(past->size(), 1u);
                      if (past->size() == 1) {
                        EXPECT_EQ(absl::StrCat("sessions/", past->front().session_id), first.name());
                        EXPECT_EQ(past->front().member_id, "J2");
                        EXPECT_EQ(past->front().sheet.bloc_scores(0).percent(), 0);
                      }
                      return absl::OkStatus();
                    })
                    .ok());
  }
  // The first jury no longer sees the candidacy, nor records a passage on its old slot.
  pb::Candidacy hidden;
  EXPECT_EQ(Call("jury-member:J1", &pb::EvaluationService::Stub::GetCandidacy, get, &hidden).error_code(),
            grpc::StatusCode::NOT_FOUND);
  pb::RecordPassageRequest passage;
  passage.set_session(first.name());
  passage.set_candidacy(c.name());
  passage.set_attendance(pb::ATTENDANCE_PRESENT);
  pb::JurySession out;
  grpc::Status stale = Call("jury-member:J1", &pb::EvaluationService::Stub::RecordPassage, passage, &out);
  // NOT_FOUND, as GetCandidacy: the old jury learns neither the state nor the new session.
  EXPECT_EQ(stale.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(stale.error_message().find("sessions/"), std::string::npos) << stale.error_message();
  EXPECT_EQ(stale.error_message().find("SCHEDULED"), std::string::npos) << stale.error_message();
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get).state(),
            pb::CANDIDACY_STATE_JURY_SCHEDULED);

  // The second jury hears the candidate and scores it.
  PrepareAll(second);
  Start(second);
  passage.set_session(second.name());
  passage.set_presentation_seconds(540);
  passage.set_exchange_seconds(560);
  passage.set_question_count(8);
  MustCall("jury-member:K1", &pb::EvaluationService::Stub::RecordPassage, passage);
  int offset = -3;
  for (const char* member : {"K1", "K2", "K3"}) {
    pb::SubmitScoreSheetRequest req;
    req.set_candidacy(c.name());
    *req.mutable_sheet() = Sheet(kAllBlocs, kFirstJury, offset);
    offset += 3;
    MustCall(absl::StrCat("jury-member:", member), &pb::EvaluationService::Stub::SubmitScoreSheet, req);
  }
  // Private until this jury's deliberation opens (the earlier round is not this jury's).
  pb::GetScoreSheetRequest peek;
  peek.set_name(c.name() + "/scoreSheets/K1");
  pb::ScoreSheet sheet;
  EXPECT_EQ(Call("jury-member:K2", &pb::EvaluationService::Stub::GetScoreSheet, peek, &sheet).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  pb::OpenDeliberationRequest open;
  open.set_candidacy(c.name());
  const pb::Deliberation round2 = MustCall(kCertifier, &pb::EvaluationService::Stub::OpenDeliberation, open);
  EXPECT_EQ(round2.name(), c.name() + "/deliberations/2");
  EXPECT_EQ(round2.session(), second.name());
  ASSERT_EQ(round2.spreads_size(), 5);
  EXPECT_EQ(round2.spreads(0).min_percent(), 77) << "the earlier jury's sheet is not spread";
  // While the new jury deliberates, the absence is no longer the candidacy's result: the
  // statistics count no absence for it (its current round is open).
  pb::GetOutcomeStatisticsRequest open_stats_req;
  open_stats_req.set_filter("certification = \"CQP-TMSA\"");
  const pb::OutcomeStatistics while_open =
      MustCall("national", &pb::EvaluationService::Stub::GetOutcomeStatistics, open_stats_req);
  for (const auto& cert : while_open.certifications()) EXPECT_EQ(cert.candidate_absent(), 0);
  MustCall("jury-member:K1", &pb::EvaluationService::Stub::RecordDecision,
           Decision(round2.name(), kFirstJury, pb::PROPOSAL_KIND_PARTIAL));
  pb::Deliberation sealed;
  for (const char* member : {"K1", "K2", "K3"}) {
    pb::SignDeliberationRequest sign;
    sign.set_name(round2.name());
    sealed = MustCall(absl::StrCat("jury-member:", member), &pb::EvaluationService::Stub::SignDeliberation, sign);
  }
  ASSERT_EQ(sealed.state(), pb::DELIBERATION_STATE_SEALED);
  EXPECT_EQ(sealed.proposed_blocs_size(), 3);
  // The absence is history: not the current result, not revocable.
  pb::RevokeDeliberationRequest revoke;
  revoke.set_name(absence.name());
  revoke.set_reason("erreur de saisie");
  pb::Deliberation revoked;
  grpc::Status old = Call(kCertifier, &pb::EvaluationService::Stub::RevokeDeliberation, revoke, &revoked);
  EXPECT_EQ(old.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(PreconditionTypes(old).count("NOT_CURRENT_RESULT")) << old.error_message();

  // The statistics count the current result only: one partial, no absence.
  pb::GetOutcomeStatisticsRequest stats_req;
  stats_req.set_filter("certification = \"CQP-TMSA\"");
  const pb::OutcomeStatistics stats =
      MustCall("national", &pb::EvaluationService::Stub::GetOutcomeStatistics, stats_req);
  ASSERT_EQ(stats.certifications_size(), 1);
  EXPECT_EQ(stats.certifications(0).decided(), 3);  // with the refusal and the partial grant above
  EXPECT_EQ(stats.certifications(0).partial(), 2);
  EXPECT_EQ(stats.certifications(0).refusal(), 1);
  EXPECT_EQ(stats.certifications(0).candidate_absent(), 0);

  pb::IssueCertificateRequest issue;
  issue.set_name(c.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::IssueCertificate, issue).state(),
            pb::CANDIDACY_STATE_CERTIFICATE_ISSUED);
  pb::ListAcquiredBlocsRequest ledger;
  ledger.set_parent("candidates/cand-called-again");
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::ListAcquiredBlocs, ledger).blocs_size(), 3);
}

// A result revoked because its jury was irregular ("membre du jury lié au candidat") is not
// deliberated again by that jury: with new_jury the candidacy goes back to DOSSIER_FILED (no new
// round, its blocs out of the ledger), leaves the jury, and is scheduled before another session,
// where its earlier sheets are set aside and the new jury's result is the next round.
TEST_P(EvaluationServiceTest, AResultRevokedForANewJuryIsDeliberatedByAnotherSession) {
  pb::Candidacy c = ToDossierFiled(NewCandidacy("cand-new-jury"));
  const pb::Deliberation first = SealedResult(c, kAllBlocs, kFirstJury, pb::PROPOSAL_KIND_PARTIAL);
  pb::GetCandidacyRequest get;
  get.set_name(c.name());
  const std::string first_session = MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get).session();
  pb::ListAcquiredBlocsRequest ledger;
  ledger.set_parent("candidates/cand-new-jury");
  ASSERT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::ListAcquiredBlocs, ledger).blocs_size(), 3);
  // A sealed result goes back to a jury only through a revocation: filing the dossier again or
  // scheduling it before another session is refused, and the ledger keeps its blocs.
  pb::FileDossierRequest refile;
  refile.set_name(c.name());
  pb::Candidacy unchanged;
  grpc::Status refiled = Call(kCertifier, &pb::EvaluationService::Stub::FileDossier, refile, &unchanged);
  EXPECT_TRUE(PreconditionTypes(refiled).count("INVALID_TRANSITION")) << refiled.error_message();
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get).state(),
            pb::CANDIDACY_STATE_DELIBERATED);
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::ListAcquiredBlocs, ledger).blocs_size(), 3);

  pb::RevokeDeliberationRequest revoke;
  revoke.set_name(first.name());
  revoke.set_reason("membre du jury lié au candidat");
  revoke.set_new_jury(true);
  const pb::Deliberation revoked = MustCall(kCertifier, &pb::EvaluationService::Stub::RevokeDeliberation, revoke);
  EXPECT_EQ(revoked.name(), first.name());
  EXPECT_EQ(revoked.state(), pb::DELIBERATION_STATE_REVOKED);
  EXPECT_EQ(revoked.revocation_reason(), "membre du jury lié au candidat");
  EXPECT_EQ(revoked.session(), first_session);
  pb::Candidacy back = MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get);
  EXPECT_EQ(back.state(), pb::CANDIDACY_STATE_DOSSIER_FILED);
  EXPECT_TRUE(back.session().empty());
  EXPECT_EQ(back.history(back.history_size() - 1).from(), pb::CANDIDACY_STATE_DELIBERATED);
  EXPECT_NE(back.history(back.history_size() - 1).reason().find("membre du jury lié au candidat"), std::string::npos);
  pb::GetDeliberationRequest current;
  current.set_name(c.name() + "/deliberations/-");
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetDeliberation, current).name(), first.name())
      << "no new round";
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::ListAcquiredBlocs, ledger).blocs_size(), 0);
  // The irregular jury no longer sees the candidacy, nor opens a round of it.
  pb::Candidacy hidden;
  EXPECT_EQ(Call("jury-member:J1", &pb::EvaluationService::Stub::GetCandidacy, get, &hidden).error_code(),
            grpc::StatusCode::NOT_FOUND);
  pb::OpenDeliberationRequest open;
  open.set_candidacy(c.name());
  pb::Deliberation none;
  grpc::Status reopen = Call(kCertifier, &pb::EvaluationService::Stub::OpenDeliberation, open, &none);
  EXPECT_EQ(reopen.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(PreconditionTypes(reopen).count("INVALID_STATE")) << reopen.error_message();

  // Another session: the first jury's three sheets are set aside at scheduling.
  pb::JurySession second = NewSession(SecondJury(), absl::CivilDay(2026, 10, 2));
  Schedule(second, c);
  const pb::Candidacy scheduled = MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get);
  EXPECT_EQ(scheduled.state(), pb::CANDIDACY_STATE_JURY_SCHEDULED);
  const std::string reason = scheduled.history(scheduled.history_size() - 1).reason();
  EXPECT_NE(reason.find("3 score sheet(s) of " + first_session + " set aside"), std::string::npos) << reason;
  {
    auto db = db::Open(dsn_);
    ASSERT_TRUE(db.ok()) << db.status();
    auto repository = NewSqlRepository(**db);
    ASSERT_TRUE(repository
                    ->Transact([&](EvaluationTx& tx) -> absl::Status {
                      const std::string id = c.name().substr(std::string("candidacies/").size());
                      auto past = tx.ListPastScoreSheets(id);
                      if (!past.ok()) return past.status();
                      EXPECT_EQ(past->size(), 3u);
                      for (const PastScoreSheet& sheet : *past) {
                        EXPECT_EQ(absl::StrCat("sessions/", sheet.session_id), first_session);
                      }
                      auto now = tx.ListScoreSheets(id);
                      if (!now.ok()) return now.status();
                      EXPECT_TRUE(now->empty());
                      return absl::OkStatus();
                    })
                    .ok());
  }

  // The new jury does not read the irregular jury's round (its spreads, comments, signers), nor
  // print its grid: it is to judge afresh.
  pb::GetDeliberationRequest old_round;
  old_round.set_name(first.name());
  pb::Deliberation not_theirs;
  EXPECT_EQ(Call("jury-member:K1", &pb::EvaluationService::Stub::GetDeliberation, old_round, &not_theirs).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Call("jury-member:K1", &pb::EvaluationService::Stub::GetDeliberation, current, &not_theirs).error_code(),
            grpc::StatusCode::NOT_FOUND);
  pb::RenderSynthesisGridRequest old_grid;
  old_grid.set_name(first.name());
  pb::Document no_grid;
  EXPECT_EQ(Call("jury-member:K1", &pb::EvaluationService::Stub::RenderSynthesisGrid, old_grid, &no_grid).error_code(),
            grpc::StatusCode::NOT_FOUND);
  pb::GetCandidacyProgressRequest progress;
  progress.set_name(c.name());
  EXPECT_FALSE(MustCall("jury-member:K1", &pb::EvaluationService::Stub::GetCandidacyProgress, progress)
                   .has_current_deliberation());
  EXPECT_TRUE(
      MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacyProgress, progress).has_current_deliberation());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetDeliberation, old_round).name(), first.name());

  // The new jury hears, scores and decides: round 2, sealed and issued.
  PrepareAll(second);
  Start(second);
  pb::RecordPassageRequest passage;
  passage.set_session(second.name());
  passage.set_candidacy(c.name());
  passage.set_attendance(pb::ATTENDANCE_PRESENT);
  passage.set_presentation_seconds(500);
  passage.set_exchange_seconds(580);
  passage.set_question_count(7);
  MustCall("jury-member:K1", &pb::EvaluationService::Stub::RecordPassage, passage);
  ScoreAll(c, kAllBlocs, kAllAcquired, {"K1", "K2", "K3"});
  const pb::Deliberation round2 = MustCall(kCertifier, &pb::EvaluationService::Stub::OpenDeliberation, open);
  EXPECT_EQ(round2.name(), c.name() + "/deliberations/2");
  EXPECT_EQ(round2.session(), second.name());
  MustCall("jury-member:K1", &pb::EvaluationService::Stub::RecordDecision,
           Decision(round2.name(), kAllAcquired, pb::PROPOSAL_KIND_TOTAL));
  EXPECT_EQ(SignAll(round2.name(), {"K1", "K2", "K3"}).state(), pb::DELIBERATION_STATE_SEALED);
  pb::IssueCertificateRequest issue;
  issue.set_name(c.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::IssueCertificate, issue).state(),
            pb::CANDIDACY_STATE_CERTIFICATE_ISSUED);
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::ListAcquiredBlocs, ledger).blocs_size(), 5);
}

// A candidacy that leaves a session (absent there and called before another, or its result
// revoked for a new jury) keeps its slot there for the session's record, marked moved: the
// certifier reads it whole, the session's members no longer read the candidacy's name (in the
// session nor in its report), whose numbers stay the same for both. The new session shows it.
TEST_P(EvaluationServiceTest, AnEarlierSessionKeepsTheSlotOfACandidacyThatMovedWithoutNamingItToItsJury) {
  pb::Candidacy absent = ToDossierFiled(NewCandidacy("cand-moved-absent"));
  pb::Candidacy revoked = ToDossierFiled(NewCandidacy("cand-moved-revoked"));
  pb::Candidacy stays = ToDossierFiled(NewCandidacy("cand-stays"));
  pb::JurySession first = NewSession(SeedJury());
  for (const pb::Candidacy* c : {&absent, &revoked, &stays}) {
    pb::ScheduleCandidacyRequest schedule;
    schedule.set_session(first.name());
    schedule.set_candidacy(c->name());
    MustCall(kCertifier, &pb::EvaluationService::Stub::ScheduleCandidacy, schedule);
  }
  PrepareAll(first);
  Start(first);
  const auto pass = [&](const pb::Candidacy& c, pb::Attendance attendance, int presentation) {
    pb::RecordPassageRequest passage;
    passage.set_session(first.name());
    passage.set_candidacy(c.name());
    passage.set_attendance(attendance);
    if (attendance == pb::ATTENDANCE_PRESENT) {
      passage.set_presentation_seconds(presentation);
      passage.set_exchange_seconds(560);
      passage.set_question_count(8);
    }
    MustCall("jury-member:J1", &pb::EvaluationService::Stub::RecordPassage, passage);
  };
  pass(absent, pb::ATTENDANCE_ABSENT, 0);
  pass(revoked, pb::ATTENDANCE_PRESENT, 700);  // over the 10 minutes: a finding of the report
  pass(stays, pb::ATTENDANCE_PRESENT, 540);
  Seal(absent, {}, pb::PROPOSAL_KIND_CANDIDATE_ABSENT);
  ScoreAll(revoked, kAllBlocs, kFirstJury);
  pb::RevokeDeliberationRequest revoke;
  revoke.set_name(Seal(revoked, kFirstJury, pb::PROPOSAL_KIND_PARTIAL).name());
  revoke.set_reason("membre du jury lié au candidat");
  revoke.set_new_jury(true);
  MustCall(kCertifier, &pb::EvaluationService::Stub::RevokeDeliberation, revoke);
  pb::JurySession second = NewSession(SecondJury(), absl::CivilDay(2026, 9, 18));
  pb::ScheduleCandidacyRequest again;
  again.set_session(second.name());
  again.set_candidacy(absent.name());
  MustCall(kCertifier, &pb::EvaluationService::Stub::ScheduleCandidacy, again);

  pb::GetJurySessionRequest get_first;
  get_first.set_name(first.name());
  const pb::JurySession certifiers = MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get_first);
  const pb::JurySession members = MustCall("jury-member:J2", &pb::EvaluationService::Stub::GetJurySession, get_first);
  ASSERT_EQ(certifiers.slots_size(), 3);
  ASSERT_EQ(members.slots_size(), 3);
  const pb::Candidacy* order[] = {&absent, &revoked, &stays};
  for (int i = 0; i < 3; ++i) {
    const bool moved = order[i] != &stays;
    EXPECT_EQ(certifiers.slots(i).candidacy(), order[i]->name());
    EXPECT_EQ(certifiers.slots(i).moved(), moved) << order[i]->name();
    EXPECT_EQ(members.slots(i).moved(), moved) << order[i]->name();
    EXPECT_EQ(members.slots(i).candidacy(), moved ? "" : order[i]->name());
    EXPECT_EQ(members.slots(i).attendance(), certifiers.slots(i).attendance());
    EXPECT_EQ(members.slots(i).presentation_seconds(), certifiers.slots(i).presentation_seconds());
  }
  for (const pb::Candidacy* c : {&absent, &revoked}) {
    EXPECT_EQ(members.DebugString().find(c->name()), std::string::npos) << c->name();
  }
  pb::ListJurySessionsRequest list;
  list.set_page_size(100);
  const pb::ListJurySessionsResponse listed = MustCall(kCertifier, &pb::EvaluationService::Stub::ListJurySessions, list);
  for (const pb::JurySession& session : listed.sessions()) {
    if (session.name() == first.name()) {
      EXPECT_EQ(session.DebugString(), certifiers.DebugString());
    }
  }

  // The report counts the same passages for both; only the certifier's names the one that moved.
  pb::GetSessionReportRequest report;
  report.set_session(first.name());
  const pb::SessionReport certifiers_report =
      MustCall(kCertifier, &pb::EvaluationService::Stub::GetSessionReport, report);
  const pb::SessionReport members_report =
      MustCall("jury-member:J2", &pb::EvaluationService::Stub::GetSessionReport, report);
  EXPECT_EQ(members_report.candidates_present(), 2);
  EXPECT_EQ(certifiers_report.candidates_present(), 2);
  ASSERT_EQ(certifiers_report.over_time_size(), 1);
  ASSERT_EQ(members_report.over_time_size(), 1);
  EXPECT_EQ(certifiers_report.over_time(0).candidacy(), revoked.name());
  EXPECT_EQ(members_report.over_time(0).candidacy(), "");
  EXPECT_EQ(members_report.over_time(0).value(), 700);
  EXPECT_EQ(members_report.DebugString().find(revoked.name()), std::string::npos);

  // The new session's jury sees the candidacy on its own slot.
  pb::GetJurySessionRequest get_second;
  get_second.set_name(second.name());
  const pb::JurySession new_jury = MustCall("jury-member:K1", &pb::EvaluationService::Stub::GetJurySession, get_second);
  ASSERT_EQ(new_jury.slots_size(), 1);
  EXPECT_EQ(new_jury.slots(0).candidacy(), absent.name());
  EXPECT_FALSE(new_jury.slots(0).moved());
}

// A revoked round is printed as history, never as a valid signed grid: "RÉVOQUÉ" and the reason
// of the revocation; its sealed successor prints without it.
TEST_P(EvaluationServiceTest, TheGridOfARevokedRoundSaysRevokedWithItsReason) {
  pb::Candidacy c = ToDossierFiled(NewCandidacy("cand-revoked-grid"));
  const pb::Deliberation first = SealedResult(c, kAllBlocs, kFirstJury, pb::PROPOSAL_KIND_PARTIAL);
  const auto grid_text = [&](const std::string& deliberation) {
    pb::RenderSynthesisGridRequest render;
    render.set_name(deliberation);
    pb::Document pdf = MustCall(kCertifier, &pb::EvaluationService::Stub::RenderSynthesisGrid, render);
    const std::string path = ::testing::TempDir() + "/grid-" + GetParam() + "-" +
                             deliberation.substr(deliberation.rfind('/') + 1) + ".pdf";
    std::ofstream(path, std::ios::binary) << pdf.content();
    std::string text;
    FILE* pipe = popen(("pdftotext " + path + " -").c_str(), "r");
    EXPECT_NE(pipe, nullptr);
    if (pipe == nullptr) return text;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) text.append(buf, n);
    EXPECT_EQ(pclose(pipe), 0) << "pdftotext failed";
    return absl::StrReplaceAll(text, {{"\n", " "}});
  };
  EXPECT_EQ(grid_text(first.name()).find("RÉVOQUÉ"), std::string::npos);

  pb::RevokeDeliberationRequest revoke;
  revoke.set_name(first.name());
  revoke.set_reason("erreur de report du pourcentage de BC3");
  const pb::Deliberation second = MustCall(kCertifier, &pb::EvaluationService::Stub::RevokeDeliberation, revoke);
  const std::string revoked = grid_text(first.name());
  EXPECT_NE(revoked.find("RÉVOQUÉ"), std::string::npos) << revoked;
  EXPECT_NE(revoked.find("erreur de report du pourcentage de BC3"), std::string::npos) << revoked;
  EXPECT_NE(revoked.find("Élodie Martin"), std::string::npos) << revoked;

  MustCall("jury-member:J1", &pb::EvaluationService::Stub::RecordDecision,
           Decision(second.name(), kFirstJury, pb::PROPOSAL_KIND_PARTIAL));
  SignAll(second.name());
  EXPECT_EQ(grid_text(second.name()).find("RÉVOQUÉ"), std::string::npos);
}

// A candidacy withdrawn while its deliberation is open gets no decision and no signature (the
// last one would have sealed it, moved it out of WITHDRAWN and filled the ledger); each refusal
// names the state and changes nothing.
TEST_P(EvaluationServiceTest, AWithdrawnCandidacyGetsNoDecisionNorSignature) {
  pb::Candidacy c = ToDossierFiled(NewCandidacy("cand-withdrawn-open"));
  Pass(NewSession(SeedJury()), c);
  ScoreAll(c, kAllBlocs, kFirstJury);
  pb::OpenDeliberationRequest open;
  open.set_candidacy(c.name());
  const pb::Deliberation d = MustCall(kCertifier, &pb::EvaluationService::Stub::OpenDeliberation, open);
  MustCall("jury-member:J1", &pb::EvaluationService::Stub::RecordDecision,
           Decision(d.name(), kFirstJury, pb::PROPOSAL_KIND_PARTIAL));
  pb::SignDeliberationRequest sign;
  sign.set_name(d.name());
  MustCall("jury-member:J1", &pb::EvaluationService::Stub::SignDeliberation, sign);

  pb::WithdrawCandidacyRequest withdraw;
  withdraw.set_name(c.name());
  withdraw.set_reason("le candidat renonce");
  MustCall(kCertifier, &pb::EvaluationService::Stub::WithdrawCandidacy, withdraw);
  pb::GetDeliberationRequest get_d;
  get_d.set_name(d.name());
  const pb::Deliberation before = MustCall(kCertifier, &pb::EvaluationService::Stub::GetDeliberation, get_d);

  pb::Deliberation out;
  for (const char* member : {"jury-member:J2", "jury-member:J3"}) {
    grpc::Status signed_ = Call(member, &pb::EvaluationService::Stub::SignDeliberation, sign, &out);
    EXPECT_EQ(signed_.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << member;
    EXPECT_TRUE(PreconditionTypes(signed_).count("INVALID_STATE")) << signed_.error_message();
    EXPECT_NE(signed_.error_message().find("WITHDRAWN"), std::string::npos) << signed_.error_message();
  }
  grpc::Status decided = Call("jury-member:J1", &pb::EvaluationService::Stub::RecordDecision,
                              Decision(d.name(), kFirstJury, pb::PROPOSAL_KIND_PARTIAL), &out);
  EXPECT_EQ(decided.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(PreconditionTypes(decided).count("INVALID_STATE")) << decided.error_message();
  EXPECT_NE(decided.error_message().find("WITHDRAWN"), std::string::npos) << decided.error_message();

  const pb::Deliberation after = MustCall(kCertifier, &pb::EvaluationService::Stub::GetDeliberation, get_d);
  EXPECT_EQ(after.etag(), before.etag());
  EXPECT_EQ(after.state(), pb::DELIBERATION_STATE_OPEN);
  EXPECT_EQ(after.signatures_size(), 1);
  pb::GetCandidacyRequest get;
  get.set_name(c.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get).state(),
            pb::CANDIDACY_STATE_WITHDRAWN);
  pb::ListAcquiredBlocsRequest ledger;
  ledger.set_parent("candidates/cand-withdrawn-open");
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::ListAcquiredBlocs, ledger).blocs_size(), 0);
}

// A member signs with the etag it read after the decision: the other members' signatures since
// do not make it stale (each writes the round); a decision recorded again since does.
TEST_P(EvaluationServiceTest, MembersSignWithTheEtagTheyReadUnlessTheDecisionChanged) {
  pb::Candidacy c = ToDossierFiled(NewCandidacy("cand-sign-etag"));
  Pass(NewSession(SeedJury()), c);
  ScoreAll(c, kAllBlocs, kFirstJury);
  pb::OpenDeliberationRequest open;
  open.set_candidacy(c.name());
  const pb::Deliberation opened = MustCall(kCertifier, &pb::EvaluationService::Stub::OpenDeliberation, open);
  const pb::Deliberation decided = MustCall("jury-member:J1", &pb::EvaluationService::Stub::RecordDecision,
                                            Decision(opened.name(), kFirstJury, pb::PROPOSAL_KIND_PARTIAL));
  pb::SignDeliberationRequest sign;
  sign.set_name(decided.name());
  sign.set_etag(decided.etag());  // what every member read
  pb::Deliberation d;
  for (const char* member : {"jury-member:J1", "jury-member:J2", "jury-member:J3"}) {
    d = MustCall(member, &pb::EvaluationService::Stub::SignDeliberation, sign);
  }
  EXPECT_EQ(d.state(), pb::DELIBERATION_STATE_SEALED);
  EXPECT_EQ(d.signatures_size(), 3);

  // The decision recorded again: an etag read before it is refused, before and after signatures.
  pb::Candidacy again = ToDossierFiled(NewCandidacy("cand-sign-etag-again"));
  Pass(NewSession(SeedJury()), again);
  ScoreAll(again, kAllBlocs, kFirstJury);
  open.set_candidacy(again.name());
  const pb::Deliberation round = MustCall(kCertifier, &pb::EvaluationService::Stub::OpenDeliberation, open);
  const pb::Deliberation first = MustCall("jury-member:J1", &pb::EvaluationService::Stub::RecordDecision,
                                          Decision(round.name(), kFirstJury, pb::PROPOSAL_KIND_PARTIAL));
  pb::RecordDecisionRequest reworded = Decision(round.name(), kFirstJury, pb::PROPOSAL_KIND_PARTIAL);
  reworded.set_comment("BC3 et BC5 à représenter");
  const pb::Deliberation second = MustCall("jury-member:J1", &pb::EvaluationService::Stub::RecordDecision, reworded);
  sign.set_name(round.name());
  sign.set_etag(first.etag());
  grpc::Status stale = Call("jury-member:J2", &pb::EvaluationService::Stub::SignDeliberation, sign, &d);
  EXPECT_EQ(stale.error_code(), grpc::StatusCode::ABORTED) << stale.error_message();
  sign.set_etag(second.etag());
  d = MustCall("jury-member:J1", &pb::EvaluationService::Stub::SignDeliberation, sign);
  EXPECT_EQ(d.signatures_size(), 1);
  sign.set_etag(first.etag());
  stale = Call("jury-member:J2", &pb::EvaluationService::Stub::SignDeliberation, sign, &d);
  EXPECT_EQ(stale.error_code(), grpc::StatusCode::ABORTED) << stale.error_message();
  sign.set_etag(second.etag());
  d = MustCall("jury-member:J2", &pb::EvaluationService::Stub::SignDeliberation, sign);
  EXPECT_EQ(d.signatures_size(), 2);
  EXPECT_EQ(d.comment(), "BC3 et BC5 à représenter");
}

// How many times `word` occurs in `text`.
int Occurrences(const std::string& text, const std::string& word) {
  int n = 0;
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + word.size())) ++n;
  return n;
}

// The grid of a candidate absent: the jury appreciated none of its blocs, which print "—" and
// "non évalué", not "0 %" and "Non acquis"; the blocs it held when the round opened print
// "acquis antérieurement", still after they lapsed and went back to a later jury. (Cells wrap:
// single words are counted.)
TEST_P(EvaluationServiceTest, AnAbsentCandidatesGridSaysNotEvaluatedAndKeepsTheBlocsHeldThen) {
  const ref::Version v = PublishSeedCopyWithBlocValidity(2);
  pb::Candidacy first = ToDossierFiled(NewCandidacy("cand-absent-grid", v.name()));
  ASSERT_EQ(SealedResult(first, kAllBlocs, kFirstJury, pb::PROPOSAL_KIND_PARTIAL).state(),
            pb::DELIBERATION_STATE_SEALED);
  pb::Candidacy c = ToDossierFiled(NewCandidacy("cand-absent-grid", v.name()));
  ASSERT_EQ(std::vector<std::string>(c.held_blocs().begin(), c.held_blocs().end()),
            (std::vector<std::string>{"BC1", "BC2", "BC4"}));
  pb::JurySession s = NewSession(SeedJury());
  Schedule(s, c);
  PrepareAll(s);
  Start(s);
  RecordAbsent(s, c);
  const pb::Deliberation absence = Seal(c, {}, pb::PROPOSAL_KIND_CANDIDATE_ABSENT);
  ASSERT_EQ(absence.state(), pb::DELIBERATION_STATE_SEALED);

  const auto expect_grid = [&](const std::string& when) {
    SCOPED_TRACE(when);
    const std::string text = GridText(absence.name());
    EXPECT_EQ(Occurrences(text, "évalué"), 2) << text;          // BC3, BC5
    EXPECT_EQ(Occurrences(text, "antérieurement"), 3) << text;  // BC1, BC2, BC4
    EXPECT_EQ(Occurrences(text, "%"), 0) << text;
    EXPECT_EQ(Occurrences(text, "Non acquis"), 0) << text;
    EXPECT_NE(text.find("Candidat absent"), std::string::npos) << text;
  };
  expect_grid("sealed");

  // Three months on, BC1, BC2 and BC4 have lapsed: called again, the candidacy has them evaluated.
  clock_.Advance(absl::Hours(24 * 92));
  const absl::CivilDay later = absl::ToCivilDay(clock_.Now(), absl::UTCTimeZone()) + 7;
  Schedule(NewSession(SecondJury(), later), c);
  pb::GetCandidacyRequest get;
  get.set_name(c.name());
  ASSERT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get).held_blocs_size(), 0);
  expect_grid("after the held blocs lapsed");
}

// A sealed result that grants blocs is not withdrawn (RESULT_DECIDED): its blocs are in the
// ledger, which only a revocation clears, and a WITHDRAWN candidacy takes none. Revoked first,
// it is withdrawn and a later candidacy holds none of its blocs. A refusal, an absence or an
// excuse granted nothing: withdrawn.
TEST_P(EvaluationServiceTest, AResultGrantingBlocsIsRevokedBeforeItsCandidacyIsWithdrawn) {
  pb::Candidacy c = ToDossierFiled(NewCandidacy("cand-withdraw-decided"));
  const pb::Deliberation partial = SealedResult(c, kAllBlocs, kFirstJury, pb::PROPOSAL_KIND_PARTIAL);
  pb::GetCandidacyRequest get;
  get.set_name(c.name());
  const pb::Candidacy deliberated = MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get);
  pb::WithdrawCandidacyRequest withdraw;
  withdraw.set_name(c.name());
  withdraw.set_reason("le candidat renonce");
  pb::Candidacy out;
  grpc::Status refused = Call(kCertifier, &pb::EvaluationService::Stub::WithdrawCandidacy, withdraw, &out);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << refused.error_message();
  EXPECT_EQ(PreconditionTypes(refused), std::set<std::string>{"RESULT_DECIDED"}) << refused.error_message();
  const pb::Candidacy unchanged = MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get);
  EXPECT_EQ(unchanged.state(), pb::CANDIDACY_STATE_DELIBERATED);
  EXPECT_EQ(unchanged.etag(), deliberated.etag());

  // Revoked, then withdrawn: its blocs are out of the ledger and a later candidacy evaluates them.
  pb::RevokeDeliberationRequest revoke;
  revoke.set_name(partial.name());
  revoke.set_reason("le candidat renonce à la certification");
  MustCall(kCertifier, &pb::EvaluationService::Stub::RevokeDeliberation, revoke);
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::WithdrawCandidacy, withdraw).state(),
            pb::CANDIDACY_STATE_WITHDRAWN);
  pb::ListAcquiredBlocsRequest ledger;
  ledger.set_parent("candidates/cand-withdraw-decided");
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::ListAcquiredBlocs, ledger).blocs_size(), 0);
  EXPECT_EQ(NewCandidacy("cand-withdraw-decided").blocs_to_evaluate_size(), 5);

  // A refusal grants nothing: withdrawn at once.
  const std::map<std::string, int> none_acquired = {{"BC1", 30}, {"BC2", 35}, {"BC3", 40}, {"BC4", 20}, {"BC5", 25}};
  pb::Candidacy refusal = ToDossierFiled(NewCandidacy("cand-withdraw-refused"));
  SealedResult(refusal, kAllBlocs, none_acquired, pb::PROPOSAL_KIND_REFUSAL);
  withdraw.set_name(refusal.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::WithdrawCandidacy, withdraw).state(),
            pb::CANDIDACY_STATE_WITHDRAWN);
}

// An RS fiche has no blocs: its sealed TOTAL put nothing in the ledger, so there is nothing to
// revoke first and the candidacy is withdrawn.
TEST_P(EvaluationServiceTest, AnRsTotalPutsNoBlocInTheLedgerAndItsCandidacyIsWithdrawn) {
  ASSERT_NO_FATAL_FAILURE(LoadRsFiche());
  pb::Candidacy c = ToDossierFiled(NewCandidacy("cand-rs-withdraw", "certifications/RS5001/versions/1"));
  const pb::Deliberation d = SealedResult(c, {}, {}, pb::PROPOSAL_KIND_TOTAL);
  ASSERT_EQ(d.state(), pb::DELIBERATION_STATE_SEALED);
  ASSERT_EQ(d.proposed_blocs_size(), 0);
  pb::ListAcquiredBlocsRequest ledger;
  ledger.set_parent("candidates/cand-rs-withdraw");
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::ListAcquiredBlocs, ledger).blocs_size(), 0);
  pb::WithdrawCandidacyRequest withdraw;
  withdraw.set_name(c.name());
  withdraw.set_reason("le candidat renonce");
  pb::Candidacy out;
  const grpc::Status withdrawn = Call(kCertifier, &pb::EvaluationService::Stub::WithdrawCandidacy, withdraw, &out);
  ASSERT_TRUE(withdrawn.ok()) << withdrawn.error_code() << ": " << withdrawn.error_message();
  EXPECT_EQ(out.state(), pb::CANDIDACY_STATE_WITHDRAWN);
}

// A withdrawal in flight while the jury decides or signs: the jury's write waits for the
// candidacy's lock, then reads WITHDRAWN and is refused. Read without the lock (READ COMMITTED on
// MariaDB), the candidacy still looked EVALUATED and the decision or signature, written to the
// deliberation alone, committed beside the withdrawal. SQLite runs one writer at a time: there the
// jury's write waits for the whole withdrawal anyway.
TEST_P(EvaluationServiceTest, AJurysWriteWaitsForAWithdrawalInFlightAndIsRefused) {
  pb::Candidacy signing = ToDossierFiled(NewCandidacy("cand-withdrawn-while-signing"));
  pb::Candidacy deciding = ToDossierFiled(NewCandidacy("cand-withdrawn-while-deciding"));
  pb::JurySession s = NewSession(SeedJury());
  Schedule(s, deciding);
  Pass(s, signing);  // schedules it too, and starts the session
  pb::RecordPassageRequest passage;
  passage.set_session(s.name());
  passage.set_candidacy(deciding.name());
  passage.set_attendance(pb::ATTENDANCE_PRESENT);
  passage.set_presentation_seconds(550);
  passage.set_exchange_seconds(560);
  passage.set_question_count(8);
  MustCall("jury-member:J1", &pb::EvaluationService::Stub::RecordPassage, passage);
  pb::Deliberation deliberations[2];
  for (int i = 0; i < 2; ++i) {
    const pb::Candidacy& c = i == 0 ? signing : deciding;
    ScoreAll(c, kAllBlocs, kFirstJury);
    pb::OpenDeliberationRequest open;
    open.set_candidacy(c.name());
    deliberations[i] = MustCall(kCertifier, &pb::EvaluationService::Stub::OpenDeliberation, open);
  }
  MustCall("jury-member:J1", &pb::EvaluationService::Stub::RecordDecision,
           Decision(deliberations[0].name(), kFirstJury, pb::PROPOSAL_KIND_PARTIAL));
  pb::SignDeliberationRequest sign;
  sign.set_name(deliberations[0].name());
  MustCall("jury-member:J1", &pb::EvaluationService::Stub::SignDeliberation, sign);

  auto db = db::Open(dsn_);
  ASSERT_TRUE(db.ok()) << db.status();
  auto repository = NewSqlRepository(**db);
  // WithdrawCandidacy's transaction, held open after its write.
  const auto withdraw = [&](const pb::Candidacy& c) {
    return [&](const std::function<void()>& hold) {
      return repository->Transact([&](EvaluationTx& tx) -> absl::Status {
        auto stored = tx.GetCandidacy(c.name().substr(std::string("candidacies/").size()));
        if (!stored.ok()) return stored.status();
        absl::Status s = Transition(stored->value, pb::CANDIDACY_STATE_WITHDRAWN, kCertifier, clock_.Now(),
                                    "le candidat renonce");
        if (!s.ok()) return s;
        if (s = tx.PutCandidacy(stored->value, stored->version, clock_.Now()); !s.ok()) return s;
        hold();
        return absl::OkStatus();
      });
    };
  };
  const std::function<grpc::Status()> jury_writes[2] = {
      [&] {
        pb::Deliberation out;
        sign.set_name(deliberations[0].name());
        return Call("jury-member:J2", &pb::EvaluationService::Stub::SignDeliberation, sign, &out);
      },
      [&] {
        pb::Deliberation out;
        return Call("jury-member:J1", &pb::EvaluationService::Stub::RecordDecision,
                    Decision(deliberations[1].name(), kFirstJury, pb::PROPOSAL_KIND_PARTIAL), &out);
      }};
  for (int i = 0; i < 2; ++i) {
    const pb::Candidacy& c = i == 0 ? signing : deciding;
    pb::GetDeliberationRequest get_d;
    get_d.set_name(deliberations[i].name());
    const pb::Deliberation before = MustCall(kCertifier, &pb::EvaluationService::Stub::GetDeliberation, get_d);
    grpc::Status jury;
    ::parcours::testing::LockRaceResult race = ::parcours::testing::RunLockRace(withdraw(c), [&] {
      jury = jury_writes[i]();
      return absl::OkStatus();
    });
    ASSERT_TRUE(race.first.ok()) << race.first;
    EXPECT_EQ(jury.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << c.name() << ": " << jury.error_message();
    EXPECT_TRUE(PreconditionTypes(jury).count("INVALID_STATE")) << jury.error_message();
    EXPECT_NE(jury.error_message().find("WITHDRAWN"), std::string::npos) << jury.error_message();
    const pb::Deliberation after = MustCall(kCertifier, &pb::EvaluationService::Stub::GetDeliberation, get_d);
    EXPECT_EQ(after.etag(), before.etag()) << c.name();
    EXPECT_EQ(after.signatures_size(), before.signatures_size());
    EXPECT_EQ(after.proposal(), before.proposal());
    pb::GetCandidacyRequest get;
    get.set_name(c.name());
    EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetCandidacy, get).state(),
              pb::CANDIDACY_STATE_WITHDRAWN);
  }
}

// A member of the jury a candidate was absent before submits its dossier marks while the
// candidacy is being called before another session: the sheet is checked against the candidacy's
// scope as read under its lock, so it is refused (NOT_FOUND, as the candidacy now is to that
// member) instead of joining the new jury's sheets. On MariaDB the scope was checked on a read
// taken before the lock, which still showed the earlier session.
TEST_P(EvaluationServiceTest, AnEarlierJurysSheetIsRefusedWhenTheCandidacyMovesMeanwhile) {
  pb::Candidacy c = ToDossierFiled(NewCandidacy("cand-moved-while-scored"));
  pb::JurySession first = NewSession(SeedJury());
  Schedule(first, c);
  PrepareAll(first);
  Start(first);
  RecordAbsent(first, c);
  Seal(c, {}, pb::PROPOSAL_KIND_CANDIDATE_ABSENT);
  const pb::JurySession second = NewSession(SecondJury(), absl::CivilDay(2026, 9, 18));

  auto db = db::Open(dsn_);
  ASSERT_TRUE(db.ok()) << db.status();
  auto repository = NewSqlRepository(**db);
  const std::string id = c.name().substr(std::string("candidacies/").size());
  grpc::Status submitted;
  ::parcours::testing::LockRaceResult race = ::parcours::testing::RunLockRace(
      // ScheduleCandidacy's write to the candidacy, its transaction held open after it.
      [&](const std::function<void()>& hold) {
        return repository->Transact([&](EvaluationTx& tx) -> absl::Status {
          auto stored = tx.GetCandidacy(id);
          if (!stored.ok()) return stored.status();
          absl::Status s = Transition(stored->value, pb::CANDIDACY_STATE_JURY_SCHEDULED, kCertifier, clock_.Now(),
                                      second.name());
          if (!s.ok()) return s;
          stored->value.set_session(second.name());
          if (s = tx.PutCandidacy(stored->value, stored->version, clock_.Now()); !s.ok()) return s;
          hold();
          return absl::OkStatus();
        });
      },
      [&] {
        // The marks on reading the dossier, which a sheet may hold before its session starts.
        pb::SubmitScoreSheetRequest marks;
        marks.set_candidacy(c.name());
        *marks.mutable_sheet() = Sheet(kAllBlocs, kFirstJury, 0);
        marks.mutable_sheet()->clear_bloc_scores();
        pb::ScoreSheet out;
        submitted = Call("jury-member:J2", &pb::EvaluationService::Stub::SubmitScoreSheet, marks, &out);
        return absl::OkStatus();
      });
  ASSERT_TRUE(race.first.ok()) << race.first;
  EXPECT_EQ(submitted.error_code(), grpc::StatusCode::NOT_FOUND) << submitted.error_message();
  ASSERT_TRUE(repository
                  ->Transact([&](EvaluationTx& tx) -> absl::Status {
                    auto sheets = tx.ListScoreSheets(id);
                    if (!sheets.ok()) return sheets.status();
                    EXPECT_TRUE(sheets->empty()) << sheets->front().first << "'s sheet is among the candidacy's";
                    return absl::OkStatus();
                  })
                  .ok());
}

// A declared conflict of interest is remembered: the member cannot take it back a minute later,
// the session does not start while it sits, the audit row keeps the declaration, and only the
// certifier clears it, by replacing the member (changing the member's other fields does not).
TEST_P(EvaluationServiceTest, ADeclaredConflictOfInterestStaysUntilTheCertifierReplacesTheMember) {
  pb::Candidacy c = ToDossierFiled(NewCandidacy("cand-conflict"));
  pb::JurySession s = NewSession(SeedJury());
  Schedule(s, c);
  PrepareAll(s);
  pb::ConfirmPreparationRequest linked;
  linked.set_session(s.name());
  linked.set_referential_read(true);
  linked.set_no_conflict_of_interest(false);
  pb::JurySession out;
  grpc::Status declared = Call("jury-member:J3", &pb::EvaluationService::Stub::ConfirmPreparation, linked, &out);
  EXPECT_EQ(PreconditionTypes(declared), std::set<std::string>{"CONFLICT_OF_INTEREST"});
  pb::GetJurySessionRequest get_s;
  get_s.set_name(s.name());
  const pb::JurySession flagged = MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get_s);
  EXPECT_TRUE(flagged.members(2).conflict_of_interest());
  EXPECT_FALSE(flagged.members(2).prepared());
  {
    auto db = db::Open(dsn_);
    ASSERT_TRUE(db.ok()) << db.status();
    auto audit = NewSqlRepository(**db)->ListAudit(s.name());
    ASSERT_TRUE(audit.ok()) << audit.status();
    ASSERT_FALSE(audit->empty());
    EXPECT_EQ(audit->back().action, "ConfirmPreparation");
    EXPECT_EQ(audit->back().actor, "jury-member:J3");
    EXPECT_EQ(audit->back().detail, "no_conflict_of_interest=false referential_read=true");
  }

  // A minute later J3 says "no conflict": refused, nothing written, and the session cannot start.
  clock_.Advance(absl::Minutes(1));
  pb::ConfirmPreparationRequest clean = linked;
  clean.set_no_conflict_of_interest(true);
  grpc::Status again = Call("jury-member:J3", &pb::EvaluationService::Stub::ConfirmPreparation, clean, &out);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(PreconditionTypes(again), std::set<std::string>{"CONFLICT_OF_INTEREST"});
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get_s).etag(), flagged.etag());
  pb::StartJurySessionRequest go;
  go.set_name(s.name());
  grpc::Status start = Call(kCertifier, &pb::EvaluationService::Stub::StartJurySession, go, &out);
  EXPECT_EQ(start.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(PreconditionTypes(start).count("CONFLICT_OF_INTEREST")) << start.error_message();

  // The certifier edits J3's entry (its function) and keeps it: the flag stays, and an update
  // cannot set or clear it either.
  pb::UpdateJurySessionRequest update;
  *update.mutable_session() = flagged;
  update.mutable_session()->mutable_members(2)->set_function("Formatrice");
  update.mutable_session()->mutable_members(2)->set_conflict_of_interest(false);
  update.mutable_update_mask()->add_paths("members");
  const pb::JurySession edited = MustCall(kCertifier, &pb::EvaluationService::Stub::UpdateJurySession, update);
  EXPECT_TRUE(edited.members(2).conflict_of_interest());
  EXPECT_FALSE(edited.members(0).conflict_of_interest());
  EXPECT_EQ(Call("jury-member:J3", &pb::EvaluationService::Stub::ConfirmPreparation, clean, &out).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  // Replaced by another qualified person, the jury starts.
  *update.mutable_session() = edited;
  *update.mutable_session()->mutable_members(2) =
      Member("J5", "Hélène Roux", pb::COLLEGE_QUALIFIED_PERSON, false, pb::GENDER_FEMALE);
  const pb::JurySession replaced = MustCall(kCertifier, &pb::EvaluationService::Stub::UpdateJurySession, update);
  for (const pb::JuryMember& m : replaced.members()) EXPECT_FALSE(m.conflict_of_interest()) << m.member_id();
  clean.set_session(s.name());
  MustCall("jury-member:J5", &pb::EvaluationService::Stub::ConfirmPreparation, clean);
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::StartJurySession, go).state(),
            pb::SESSION_STATE_IN_PROGRESS);
}

// A declared conflict of interest sticks to the session, not to the member's entry: once the
// certifier has replaced the member, adding it back (in the next update, or beside its
// replacement) is refused, names the member and changes nothing.
TEST_P(EvaluationServiceTest, AMemberThatDeclaredAConflictIsNeverPutBackOnTheSession) {
  pb::Candidacy c = ToDossierFiled(NewCandidacy("cand-conflict-back"));
  pb::JurySession s = NewSession(SeedJury());
  Schedule(s, c);
  PrepareAll(s);
  pb::ConfirmPreparationRequest linked;
  linked.set_session(s.name());
  linked.set_referential_read(true);
  linked.set_no_conflict_of_interest(false);
  pb::JurySession out;
  EXPECT_EQ(Call("jury-member:J3", &pb::EvaluationService::Stub::ConfirmPreparation, linked, &out).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  pb::GetJurySessionRequest get_s;
  get_s.set_name(s.name());
  const pb::JurySession flagged = MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get_s);
  EXPECT_EQ(std::vector<std::string>(flagged.conflict_of_interest_member_ids().begin(),
                                     flagged.conflict_of_interest_member_ids().end()),
            std::vector<std::string>{"J3"});

  // Replaced: J3's entry and its flag are gone, the session still knows.
  pb::UpdateJurySessionRequest update;
  *update.mutable_session() = flagged;
  *update.mutable_session()->mutable_members(2) =
      Member("J5", "Hélène Roux", pb::COLLEGE_QUALIFIED_PERSON, false, pb::GENDER_FEMALE);
  update.mutable_update_mask()->add_paths("members");
  const pb::JurySession replaced = MustCall(kCertifier, &pb::EvaluationService::Stub::UpdateJurySession, update);
  for (const pb::JuryMember& m : replaced.members()) EXPECT_FALSE(m.conflict_of_interest()) << m.member_id();
  EXPECT_EQ(std::vector<std::string>(replaced.conflict_of_interest_member_ids().begin(),
                                     replaced.conflict_of_interest_member_ids().end()),
            std::vector<std::string>{"J3"});

  // J3 back in J5's place, or beside J5: refused, naming J3, nothing written.
  std::vector<std::vector<pb::JuryMember>> attempts = {SeedJury(), SeedJury()};
  attempts[1].push_back(Member("J5", "Hélène Roux", pb::COLLEGE_QUALIFIED_PERSON, false, pb::GENDER_FEMALE));
  for (const std::vector<pb::JuryMember>& members : attempts) {
    pb::UpdateJurySessionRequest back;
    *back.mutable_session() = replaced;
    back.mutable_session()->clear_members();
    for (const pb::JuryMember& m : members) *back.mutable_session()->add_members() = m;
    back.mutable_update_mask()->add_paths("members");
    grpc::Status refused = Call(kCertifier, &pb::EvaluationService::Stub::UpdateJurySession, back, &out);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << members.size() << " members";
    EXPECT_EQ(PreconditionTypes(refused), std::set<std::string>{"CONFLICT_OF_INTEREST"}) << refused.error_message();
    EXPECT_NE(refused.error_message().find("J3"), std::string::npos) << refused.error_message();
  }
  const pb::JurySession unchanged = MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get_s);
  EXPECT_EQ(unchanged.etag(), replaced.etag());
  EXPECT_EQ(unchanged.members(2).member_id(), "J5");

  // The list is output only: a session created with it starts without it.
  pb::CreateJurySessionRequest create;
  *create.mutable_session() = flagged;
  create.mutable_session()->clear_name();
  for (pb::JuryMember& m : *create.mutable_session()->mutable_members()) m.clear_conflict_of_interest();
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::CreateJurySession, create)
                .conflict_of_interest_member_ids_size(),
            0);

  // The jury with J5 starts.
  pb::ConfirmPreparationRequest clean = linked;
  clean.set_no_conflict_of_interest(true);
  MustCall("jury-member:J5", &pb::EvaluationService::Stub::ConfirmPreparation, clean);
  pb::StartJurySessionRequest go;
  go.set_name(s.name());
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::StartJurySession, go).state(),
            pb::SESSION_STATE_IN_PROGRESS);
}

// A session stored by the previous binary has the member's flag but not the session's list: the
// update that replaces the member records it, so the member is not put back either.
TEST_P(EvaluationServiceTest, AConflictFlaggedWithoutTheSessionsListIsRecordedWhenTheMemberIsReplaced) {
  pb::JurySession s = NewSession(SeedJury());
  {
    auto db = db::Open(dsn_);
    ASSERT_TRUE(db.ok()) << db.status();
    auto repository = NewSqlRepository(**db);
    ASSERT_TRUE(repository
                    ->Transact([&](EvaluationTx& tx) -> absl::Status {
                      auto stored = tx.GetSession(s.name().substr(std::string("sessions/").size()));
                      if (!stored.ok()) return stored.status();
                      stored->value.mutable_members(2)->set_conflict_of_interest(true);
                      stored->value.clear_conflict_of_interest_member_ids();
                      return tx.PutSession(stored->value, stored->version, clock_.Now());
                    })
                    .ok());
  }
  pb::GetJurySessionRequest get_s;
  get_s.set_name(s.name());
  pb::UpdateJurySessionRequest update;
  *update.mutable_session() = MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get_s);
  *update.mutable_session()->mutable_members(2) =
      Member("J5", "Hélène Roux", pb::COLLEGE_QUALIFIED_PERSON, false, pb::GENDER_FEMALE);
  update.mutable_update_mask()->add_paths("members");
  const pb::JurySession replaced = MustCall(kCertifier, &pb::EvaluationService::Stub::UpdateJurySession, update);
  EXPECT_EQ(std::vector<std::string>(replaced.conflict_of_interest_member_ids().begin(),
                                     replaced.conflict_of_interest_member_ids().end()),
            std::vector<std::string>{"J3"});
  *update.mutable_session() = replaced;
  *update.mutable_session()->mutable_members(2) = SeedJury()[2];
  pb::JurySession out;
  grpc::Status refused = Call(kCertifier, &pb::EvaluationService::Stub::UpdateJurySession, update, &out);
  EXPECT_EQ(PreconditionTypes(refused), std::set<std::string>{"CONFLICT_OF_INTEREST"}) << refused.error_message();
  EXPECT_EQ(MustCall(kCertifier, &pb::EvaluationService::Stub::GetJurySession, get_s).etag(), replaced.etag());
}

INSTANTIATE_TEST_SUITE_P(Backends, EvaluationServiceTest, ::testing::Values("sqlite", "mysql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace parcours::evaluation
