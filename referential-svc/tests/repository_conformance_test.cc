// Conformance of the referential Repository contract (referential-svc/src/repository.h) on both
// storage backends: the same suite runs on a fresh SQLite file and on a fresh MariaDB database,
// each migrated with the embedded schema.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/rpc/error_details.pb.h"
#include "parcours/referential/v1/referential.pb.h"
#include "platform/aip.h"
#include "platform/db/db.h"
#include "platform/errors.h"
#include "platform/testing/mariadb.h"
#include "platform/proto_time.h"
#include "platform/testing/status_macros.h"
#include "referential-svc/src/app.h"
#include "referential-svc/src/repository.h"

namespace {

namespace db = ::parcours::db;
namespace rf = ::parcours::referential;
namespace pb = ::parcours::referential::v1;

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;


// The repository never reads a clock: every write gets `now` from the caller.
const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2026, 3, 2, 9, 30, 0), absl::UTCTimeZone()) + absl::Microseconds(123456);
const absl::Time kLater = kNow + absl::Hours(1) + absl::Microseconds(7);

absl::Time TimeOf(const google::protobuf::Timestamp& ts) { return parcours::FromTimestamp(ts); }

::testing::AssertionResult ProtoEqual(const google::protobuf::Message& expected,
                                      const google::protobuf::Message& actual) {
  std::string diff;
  MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&diff);
  if (differencer.Compare(expected, actual)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected -> actual differences:\n" << diff;
}

// The version counter behind an etag (what the service passes as expected_version).
int64_t EtagVersion(const std::string& etag) {
  absl::StatusOr<std::optional<int64_t>> parsed = parcours::aip::ParseEtag(etag, "etag");
  EXPECT_TRUE(parsed.ok() && parsed->has_value()) << "etag " << etag << " is not a stored version";
  return parsed.ok() && parsed->has_value() ? **parsed : -1;
}

void SetDate(google::type::Date* d, int year, int month, int day) {
  d->set_year(year);
  d->set_month(month);
  d->set_day(day);
}

// Every field a client may set, with French UTF-8 text (2-, 3- and 4-byte characters).
pb::Certification FullCertification(const std::string& code) {
  pb::Certification c;
  c.set_code(code);
  c.set_kind(pb::CERTIFICATION_KIND_RNCP);
  c.set_title("Élaborer… la maîtrise d’œuvre des installations électriques « ÉTÉ » 🔧");
  c.set_abbreviation("BTS");
  c.set_level(pb::QUALIFICATION_LEVEL_NIV5);
  auto* ministry = c.add_certifiers();
  ministry->set_siret("13000349000013");
  ministry->set_name("MINISTÈRE DU TRAVAIL");
  ministry->set_active(true);
  auto* cpne = c.add_certifiers();
  cpne->set_name("CPNE de l'industrie alimentaire");
  cpne->set_active(false);
  SetDate(c.mutable_registration_date(), 2025, 1, 28);
  SetDate(c.mutable_registration_end_date(), 2030, 1, 28);
  SetDate(c.mutable_issuance_deadline(), 2030, 12, 31);
  c.set_active(true);
  c.add_predecessor_codes("RNCP35000");
  c.add_predecessor_codes("RNCP36000");
  c.add_successor_codes("RNCP41000");
  c.set_registration_type("Enregistrement sur demande");
  auto* nsf = c.add_nsf_codes();
  nsf->set_code("250r");
  nsf->set_label("Maintenance des équipements industriels");
  auto* f1 = c.add_formacodes();
  f1->set_code("31654");
  f1->set_label("Maintenance industrielle");
  auto* f2 = c.add_formacodes();
  f2->set_code("24054");
  f2->set_label("Électricité");
  auto* rome = c.add_rome_codes();
  rome->set_code("I1304");
  rome->set_label("Installation et maintenance d'équipements industriels et d'exploitation");
  return c;
}

pb::Certification Simple(const std::string& code, pb::CertificationKind kind, pb::QualificationLevel level,
                         bool active, const std::string& title, const std::vector<std::string>& certifiers) {
  pb::Certification c;
  c.set_code(code);
  c.set_kind(kind);
  c.set_level(level);
  c.set_active(active);
  c.set_title(title);
  for (const std::string& name : certifiers) c.add_certifiers()->set_name(name);
  return c;
}

pb::Certification WithoutOutputs(pb::Certification c) {
  rf::ClearOutputFields(c);
  return c;
}

pb::Version WithoutOutputs(pb::Version v) {
  rf::ClearOutputFields(v);
  return v;
}

pb::AppreciationScale Scale(pb::ScaleKind kind, const std::string& title, const std::vector<std::string>& levels) {
  pb::AppreciationScale scale;
  scale.set_kind(kind);
  scale.set_title(title);
  for (size_t i = 0; i < levels.size(); ++i) {
    auto* level = scale.add_levels();
    level->set_rank(static_cast<int32_t>(i + 1));
    level->set_description(levels[i]);
  }
  return scale;
}

// A whole tree: blocs, compétences, criteria, scales, rules, correspondences.
pb::Version FullVersion(const std::string& description) {
  pb::Version v;
  v.set_description(description);
  pb::Bloc* bc1 = v.add_blocs();
  bc1->set_code("BC1");
  bc1->set_title("Organiser des interventions de maintenance en tenant compte des contraintes de production");
  bc1->set_short_label("Organiser des interventions de maintenance");
  bc1->set_competences_text("Élaborer un planning d’interventions…\nCoordonner les équipes");
  bc1->set_assessment_methods("Mise en situation professionnelle — entretien avec le jury");
  for (int c = 1; c <= 2; ++c) {
    pb::Competence* comp = bc1->add_competences();
    comp->set_code(absl::StrCat("C1.", c));
    comp->set_text(c == 1 ? "Élaborer un plan d’action de maintenance" : "Coordonner l’intervention");
    comp->set_criteria_heading("Le candidat organise son activité à partir des informations fournies :");
    comp->add_criteria()->set_text("Les informations nécessaires sont recueillies");
    comp->add_criteria()->set_text("Les priorités sont identifiées « au regard de la production »");
  }
  pb::Bloc* bc2 = v.add_blocs();
  bc2->set_code("BC2");
  bc2->set_title("Réaliser des diagnostics");
  pb::Competence* c21 = bc2->add_competences();
  c21->set_code("C2.1");
  c21->set_text("Diagnostiquer une défaillance");
  *v.add_scales() = Scale(pb::SCALE_KIND_DOSSIER, "Lors d'analyse du dossier déclaratif",
                          {"Peu compréhensible et incomplète", "Compréhensible mais incomplète",
                           "Claire et complète", "Claire et développée, dépasse le cadre"});
  *v.add_scales() = Scale(pb::SCALE_KIND_INTERVIEW, "Lors de l'entretien",
                          {"En difficulté, ne voit pas de quoi il s'agit", "Répond partiellement",
                           "Répond avec précision", "Apporte de nouveaux éclairages"});
  pb::ValidationRules* rules = v.mutable_validation_rules();
  rules->set_bloc_threshold_percent(70);
  rules->set_partial_validation_allowed(true);
  rules->set_acquired_bloc_validity_months(60);
  pb::JuryCompositionRule* jury = rules->mutable_jury();
  jury->set_min_members(3);
  jury->set_min_qualified_members(1);
  jury->add_required_colleges(pb::COLLEGE_EMPLOYER);
  jury->add_required_colleges(pb::COLLEGE_EMPLOYEE);
  jury->set_president_required(true);
  jury->set_gender_balance_required(true);
  jury->set_description("Jury paritaire : un représentant employeur, un représentant salarié");
  pb::BlocCorrespondence* corr = v.add_correspondences();
  corr->set_source_bloc_code("BC1");
  corr->set_target_certification_code("RNCP40344");
  corr->set_target_bloc_code("RNCP40344BC01");
  return v;
}

std::vector<std::string> Codes(const std::vector<pb::Certification>& list) {
  std::vector<std::string> out;
  for (const pb::Certification& c : list) out.push_back(c.code());
  return out;
}

std::vector<std::string> Names(const std::vector<pb::Version>& list) {
  std::vector<std::string> out;
  for (const pb::Version& v : list) out.push_back(v.name());
  return out;
}

rf::VersionMutation SetState(pb::VersionState state) {
  return [state](pb::Version& v) {
    v.set_state(state);
    return absl::OkStatus();
  };
}

// A database whose transactions run `between` once, right after the first statement whose SQL
// contains `marker`: another transaction (another connection) commits in the middle of one.
class InterleavingDb final : public db::Db {
 public:
  InterleavingDb(db::Db& inner, std::string marker, std::function<void()> between)
      : inner_(inner), marker_(std::move(marker)), between_(std::move(between)) {}
  db::Dialect dialect() const override { return inner_.dialect(); }
  absl::Status ExecDdl(std::string_view sql) override { return inner_.ExecDdl(sql); }
  absl::Status Transact(const std::function<absl::Status(db::Tx&)>& fn) override {
    return inner_.Transact([&](db::Tx& tx) {
      Hooked hooked(tx, *this);
      return fn(hooked);
    });
  }

 private:
  class Hooked final : public db::Tx {
   public:
    Hooked(db::Tx& tx, InterleavingDb& owner) : tx_(tx), owner_(owner) {}
    absl::StatusOr<db::Rows> Query(std::string_view sql, const db::Params& params) override {
      absl::StatusOr<db::Rows> rows = tx_.Query(sql, params);
      owner_.After(sql);
      return rows;
    }
    absl::StatusOr<int64_t> Exec(std::string_view sql, const db::Params& params) override {
      absl::StatusOr<int64_t> n = tx_.Exec(sql, params);
      owner_.After(sql);
      return n;
    }
    absl::StatusOr<int64_t> LastInsertId() override { return tx_.LastInsertId(); }
    db::Dialect dialect() const override { return tx_.dialect(); }

   private:
    db::Tx& tx_;
    InterleavingDb& owner_;
  };
  void After(std::string_view sql) {
    if (fired_ || sql.find(marker_) == std::string_view::npos) return;
    fired_ = true;
    between_();
  }

  db::Db& inner_;
  const std::string marker_;
  const std::function<void()> between_;
  bool fired_ = false;
};

class RepositoryConformanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string dsn;
    if (GetParam() == "sqlite") {
      dsn = ::parcours::testing::FreshSqliteDatabase();
    } else {
      absl::StatusOr<std::string> fresh = ::parcours::testing::FreshMysqlDatabase();
      ASSERT_TRUE(fresh.ok()) << fresh.status();
      dsn = *fresh;
    }
    absl::StatusOr<std::unique_ptr<db::Db>> opened = db::Open(dsn);
    ASSERT_TRUE(opened.ok()) << dsn << ": " << opened.status();
    db_ = *std::move(opened);
    absl::StatusOr<int> migrated = rf::Migrate(*db_);
    ASSERT_TRUE(migrated.ok()) << migrated.status();
    ASSERT_EQ(*migrated, rf::ExpectedSchemaVersion());
    repo_ = rf::NewSqlRepository(*db_);
  }

  // Creates without idempotency key at kNow; a failure is reported and an empty message returned.
  pb::Certification MustCreate(const pb::Certification& c) {
    absl::StatusOr<pb::Certification> created = repo_->CreateCertification(c, {}, kNow);
    EXPECT_TRUE(created.ok()) << c.code() << ": " << created.status();
    return created.ok() ? *created : pb::Certification();
  }

  pb::Version MustCreateVersion(const std::string& code, const pb::Version& v, absl::Time now = kNow) {
    absl::StatusOr<pb::Version> created = repo_->CreateVersion(code, v, {}, now);
    EXPECT_TRUE(created.ok()) << code << ": " << created.status();
    return created.ok() ? *created : pb::Version();
  }

  pb::Version MustSetState(const std::string& code, int number, pb::VersionState state, absl::Time now) {
    absl::StatusOr<pb::Version> updated = repo_->UpdateVersion(code, number, std::nullopt, SetState(state), now);
    EXPECT_TRUE(updated.ok()) << VersionName(code, number) << " -> " << pb::VersionState_Name(state) << ": "
                              << updated.status();
    return updated.ok() ? *updated : pb::Version();
  }

  static std::string VersionName(const std::string& code, int number) { return rf::VersionName(code, number); }

  std::vector<std::string> List(const rf::CertificationQuery& query) {
    absl::StatusOr<std::vector<pb::Certification>> listed = repo_->ListCertifications(query);
    EXPECT_TRUE(listed.ok()) << listed.status();
    return listed.ok() ? Codes(*listed) : std::vector<std::string>{"<error>"};
  }

  std::vector<std::string> ListByCertifier(const std::string& certifier) {
    rf::CertificationQuery query;
    query.certifier = certifier;
    return List(query);
  }

  std::vector<std::string> SearchTitle(const std::string& words) {
    rf::CertificationQuery query;
    query.title_contains = words;
    return List(query);
  }

  std::unique_ptr<db::Db> db_;
  std::unique_ptr<rf::Repository> repo_;
};

// --- Certifications ----------------------------------------------------------------------------

TEST_P(RepositoryConformanceTest, CreateThenGetRoundTripsEveryField) {
  const pb::Certification input = FullCertification("RNCP40344");
  ASSERT_OK_AND_ASSIGN(pb::Certification created, repo_->CreateCertification(input, {}, kNow));
  ASSERT_OK_AND_ASSIGN(pb::Certification got, repo_->GetCertification("RNCP40344"));

  EXPECT_TRUE(ProtoEqual(created, got));
  EXPECT_TRUE(ProtoEqual(input, WithoutOutputs(got)));
  EXPECT_EQ(got.name(), "certifications/RNCP40344");
  EXPECT_EQ(got.title(), "Élaborer… la maîtrise d’œuvre des installations électriques « ÉTÉ » 🔧");
  ASSERT_EQ(got.certifiers_size(), 2);
  EXPECT_EQ(got.certifiers(0).name(), "MINISTÈRE DU TRAVAIL");
  EXPECT_EQ(got.certifiers(0).siret(), "13000349000013");
  EXPECT_EQ(got.registration_end_date().year(), 2030);
  EXPECT_FALSE(got.etag().empty());
  EXPECT_EQ(got.current_version(), "");
  EXPECT_EQ(TimeOf(got.create_time()), kNow);
  EXPECT_EQ(TimeOf(got.update_time()), kNow);

  // Output fields sent by a client are not stored as given.
  pb::Certification spoofed = FullCertification("RS6117");
  spoofed.set_name("certifications/OTHER");
  spoofed.set_current_version("certifications/RS6117/versions/9");
  spoofed.set_etag("\"42\"");
  spoofed.mutable_create_time()->set_seconds(1);
  ASSERT_OK_AND_ASSIGN(pb::Certification rs, repo_->CreateCertification(spoofed, {}, kNow));
  EXPECT_EQ(rs.name(), "certifications/RS6117");
  EXPECT_EQ(rs.current_version(), "");
  EXPECT_EQ(TimeOf(rs.create_time()), kNow);
  EXPECT_NE(rs.etag(), "\"42\"");
}

TEST_P(RepositoryConformanceTest, DuplicateCodeIsAlreadyExistsAndKeepsTheFirst) {
  const pb::Certification first = MustCreate(FullCertification("RNCP40344"));
  pb::Certification second = Simple("RNCP40344", pb::CERTIFICATION_KIND_CQP, pb::QUALIFICATION_LEVEL_NONE, false,
                                    "Un autre titre", {"Autre certificateur"});
  absl::StatusOr<pb::Certification> dup = repo_->CreateCertification(second, {}, kLater);
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists) << dup.status();
  absl::optional<absl::Cord> payload = dup.status().GetPayload("type.googleapis.com/google.rpc.ResourceInfo");
  ASSERT_TRUE(payload.has_value()) << dup.status();
  google::rpc::ResourceInfo info;
  ASSERT_TRUE(info.ParseFromString(std::string(*payload)));
  EXPECT_EQ(info.resource_name(), "certifications/RNCP40344");

  ASSERT_OK_AND_ASSIGN(pb::Certification got, repo_->GetCertification("RNCP40344"));
  EXPECT_TRUE(ProtoEqual(first, got));
  EXPECT_THAT(ListByCertifier("Autre certificateur"), IsEmpty());
}

TEST_P(RepositoryConformanceTest, GetUnknownIsNotFound) {
  EXPECT_EQ(repo_->GetCertification("RNCP99999").status().code(), absl::StatusCode::kNotFound);
  MustCreate(FullCertification("RNCP40344"));
  EXPECT_EQ(repo_->GetCertification("RNCP4034").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(repo_->GetCertification("rncp40344").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(RepositoryConformanceTest, ListIsOrderedByCodeWithKeysetCursorAndLimit) {
  // Created out of order; codes compare byte by byte on both backends.
  const std::vector<std::string> codes = {"RS6117", "CQP-TMA", "RNCP40344", "RNCP_1",   "RNCP-1",
                                          "RNCP.1", "RNCP1",   "cqp.lower", "A1",       "RNCP38000"};
  for (const std::string& code : codes) {
    MustCreate(Simple(code, pb::CERTIFICATION_KIND_CQP, pb::QUALIFICATION_LEVEL_NONE, true, "Titre " + code, {}));
  }
  const std::vector<std::string> sorted = {"A1",        "CQP-TMA",   "RNCP-1", "RNCP.1", "RNCP1",
                                           "RNCP38000", "RNCP40344", "RNCP_1", "RS6117", "cqp.lower"};

  rf::CertificationQuery all;
  all.limit = 100;
  EXPECT_THAT(List(all), ElementsAreArray(sorted));

  // Pages of 3 through the keyset cursor visit every code once, in order.
  std::vector<std::string> paged;
  rf::CertificationQuery page;
  page.limit = 3;
  for (int i = 0; i < 10; ++i) {
    std::vector<std::string> got = List(page);
    EXPECT_LE(got.size(), 3u);
    if (got.empty()) break;
    paged.insert(paged.end(), got.begin(), got.end());
    page.after_code = got.back();
  }
  EXPECT_THAT(paged, ElementsAreArray(sorted));

  rf::CertificationQuery one;
  one.limit = 1;
  EXPECT_THAT(List(one), ElementsAre("A1"));
  // The cursor need not be an existing code: codes strictly greater.
  rf::CertificationQuery from;
  from.after_code = "RNCP2";
  from.limit = 2;
  EXPECT_THAT(List(from), ElementsAre("RNCP38000", "RNCP40344"));
  from.after_code = "RNCP40344";
  EXPECT_THAT(List(from), ElementsAre("RNCP_1", "RS6117"));
  from.after_code = "cqp.lower";
  EXPECT_THAT(List(from), IsEmpty());
}

TEST_P(RepositoryConformanceTest, ListFiltersByKindLevelActiveAndExactCertifier) {
  MustCreate(Simple("RNCP40344", pb::CERTIFICATION_KIND_RNCP, pb::QUALIFICATION_LEVEL_NIV4, true, "Technicien",
                    {"MINISTÈRE DU TRAVAIL"}));
  MustCreate(Simple("RNCP38000", pb::CERTIFICATION_KIND_RNCP, pb::QUALIFICATION_LEVEL_NIV5, false,
                    "Technicien supérieur",
                    {"CPNE Alimentaire", "MINISTÈRE DU TRAVAIL"}));
  MustCreate(Simple("RS6117", pb::CERTIFICATION_KIND_RS, pb::QUALIFICATION_LEVEL_NONE, true, "Habilitation",
                    {"France Compétences"}));
  MustCreate(Simple("CQP-TMA", pb::CERTIFICATION_KIND_CQP, pb::QUALIFICATION_LEVEL_NONE, true, "CQP maintenance",
                    {"CPNE Alimentaire"}));
  MustCreate(Simple("CQP-OLD", pb::CERTIFICATION_KIND_CQP, pb::QUALIFICATION_LEVEL_NONE, false, "Ancien CQP",
                    {"cpne alimentaire"}));

  rf::CertificationQuery q;
  q.kind = pb::CERTIFICATION_KIND_RNCP;
  EXPECT_THAT(List(q), ElementsAre("RNCP38000", "RNCP40344"));
  q.kind = pb::CERTIFICATION_KIND_CQP;
  EXPECT_THAT(List(q), ElementsAre("CQP-OLD", "CQP-TMA"));
  q.kind = pb::CERTIFICATION_KIND_RS;
  EXPECT_THAT(List(q), ElementsAre("RS6117"));

  q = {};
  q.level = pb::QUALIFICATION_LEVEL_NONE;
  EXPECT_THAT(List(q), ElementsAre("CQP-OLD", "CQP-TMA", "RS6117"));
  q.level = pb::QUALIFICATION_LEVEL_NIV5;
  EXPECT_THAT(List(q), ElementsAre("RNCP38000"));
  q.level = pb::QUALIFICATION_LEVEL_NIV7;
  EXPECT_THAT(List(q), IsEmpty());

  q = {};
  q.active = true;
  EXPECT_THAT(List(q), ElementsAre("CQP-TMA", "RNCP40344", "RS6117"));
  q.active = false;
  EXPECT_THAT(List(q), ElementsAre("CQP-OLD", "RNCP38000"));

  // Certifier is an exact name: no case folding, no prefix.
  EXPECT_THAT(ListByCertifier("CPNE Alimentaire"), ElementsAre("CQP-TMA", "RNCP38000"));
  EXPECT_THAT(ListByCertifier("cpne alimentaire"), ElementsAre("CQP-OLD"));
  EXPECT_THAT(ListByCertifier("MINISTÈRE DU TRAVAIL"), ElementsAre("RNCP38000", "RNCP40344"));
  EXPECT_THAT(ListByCertifier("CPNE"), IsEmpty());
  EXPECT_THAT(ListByCertifier("CPNE%"), IsEmpty());

  // Filters combine with AND, and with the cursor and limit.
  q = {};
  q.kind = pb::CERTIFICATION_KIND_CQP;
  q.active = true;
  q.certifier = "CPNE Alimentaire";
  EXPECT_THAT(List(q), ElementsAre("CQP-TMA"));
  q = {};
  q.kind = pb::CERTIFICATION_KIND_RNCP;
  q.level = pb::QUALIFICATION_LEVEL_NIV4;
  EXPECT_THAT(List(q), ElementsAre("RNCP40344"));
  q = {};
  q.kind = pb::CERTIFICATION_KIND_RS;
  q.active = false;
  EXPECT_THAT(List(q), IsEmpty());
  q = {};
  q.level = pb::QUALIFICATION_LEVEL_NONE;
  q.limit = 1;
  EXPECT_THAT(List(q), ElementsAre("CQP-OLD"));
  q.after_code = "CQP-OLD";
  EXPECT_THAT(List(q), ElementsAre("CQP-TMA"));
  q.after_code = "CQP-TMA";
  q.title_contains = "habilitation";
  EXPECT_THAT(List(q), ElementsAre("RS6117"));
}

TEST_P(RepositoryConformanceTest, TitleSearchIsCaseInsensitiveIncludingAccentedCapitals) {
  MustCreate(Simple("T1", pb::CERTIFICATION_KIND_CQP, pb::QUALIFICATION_LEVEL_NONE, true,
                    "Technicien en électricité industrielle", {}));
  MustCreate(Simple("T2", pb::CERTIFICATION_KIND_CQP, pb::QUALIFICATION_LEVEL_NONE, true,
                    "ÉLECTRICITÉ DU BÂTIMENT", {}));
  MustCreate(Simple("T3", pb::CERTIFICATION_KIND_CQP, pb::QUALIFICATION_LEVEL_NONE, true,
                    "Maîtrise d’Œuvre", {}));
  MustCreate(Simple("T4", pb::CERTIFICATION_KIND_CQP, pb::QUALIFICATION_LEVEL_NONE, true,
                    "Conducteur de ligne", {}));

  EXPECT_THAT(SearchTitle("ÉLECTRICITÉ"), ElementsAre("T1", "T2"));
  EXPECT_THAT(SearchTitle("électricité"), ElementsAre("T1", "T2"));
  EXPECT_THAT(SearchTitle("Électricité Industrielle"), ElementsAre("T1"));
  EXPECT_THAT(SearchTitle("bâtiment"), ElementsAre("T2"));
  EXPECT_THAT(SearchTitle("MAÎTRISE D’ŒUVRE"), ElementsAre("T3"));
  EXPECT_THAT(SearchTitle("œuvre"), ElementsAre("T3"));
  EXPECT_THAT(SearchTitle("CONDUCTEUR"), ElementsAre("T4"));
  EXPECT_THAT(SearchTitle("RI"), ElementsAre("T1", "T2", "T3"));
  EXPECT_THAT(SearchTitle("de"), ElementsAre("T4"));  // "d’Œuvre" is not "de"
  EXPECT_THAT(SearchTitle("plomberie"), IsEmpty());
}

TEST_P(RepositoryConformanceTest, TitleSearchTakesWildcardCharactersLiterally) {
  MustCreate(Simple("W1", pb::CERTIFICATION_KIND_CQP, pb::QUALIFICATION_LEVEL_NONE, true,
                    "Taux de réussite 100% atteint", {}));
  MustCreate(Simple("W2", pb::CERTIFICATION_KIND_CQP, pb::QUALIFICATION_LEVEL_NONE, true,
                    "Taux de réussite 1000 atteint", {}));
  MustCreate(Simple("W3", pb::CERTIFICATION_KIND_CQP, pb::QUALIFICATION_LEVEL_NONE, true, "Module code_bloc", {}));
  MustCreate(Simple("W4", pb::CERTIFICATION_KIND_CQP, pb::QUALIFICATION_LEVEL_NONE, true, "Module codeXbloc", {}));
  MustCreate(Simple("W5", pb::CERTIFICATION_KIND_CQP, pb::QUALIFICATION_LEVEL_NONE, true, "Attention! Sécurité", {}));
  MustCreate(Simple("W6", pb::CERTIFICATION_KIND_CQP, pb::QUALIFICATION_LEVEL_NONE, true, "Attention Sécurité", {}));
  MustCreate(Simple("W7", pb::CERTIFICATION_KIND_CQP, pb::QUALIFICATION_LEVEL_NONE, true,
                    "Dossier C:\\atelier \"qualité\"", {}));

  EXPECT_THAT(SearchTitle("100%"), ElementsAre("W1"));
  EXPECT_THAT(SearchTitle("%"), ElementsAre("W1"));
  EXPECT_THAT(SearchTitle("0% a"), ElementsAre("W1"));
  EXPECT_THAT(SearchTitle("e_b"), ElementsAre("W3"));
  EXPECT_THAT(SearchTitle("_"), ElementsAre("W3"));
  EXPECT_THAT(SearchTitle("n!"), ElementsAre("W5"));
  EXPECT_THAT(SearchTitle("!"), ElementsAre("W5"));
  EXPECT_THAT(SearchTitle("\\a"), ElementsAre("W7"));
  EXPECT_THAT(SearchTitle("\"QUALITÉ\""), ElementsAre("W7"));
  EXPECT_THAT(SearchTitle("Attention"), ElementsAre("W5", "W6"));
}

TEST_P(RepositoryConformanceTest, UpdateAppliesTheMutationAndBumpsTheEtag) {
  const pb::Certification before = MustCreate(FullCertification("RNCP40344"));
  pb::Certification seen;
  pb::Certification expected = WithoutOutputs(before);
  ASSERT_OK_AND_ASSIGN(
      pb::Certification updated,
      repo_->UpdateCertification(
          "RNCP40344", EtagVersion(before.etag()),
          [&](pb::Certification& c) {
            seen = c;
            c.set_title("Nouveau TITRE Électrotechnique");
            c.set_level(pb::QUALIFICATION_LEVEL_NIV6);
            c.set_active(false);
            SetDate(c.mutable_issuance_deadline(), 2031, 6, 30);
            c.add_successor_codes("RNCP42000");
            c.mutable_rome_codes(0)->set_label("Maintenance");
            return absl::OkStatus();
          },
          kLater));
  // The mutation ran on the stored resource.
  EXPECT_TRUE(ProtoEqual(before, seen));

  expected.set_title("Nouveau TITRE Électrotechnique");
  expected.set_level(pb::QUALIFICATION_LEVEL_NIV6);
  expected.set_active(false);
  SetDate(expected.mutable_issuance_deadline(), 2031, 6, 30);
  expected.add_successor_codes("RNCP42000");
  expected.mutable_rome_codes(0)->set_label("Maintenance");
  EXPECT_TRUE(ProtoEqual(expected, WithoutOutputs(updated)));
  EXPECT_NE(updated.etag(), before.etag());
  EXPECT_GT(EtagVersion(updated.etag()), EtagVersion(before.etag()));
  EXPECT_EQ(TimeOf(updated.create_time()), kNow);
  EXPECT_EQ(TimeOf(updated.update_time()), kLater);

  ASSERT_OK_AND_ASSIGN(pb::Certification got, repo_->GetCertification("RNCP40344"));
  EXPECT_TRUE(ProtoEqual(updated, got));

  // Lists see the new columns.
  EXPECT_THAT(SearchTitle("électrotechnique"), ElementsAre("RNCP40344"));
  EXPECT_THAT(SearchTitle("maîtrise"), IsEmpty());
  rf::CertificationQuery q;
  q.level = pb::QUALIFICATION_LEVEL_NIV6;
  q.active = false;
  EXPECT_THAT(List(q), ElementsAre("RNCP40344"));

  // Without expected_version there is no check.
  ASSERT_OK_AND_ASSIGN(pb::Certification again,
                       repo_->UpdateCertification(
                           "RNCP40344", std::nullopt,
                           [](pb::Certification& c) {
                             c.set_abbreviation("BTS MS");
                             return absl::OkStatus();
                           },
                           kLater));
  EXPECT_EQ(again.abbreviation(), "BTS MS");
  EXPECT_GT(EtagVersion(again.etag()), EtagVersion(updated.etag()));
}

TEST_P(RepositoryConformanceTest, UpdateWithStaleExpectedVersionIsAbortedAndChangesNothing) {
  const pb::Certification created = MustCreate(FullCertification("RNCP40344"));
  const int64_t v1 = EtagVersion(created.etag());
  ASSERT_OK_AND_ASSIGN(pb::Certification first, repo_->UpdateCertification(
                                                    "RNCP40344", v1,
                                                    [](pb::Certification& c) {
                                                      c.set_title("Premier titre");
                                                      return absl::OkStatus();
                                                    },
                                                    kLater));
  absl::StatusOr<pb::Certification> stale = repo_->UpdateCertification(
      "RNCP40344", v1,
      [](pb::Certification& c) {
        c.set_title("Second titre");
        c.clear_certifiers();
        return absl::OkStatus();
      },
      kLater + absl::Minutes(1));
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted) << stale.status();
  ASSERT_OK_AND_ASSIGN(pb::Certification got, repo_->GetCertification("RNCP40344"));
  EXPECT_TRUE(ProtoEqual(first, got));
  EXPECT_THAT(ListByCertifier("MINISTÈRE DU TRAVAIL"), ElementsAre("RNCP40344"));
}

TEST_P(RepositoryConformanceTest, MutationErrorAbortsTheUpdateAndChangesNothing) {
  const pb::Certification created = MustCreate(FullCertification("RNCP40344"));
  const absl::Status refusal = parcours::InvalidArgument("certification.title", "refusé par la règle métier");
  absl::StatusOr<pb::Certification> failed = repo_->UpdateCertification(
      "RNCP40344", EtagVersion(created.etag()),
      [&](pb::Certification& c) {
        c.set_title("Titre jamais écrit");
        c.clear_certifiers();
        c.add_certifiers()->set_name("Nouveau certificateur");
        return refusal;
      },
      kLater);
  EXPECT_EQ(failed.status(), refusal);  // returned as is (code, message, payloads)

  ASSERT_OK_AND_ASSIGN(pb::Certification got, repo_->GetCertification("RNCP40344"));
  EXPECT_TRUE(ProtoEqual(created, got));
  EXPECT_THAT(ListByCertifier("MINISTÈRE DU TRAVAIL"), ElementsAre("RNCP40344"));
  EXPECT_THAT(ListByCertifier("Nouveau certificateur"), IsEmpty());
  EXPECT_THAT(SearchTitle("jamais"), IsEmpty());
}

TEST_P(RepositoryConformanceTest, UpdateReplacesTheCertifierList) {
  MustCreate(Simple("CQP-TMA", pb::CERTIFICATION_KIND_CQP, pb::QUALIFICATION_LEVEL_NONE, true, "CQP",
                    {"CPNE Alimentaire", "OPCO 2i"}));
  // A name listed twice is one certifier for the filter.
  MustCreate(Simple("CQP-DUP", pb::CERTIFICATION_KIND_CQP, pb::QUALIFICATION_LEVEL_NONE, true, "CQP",
                    {"OPCO 2i", "OPCO 2i"}));
  EXPECT_THAT(ListByCertifier("OPCO 2i"), ElementsAre("CQP-DUP", "CQP-TMA"));

  ASSERT_OK_AND_ASSIGN(pb::Certification updated, repo_->UpdateCertification(
                                                      "CQP-TMA", std::nullopt,
                                                      [](pb::Certification& c) {
                                                        c.clear_certifiers();
                                                        c.add_certifiers()->set_name("CPNE Métallurgie");
                                                        return absl::OkStatus();
                                                      },
                                                      kLater));
  ASSERT_EQ(updated.certifiers_size(), 1);
  EXPECT_EQ(updated.certifiers(0).name(), "CPNE Métallurgie");
  EXPECT_THAT(ListByCertifier("CPNE Alimentaire"), IsEmpty());
  EXPECT_THAT(ListByCertifier("OPCO 2i"), ElementsAre("CQP-DUP"));
  EXPECT_THAT(ListByCertifier("CPNE Métallurgie"), ElementsAre("CQP-TMA"));

  ASSERT_OK(repo_->UpdateCertification(
                     "CQP-TMA", std::nullopt,
                     [](pb::Certification& c) {
                       c.clear_certifiers();
                       return absl::OkStatus();
                     },
                     kLater)
                .status());
  EXPECT_THAT(ListByCertifier("CPNE Métallurgie"), IsEmpty());
  ASSERT_OK_AND_ASSIGN(pb::Certification got, repo_->GetCertification("CQP-TMA"));
  EXPECT_EQ(got.certifiers_size(), 0);
}

TEST_P(RepositoryConformanceTest, UpdateUnknownIsNotFound) {
  bool called = false;
  absl::StatusOr<pb::Certification> r = repo_->UpdateCertification(
      "RNCP99999", std::nullopt,
      [&](pb::Certification&) {
        called = true;
        return absl::OkStatus();
      },
      kNow);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  EXPECT_FALSE(called);
}

TEST_P(RepositoryConformanceTest, DeleteRemovesTheCertificationAndItsDrafts) {
  const pb::Certification created = MustCreate(FullCertification("RNCP40344"));
  MustCreate(FullCertification("RNCP38000"));
  MustCreateVersion("RNCP40344", FullVersion("v1"));
  MustCreateVersion("RNCP40344", FullVersion("v2"));
  MustCreateVersion("RNCP38000", FullVersion("autre"));

  ASSERT_OK(repo_->DeleteCertification("RNCP40344", EtagVersion(created.etag())));
  EXPECT_EQ(repo_->GetCertification("RNCP40344").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(repo_->GetVersion("RNCP40344", 1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(repo_->GetVersion("RNCP40344", 2).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(repo_->ListVersions("RNCP40344", 0, 10, false).status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(ListByCertifier("MINISTÈRE DU TRAVAIL"), ElementsAre("RNCP38000"));
  EXPECT_EQ(repo_->DeleteCertification("RNCP40344", std::nullopt).code(), absl::StatusCode::kNotFound);

  // The other certification and its version are untouched.
  EXPECT_TRUE(repo_->GetVersion("RNCP38000", 1).ok());

  // The code is free again and its versions start over.
  MustCreate(FullCertification("RNCP40344"));
  pb::Version v = MustCreateVersion("RNCP40344", FullVersion("nouveau départ"));
  EXPECT_EQ(v.name(), "certifications/RNCP40344/versions/1");
  EXPECT_EQ(v.description(), "nouveau départ");
}

TEST_P(RepositoryConformanceTest, DeleteIsRefusedOnceAVersionWasPublished) {
  MustCreate(FullCertification("RNCP40344"));
  MustCreateVersion("RNCP40344", FullVersion("v1"));
  MustCreateVersion("RNCP40344", FullVersion("v2"));
  MustSetState("RNCP40344", 1, pb::VERSION_STATE_PUBLISHED, kLater);

  absl::Status refused = repo_->DeleteCertification("RNCP40344", std::nullopt);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_TRUE(refused.GetPayload("type.googleapis.com/google.rpc.PreconditionFailure").has_value()) << refused;
  EXPECT_TRUE(repo_->GetCertification("RNCP40344").ok());
  EXPECT_TRUE(repo_->GetVersion("RNCP40344", 2).ok());  // the draft was not deleted either

  // Retired is still "was published".
  MustSetState("RNCP40344", 1, pb::VERSION_STATE_RETIRED, kLater);
  EXPECT_EQ(repo_->DeleteCertification("RNCP40344", std::nullopt).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(repo_->GetVersion("RNCP40344", 1).ok());
  EXPECT_TRUE(repo_->GetVersion("RNCP40344", 2).ok());
}

TEST_P(RepositoryConformanceTest, DeleteWithStaleExpectedVersionIsAborted) {
  const pb::Certification created = MustCreate(FullCertification("RNCP40344"));
  ASSERT_OK(repo_->UpdateCertification(
                     "RNCP40344", std::nullopt,
                     [](pb::Certification& c) {
                       c.set_abbreviation("X");
                       return absl::OkStatus();
                     },
                     kLater)
                .status());
  EXPECT_EQ(repo_->DeleteCertification("RNCP40344", EtagVersion(created.etag())).code(),
            absl::StatusCode::kAborted);
  EXPECT_TRUE(repo_->GetCertification("RNCP40344").ok());
}

// --- Versions ----------------------------------------------------------------------------------

TEST_P(RepositoryConformanceTest, VersionsAreNumberedFromOnePerCertification) {
  MustCreate(FullCertification("RNCP40344"));
  MustCreate(FullCertification("RS6117"));
  for (int n = 1; n <= 3; ++n) {
    pb::Version v = MustCreateVersion("RNCP40344", FullVersion(absl::StrCat("révision ", n)));
    EXPECT_EQ(v.name(), absl::StrCat("certifications/RNCP40344/versions/", n));
    EXPECT_EQ(v.state(), pb::VERSION_STATE_DRAFT);
    EXPECT_FALSE(v.etag().empty());
    EXPECT_EQ(TimeOf(v.create_time()), kNow);
    EXPECT_EQ(TimeOf(v.update_time()), kNow);
    EXPECT_FALSE(v.has_publish_time());
  }
  EXPECT_EQ(MustCreateVersion("RS6117", pb::Version()).name(), "certifications/RS6117/versions/1");
  EXPECT_EQ(MustCreateVersion("RNCP40344", pb::Version()).name(), "certifications/RNCP40344/versions/4");

  // Creating versions leaves the certification as it was (no current version yet).
  ASSERT_OK_AND_ASSIGN(pb::Certification c, repo_->GetCertification("RNCP40344"));
  EXPECT_EQ(c.current_version(), "");
}

TEST_P(RepositoryConformanceTest, CreateVersionOnUnknownCertificationIsNotFound) {
  absl::StatusOr<pb::Version> v = repo_->CreateVersion("RNCP99999", FullVersion("v1"), {}, kNow);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kNotFound) << v.status();
  EXPECT_EQ(repo_->GetVersion("RNCP99999", 1).status().code(), absl::StatusCode::kNotFound);
  // The code taken afterwards starts at version 1.
  MustCreate(FullCertification("RNCP99999"));
  EXPECT_EQ(MustCreateVersion("RNCP99999", pb::Version()).name(), "certifications/RNCP99999/versions/1");
}

TEST_P(RepositoryConformanceTest, VersionTreeRoundTrips) {
  MustCreate(FullCertification("CQP-TMA"));
  pb::Version input = FullVersion("Référentiel initial — transcription de la grille");
  // Output fields sent by a client are ignored: a new version is always a DRAFT.
  pb::Version spoofed = input;
  spoofed.set_name("certifications/CQP-TMA/versions/7");
  spoofed.set_state(pb::VERSION_STATE_PUBLISHED);
  spoofed.mutable_publish_time()->set_seconds(1);
  spoofed.set_etag("\"9\"");
  ASSERT_OK_AND_ASSIGN(pb::Version created, repo_->CreateVersion("CQP-TMA", spoofed, {}, kNow));
  EXPECT_EQ(created.name(), "certifications/CQP-TMA/versions/1");
  EXPECT_EQ(created.state(), pb::VERSION_STATE_DRAFT);
  EXPECT_FALSE(created.has_publish_time());

  ASSERT_OK_AND_ASSIGN(pb::Version got, repo_->GetVersion("CQP-TMA", 1));
  EXPECT_TRUE(ProtoEqual(created, got));
  EXPECT_TRUE(ProtoEqual(input, WithoutOutputs(got)));
  ASSERT_EQ(got.blocs_size(), 2);
  EXPECT_EQ(got.blocs(0).competences(1).criteria(1).text(),
            "Les priorités sont identifiées « au regard de la production »");
  EXPECT_EQ(got.scales(1).levels(3).description(), "Apporte de nouveaux éclairages");
  EXPECT_EQ(got.validation_rules().bloc_threshold_percent(), 70);
  EXPECT_EQ(got.correspondences(0).target_bloc_code(), "RNCP40344BC01");

  // Each part of the tree is replaced as a whole by an update.
  pb::Version revised = input;
  revised.mutable_blocs()->RemoveLast();
  revised.mutable_blocs(0)->mutable_competences(0)->mutable_criteria()->RemoveLast();
  revised.mutable_scales(0)->mutable_levels()->RemoveLast();
  revised.clear_correspondences();
  revised.mutable_validation_rules()->set_bloc_threshold_percent(50);
  ASSERT_OK_AND_ASSIGN(pb::Version updated, repo_->UpdateVersion(
                                                "CQP-TMA", 1, EtagVersion(got.etag()),
                                                [&](pb::Version& v) {
                                                  *v.mutable_blocs() = revised.blocs();
                                                  *v.mutable_scales() = revised.scales();
                                                  *v.mutable_validation_rules() = revised.validation_rules();
                                                  v.clear_correspondences();
                                                  return absl::OkStatus();
                                                },
                                                kLater));
  EXPECT_EQ(updated.state(), pb::VERSION_STATE_DRAFT);
  EXPECT_NE(updated.etag(), got.etag());
  EXPECT_EQ(TimeOf(updated.create_time()), kNow);
  EXPECT_EQ(TimeOf(updated.update_time()), kLater);
  ASSERT_OK_AND_ASSIGN(pb::Version reread, repo_->GetVersion("CQP-TMA", 1));
  EXPECT_TRUE(ProtoEqual(updated, reread));
  EXPECT_TRUE(ProtoEqual(revised, WithoutOutputs(reread)));
}

TEST_P(RepositoryConformanceTest, ListVersionsIsNewestFirstWithCursorAndView) {
  MustCreate(FullCertification("CQP-TMA"));
  MustCreate(FullCertification("CQP-AUTRE"));
  for (int n = 1; n <= 5; ++n) MustCreateVersion("CQP-TMA", FullVersion(absl::StrCat("v", n)));
  MustCreateVersion("CQP-AUTRE", FullVersion("autre"));

  ASSERT_OK_AND_ASSIGN(std::vector<pb::Version> all, repo_->ListVersions("CQP-TMA", 0, 10, true));
  EXPECT_THAT(Names(all), ElementsAre(VersionName("CQP-TMA", 5), VersionName("CQP-TMA", 4),
                                      VersionName("CQP-TMA", 3), VersionName("CQP-TMA", 2),
                                      VersionName("CQP-TMA", 1)));
  for (const pb::Version& v : all) {
    ASSERT_OK_AND_ASSIGN(pb::Version full, repo_->GetVersion("CQP-TMA", static_cast<int>(v.name().back() - '0')));
    EXPECT_TRUE(ProtoEqual(full, v));
  }

  ASSERT_OK_AND_ASSIGN(std::vector<pb::Version> page, repo_->ListVersions("CQP-TMA", 4, 2, false));
  EXPECT_THAT(Names(page), ElementsAre(VersionName("CQP-TMA", 3), VersionName("CQP-TMA", 2)));
  for (const pb::Version& v : page) {
    EXPECT_EQ(v.blocs_size(), 0) << v.name();
    EXPECT_EQ(v.scales_size(), 0) << v.name();
    EXPECT_EQ(v.correspondences_size(), 0) << v.name();
    EXPECT_EQ(v.description(), absl::StrCat("v", v.name().back() - '0'));
    EXPECT_EQ(v.state(), pb::VERSION_STATE_DRAFT);
    EXPECT_FALSE(v.etag().empty());
    EXPECT_EQ(TimeOf(v.create_time()), kNow);
  }
  ASSERT_OK_AND_ASSIGN(std::vector<pb::Version> last, repo_->ListVersions("CQP-TMA", 2, 10, false));
  EXPECT_THAT(Names(last), ElementsAre(VersionName("CQP-TMA", 1)));
  ASSERT_OK_AND_ASSIGN(std::vector<pb::Version> none, repo_->ListVersions("CQP-TMA", 1, 10, false));
  EXPECT_THAT(none, IsEmpty());

  MustCreate(FullCertification("CQP-VIDE"));
  ASSERT_OK_AND_ASSIGN(std::vector<pb::Version> empty, repo_->ListVersions("CQP-VIDE", 0, 10, true));
  EXPECT_THAT(empty, IsEmpty());
  EXPECT_EQ(repo_->ListVersions("CQP-INCONNU", 0, 10, true).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(RepositoryConformanceTest, PublishingSetsPublishTimeAndCurrentVersion) {
  const pb::Certification created = MustCreate(FullCertification("CQP-TMA"));
  const pb::Version draft = MustCreateVersion("CQP-TMA", FullVersion("v1"));
  MustCreateVersion("CQP-TMA", FullVersion("v2"));

  ASSERT_OK_AND_ASSIGN(pb::Version published,
                       repo_->UpdateVersion("CQP-TMA", 1, EtagVersion(draft.etag()),
                                            SetState(pb::VERSION_STATE_PUBLISHED), kLater));
  EXPECT_EQ(published.state(), pb::VERSION_STATE_PUBLISHED);
  ASSERT_TRUE(published.has_publish_time());
  EXPECT_EQ(TimeOf(published.publish_time()), kLater);
  EXPECT_EQ(TimeOf(published.update_time()), kLater);
  EXPECT_EQ(TimeOf(published.create_time()), kNow);
  EXPECT_NE(published.etag(), draft.etag());
  EXPECT_TRUE(ProtoEqual(WithoutOutputs(draft), WithoutOutputs(published)));  // the tree is kept

  ASSERT_OK_AND_ASSIGN(pb::Version got, repo_->GetVersion("CQP-TMA", 1));
  EXPECT_TRUE(ProtoEqual(published, got));
  ASSERT_OK_AND_ASSIGN(pb::Certification c, repo_->GetCertification("CQP-TMA"));
  EXPECT_EQ(c.current_version(), "certifications/CQP-TMA/versions/1");
  EXPECT_NE(c.etag(), created.etag());  // its representation changed

  // A later edit of a published version (a retirement) keeps the publication time.
  pb::Version retired = MustSetState("CQP-TMA", 1, pb::VERSION_STATE_RETIRED, kLater + absl::Hours(5));
  EXPECT_EQ(TimeOf(retired.publish_time()), kLater);
  EXPECT_EQ(TimeOf(retired.update_time()), kLater + absl::Hours(5));

  // The draft beside it is not affected.
  ASSERT_OK_AND_ASSIGN(pb::Version v2, repo_->GetVersion("CQP-TMA", 2));
  EXPECT_EQ(v2.state(), pb::VERSION_STATE_DRAFT);
  EXPECT_FALSE(v2.has_publish_time());
}

TEST_P(RepositoryConformanceTest, CurrentVersionFollowsTheNewestPublishedVersion) {
  MustCreate(FullCertification("CQP-TMA"));
  for (int n = 1; n <= 3; ++n) MustCreateVersion("CQP-TMA", FullVersion(absl::StrCat("v", n)));
  auto current = [&]() -> std::string {
    absl::StatusOr<pb::Certification> c = repo_->GetCertification("CQP-TMA");
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? c->current_version() : "<error>";
  };

  MustSetState("CQP-TMA", 2, pb::VERSION_STATE_PUBLISHED, kLater);
  EXPECT_EQ(current(), "certifications/CQP-TMA/versions/2");
  // Publishing an older version does not take the place of a newer one.
  MustSetState("CQP-TMA", 1, pb::VERSION_STATE_PUBLISHED, kLater + absl::Minutes(1));
  EXPECT_EQ(current(), "certifications/CQP-TMA/versions/2");
  // Retiring the newest moves back to the newest remaining PUBLISHED version; drafts never count.
  MustSetState("CQP-TMA", 2, pb::VERSION_STATE_RETIRED, kLater + absl::Minutes(2));
  EXPECT_EQ(current(), "certifications/CQP-TMA/versions/1");
  MustSetState("CQP-TMA", 1, pb::VERSION_STATE_RETIRED, kLater + absl::Minutes(3));
  EXPECT_EQ(current(), "");
  MustSetState("CQP-TMA", 3, pb::VERSION_STATE_PUBLISHED, kLater + absl::Minutes(4));
  EXPECT_EQ(current(), "certifications/CQP-TMA/versions/3");

  // Other certifications are not touched.
  MustCreate(FullCertification("CQP-AUTRE"));
  MustCreateVersion("CQP-AUTRE", FullVersion("v1"));
  MustSetState("CQP-AUTRE", 1, pb::VERSION_STATE_PUBLISHED, kLater);
  EXPECT_EQ(current(), "certifications/CQP-TMA/versions/3");
}

TEST_P(RepositoryConformanceTest, FailedOrStaleVersionUpdatesChangeNothing) {
  MustCreate(FullCertification("CQP-TMA"));
  const pb::Version created = MustCreateVersion("CQP-TMA", FullVersion("v1"));
  const int64_t v1 = EtagVersion(created.etag());
  ASSERT_OK_AND_ASSIGN(pb::Version edited, repo_->UpdateVersion(
                                               "CQP-TMA", 1, v1,
                                               [](pb::Version& v) {
                                                 v.set_description("modifiée");
                                                 return absl::OkStatus();
                                               },
                                               kLater));
  EXPECT_EQ(edited.description(), "modifiée");

  absl::StatusOr<pb::Version> stale = repo_->UpdateVersion("CQP-TMA", 1, v1, SetState(pb::VERSION_STATE_PUBLISHED),
                                                           kLater + absl::Minutes(1));
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted) << stale.status();

  // A mutation that publishes and then fails leaves neither the version nor the certification changed.
  const absl::Status refusal = parcours::FailedPrecondition("NO_BLOCS", "certifications/CQP-TMA/versions/1", "x");
  absl::StatusOr<pb::Version> failed = repo_->UpdateVersion(
      "CQP-TMA", 1, EtagVersion(edited.etag()),
      [&](pb::Version& v) {
        v.set_state(pb::VERSION_STATE_PUBLISHED);
        v.clear_blocs();
        return refusal;
      },
      kLater + absl::Minutes(2));
  EXPECT_EQ(failed.status(), refusal);

  ASSERT_OK_AND_ASSIGN(pb::Version got, repo_->GetVersion("CQP-TMA", 1));
  EXPECT_TRUE(ProtoEqual(edited, got));
  ASSERT_OK_AND_ASSIGN(pb::Certification c, repo_->GetCertification("CQP-TMA"));
  EXPECT_EQ(c.current_version(), "");

  EXPECT_EQ(repo_->UpdateVersion("CQP-TMA", 2, std::nullopt, SetState(pb::VERSION_STATE_PUBLISHED), kLater)
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(repo_->UpdateVersion("CQP-INCONNU", 1, std::nullopt, SetState(pb::VERSION_STATE_PUBLISHED), kLater)
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TEST_P(RepositoryConformanceTest, GetVersionStateFollowsTheVersion) {
  MustCreate(FullCertification("CQP-TMA"));
  const pb::Version draft = MustCreateVersion("CQP-TMA", FullVersion("v1"));
  ASSERT_OK_AND_ASSIGN(auto state, repo_->GetVersionState("CQP-TMA", 1));
  EXPECT_EQ(state.first, pb::VERSION_STATE_DRAFT);
  EXPECT_EQ(state.second, draft.etag());

  const pb::Version published = MustSetState("CQP-TMA", 1, pb::VERSION_STATE_PUBLISHED, kLater);
  ASSERT_OK_AND_ASSIGN(state, repo_->GetVersionState("CQP-TMA", 1));
  EXPECT_EQ(state.first, pb::VERSION_STATE_PUBLISHED);
  EXPECT_EQ(state.second, published.etag());
  EXPECT_NE(state.second, draft.etag());

  const pb::Version retired = MustSetState("CQP-TMA", 1, pb::VERSION_STATE_RETIRED, kLater);
  ASSERT_OK_AND_ASSIGN(state, repo_->GetVersionState("CQP-TMA", 1));
  EXPECT_EQ(state.first, pb::VERSION_STATE_RETIRED);
  EXPECT_EQ(state.second, retired.etag());

  EXPECT_EQ(repo_->GetVersionState("CQP-TMA", 2).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(repo_->GetVersionState("CQP-INCONNU", 1).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(RepositoryConformanceTest, OnlyDraftVersionsCanBeDeleted) {
  MustCreate(FullCertification("CQP-TMA"));
  for (int n = 1; n <= 3; ++n) MustCreateVersion("CQP-TMA", FullVersion(absl::StrCat("v", n)));
  MustSetState("CQP-TMA", 1, pb::VERSION_STATE_PUBLISHED, kLater);

  absl::Status refused = repo_->DeleteVersion("CQP-TMA", 1, std::nullopt);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_TRUE(repo_->GetVersion("CQP-TMA", 1).ok());
  MustSetState("CQP-TMA", 1, pb::VERSION_STATE_RETIRED, kLater);
  EXPECT_EQ(repo_->DeleteVersion("CQP-TMA", 1, std::nullopt).code(), absl::StatusCode::kFailedPrecondition);

  // A stale etag is refused before anything else.
  ASSERT_OK_AND_ASSIGN(pb::Version v3, repo_->GetVersion("CQP-TMA", 3));
  EXPECT_EQ(repo_->DeleteVersion("CQP-TMA", 3, EtagVersion(v3.etag()) + 1).code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(repo_->GetVersion("CQP-TMA", 3).ok());

  ASSERT_OK(repo_->DeleteVersion("CQP-TMA", 3, EtagVersion(v3.etag())));
  ASSERT_OK(repo_->DeleteVersion("CQP-TMA", 2, std::nullopt));
  EXPECT_EQ(repo_->GetVersion("CQP-TMA", 3).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(repo_->GetVersionState("CQP-TMA", 2).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(repo_->DeleteVersion("CQP-TMA", 3, std::nullopt).code(), absl::StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(std::vector<pb::Version> left, repo_->ListVersions("CQP-TMA", 0, 10, false));
  EXPECT_THAT(Names(left), ElementsAre(VersionName("CQP-TMA", 1)));

  // A deleted draft's name is never given to another version.
  EXPECT_EQ(MustCreateVersion("CQP-TMA", pb::Version()).name(), "certifications/CQP-TMA/versions/4");
}

// A publication that commits between DeleteVersion's read and its delete is not deleted with the
// draft the read saw (MySQL: READ COMMITTED; SQLite runs one writer at a time, nothing can come
// between).
TEST_P(RepositoryConformanceTest, DeleteVersionNeverDeletesAVersionPublishedAfterItsRead) {
  if (GetParam() != "mysql") GTEST_SKIP() << "SQLite transactions do not interleave";
  MustCreate(FullCertification("CQP-RACE"));
  MustCreateVersion("CQP-RACE", FullVersion("v1"));
  InterleavingDb interleaved(*db_, "SELECT state, version FROM versions", [&] {
    MustSetState("CQP-RACE", 1, pb::VERSION_STATE_PUBLISHED, kLater);
  });
  std::unique_ptr<rf::Repository> deleting = rf::NewSqlRepository(interleaved);
  absl::Status deleted = deleting->DeleteVersion("CQP-RACE", 1, std::nullopt);
  EXPECT_EQ(deleted.code(), absl::StatusCode::kAborted) << deleted;
  ASSERT_OK_AND_ASSIGN(pb::Version v1, repo_->GetVersion("CQP-RACE", 1));
  EXPECT_EQ(v1.state(), pb::VERSION_STATE_PUBLISHED);
  ASSERT_OK_AND_ASSIGN(pb::Certification c, repo_->GetCertification("CQP-RACE"));
  EXPECT_EQ(c.current_version(), VersionName("CQP-RACE", 1));
}

// The same for DeleteCertification: of a deletion and a publication that overlap, at most one
// succeeds; a published version is never deleted.
TEST_P(RepositoryConformanceTest, DeleteCertificationAndAConcurrentPublicationNeverBothSucceed) {
  if (GetParam() != "mysql") GTEST_SKIP() << "SQLite transactions do not interleave";
  MustCreate(FullCertification("CQP-RACE"));
  MustCreateVersion("CQP-RACE", FullVersion("v1"));
  absl::Status published;
  absl::Notification publish_done;
  std::thread publisher;
  InterleavingDb interleaved(*db_, "SELECT COUNT(*) FROM versions", [&] {
    publisher = std::thread([&] {
      published = repo_->UpdateVersion("CQP-RACE", 1, std::nullopt, SetState(pb::VERSION_STATE_PUBLISHED), kLater)
                      .status();
      publish_done.Notify();
    });
    // Time for it to commit (it did, before the fix) or to wait on the deletion's lock.
    publish_done.WaitForNotificationWithTimeout(absl::Seconds(2));
  });
  std::unique_ptr<rf::Repository> deleting = rf::NewSqlRepository(interleaved);
  absl::Status deleted = deleting->DeleteCertification("CQP-RACE", std::nullopt);
  publisher.join();
  EXPECT_FALSE(deleted.ok() && published.ok()) << "both acknowledged: the publication was deleted";
  EXPECT_TRUE(deleted.ok() || published.ok()) << deleted << " / " << published;
  if (published.ok()) {
    ASSERT_OK_AND_ASSIGN(pb::Version v1, repo_->GetVersion("CQP-RACE", 1));
    EXPECT_EQ(v1.state(), pb::VERSION_STATE_PUBLISHED);
  } else {
    EXPECT_EQ(repo_->GetCertification("CQP-RACE").status().code(), absl::StatusCode::kNotFound);
  }
}

// --- Idempotency -------------------------------------------------------------------------------

TEST_P(RepositoryConformanceTest, CreateCertificationIsIdempotentOnRequestId) {
  constexpr char kMethod[] = "/parcours.referential.v1.ReferentialService/CreateCertification";
  pb::CreateCertificationRequest request;
  *request.mutable_certification() = FullCertification("RNCP40344");
  request.set_request_id("0b6f1c1e-6d1b-4c6e-9f43-3c1c2f0c7a11");
  const rf::IdempotencyKey key{kMethod, request.request_id(), &request};

  ASSERT_OK_AND_ASSIGN(pb::Certification first, repo_->CreateCertification(request.certification(), key, kNow));
  ASSERT_OK_AND_ASSIGN(pb::Certification retry, repo_->CreateCertification(request.certification(), key, kLater));
  EXPECT_TRUE(ProtoEqual(first, retry));  // the first result, not a second resource
  EXPECT_EQ(TimeOf(retry.create_time()), kNow);
  rf::CertificationQuery all;
  EXPECT_THAT(List(all), ElementsAre("RNCP40344"));

  // The same key with another request is refused, and creates nothing.
  pb::CreateCertificationRequest other = request;
  *other.mutable_certification() = FullCertification("RS6117");
  const rf::IdempotencyKey reused{kMethod, request.request_id(), &other};
  absl::StatusOr<pb::Certification> refused = repo_->CreateCertification(other.certification(), reused, kLater);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  EXPECT_EQ(repo_->GetCertification("RS6117").status().code(), absl::StatusCode::kNotFound);

  // A new request_id is a new request: the code is taken.
  pb::CreateCertificationRequest fresh = request;
  fresh.set_request_id("5a0e3e0c-8c55-4a8e-8f1e-2b7d8e9c1d22");
  absl::StatusOr<pb::Certification> dup = repo_->CreateCertification(
      fresh.certification(), rf::IdempotencyKey{kMethod, fresh.request_id(), &fresh}, kLater);
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists) << dup.status();

  // A create that failed records no key: the same request_id works once the conflict is gone.
  pb::CreateCertificationRequest later = request;
  later.set_request_id("c1d2e3f4-0000-4000-8000-000000000001");
  *later.mutable_certification() = FullCertification("RNCP40344");
  const rf::IdempotencyKey later_key{kMethod, later.request_id(), &later};
  EXPECT_EQ(repo_->CreateCertification(later.certification(), later_key, kLater).status().code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_OK(repo_->DeleteCertification("RNCP40344", std::nullopt));
  ASSERT_OK_AND_ASSIGN(pb::Certification recreated,
                       repo_->CreateCertification(later.certification(), later_key, kLater));
  EXPECT_EQ(TimeOf(recreated.create_time()), kLater);
}

TEST_P(RepositoryConformanceTest, CreateVersionIsIdempotentOnRequestId) {
  constexpr char kMethod[] = "/parcours.referential.v1.ReferentialService/CreateVersion";
  MustCreate(FullCertification("CQP-TMA"));
  pb::CreateVersionRequest request;
  request.set_parent("certifications/CQP-TMA");
  *request.mutable_version() = FullVersion("v1");
  request.set_request_id("req-version-1");
  const rf::IdempotencyKey key{kMethod, request.request_id(), &request};

  ASSERT_OK_AND_ASSIGN(pb::Version first, repo_->CreateVersion("CQP-TMA", request.version(), key, kNow));
  ASSERT_OK_AND_ASSIGN(pb::Version retry, repo_->CreateVersion("CQP-TMA", request.version(), key, kLater));
  EXPECT_TRUE(ProtoEqual(first, retry));
  ASSERT_OK_AND_ASSIGN(std::vector<pb::Version> listed, repo_->ListVersions("CQP-TMA", 0, 10, false));
  EXPECT_THAT(Names(listed), ElementsAre(VersionName("CQP-TMA", 1)));

  pb::CreateVersionRequest other = request;
  other.mutable_version()->set_description("v1 bis");
  absl::StatusOr<pb::Version> refused = repo_->CreateVersion(
      "CQP-TMA", other.version(), rf::IdempotencyKey{kMethod, request.request_id(), &other}, kLater);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  ASSERT_OK_AND_ASSIGN(listed, repo_->ListVersions("CQP-TMA", 0, 10, false));
  EXPECT_THAT(Names(listed), ElementsAre(VersionName("CQP-TMA", 1)));

  // Keys are per method: the same request_id on another method is another request.
  pb::CreateCertificationRequest cert_request;
  *cert_request.mutable_certification() = FullCertification("RS6117");
  cert_request.set_request_id("req-version-1");
  ASSERT_OK(repo_->CreateCertification(cert_request.certification(),
                                       rf::IdempotencyKey{"/parcours.referential.v1.ReferentialService/"
                                                          "CreateCertification",
                                                          cert_request.request_id(), &cert_request},
                                       kLater)
                .status());
  EXPECT_EQ(MustCreateVersion("CQP-TMA", FullVersion("v2")).name(), VersionName("CQP-TMA", 2));
}

// --- Concurrency -------------------------------------------------------------------------------

TEST_P(RepositoryConformanceTest, ConcurrentUpdatesWithTheSameEtagHaveExactlyOneWinner) {
  const pb::Certification created = MustCreate(FullCertification("RNCP40344"));
  const int64_t expected = EtagVersion(created.etag());
  constexpr int kThreads = 8;
  std::vector<absl::Status> results(kThreads);
  absl::Notification go;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      go.WaitForNotification();
      results[i] = repo_->UpdateCertification(
                            "RNCP40344", expected,
                            [i](pb::Certification& c) {
                              // Long enough for every writer to have read the same version.
                              absl::SleepFor(absl::Milliseconds(20));
                              c.set_title(absl::StrCat("Titre écrit par ", i));
                              c.clear_certifiers();
                              c.add_certifiers()->set_name(absl::StrCat("Certificateur ", i));
                              return absl::OkStatus();
                            },
                            kLater)
                       .status();
    });
  }
  go.Notify();
  for (std::thread& t : threads) t.join();

  int winner = -1;
  int wins = 0;
  for (int i = 0; i < kThreads; ++i) {
    if (results[i].ok()) {
      winner = i;
      ++wins;
    } else {
      EXPECT_EQ(results[i].code(), absl::StatusCode::kAborted) << "thread " << i << ": " << results[i];
    }
  }
  ASSERT_EQ(wins, 1);
  ASSERT_OK_AND_ASSIGN(pb::Certification got, repo_->GetCertification("RNCP40344"));
  EXPECT_EQ(got.title(), absl::StrCat("Titre écrit par ", winner));
  EXPECT_EQ(EtagVersion(got.etag()), expected + 1);
  ASSERT_EQ(got.certifiers_size(), 1);
  EXPECT_EQ(got.certifiers(0).name(), absl::StrCat("Certificateur ", winner));
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_THAT(ListByCertifier(absl::StrCat("Certificateur ", i)),
                i == winner ? std::vector<std::string>{"RNCP40344"} : std::vector<std::string>{})
        << "certifier of thread " << i;
  }
}

TEST_P(RepositoryConformanceTest, ConcurrentVersionCreatesGetDistinctNumbers) {
  MustCreate(FullCertification("CQP-TMA"));
  constexpr int kThreads = 8;
  std::vector<absl::StatusOr<pb::Version>> results(kThreads, absl::UnknownError("not run"));
  absl::Notification go;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      go.WaitForNotification();
      results[i] = repo_->CreateVersion("CQP-TMA", FullVersion(absl::StrCat("thread ", i)), {}, kNow);
    });
  }
  go.Notify();
  for (std::thread& t : threads) t.join();

  std::vector<std::string> names;
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_TRUE(results[i].ok()) << "thread " << i << ": " << results[i].status();
    names.push_back(results[i]->name());
    // Each thread got its own content back under its number.
    ASSERT_OK_AND_ASSIGN(pb::Version stored, repo_->GetVersion("CQP-TMA", static_cast<int>(
                                                                              results[i]->name().back() - '0')));
    EXPECT_EQ(stored.description(), absl::StrCat("thread ", i));
  }
  std::sort(names.begin(), names.end());
  std::vector<std::string> expected;
  for (int n = 1; n <= kThreads; ++n) expected.push_back(VersionName("CQP-TMA", n));
  EXPECT_THAT(names, ElementsAreArray(expected));
  ASSERT_OK_AND_ASSIGN(std::vector<pb::Version> listed, repo_->ListVersions("CQP-TMA", 0, 100, false));
  EXPECT_EQ(listed.size(), static_cast<size_t>(kThreads));
  EXPECT_EQ(MustCreateVersion("CQP-TMA", pb::Version()).name(), VersionName("CQP-TMA", kThreads + 1));
}

TEST_P(RepositoryConformanceTest, ConcurrentPublicationsLeaveTheNewestAsCurrentVersion) {
  MustCreate(FullCertification("CQP-TMA"));
  constexpr int kThreads = 8;
  for (int n = 1; n <= kThreads; ++n) MustCreateVersion("CQP-TMA", FullVersion(absl::StrCat("v", n)));
  std::vector<absl::Status> results(kThreads);
  absl::Notification go;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      go.WaitForNotification();
      results[i] = repo_->UpdateVersion(
                            "CQP-TMA", i + 1, std::nullopt,
                            [](pb::Version& v) {
                              // Every writer reads its draft before any publication commits.
                              absl::SleepFor(absl::Milliseconds(20));
                              v.set_state(pb::VERSION_STATE_PUBLISHED);
                              return absl::OkStatus();
                            },
                            kLater)
                       .status();
    });
  }
  go.Notify();
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) EXPECT_TRUE(results[i].ok()) << "version " << i + 1 << ": " << results[i];
  ASSERT_OK_AND_ASSIGN(pb::Certification c, repo_->GetCertification("CQP-TMA"));
  EXPECT_EQ(c.current_version(), VersionName("CQP-TMA", kThreads));
}

INSTANTIATE_TEST_SUITE_P(Backends, RepositoryConformanceTest, ::testing::Values("sqlite", "mysql"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
