// Unit tests of the référentiel rules that need no storage (referential-svc/src/validation.h):
// field formats reported as INVALID_ARGUMENT violations with their exact request path, the
// completeness rules checked at publication (FAILED_PRECONDITION violation types), and the
// search folding of repository.h.

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "google/rpc/error_details.pb.h"
#include "parcours/referential/v1/referential.pb.h"
#include "platform/errors.h"
#include "referential-svc/src/repository.h"
#include "referential-svc/src/validation.h"

namespace {

namespace rf = ::parcours::referential;
namespace pb = ::parcours::referential::v1;

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

std::string Repeat(const std::string& unit, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += unit;
  return out;
}

void SetDate(google::type::Date* d, int year, int month, int day) {
  d->set_year(year);
  d->set_month(month);
  d->set_day(day);
}

// A well-formed RNCP fiche with every field set.
pb::Certification ValidCertification() {
  pb::Certification c;
  c.set_code("RNCP40344");
  c.set_kind(pb::CERTIFICATION_KIND_RNCP);
  c.set_title("Technicien de maintenance en électricité et automatismes industriels");
  c.set_abbreviation("TP");
  c.set_level(pb::QUALIFICATION_LEVEL_NIV4);
  auto* first = c.add_certifiers();
  first->set_siret("13000349000013");
  first->set_name("MINISTERE DU TRAVAIL");
  first->set_active(true);
  auto* second = c.add_certifiers();
  second->set_siret("");  // unknown SIRET is allowed
  second->set_name("CPNE des industries alimentaires");
  SetDate(c.mutable_registration_date(), 2025, 1, 28);
  SetDate(c.mutable_registration_end_date(), 2030, 1, 28);
  SetDate(c.mutable_issuance_deadline(), 2030, 12, 31);
  c.set_active(true);
  c.add_predecessor_codes("RNCP35000");
  c.add_successor_codes("RNCP41000");
  c.set_registration_type("Enregistrement sur demande");
  auto* nsf = c.add_nsf_codes();
  nsf->set_code("250r");
  nsf->set_label("Maintenance des équipements industriels");
  auto* formacode = c.add_formacodes();
  formacode->set_code("31654");
  formacode->set_label("Maintenance industrielle");
  auto* rome = c.add_rome_codes();
  rome->set_code("I1304");
  rome->set_label("Installation et maintenance d'équipements industriels");
  return c;
}

std::vector<std::string> Fields(const parcours::Violations& v) {
  std::vector<std::string> out;
  for (const parcours::FieldViolation& fv : v.list()) out.push_back(fv.field);
  return out;
}

std::vector<std::string> CertificationViolations(const pb::Certification& c) {
  parcours::Violations v;
  rf::CheckCertification(c, "certification", v);
  for (const parcours::FieldViolation& fv : v.list()) {
    EXPECT_FALSE(fv.description.empty()) << "violation on " << fv.field << " has no description";
  }
  return Fields(v);
}

std::vector<std::string> VersionViolations(const pb::Version& version) {
  parcours::Violations v;
  rf::CheckVersion(version, "version", v);
  for (const parcours::FieldViolation& fv : v.list()) {
    EXPECT_FALSE(fv.description.empty()) << "violation on " << fv.field << " has no description";
  }
  return Fields(v);
}

// --- CheckCertification ------------------------------------------------------------------------

TEST(CheckCertificationTest, ValidCertificationOfEachKindHasNoViolation) {
  EXPECT_THAT(CertificationViolations(ValidCertification()), IsEmpty());

  pb::Certification cqp = ValidCertification();
  cqp.set_code("CQP-TMA.2024_v1");
  cqp.set_kind(pb::CERTIFICATION_KIND_CQP);
  cqp.set_level(pb::QUALIFICATION_LEVEL_NONE);
  EXPECT_THAT(CertificationViolations(cqp), IsEmpty());

  pb::Certification rs = ValidCertification();
  rs.set_code("RS6117");
  rs.set_kind(pb::CERTIFICATION_KIND_RS);
  rs.set_level(pb::QUALIFICATION_LEVEL_NONE);
  EXPECT_THAT(CertificationViolations(rs), IsEmpty());
  rs.set_level(pb::QUALIFICATION_LEVEL_UNSPECIFIED);
  EXPECT_THAT(CertificationViolations(rs), IsEmpty());

  // Only code, kind and title are required.
  pb::Certification minimal;
  minimal.set_code("CQ");
  minimal.set_kind(pb::CERTIFICATION_KIND_CQP);
  minimal.set_title("T");
  EXPECT_THAT(CertificationViolations(minimal), IsEmpty());
}

TEST(CheckCertificationTest, MalformedCodeIsReportedOnCode) {
  for (const std::string& code :
       {std::string(""), std::string("R"), std::string(65, 'A'), std::string("RNCP 40344"),
        std::string("RNCP/40344"), std::string("RNCP40344\n"), std::string("CQPÉlec"),
        std::string("RNCP%1"), std::string("certifications/RNCP1")}) {
    pb::Certification c = ValidCertification();
    c.set_code(code);
    EXPECT_THAT(CertificationViolations(c), ElementsAre("certification.code")) << "code: " << code;
  }
  for (const std::string& code : {std::string("RS"), std::string(64, 'z'), std::string("a-b_c.d09")}) {
    pb::Certification c = ValidCertification();
    c.set_code(code);
    EXPECT_THAT(CertificationViolations(c), IsEmpty()) << "code: " << code;
  }
}

TEST(CheckCertificationTest, KindMustBeAKnownValue) {
  pb::Certification c = ValidCertification();
  c.set_kind(pb::CERTIFICATION_KIND_UNSPECIFIED);
  EXPECT_THAT(CertificationViolations(c), ElementsAre("certification.kind"));
  c.set_kind(static_cast<pb::CertificationKind>(99));
  EXPECT_THAT(CertificationViolations(c), ElementsAre("certification.kind"));
  c.set_kind(static_cast<pb::CertificationKind>(-1));
  EXPECT_THAT(CertificationViolations(c), ElementsAre("certification.kind"));
}

TEST(CheckCertificationTest, LevelMustBeAKnownValue) {
  pb::Certification c = ValidCertification();
  c.set_kind(pb::CERTIFICATION_KIND_CQP);
  for (int level : {2, 9, 99, -3}) {
    c.set_level(static_cast<pb::QualificationLevel>(level));
    EXPECT_THAT(CertificationViolations(c), ElementsAre("certification.level")) << "level " << level;
  }
  for (int level : {0, 1, 3, 8}) {
    c.set_level(static_cast<pb::QualificationLevel>(level));
    EXPECT_THAT(CertificationViolations(c), IsEmpty()) << "CQP level " << level;
  }
}

TEST(CheckCertificationTest, RncpTitleStatesItsLevel) {
  pb::Certification c = ValidCertification();
  c.set_level(pb::QUALIFICATION_LEVEL_UNSPECIFIED);
  EXPECT_THAT(CertificationViolations(c), ElementsAre("certification.level"));
  // NONE: a legacy fiche of the répertoire without level ("REPRISE" in the export).
  for (pb::QualificationLevel level :
       {pb::QUALIFICATION_LEVEL_NONE, pb::QUALIFICATION_LEVEL_NIV3, pb::QUALIFICATION_LEVEL_NIV8}) {
    c.set_level(level);
    EXPECT_THAT(CertificationViolations(c), IsEmpty()) << pb::QualificationLevel_Name(level);
  }
}

TEST(CheckCertificationTest, RsCertificationHasNoLevel) {
  pb::Certification c = ValidCertification();
  c.set_kind(pb::CERTIFICATION_KIND_RS);
  for (pb::QualificationLevel level : {pb::QUALIFICATION_LEVEL_NIV3, pb::QUALIFICATION_LEVEL_NIV5,
                                       pb::QUALIFICATION_LEVEL_NIV8}) {
    c.set_level(level);
    EXPECT_THAT(CertificationViolations(c), ElementsAre("certification.level"))
        << pb::QualificationLevel_Name(level);
  }
}

TEST(CheckCertificationTest, TitleIsRequiredAndCountedInCharactersNotBytes) {
  pb::Certification c = ValidCertification();
  c.set_title("");
  EXPECT_THAT(CertificationViolations(c), ElementsAre("certification.title"));

  // Spaces alone are no title.
  c.set_title(" \t ");
  EXPECT_THAT(CertificationViolations(c), ElementsAre("certification.title"));

  c.set_title(std::string(500, 'a'));
  EXPECT_THAT(CertificationViolations(c), IsEmpty());
  c.set_title(std::string(501, 'a'));
  EXPECT_THAT(CertificationViolations(c), ElementsAre("certification.title"));

  // 500 characters of accented French: 1000+ bytes but within the limit.
  const std::string accented = Repeat("é", 250) + Repeat("à", 100) + Repeat("Œ", 50) + Repeat("ç", 100);
  ASSERT_EQ(accented.size(), 1000u);  // 500 characters, 1000 bytes
  c.set_title(accented);
  EXPECT_THAT(CertificationViolations(c), IsEmpty());
  c.set_title(accented + "É");
  EXPECT_THAT(CertificationViolations(c), ElementsAre("certification.title"));
  // Characters of 3 and 4 bytes count as one too.
  c.set_title(Repeat("…", 499) + "🔧");
  EXPECT_THAT(CertificationViolations(c), IsEmpty());
}

TEST(CheckCertificationTest, OptionalTextsAreLimited) {
  pb::Certification c = ValidCertification();
  c.set_abbreviation(std::string(501, 'x'));
  c.set_registration_type(Repeat("é", 501));
  EXPECT_THAT(CertificationViolations(c),
              UnorderedElementsAre("certification.abbreviation", "certification.registration_type"));
}

TEST(CheckCertificationTest, CertifierSiretAndNameAreReportedWithTheirIndex) {
  for (const std::string& siret : {std::string("1234"), std::string("1300034900001"),
                                   std::string("130003490000134"), std::string("1300034900001A"),
                                   std::string("130 003 490 001")}) {
    pb::Certification c = ValidCertification();
    c.mutable_certifiers(1)->set_siret(siret);
    EXPECT_THAT(CertificationViolations(c), ElementsAre("certification.certifiers[1].siret"))
        << "siret: " << siret;
  }
  pb::Certification c = ValidCertification();
  c.mutable_certifiers(0)->set_name("");
  EXPECT_THAT(CertificationViolations(c), ElementsAre("certification.certifiers[0].name"));
  c.mutable_certifiers(0)->set_name(std::string(256, 'n'));
  EXPECT_THAT(CertificationViolations(c), ElementsAre("certification.certifiers[0].name"));
}

TEST(CheckCertificationTest, CertifierPrincipalIdIsAPrincipalsId) {
  for (const std::string& id : {std::string("CPNE-IA"), std::string("52875765100013"), std::string("a.b_c-d"),
                                std::string(128, 'x')}) {
    pb::Certification c = ValidCertification();
    c.mutable_certifiers(0)->set_principal_id(id);
    EXPECT_THAT(CertificationViolations(c), IsEmpty()) << id;
  }
  for (const std::string& id : {std::string("CPNE IA"), std::string("certifier:CPNE-IA"), std::string("é"),
                                std::string(129, 'x')}) {
    pb::Certification c = ValidCertification();
    c.mutable_certifiers(1)->set_principal_id(id);
    EXPECT_THAT(CertificationViolations(c), ElementsAre("certification.certifiers[1].principal_id")) << id;
  }
}

TEST(CheckCertificationTest, CertifierNameWithSurroundingSpacesIsRefused) {
  // MySQL would take "OPCO 2i" and "OPCO 2i " for the same key; SQLite would not.
  for (const char* name : {"OPCO 2i ", " OPCO 2i", "OPCO 2i\t"}) {
    pb::Certification c = ValidCertification();
    c.mutable_certifiers(1)->set_name(name);
    EXPECT_THAT(CertificationViolations(c), ElementsAre("certification.certifiers[1].name")) << name;
  }
}

TEST(CheckCertificationTest, TooManyItemsIsReportedOnTheList) {
  pb::Certification c = ValidCertification();
  while (c.certifiers_size() <= rf::kMaxItems) c.add_certifiers()->set_name("Certificateur");
  EXPECT_THAT(CertificationViolations(c), ElementsAre("certification.certifiers"));

  pb::Certification codes = ValidCertification();
  while (codes.predecessor_codes_size() <= rf::kMaxItems) codes.add_predecessor_codes("RNCP1");
  EXPECT_THAT(CertificationViolations(codes), ElementsAre("certification.predecessor_codes"));
}

TEST(CheckCertificationTest, InvalidCalendarDatesAreReportedOnTheirField) {
  struct Case {
    int year, month, day;
  };
  for (Case bad : {Case{2023, 2, 29}, Case{2024, 2, 30}, Case{2024, 4, 31}, Case{2024, 13, 1},
                   Case{2024, 0, 10}, Case{2024, 6, 0}, Case{1899, 12, 31}, Case{2024, 0, 0},
                   Case{0, 1, 1}, Case{1900, 2, 29}}) {
    pb::Certification c = ValidCertification();
    SetDate(c.mutable_issuance_deadline(), bad.year, bad.month, bad.day);
    EXPECT_THAT(CertificationViolations(c), ElementsAre("certification.issuance_deadline"))
        << bad.year << "-" << bad.month << "-" << bad.day;
  }
  pb::Certification c = ValidCertification();
  SetDate(c.mutable_registration_date(), 2024, 2, 29);  // leap year
  SetDate(c.mutable_registration_end_date(), 2000, 2, 29);
  EXPECT_THAT(CertificationViolations(c), ElementsAre("certification.registration_end_date"));
  SetDate(c.mutable_registration_end_date(), 2024, 2, 29);  // same day is fine
  EXPECT_THAT(CertificationViolations(c), IsEmpty());
  c.clear_issuance_deadline();  // unset dates are fine
  c.mutable_registration_date()->Clear();
  EXPECT_THAT(CertificationViolations(c), IsEmpty());
}

TEST(CheckCertificationTest, RegistrationEndBeforeStartIsReportedOnTheEndDate) {
  pb::Certification c = ValidCertification();
  SetDate(c.mutable_registration_date(), 2025, 1, 28);
  SetDate(c.mutable_registration_end_date(), 2025, 1, 27);
  EXPECT_THAT(CertificationViolations(c), ElementsAre("certification.registration_end_date"));
  SetDate(c.mutable_registration_end_date(), 2024, 12, 31);
  EXPECT_THAT(CertificationViolations(c), ElementsAre("certification.registration_end_date"));
}

TEST(CheckCertificationTest, CodeListsAreReportedWithTheirIndex) {
  pb::Certification c = ValidCertification();
  c.add_predecessor_codes("RNCP 1");
  c.add_successor_codes("RS6117");
  c.add_successor_codes("");
  c.mutable_nsf_codes(0)->set_code("");
  c.add_formacodes()->set_label("sans code");
  c.mutable_rome_codes(0)->set_label(std::string(501, 'r'));
  EXPECT_THAT(CertificationViolations(c),
              UnorderedElementsAre("certification.predecessor_codes[1]", "certification.successor_codes[2]",
                                   "certification.nsf_codes[0].code", "certification.formacodes[1].code",
                                   "certification.rome_codes[0].label"));
}

TEST(CheckCertificationTest, EveryViolationIsReportedAtOnceUnderThePrefix) {
  pb::Certification c = ValidCertification();
  c.set_code("x");
  c.set_title("");
  c.set_kind(pb::CERTIFICATION_KIND_RS);  // RS with NIV4
  c.mutable_certifiers(1)->set_siret("123");
  SetDate(c.mutable_registration_end_date(), 2024, 1, 1);
  parcours::Violations v;
  rf::CheckCertification(c, "document.certification", v);
  EXPECT_THAT(Fields(v), UnorderedElementsAre("document.certification.code", "document.certification.title",
                                              "document.certification.level",
                                              "document.certification.certifiers[1].siret",
                                              "document.certification.registration_end_date"));

  // The same violations as the INVALID_ARGUMENT a client receives.
  absl::Status status = v.ToStatus();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  absl::optional<absl::Cord> payload = status.GetPayload("type.googleapis.com/google.rpc.BadRequest");
  ASSERT_TRUE(payload.has_value());
  google::rpc::BadRequest bad_request;
  ASSERT_TRUE(bad_request.ParseFromString(std::string(*payload)));
  std::vector<std::string> fields;
  for (const auto& fv : bad_request.field_violations()) fields.push_back(fv.field());
  EXPECT_EQ(fields, Fields(v));
}

// --- CheckVersion ------------------------------------------------------------------------------

pb::AppreciationScale Scale(pb::ScaleKind kind, int levels) {
  pb::AppreciationScale scale;
  scale.set_kind(kind);
  scale.set_title(kind == pb::SCALE_KIND_DOSSIER ? "Lors d'analyse du dossier déclaratif"
                                                 : "Lors de l'entretien avec le jury");
  for (int rank = 1; rank <= levels; ++rank) {
    auto* level = scale.add_levels();
    level->set_rank(rank);
    level->set_description("Niveau " + std::to_string(rank) + " : réponse développée");
  }
  return scale;
}

// A complete CQP version that may be published: 2 blocs of 2 compétences with criteria, both
// scales, validation rules and a correspondence.
pb::Version CompleteVersion() {
  pb::Version v;
  v.set_description("Référentiel initial");
  for (int b = 1; b <= 2; ++b) {
    pb::Bloc* bloc = v.add_blocs();
    bloc->set_code("BC" + std::to_string(b));
    bloc->set_title(b == 1 ? "Organiser des interventions de maintenance" : "Réaliser des diagnostics");
    bloc->set_short_label("Bloc " + std::to_string(b));
    for (int c = 1; c <= 2; ++c) {
      pb::Competence* comp = bloc->add_competences();
      comp->set_code("C" + std::to_string(b) + "." + std::to_string(c));
      comp->set_text("Élaborer un plan d'action");
      comp->set_criteria_heading("Le candidat organise son activité à partir des informations fournies :");
      comp->add_criteria()->set_text("Les informations sont recueillies");
      comp->add_criteria()->set_text("Les priorités sont identifiées");
    }
  }
  *v.add_scales() = Scale(pb::SCALE_KIND_DOSSIER, 4);
  *v.add_scales() = Scale(pb::SCALE_KIND_INTERVIEW, 4);
  pb::ValidationRules* rules = v.mutable_validation_rules();
  rules->set_bloc_threshold_percent(70);
  rules->set_partial_validation_allowed(true);
  rules->set_acquired_bloc_validity_months(0);
  rules->mutable_jury()->set_min_members(2);
  rules->mutable_jury()->set_min_qualified_members(1);
  rules->mutable_jury()->add_required_colleges(pb::COLLEGE_EMPLOYER);
  rules->mutable_jury()->add_required_colleges(pb::COLLEGE_EMPLOYEE);
  pb::BlocCorrespondence* corr = v.add_correspondences();
  corr->set_source_bloc_code("BC1");
  corr->set_target_certification_code("RNCP40344");
  corr->set_target_bloc_code("RNCP40344BC01");
  return v;
}

TEST(CheckVersionTest, CompleteAndEmptyVersionsAreWellFormed) {
  EXPECT_THAT(VersionViolations(CompleteVersion()), IsEmpty());
  // A draft may be incomplete.
  EXPECT_THAT(VersionViolations(pb::Version()), IsEmpty());
}

TEST(CheckVersionTest, TreeFieldsAreReportedWithTheirPath) {
  pb::Version v = CompleteVersion();
  v.mutable_blocs(0)->mutable_competences(1)->set_text("");
  EXPECT_THAT(VersionViolations(v), ElementsAre("version.blocs[0].competences[1].text"));

  v = CompleteVersion();
  v.mutable_blocs(1)->set_code("");
  v.mutable_blocs(0)->set_title("");
  v.mutable_blocs(1)->mutable_competences(0)->set_code("");
  v.mutable_blocs(1)->mutable_competences(1)->mutable_criteria(1)->set_text("");
  v.mutable_blocs(0)->set_short_label(std::string(501, 's'));
  EXPECT_THAT(VersionViolations(v),
              UnorderedElementsAre("version.blocs[1].code", "version.blocs[0].title",
                                   "version.blocs[1].competences[0].code",
                                   "version.blocs[1].competences[1].criteria[1].text",
                                   "version.blocs[0].short_label"));
}

TEST(CheckVersionTest, LongTextsAreCountedInCharacters) {
  pb::Version v = CompleteVersion();
  v.mutable_blocs(0)->mutable_competences(0)->set_text(Repeat("é", rf::kMaxTextChars));
  v.set_description(Repeat("à", rf::kMaxTextChars));
  EXPECT_THAT(VersionViolations(v), IsEmpty());
  v.mutable_blocs(0)->mutable_competences(0)->set_text(Repeat("é", rf::kMaxTextChars + 1));
  v.set_description(std::string(rf::kMaxTextChars + 1, 'd'));
  v.mutable_blocs(1)->set_competences_text(std::string(rf::kMaxLongTextChars + 1, 'c'));
  EXPECT_THAT(VersionViolations(v),
              UnorderedElementsAre("version.blocs[0].competences[0].text", "version.description",
                                   "version.blocs[1].competences_text"));
}

TEST(CheckVersionTest, ThresholdMustBeAPercentage) {
  pb::Version v = CompleteVersion();
  for (int bad : {101, -1, 1000}) {
    v.mutable_validation_rules()->set_bloc_threshold_percent(bad);
    EXPECT_THAT(VersionViolations(v), ElementsAre("version.validation_rules.bloc_threshold_percent"))
        << bad;
  }
  for (int good : {0, 100}) {
    v.mutable_validation_rules()->set_bloc_threshold_percent(good);
    EXPECT_THAT(VersionViolations(v), IsEmpty()) << good;
  }
}

TEST(CheckVersionTest, ValidityAndJuryCountsMustNotBeNegative) {
  pb::Version v = CompleteVersion();
  v.mutable_validation_rules()->set_acquired_bloc_validity_months(-1);
  EXPECT_THAT(VersionViolations(v), ElementsAre("version.validation_rules.acquired_bloc_validity_months"));
  v.mutable_validation_rules()->set_acquired_bloc_validity_months(60);
  EXPECT_THAT(VersionViolations(v), IsEmpty());
  // Bounded: a ledger expiry is computed from it (3,000,000 months wrapped to a date in the past).
  v.mutable_validation_rules()->set_acquired_bloc_validity_months(3000000);
  EXPECT_THAT(VersionViolations(v), ElementsAre("version.validation_rules.acquired_bloc_validity_months"));
  v.mutable_validation_rules()->set_acquired_bloc_validity_months(rf::kMaxValidityMonths);
  EXPECT_THAT(VersionViolations(v), IsEmpty());
  v.mutable_validation_rules()->set_acquired_bloc_validity_months(rf::kMaxValidityMonths + 1);
  EXPECT_THAT(VersionViolations(v), ElementsAre("version.validation_rules.acquired_bloc_validity_months"));
  v.mutable_validation_rules()->set_acquired_bloc_validity_months(60);

  v.mutable_validation_rules()->mutable_jury()->set_min_members(-2);
  v.mutable_validation_rules()->mutable_jury()->set_min_qualified_members(-1);
  EXPECT_THAT(VersionViolations(v), UnorderedElementsAre("version.validation_rules.jury.min_members",
                                                         "version.validation_rules.jury.min_qualified_members"));
}

TEST(CheckVersionTest, RequiredCollegesMustBeKnown) {
  pb::Version v = CompleteVersion();
  v.mutable_validation_rules()->mutable_jury()->add_required_colleges(pb::COLLEGE_UNSPECIFIED);
  EXPECT_THAT(VersionViolations(v), ElementsAre("version.validation_rules.jury.required_colleges[2]"));
  v.mutable_validation_rules()->mutable_jury()->set_required_colleges(0, static_cast<pb::College>(99));
  EXPECT_THAT(VersionViolations(v),
              ElementsAre("version.validation_rules.jury.required_colleges[0]",
                          "version.validation_rules.jury.required_colleges[2]"));
}

TEST(CheckVersionTest, ScalesAreReportedWithTheirPath) {
  pb::Version v = CompleteVersion();
  v.mutable_scales(0)->set_kind(pb::SCALE_KIND_UNSPECIFIED);
  v.mutable_scales(1)->mutable_levels(2)->set_description("");
  EXPECT_THAT(VersionViolations(v),
              UnorderedElementsAre("version.scales[0].kind", "version.scales[1].levels[2].description"));
  v = CompleteVersion();
  v.mutable_scales(1)->set_kind(static_cast<pb::ScaleKind>(7));
  EXPECT_THAT(VersionViolations(v), ElementsAre("version.scales[1].kind"));
}

TEST(CheckVersionTest, CorrespondencesAreReportedWithTheirPath) {
  pb::Version v = CompleteVersion();
  pb::BlocCorrespondence* second = v.add_correspondences();
  second->set_source_bloc_code("");
  second->set_target_certification_code("RNCP 40344");
  second->set_target_bloc_code("");
  EXPECT_THAT(VersionViolations(v), UnorderedElementsAre("version.correspondences[1].source_bloc_code",
                                                         "version.correspondences[1].target_certification_code",
                                                         "version.correspondences[1].target_bloc_code"));
}

TEST(CheckVersionTest, TooManyBlocsIsReportedOnTheList) {
  pb::Version v = CompleteVersion();
  while (v.blocs_size() <= rf::kMaxItems) *v.add_blocs() = v.blocs(0);
  EXPECT_THAT(VersionViolations(v), ElementsAre("version.blocs"));
}

// --- PublicationViolations ---------------------------------------------------------------------

constexpr char kOwnCode[] = "CQP-TMA";
constexpr char kSubject[] = "certifications/CQP-TMA/versions/1";

std::vector<std::string> Types(const pb::Version& v, pb::CertificationKind kind = pb::CERTIFICATION_KIND_CQP) {
  std::vector<std::string> out;
  for (const parcours::PreconditionViolation& pv : rf::PublicationViolations(v, kind, kSubject)) {
    EXPECT_EQ(pv.subject.rfind(kSubject, 0), 0u) << pv.type << " subject " << pv.subject;
    EXPECT_FALSE(pv.description.empty()) << pv.type;
    out.push_back(pv.type);
  }
  return out;
}

TEST(PublicationViolationsTest, CompleteVersionMayBePublished) {
  for (pb::CertificationKind kind : {pb::CERTIFICATION_KIND_CQP, pb::CERTIFICATION_KIND_RNCP}) {
    EXPECT_THAT(Types(CompleteVersion(), kind), IsEmpty()) << pb::CertificationKind_Name(kind);
  }
  // An RS version: without blocs (RsCertificationNeedsNoBlocs).
}

TEST(PublicationViolationsTest, NoBlocs) {
  pb::Version v = CompleteVersion();
  v.clear_blocs();
  v.clear_correspondences();
  EXPECT_THAT(Types(v), ElementsAre("NO_BLOCS"));
  EXPECT_THAT(Types(v, pb::CERTIFICATION_KIND_RNCP), ElementsAre("NO_BLOCS"));
}

TEST(PublicationViolationsTest, BlocWithoutCompetencesNamesTheBloc) {
  pb::Version v = CompleteVersion();
  v.mutable_blocs(1)->clear_competences();
  std::vector<parcours::PreconditionViolation> got =
      rf::PublicationViolations(v, pb::CERTIFICATION_KIND_CQP, kSubject);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, "BLOC_WITHOUT_COMPETENCES");
  EXPECT_THAT(got[0].subject, ::testing::HasSubstr("BC2"));
}

TEST(PublicationViolationsTest, DuplicateBlocCode) {
  pb::Version v = CompleteVersion();
  v.mutable_blocs(1)->set_code("BC1");
  for (auto& comp : *v.mutable_blocs(1)->mutable_competences()) comp.set_code(comp.code() + "b");
  EXPECT_THAT(Types(v), ElementsAre("DUPLICATE_BLOC_CODE"));
}

TEST(PublicationViolationsTest, DuplicateCompetenceCodeAcrossBlocs) {
  pb::Version v = CompleteVersion();
  v.mutable_blocs(1)->mutable_competences(0)->set_code("C1.2");
  EXPECT_THAT(Types(v), ElementsAre("DUPLICATE_COMPETENCE_CODE"));
  v = CompleteVersion();
  v.mutable_blocs(0)->mutable_competences(1)->set_code("C1.1");
  EXPECT_THAT(Types(v), ElementsAre("DUPLICATE_COMPETENCE_CODE"));
}

TEST(PublicationViolationsTest, ScaleMissing) {
  pb::Version v = CompleteVersion();
  v.mutable_scales()->RemoveLast();  // the INTERVIEW scale
  std::vector<parcours::PreconditionViolation> got =
      rf::PublicationViolations(v, pb::CERTIFICATION_KIND_CQP, kSubject);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, "SCALE_MISSING");
  EXPECT_THAT(got[0].subject, ::testing::HasSubstr("INTERVIEW"));
  v.clear_scales();
  EXPECT_THAT(Types(v), ElementsAre("SCALE_MISSING", "SCALE_MISSING"));
}

TEST(PublicationViolationsTest, ScaleNotOrdered) {
  pb::Version v = CompleteVersion();
  v.mutable_scales(0)->mutable_levels(0)->set_rank(2);
  v.mutable_scales(0)->mutable_levels(1)->set_rank(1);
  EXPECT_THAT(Types(v), ElementsAre("SCALE_NOT_ORDERED"));
  v = CompleteVersion();
  v.mutable_scales(1)->mutable_levels(3)->set_rank(5);  // gap
  EXPECT_THAT(Types(v), ElementsAre("SCALE_NOT_ORDERED"));
  v = CompleteVersion();
  for (auto& level : *v.mutable_scales(1)->mutable_levels()) level.set_rank(level.rank() - 1);  // 0-based
  EXPECT_THAT(Types(v), ElementsAre("SCALE_NOT_ORDERED"));
}

TEST(PublicationViolationsTest, ScaleTooShort) {
  pb::Version v = CompleteVersion();
  *v.mutable_scales(1) = Scale(pb::SCALE_KIND_INTERVIEW, 1);
  EXPECT_THAT(Types(v), ElementsAre("SCALE_TOO_SHORT"));
  *v.mutable_scales(1) = Scale(pb::SCALE_KIND_INTERVIEW, 2);
  EXPECT_THAT(Types(v), IsEmpty());
}

TEST(PublicationViolationsTest, DuplicateScale) {
  pb::Version v = CompleteVersion();
  *v.add_scales() = Scale(pb::SCALE_KIND_DOSSIER, 3);
  EXPECT_THAT(Types(v), ElementsAre("DUPLICATE_SCALE"));
}

TEST(PublicationViolationsTest, NoValidationRules) {
  pb::Version v = CompleteVersion();
  v.clear_validation_rules();
  EXPECT_THAT(Types(v), ElementsAre("NO_VALIDATION_RULES"));
}

TEST(PublicationViolationsTest, JuryTooSmall) {
  pb::Version v = CompleteVersion();
  v.mutable_validation_rules()->mutable_jury()->set_min_members(1);
  EXPECT_THAT(Types(v), ElementsAre("JURY_TOO_SMALL"));
  v.mutable_validation_rules()->mutable_jury()->set_min_members(3);
  EXPECT_THAT(Types(v), IsEmpty());
}

TEST(PublicationViolationsTest, JuryQualifiedMembers) {
  pb::Version v = CompleteVersion();
  v.mutable_validation_rules()->mutable_jury()->set_min_qualified_members(0);
  EXPECT_THAT(Types(v), ElementsAre("JURY_QUALIFIED_MEMBERS"));
  v.mutable_validation_rules()->mutable_jury()->set_min_qualified_members(3);  // > min_members (2)
  EXPECT_THAT(Types(v), ElementsAre("JURY_QUALIFIED_MEMBERS"));
  v.mutable_validation_rules()->mutable_jury()->set_min_qualified_members(2);
  EXPECT_THAT(Types(v), IsEmpty());
}

TEST(PublicationViolationsTest, CorrespondenceUnknownBloc) {
  pb::Version v = CompleteVersion();
  v.mutable_correspondences(0)->set_source_bloc_code("BC9");
  std::vector<parcours::PreconditionViolation> got =
      rf::PublicationViolations(v, pb::CERTIFICATION_KIND_CQP, kSubject);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, "CORRESPONDENCE_UNKNOWN_BLOC");
  EXPECT_THAT(got[0].subject, ::testing::HasSubstr("BC9"));
}

// A correspondence maps onto another fiche, once: onto a bloc of the same certification it would
// let one acquired bloc stand for two.
TEST(PublicationViolationsTest, CorrespondenceToItselfOrTwiceIsRefused) {
  pb::Version v = CompleteVersion();
  ASSERT_THAT(Types(v), IsEmpty());
  pb::BlocCorrespondence self = v.correspondences(0);
  self.set_target_certification_code(std::string(kOwnCode));
  *v.add_correspondences() = self;
  EXPECT_THAT(Types(v), ElementsAre("CORRESPONDENCE_TO_ITSELF"));
  v.mutable_correspondences()->RemoveLast();
  *v.add_correspondences() = v.correspondences(0);
  EXPECT_THAT(Types(v), ElementsAre("DUPLICATE_CORRESPONDENCE"));
}

TEST(PublicationViolationsTest, EveryBrokenRuleIsListed) {
  pb::Version v = CompleteVersion();
  v.mutable_blocs(1)->set_code("BC1");                              // DUPLICATE_BLOC_CODE
  v.mutable_blocs(1)->mutable_competences(0)->set_code("C1.1");     // DUPLICATE_COMPETENCE_CODE
  pb::Bloc* empty = v.add_blocs();                                  // BLOC_WITHOUT_COMPETENCES
  empty->set_code("BC3");
  empty->set_title("Mener des projets d'amélioration continue");
  *v.mutable_scales(0) = Scale(pb::SCALE_KIND_INTERVIEW, 1);        // DUPLICATE_SCALE, SCALE_TOO_SHORT,
                                                                    // SCALE_MISSING (DOSSIER)
  v.mutable_scales(1)->mutable_levels(0)->set_rank(4);              // SCALE_NOT_ORDERED
  v.mutable_validation_rules()->mutable_jury()->set_min_members(1);            // JURY_TOO_SMALL
  v.mutable_validation_rules()->mutable_jury()->set_min_qualified_members(0);  // JURY_QUALIFIED_MEMBERS
  v.mutable_correspondences(0)->set_source_bloc_code("BC7");        // CORRESPONDENCE_UNKNOWN_BLOC
  EXPECT_THAT(Types(v), UnorderedElementsAre("DUPLICATE_BLOC_CODE", "DUPLICATE_COMPETENCE_CODE",
                                             "BLOC_WITHOUT_COMPETENCES", "DUPLICATE_SCALE", "SCALE_TOO_SHORT",
                                             "SCALE_NOT_ORDERED", "SCALE_MISSING", "JURY_TOO_SMALL",
                                             "JURY_QUALIFIED_MEMBERS", "CORRESPONDENCE_UNKNOWN_BLOC"));

  pb::Version empty_version;
  EXPECT_THAT(Types(empty_version),
              UnorderedElementsAre("NO_BLOCS", "SCALE_MISSING", "SCALE_MISSING", "NO_VALIDATION_RULES"));

  // As the FAILED_PRECONDITION a client receives: every violation in the PreconditionFailure.
  absl::Status status = parcours::FailedPrecondition(
      rf::PublicationViolations(empty_version, pb::CERTIFICATION_KIND_RNCP, kSubject));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  absl::optional<absl::Cord> payload =
      status.GetPayload("type.googleapis.com/google.rpc.PreconditionFailure");
  ASSERT_TRUE(payload.has_value());
  google::rpc::PreconditionFailure failure;
  ASSERT_TRUE(failure.ParseFromString(std::string(*payload)));
  std::vector<std::string> types;
  for (const auto& pv : failure.violations()) types.push_back(pv.type());
  EXPECT_THAT(types, UnorderedElementsAre("NO_BLOCS", "SCALE_MISSING", "SCALE_MISSING", "NO_VALIDATION_RULES"));
}

TEST(PublicationViolationsTest, RsCertificationNeedsNoBlocs) {
  pb::Version rs;
  rs.set_description("Certification RS sans blocs");
  EXPECT_THAT(Types(rs, pb::CERTIFICATION_KIND_RS), IsEmpty());
  // The same empty version is incomplete for a CQP or an RNCP title.
  EXPECT_THAT(Types(rs, pb::CERTIFICATION_KIND_CQP), Contains("NO_BLOCS"));
  EXPECT_THAT(Types(rs, pb::CERTIFICATION_KIND_RNCP), Contains("NO_BLOCS"));
  // An RS version with blocs is refused (judged whole, it has none), its codes checked too.
  pb::Version with_blocs = CompleteVersion();
  with_blocs.mutable_blocs(1)->set_code("BC1");
  EXPECT_THAT(Types(with_blocs, pb::CERTIFICATION_KIND_RS), Contains("DUPLICATE_BLOC_CODE"));
  EXPECT_THAT(Types(CompleteVersion(), pb::CERTIFICATION_KIND_RS), ElementsAre("RS_HAS_BLOCS"));
}

// A threshold of 0 would grant every bloc whatever the jury's appreciation.
TEST(PublicationViolationsTest, BlocThresholdIsAtLeastOnePercent) {
  pb::Version v = CompleteVersion();
  v.mutable_validation_rules()->set_bloc_threshold_percent(0);
  EXPECT_THAT(Types(v, pb::CERTIFICATION_KIND_CQP), ElementsAre("THRESHOLD_OUT_OF_RANGE"));
  v.mutable_validation_rules()->set_bloc_threshold_percent(1);
  EXPECT_THAT(Types(v, pb::CERTIFICATION_KIND_CQP), IsEmpty());
}

// --- FoldForSearch -----------------------------------------------------------------------------

TEST(FoldForSearchTest, LowerCasesAsciiAndFrenchCapitals) {
  EXPECT_EQ(rf::FoldForSearch("ÉLECTRICITÉ"), "électricité");
  EXPECT_EQ(rf::FoldForSearch("Technicien MAINTENANCE"), "technicien maintenance");
  EXPECT_EQ(rf::FoldForSearch("ÀÂÄÇÈÉÊËÎÏÔÖÙÛÜ"), "àâäçèéêëîïôöùûü");
  EXPECT_EQ(rf::FoldForSearch("ŒUVRE"), "œuvre");
  EXPECT_EQ(rf::FoldForSearch("MAÎTRISE D'ŒUVRE"), "maîtrise d'œuvre");
}

TEST(FoldForSearchTest, LeavesEverythingElseUnchanged) {
  const std::string lower = "électricité, œuvre à 100 % — 2 × 3 straße…";
  EXPECT_EQ(rf::FoldForSearch(lower), lower);
  EXPECT_EQ(rf::FoldForSearch("2 × 3"), "2 × 3");  // × (U+00D7) is not a letter
  EXPECT_EQ(rf::FoldForSearch("ß"), "ß");
  EXPECT_EQ(rf::FoldForSearch("€ 🔧 n°"), "€ 🔧 n°");
  EXPECT_EQ(rf::FoldForSearch(""), "");
  // A truncated sequence at the end is kept as is.
  EXPECT_EQ(rf::FoldForSearch("AB\xC3"), "ab\xC3");
}

TEST(FoldForSearchTest, FoldingIsIdempotentAndMatchesAcrossCase) {
  const std::string title = "Conducteur de Ligne en ÉLECTRICITÉ Industrielle";
  EXPECT_EQ(rf::FoldForSearch(rf::FoldForSearch(title)), rf::FoldForSearch(title));
  EXPECT_NE(rf::FoldForSearch(title).find(rf::FoldForSearch("électricité industrielle")), std::string::npos);
  EXPECT_NE(rf::FoldForSearch(title).find(rf::FoldForSearch("ÉlecTRICITÉ")), std::string::npos);
}

}  // namespace
