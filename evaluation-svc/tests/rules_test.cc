// The VAE jury rules alone (evaluation-svc/src/rules.h), against a référentiel version built here
// that mirrors the seed CQP "Technicien de maintenance du secteur alimentaire": 5 blocs, 19
// compétences (4, 3, 5, 3, 4), 4-level dossier and interview scales, threshold 70 %, partial
// validation allowed, a paritaire jury of at least 2 members with a president.
#include "evaluation-svc/src/rules.h"

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "evaluation-svc/src/repository.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"

namespace parcours::evaluation {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr char kCert[] = "CQP-TMSA";
constexpr char kVersionName[] = "certifications/CQP-TMSA/versions/1";

// --- Helpers ------------------------------------------------------------------------------------

std::vector<std::string> Fields(const Violations& v) {
  std::vector<std::string> out;
  for (const FieldViolation& f : v.list()) out.push_back(f.field);
  return out;
}

// Field paths of an INVALID_ARGUMENT's BadRequest.
std::vector<std::string> Fields(const absl::Status& status) {
  std::vector<std::string> out;
  absl::optional<absl::Cord> payload = status.GetPayload("type.googleapis.com/google.rpc.BadRequest");
  if (!payload.has_value()) return out;
  google::rpc::BadRequest bad;
  if (!bad.ParseFromString(std::string(*payload))) return out;
  for (const auto& fv : bad.field_violations()) out.push_back(fv.field());
  return out;
}

google::rpc::PreconditionFailure Failure(const absl::Status& status) {
  google::rpc::PreconditionFailure failure;
  absl::optional<absl::Cord> payload = status.GetPayload("type.googleapis.com/google.rpc.PreconditionFailure");
  if (payload.has_value()) failure.ParseFromString(std::string(*payload));
  return failure;
}

// Types of a FAILED_PRECONDITION's violations, in order.
std::vector<std::string> Types(const absl::Status& status) {
  std::vector<std::string> out;
  google::rpc::PreconditionFailure failure = Failure(status);
  for (const auto& v : failure.violations()) out.push_back(v.type());
  return out;
}

std::vector<std::string> Types(const std::vector<PreconditionViolation>& violations) {
  std::vector<std::string> out;
  for (const PreconditionViolation& v : violations) out.push_back(v.type);
  return out;
}

const int kCompetencesPerBloc[] = {4, 3, 5, 3, 4};

// The seed CQP as a published version.
ref::Version SeedVersion() {
  ref::Version v;
  v.set_name(kVersionName);
  v.set_state(ref::VERSION_STATE_PUBLISHED);
  const char* const titles[] = {
      "Organiser des interventions de maintenance sur des équipements agroalimentaires",
      "Réaliser des diagnostics de maintenance sur des équipements pluri-technologiques",
      "Réaliser des actions de maintenance sur des équipements agroalimentaires",
      "Déployer des solutions de maintenance conditionnelle et prévisionnelle",
      "Mener des projets d'amélioration continue de maintenance",
  };
  for (int b = 0; b < 5; ++b) {
    ref::Bloc* bloc = v.add_blocs();
    bloc->set_code("BC" + std::to_string(b + 1));
    bloc->set_title(titles[b]);
    for (int c = 0; c < kCompetencesPerBloc[b]; ++c) {
      ref::Competence* comp = bloc->add_competences();
      comp->set_code("C" + std::to_string(b + 1) + "." + std::to_string(c + 1));
      comp->set_text("compétence");
    }
  }
  for (ref::ScaleKind kind : {ref::SCALE_KIND_DOSSIER, ref::SCALE_KIND_INTERVIEW}) {
    ref::AppreciationScale* scale = v.add_scales();
    scale->set_kind(kind);
    for (int r = 1; r <= 4; ++r) {
      ref::ScaleLevel* level = scale->add_levels();
      level->set_rank(r);
      level->set_description("niveau " + std::to_string(r));
    }
  }
  ref::ValidationRules* rules = v.mutable_validation_rules();
  rules->set_bloc_threshold_percent(70);
  rules->set_partial_validation_allowed(true);
  rules->set_acquired_bloc_validity_months(0);
  ref::JuryCompositionRule* jury = rules->mutable_jury();
  jury->set_min_members(2);
  jury->set_min_qualified_members(1);
  jury->add_required_colleges(ref::COLLEGE_EMPLOYER);
  jury->add_required_colleges(ref::COLLEGE_EMPLOYEE);
  jury->set_president_required(true);
  jury->set_gender_balance_required(true);
  return v;
}

TEST(RulesSeedVersionTest, MirrorsTheSeedCqp) {
  ref::Version v = SeedVersion();
  ASSERT_EQ(v.blocs_size(), 5);
  int competences = 0;
  for (const auto& b : v.blocs()) competences += b.competences_size();
  EXPECT_EQ(competences, 19);
  EXPECT_EQ(v.blocs(2).competences(4).code(), "C3.5");
}

// --- State machine ------------------------------------------------------------------------------

using S = pb::CandidacyState;

const S kAllStates[] = {
    pb::CANDIDACY_STATE_UNSPECIFIED,        pb::CANDIDACY_STATE_INFORMATION,
    pb::CANDIDACY_STATE_ADMISSIBILITY_REQUESTED, pb::CANDIDACY_STATE_ADMISSIBLE,
    pb::CANDIDACY_STATE_NOT_ADMISSIBLE,     pb::CANDIDACY_STATE_DOSSIER_FILED,
    pb::CANDIDACY_STATE_JURY_SCHEDULED,     pb::CANDIDACY_STATE_EVALUATED,
    pb::CANDIDACY_STATE_DELIBERATED,        pb::CANDIDACY_STATE_CERTIFICATE_ISSUED,
    pb::CANDIDACY_STATE_WITHDRAWN,
};

// Every allowed transition, written out from the seed's six steps.
const std::set<std::pair<S, S>>& AllowedTransitions() {
  static const auto* allowed = new std::set<std::pair<S, S>>{
      {pb::CANDIDACY_STATE_INFORMATION, pb::CANDIDACY_STATE_ADMISSIBILITY_REQUESTED},
      {pb::CANDIDACY_STATE_ADMISSIBILITY_REQUESTED, pb::CANDIDACY_STATE_ADMISSIBLE},
      {pb::CANDIDACY_STATE_ADMISSIBILITY_REQUESTED, pb::CANDIDACY_STATE_NOT_ADMISSIBLE},
      {pb::CANDIDACY_STATE_ADMISSIBLE, pb::CANDIDACY_STATE_DOSSIER_FILED},
      {pb::CANDIDACY_STATE_DOSSIER_FILED, pb::CANDIDACY_STATE_JURY_SCHEDULED},
      {pb::CANDIDACY_STATE_DOSSIER_FILED, pb::CANDIDACY_STATE_CERTIFICATE_ISSUED},
      {pb::CANDIDACY_STATE_JURY_SCHEDULED, pb::CANDIDACY_STATE_EVALUATED},
      {pb::CANDIDACY_STATE_EVALUATED, pb::CANDIDACY_STATE_DELIBERATED},
      {pb::CANDIDACY_STATE_DELIBERATED, pb::CANDIDACY_STATE_CERTIFICATE_ISSUED},
      {pb::CANDIDACY_STATE_DELIBERATED, pb::CANDIDACY_STATE_EVALUATED},
      {pb::CANDIDACY_STATE_DELIBERATED, pb::CANDIDACY_STATE_JURY_SCHEDULED},
      {pb::CANDIDACY_STATE_DELIBERATED, pb::CANDIDACY_STATE_DOSSIER_FILED},
      {pb::CANDIDACY_STATE_INFORMATION, pb::CANDIDACY_STATE_WITHDRAWN},
      {pb::CANDIDACY_STATE_ADMISSIBILITY_REQUESTED, pb::CANDIDACY_STATE_WITHDRAWN},
      {pb::CANDIDACY_STATE_ADMISSIBLE, pb::CANDIDACY_STATE_WITHDRAWN},
      {pb::CANDIDACY_STATE_DOSSIER_FILED, pb::CANDIDACY_STATE_WITHDRAWN},
      {pb::CANDIDACY_STATE_JURY_SCHEDULED, pb::CANDIDACY_STATE_WITHDRAWN},
      {pb::CANDIDACY_STATE_EVALUATED, pb::CANDIDACY_STATE_WITHDRAWN},
      {pb::CANDIDACY_STATE_DELIBERATED, pb::CANDIDACY_STATE_WITHDRAWN},
  };
  return *allowed;
}

std::string Short(S s) { return pb::CandidacyState_Name(s).substr(std::string("CANDIDACY_STATE_").size()); }

TEST(RulesTransitionTest, EveryStatePairIsAllowedOrRefusedAsTheTableSays) {
  int allowed_count = 0;
  for (S from : kAllStates) {
    for (S to : kAllStates) {
      bool expected = AllowedTransitions().count({from, to}) > 0;
      EXPECT_EQ(TransitionAllowed(from, to), expected) << Short(from) << " -> " << Short(to);
      allowed_count += TransitionAllowed(from, to) ? 1 : 0;
    }
  }
  EXPECT_EQ(allowed_count, 19);
}

TEST(RulesTransitionTest, TransitionMovesAndRecordsOrRefusesForEveryPair) {
  const absl::Time now = absl::FromUnixSeconds(1781258400);  // 2026-06-12 10:00 UTC
  for (S from : kAllStates) {
    for (S to : kAllStates) {
      pb::Candidacy c;
      c.set_name("candidacies/c1");
      c.set_state(from);
      c.add_history()->set_reason("earlier");
      absl::Status status = Transition(c, to, "certifier:CPNE-IA", now, "because");
      const std::string pair = Short(from) + " -> " + Short(to);
      if (AllowedTransitions().count({from, to}) > 0) {
        ASSERT_TRUE(status.ok()) << pair << ": " << status;
        EXPECT_EQ(c.state(), to) << pair;
        ASSERT_EQ(c.history_size(), 2) << pair;
        const pb::StateChange& h = c.history(1);
        EXPECT_EQ(h.from(), from) << pair;
        EXPECT_EQ(h.to(), to) << pair;
        EXPECT_EQ(h.actor(), "certifier:CPNE-IA");
        EXPECT_EQ(h.reason(), "because");
        EXPECT_EQ(h.time().seconds(), 1781258400);
        EXPECT_EQ(h.time().nanos(), 0);
      } else {
        EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << pair;
        EXPECT_THAT(Types(status), ElementsAre("INVALID_TRANSITION")) << pair;
        ASSERT_EQ(Failure(status).violations_size(), 1);
        EXPECT_EQ(Failure(status).violations(0).subject(), "candidacies/c1");
        EXPECT_THAT(std::string(status.message()), HasSubstr(" is " + Short(from) + ":")) << pair;
        EXPECT_EQ(c.state(), from) << pair;
        EXPECT_EQ(c.history_size(), 1) << pair;
      }
    }
  }
}

TEST(RulesTransitionTest, RefusalNamesTheCurrentState) {
  pb::Candidacy c;
  c.set_name("candidacies/x");
  c.set_state(pb::CANDIDACY_STATE_DOSSIER_FILED);
  absl::Status status = Transition(c, pb::CANDIDACY_STATE_DELIBERATED, "certifier:A", absl::Now(), "");
  EXPECT_EQ(status.message(), "candidacies/x is DOSSIER_FILED: cannot become DELIBERATED");
}

TEST(RulesTransitionTest, SixStepsThenRevocationKeepTheWholeHistory) {
  pb::Candidacy c;
  c.set_name("candidacies/c1");
  c.set_state(pb::CANDIDACY_STATE_INFORMATION);
  absl::Time t = absl::FromUnixSeconds(1781258400);
  const S path[] = {pb::CANDIDACY_STATE_ADMISSIBILITY_REQUESTED, pb::CANDIDACY_STATE_ADMISSIBLE,
                    pb::CANDIDACY_STATE_DOSSIER_FILED,           pb::CANDIDACY_STATE_JURY_SCHEDULED,
                    pb::CANDIDACY_STATE_EVALUATED,               pb::CANDIDACY_STATE_DELIBERATED,
                    pb::CANDIDACY_STATE_EVALUATED,               pb::CANDIDACY_STATE_DELIBERATED,
                    pb::CANDIDACY_STATE_CERTIFICATE_ISSUED};
  for (S to : path) {
    ASSERT_TRUE(Transition(c, to, "certifier:A", t, "").ok()) << Short(to);
    t += absl::Hours(24);
  }
  ASSERT_EQ(c.history_size(), 9);
  for (int i = 1; i < c.history_size(); ++i) {
    EXPECT_EQ(c.history(i).from(), c.history(i - 1).to());
    EXPECT_EQ(c.history(i).time().seconds() - c.history(i - 1).time().seconds(), 86400);
  }
  EXPECT_EQ(c.history(6).from(), pb::CANDIDACY_STATE_DELIBERATED);
  EXPECT_EQ(c.history(6).to(), pb::CANDIDACY_STATE_EVALUATED);
  // Issued is final: not even a withdrawal.
  EXPECT_FALSE(Transition(c, pb::CANDIDACY_STATE_WITHDRAWN, "certifier:A", t, "late").ok());
}

TEST(RulesTransitionTest, HistoryTimeKeepsSubSecondsAndTimesBeforeTheEpoch) {
  pb::Candidacy c;
  c.set_state(pb::CANDIDACY_STATE_INFORMATION);
  ASSERT_TRUE(Transition(c, pb::CANDIDACY_STATE_ADMISSIBILITY_REQUESTED, "a",
                         absl::FromUnixMillis(1781258400123), "")
                  .ok());
  EXPECT_EQ(c.history(0).time().seconds(), 1781258400);
  EXPECT_EQ(c.history(0).time().nanos(), 123000000);
  // Protobuf timestamps keep nanos non-negative: -1.5 s is -2 s + 0.5 s.
  ASSERT_TRUE(Transition(c, pb::CANDIDACY_STATE_WITHDRAWN, "a", absl::FromUnixMillis(-1500), "").ok());
  EXPECT_EQ(c.history(1).time().seconds(), -2);
  EXPECT_EQ(c.history(1).time().nanos(), 500000000);
}

// --- Dates --------------------------------------------------------------------------------------

TEST(RulesDatesTest, ToYyyymmddIsTheUtcCalendarDate) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  EXPECT_EQ(ToYyyymmdd(absl::FromCivil(absl::CivilSecond(2026, 6, 12, 0, 0, 0), utc)), 20260612);
  EXPECT_EQ(ToYyyymmdd(absl::FromCivil(absl::CivilSecond(2026, 6, 12, 23, 59, 59), utc)), 20260612);
  EXPECT_EQ(ToYyyymmdd(absl::FromCivil(absl::CivilSecond(2026, 6, 13, 0, 0, 0), utc)), 20260613);
  // 01:30 in Paris (UTC+2 in summer) is still the 12th in UTC.
  absl::TimeZone paris;
  if (absl::LoadTimeZone("Europe/Paris", &paris)) {
    EXPECT_EQ(ToYyyymmdd(absl::FromCivil(absl::CivilSecond(2026, 6, 13, 1, 30, 0), paris)), 20260612);
  }
  EXPECT_EQ(ToYyyymmdd(absl::FromCivil(absl::CivilSecond(1999, 12, 31, 23, 0, 0), utc)), 19991231);
}

TEST(RulesDatesTest, AddMonthsClampsTheDayAndCrossesYears) {
  EXPECT_EQ(AddMonths(20240131, 1), 20240229);   // leap year
  EXPECT_EQ(AddMonths(20230131, 1), 20230228);
  EXPECT_EQ(AddMonths(20240131, 2), 20240331);   // the day is clamped only where needed
  EXPECT_EQ(AddMonths(20240131, 3), 20240430);
  EXPECT_EQ(AddMonths(20240229, 12), 20250228);
  EXPECT_EQ(AddMonths(20240229, 48), 20280229);
  EXPECT_EQ(AddMonths(20240229, 60), 20290228);  // 5 years, the branch validity
  EXPECT_EQ(AddMonths(20200101, 60), 20250101);
  EXPECT_EQ(AddMonths(20241115, 2), 20250115);
  EXPECT_EQ(AddMonths(20241231, 1), 20250131);
  EXPECT_EQ(AddMonths(20241231, 14), 20260228);
  EXPECT_EQ(AddMonths(20240612, 0), 20240612);
  EXPECT_EQ(AddMonths(20240315, -1), 20240215);
  EXPECT_EQ(AddMonths(20240331, -1), 20240229);
  EXPECT_EQ(AddMonths(20240115, -1), 20231215);
  EXPECT_EQ(AddMonths(20240115, -25), 20211215);
  EXPECT_EQ(AddMonths(20000131, 1), 20000229);   // 2000 is a leap year
  EXPECT_EQ(AddMonths(21000131, 1), 21000228);   // 2100 is not
  EXPECT_EQ(AddMonths(20230831, 1), 20230930);
}

// --- Targets ------------------------------------------------------------------------------------

// --- Whose certification, and until when ---------------------------------------------------------

ref::Certification TwoCertifiers() {
  ref::Certification c;
  c.set_code(kCert);
  ref::Certifier* branch = c.add_certifiers();
  branch->set_name("CPNE des industries alimentaires");
  branch->set_principal_id("CPNE-IA");
  branch->set_active(true);
  ref::Certifier* former = c.add_certifiers();
  former->set_name("Ancien certificateur");
  former->set_principal_id("OLD-CERT");
  former->set_active(false);
  c.add_certifiers()->set_name("Certificateur sans compte");  // no principal id: acts for nobody
  c.mutable_certifiers(2)->set_active(true);
  return c;
}

TEST(RulesCertifierTest, OnlyAnActiveListedCertifierActsOnTheCertification) {
  const ref::Certification c = TwoCertifiers();
  EXPECT_TRUE(CheckCertifierOf(c, "CPNE-IA").ok());
  for (const char* id : {"OLD-CERT", "OTHER", "", "cpne-ia", "Certificateur sans compte"}) {
    absl::Status s = CheckCertifierOf(c, id);
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << id;
    EXPECT_THAT(s.message(), HasSubstr(kCert)) << id;
  }
  EXPECT_EQ(CheckCertifierOf(ref::Certification(), "CPNE-IA").code(), absl::StatusCode::kPermissionDenied);
}

TEST(RulesCertifierTest, NoCertificateAfterTheIssuanceDeadline) {
  ref::Certification c = TwoCertifiers();
  EXPECT_TRUE(CheckIssuanceDeadline(c, 20991231, "candidacies/x").ok());  // no deadline
  c.mutable_issuance_deadline();  // an empty Date is no deadline either
  EXPECT_TRUE(CheckIssuanceDeadline(c, 20991231, "candidacies/x").ok());
  c.mutable_issuance_deadline()->set_year(2026);
  c.mutable_issuance_deadline()->set_month(6);
  c.mutable_issuance_deadline()->set_day(30);
  EXPECT_TRUE(CheckIssuanceDeadline(c, 20260629, "candidacies/x").ok());
  EXPECT_TRUE(CheckIssuanceDeadline(c, 20260630, "candidacies/x").ok());  // the last day still issues
  absl::Status late = CheckIssuanceDeadline(c, 20260701, "candidacies/x");
  EXPECT_EQ(late.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Types(late), ElementsAre("ISSUANCE_DEADLINE_PASSED"));
  EXPECT_EQ(Failure(late).violations(0).subject(), "candidacies/x");
  EXPECT_THAT(late.message(), HasSubstr("2026-06-30"));
}

TEST(RulesTargetTest, EmptyTargetMeansEveryBlocInVersionOrder) {
  absl::StatusOr<std::vector<std::string>> t = ResolveTarget({}, SeedVersion());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(*t, ElementsAre("BC1", "BC2", "BC3", "BC4", "BC5"));
}

TEST(RulesTargetTest, NamedBlocsComeBackInVersionOrder) {
  absl::StatusOr<std::vector<std::string>> t = ResolveTarget({"BC4", "BC1", "BC3"}, SeedVersion());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(*t, ElementsAre("BC1", "BC3", "BC4"));
}

TEST(RulesTargetTest, UnknownAndRepeatedCodesAreInvalidArguments) {
  absl::StatusOr<std::vector<std::string>> t = ResolveTarget({"BC1", "BC9", "BC1", ""}, SeedVersion());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Fields(t.status()),
              ElementsAre("candidacy.target_blocs[1]", "candidacy.target_blocs[2]", "candidacy.target_blocs[3]"));
  // Bloc codes are case-sensitive.
  EXPECT_THAT(Fields(ResolveTarget({"bc1"}, SeedVersion()).status()), ElementsAre("candidacy.target_blocs[0]"));
}

TEST(RulesTargetTest, StrictSubsetRefusedWhenPartialValidationIsForbidden) {
  ref::Version v = SeedVersion();
  v.mutable_validation_rules()->set_partial_validation_allowed(false);
  absl::StatusOr<std::vector<std::string>> t = ResolveTarget({"BC1", "BC2"}, v);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Types(t.status()), ElementsAre("PARTIAL_TARGET_NOT_ALLOWED"));
  // The whole certification, named or not, is fine.
  EXPECT_TRUE(ResolveTarget({}, v).ok());
  absl::StatusOr<std::vector<std::string>> all = ResolveTarget({"BC5", "BC4", "BC3", "BC2", "BC1"}, v);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->size(), 5u);
  // And a subset is fine when partial validation is allowed.
  EXPECT_TRUE(ResolveTarget({"BC1", "BC2"}, SeedVersion()).ok());
}

TEST(RulesTargetTest, VersionWithoutBlocsIsEvaluatedAsAWhole) {
  ref::Version rs;
  rs.set_name("certifications/RS6117/versions/1");
  rs.mutable_validation_rules()->set_partial_validation_allowed(false);
  absl::StatusOr<std::vector<std::string>> t = ResolveTarget({}, rs);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(*t, IsEmpty());
  EXPECT_THAT(Fields(ResolveTarget({"BC1"}, rs).status()), ElementsAre("candidacy.target_blocs[0]"));
}

// --- Held blocs ---------------------------------------------------------------------------------

LedgerEntry Entry(const std::string& cert, const std::string& bloc, int expiry = 0) {
  LedgerEntry e;
  e.candidate_id = "cand-1";
  e.certification_code = cert;
  e.bloc_code = bloc;
  e.acquired_yyyymmdd = 20210610;
  e.expiry_yyyymmdd = expiry;
  e.source_deliberation = "candidacies/old/deliberations/1";
  return e;
}

std::vector<std::string> HeldCodes(const std::vector<HeldBloc>& held) {
  std::vector<std::string> out;
  for (const HeldBloc& h : held) out.push_back(h.bloc_code + (h.via.empty() ? "" : "<-" + h.via));
  return out;
}

const std::vector<std::string> kAllBlocs = {"BC1", "BC2", "BC3", "BC4", "BC5"};

TEST(RulesHeldBlocsTest, DirectEntriesOfTheSameCertificationOnly) {
  std::vector<LedgerEntry> ledger = {Entry(kCert, "BC4"), Entry(kCert, "BC2"), Entry("OTHER-CQP", "BC3"),
                                     Entry(kCert, "BC9")};
  EXPECT_THAT(HeldCodes(HeldBlocs(kAllBlocs, kCert, SeedVersion(), ledger, 20260612)), ElementsAre("BC2", "BC4"));
  // Only targeted blocs count.
  EXPECT_THAT(HeldCodes(HeldBlocs({"BC1", "BC2"}, kCert, SeedVersion(), ledger, 20260612)), ElementsAre("BC2"));
  EXPECT_THAT(HeldBlocs(kAllBlocs, kCert, SeedVersion(), {}, 20260612), IsEmpty());
}

TEST(RulesHeldBlocsTest, ExpiredEntriesDoNotCount) {
  std::vector<LedgerEntry> ledger = {Entry(kCert, "BC1", 20260611), Entry(kCert, "BC2", 20260612),
                                     Entry(kCert, "BC3", 20260613), Entry(kCert, "BC4", 0)};
  EXPECT_THAT(HeldCodes(HeldBlocs(kAllBlocs, kCert, SeedVersion(), ledger, 20260612)),
              ElementsAre("BC2", "BC3", "BC4"));
}

TEST(RulesHeldBlocsTest, CorrespondencesMapTargetedBlocsOntoOtherCertifications) {
  ref::Version v = SeedVersion();
  auto* c = v.add_correspondences();
  c->set_source_bloc_code("BC2");
  c->set_target_certification_code("RNCP37507");
  c->set_target_bloc_code("RNCP37507BC02");
  c = v.add_correspondences();
  c->set_source_bloc_code("BC5");
  c->set_target_certification_code("RNCP37507");
  c->set_target_bloc_code("RNCP37507BC04");

  // Exactly the mapped certification and bloc.
  std::vector<LedgerEntry> ledger = {Entry("RNCP37507", "RNCP37507BC02"), Entry("RNCP37507", "RNCP37507BC03"),
                                     Entry("RNCP99999", "RNCP37507BC04")};
  EXPECT_THAT(HeldCodes(HeldBlocs(kAllBlocs, kCert, v, ledger, 20260612)),
              ElementsAre("BC2<-RNCP37507/RNCP37507BC02"));
  // Not without the correspondence.
  EXPECT_THAT(HeldBlocs(kAllBlocs, kCert, SeedVersion(), ledger, 20260612), IsEmpty());
  // Expired on the other side.
  EXPECT_THAT(HeldBlocs(kAllBlocs, kCert, v, {Entry("RNCP37507", "RNCP37507BC02", 20200101)}, 20260612),
              IsEmpty());
}

TEST(RulesHeldBlocsTest, DirectEntryWinsOverACorrespondence) {
  ref::Version v = SeedVersion();
  auto* c = v.add_correspondences();
  c->set_source_bloc_code("BC2");
  c->set_target_certification_code("RNCP37507");
  c->set_target_bloc_code("RNCP37507BC02");
  std::vector<LedgerEntry> ledger = {Entry("RNCP37507", "RNCP37507BC02"), Entry(kCert, "BC2")};
  std::vector<HeldBloc> held = HeldBlocs(kAllBlocs, kCert, v, ledger, 20260612);
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].bloc_code, "BC2");
  EXPECT_EQ(held[0].via, "");
  // An expired direct entry leaves the correspondence.
  ledger = {Entry(kCert, "BC2", 20250101), Entry("RNCP37507", "RNCP37507BC02")};
  EXPECT_THAT(HeldCodes(HeldBlocs(kAllBlocs, kCert, v, ledger, 20260612)),
              ElementsAre("BC2<-RNCP37507/RNCP37507BC02"));
}

// Each held bloc names every result whose live entry holds it (a revocation of one of them leaves
// the bloc held by the others); an expired entry is no source.
TEST(RulesHeldBlocsTest, AHeldBlocNamesTheResultsOfItsLiveEntries) {
  auto from = [](LedgerEntry e, const std::string& source) {
    e.source_deliberation = source;
    return e;
  };
  const std::vector<LedgerEntry> ledger = {from(Entry(kCert, "BC2"), "candidacies/a/deliberations/1"),
                                           from(Entry(kCert, "BC2", 20250101), "candidacies/b/deliberations/1"),
                                           from(Entry(kCert, "BC2"), "candidacies/c/deliberations/2"),
                                           from(Entry(kCert, "BC4"), "candidacies/c/deliberations/2")};
  std::vector<HeldBloc> held = HeldBlocs(kAllBlocs, kCert, SeedVersion(), ledger, 20260612);
  ASSERT_EQ(held.size(), 2u);
  EXPECT_THAT(held[0].sources, ElementsAre("candidacies/a/deliberations/1", "candidacies/c/deliberations/2"));
  EXPECT_THAT(held[1].sources, ElementsAre("candidacies/c/deliberations/2"));

  // A bloc held both directly and through a correspondence names the results of both ways; one
  // held only through correspondences names the first that holds it as `via`.
  ref::Version v = SeedVersion();
  for (const auto& [bloc, other] : std::vector<std::pair<std::string, std::string>>{
           {"BC4", "RNCP1BC04"}, {"BC5", "RNCP1BC05"}, {"BC5", "RNCP2BC05"}}) {
    auto* c = v.add_correspondences();
    c->set_source_bloc_code(bloc);
    c->set_target_certification_code(other.substr(0, 5));
    c->set_target_bloc_code(other);
  }
  std::vector<LedgerEntry> more = ledger;
  more.push_back(from(Entry("RNCP1", "RNCP1BC04"), "candidacies/d/deliberations/1"));
  more.push_back(from(Entry("RNCP2", "RNCP2BC05"), "candidacies/e/deliberations/1"));
  held = HeldBlocs(kAllBlocs, kCert, v, more, 20260612);
  ASSERT_EQ(held.size(), 3u);
  EXPECT_EQ(held[1].via, "");
  EXPECT_THAT(held[1].sources, ElementsAre("candidacies/c/deliberations/2", "candidacies/d/deliberations/1"));
  EXPECT_EQ(held[2].bloc_code, "BC5");
  EXPECT_EQ(held[2].via, "RNCP2/RNCP2BC05");
  EXPECT_THAT(held[2].sources, ElementsAre("candidacies/e/deliberations/1"));
}

// The jury's day is the candidate's passage (JURY_SCHEDULED -> EVALUATED), the last one; a
// revocation's return to EVALUATED is not a passage.
TEST(RulesHeldBlocsTest, JuryDayIsThePassage) {
  pb::Candidacy c;
  EXPECT_EQ(JuryDayOf(c, 20260101), 20260101);
  auto change = [&](pb::CandidacyState from, pb::CandidacyState to, int64_t unix_seconds) {
    pb::StateChange* s = c.add_history();
    s->set_from(from);
    s->set_to(to);
    s->mutable_time()->set_seconds(unix_seconds);
  };
  change(pb::CANDIDACY_STATE_DOSSIER_FILED, pb::CANDIDACY_STATE_JURY_SCHEDULED, 1780000000);  // 2026-05-28
  change(pb::CANDIDACY_STATE_JURY_SCHEDULED, pb::CANDIDACY_STATE_EVALUATED, 1781200000);      // 2026-06-11
  change(pb::CANDIDACY_STATE_EVALUATED, pb::CANDIDACY_STATE_DELIBERATED, 1781300000);
  change(pb::CANDIDACY_STATE_DELIBERATED, pb::CANDIDACY_STATE_EVALUATED, 1790000000);         // revoked
  EXPECT_EQ(JuryDayOf(c, 20260101), 20260611);
}

// Held blocs no longer held on the day go to the jury, in the version's bloc order; the others stay.
TEST(RulesHeldBlocsTest, LapsedHeldBlocsGoBackToTheJuryInBlocOrder) {
  pb::Candidacy c;
  for (const char* b : {"BC4", "BC1", "BC2"}) c.add_held_blocs(b);
  for (const char* b : {"BC3", "BC5"}) c.add_blocs_to_evaluate(b);
  const std::vector<LedgerEntry> ledger = {Entry(kCert, "BC1", 20260101), Entry(kCert, "BC2"),
                                           Entry(kCert, "BC4", 20260701)};
  pb::Candidacy unchanged = c;
  EXPECT_THAT(ReturnLapsedBlocsToTheJury(c, kCert, SeedVersion(), ledger, 20251231), IsEmpty());
  EXPECT_EQ(c.SerializeAsString(), unchanged.SerializeAsString());
  EXPECT_THAT(ReturnLapsedBlocsToTheJury(c, kCert, SeedVersion(), ledger, 20260702), ElementsAre("BC1", "BC4"));
  EXPECT_THAT(c.held_blocs(), ElementsAre("BC2"));
  EXPECT_THAT(c.blocs_to_evaluate(), ElementsAre("BC1", "BC3", "BC4", "BC5"));
  // An entry withdrawn since (its result revoked) is as good as lapsed.
  EXPECT_THAT(ReturnLapsedBlocsToTheJury(c, kCert, SeedVersion(), {}, 20260702), ElementsAre("BC2"));
  EXPECT_THAT(c.held_blocs(), IsEmpty());
  EXPECT_THAT(c.blocs_to_evaluate(), ElementsAre("BC1", "BC2", "BC3", "BC4", "BC5"));
}

TEST(RulesHeldBlocsTest, SecondCorrespondenceOfABlocCountsWhenTheFirstIsNotHeld) {
  ref::Version v = SeedVersion();
  for (const char* other : {"RNCP1", "RNCP2"}) {
    auto* c = v.add_correspondences();
    c->set_source_bloc_code("BC3");
    c->set_target_certification_code(other);
    c->set_target_bloc_code(std::string(other) + "BC01");
  }
  std::vector<LedgerEntry> ledger = {Entry("RNCP1", "RNCP1BC01", 20240101), Entry("RNCP2", "RNCP2BC01")};
  EXPECT_THAT(HeldCodes(HeldBlocs(kAllBlocs, kCert, v, ledger, 20260612)), ElementsAre("BC3<-RNCP2/RNCP2BC01"));
}

// --- Jury composition ---------------------------------------------------------------------------

pb::JuryMember Member(const std::string& id, pb::College college, pb::Gender gender, bool president = false,
                      bool qualified = false) {
  pb::JuryMember m;
  m.set_member_id(id);
  m.set_display_name("Membre " + id);
  m.set_function("Responsable maintenance");
  m.set_college(college);
  m.set_gender(gender);
  m.set_president(president);
  m.set_qualified(qualified);
  m.set_prepared(true);
  return m;
}

// A jury the seed rule accepts: 2 members, paritaire, a qualified president, one woman, one man.
pb::JurySession ValidSession() {
  pb::JurySession s;
  s.set_name("sessions/s1");
  *s.add_members() = Member("m1", pb::COLLEGE_EMPLOYER, pb::GENDER_FEMALE, true, true);
  *s.add_members() = Member("m2", pb::COLLEGE_EMPLOYEE, pb::GENDER_MALE);
  return s;
}

const ref::JuryCompositionRule& SeedRule() {
  static const auto* rule = new ref::JuryCompositionRule(SeedVersion().validation_rules().jury());
  return *rule;
}

std::vector<std::string> CompositionTypes(const pb::JurySession& s,
                                          const ref::JuryCompositionRule& rule = SeedRule()) {
  return Types(CompositionViolations(s, rule, "sessions/s1"));
}

TEST(RulesCompositionTest, ValidJuryPasses) {
  pb::JurySession s = ValidSession();
  EXPECT_THAT(CompositionTypes(s), IsEmpty());
  Violations v;
  CheckMembers(s, v);
  EXPECT_THAT(Fields(v), IsEmpty());
}

TEST(RulesCompositionTest, MinMembers) {
  ref::JuryCompositionRule rule = SeedRule();
  rule.set_min_members(3);
  EXPECT_THAT(CompositionTypes(ValidSession(), rule), ElementsAre("MIN_MEMBERS"));
  pb::JurySession s = ValidSession();
  *s.add_members() = Member("m3", pb::COLLEGE_EMPLOYEE, pb::GENDER_FEMALE);
  EXPECT_THAT(CompositionTypes(s, rule), IsEmpty());
}

TEST(RulesCompositionTest, MinQualifiedMembers) {
  pb::JurySession s = ValidSession();
  s.mutable_members(0)->set_qualified(false);
  EXPECT_THAT(CompositionTypes(s), ElementsAre("MIN_QUALIFIED_MEMBERS"));
}

TEST(RulesCompositionTest, OneViolationPerMissingCollege) {
  pb::JurySession s = ValidSession();
  s.mutable_members(1)->set_college(pb::COLLEGE_EMPLOYER);
  std::vector<PreconditionViolation> v = CompositionViolations(s, SeedRule(), "sessions/s1");
  ASSERT_THAT(Types(v), ElementsAre("COLLEGE_MISSING"));
  EXPECT_THAT(v[0].description, HasSubstr("EMPLOYEE"));

  s.mutable_members(0)->set_college(pb::COLLEGE_QUALIFIED_PERSON);
  s.mutable_members(1)->set_college(pb::COLLEGE_UNSPECIFIED);
  EXPECT_THAT(CompositionTypes(s), ElementsAre("COLLEGE_MISSING", "COLLEGE_MISSING"));

  ref::JuryCompositionRule open = SeedRule();
  open.clear_required_colleges();
  EXPECT_THAT(CompositionTypes(s, open), IsEmpty());
}

// Whatever the fiche says, the law's floor holds: a rule asking for nothing still wants 2 members,
// one qualified, a president and gender balance; a stricter rule keeps what it adds.
TEST(RulesCompositionTest, TheLegalMinimumHoldsWhateverTheFicheSays) {
  ref::JuryCompositionRule nothing;
  nothing.set_min_members(0);
  nothing.set_min_qualified_members(0);
  const ref::JuryCompositionRule floor = WithLegalMinimum(nothing);
  pb::JurySession alone;
  alone.set_name("sessions/s1");
  *alone.add_members() = Member("m1", pb::COLLEGE_EMPLOYER, pb::GENDER_FEMALE, false, false);
  EXPECT_THAT(CompositionTypes(alone, nothing), IsEmpty());
  EXPECT_THAT(CompositionTypes(alone, floor),
              UnorderedElementsAre("MIN_MEMBERS", "MIN_QUALIFIED_MEMBERS", "PRESIDENT_MISSING"));
  pb::JurySession three_women;
  three_women.set_name("sessions/s1");
  *three_women.add_members() = Member("m1", pb::COLLEGE_EMPLOYER, pb::GENDER_FEMALE, true, true);
  *three_women.add_members() = Member("m2", pb::COLLEGE_EMPLOYEE, pb::GENDER_FEMALE);
  *three_women.add_members() = Member("m3", pb::COLLEGE_EMPLOYEE, pb::GENDER_FEMALE);
  EXPECT_THAT(CompositionTypes(three_women, nothing), IsEmpty());
  EXPECT_THAT(CompositionTypes(three_women, floor), ElementsAre("GENDER_BALANCE"));
  EXPECT_THAT(CompositionTypes(ValidSession(), floor), IsEmpty());
  ref::JuryCompositionRule stricter = SeedRule();
  stricter.set_min_members(5);
  stricter.set_min_qualified_members(2);
  const ref::JuryCompositionRule kept = WithLegalMinimum(stricter);
  EXPECT_EQ(kept.min_members(), 5);
  EXPECT_EQ(kept.min_qualified_members(), 2);
  EXPECT_EQ(kept.required_colleges_size(), SeedRule().required_colleges_size());
}

TEST(RulesCompositionTest, PresidentMissingOnlyWhenRequired) {
  pb::JurySession s = ValidSession();
  s.mutable_members(0)->set_president(false);
  EXPECT_THAT(CompositionTypes(s), ElementsAre("PRESIDENT_MISSING"));
  ref::JuryCompositionRule rule = SeedRule();
  rule.set_president_required(false);
  EXPECT_THAT(CompositionTypes(s, rule), IsEmpty());
}

TEST(RulesCompositionTest, GenderBalanceOnlyWhenRequired) {
  ref::JuryCompositionRule lax = SeedRule();
  lax.set_gender_balance_required(false);

  pb::JurySession three_women = ValidSession();
  three_women.mutable_members(1)->set_gender(pb::GENDER_FEMALE);
  *three_women.add_members() = Member("m3", pb::COLLEGE_EMPLOYEE, pb::GENDER_FEMALE);
  EXPECT_THAT(CompositionTypes(three_women), ElementsAre("GENDER_BALANCE"));
  EXPECT_THAT(CompositionTypes(three_women, lax), IsEmpty());

  // Two women and one man: a difference of one is balanced.
  pb::JurySession two_one = ValidSession();
  *two_one.add_members() = Member("m3", pb::COLLEGE_EMPLOYEE, pb::GENDER_FEMALE);
  EXPECT_THAT(CompositionTypes(two_one), IsEmpty());

  // Two women and no man is not.
  pb::JurySession two_women = ValidSession();
  two_women.mutable_members(1)->set_gender(pb::GENDER_FEMALE);
  EXPECT_THAT(CompositionTypes(two_women), ElementsAre("GENDER_BALANCE"));

  pb::JurySession unknown = ValidSession();
  unknown.mutable_members(1)->set_gender(pb::GENDER_UNSPECIFIED);
  EXPECT_THAT(CompositionTypes(unknown), ElementsAre("GENDER_BALANCE"));
  EXPECT_THAT(CompositionTypes(unknown, lax), IsEmpty());
}

TEST(RulesCompositionTest, OneViolationPerUnpreparedMemberWithTheSubjectPrefixed) {
  pb::JurySession s = ValidSession();
  s.mutable_members(0)->set_prepared(false);
  s.mutable_members(1)->set_prepared(false);
  std::vector<PreconditionViolation> v = CompositionViolations(s, SeedRule(), "sessions/s1");
  ASSERT_THAT(Types(v), ElementsAre("MEMBER_NOT_PREPARED", "MEMBER_NOT_PREPARED"));
  EXPECT_THAT(v[0].subject, HasSubstr("m1"));
  EXPECT_THAT(v[1].subject, HasSubstr("m2"));
  for (const auto& x : v) EXPECT_EQ(x.subject.rfind("sessions/s1", 0), 0u) << x.subject;
}

TEST(RulesCompositionTest, AMemberWhoDeclaredAConflictOfInterestCannotSitEvenIfPrepared) {
  pb::JurySession s = ValidSession();
  s.mutable_members(1)->set_conflict_of_interest(true);  // prepared stays true: the flag alone refuses
  std::vector<PreconditionViolation> v = CompositionViolations(s, SeedRule(), "sessions/s1");
  ASSERT_THAT(Types(v), ElementsAre("CONFLICT_OF_INTEREST"));
  EXPECT_EQ(v[0].subject, "sessions/s1/members/m2");
}

TEST(RulesCompositionTest, EveryBrokenRuleAtOnce) {
  pb::JurySession s;
  s.set_name("sessions/s1");
  pb::JuryMember m = Member("m1", pb::COLLEGE_UNSPECIFIED, pb::GENDER_UNSPECIFIED);
  m.set_prepared(false);
  *s.add_members() = m;
  EXPECT_THAT(CompositionTypes(s),
              UnorderedElementsAre("MIN_MEMBERS", "MIN_QUALIFIED_MEMBERS", "COLLEGE_MISSING", "COLLEGE_MISSING",
                                   "PRESIDENT_MISSING", "GENDER_BALANCE", "MEMBER_NOT_PREPARED"));
}

TEST(RulesCheckMembersTest, FieldViolations) {
  pb::JurySession s = ValidSession();
  *s.add_members() = Member("", pb::COLLEGE_EMPLOYEE, pb::GENDER_MALE);
  *s.add_members() = Member("m1", pb::COLLEGE_EMPLOYEE, pb::GENDER_MALE);
  s.mutable_members(1)->set_display_name("");
  s.mutable_members(1)->set_college(static_cast<pb::College>(42));
  s.mutable_members(0)->set_gender(static_cast<pb::Gender>(7));
  Violations v;
  CheckMembers(s, v);
  EXPECT_THAT(Fields(v), UnorderedElementsAre("session.members[0].gender", "session.members[1].display_name",
                                              "session.members[1].college", "session.members[2].member_id",
                                              "session.members[3].member_id"));
}

// A member acts as jury-member:<member_id>: an id the gateway would never parse is refused.
TEST(RulesCheckMembersTest, AMemberIdIsAPrincipalId) {
  pb::JurySession s = ValidSession();
  *s.add_members() = Member("jury-member:J1", pb::COLLEGE_EMPLOYEE, pb::GENDER_MALE);
  *s.add_members() = Member("J 1", pb::COLLEGE_EMPLOYEE, pb::GENDER_MALE);
  *s.add_members() = Member(std::string(129, 'j'), pb::COLLEGE_EMPLOYEE, pb::GENDER_MALE);
  *s.add_members() = Member("J-1_b.2", pb::COLLEGE_EMPLOYEE, pb::GENDER_MALE);
  const int first = s.members_size() - 4;
  Violations v;
  CheckMembers(s, v);
  EXPECT_THAT(Fields(v), ElementsAre(absl::StrCat("session.members[", first, "].member_id"),
                                     absl::StrCat("session.members[", first + 1, "].member_id"),
                                     absl::StrCat("session.members[", first + 2, "].member_id")));
}

TEST(RulesCheckMembersTest, TwoPresidentsAreRefusedWhateverTheRule) {
  pb::JurySession s = ValidSession();
  s.mutable_members(1)->set_president(true);
  Violations v;
  CheckMembers(s, v);
  EXPECT_THAT(Fields(v), ElementsAre("session.members"));
}

// --- Score sheets -------------------------------------------------------------------------------

// Blocs BC2, BC4 and BC5 already held: the jury evaluates BC1 and BC3.
const std::vector<std::string> kToEvaluate = {"BC1", "BC3"};

pb::ScoreSheet CompleteSheet(const std::vector<std::string>& blocs, int percent = 75) {
  pb::ScoreSheet sheet;
  ref::Version v = SeedVersion();
  for (const auto& b : v.blocs()) {
    bool evaluated = false;
    for (const auto& code : blocs) evaluated |= code == b.code();
    if (!evaluated) continue;
    for (const auto& c : b.competences()) {
      pb::CompetenceScore* s = sheet.add_competence_scores();
      s->set_competence_code(c.code());
      s->set_mark(pb::DOSSIER_MARK_CLEAR);
      s->set_percent(percent);
    }
    pb::BlocScore* s = sheet.add_bloc_scores();
    s->set_bloc_code(b.code());
    s->set_percent(percent);
    s->set_interview_level(3);
  }
  return sheet;
}

std::vector<std::string> SheetFields(const pb::ScoreSheet& sheet, const ref::Version& version = SeedVersion()) {
  Violations v;
  CheckScoreSheet(sheet, version, kToEvaluate, v);
  return Fields(v);
}

TEST(RulesScoreSheetTest, CompleteSheetIsValidAndComplete) {
  pb::ScoreSheet sheet = CompleteSheet(kToEvaluate);
  EXPECT_EQ(sheet.competence_scores_size(), 9);
  EXPECT_THAT(SheetFields(sheet), IsEmpty());
  EXPECT_THAT(MissingScores(sheet, SeedVersion(), kToEvaluate), IsEmpty());
}

TEST(RulesScoreSheetTest, ScoringABlocOutsideTheTarget) {
  pb::ScoreSheet sheet = CompleteSheet(kToEvaluate);
  pb::CompetenceScore* c = sheet.add_competence_scores();  // [9]
  c->set_competence_code("C2.1");
  c->set_mark(pb::DOSSIER_MARK_PARTIAL);
  c->set_percent(50);
  pb::BlocScore* b = sheet.add_bloc_scores();  // [2]
  b->set_bloc_code("BC2");
  b->set_percent(50);
  b->set_interview_level(2);
  Violations v;
  CheckScoreSheet(sheet, SeedVersion(), kToEvaluate, v);
  ASSERT_THAT(Fields(v), ElementsAre("sheet.competence_scores[9].competence_code", "sheet.bloc_scores[2].bloc_code"));
  EXPECT_THAT(v.list()[0].description, HasSubstr("outside the target"));
  EXPECT_THAT(v.list()[1].description, HasSubstr("outside the target"));
}

TEST(RulesScoreSheetTest, UnknownAndRepeatedCodes) {
  pb::ScoreSheet sheet = CompleteSheet(kToEvaluate);
  *sheet.add_competence_scores() = sheet.competence_scores(0);  // [9] repeated C1.1
  *sheet.add_competence_scores() = sheet.competence_scores(0);  // [10]
  sheet.mutable_competence_scores(10)->set_competence_code("C9.9");
  *sheet.add_bloc_scores() = sheet.bloc_scores(1);  // [2] repeated BC3
  *sheet.add_bloc_scores() = sheet.bloc_scores(1);  // [3]
  sheet.mutable_bloc_scores(3)->set_bloc_code("BC9");
  EXPECT_THAT(SheetFields(sheet),
              ElementsAre("sheet.competence_scores[9].competence_code", "sheet.competence_scores[10].competence_code",
                          "sheet.bloc_scores[2].bloc_code", "sheet.bloc_scores[3].bloc_code"));
}

TEST(RulesScoreSheetTest, PercentBounds) {
  pb::ScoreSheet sheet = CompleteSheet(kToEvaluate);
  sheet.mutable_competence_scores(0)->set_percent(0);
  sheet.mutable_competence_scores(1)->set_percent(100);
  sheet.mutable_competence_scores(2)->set_percent(-1);
  sheet.mutable_competence_scores(3)->set_percent(101);
  sheet.mutable_bloc_scores(0)->set_percent(100);
  sheet.mutable_bloc_scores(1)->set_percent(-5);
  EXPECT_THAT(SheetFields(sheet), ElementsAre("sheet.competence_scores[2].percent",
                                              "sheet.competence_scores[3].percent", "sheet.bloc_scores[1].percent"));
}

TEST(RulesScoreSheetTest, MarkMustBeSpecified) {
  pb::ScoreSheet sheet = CompleteSheet(kToEvaluate);
  sheet.mutable_competence_scores(4)->set_mark(pb::DOSSIER_MARK_UNSPECIFIED);
  sheet.mutable_competence_scores(5)->set_mark(static_cast<pb::DossierMark>(3));
  sheet.mutable_competence_scores(6)->set_mark(pb::DOSSIER_MARK_PARTIAL);
  EXPECT_THAT(SheetFields(sheet), ElementsAre("sheet.competence_scores[4].mark", "sheet.competence_scores[5].mark"));
}

TEST(RulesScoreSheetTest, InterviewLevelWithinTheInterviewScale) {
  pb::ScoreSheet sheet = CompleteSheet(kToEvaluate);
  sheet.mutable_bloc_scores(0)->set_interview_level(1);
  sheet.mutable_bloc_scores(1)->set_interview_level(4);
  EXPECT_THAT(SheetFields(sheet), IsEmpty());
  sheet.mutable_bloc_scores(0)->set_interview_level(0);
  sheet.mutable_bloc_scores(1)->set_interview_level(5);
  EXPECT_THAT(SheetFields(sheet), ElementsAre("sheet.bloc_scores[0].interview_level",
                                              "sheet.bloc_scores[1].interview_level"));
  // The scale's size is data: a 5-level interview scale accepts 5.
  ref::Version five = SeedVersion();
  for (auto& scale : *five.mutable_scales()) {
    if (scale.kind() == ref::SCALE_KIND_INTERVIEW) scale.add_levels()->set_rank(5);
  }
  EXPECT_THAT(SheetFields(sheet, five), ElementsAre("sheet.bloc_scores[0].interview_level"));
}

TEST(RulesScoreSheetTest, MissingScoresListsCompetencesAndBlocsNotScored) {
  pb::ScoreSheet sheet = CompleteSheet(kToEvaluate);
  // Drop C3.2 (index 5: C1.1..C1.4, C3.1, C3.2) and the BC1 interview score.
  sheet.mutable_competence_scores()->DeleteSubrange(5, 1);
  sheet.mutable_bloc_scores()->DeleteSubrange(0, 1);
  EXPECT_THAT(MissingScores(sheet, SeedVersion(), kToEvaluate), ElementsAre("BC1", "C3.2"));

  std::vector<std::string> all = MissingScores(pb::ScoreSheet(), SeedVersion(), kToEvaluate);
  EXPECT_THAT(all, ElementsAre("C1.1", "C1.2", "C1.3", "C1.4", "BC1", "C3.1", "C3.2", "C3.3", "C3.4", "C3.5", "BC3"));
  // Scores of held blocs do not complete anything.
  EXPECT_EQ(MissingScores(CompleteSheet({"BC2", "BC4", "BC5"}), SeedVersion(), kToEvaluate), all);
}

// --- Spreads ------------------------------------------------------------------------------------

pb::ScoreSheet BlocSheet(std::vector<std::pair<std::string, int>> scores) {
  pb::ScoreSheet sheet;
  for (const auto& [code, percent] : scores) {
    pb::BlocScore* s = sheet.add_bloc_scores();
    s->set_bloc_code(code);
    s->set_percent(percent);
    s->set_interview_level(3);
  }
  return sheet;
}

TEST(RulesSpreadsTest, MinMaxMeanAndDivergence) {
  std::vector<pb::ScoreSheet> sheets = {BlocSheet({{"BC1", 60}, {"BC3", 50}}), BlocSheet({{"BC3", 90}, {"BC1", 80}}),
                                        BlocSheet({{"BC1", 75}})};
  std::vector<pb::BlocSpread> spreads = Spreads(sheets, kToEvaluate, 20);
  ASSERT_EQ(spreads.size(), 2u);
  EXPECT_EQ(spreads[0].bloc_code(), "BC1");
  EXPECT_EQ(spreads[0].min_percent(), 60);
  EXPECT_EQ(spreads[0].max_percent(), 80);
  EXPECT_DOUBLE_EQ(spreads[0].mean_percent(), 215.0 / 3.0);
  EXPECT_FALSE(spreads[0].divergent());  // 20 is not above the gap of 20
  // The third sheet lacks BC3: skipped for BC3.
  EXPECT_EQ(spreads[1].bloc_code(), "BC3");
  EXPECT_EQ(spreads[1].min_percent(), 50);
  EXPECT_EQ(spreads[1].max_percent(), 90);
  EXPECT_DOUBLE_EQ(spreads[1].mean_percent(), 70.0);
  EXPECT_TRUE(spreads[1].divergent());

  std::vector<pb::BlocSpread> tight = Spreads(sheets, kToEvaluate, 19);
  EXPECT_TRUE(tight[0].divergent());
  std::vector<pb::BlocSpread> loose = Spreads(sheets, kToEvaluate, 40);
  EXPECT_FALSE(loose[1].divergent());
}

// --- Decision -----------------------------------------------------------------------------------

pb::BlocAppreciation Appreciation(const std::string& bloc, int percent, const std::string& justification = "") {
  pb::BlocAppreciation a;
  a.set_bloc_code(bloc);
  a.set_common_percent(percent);
  a.set_comment("commentaire " + bloc);
  a.set_justification(justification);
  return a;
}

DecisionContext SeedContext() {
  DecisionContext c;
  c.blocs_to_evaluate = kAllBlocs;
  c.threshold_percent = 70;
  c.partial_allowed = true;
  c.attendance = pb::ATTENDANCE_PRESENT;
  return c;
}

// The seed scenario: BC1, BC2 and BC4 reach 70 %, BC3 and BC5 do not.
pb::RecordDecisionRequest SeedDecision(pb::ProposalKind proposal) {
  pb::RecordDecisionRequest r;
  r.set_name("candidacies/c1/deliberations/1");
  *r.add_appreciations() = Appreciation("BC1", 80);
  *r.add_appreciations() = Appreciation("BC2", 70);
  *r.add_appreciations() = Appreciation("BC3", 55);
  *r.add_appreciations() = Appreciation("BC4", 75);
  *r.add_appreciations() = Appreciation("BC5", 40);
  r.set_proposal(proposal);
  r.set_comment("Bonne maîtrise du diagnostic");
  return r;
}

std::vector<bool> Acquired(const pb::Deliberation& d) {
  std::vector<bool> out;
  for (const auto& a : d.appreciations()) out.push_back(a.acquired());
  return out;
}

TEST(RulesDecisionTest, SeedScenarioPartialAgrees) {
  pb::Deliberation d;
  absl::Status status = ApplyDecision(SeedDecision(pb::PROPOSAL_KIND_PARTIAL), SeedContext(), d);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(d.proposal(), pb::PROPOSAL_KIND_PARTIAL);
  EXPECT_THAT(d.proposed_blocs(), ElementsAre("BC1", "BC2", "BC4"));
  EXPECT_THAT(Acquired(d), ElementsAre(true, true, false, true, false));
  EXPECT_EQ(d.comment(), "Bonne maîtrise du diagnostic");
  EXPECT_EQ(d.appreciations(2).comment(), "commentaire BC3");
}

TEST(RulesDecisionTest, SeedScenarioTotalAndRefusalDisagree) {
  for (pb::ProposalKind p : {pb::PROPOSAL_KIND_TOTAL, pb::PROPOSAL_KIND_REFUSAL}) {
    pb::Deliberation d;
    d.set_comment("unchanged");
    absl::Status status = ApplyDecision(SeedDecision(p), SeedContext(), d);
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << pb::ProposalKind_Name(p);
    EXPECT_THAT(Types(status), ElementsAre("PROPOSAL_DISAGREES_WITH_BLOCS")) << pb::ProposalKind_Name(p);
    EXPECT_EQ(d.comment(), "unchanged");  // nothing written on failure
    EXPECT_EQ(d.appreciations_size(), 0);
  }
}

// A candidacy that targets only some blocs of the certification never gets the whole of it:
// acquiring every evaluated bloc is PARTIAL; TOTAL is refused and says why.
TEST(RulesDecisionTest, EveryTargetedBlocAcquiredIsPartialWhenTheTargetIsNotTheWholeCertification) {
  DecisionContext context = SeedContext();
  context.blocs_to_evaluate = {"BC1", "BC2"};
  context.blocs_not_targeted = 3;
  pb::RecordDecisionRequest r;
  r.set_name("candidacies/c1/deliberations/1");
  *r.add_appreciations() = Appreciation("BC1", 80);
  *r.add_appreciations() = Appreciation("BC2", 75);
  r.set_proposal(pb::PROPOSAL_KIND_TOTAL);
  pb::Deliberation d;
  absl::Status total = ApplyDecision(r, context, d);
  EXPECT_THAT(Types(total), ElementsAre("PROPOSAL_DISAGREES_WITH_BLOCS")) << total;
  EXPECT_NE(total.message().find("not targeted"), absl::string_view::npos) << total;
  r.set_proposal(pb::PROPOSAL_KIND_PARTIAL);
  ASSERT_TRUE(ApplyDecision(r, context, d).ok());
  EXPECT_THAT(d.proposed_blocs(), ElementsAre("BC1", "BC2"));
  // The same blocs when the rest is held (not targeted: 0) make the whole certification.
  context.blocs_not_targeted = 0;
  r.set_proposal(pb::PROPOSAL_KIND_TOTAL);
  EXPECT_TRUE(ApplyDecision(r, context, d).ok());
  r.set_proposal(pb::PROPOSAL_KIND_PARTIAL);
  EXPECT_THAT(Types(ApplyDecision(r, context, d)), ElementsAre("PROPOSAL_DISAGREES_WITH_BLOCS"));
}

TEST(RulesDecisionTest, JustifiedBlocBelowTheThresholdCountsAcquired) {
  pb::RecordDecisionRequest r = SeedDecision(pb::PROPOSAL_KIND_PARTIAL);
  *r.mutable_appreciations(2) = Appreciation("BC3", 65, "Rattrapage : maîtrise démontrée en entretien");
  pb::Deliberation d;
  ASSERT_TRUE(ApplyDecision(r, SeedContext(), d).ok());
  EXPECT_THAT(d.proposed_blocs(), ElementsAre("BC1", "BC2", "BC3", "BC4"));
  EXPECT_TRUE(d.appreciations(2).acquired());
  EXPECT_EQ(d.appreciations(2).justification(), "Rattrapage : maîtrise démontrée en entretien");

  // A blank justification justifies nothing.
  *r.mutable_appreciations(2) = Appreciation("BC3", 65, "  ");
  ASSERT_TRUE(ApplyDecision(r, SeedContext(), d).ok());
  EXPECT_THAT(d.proposed_blocs(), ElementsAre("BC1", "BC2", "BC4"));

  // With BC5 justified too, every bloc is acquired: TOTAL agrees, PARTIAL does not.
  *r.mutable_appreciations(2) = Appreciation("BC3", 65, "justifié");
  *r.mutable_appreciations(4) = Appreciation("BC5", 40, "justifié");
  EXPECT_THAT(Types(ApplyDecision(r, SeedContext(), d)), ElementsAre("PROPOSAL_DISAGREES_WITH_BLOCS"));
  r.set_proposal(pb::PROPOSAL_KIND_TOTAL);
  ASSERT_TRUE(ApplyDecision(r, SeedContext(), d).ok());
  EXPECT_THAT(d.proposed_blocs(), ElementsAre("BC1", "BC2", "BC3", "BC4", "BC5"));
}

TEST(RulesDecisionTest, ThresholdIsInclusive) {
  pb::RecordDecisionRequest r = SeedDecision(pb::PROPOSAL_KIND_REFUSAL);
  for (int i = 0; i < r.appreciations_size(); ++i) r.mutable_appreciations(i)->set_common_percent(69);
  pb::Deliberation d;
  ASSERT_TRUE(ApplyDecision(r, SeedContext(), d).ok());
  EXPECT_THAT(d.proposed_blocs(), IsEmpty());
  EXPECT_THAT(Acquired(d), ElementsAre(false, false, false, false, false));
  // Partial needs at least one acquired bloc.
  r.set_proposal(pb::PROPOSAL_KIND_PARTIAL);
  EXPECT_THAT(Types(ApplyDecision(r, SeedContext(), d)), ElementsAre("PROPOSAL_DISAGREES_WITH_BLOCS"));
  r.set_proposal(pb::PROPOSAL_KIND_REFUSAL);

  r.mutable_appreciations(0)->set_common_percent(70);
  EXPECT_THAT(Types(ApplyDecision(r, SeedContext(), d)), ElementsAre("PROPOSAL_DISAGREES_WITH_BLOCS"));
  r.set_proposal(pb::PROPOSAL_KIND_PARTIAL);
  ASSERT_TRUE(ApplyDecision(r, SeedContext(), d).ok());
  EXPECT_THAT(d.proposed_blocs(), ElementsAre("BC1"));
}

TEST(RulesDecisionTest, AppreciationsAreStoredInBlocOrderAndReplaceThePreviousOnes) {
  pb::RecordDecisionRequest r = SeedDecision(pb::PROPOSAL_KIND_PARTIAL);
  r.mutable_appreciations()->SwapElements(0, 4);
  r.mutable_appreciations(0)->set_acquired(true);  // output only: recomputed (BC5 at 40)
  pb::Deliberation d;
  *d.add_appreciations() = Appreciation("OLD", 1);
  d.add_proposed_blocs("OLD");
  ASSERT_TRUE(ApplyDecision(r, SeedContext(), d).ok());
  ASSERT_EQ(d.appreciations_size(), 5);
  EXPECT_EQ(d.appreciations(0).bloc_code(), "BC1");
  EXPECT_EQ(d.appreciations(4).bloc_code(), "BC5");
  EXPECT_FALSE(d.appreciations(4).acquired());
  EXPECT_THAT(d.proposed_blocs(), ElementsAre("BC1", "BC2", "BC4"));
}

TEST(RulesDecisionTest, AppreciationMissingForEachBlocWithout) {
  pb::RecordDecisionRequest r = SeedDecision(pb::PROPOSAL_KIND_PARTIAL);
  r.mutable_appreciations()->DeleteSubrange(3, 2);  // BC4, BC5
  pb::Deliberation d;
  absl::Status status = ApplyDecision(r, SeedContext(), d);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Types(status), ElementsAre("APPRECIATION_MISSING", "APPRECIATION_MISSING"));
  google::rpc::PreconditionFailure f = Failure(status);
  EXPECT_THAT(f.violations(0).description(), HasSubstr("BC4"));
  EXPECT_THAT(f.violations(1).description(), HasSubstr("BC5"));
}

TEST(RulesDecisionTest, PartialNotAllowed) {
  DecisionContext c = SeedContext();
  c.partial_allowed = false;
  pb::Deliberation d;
  absl::Status status = ApplyDecision(SeedDecision(pb::PROPOSAL_KIND_PARTIAL), c, d);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Types(status), ElementsAre("PARTIAL_NOT_ALLOWED"));
  // Short of the whole certification (3 of 5 blocs here) the decision is a refusal, which
  // grants nothing: no bloc acquired, none proposed.
  ASSERT_TRUE(ApplyDecision(SeedDecision(pb::PROPOSAL_KIND_REFUSAL), c, d).ok());
  EXPECT_EQ(d.proposal(), pb::PROPOSAL_KIND_REFUSAL);
  EXPECT_THAT(d.proposed_blocs(), IsEmpty());
  ASSERT_EQ(d.appreciations_size(), 5);
  for (const pb::BlocAppreciation& a : d.appreciations()) EXPECT_FALSE(a.acquired()) << a.bloc_code();
  // Every bloc acquired: TOTAL, not a refusal.
  pb::RecordDecisionRequest all = SeedDecision(pb::PROPOSAL_KIND_REFUSAL);
  for (pb::BlocAppreciation& a : *all.mutable_appreciations()) a.set_common_percent(90);
  EXPECT_THAT(Types(ApplyDecision(all, c, d)), ElementsAre("PROPOSAL_DISAGREES_WITH_BLOCS"));
  all.set_proposal(pb::PROPOSAL_KIND_TOTAL);
  EXPECT_TRUE(ApplyDecision(all, c, d).ok());
  // Where partial validation is allowed, a refusal still needs every bloc short.
  EXPECT_THAT(Types(ApplyDecision(SeedDecision(pb::PROPOSAL_KIND_REFUSAL), SeedContext(), d)),
              ElementsAre("PROPOSAL_DISAGREES_WITH_BLOCS"));
}

TEST(RulesDecisionTest, EveryPreconditionReportedAtOnce) {
  DecisionContext c = SeedContext();
  c.partial_allowed = false;
  pb::RecordDecisionRequest r = SeedDecision(pb::PROPOSAL_KIND_PARTIAL);
  r.mutable_appreciations()->DeleteSubrange(4, 1);  // BC5
  pb::Deliberation d;
  EXPECT_THAT(Types(ApplyDecision(r, c, d)), UnorderedElementsAre("APPRECIATION_MISSING", "PARTIAL_NOT_ALLOWED"));
  // A present candidate cannot be declared absent, whatever else is wrong.
  r.set_proposal(pb::PROPOSAL_KIND_CANDIDATE_ABSENT);
  EXPECT_THAT(Types(ApplyDecision(r, c, d)),
              UnorderedElementsAre("APPRECIATION_MISSING", "PROPOSAL_DISAGREES_WITH_BLOCS"));
}

TEST(RulesDecisionTest, InvalidArguments) {
  pb::RecordDecisionRequest r = SeedDecision(pb::PROPOSAL_KIND_UNSPECIFIED);
  r.mutable_appreciations(0)->set_common_percent(101);
  r.mutable_appreciations(1)->set_common_percent(-1);
  *r.add_appreciations() = Appreciation("BC9", 50);  // [5] unknown
  *r.add_appreciations() = Appreciation("BC2", 50);  // [6] repeated
  pb::Deliberation d;
  absl::Status status = ApplyDecision(r, SeedContext(), d);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Fields(status),
              ElementsAre("appreciations[0].common_percent", "appreciations[1].common_percent",
                          "appreciations[5].bloc_code", "appreciations[6].bloc_code", "proposal"));
  EXPECT_EQ(d.appreciations_size(), 0);

  // A bloc of the version that is held (not to evaluate) is not appreciated again.
  DecisionContext c = SeedContext();
  c.blocs_to_evaluate = kToEvaluate;
  pb::RecordDecisionRequest held;
  held.set_proposal(pb::PROPOSAL_KIND_TOTAL);
  *held.add_appreciations() = Appreciation("BC1", 90);
  *held.add_appreciations() = Appreciation("BC2", 90);
  *held.add_appreciations() = Appreciation("BC3", 90);
  EXPECT_THAT(Fields(ApplyDecision(held, c, d)), ElementsAre("appreciations[1].bloc_code"));

  // Out-of-range enum values.
  pb::RecordDecisionRequest odd = SeedDecision(static_cast<pb::ProposalKind>(17));
  EXPECT_THAT(Fields(ApplyDecision(odd, SeedContext(), d)), ElementsAre("proposal"));
}

TEST(RulesDecisionTest, AbsentAndExcusedCandidates) {
  pb::RecordDecisionRequest none;
  none.set_name("candidacies/c1/deliberations/1");
  pb::Deliberation d;

  DecisionContext absent = SeedContext();
  absent.attendance = pb::ATTENDANCE_ABSENT;
  none.set_proposal(pb::PROPOSAL_KIND_CANDIDATE_ABSENT);
  ASSERT_TRUE(ApplyDecision(none, absent, d).ok());
  EXPECT_EQ(d.proposal(), pb::PROPOSAL_KIND_CANDIDATE_ABSENT);
  EXPECT_THAT(d.proposed_blocs(), IsEmpty());
  for (pb::ProposalKind p : {pb::PROPOSAL_KIND_CANDIDATE_EXCUSED, pb::PROPOSAL_KIND_REFUSAL,
                             pb::PROPOSAL_KIND_TOTAL}) {
    none.set_proposal(p);
    EXPECT_THAT(Types(ApplyDecision(none, absent, d)), ElementsAre("PROPOSAL_DISAGREES_WITH_BLOCS"))
        << pb::ProposalKind_Name(p);
  }

  DecisionContext excused = SeedContext();
  excused.attendance = pb::ATTENDANCE_EXCUSED;
  none.set_proposal(pb::PROPOSAL_KIND_CANDIDATE_EXCUSED);
  EXPECT_TRUE(ApplyDecision(none, excused, d).ok());
  none.set_proposal(pb::PROPOSAL_KIND_CANDIDATE_ABSENT);
  EXPECT_THAT(Types(ApplyDecision(none, excused, d)), ElementsAre("PROPOSAL_DISAGREES_WITH_BLOCS"));

  // A candidate who was not there has no bloc appreciated: appreciations are malformed input, and
  // the deliberation keeps the decision recorded before.
  for (const DecisionContext& away : {absent, excused}) {
    pb::RecordDecisionRequest some = SeedDecision(away.attendance == pb::ATTENDANCE_ABSENT
                                                      ? pb::PROPOSAL_KIND_CANDIDATE_ABSENT
                                                      : pb::PROPOSAL_KIND_CANDIDATE_EXCUSED);
    pb::Deliberation kept;
    absl::Status status = ApplyDecision(some, away, kept);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Fields(status), ElementsAre("appreciations"));
    EXPECT_EQ(kept.appreciations_size(), 0);
    EXPECT_EQ(kept.proposal(), pb::PROPOSAL_KIND_UNSPECIFIED);
  }

  // Present: absent and excused proposals disagree.
  for (pb::ProposalKind p : {pb::PROPOSAL_KIND_CANDIDATE_ABSENT, pb::PROPOSAL_KIND_CANDIDATE_EXCUSED}) {
    EXPECT_THAT(Types(ApplyDecision(SeedDecision(p), SeedContext(), d)),
                ElementsAre("PROPOSAL_DISAGREES_WITH_BLOCS"))
        << pb::ProposalKind_Name(p);
  }
}

TEST(RulesDecisionTest, NothingLeftToEvaluate) {
  DecisionContext c = SeedContext();
  c.blocs_to_evaluate.clear();
  pb::RecordDecisionRequest r;
  r.set_proposal(pb::PROPOSAL_KIND_TOTAL);
  pb::Deliberation d;
  ASSERT_TRUE(ApplyDecision(r, c, d).ok());
  EXPECT_THAT(d.proposed_blocs(), IsEmpty());
  r.set_proposal(pb::PROPOSAL_KIND_PARTIAL);
  EXPECT_THAT(Types(ApplyDecision(r, c, d)), ElementsAre("PROPOSAL_DISAGREES_WITH_BLOCS"));
}

TEST(RulesDecisionTest, OnlyTheBlocsToEvaluateCount) {
  // BC2, BC4, BC5 held: BC1 and BC3 acquired make the whole certification.
  DecisionContext c = SeedContext();
  c.blocs_to_evaluate = kToEvaluate;
  pb::RecordDecisionRequest r;
  *r.add_appreciations() = Appreciation("BC3", 72);
  *r.add_appreciations() = Appreciation("BC1", 88);
  r.set_proposal(pb::PROPOSAL_KIND_TOTAL);
  pb::Deliberation d;
  ASSERT_TRUE(ApplyDecision(r, c, d).ok());
  EXPECT_THAT(d.proposed_blocs(), ElementsAre("BC1", "BC3"));
}

// --- Session report -----------------------------------------------------------------------------

pb::SessionSlot Slot(const std::string& candidacy, pb::Attendance attendance, int presentation, int exchange,
                     int questions) {
  pb::SessionSlot s;
  s.set_candidacy(candidacy);
  s.set_attendance(attendance);
  s.set_presentation_seconds(presentation);
  s.set_exchange_seconds(exchange);
  s.set_question_count(questions);
  return s;
}

std::vector<std::string> Describe(const google::protobuf::RepeatedPtrField<pb::SessionReport::Finding>& findings) {
  std::vector<std::string> out;
  for (const auto& f : findings) out.push_back(f.candidacy() + " " + f.measure() + "=" + std::to_string(f.value()));
  return out;
}

TEST(RulesSessionReportTest, MediansTolerancesAndOverTime) {
  pb::JurySession s;
  s.set_name("sessions/s1");
  *s.add_slots() = Slot("candidacies/a", pb::ATTENDANCE_PRESENT, 500, 480, 8);
  *s.add_slots() = Slot("candidacies/b", pb::ATTENDANCE_PRESENT, 540, 500, 8);
  *s.add_slots() = Slot("candidacies/absent", pb::ATTENDANCE_ABSENT, 5000, 5000, 50);
  *s.add_slots() = Slot("candidacies/c", pb::ATTENDANCE_PRESENT, 560, 520, 9);
  *s.add_slots() = Slot("candidacies/d", pb::ATTENDANCE_PRESENT, 700, 610, 12);
  *s.add_slots() = Slot("candidacies/later", pb::ATTENDANCE_UNSPECIFIED, 0, 0, 0);
  pb::SessionReport report = BuildSessionReport(s);
  EXPECT_EQ(report.session(), "sessions/s1");
  EXPECT_EQ(report.candidates_present(), 4);
  // Medians of the 4 present: 550 s, 510 s, 8.5 questions.
  EXPECT_THAT(Describe(report.findings()),
              ElementsAre("candidacies/d presentation_seconds=700", "candidacies/d question_count=12"));
  EXPECT_DOUBLE_EQ(report.findings(0).median(), 550.0);
  EXPECT_DOUBLE_EQ(report.findings(1).median(), 8.5);
  EXPECT_THAT(Describe(report.over_time()),
              ElementsAre("candidacies/d presentation_seconds=700", "candidacies/d exchange_seconds=610"));
}

TEST(RulesSessionReportTest, ToleranceBoundaryAndOddCount) {
  pb::JurySession s;
  s.set_name("sessions/s2");
  // Median 550 s (odd count), 9 questions; 670 and 430 are exactly 120 s away: not findings.
  *s.add_slots() = Slot("candidacies/a", pb::ATTENDANCE_PRESENT, 430, 600, 7);
  *s.add_slots() = Slot("candidacies/b", pb::ATTENDANCE_PRESENT, 550, 600, 9);
  *s.add_slots() = Slot("candidacies/c", pb::ATTENDANCE_PRESENT, 670, 601, 12);
  pb::SessionReport report = BuildSessionReport(s);
  EXPECT_EQ(report.candidates_present(), 3);
  EXPECT_THAT(Describe(report.findings()), ElementsAre("candidacies/c question_count=12"));
  EXPECT_DOUBLE_EQ(report.findings(0).median(), 9.0);
  // 600 s is the limit, 601 is over it.
  EXPECT_THAT(Describe(report.over_time()),
              ElementsAre("candidacies/c presentation_seconds=670", "candidacies/c exchange_seconds=601"));

  // The session's own tolerances replace the defaults.
  s.set_duration_tolerance_seconds(100);
  s.set_question_count_tolerance(3);
  report = BuildSessionReport(s);
  EXPECT_THAT(Describe(report.findings()),
              ElementsAre("candidacies/a presentation_seconds=430", "candidacies/c presentation_seconds=670"));
}

TEST(RulesSessionReportTest, OverTimeLimitsAreTenMinutesEach) {
  pb::JurySession s;
  s.set_name("sessions/s4");
  *s.add_slots() = Slot("candidacies/a", pb::ATTENDANCE_PRESENT, 600, 600, 5);
  EXPECT_THAT(BuildSessionReport(s).over_time(), IsEmpty());
  s.mutable_slots(0)->set_presentation_seconds(601);
  EXPECT_THAT(Describe(BuildSessionReport(s).over_time()), ElementsAre("candidacies/a presentation_seconds=601"));
  s.mutable_slots(0)->set_presentation_seconds(600);
  s.mutable_slots(0)->set_exchange_seconds(601);
  EXPECT_THAT(Describe(BuildSessionReport(s).over_time()), ElementsAre("candidacies/a exchange_seconds=601"));
  // A single candidate is its own median: no finding.
  EXPECT_THAT(BuildSessionReport(s).findings(), IsEmpty());
}

TEST(RulesSessionReportTest, NoPresentCandidate) {
  pb::JurySession s;
  s.set_name("sessions/s3");
  *s.add_slots() = Slot("candidacies/a", pb::ATTENDANCE_EXCUSED, 900, 900, 0);
  pb::SessionReport report = BuildSessionReport(s);
  EXPECT_EQ(report.session(), "sessions/s3");
  EXPECT_EQ(report.candidates_present(), 0);
  EXPECT_THAT(report.findings(), IsEmpty());
  EXPECT_THAT(report.over_time(), IsEmpty());
}

}  // namespace
}  // namespace parcours::evaluation
