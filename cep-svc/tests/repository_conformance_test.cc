// Conformance of the cep repository contract (cep-svc/src/repository.h) on both storage backends:
// the same suite runs on a fresh SQLite file and on a fresh MariaDB database, each migrated with
// the embedded schema.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "cep-svc/src/app.h"
#include "cep-svc/src/repository.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/rpc/error_details.pb.h"
#include "parcours/cep/v1/cep.pb.h"
#include "platform/aip.h"
#include "platform/db/db.h"
#include "platform/db/migrations.h"
#include "platform/testing/lock_race.h"
#include "platform/testing/mariadb.h"
#include "platform/proto_time.h"
#include "platform/testing/status_macros.h"

namespace parcours::cep {
const std::vector<db::Migration>& SqliteMigrations();
const std::vector<db::Migration>& MysqlMigrations();
}  // namespace parcours::cep

namespace {

namespace db = ::parcours::db;
namespace cep = ::parcours::cep;
namespace pb = ::parcours::cep::v1;

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;


// The repository never reads a clock: every write gets `now` from the caller.
const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2026, 6, 12, 9, 30, 0), absl::UTCTimeZone()) + absl::Microseconds(123456);
const absl::Time kLater = kNow + absl::Hours(1) + absl::Microseconds(7);
// The beneficiary the conformance cases are counted under in the indicators.
const cep::indicators::Subject kSubject{"53", 1, 1985, 1, 4};

absl::Time TimeOf(const google::protobuf::Timestamp& ts) { return parcours::FromTimestamp(ts); }

void SetTime(google::protobuf::Timestamp* ts, absl::Time t) { *ts = parcours::ToTimestamp(t); }

google::type::Date Date(int y, int m, int d) {
  google::type::Date out;
  out.set_year(y);
  out.set_month(m);
  out.set_day(d);
  return out;
}

::testing::AssertionResult ProtoEqual(const google::protobuf::Message& expected,
                                      const google::protobuf::Message& actual) {
  std::string diff;
  MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&diff);
  if (differencer.Compare(expected, actual)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected -> actual differences:\n" << diff;
}

std::string ResourceInfoName(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload("type.googleapis.com/google.rpc.ResourceInfo");
  if (!payload.has_value()) return "<no ResourceInfo>";
  google::rpc::ResourceInfo info;
  if (!info.ParseFromString(std::string(*payload))) return "<corrupt ResourceInfo>";
  return info.resource_name();
}

std::string LastSegment(const std::string& name) { return name.substr(name.rfind('/') + 1); }

template <typename T>
std::vector<std::string> Ids(const std::vector<T>& list) {
  std::vector<std::string> out;
  for (const T& item : list) out.push_back(LastSegment(item.name()));
  return out;
}

// --- Fixtures ----------------------------------------------------------------------------------

pb::Operator FullOperator(const std::string& id, pb::OperatorKind kind = pb::OPERATOR_KIND_REGIONAL_EMPLOYED,
                          std::vector<std::string> regions = {"53"}) {
  pb::Operator op;
  op.set_name(absl::StrCat("operators/", id));
  op.set_display_name(absl::StrCat("Opérateur régional « ", id, " » — Bretagne"));
  op.set_kind(kind);
  for (const std::string& r : regions) op.add_regions(r);
  return op;
}

cep::Designation Designation(const std::string& op, const std::string& region, int start, int end = 0) {
  cep::Designation d;
  d.operator_id = op;
  d.region = region;
  d.start_yyyymmdd = start;
  d.end_yyyymmdd = end;
  return d;
}

// Adds `d` at the operator's current version (0 when there is no such operator).
absl::Status AddDesignation(cep::CepTx& tx, const cep::Designation& d) {
  absl::StatusOr<cep::Versioned<pb::Operator>> op = tx.GetOperator(d.operator_id);
  if (!op.ok() && !absl::IsNotFound(op.status())) return op.status();
  return tx.AddDesignation(d, op.ok() ? op->version : 0);
}

pb::Beneficiary FullBeneficiary(const std::string& pseudonym, int birth_year = 1985) {
  pb::Beneficiary b;
  b.set_name(absl::StrCat("beneficiaries/", pseudonym));
  b.set_birth_year(birth_year);
  b.set_sex(pb::SEX_FEMALE);
  b.set_department("2A");
  b.set_region("94");
  b.set_status(pb::EMPLOYMENT_STATUS_EMPLOYEE);
  b.set_qualification_level(5);
  return b;
}

// What one operator registered of the person: another department, region, status and level.
pb::Beneficiary Situation(const std::string& pseudonym, const std::string& department, const std::string& region,
                          pb::EmploymentStatus status, int qualification_level) {
  pb::Beneficiary b = FullBeneficiary(pseudonym);
  b.set_department(department);
  b.set_region(region);
  b.set_status(status);
  b.set_qualification_level(qualification_level);
  return b;
}

pb::ContactDetails Contact(const std::string& display_name) {
  pb::ContactDetails c;
  c.set_display_name(display_name);
  c.set_email("zoe.lefevre@exemple.fr");
  c.set_phone("+33 6 12 34 56 78");
  c.set_postal_address("3 rue de l’Église, 20000 Ajaccio");
  return c;
}

// Every field of a case, output fields included (the service sets them before storing), with
// French UTF-8 text.
pb::Case FullCase(const std::string& id, const std::string& op = "apec", const std::string& pseudonym = "p1",
                  pb::CaseState state = pb::CASE_STATE_OPEN, const std::string& level = "2019/1",
                  google::type::Date opening = Date(2024, 3, 15), const std::string& external_id = "") {
  pb::Case c;
  c.set_name(absl::StrCat("cases/", id));
  c.set_operator_(absl::StrCat("operators/", op));
  c.set_beneficiary(absl::StrCat("beneficiaries/", pseudonym));
  *c.mutable_opening_date() = opening;
  c.set_level(level);
  c.add_demands(pb::DEMAND_KIND_PROJECT);
  c.add_demands(pb::DEMAND_KIND_SKILLS_RECOGNITION);
  pb::DeliveredService* service = c.add_services();
  service->set_kind(pb::SERVICE_KIND_FINANCIAL_ENGINEERING);
  *service->mutable_date() = Date(2024, 4, 2);
  pb::ProjectDocument* project = c.mutable_project();
  project->set_goal("Reconversion vers l’ébénisterie — CAP en alternance");
  pb::ActionStep* step = project->add_steps();
  step->set_description("Immersion chez un maître d’œuvre");
  step->set_status(pb::STEP_STATUS_PLANNED);
  *step->mutable_due_date() = Date(2024, 6, 30);
  *project->mutable_formalised_date() = Date(2024, 5, 20);
  pb::Outcome* outcome = c.add_outcomes();
  outcome->set_kind(pb::OUTCOME_KIND_VAE);
  *outcome->mutable_date() = Date(2024, 9, 1);
  outcome->set_candidacy("candidacies/c-42");
  pb::Satisfaction* satisfaction = c.add_satisfaction();
  satisfaction->set_when(pb::SATISFACTION_WHEN_END);
  satisfaction->set_score(5);
  *satisfaction->mutable_date() = Date(2024, 10, 1);
  c.set_state(state);
  pb::CaseStateChange* change = c.add_history();
  change->set_from(pb::CASE_STATE_UNSPECIFIED);
  change->set_to(pb::CASE_STATE_OPEN);
  change->set_actor(absl::StrCat("operator:", op));
  SetTime(change->mutable_time(), kNow);
  change->set_reason("Premier entretien");
  c.set_external_id(external_id);
  SetTime(c.mutable_last_activity_time(), kNow - absl::Hours(24));
  return c;
}

pb::Transfer FullTransfer(const std::string& id, const std::string& from = "apec", const std::string& to = "ft",
                          pb::TransferState state = pb::TRANSFER_STATE_REQUESTED, const std::string& case_id = "c1") {
  pb::Transfer t;
  t.set_name(absl::StrCat("transfers/", id));
  t.set_case_(absl::StrCat("cases/", case_id));
  t.set_from_operator(absl::StrCat("operators/", from));
  t.set_to_operator(absl::StrCat("operators/", to));
  t.set_beneficiary_consent(true);
  SetTime(t.mutable_consent_time(), kNow - absl::Minutes(5));
  t.set_state(state);
  t.set_reason("Déménagement en Île-de-France");
  return t;
}

pb::ActivityEvent Event(const std::string& op, const std::string& case_id, pb::ActivityKind kind) {
  pb::ActivityEvent e;
  e.set_kind(kind);
  e.set_operator_(absl::StrCat("operators/", op));
  e.set_case_(absl::StrCat("cases/", case_id));
  e.set_beneficiary("beneficiaries/p1");
  e.set_region("53");
  e.set_month("2024-03");
  e.set_level("2019/2");
  e.set_service(pb::SERVICE_KIND_TRAINING_PATH);
  e.set_outcome(pb::OUTCOME_KIND_TRAINING);
  return e;
}

// The fields the repository sets on read from its own columns (not stored from the input).
pb::Case WithoutEtag(pb::Case c) {
  c.clear_etag();
  return c;
}

pb::Operator WithoutOutputs(pb::Operator op) {
  op.clear_etag();
  op.clear_designations();
  return op;
}

pb::Transfer WithoutCreateTime(pb::Transfer t) {
  t.clear_create_time();
  return t;
}

class CepRepositoryConformanceTest : public ::testing::TestWithParam<std::string> {
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
    const std::vector<db::Migration>& migrations =
        GetParam() == "sqlite" ? cep::SqliteMigrations() : cep::MysqlMigrations();
    ASSERT_FALSE(migrations.empty());
    absl::StatusOr<int> migrated = db::Migrate(*db_, migrations);
    ASSERT_TRUE(migrated.ok()) << migrated.status();
    ASSERT_EQ(*migrated, migrations.back().version);
    repo_ = cep::NewSqlRepository(*db_);
  }

  absl::Status Tx(const std::function<absl::Status(cep::CepTx&)>& fn) { return repo_->Transact(fn); }

  // Runs one read in its own transaction and hands its result back.
  template <typename T>
  absl::StatusOr<T> Read(const std::function<absl::StatusOr<T>(cep::CepTx&)>& fn) {
    absl::StatusOr<T> out = absl::UnknownError("not run");
    absl::Status st = Tx([&](cep::CepTx& tx) {
      out = fn(tx);
      return absl::OkStatus();
    });
    if (!st.ok()) return st;
    return out;
  }

  absl::Status InsertCase(const pb::Case& c, absl::Time now = kNow) {
    return Tx([&](cep::CepTx& tx) { return tx.InsertCase(c, kSubject, now); });
  }
  absl::Status PutCase(const pb::Case& c, int64_t version, absl::Time now = kLater) {
    return Tx([&](cep::CepTx& tx) { return tx.PutCase(c, version, now); });
  }
  absl::StatusOr<cep::Versioned<pb::Case>> GetCase(const std::string& id) {
    return Read<cep::Versioned<pb::Case>>([&](cep::CepTx& tx) { return tx.GetCase(id); });
  }
  absl::Status InsertTransfer(const pb::Transfer& t, absl::Time now = kNow) {
    return Tx([&](cep::CepTx& tx) { return tx.InsertTransfer(t, now); });
  }
  absl::StatusOr<cep::Versioned<pb::Transfer>> GetTransfer(const std::string& id) {
    return Read<cep::Versioned<pb::Transfer>>([&](cep::CepTx& tx) { return tx.GetTransfer(id); });
  }
  absl::Status InsertOperator(const pb::Operator& op) {
    return Tx([&](cep::CepTx& tx) { return tx.InsertOperator(op); });
  }
  absl::StatusOr<cep::Versioned<pb::Operator>> GetOperator(const std::string& id) {
    return Read<cep::Versioned<pb::Operator>>([&](cep::CepTx& tx) { return tx.GetOperator(id); });
  }
  absl::StatusOr<pb::Beneficiary> GetBeneficiary(const std::string& pseudonym) {
    return Read<pb::Beneficiary>([&](cep::CepTx& tx) { return tx.GetBeneficiary(pseudonym); });
  }
  absl::StatusOr<bool> InsertBeneficiary(const pb::Beneficiary& b, absl::Time now = kNow) {
    return Read<bool>([&](cep::CepTx& tx) { return tx.InsertBeneficiaryIfAbsent(b, now); });
  }
  absl::StatusOr<std::optional<pb::ContactDetails>> GetContact(const std::string& pseudonym, const std::string& op) {
    return Read<std::optional<pb::ContactDetails>>([&](cep::CepTx& tx) { return tx.GetContact(pseudonym, op); });
  }
  absl::StatusOr<std::optional<std::string>> FindByExternalId(const std::string& op, const std::string& ext) {
    return Read<std::optional<std::string>>([&](cep::CepTx& tx) { return tx.FindCaseByExternalId(op, ext); });
  }
  absl::StatusOr<int64_t> Append(const pb::ActivityEvent& e, absl::Time now = kNow) {
    return Read<int64_t>([&](cep::CepTx& tx) { return tx.AppendActivity(e, now); });
  }

  std::vector<std::string> ListCaseIds(const cep::CaseQuery& query) {
    absl::StatusOr<std::vector<pb::Case>> listed = repo_->ListCases(query);
    EXPECT_TRUE(listed.ok()) << listed.status();
    return listed.ok() ? Ids(*listed) : std::vector<std::string>{"<error>"};
  }
  std::vector<std::string> ListTransferIds(const cep::TransferQuery& query) {
    absl::StatusOr<std::vector<pb::Transfer>> listed = repo_->ListTransfers(query);
    EXPECT_TRUE(listed.ok()) << listed.status();
    return listed.ok() ? Ids(*listed) : std::vector<std::string>{"<error>"};
  }
  std::vector<std::string> ListOperatorIds(const cep::OperatorQuery& query) {
    absl::StatusOr<std::vector<pb::Operator>> listed = repo_->ListOperators(query);
    EXPECT_TRUE(listed.ok()) << listed.status();
    return listed.ok() ? Ids(*listed) : std::vector<std::string>{"<error>"};
  }
  std::vector<pb::ActivityEvent> ReadAll(int64_t after = 0) {
    absl::StatusOr<std::vector<pb::ActivityEvent>> events = repo_->ReadActivity(after, 100000);
    EXPECT_TRUE(events.ok()) << events.status();
    return events.ok() ? *events : std::vector<pb::ActivityEvent>{};
  }

  std::unique_ptr<db::Db> db_;
  std::unique_ptr<cep::CepRepository> repo_;

  const std::vector<db::Migration>& Migrations() const {
    return GetParam() == "sqlite" ? cep::SqliteMigrations() : cep::MysqlMigrations();
  }
  // A fresh database of this backend at the schema just before migration `version`: the tests of
  // a migration fill it with rows as the previous release wrote them, then migrate to the end.
  absl::StatusOr<std::unique_ptr<db::Db>> DatabaseBefore(int version) const {
    absl::StatusOr<std::string> dsn = GetParam() == "sqlite"
                                          ? absl::StatusOr<std::string>(::parcours::testing::FreshSqliteDatabase())
                                          : ::parcours::testing::FreshMysqlDatabase();
    if (!dsn.ok()) return dsn.status();
    absl::StatusOr<std::unique_ptr<db::Db>> db = db::Open(*dsn);
    if (!db.ok()) return db.status();
    const std::vector<db::Migration>& all = Migrations();
    auto first_new = std::find_if(all.begin(), all.end(), [&](const db::Migration& m) { return m.version == version; });
    if (first_new == all.end()) return absl::NotFoundError(absl::StrCat("no migration ", version));
    absl::StatusOr<int> at = db::Migrate(**db, std::vector<db::Migration>(all.begin(), first_new));
    if (!at.ok()) return at.status();
    if (*at != version - 1) return absl::InternalError(absl::StrCat("migrated to ", *at, ", not ", version - 1));
    return db;
  }
};

int64_t CursorOf(const pb::ActivityEvent& e) {
  int64_t seq = -1;
  EXPECT_TRUE(absl::SimpleAtoi(e.cursor(), &seq)) << e.cursor();
  return seq;
}

// --- Levels, operators, designations ------------------------------------------------------------

TEST_P(CepRepositoryConformanceTest, LevelCataloguesAreSeededAndGroupedInRankOrder) {
  ASSERT_OK_AND_ASSIGN(std::vector<pb::LevelCatalogue> catalogues,
                       Read<std::vector<pb::LevelCatalogue>>([](cep::CepTx& tx) { return tx.ListLevelCatalogues(); }));
  ASSERT_EQ(catalogues.size(), 2u);
  const pb::LevelCatalogue& c2014 = catalogues[0];
  const pb::LevelCatalogue& c2019 = catalogues[1];
  EXPECT_EQ(c2014.id(), "2014");
  EXPECT_EQ(c2014.label(), "Cahier des charges 2014 (trois niveaux)");
  ASSERT_EQ(c2014.levels_size(), 3);
  EXPECT_EQ(c2019.id(), "2019");
  EXPECT_EQ(c2019.label(), "Cahier des charges 2019 (deux niveaux)");
  ASSERT_EQ(c2019.levels_size(), 2);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c2014.levels(i).id(), absl::StrCat("2014/", i + 1));
    EXPECT_EQ(c2014.levels(i).catalogue(), "2014");
    EXPECT_EQ(c2014.levels(i).rank(), i + 1);
  }
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(c2019.levels(i).id(), absl::StrCat("2019/", i + 1));
    EXPECT_EQ(c2019.levels(i).catalogue(), "2019");
    EXPECT_EQ(c2019.levels(i).rank(), i + 1);
  }
  // UTF-8 labels come back byte for byte (é, œ).
  EXPECT_EQ(c2014.levels(0).label(), "Accueil individualisé");
  EXPECT_EQ(c2014.levels(1).label(), "Conseil personnalisé");
  EXPECT_EQ(c2014.levels(2).label(), "Accompagnement à la mise en œuvre du projet professionnel");
  EXPECT_EQ(c2019.levels(1).label(), "Conseil personnalisé et accompagnement à la mise en œuvre");
}

TEST_P(CepRepositoryConformanceTest, OperatorRoundTripsWithItsDesignations) {
  pb::Operator input = FullOperator("ore-bzh", pb::OPERATOR_KIND_REGIONAL_EMPLOYED, {"53", "52"});
  pb::Operator spoofed = input;
  spoofed.set_etag("\"42\"");
  pb::DesignationPeriod* ignored = spoofed.add_designations();  // output only: not stored from the input
  ignored->set_region("11");
  *ignored->mutable_start_date() = Date(2020, 1, 1);
  ASSERT_OK(InsertOperator(spoofed));
  ASSERT_OK_AND_ASSIGN(cep::Versioned<pb::Operator> got, GetOperator("ore-bzh"));
  EXPECT_EQ(got.version, 1);
  EXPECT_TRUE(ProtoEqual(input, WithoutOutputs(got.value)));
  EXPECT_EQ(got.value.etag(), parcours::aip::Etag(1));
  EXPECT_EQ(got.value.designations_size(), 0);

  absl::Status st = InsertOperator(FullOperator("ore-bzh", pb::OPERATOR_KIND_APEC));
  EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists) << st;
  EXPECT_EQ(ResourceInfoName(st), "operators/ore-bzh");
  st = GetOperator("nope").status();
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_EQ(ResourceInfoName(st), "operators/nope");
  pb::Operator bad = FullOperator("x");
  bad.set_name("operator/x");
  EXPECT_EQ(InsertOperator(bad).code(), absl::StatusCode::kInvalidArgument);

  // Designations: stored as rows, returned inside the operator in date order; each one moves the
  // operator's version (etag) on.
  ASSERT_OK(InsertOperator(FullOperator("ore-pdl", pb::OPERATOR_KIND_REGIONAL_EMPLOYED, {"52"})));
  ASSERT_OK(Tx([&](cep::CepTx& tx) -> absl::Status {
    if (absl::Status s = AddDesignation(tx, Designation("ore-bzh", "53", 20230101)); !s.ok()) return s;
    if (absl::Status s = AddDesignation(tx, Designation("ore-bzh", "53", 20200101, 20221231)); !s.ok()) return s;
    if (absl::Status s = AddDesignation(tx, Designation("ore-bzh", "52", 20210601, 20211231)); !s.ok()) return s;
    return AddDesignation(tx, Designation("ore-pdl", "53", 20190101, 20191231));
  }));
  ASSERT_OK_AND_ASSIGN(got, GetOperator("ore-bzh"));
  EXPECT_EQ(got.version, 4);
  EXPECT_EQ(got.value.etag(), parcours::aip::Etag(4));
  EXPECT_TRUE(ProtoEqual(input, WithoutOutputs(got.value)));
  ASSERT_EQ(got.value.designations_size(), 3);
  EXPECT_EQ(got.value.designations(0).region(), "53");
  EXPECT_TRUE(ProtoEqual(Date(2020, 1, 1), got.value.designations(0).start_date()));
  EXPECT_TRUE(ProtoEqual(Date(2022, 12, 31), got.value.designations(0).end_date()));
  EXPECT_EQ(got.value.designations(1).region(), "52");
  EXPECT_TRUE(ProtoEqual(Date(2021, 6, 1), got.value.designations(1).start_date()));
  EXPECT_EQ(got.value.designations(2).region(), "53");
  EXPECT_TRUE(ProtoEqual(Date(2023, 1, 1), got.value.designations(2).start_date()));
  EXPECT_FALSE(got.value.designations(2).has_end_date());  // open-ended

  // FindOperator: the same operator without its designations; NOT_FOUND names the operator.
  ASSERT_OK_AND_ASSIGN(pb::Operator found,
                       Read<pb::Operator>([](cep::CepTx& tx) { return tx.FindOperator("ore-bzh"); }));
  EXPECT_EQ(found.designations_size(), 0);
  EXPECT_TRUE(ProtoEqual(input, WithoutOutputs(found)));
  st = Read<pb::Operator>([](cep::CepTx& tx) { return tx.FindOperator("nope"); }).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_EQ(ResourceInfoName(st), "operators/nope");

  ASSERT_OK_AND_ASSIGN(
      std::vector<cep::Designation> bzh,
      Read<std::vector<cep::Designation>>([](cep::CepTx& tx) { return tx.ListDesignations("53"); }));
  ASSERT_EQ(bzh.size(), 3u);
  EXPECT_EQ(bzh[0].operator_id, "ore-pdl");
  EXPECT_EQ(bzh[0].start_yyyymmdd, 20190101);
  EXPECT_EQ(bzh[0].end_yyyymmdd, 20191231);
  EXPECT_EQ(bzh[1].operator_id, "ore-bzh");
  EXPECT_EQ(bzh[1].start_yyyymmdd, 20200101);
  EXPECT_EQ(bzh[2].operator_id, "ore-bzh");
  EXPECT_EQ(bzh[2].region, "53");
  EXPECT_EQ(bzh[2].start_yyyymmdd, 20230101);
  EXPECT_EQ(bzh[2].end_yyyymmdd, 0);
  ASSERT_OK_AND_ASSIGN(
      std::vector<cep::Designation> idf,
      Read<std::vector<cep::Designation>>([](cep::CepTx& tx) { return tx.ListDesignations("11"); }));
  EXPECT_THAT(idf, IsEmpty());

  // A designation of an unknown operator is NOT_FOUND; the same period twice is ALREADY_EXISTS
  // and rolls its transaction back (version unchanged).
  st = Tx([&](cep::CepTx& tx) { return AddDesignation(tx, Designation("nope", "53", 20240101)); });
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  st = Tx([&](cep::CepTx& tx) { return AddDesignation(tx, Designation("ore-bzh", "53", 20230101, 20231231)); });
  EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists) << st;
  ASSERT_OK_AND_ASSIGN(got, GetOperator("ore-bzh"));
  EXPECT_EQ(got.version, 4);
  EXPECT_EQ(got.value.designations_size(), 3);

  // A designation at a version that moved on (two callers who read the same etag: the first one
  // added its designation) is ABORTED and adds nothing.
  ASSERT_OK(Tx([&](cep::CepTx& tx) { return tx.AddDesignation(Designation("ore-bzh", "52", 20240101, 20241231), 4); }));
  st = Tx([&](cep::CepTx& tx) { return tx.AddDesignation(Designation("ore-bzh", "52", 20250101, 20251231), 4); });
  EXPECT_EQ(st.code(), absl::StatusCode::kAborted) << st;
  EXPECT_EQ(ResourceInfoName(st), "operators/ore-bzh");
  ASSERT_OK_AND_ASSIGN(got, GetOperator("ore-bzh"));
  EXPECT_EQ(got.version, 5);
  EXPECT_EQ(got.value.designations_size(), 4);
}

// --- Beneficiaries and contacts ----------------------------------------------------------------

TEST_P(CepRepositoryConformanceTest, BeneficiaryIsInsertedOnceAndKeepsItsFirstAttributes) {
  const pb::Beneficiary first = FullBeneficiary("0123456789abcdef0123456789abcdef", 1985);
  ASSERT_OK_AND_ASSIGN(bool inserted, InsertBeneficiary(first));
  EXPECT_TRUE(inserted);
  ASSERT_OK_AND_ASSIGN(pb::Beneficiary got, GetBeneficiary("0123456789abcdef0123456789abcdef"));
  EXPECT_TRUE(ProtoEqual(first, got));
  EXPECT_FALSE(got.anonymised());

  // The same person registered again (at another operator, other attributes): no error, false,
  // nothing changed, and the rest of the transaction commits.
  pb::Beneficiary second = FullBeneficiary("0123456789abcdef0123456789abcdef", 1990);
  second.set_sex(pb::SEX_MALE);
  second.set_department("35");
  second.set_region("53");
  std::vector<bool> results;
  ASSERT_OK(Tx([&](cep::CepTx& tx) -> absl::Status {
    absl::StatusOr<bool> again = tx.InsertBeneficiaryIfAbsent(second, kLater);
    if (!again.ok()) return again.status();
    results.push_back(*again);
    absl::StatusOr<bool> other = tx.InsertBeneficiaryIfAbsent(FullBeneficiary("fedcba9876543210"), kLater);
    if (!other.ok()) return other.status();
    results.push_back(*other);
    absl::StatusOr<bool> other_again = tx.InsertBeneficiaryIfAbsent(FullBeneficiary("fedcba9876543210"), kLater);
    if (!other_again.ok()) return other_again.status();
    results.push_back(*other_again);
    return absl::OkStatus();
  }));
  EXPECT_THAT(results, ElementsAre(false, true, false));
  ASSERT_OK_AND_ASSIGN(got, GetBeneficiary("0123456789abcdef0123456789abcdef"));
  EXPECT_TRUE(ProtoEqual(first, got));
  ASSERT_OK_AND_ASSIGN(got, GetBeneficiary("fedcba9876543210"));
  EXPECT_TRUE(ProtoEqual(FullBeneficiary("fedcba9876543210"), got));

  absl::Status st = GetBeneficiary("nope").status();
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_EQ(ResourceInfoName(st), "beneficiaries/nope");
  pb::Beneficiary bad = FullBeneficiary("x");
  bad.set_name("x");
  EXPECT_EQ(InsertBeneficiary(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

// The hashes of anonymised cases' external ids: kept once per operator, found per operator.
TEST_P(CepRepositoryConformanceTest, ErasedExternalIdHashesAreKeptPerOperator) {
  ASSERT_OK(Tx([](cep::CepTx& tx) { return tx.RememberErasedExternalId("ft", "h1"); }));
  ASSERT_OK(Tx([](cep::CepTx& tx) { return tx.RememberErasedExternalId("ft", "h1"); }));  // again: left as it is
  ASSERT_OK(Tx([](cep::CepTx& tx) { return tx.RememberErasedExternalId("apec", "h2"); }));
  std::set<std::string> found;
  ASSERT_OK(Tx([&](cep::CepTx& tx) -> absl::Status {
    auto hits = tx.FindErasedExternalIds("ft", {"h1", "h2", "h3"});
    if (!hits.ok()) return hits.status();
    found = *hits;
    return absl::OkStatus();
  }));
  EXPECT_EQ(found, (std::set<std::string>{"h1"}));
  ASSERT_OK(Tx([&](cep::CepTx& tx) -> absl::Status {
    auto none = tx.FindErasedExternalIds("ft", {});
    if (!none.ok()) return none.status();
    EXPECT_TRUE(none->empty());
    return absl::OkStatus();
  }));
}

TEST_P(CepRepositoryConformanceTest, ContactDetailsAreKeptPerOperator) {
  ASSERT_OK(InsertBeneficiary(FullBeneficiary("p1")).status());
  const pb::Beneficiary at_apec = Situation("p1", "35", "53", pb::EMPLOYMENT_STATUS_JOB_SEEKER, 3);
  ASSERT_OK(Tx([&](cep::CepTx& tx) { return tx.PutContact("p1", "apec", Contact("Zoé Lefèvre-Ørsted"), at_apec, kNow); }));

  ASSERT_OK_AND_ASSIGN(std::optional<pb::ContactDetails> a, GetContact("p1", "apec"));
  ASSERT_TRUE(a.has_value());
  pb::ContactDetails expected = Contact("Zoé Lefèvre-Ørsted");
  expected.set_beneficiary("beneficiaries/p1");
  EXPECT_TRUE(ProtoEqual(expected, *a));
  // Operator B does not get A's details; nor does another beneficiary at A.
  ASSERT_OK_AND_ASSIGN(std::optional<pb::ContactDetails> b, GetContact("p1", "ft"));
  EXPECT_FALSE(b.has_value());
  ASSERT_OK_AND_ASSIGN(std::optional<pb::ContactDetails> other, GetContact("p2", "apec"));
  EXPECT_FALSE(other.has_value());

  // B records its own; a second put replaces A's whole document.
  const pb::Beneficiary at_ft = Situation("p1", "75", "11", pb::EMPLOYMENT_STATUS_EMPLOYEE, 6);
  ASSERT_OK(Tx([&](cep::CepTx& tx) { return tx.PutContact("p1", "ft", Contact("Z. Lefèvre"), at_ft, kNow); }));
  pb::ContactDetails replaced;
  replaced.set_display_name("Zoé L.");
  replaced.set_phone("+33 2 99 00 00 00");
  const pb::Beneficiary moved = Situation("p1", "22", "53", pb::EMPLOYMENT_STATUS_SELF_EMPLOYED, 4);
  ASSERT_OK(Tx([&](cep::CepTx& tx) { return tx.PutContact("p1", "apec", replaced, moved, kNow); }));
  ASSERT_OK_AND_ASSIGN(a, GetContact("p1", "apec"));
  ASSERT_TRUE(a.has_value());
  replaced.set_beneficiary("beneficiaries/p1");
  EXPECT_TRUE(ProtoEqual(replaced, *a));
  ASSERT_OK_AND_ASSIGN(b, GetContact("p1", "ft"));
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->display_name(), "Z. Lefèvre");
  EXPECT_EQ(b->email(), "zoe.lefevre@exemple.fr");

  // Each operator reads the person with the situation it recorded last; the shared record keeps
  // the first registration's, and an operator without a row of its own does not see the person.
  for (const auto& [op, expected_situation] :
       std::vector<std::pair<std::string, pb::Beneficiary>>{{"apec", moved}, {"ft", at_ft}}) {
    ASSERT_OK_AND_ASSIGN(auto seen, (Read<std::map<std::string, pb::Beneficiary>>([&](cep::CepTx& tx) {
                           return tx.GetBeneficiariesSeenBy(op, {"p1"});
                         })));
    ASSERT_EQ(seen.count("p1"), 1u) << op;
    EXPECT_TRUE(ProtoEqual(seen["p1"], expected_situation)) << op;
  }
  ASSERT_OK_AND_ASSIGN(pb::Beneficiary shared, GetBeneficiary("p1"));
  EXPECT_TRUE(ProtoEqual(shared, FullBeneficiary("p1")));
  ASSERT_OK_AND_ASSIGN(auto unseen, (Read<std::map<std::string, pb::Beneficiary>>([&](cep::CepTx& tx) {
                         return tx.GetBeneficiariesSeenBy("ml", {"p1"});
                       })));
  EXPECT_TRUE(unseen.empty());
}

// Migrations 0007 and 0008 on a database at 0006: existing contact rows start their retention
// clock at the migration, and cases anonymised before leave the person's pseudonym (each its own
// random name) while live cases keep it.
TEST_P(CepRepositoryConformanceTest, MigratedAnonymisedCasesLeaveThePseudonymAndContactsGetAClock) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<db::Db> old, DatabaseBefore(7));
  const std::vector<db::Migration>& all = Migrations();
  ASSERT_OK(old->Transact([](db::Tx& tx) -> absl::Status {
    for (const char* sql :
         {"INSERT INTO contacts (pseudonym, operator_id, doc) VALUES ('p1', 'ft', '')",
          "INSERT INTO cases (id, operator_id, pseudonym, state, level, opening_date, doc, version, last_activity, "
          "create_time, update_time) VALUES ('gone1', 'ft', 'p1', 4, '2019/2', 20200101, '', 1, 1, 1, 1), "
          "('gone2', 'apec', 'p1', 4, '2019/2', 20200101, '', 1, 1, 1, 1), "
          "('live', 'ft', 'p1', 1, '2019/2', 20240101, '', 1, 1, 1, 1)"}) {
      if (absl::Status s = tx.Exec(sql).status(); !s.ok()) return s;
    }
    return absl::OkStatus();
  }));
  const int64_t before = absl::ToUnixMicros(absl::Now()) - 60 * 1000000;
  ASSERT_OK_AND_ASSIGN(int at, db::Migrate(*old, all));
  ASSERT_EQ(at, all.back().version);
  std::unique_ptr<cep::CepRepository> repo = cep::NewSqlRepository(*old);
  std::map<std::string, std::string> beneficiary_of;
  std::optional<cep::ContactRetention> clock;
  ASSERT_OK(repo->Transact([&](cep::CepTx& tx) -> absl::Status {
    for (const char* id : {"gone1", "gone2", "live"}) {
      auto c = tx.GetCase(id);
      if (!c.ok()) return c.status();
      beneficiary_of[id] = c->value.beneficiary();
    }
    auto retention = tx.GetContactRetention("p1", "ft");
    if (!retention.ok()) return retention.status();
    clock = *retention;
    return absl::OkStatus();
  }));
  EXPECT_EQ(beneficiary_of["live"], "beneficiaries/p1");
  for (const char* id : {"gone1", "gone2"}) {
    EXPECT_THAT(beneficiary_of[id], ::testing::MatchesRegex("beneficiaries/[0-9a-f]{32}")) << id;
  }
  EXPECT_NE(beneficiary_of["gone1"], beneficiary_of["gone2"]);
  ASSERT_TRUE(clock.has_value());
  EXPECT_GT(clock->last_activity, before);
  EXPECT_EQ(clock->notice_date, 0);
}

// Migration 0009 on a database at 0008 whose rollups were counted the previous way (no people nor
// repeats beside services, outcomes and responses; every start of the follow-up at detail 0): `migrate`
// completes them to what a recount gives, over more cases than one chunk, and only once; a
// rebuild ends a backfill still pending.
TEST_P(CepRepositoryConformanceTest, MigratedRollupsGetThePeopleAndTheRestarts) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<db::Db> old, DatabaseBefore(9));
  std::unique_ptr<cep::CepRepository> repo = cep::NewSqlRepository(*old);
  // Three services in January 2024 (two of a kind), closed in February, reopened in June: a restart.
  pb::Case c = FullCase("c1", "apec", "p1", pb::CASE_STATE_OPEN, "2019/1", Date(2024, 1, 10));
  for (int day : {3, 4, 5}) {
    pb::DeliveredService* s = c.add_services();
    s->set_kind(day == 5 ? pb::SERVICE_KIND_TRAINING_PATH : pb::SERVICE_KIND_INFORMATION);
    *s->mutable_date() = Date(2024, 1, day);
  }
  pb::CaseStateChange* closing = c.add_history();
  closing->set_from(pb::CASE_STATE_OPEN);
  closing->set_to(pb::CASE_STATE_CLOSED);
  SetTime(closing->mutable_time(), absl::FromCivil(absl::CivilDay(2024, 2, 20), absl::UTCTimeZone()));
  *closing->mutable_effective_date() = Date(2024, 2, 15);
  pb::CaseStateChange* reopening = c.add_history();
  reopening->set_from(pb::CASE_STATE_CLOSED);
  reopening->set_to(pb::CASE_STATE_OPEN);
  SetTime(reopening->mutable_time(), absl::FromCivil(absl::CivilDay(2024, 6, 3), absl::UTCTimeZone()));
  ASSERT_OK(repo->Transact([&](cep::CepTx& tx) { return tx.InsertCase(c, kSubject, kNow); }));
  std::vector<pb::Case> rows;
  for (int i = 0; i < 1100; ++i) {
    rows.push_back(FullCase(absl::StrCat("m", i), "apec", "p9", pb::CASE_STATE_OPEN, "2019/1", Date(2024, 3, 2),
                            absl::StrCat("M", i)));
  }
  ASSERT_OK(repo->Transact([&](cep::CepTx& tx) {
    return tx.InsertCases(rows, std::vector<cep::indicators::Subject>(rows.size(), kSubject), kNow).status();
  }));
  // As the previous release counted them (the restart's month has no other start to merge with).
  ASSERT_OK(old->Transact([](db::Tx& tx) -> absl::Status {
    for (const char* sql : {"DELETE FROM indicator_rollup WHERE measure IN (13, 14, 15, 23, 24, 25)",
                            "UPDATE indicator_rollup SET detail = 0 WHERE measure = 10 AND detail <> 0"}) {
      if (absl::Status s = tx.Exec(sql).status(); !s.ok()) return s;
    }
    return absl::OkStatus();
  }));
  ASSERT_OK_AND_ASSIGN(cep::indicators::Rollup recount, repo->RecomputeRollup());
  ASSERT_OK_AND_ASSIGN(cep::indicators::Rollup stored, repo->ReadRollup());
  ASSERT_FALSE(stored == recount);

  ASSERT_OK_AND_ASSIGN(int at, cep::Migrate(*old));
  ASSERT_EQ(at, Migrations().back().version);
  ASSERT_OK_AND_ASSIGN(stored, repo->ReadRollup());
  EXPECT_TRUE(stored == recount) << stored.size() << " cells stored, " << recount.size() << " recounted";
  auto pending = [&] {
    absl::StatusOr<db::Rows> n = old->Query("SELECT COUNT(*) FROM indicator_backfill");
    return n.ok() && !n->empty() ? n->front().Int(0) : -1;
  };
  EXPECT_EQ(pending(), 0);
  ASSERT_OK(cep::Migrate(*old).status());
  ASSERT_OK_AND_ASSIGN(stored, repo->ReadRollup());
  EXPECT_TRUE(stored == recount);

  ASSERT_OK(old->Transact([](db::Tx& tx) {
    return tx.Exec("INSERT INTO indicator_backfill (name, after_case) VALUES ('people_and_restarts', '')").status();
  }));
  // A server does not start on a backfill left unfinished (an interrupted migrate).
  EXPECT_EQ(cep::CheckRollupsComplete(*old).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_OK(repo->RebuildRollup());
  EXPECT_OK(cep::CheckRollupsComplete(*old));
  EXPECT_EQ(pending(), 0);
  ASSERT_OK(cep::Migrate(*old).status());
  ASSERT_OK_AND_ASSIGN(stored, repo->ReadRollup());
  EXPECT_TRUE(stored == recount);
}

// Migration 0006 gives each existing contact row the situation it saw until then: the shared
// record's. A database at 0005 with people registered at two operators, migrated to the end; then
// a row written without a situation (the previous binary, during a rolling update).
TEST_P(CepRepositoryConformanceTest, MigratedContactRowsStartFromTheSharedSituation) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<db::Db> old, DatabaseBefore(6));
  const std::vector<db::Migration>& all = Migrations();
  ASSERT_OK(old->Transact([](db::Tx& tx) -> absl::Status {
    for (const char* sql :
         {"INSERT INTO beneficiaries (pseudonym, birth_year, sex, department, region, status, qualification_level, "
          "anonymised, create_time) VALUES ('p1', 1985, 2, '2A', '94', 2, 5, 0, 1), "
          "('p2', 1990, 1, '35', '53', 1, 3, 0, 1)",
          "INSERT INTO contacts (pseudonym, operator_id, doc) VALUES ('p1', 'apec', ''), ('p1', 'ft', ''), "
          "('p2', 'ft', '')"}) {
      if (absl::Status s = tx.Exec(sql).status(); !s.ok()) return s;
    }
    return absl::OkStatus();
  }));
  ASSERT_OK_AND_ASSIGN(int at, db::Migrate(*old, all));
  ASSERT_EQ(at, all.back().version);
  std::unique_ptr<cep::CepRepository> repo = cep::NewSqlRepository(*old);
  for (const char* op : {"apec", "ft"}) {
    std::map<std::string, pb::Beneficiary> seen;
    ASSERT_OK(repo->Transact([&](cep::CepTx& tx) -> absl::Status {
      auto got = tx.GetBeneficiariesSeenBy(op, {"p1", "p2"});
      if (!got.ok()) return got.status();
      seen = *std::move(got);
      return absl::OkStatus();
    }));
    ASSERT_EQ(seen.count("p1"), 1u) << op;
    EXPECT_EQ(seen["p1"].department(), "2A") << op;
    EXPECT_EQ(seen["p1"].region(), "94") << op;
    EXPECT_EQ(seen["p1"].status(), 2) << op;
    EXPECT_EQ(seen["p1"].qualification_level(), 5) << op;
  }
  // A row the previous binary writes during a rolling update has no situation: the shared one.
  ASSERT_OK(old->Transact([](db::Tx& tx) {
    return tx.Exec("INSERT INTO contacts (pseudonym, operator_id, doc) VALUES ('p2', 'apec', '')").status();
  }));
  std::map<std::string, pb::Beneficiary> seen_by_apec;
  ASSERT_OK(repo->Transact([&](cep::CepTx& tx) -> absl::Status {
    auto got = tx.GetBeneficiariesSeenBy("apec", {"p2"});
    if (!got.ok()) return got.status();
    seen_by_apec = *std::move(got);
    return absl::OkStatus();
  }));
  ASSERT_EQ(seen_by_apec.count("p2"), 1u);
  EXPECT_EQ(seen_by_apec["p2"].department(), "35");
  EXPECT_EQ(seen_by_apec["p2"].region(), "53");
  EXPECT_EQ(seen_by_apec["p2"].status(), 1);
  EXPECT_EQ(seen_by_apec["p2"].qualification_level(), 3);
  ASSERT_OK_AND_ASSIGN(db::Rows rows, old->Query("SELECT department, region, status, qualification_level FROM "
                                                 "contacts WHERE pseudonym = 'p2' AND operator_id = 'ft'"));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].Str(0), "35");
  EXPECT_EQ(rows[0].Str(1), "53");
  EXPECT_EQ(rows[0].Int(2), 1);
  EXPECT_EQ(rows[0].Int(3), 3);
}

// Two transactions that decide from a person's rows both lock the person first: the second waits
// for the first to end, then reads what it wrote (platform/testing/lock_race.h).
TEST_P(CepRepositoryConformanceTest, LockBeneficiariesHoldsTheNextLockerUntilTheFirstEnds) {
  ASSERT_OK(InsertBeneficiary(FullBeneficiary("p1")).status());
  ASSERT_OK(InsertBeneficiary(FullBeneficiary("p2")).status());
  bool contact_seen = false;
  ::parcours::testing::LockRaceResult race = ::parcours::testing::RunLockRace(
      [&](const std::function<void()>& hold) {
        return Tx([&](cep::CepTx& tx) -> absl::Status {
          // Any order, duplicates and unknown people: the repository sorts, dedupes and skips them.
          if (absl::Status s = tx.LockBeneficiaries({"p2", "nobody", "p1", "p2"}); !s.ok()) return s;
          hold();
          return tx.PutContact("p1", "ft", Contact("Zoé Lefèvre"), FullBeneficiary("p1"), kNow);
        });
      },
      [&] {
        return Tx([&](cep::CepTx& tx) -> absl::Status {
          if (absl::Status s = tx.LockBeneficiaries({"p1"}); !s.ok()) return s;
          auto contact = tx.GetContact("p1", "ft");
          if (!contact.ok()) return contact.status();
          contact_seen = contact->has_value();
          return absl::OkStatus();
        });
      });
  ASSERT_OK(race.first);
  ASSERT_OK(race.second);
  EXPECT_TRUE(contact_seen) << "the second locker read before the first one's write was committed";
  EXPECT_OK(Tx([&](cep::CepTx& tx) { return tx.LockBeneficiaries({}); }));
}

// WithdrawOperator decides that an operator is silent from its last own activity, read under the
// activity lock every append takes: an event being appended meanwhile commits first and is seen.
TEST_P(CepRepositoryConformanceTest, LastOwnActivityLockedWaitsForAnAppendInFlight) {
  std::optional<int64_t> last;
  ::parcours::testing::LockRaceResult race = ::parcours::testing::RunLockRace(
      [&](const std::function<void()>& hold) {
        return Tx([&](cep::CepTx& tx) -> absl::Status {
          if (absl::Status s = tx.AppendActivities({Event("ft", "c1", pb::ACTIVITY_KIND_SERVICE_DELIVERED)}, kNow);
              !s.ok()) {
            return s;
          }
          hold();
          return absl::OkStatus();
        });
      },
      [&] {
        return Tx([&](cep::CepTx& tx) -> absl::Status {
          auto read = tx.LastOwnActivityLocked("ft", absl::ToUnixMicros(kNow + absl::Hours(1)));
          if (!read.ok()) return read.status();
          last = *read;
          return absl::OkStatus();
        });
      });
  ASSERT_OK(race.first);
  ASSERT_OK(race.second);
  ASSERT_TRUE(last.has_value()) << "read before the append in flight committed";
  EXPECT_EQ(*last, absl::ToUnixMicros(kNow));
  // Another operator's activity, or none: nothing.
  EXPECT_OK(Tx([&](cep::CepTx& tx) -> absl::Status {
    auto none = tx.LastOwnActivityLocked("apec", absl::ToUnixMicros(kNow + absl::Hours(1)));
    if (!none.ok()) return none.status();
    EXPECT_FALSE(none->has_value());
    return absl::OkStatus();
  }));
}

// DesignateOperator's overlap check reads the region's designations: two designations of one
// region lock it first, so the second sees the first's period. The lock row is made on first use.
TEST_P(CepRepositoryConformanceTest, LockDesignationsHoldsTheNextLockerOfTheRegionUntilTheFirstEnds) {
  ASSERT_OK(InsertOperator(FullOperator("ore-bzh", pb::OPERATOR_KIND_REGIONAL_EMPLOYED, {"53"})));
  ASSERT_OK(InsertOperator(FullOperator("ore-pdl", pb::OPERATOR_KIND_REGIONAL_EMPLOYED, {"53"})));
  for (const char* round : {"first use of the region", "region seen before"}) {
    SCOPED_TRACE(round);
    const int start = round[0] == 'f' ? 20200101 : 20240101;
    size_t designations_seen = 0;
    ::parcours::testing::LockRaceResult race = ::parcours::testing::RunLockRace(
        [&](const std::function<void()>& hold) {
          return Tx([&](cep::CepTx& tx) -> absl::Status {
            if (absl::Status s = tx.LockDesignations("53"); !s.ok()) return s;
            hold();
            return AddDesignation(tx, Designation("ore-bzh", "53", start, start + 11130));
          });
        },
        [&] {
          return Tx([&](cep::CepTx& tx) -> absl::Status {
            if (absl::Status s = tx.LockDesignations("53"); !s.ok()) return s;
            if (absl::Status s = tx.LockDesignations("53"); !s.ok()) return s;  // again: no-op
            auto listed = tx.ListDesignations("53");
            if (!listed.ok()) return listed.status();
            designations_seen = listed->size();
            return absl::OkStatus();
          });
        });
    ASSERT_OK(race.first);
    ASSERT_OK(race.second);
    EXPECT_EQ(designations_seen, start == 20200101 ? 1u : 2u)
        << "the second locker read before the first one's designation was committed";
  }
}

TEST_P(CepRepositoryConformanceTest, AnOperatorSeesTheBeneficiariesItRegisteredOrHoldsAnOpenOrClosedCaseOf) {
  for (const char* p : {"p1", "p2", "p3", "p4", "p5", "p6"}) ASSERT_OK(InsertBeneficiary(FullBeneficiary(p)).status());
  ASSERT_OK(Tx([&](cep::CepTx& tx) {  // registered, as the shared record says
    return tx.PutContact("p1", "apec", Contact("A"), FullBeneficiary("p1"), kNow);
  }));
  ASSERT_OK(InsertCase(FullCase("c2", "apec", "p2", pb::CASE_STATE_OPEN)));
  ASSERT_OK(InsertCase(FullCase("c3", "apec", "p3", pb::CASE_STATE_CLOSED)));
  ASSERT_OK(InsertCase(FullCase("c4", "ft", "p4", pb::CASE_STATE_OPEN)));         // another operator's
  ASSERT_OK(InsertCase(FullCase("c5", "apec", "p5", pb::CASE_STATE_TRANSFERRED)));  // handed over
  ASSERT_OK(InsertCase(FullCase("c6", "apec", "p6", pb::CASE_STATE_ANONYMISED)));
  auto seen_by = [&](const std::string& op, const std::vector<std::string>& pseudonyms) {
    std::set<std::string> seen;
    const absl::Status st = Tx([&](cep::CepTx& tx) -> absl::Status {
      auto got = tx.BeneficiariesSeenBy(op, pseudonyms);
      if (!got.ok()) return got.status();
      seen = *std::move(got);
      return absl::OkStatus();
    });
    EXPECT_TRUE(st.ok()) << st;
    return seen;
  };
  const std::vector<std::string> everyone = {"p1", "p2", "p3", "p4", "p5", "p6", "nobody"};
  EXPECT_EQ(seen_by("apec", everyone), (std::set<std::string>{"p1", "p2", "p3"}));
  EXPECT_EQ(seen_by("ft", everyone), (std::set<std::string>{"p4"}));
  EXPECT_EQ(seen_by("ml", everyone), std::set<std::string>{});
  EXPECT_EQ(seen_by("apec", {}), std::set<std::string>{});

  // GetBeneficiariesSeenBy: the same beneficiaries, with what GetBeneficiaries reads of them.
  for (const char* op : {"apec", "ft", "ml"}) {
    std::map<std::string, pb::Beneficiary> all, seen;
    ASSERT_OK(Tx([&](cep::CepTx& tx) -> absl::Status {
      auto got_all = tx.GetBeneficiaries(everyone);
      if (!got_all.ok()) return got_all.status();
      all = *std::move(got_all);
      auto got_seen = tx.GetBeneficiariesSeenBy(op, everyone);
      if (!got_seen.ok()) return got_seen.status();
      seen = *std::move(got_seen);
      return absl::OkStatus();
    }));
    std::set<std::string> keys;
    for (const auto& [pseudonym, b] : seen) {
      keys.insert(pseudonym);
      ASSERT_EQ(all.count(pseudonym), 1u) << pseudonym;
      EXPECT_TRUE(ProtoEqual(all[pseudonym], b)) << op << " " << pseudonym;
    }
    EXPECT_EQ(keys, seen_by(op, everyone)) << op;
  }
}

// --- Cases -------------------------------------------------------------------------------------

TEST_P(CepRepositoryConformanceTest, CaseRoundTripsEveryField) {
  pb::Case input = FullCase("c1", "apec", "p1", pb::CASE_STATE_OPEN, "2019/2", Date(2024, 3, 15), "APEC-2024-001");
  pb::Case spoofed = input;
  spoofed.set_etag("\"42\"");
  ASSERT_OK(InsertCase(spoofed));
  ASSERT_OK_AND_ASSIGN(cep::Versioned<pb::Case> got, GetCase("c1"));
  EXPECT_EQ(got.version, 1);
  EXPECT_TRUE(ProtoEqual(input, WithoutEtag(got.value)));
  EXPECT_EQ(got.value.operator_(), "operators/apec");
  EXPECT_EQ(got.value.beneficiary(), "beneficiaries/p1");
  EXPECT_EQ(got.value.etag(), parcours::aip::Etag(1));
  EXPECT_FALSE(got.value.has_closing_date());
  EXPECT_EQ(TimeOf(got.value.last_activity_time()), kNow - absl::Hours(24));

  // Put replaces the whole aggregate and moves the version on.
  pb::Case changed = got.value;
  changed.set_state(pb::CASE_STATE_CLOSED);
  *changed.mutable_closing_date() = Date(2024, 12, 31);
  changed.set_closing_reason("Projet réalisé");
  changed.set_level("2019/1");
  changed.clear_external_id();
  changed.clear_project();
  changed.add_demands(pb::DEMAND_KIND_TAKE_STOCK);
  SetTime(changed.mutable_last_activity_time(), kLater);
  ASSERT_OK(PutCase(changed, 1));
  ASSERT_OK_AND_ASSIGN(cep::Versioned<pb::Case> after, GetCase("c1"));
  EXPECT_EQ(after.version, 2);
  EXPECT_TRUE(ProtoEqual(WithoutEtag(changed), WithoutEtag(after.value)));
  EXPECT_EQ(after.value.external_id(), "");
  EXPECT_EQ(after.value.etag(), parcours::aip::Etag(2));
  EXPECT_TRUE(ProtoEqual(Date(2024, 12, 31), after.value.closing_date()));
  ASSERT_OK_AND_ASSIGN(std::optional<std::string> by_ext, FindByExternalId("apec", "APEC-2024-001"));
  EXPECT_FALSE(by_ext.has_value());

  // Without a last activity time, the write time is recorded.
  pb::Case fresh = FullCase("c2");
  fresh.clear_last_activity_time();
  ASSERT_OK(InsertCase(fresh, kLater));
  ASSERT_OK_AND_ASSIGN(got, GetCase("c2"));
  EXPECT_EQ(TimeOf(got.value.last_activity_time()), kLater);
  fresh = got.value;
  fresh.clear_last_activity_time();
  ASSERT_OK(PutCase(fresh, 1, kLater + absl::Hours(2)));
  ASSERT_OK_AND_ASSIGN(got, GetCase("c2"));
  EXPECT_EQ(TimeOf(got.value.last_activity_time()), kLater + absl::Hours(2));

  // Malformed names are INVALID_ARGUMENT and store nothing.
  pb::Case bad = FullCase("c3");
  bad.set_operator_("apec");
  EXPECT_EQ(InsertCase(bad).code(), absl::StatusCode::kInvalidArgument);
  bad = FullCase("c3");
  bad.set_beneficiary("beneficiary/p1");
  EXPECT_EQ(InsertCase(bad).code(), absl::StatusCode::kInvalidArgument);
  bad = FullCase("c3");
  bad.set_name("c3");
  EXPECT_EQ(InsertCase(bad).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetCase("c3").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(CepRepositoryConformanceTest, UnknownIdsAreNotFoundAndDuplicatesAlreadyExist) {
  absl::Status st = GetCase("nope").status();
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_EQ(ResourceInfoName(st), "cases/nope");
  st = PutCase(FullCase("nope"), 1);
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_EQ(ResourceInfoName(st), "cases/nope");
  st = GetTransfer("nope").status();
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_EQ(ResourceInfoName(st), "transfers/nope");
  st = Tx([&](cep::CepTx& tx) { return tx.PutTransfer(FullTransfer("nope"), 1); });
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_EQ(ResourceInfoName(st), "transfers/nope");

  ASSERT_OK(InsertCase(FullCase("c1")));
  st = InsertCase(FullCase("c1", "ft", "p2"));
  EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists) << st;
  EXPECT_EQ(ResourceInfoName(st), "cases/c1");
  ASSERT_OK_AND_ASSIGN(cep::Versioned<pb::Case> got, GetCase("c1"));
  EXPECT_EQ(got.value.operator_(), "operators/apec");
  ASSERT_OK(InsertTransfer(FullTransfer("t1")));
  st = InsertTransfer(FullTransfer("t1", "ft", "apec"));
  EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists) << st;
  EXPECT_EQ(ResourceInfoName(st), "transfers/t1");
}

TEST_P(CepRepositoryConformanceTest, PutWithStaleVersionIsAbortedAndChangesNothing) {
  ASSERT_OK(InsertCase(FullCase("c1")));
  pb::Case v2 = FullCase("c1", "apec", "p1", pb::CASE_STATE_OPEN, "2019/2");
  ASSERT_OK(PutCase(v2, 1));
  pb::Case stale = FullCase("c1", "ft", "p9", pb::CASE_STATE_CLOSED, "2014/3", Date(2020, 1, 1), "X");
  for (int64_t version : {int64_t{1}, int64_t{0}, int64_t{7}}) {
    absl::Status st = PutCase(stale, version, kLater + absl::Hours(1));
    EXPECT_EQ(st.code(), absl::StatusCode::kAborted) << st;
    EXPECT_EQ(ResourceInfoName(st), "cases/c1");
  }
  ASSERT_OK_AND_ASSIGN(cep::Versioned<pb::Case> got, GetCase("c1"));
  EXPECT_EQ(got.version, 2);
  EXPECT_TRUE(ProtoEqual(v2, WithoutEtag(got.value)));
  cep::CaseQuery closed;
  closed.operator_id = "apec";
  closed.state = pb::CASE_STATE_CLOSED;
  EXPECT_THAT(ListCaseIds(closed), IsEmpty());
  cep::CaseQuery at_ft;
  at_ft.operator_id = "ft";
  EXPECT_THAT(ListCaseIds(at_ft), IsEmpty());
  ASSERT_OK_AND_ASSIGN(std::optional<std::string> by_ext, FindByExternalId("ft", "X"));
  EXPECT_FALSE(by_ext.has_value());

  ASSERT_OK(InsertTransfer(FullTransfer("t1")));
  pb::Transfer accepted = FullTransfer("t1", "apec", "ft", pb::TRANSFER_STATE_ACCEPTED);
  ASSERT_OK(Tx([&](cep::CepTx& tx) { return tx.PutTransfer(accepted, 1); }));
  absl::Status st = Tx([&](cep::CepTx& tx) {
    return tx.PutTransfer(FullTransfer("t1", "apec", "ft", pb::TRANSFER_STATE_REJECTED), 1);
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kAborted) << st;
  EXPECT_EQ(ResourceInfoName(st), "transfers/t1");
  ASSERT_OK_AND_ASSIGN(cep::Versioned<pb::Transfer> t, GetTransfer("t1"));
  EXPECT_EQ(t.version, 2);
  EXPECT_EQ(t.value.state(), pb::TRANSFER_STATE_ACCEPTED);
}

TEST_P(CepRepositoryConformanceTest, ExternalIdIsUniquePerOperator) {
  ASSERT_OK(InsertCase(FullCase("c1", "apec", "p1", pb::CASE_STATE_OPEN, "2019/1", Date(2024, 1, 1), "EXT-1")));
  // The same external id at another operator is another case.
  ASSERT_OK(InsertCase(FullCase("c2", "ft", "p1", pb::CASE_STATE_OPEN, "2019/1", Date(2024, 1, 1), "EXT-1")));
  // Twice at one operator: ALREADY_EXISTS naming the case that holds it; nothing stored.
  absl::Status st =
      InsertCase(FullCase("c3", "apec", "p2", pb::CASE_STATE_OPEN, "2019/1", Date(2024, 1, 1), "EXT-1"));
  EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists) << st;
  EXPECT_EQ(ResourceInfoName(st), "cases/c1");
  EXPECT_EQ(GetCase("c3").status().code(), absl::StatusCode::kNotFound);
  // Cases without an external id are not constrained (NULLs).
  ASSERT_OK(InsertCase(FullCase("c4", "apec", "p3")));
  ASSERT_OK(InsertCase(FullCase("c5", "apec", "p4")));
  ASSERT_OK(InsertCase(FullCase("c6", "apec", "p5", pb::CASE_STATE_OPEN, "2019/1", Date(2024, 1, 1), "EXT-2")));

  auto find = [&](const std::string& op, const std::string& ext) -> std::string {
    absl::StatusOr<std::optional<std::string>> found = FindByExternalId(op, ext);
    EXPECT_TRUE(found.ok()) << found.status();
    return found.ok() ? found->value_or("<none>") : "<error>";
  };
  // The holder is returned by resource name.
  EXPECT_EQ(find("apec", "EXT-1"), "cases/c1");
  EXPECT_EQ(find("ft", "EXT-1"), "cases/c2");
  EXPECT_EQ(find("apec", "EXT-2"), "cases/c6");
  EXPECT_EQ(find("ft", "EXT-2"), "<none>");
  EXPECT_EQ(find("apec", "ext-1"), "<none>");
  EXPECT_EQ(find("apec", ""), "<none>");
  EXPECT_EQ(find("", "EXT-1"), "<none>");

  // A put giving c4 an external id already taken at its operator fails and leaves c4 as it was.
  pb::Case c4 = FullCase("c4", "apec", "p3", pb::CASE_STATE_OPEN, "2019/1", Date(2024, 3, 15), "EXT-2");
  st = PutCase(c4, 1);
  EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists) << st;
  ASSERT_OK_AND_ASSIGN(cep::Versioned<pb::Case> got, GetCase("c4"));
  EXPECT_EQ(got.version, 1);
  EXPECT_EQ(got.value.external_id(), "");
  // A free one is fine.
  c4.set_external_id("EXT-3");
  ASSERT_OK(PutCase(c4, 1));
  EXPECT_EQ(find("apec", "EXT-3"), "cases/c4");
}

TEST_P(CepRepositoryConformanceTest, CasesOfBeneficiaryAtEveryOperatorInIdOrder) {
  ASSERT_OK(InsertCase(FullCase("c3", "ft", "p1", pb::CASE_STATE_TRANSFERRED)));
  ASSERT_OK(InsertCase(FullCase("c1", "apec", "p1", pb::CASE_STATE_CLOSED)));
  ASSERT_OK(InsertCase(FullCase("c2", "apec", "p2")));
  ASSERT_OK(InsertCase(FullCase("c4", "ml-rennes", "p1")));
  auto cases_of = [&](const std::string& pseudonym) {
    return Read<std::vector<pb::Case>>([&](cep::CepTx& tx) { return tx.CasesOfBeneficiary(pseudonym); });
  };
  ASSERT_OK_AND_ASSIGN(std::vector<pb::Case> p1, cases_of("p1"));
  EXPECT_THAT(Ids(p1), ElementsAre("c1", "c3", "c4"));
  ASSERT_EQ(p1.size(), 3u);
  EXPECT_TRUE(ProtoEqual(FullCase("c3", "ft", "p1", pb::CASE_STATE_TRANSFERRED), WithoutEtag(p1[1])));
  EXPECT_EQ(p1[1].etag(), parcours::aip::Etag(1));
  ASSERT_OK_AND_ASSIGN(std::vector<pb::Case> p2, cases_of("p2"));
  EXPECT_THAT(Ids(p2), ElementsAre("c2"));
  ASSERT_OK_AND_ASSIGN(std::vector<pb::Case> none, cases_of("p9"));
  EXPECT_THAT(none, IsEmpty());
}

// --- Transfers ---------------------------------------------------------------------------------

TEST_P(CepRepositoryConformanceTest, TransferRoundTripsEveryField) {
  pb::Transfer input = FullTransfer("t1", "apec", "ft", pb::TRANSFER_STATE_REQUESTED, "c1");
  SetTime(input.mutable_create_time(), kLater);  // set by the store, not taken from the input
  ASSERT_OK(InsertTransfer(input, kNow));
  ASSERT_OK_AND_ASSIGN(cep::Versioned<pb::Transfer> got, GetTransfer("t1"));
  EXPECT_EQ(got.version, 1);
  EXPECT_TRUE(ProtoEqual(WithoutCreateTime(input), WithoutCreateTime(got.value)));
  EXPECT_EQ(got.value.case_(), "cases/c1");
  EXPECT_EQ(got.value.from_operator(), "operators/apec");
  EXPECT_EQ(got.value.to_operator(), "operators/ft");
  EXPECT_EQ(TimeOf(got.value.create_time()), kNow);

  pb::Transfer accepted = got.value;
  accepted.set_state(pb::TRANSFER_STATE_ACCEPTED);
  accepted.set_new_case("cases/c9");
  SetTime(accepted.mutable_decide_time(), kLater);
  ASSERT_OK(Tx([&](cep::CepTx& tx) { return tx.PutTransfer(accepted, 1); }));
  ASSERT_OK_AND_ASSIGN(cep::Versioned<pb::Transfer> after, GetTransfer("t1"));
  EXPECT_EQ(after.version, 2);
  EXPECT_TRUE(ProtoEqual(accepted, after.value));
  EXPECT_EQ(TimeOf(after.value.create_time()), kNow);
  EXPECT_EQ(TimeOf(after.value.decide_time()), kLater);

  pb::Transfer bad = FullTransfer("t2");
  bad.set_to_operator("ft");
  EXPECT_EQ(InsertTransfer(bad).code(), absl::StatusCode::kInvalidArgument);
  bad = FullTransfer("t2");
  bad.set_case_("c1");
  EXPECT_EQ(InsertTransfer(bad).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetTransfer("t2").status().code(), absl::StatusCode::kNotFound);
}

// --- Transactions ------------------------------------------------------------------------------

TEST_P(CepRepositoryConformanceTest, ErrorFromTheTransactionFunctionRollsBackEverything) {
  ASSERT_OK(InsertOperator(FullOperator("apec", pb::OPERATOR_KIND_APEC)));
  ASSERT_OK(InsertCase(FullCase("c0")));
  ASSERT_OK_AND_ASSIGN(int64_t before, Append(Event("apec", "c0", pb::ACTIVITY_KIND_CASE_OPENED)));
  pb::OpenCaseRequest request;
  *request.mutable_case_() = FullCase("c1");
  request.set_request_id("req-1");
  const absl::Status refused = absl::FailedPreconditionError("refused by the use case");
  absl::Status st = Tx([&](cep::CepTx& tx) -> absl::Status {
    if (absl::Status s = tx.InsertOperator(FullOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL)); !s.ok()) return s;
    if (absl::Status s = AddDesignation(tx, Designation("apec", "53", 20240101)); !s.ok()) return s;
    absl::StatusOr<bool> inserted = tx.InsertBeneficiaryIfAbsent(FullBeneficiary("p1"), kNow);
    if (!inserted.ok()) return inserted.status();
    if (absl::Status s = tx.PutContact("p1", "apec", Contact("Zoé"), FullBeneficiary("p1"), kNow); !s.ok()) return s;
    if (absl::Status s = tx.InsertCase(FullCase("c1", "apec", "p1", pb::CASE_STATE_OPEN, "2019/1",
                                                Date(2024, 1, 1), "EXT-1"),
                                       kSubject, kNow);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = tx.PutCase(FullCase("c0", "apec", "p1", pb::CASE_STATE_CLOSED), 1, kNow); !s.ok()) return s;
    if (absl::Status s = tx.InsertTransfer(FullTransfer("t1"), kNow); !s.ok()) return s;
    if (absl::Status s = tx.Audit({kNow, "operator:apec", "OpenCase", "cases/c1", ""}); !s.ok()) return s;
    absl::StatusOr<int64_t> seq = tx.AppendActivity(Event("apec", "c1", pb::ACTIVITY_KIND_CASE_OPENED), kNow);
    if (!seq.ok()) return seq.status();
    if (*seq <= before) return absl::InternalError("activity seq did not grow");
    if (absl::Status s = tx.RecordRequest("OpenCase", "req-1", request, "cases/c1", kNow); !s.ok()) return s;
    // Everything is visible inside the transaction...
    absl::StatusOr<cep::Versioned<pb::Case>> inside = tx.GetCase("c1");
    if (!inside.ok()) return inside.status();
    absl::StatusOr<std::optional<pb::ContactDetails>> contact = tx.GetContact("p1", "apec");
    if (!contact.ok()) return contact.status();
    if (!contact->has_value()) return absl::InternalError("contact not visible in its transaction");
    return refused;
  });
  EXPECT_EQ(st, refused);

  // ... and nothing after the rollback.
  EXPECT_EQ(GetOperator("ft").status().code(), absl::StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(cep::Versioned<pb::Operator> apec, GetOperator("apec"));
  EXPECT_EQ(apec.version, 1);
  EXPECT_EQ(apec.value.designations_size(), 0);
  EXPECT_EQ(GetBeneficiary("p1").status().code(), absl::StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(std::optional<pb::ContactDetails> contact, GetContact("p1", "apec"));
  EXPECT_FALSE(contact.has_value());
  EXPECT_EQ(GetCase("c1").status().code(), absl::StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(std::optional<std::string> by_ext, FindByExternalId("apec", "EXT-1"));
  EXPECT_FALSE(by_ext.has_value());
  ASSERT_OK_AND_ASSIGN(cep::Versioned<pb::Case> c0, GetCase("c0"));
  EXPECT_EQ(c0.version, 1);
  EXPECT_EQ(c0.value.state(), pb::CASE_STATE_OPEN);
  EXPECT_EQ(GetTransfer("t1").status().code(), absl::StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(std::vector<cep::AuditEntry> audit, repo_->ListAudit("cases/c1"));
  EXPECT_THAT(audit, IsEmpty());
  std::vector<pb::ActivityEvent> events = ReadAll();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].case_(), "cases/c0");
  ASSERT_OK_AND_ASSIGN(std::optional<std::string> hit,
                       Read<std::optional<std::string>>(
                           [&](cep::CepTx& tx) { return tx.LookupRequest("OpenCase", "req-1", request); }));
  EXPECT_FALSE(hit.has_value());

  // A storage error half-way (duplicate case id) rolls back the writes before it too.
  st = Tx([&](cep::CepTx& tx) -> absl::Status {
    absl::StatusOr<bool> inserted = tx.InsertBeneficiaryIfAbsent(FullBeneficiary("p7"), kLater);
    if (!inserted.ok()) return inserted.status();
    absl::StatusOr<int64_t> seq = tx.AppendActivity(Event("apec", "c0", pb::ACTIVITY_KIND_CASE_CLOSED), kLater);
    if (!seq.ok()) return seq.status();
    if (absl::Status s = tx.PutCase(FullCase("c0", "apec", "p1", pb::CASE_STATE_CLOSED), 1, kLater); !s.ok()) {
      return s;
    }
    return tx.InsertCase(FullCase("c0"), kSubject, kLater);
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists) << st;
  EXPECT_EQ(GetBeneficiary("p7").status().code(), absl::StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(c0, GetCase("c0"));
  EXPECT_EQ(c0.version, 1);
  EXPECT_EQ(c0.value.state(), pb::CASE_STATE_OPEN);
  EXPECT_EQ(ReadAll().size(), 1u);
}

// --- Activity log ------------------------------------------------------------------------------

TEST_P(CepRepositoryConformanceTest, ActivityIsReadInAppendOrderAfterACursor) {
  EXPECT_THAT(ReadAll(), IsEmpty());
  const std::vector<pb::ActivityKind> kinds = {
      pb::ACTIVITY_KIND_CASE_OPENED, pb::ACTIVITY_KIND_LEVEL_CHANGED, pb::ACTIVITY_KIND_SERVICE_DELIVERED,
      pb::ACTIVITY_KIND_OUTCOME_RECORDED, pb::ACTIVITY_KIND_CASE_CLOSED};
  std::vector<int64_t> seqs;
  for (size_t i = 0; i < kinds.size(); ++i) {
    pb::ActivityEvent e = Event("apec", absl::StrCat("c", i), kinds[i]);
    e.set_cursor("999");                                  // assigned by the store
    SetTime(e.mutable_time(), kLater + absl::Hours(10));  // the row's time is `now`
    ASSERT_OK_AND_ASSIGN(int64_t seq, Append(e, kNow + absl::Seconds(static_cast<int64_t>(i))));
    if (!seqs.empty()) {
      EXPECT_GT(seq, seqs.back());
    }
    seqs.push_back(seq);
  }
  // Two events appended in one transaction get consecutive positions in the same order.
  std::vector<int64_t> pair;
  ASSERT_OK(Tx([&](cep::CepTx& tx) -> absl::Status {
    for (const char* id : {"d1", "d2"}) {
      absl::StatusOr<int64_t> seq = tx.AppendActivity(Event("ft", id, pb::ACTIVITY_KIND_CASE_TRANSFERRED), kLater);
      if (!seq.ok()) return seq.status();
      pair.push_back(*seq);
    }
    return absl::OkStatus();
  }));
  ASSERT_EQ(pair.size(), 2u);
  EXPECT_GT(pair[0], seqs.back());
  EXPECT_GT(pair[1], pair[0]);

  std::vector<pb::ActivityEvent> all = ReadAll();
  ASSERT_EQ(all.size(), 7u);
  for (size_t i = 0; i < kinds.size(); ++i) {
    EXPECT_EQ(all[i].cursor(), absl::StrCat(seqs[i]));
    EXPECT_EQ(TimeOf(all[i].time()), kNow + absl::Seconds(static_cast<int64_t>(i)));
    pb::ActivityEvent expected = Event("apec", absl::StrCat("c", i), kinds[i]);
    pb::ActivityEvent stored = all[i];
    stored.clear_cursor();
    stored.clear_time();
    EXPECT_TRUE(ProtoEqual(expected, stored));
  }
  EXPECT_EQ(all[5].case_(), "cases/d1");
  EXPECT_EQ(all[6].case_(), "cases/d2");
  EXPECT_EQ(CursorOf(all[6]), pair[1]);

  // After a cursor: exactly the later events, in order; `limit` caps the batch.
  std::vector<pb::ActivityEvent> later = ReadAll(CursorOf(all[2]));
  ASSERT_EQ(later.size(), 4u);
  EXPECT_EQ(later[0].cursor(), all[3].cursor());
  EXPECT_EQ(later[3].cursor(), all[6].cursor());
  ASSERT_OK_AND_ASSIGN(std::vector<pb::ActivityEvent> two, repo_->ReadActivity(CursorOf(all[2]), 2));
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].cursor(), all[3].cursor());
  EXPECT_EQ(two[1].cursor(), all[4].cursor());
  EXPECT_THAT(ReadAll(CursorOf(all[6])), IsEmpty());
  ASSERT_OK_AND_ASSIGN(std::vector<pb::ActivityEvent> none, repo_->ReadActivity(0, 0));
  EXPECT_THAT(none, IsEmpty());
}

TEST_P(CepRepositoryConformanceTest, ConcurrentAppendsAreReadBackOnceInOrderByAFollowingReader) {
  constexpr int kWriters = 2;
  constexpr int kEvents = 200;
  std::vector<std::vector<int64_t>> written(kWriters);
  std::vector<std::string> errors(kWriters + 1);
  std::atomic<int> writers_done{0};
  absl::Notification go;
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      go.WaitForNotification();
      for (int i = 0; i < kEvents; ++i) {
        absl::StatusOr<int64_t> seq = Append(Event(absl::StrCat("op", w), absl::StrCat("w", w, "-", i),
                                                   pb::ACTIVITY_KIND_SERVICE_DELIVERED));
        if (!seq.ok()) {
          errors[w] = seq.status().ToString();
          break;
        }
        written[w].push_back(*seq);
      }
      ++writers_done;
    });
  }
  // A feed consumer resuming after its last cursor while the writers run.
  std::vector<pb::ActivityEvent> followed;
  threads.emplace_back([&] {
    go.WaitForNotification();
    int64_t after = 0;
    for (;;) {
      const bool last_round = writers_done.load() == kWriters;
      absl::StatusOr<std::vector<pb::ActivityEvent>> batch = repo_->ReadActivity(after, 37);
      if (!batch.ok()) {
        errors[kWriters] = batch.status().ToString();
        return;
      }
      for (pb::ActivityEvent& e : *batch) {
        after = CursorOf(e);
        followed.push_back(std::move(e));
      }
      if (batch->empty()) {
        if (last_round) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  });
  go.Notify();
  for (std::thread& t : threads) t.join();
  for (const std::string& e : errors) EXPECT_EQ(e, "");

  // Read back whole: 400 distinct cursors in increasing order, each writer's events in its order.
  std::vector<pb::ActivityEvent> all = ReadAll();
  ASSERT_EQ(all.size(), static_cast<size_t>(kWriters * kEvents));
  std::set<std::string> distinct;
  for (size_t i = 0; i < all.size(); ++i) {
    distinct.insert(all[i].cursor());
    if (i > 0) {
      EXPECT_LT(CursorOf(all[i - 1]), CursorOf(all[i])) << i;
    }
  }
  EXPECT_EQ(distinct.size(), all.size());
  for (int w = 0; w < kWriters; ++w) {
    std::vector<std::string> cases;
    std::vector<int64_t> seqs;
    for (const pb::ActivityEvent& e : all) {
      if (e.operator_() == absl::StrCat("operators/op", w)) {
        cases.push_back(e.case_());
        seqs.push_back(CursorOf(e));
      }
    }
    std::vector<std::string> expected;
    for (int i = 0; i < kEvents; ++i) expected.push_back(absl::StrCat("cases/w", w, "-", i));
    EXPECT_EQ(cases, expected) << "writer " << w;
    EXPECT_EQ(seqs, written[w]) << "writer " << w;
  }
  // The follower saw every event exactly once, in the same order: no gap, no duplicate.
  ASSERT_EQ(followed.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    ASSERT_EQ(followed[i].cursor(), all[i].cursor()) << i;
    ASSERT_EQ(followed[i].case_(), all[i].case_()) << i;
  }
}

// An append does not commit while an earlier (smaller seq) append is still open: otherwise a
// reader could pass the smaller seq before it commits and never see it.
TEST_P(CepRepositoryConformanceTest, AppendsCommitInSeqOrder) {
  absl::Notification first_appended;
  absl::Notification release_first;
  std::atomic<bool> released{false};
  std::atomic<bool> second_committed_while_first_open{false};
  absl::StatusOr<int64_t> first_seq = absl::UnknownError("not run");
  absl::StatusOr<int64_t> second_seq = absl::UnknownError("not run");
  absl::Status first_st;
  std::thread first([&] {
    first_st = Tx([&](cep::CepTx& tx) -> absl::Status {
      first_seq = tx.AppendActivity(Event("apec", "first", pb::ACTIVITY_KIND_CASE_OPENED), kNow);
      first_appended.Notify();
      release_first.WaitForNotification();
      return first_seq.status();
    });
  });
  first_appended.WaitForNotification();
  std::thread second([&] {
    second_seq = Append(Event("ft", "second", pb::ACTIVITY_KIND_CASE_OPENED), kLater);
    if (!released.load()) second_committed_while_first_open = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  released = true;
  release_first.Notify();
  first.join();
  second.join();
  ASSERT_OK(first_st);
  ASSERT_OK(first_seq.status());
  ASSERT_OK(second_seq.status());
  EXPECT_FALSE(second_committed_while_first_open.load());
  EXPECT_LT(*first_seq, *second_seq);
  std::vector<pb::ActivityEvent> all = ReadAll();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].case_(), "cases/first");
  EXPECT_EQ(all[1].case_(), "cases/second");
}

// --- Feed per operator, compliance ------------------------------------------------------------

TEST_P(CepRepositoryConformanceTest, OperatorActivityIsTheOperatorsEventsAfterACursor) {
  std::vector<int64_t> apec;
  for (int i = 0; i < 6; ++i) {
    const std::string op = i % 2 == 0 ? "apec" : "ft";
    ASSERT_OK_AND_ASSIGN(int64_t seq, Append(Event(op, absl::StrCat("c", i), pb::ACTIVITY_KIND_SERVICE_DELIVERED),
                                             kNow + absl::Seconds(i)));
    if (op == "apec") apec.push_back(seq);
  }
  auto cursors = [](const std::vector<pb::ActivityEvent>& events) {
    std::vector<int64_t> out;
    for (const pb::ActivityEvent& e : events) out.push_back(CursorOf(e));
    return out;
  };
  ASSERT_OK_AND_ASSIGN(std::vector<pb::ActivityEvent> all_apec, repo_->ReadOperatorActivity("apec", 0, 100));
  EXPECT_THAT(cursors(all_apec), ElementsAreArray(apec));
  for (const pb::ActivityEvent& e : all_apec) EXPECT_EQ(e.operator_(), "operators/apec");
  ASSERT_EQ(all_apec.size(), 3u);
  // The stored event comes back whole, with its cursor and time.
  pb::ActivityEvent expected = Event("apec", "c2", pb::ACTIVITY_KIND_SERVICE_DELIVERED);
  pb::ActivityEvent stored = all_apec[1];
  EXPECT_EQ(TimeOf(stored.time()), kNow + absl::Seconds(2));
  stored.clear_cursor();
  stored.clear_time();
  EXPECT_TRUE(ProtoEqual(expected, stored));

  // After a cursor (its own or another operator's), at most `limit`.
  ASSERT_OK_AND_ASSIGN(std::vector<pb::ActivityEvent> after_first, repo_->ReadOperatorActivity("apec", apec[0], 100));
  EXPECT_THAT(cursors(after_first), ElementsAre(apec[1], apec[2]));
  ASSERT_OK_AND_ASSIGN(std::vector<pb::ActivityEvent> after_ft, repo_->ReadOperatorActivity("apec", apec[1] + 1, 100));
  EXPECT_THAT(cursors(after_ft), ElementsAre(apec[2]));
  ASSERT_OK_AND_ASSIGN(std::vector<pb::ActivityEvent> one, repo_->ReadOperatorActivity("apec", 0, 1));
  EXPECT_THAT(cursors(one), ElementsAre(apec[0]));
  ASSERT_OK_AND_ASSIGN(std::vector<pb::ActivityEvent> nobody, repo_->ReadOperatorActivity("", 0, 100));
  EXPECT_THAT(nobody, IsEmpty());
  ASSERT_OK_AND_ASSIGN(std::vector<pb::ActivityEvent> unknown, repo_->ReadOperatorActivity("ml", 0, 100));
  EXPECT_THAT(unknown, IsEmpty());
}

TEST_P(CepRepositoryConformanceTest, LastOwnActivityIsBeforeTheBoundAndIgnoresPlatformEvents) {
  const absl::Time t1 = kNow;
  const absl::Time t2 = kNow + absl::Hours(48);
  const absl::Time t3 = kNow + absl::Hours(96);
  ASSERT_OK(Append(Event("apec", "c1", pb::ACTIVITY_KIND_CASE_OPENED), t1).status());
  ASSERT_OK(Append(Event("apec", "c1", pb::ACTIVITY_KIND_CASE_CLOSED), t2).status());
  ASSERT_OK(Append(Event("ft", "c2", pb::ACTIVITY_KIND_CASE_OPENED), t1).status());
  // The platform's events on an operator's cases are not its activity, however late.
  for (pb::ActivityKind kind :
       {pb::ACTIVITY_KIND_RETENTION_NOTICE, pb::ACTIVITY_KIND_ANONYMISED, pb::ACTIVITY_KIND_ERASED}) {
    ASSERT_OK(Append(Event("ft", "c2", kind), t3).status());
    ASSERT_OK(Append(Event("ml", "c3", kind), t3).status());
  }
  using Last = std::map<std::string, int64_t>;
  auto last = [&](int64_t before) {
    return repo_->LastOwnActivity({"apec", "ft", "ml", "nobody"}, before);
  };
  ASSERT_OK_AND_ASSIGN(Last at_end, last(absl::ToUnixMicros(t3) + 1));
  EXPECT_EQ(at_end, (Last{{"apec", absl::ToUnixMicros(t2)}, {"ft", absl::ToUnixMicros(t1)}}));
  // `before` is exclusive: an event at the bound does not count.
  ASSERT_OK_AND_ASSIGN(Last at_t2, last(absl::ToUnixMicros(t2)));
  EXPECT_EQ(at_t2, (Last{{"apec", absl::ToUnixMicros(t1)}, {"ft", absl::ToUnixMicros(t1)}}));
  ASSERT_OK_AND_ASSIGN(Last before_all, last(absl::ToUnixMicros(t1)));
  EXPECT_THAT(before_all, IsEmpty());
  ASSERT_OK_AND_ASSIGN(Last none, repo_->LastOwnActivity({}, absl::ToUnixMicros(t3)));
  EXPECT_THAT(none, IsEmpty());
}

// --- Retention and erasure ---------------------------------------------------------------------

TEST_P(CepRepositoryConformanceTest, NoticeIsKeptUntilTheLastActivityMoves) {
  ASSERT_OK(InsertCase(FullCase("c1")));
  auto notice_of = [&](const std::string& id) {
    return Read<int>([&](cep::CepTx& tx) { return tx.GetNoticeDate(id); });
  };
  ASSERT_OK_AND_ASSIGN(int notice, notice_of("c1"));
  EXPECT_EQ(notice, 0);
  EXPECT_EQ(notice_of("nope").status().code(), absl::StatusCode::kNotFound);

  // A notice needs the version read; it does not move the etag.
  absl::Status stale = Tx([&](cep::CepTx& tx) { return tx.MarkNoticed("c1", 20260301, 7); });
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted) << stale;
  EXPECT_EQ(Tx([&](cep::CepTx& tx) { return tx.MarkNoticed("nope", 20260301, 1); }).code(),
            absl::StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(notice, notice_of("c1"));
  EXPECT_EQ(notice, 0);
  ASSERT_OK(Tx([&](cep::CepTx& tx) { return tx.MarkNoticed("c1", 20260301, 1); }));
  ASSERT_OK(Tx([&](cep::CepTx& tx) { return tx.MarkNoticed("c1", 20260301, 1); }));  // the same again
  ASSERT_OK_AND_ASSIGN(notice, notice_of("c1"));
  EXPECT_EQ(notice, 20260301);
  ASSERT_OK_AND_ASSIGN(cep::Versioned<pb::Case> got, GetCase("c1"));
  EXPECT_EQ(got.version, 1);

  // A write that keeps the last activity (e.g. anonymisation) keeps the notice.
  pb::Case same = got.value;
  same.set_state(pb::CASE_STATE_CLOSED);
  ASSERT_OK(PutCase(same, 1));
  ASSERT_OK_AND_ASSIGN(notice, notice_of("c1"));
  EXPECT_EQ(notice, 20260301);
  // New activity cancels it.
  pb::Case touched = same;
  SetTime(touched.mutable_last_activity_time(), kLater);
  ASSERT_OK(PutCase(touched, 2));
  ASSERT_OK_AND_ASSIGN(notice, notice_of("c1"));
  EXPECT_EQ(notice, 0);
  ASSERT_OK_AND_ASSIGN(got, GetCase("c1"));
  EXPECT_EQ(TimeOf(got.value.last_activity_time()), kLater);
  EXPECT_EQ(got.value.state(), pb::CASE_STATE_CLOSED);
  // A stale put neither writes nor clears.
  ASSERT_OK(Tx([&](cep::CepTx& tx) { return tx.MarkNoticed("c1", 20260402, 3); }));
  touched.set_level("2014/1");
  SetTime(touched.mutable_last_activity_time(), kLater + absl::Hours(1));
  EXPECT_EQ(PutCase(touched, 2).code(), absl::StatusCode::kAborted);
  ASSERT_OK_AND_ASSIGN(notice, notice_of("c1"));
  EXPECT_EQ(notice, 20260402);
}

TEST_P(CepRepositoryConformanceTest, InactiveCasesOfAStateInLastActivityOrderAfterAKeyset) {
  const absl::Time base = kNow - absl::Hours(24 * 800);
  auto with_activity = [&](const std::string& id, pb::CaseState state, absl::Time t) {
    pb::Case c = FullCase(id, "apec", "p1", state);
    SetTime(c.mutable_last_activity_time(), t);
    return InsertCase(c);
  };
  ASSERT_OK(with_activity("c5", pb::CASE_STATE_OPEN, base + absl::Hours(2)));
  ASSERT_OK(with_activity("c2", pb::CASE_STATE_OPEN, base + absl::Hours(1)));
  ASSERT_OK(with_activity("c1", pb::CASE_STATE_OPEN, base + absl::Hours(1)));  // same time: id order
  ASSERT_OK(with_activity("c3", pb::CASE_STATE_OPEN, base));
  ASSERT_OK(with_activity("c4", pb::CASE_STATE_CLOSED, base));
  ASSERT_OK(with_activity("c6", pb::CASE_STATE_OPEN, base + absl::Hours(3)));  // at the bound: active
  ASSERT_OK(with_activity("c7", pb::CASE_STATE_ANONYMISED, base));
  ASSERT_OK(Tx([&](cep::CepTx& tx) { return tx.MarkNoticed("c1", 20250102, 1); }));

  cep::InactiveCaseQuery q;
  q.state = pb::CASE_STATE_OPEN;
  q.inactive_before = absl::ToUnixMicros(base + absl::Hours(3));
  q.limit = 100;
  ASSERT_OK_AND_ASSIGN(std::vector<cep::InactiveCase> open, repo_->ListInactiveCases(q));
  std::vector<std::string> ids;
  for (const cep::InactiveCase& c : open) ids.push_back(c.id);
  EXPECT_THAT(ids, ElementsAre("c3", "c1", "c2", "c5"));
  ASSERT_EQ(open.size(), 4u);
  EXPECT_EQ(open[0].last_activity, absl::ToUnixMicros(base));
  EXPECT_EQ(open[1].notice_date, 20250102);
  EXPECT_EQ(open[2].notice_date, 0);

  // Pages of 2 from the keyset: the tie at base + 1h is split by id, nothing seen twice.
  q.limit = 2;
  std::vector<std::string> paged;
  for (int page = 0; page < 5; ++page) {
    ASSERT_OK_AND_ASSIGN(std::vector<cep::InactiveCase> batch, repo_->ListInactiveCases(q));
    for (const cep::InactiveCase& c : batch) paged.push_back(c.id);
    if (batch.size() < 2) break;
    q.after_last_activity = batch.back().last_activity;
    q.after_id = batch.back().id;
  }
  EXPECT_THAT(paged, ElementsAre("c3", "c1", "c2", "c5"));
  q.after_last_activity = absl::ToUnixMicros(base + absl::Hours(1));
  q.after_id = "c1";
  q.limit = 100;
  ASSERT_OK_AND_ASSIGN(std::vector<cep::InactiveCase> after_c1, repo_->ListInactiveCases(q));
  ASSERT_EQ(after_c1.size(), 2u);
  EXPECT_EQ(after_c1[0].id, "c2");

  cep::InactiveCaseQuery closed;
  closed.state = pb::CASE_STATE_CLOSED;
  closed.inactive_before = absl::ToUnixMicros(base + absl::Hours(3));
  ASSERT_OK_AND_ASSIGN(std::vector<cep::InactiveCase> closed_cases, repo_->ListInactiveCases(closed));
  ASSERT_EQ(closed_cases.size(), 1u);
  EXPECT_EQ(closed_cases[0].id, "c4");
  closed.inactive_before = absl::ToUnixMicros(base);
  ASSERT_OK_AND_ASSIGN(closed_cases, repo_->ListInactiveCases(closed));
  EXPECT_THAT(closed_cases, IsEmpty());
}

// Registrations without a file: contact rows whose operator holds no open or closed case of the
// person, by last activity; a write dates the row and clears its notice.
TEST_P(CepRepositoryConformanceTest, InactiveRegistrationsAreContactRowsWithoutAFileInActivityOrder) {
  const absl::Time base = kNow - absl::Hours(24 * 800);
  for (const char* p : {"p1", "p2", "p3"}) ASSERT_OK(InsertBeneficiary(FullBeneficiary(p)).status());
  auto put = [&](const std::string& p, const std::string& op, absl::Time t) {
    return Tx([&](cep::CepTx& tx) { return tx.PutContact(p, op, Contact(op), FullBeneficiary(p), t); });
  };
  ASSERT_OK(put("p2", "ft", base + absl::Hours(1)));
  ASSERT_OK(put("p1", "ft", base + absl::Hours(1)));  // same time: pseudonym order
  ASSERT_OK(put("p1", "apec", base + absl::Hours(1)));  // same person: operator order
  ASSERT_OK(put("p3", "ft", base));
  ASSERT_OK(put("p3", "ml", base + absl::Hours(5)));  // at the bound: active
  ASSERT_OK(put("p2", "apec", base));                 // apec holds an open case of p2: its file decides
  ASSERT_OK(InsertCase(FullCase("c1", "apec", "p2", pb::CASE_STATE_OPEN)));
  ASSERT_OK(put("p1", "ml", base));  // ml's only case of p1 is anonymised: a registration without a file
  ASSERT_OK(InsertCase(FullCase("c2", "ml", "p1", pb::CASE_STATE_ANONYMISED)));

  cep::InactiveRegistrationQuery q;
  q.inactive_before = absl::ToUnixMicros(base + absl::Hours(5));
  auto keys = [](const std::vector<cep::InactiveRegistration>& rows) {
    std::vector<std::string> out;
    for (const cep::InactiveRegistration& r : rows) out.push_back(r.pseudonym + "@" + r.operator_id);
    return out;
  };
  ASSERT_OK_AND_ASSIGN(std::vector<cep::InactiveRegistration> all, repo_->ListInactiveRegistrations(q));
  EXPECT_THAT(keys(all), ElementsAre("p1@ml", "p3@ft", "p1@apec", "p1@ft", "p2@ft"));
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[0].last_activity, absl::ToUnixMicros(base));
  EXPECT_EQ(all[0].notice_date, 0);
  // Pages of 2 from the keyset: nothing seen twice across the tie.
  q.limit = 2;
  std::vector<std::string> paged;
  for (int page = 0; page < 5; ++page) {
    ASSERT_OK_AND_ASSIGN(std::vector<cep::InactiveRegistration> batch, repo_->ListInactiveRegistrations(q));
    for (const std::string& k : keys(batch)) paged.push_back(k);
    if (batch.size() < 2) break;
    q.after_last_activity = batch.back().last_activity;
    q.after_pseudonym = batch.back().pseudonym;
    q.after_operator = batch.back().operator_id;
  }
  EXPECT_EQ(paged, keys(all));

  // The notice holds only while the row is as it was read; a write moves it on and clears it.
  ASSERT_OK_AND_ASSIGN(bool stale, Read<bool>([&](cep::CepTx& tx) {
                         return tx.MarkContactNoticed("p3", "ft", 20250102, absl::ToUnixMicros(base) + 1);
                       }));
  EXPECT_FALSE(stale);
  ASSERT_OK_AND_ASSIGN(bool marked, Read<bool>([&](cep::CepTx& tx) {
                         return tx.MarkContactNoticed("p3", "ft", 20250102, absl::ToUnixMicros(base));
                       }));
  EXPECT_TRUE(marked);
  ASSERT_OK_AND_ASSIGN(std::optional<cep::ContactRetention> noticed, Read<std::optional<cep::ContactRetention>>(
                           [&](cep::CepTx& tx) { return tx.GetContactRetention("p3", "ft"); }));
  ASSERT_TRUE(noticed.has_value());
  EXPECT_EQ(noticed->notice_date, 20250102);
  EXPECT_EQ(noticed->last_activity, absl::ToUnixMicros(base));
  ASSERT_OK(put("p3", "ft", kNow));
  ASSERT_OK_AND_ASSIGN(std::optional<cep::ContactRetention> touched, Read<std::optional<cep::ContactRetention>>(
                           [&](cep::CepTx& tx) { return tx.GetContactRetention("p3", "ft"); }));
  ASSERT_TRUE(touched.has_value());
  EXPECT_EQ(touched->notice_date, 0);
  EXPECT_EQ(touched->last_activity, absl::ToUnixMicros(kNow));
  ASSERT_OK_AND_ASSIGN(std::optional<cep::ContactRetention> none, Read<std::optional<cep::ContactRetention>>(
                           [&](cep::CepTx& tx) { return tx.GetContactRetention("p3", "apec"); }));
  EXPECT_FALSE(none.has_value());
  ASSERT_OK_AND_ASSIGN(bool any, Read<bool>([&](cep::CepTx& tx) { return tx.AnyContact("p3"); }));
  EXPECT_TRUE(any);
  ASSERT_OK_AND_ASSIGN(bool nobody, Read<bool>([&](cep::CepTx& tx) { return tx.AnyContact("p9"); }));
  EXPECT_FALSE(nobody);
}

TEST_P(CepRepositoryConformanceTest, ContactsAreDeletedPerOperatorOrAllAndAnonymisationKeepsCoarseAttributes) {
  const pb::Beneficiary b = FullBeneficiary("p1", 1979);
  ASSERT_OK(InsertBeneficiary(b).status());
  ASSERT_OK(InsertBeneficiary(FullBeneficiary("p2")).status());
  ASSERT_OK(Tx([&](cep::CepTx& tx) -> absl::Status {
    for (const char* op : {"apec", "ft", "ml"}) {
      if (absl::Status s = tx.PutContact("p1", op, Contact(op), b, kNow); !s.ok()) return s;
    }
    return tx.PutContact("p2", "apec", Contact("other"), FullBeneficiary("p2"), kNow);
  }));
  ASSERT_OK(Tx([&](cep::CepTx& tx) { return tx.DeleteContact("p1", "ft"); }));
  ASSERT_OK(Tx([&](cep::CepTx& tx) { return tx.DeleteContact("p1", "nobody"); }));  // nothing to delete
  ASSERT_OK_AND_ASSIGN(std::optional<pb::ContactDetails> ft, GetContact("p1", "ft"));
  EXPECT_FALSE(ft.has_value());
  ASSERT_OK_AND_ASSIGN(std::optional<pb::ContactDetails> apec, GetContact("p1", "apec"));
  EXPECT_TRUE(apec.has_value());

  ASSERT_OK_AND_ASSIGN(std::vector<std::string> holders,
                       Read<std::vector<std::string>>([&](cep::CepTx& tx) { return tx.ContactOperators("p1"); }));
  EXPECT_EQ(holders, (std::vector<std::string>{"apec", "ml"}));
  ASSERT_OK(Tx([&](cep::CepTx& tx) { return tx.DeleteContacts("p1"); }));
  ASSERT_OK_AND_ASSIGN(holders,
                       Read<std::vector<std::string>>([&](cep::CepTx& tx) { return tx.ContactOperators("p1"); }));
  EXPECT_TRUE(holders.empty());
  for (const char* op : {"apec", "ft", "ml"}) {
    ASSERT_OK_AND_ASSIGN(std::optional<pb::ContactDetails> c, GetContact("p1", op));
    EXPECT_FALSE(c.has_value()) << op;
  }
  ASSERT_OK_AND_ASSIGN(std::optional<pb::ContactDetails> other, GetContact("p2", "apec"));
  EXPECT_TRUE(other.has_value());  // another person's details are untouched

  ASSERT_OK(Tx([&](cep::CepTx& tx) { return tx.MarkBeneficiaryAnonymised("p1"); }));
  ASSERT_OK(Tx([&](cep::CepTx& tx) { return tx.MarkBeneficiaryAnonymised("p1"); }));  // again: no error
  ASSERT_OK_AND_ASSIGN(pb::Beneficiary got, GetBeneficiary("p1"));
  pb::Beneficiary expected = b;
  expected.set_anonymised(true);
  EXPECT_TRUE(ProtoEqual(expected, got));
  ASSERT_OK_AND_ASSIGN(got, GetBeneficiary("p2"));
  EXPECT_FALSE(got.anonymised());
  absl::Status missing = Tx([&](cep::CepTx& tx) { return tx.MarkBeneficiaryAnonymised("nope"); });
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound) << missing;

  // Registered again: the new attributes, no longer anonymised; a live beneficiary is not revived.
  pb::Beneficiary again = FullBeneficiary("p1", 1979);
  again.set_status(pb::EMPLOYMENT_STATUS_JOB_SEEKER);
  again.set_qualification_level(6);
  auto revive = [&](const pb::Beneficiary& who) {
    return Read<bool>([&](cep::CepTx& tx) { return tx.ReviveBeneficiary(who); });
  };
  ASSERT_OK_AND_ASSIGN(bool revived, revive(again));
  EXPECT_TRUE(revived);
  ASSERT_OK_AND_ASSIGN(got, GetBeneficiary("p1"));
  EXPECT_TRUE(ProtoEqual(again, got));
  pb::Beneficiary changed = again;
  changed.set_birth_year(1960);
  ASSERT_OK_AND_ASSIGN(revived, revive(changed));
  EXPECT_FALSE(revived);
  ASSERT_OK_AND_ASSIGN(got, GetBeneficiary("p1"));
  EXPECT_EQ(got.birth_year(), 1979);
  ASSERT_OK_AND_ASSIGN(revived, revive(FullBeneficiary("nope")));
  EXPECT_FALSE(revived);
}

TEST_P(CepRepositoryConformanceTest, TransfersOfACaseInIdOrder) {
  ASSERT_OK(InsertTransfer(FullTransfer("t2", "apec", "ft", pb::TRANSFER_STATE_REJECTED, "c1")));
  ASSERT_OK(InsertTransfer(FullTransfer("t1", "apec", "ml", pb::TRANSFER_STATE_REQUESTED, "c1")));
  ASSERT_OK(InsertTransfer(FullTransfer("t3", "ft", "apec", pb::TRANSFER_STATE_REQUESTED, "c2")));
  auto of = [&](const std::string& case_id) {
    return Read<std::vector<cep::Versioned<pb::Transfer>>>([&](cep::CepTx& tx) { return tx.TransfersOfCase(case_id); });
  };
  ASSERT_OK_AND_ASSIGN(std::vector<cep::Versioned<pb::Transfer>> c1, of("c1"));
  ASSERT_EQ(c1.size(), 2u);
  EXPECT_EQ(c1[0].value.name(), "transfers/t1");
  EXPECT_EQ(c1[1].value.name(), "transfers/t2");
  EXPECT_EQ(c1[0].version, 1);
  EXPECT_TRUE(ProtoEqual(FullTransfer("t1", "apec", "ml", pb::TRANSFER_STATE_REQUESTED, "c1"),
                         WithoutCreateTime(c1[0].value)));
  ASSERT_OK_AND_ASSIGN(std::vector<cep::Versioned<pb::Transfer>> none, of("c9"));
  EXPECT_THAT(none, IsEmpty());
}

// --- Lists -------------------------------------------------------------------------------------

TEST_P(CepRepositoryConformanceTest, ListCasesFiltersPagesAndScopesByOperator) {
  struct Row {
    const char* id;
    const char* op;
    pb::CaseState state;
    const char* level;
    google::type::Date opening;
  };
  const std::vector<Row> rows = {
      {"c07", "A", pb::CASE_STATE_CLOSED, "2019/2", Date(2024, 2, 1)},
      {"c01", "A", pb::CASE_STATE_OPEN, "2019/1", Date(2023, 12, 31)},
      {"c03", "B", pb::CASE_STATE_OPEN, "2019/1", Date(2024, 5, 1)},
      {"c02", "A", pb::CASE_STATE_OPEN, "2019/2", Date(2024, 1, 1)},
      {"c05", "A", pb::CASE_STATE_OPEN, "2019/2", Date(2024, 6, 30)},
      {"c04", "B", pb::CASE_STATE_CLOSED, "2019/2", Date(2024, 1, 1)},
      {"c06", "A", pb::CASE_STATE_TRANSFERRED, "2014/3", Date(2019, 3, 3)},
      {"C00", "A", pb::CASE_STATE_OPEN, "2019/1", Date(2024, 1, 2)},
      {"c08", "AB", pb::CASE_STATE_OPEN, "2019/1", Date(2024, 1, 1)},
  };
  for (const Row& r : rows) ASSERT_OK(InsertCase(FullCase(r.id, r.op, "p1", r.state, r.level, r.opening)));

  cep::CaseQuery a;
  a.operator_id = "A";
  // Byte order: upper case first on both backends.
  EXPECT_THAT(ListCaseIds(a), ElementsAre("C00", "c01", "c02", "c05", "c06", "c07"));
  cep::CaseQuery b;
  b.operator_id = "B";
  EXPECT_THAT(ListCaseIds(b), ElementsAre("c03", "c04"));
  cep::CaseQuery lower_a;
  lower_a.operator_id = "a";
  EXPECT_THAT(ListCaseIds(lower_a), IsEmpty());
  cep::CaseQuery nobody;
  EXPECT_THAT(ListCaseIds(nobody), IsEmpty());

  cep::CaseQuery open = a;
  open.state = pb::CASE_STATE_OPEN;
  EXPECT_THAT(ListCaseIds(open), ElementsAre("C00", "c01", "c02", "c05"));
  cep::CaseQuery level = a;
  level.level = "2019/2";
  EXPECT_THAT(ListCaseIds(level), ElementsAre("c02", "c05", "c07"));
  cep::CaseQuery opened = a;
  opened.opened_from_yyyymmdd = 20240101;  // inclusive
  EXPECT_THAT(ListCaseIds(opened), ElementsAre("C00", "c02", "c05", "c07"));
  cep::CaseQuery combined = a;
  combined.state = pb::CASE_STATE_OPEN;
  combined.level = "2019/2";
  combined.opened_from_yyyymmdd = 20240102;
  EXPECT_THAT(ListCaseIds(combined), ElementsAre("c05"));
  combined.level = "2014/1";
  EXPECT_THAT(ListCaseIds(combined), IsEmpty());

  // Keyset pages of 2 visit every one of A's cases once, in order.
  std::vector<std::string> paged;
  cep::CaseQuery page = a;
  page.limit = 2;
  for (int i = 0; i < 10; ++i) {
    std::vector<std::string> got = ListCaseIds(page);
    EXPECT_LE(got.size(), 2u);
    if (got.empty()) break;
    paged.insert(paged.end(), got.begin(), got.end());
    page.after_id = got.back();
  }
  EXPECT_THAT(paged, ElementsAreArray({"C00", "c01", "c02", "c05", "c06", "c07"}));
  // A cursor need not exist; filters apply with the cursor.
  cep::CaseQuery from = open;
  from.after_id = "c015";
  EXPECT_THAT(ListCaseIds(from), ElementsAre("c02", "c05"));
  from.after_id = "c07";
  EXPECT_THAT(ListCaseIds(from), IsEmpty());
  cep::CaseQuery zero = a;
  zero.limit = 0;
  EXPECT_THAT(ListCaseIds(zero), IsEmpty());

  // Listed cases are complete.
  combined.level = "2019/2";
  absl::StatusOr<std::vector<pb::Case>> listed = repo_->ListCases(combined);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_TRUE(ProtoEqual(FullCase("c05", "A", "p1", pb::CASE_STATE_OPEN, "2019/2", Date(2024, 6, 30)),
                         WithoutEtag((*listed)[0])));
  EXPECT_EQ((*listed)[0].etag(), parcours::aip::Etag(1));

  // Columns follow a Put: c07 reopens, and a case handed to B leaves A's list.
  ASSERT_OK(PutCase(FullCase("c07", "A", "p1", pb::CASE_STATE_OPEN, "2019/2", Date(2024, 2, 1)), 1));
  ASSERT_OK(PutCase(FullCase("c01", "B", "p1", pb::CASE_STATE_OPEN, "2019/1", Date(2023, 12, 31)), 1));
  EXPECT_THAT(ListCaseIds(open), ElementsAre("C00", "c02", "c05", "c07"));
  EXPECT_THAT(ListCaseIds(b), ElementsAre("c01", "c03", "c04"));
}

TEST_P(CepRepositoryConformanceTest, ListTransfersSentOrReceivedFiltersAndPages) {
  ASSERT_OK(InsertTransfer(FullTransfer("t1", "A", "B", pb::TRANSFER_STATE_REQUESTED)));
  ASSERT_OK(InsertTransfer(FullTransfer("t2", "B", "C", pb::TRANSFER_STATE_ACCEPTED)));
  ASSERT_OK(InsertTransfer(FullTransfer("t3", "C", "A", pb::TRANSFER_STATE_REJECTED)));
  ASSERT_OK(InsertTransfer(FullTransfer("t4", "C", "B", pb::TRANSFER_STATE_REQUESTED)));
  ASSERT_OK(InsertTransfer(FullTransfer("t5", "A", "C", pb::TRANSFER_STATE_REQUESTED)));

  cep::TransferQuery a;
  a.operator_id = "A";
  EXPECT_THAT(ListTransferIds(a), ElementsAre("t1", "t3", "t5"));
  cep::TransferQuery b;
  b.operator_id = "B";
  EXPECT_THAT(ListTransferIds(b), ElementsAre("t1", "t2", "t4"));
  cep::TransferQuery d;
  d.operator_id = "D";
  EXPECT_THAT(ListTransferIds(d), IsEmpty());
  cep::TransferQuery nobody;
  EXPECT_THAT(ListTransferIds(nobody), IsEmpty());

  cep::TransferQuery requested = a;
  requested.state = pb::TRANSFER_STATE_REQUESTED;
  EXPECT_THAT(ListTransferIds(requested), ElementsAre("t1", "t5"));
  cep::TransferQuery c_requested;
  c_requested.operator_id = "C";
  c_requested.state = pb::TRANSFER_STATE_REQUESTED;
  EXPECT_THAT(ListTransferIds(c_requested), ElementsAre("t4", "t5"));

  std::vector<std::string> paged;
  cep::TransferQuery page;
  page.operator_id = "C";
  page.limit = 2;
  for (int i = 0; i < 10; ++i) {
    std::vector<std::string> got = ListTransferIds(page);
    EXPECT_LE(got.size(), 2u);
    if (got.empty()) break;
    paged.insert(paged.end(), got.begin(), got.end());
    page.after_id = got.back();
  }
  EXPECT_THAT(paged, ElementsAre("t2", "t3", "t4", "t5"));

  absl::StatusOr<std::vector<pb::Transfer>> listed = repo_->ListTransfers(requested);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_TRUE(ProtoEqual(FullTransfer("t1", "A", "B"), WithoutCreateTime((*listed)[0])));
  EXPECT_EQ(TimeOf((*listed)[0].create_time()), kNow);

  // The state column follows a Put.
  ASSERT_OK(Tx([&](cep::CepTx& tx) {
    return tx.PutTransfer(FullTransfer("t1", "A", "B", pb::TRANSFER_STATE_ACCEPTED), 1);
  }));
  EXPECT_THAT(ListTransferIds(requested), ElementsAre("t5"));
}

TEST_P(CepRepositoryConformanceTest, ListOperatorsFiltersByKindAndRegionAndPages) {
  ASSERT_OK(InsertOperator(FullOperator("ft", pb::OPERATOR_KIND_FRANCE_TRAVAIL, {"11", "53", "94"})));
  ASSERT_OK(InsertOperator(FullOperator("apec", pb::OPERATOR_KIND_APEC, {"11", "53"})));
  ASSERT_OK(InsertOperator(FullOperator("ore-bzh", pb::OPERATOR_KIND_REGIONAL_EMPLOYED, {})));
  ASSERT_OK(InsertOperator(FullOperator("ore-idf", pb::OPERATOR_KIND_REGIONAL_EMPLOYED, {"11"})));
  ASSERT_OK(InsertOperator(FullOperator("ml-rennes", pb::OPERATOR_KIND_MISSION_LOCALE, {"53"})));
  ASSERT_OK(Tx([&](cep::CepTx& tx) -> absl::Status {
    if (absl::Status s = AddDesignation(tx, Designation("ore-bzh", "53", 20200101)); !s.ok()) return s;
    return AddDesignation(tx, Designation("ore-idf", "11", 20200101, 20231231));
  }));

  cep::OperatorQuery all;
  EXPECT_THAT(ListOperatorIds(all), ElementsAre("apec", "ft", "ml-rennes", "ore-bzh", "ore-idf"));
  cep::OperatorQuery regional;
  regional.kind = pb::OPERATOR_KIND_REGIONAL_EMPLOYED;
  EXPECT_THAT(ListOperatorIds(regional), ElementsAre("ore-bzh", "ore-idf"));
  // Region: served (regions) or designated for it.
  cep::OperatorQuery bretagne;
  bretagne.region = "53";
  EXPECT_THAT(ListOperatorIds(bretagne), ElementsAre("apec", "ft", "ml-rennes", "ore-bzh"));
  cep::OperatorQuery regional_bzh = bretagne;
  regional_bzh.kind = pb::OPERATOR_KIND_REGIONAL_EMPLOYED;
  EXPECT_THAT(ListOperatorIds(regional_bzh), ElementsAre("ore-bzh"));
  cep::OperatorQuery corse;
  corse.region = "94";
  EXPECT_THAT(ListOperatorIds(corse), ElementsAre("ft"));
  cep::OperatorQuery nowhere;
  nowhere.region = "01";
  EXPECT_THAT(ListOperatorIds(nowhere), IsEmpty());

  std::vector<std::string> paged;
  cep::OperatorQuery page = bretagne;
  page.limit = 2;
  for (int i = 0; i < 10; ++i) {
    std::vector<std::string> got = ListOperatorIds(page);
    EXPECT_LE(got.size(), 2u);
    if (got.empty()) break;
    paged.insert(paged.end(), got.begin(), got.end());
    page.after_id = got.back();
  }
  EXPECT_THAT(paged, ElementsAre("apec", "ft", "ml-rennes", "ore-bzh"));

  // Listed operators carry their designations and etag.
  absl::StatusOr<std::vector<pb::Operator>> listed = repo_->ListOperators(regional);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_TRUE(ProtoEqual(FullOperator("ore-bzh", pb::OPERATOR_KIND_REGIONAL_EMPLOYED, {}),
                         WithoutOutputs((*listed)[0])));
  EXPECT_EQ((*listed)[0].etag(), parcours::aip::Etag(2));
  ASSERT_EQ((*listed)[0].designations_size(), 1);
  EXPECT_EQ((*listed)[0].designations(0).region(), "53");
  ASSERT_EQ((*listed)[1].designations_size(), 1);
  EXPECT_TRUE(ProtoEqual(Date(2023, 12, 31), (*listed)[1].designations(0).end_date()));
}

TEST_P(CepRepositoryConformanceTest, AuditIsListedPerResourceOldestFirst) {
  const std::vector<std::string> actions = {"OpenCase", "RecordService", "ChangeLevel", "CloseCase"};
  for (size_t i = 0; i < actions.size(); ++i) {
    ASSERT_OK(Tx([&](cep::CepTx& tx) -> absl::Status {
      if (absl::Status s = tx.Audit({kNow + absl::Microseconds(static_cast<int64_t>(i)), "operator:apec",
                                     actions[i], "cases/c1", absl::StrCat("étape ", i + 1)});
          !s.ok()) {
        return s;
      }
      return tx.Audit({kNow, "operator:ft", "GetCase", "cases/c2", ""});
    }));
  }
  ASSERT_OK_AND_ASSIGN(std::vector<cep::AuditEntry> audit, repo_->ListAudit("cases/c1"));
  ASSERT_EQ(audit.size(), actions.size());
  for (size_t i = 0; i < actions.size(); ++i) {
    EXPECT_EQ(audit[i].action, actions[i]);
    EXPECT_EQ(audit[i].time, kNow + absl::Microseconds(static_cast<int64_t>(i)));
    EXPECT_EQ(audit[i].actor, "operator:apec");
    EXPECT_EQ(audit[i].resource, "cases/c1");
    EXPECT_EQ(audit[i].detail, absl::StrCat("étape ", i + 1));
  }
  ASSERT_OK_AND_ASSIGN(std::vector<cep::AuditEntry> other, repo_->ListAudit("cases/c2"));
  EXPECT_EQ(other.size(), actions.size());
  ASSERT_OK_AND_ASSIGN(std::vector<cep::AuditEntry> none, repo_->ListAudit("cases/c"));
  EXPECT_THAT(none, IsEmpty());
}

// --- Idempotency -------------------------------------------------------------------------------

TEST_P(CepRepositoryConformanceTest, RequestIdLookupAndRecord) {
  pb::OpenCaseRequest request;
  *request.mutable_case_() = FullCase("c1");
  request.set_request_id("9f1c2b1e-1111-4a4a-8888-0123456789ab");
  const std::string method = "/parcours.cep.v1.CepService/OpenCase";
  auto lookup = [&](const std::string& m, const google::protobuf::Message& req) {
    return Read<std::optional<std::string>>(
        [&](cep::CepTx& tx) { return tx.LookupRequest(m, request.request_id(), req); });
  };
  ASSERT_OK_AND_ASSIGN(std::optional<std::string> miss, lookup(method, request));
  EXPECT_FALSE(miss.has_value());
  ASSERT_OK(Tx([&](cep::CepTx& tx) -> absl::Status {
    if (absl::Status s = tx.InsertCase(request.case_(), kSubject, kNow); !s.ok()) return s;
    return tx.RecordRequest(method, request.request_id(), request, "cases/c1", kNow);
  }));
  ASSERT_OK_AND_ASSIGN(std::optional<std::string> hit, lookup(method, request));
  EXPECT_EQ(hit.value_or("<none>"), "cases/c1");
  pb::OpenCaseRequest other = request;
  other.mutable_case_()->set_level("2019/2");
  EXPECT_EQ(lookup(method, other).status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(miss, lookup("/parcours.cep.v1.CepService/RequestTransfer", request));
  EXPECT_FALSE(miss.has_value());
}

// --- Concurrency -------------------------------------------------------------------------------

TEST_P(CepRepositoryConformanceTest, ConcurrentPutsAtTheSameVersionExactlyOneWins) {
  ASSERT_OK(InsertCase(FullCase("c1")));
  constexpr int kThreads = 8;
  std::atomic<int> ok{0};
  std::atomic<int> aborted{0};
  std::vector<std::string> unexpected(kThreads);
  absl::Notification go;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      pb::Case mine = FullCase("c1");
      mine.mutable_project()->set_goal(absl::StrCat("writer ", i));
      go.WaitForNotification();
      absl::Status st = repo_->Transact([&](cep::CepTx& tx) -> absl::Status {
        if (absl::Status s = tx.PutCase(mine, 1, kLater); !s.ok()) return s;
        if (absl::Status s = tx.Audit({kLater, "operator:apec", "UpdateCase", "cases/c1", absl::StrCat("writer ", i)});
            !s.ok()) {
          return s;
        }
        return tx.AppendActivity(Event("apec", "c1", pb::ACTIVITY_KIND_LEVEL_CHANGED), kLater).status();
      });
      if (st.ok()) {
        ++ok;
      } else if (absl::IsAborted(st)) {
        ++aborted;
      } else {
        unexpected[i] = st.ToString();
      }
    });
  }
  go.Notify();
  for (std::thread& t : threads) t.join();
  for (const std::string& u : unexpected) EXPECT_EQ(u, "");
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(aborted.load(), kThreads - 1);

  ASSERT_OK_AND_ASSIGN(cep::Versioned<pb::Case> got, GetCase("c1"));
  EXPECT_EQ(got.version, 2);
  // The winner's document and only the winner's audit entry and event are stored.
  ASSERT_OK_AND_ASSIGN(std::vector<cep::AuditEntry> audit, repo_->ListAudit("cases/c1"));
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].detail, got.value.project().goal());
  EXPECT_EQ(ReadAll().size(), 1u);
}

// --- Bulk import statements ---------------------------------------------------------------------

TEST_P(CepRepositoryConformanceTest, BulkBeneficiariesKeepTheFirstAttributesAndContactsAreAddedIfAbsent) {
  ASSERT_OK_AND_ASSIGN(bool first, InsertBeneficiary(FullBeneficiary("p0", 1970)));
  ASSERT_TRUE(first);
  // More rows than one statement takes: the chunks are invisible.
  std::vector<pb::Beneficiary> rows = {FullBeneficiary("p0", 1999), FullBeneficiary("p1", 1980),
                                       FullBeneficiary("p1", 1990)};
  for (int i = 0; i < 1200; ++i) rows.push_back(FullBeneficiary(absl::StrCat("q", i), 1960 + i % 40));
  ASSERT_OK_AND_ASSIGN(int64_t inserted, Read<int64_t>([&](cep::CepTx& tx) {
                         return tx.InsertBeneficiariesIfAbsent(rows, kNow);
                       }));
  EXPECT_EQ(inserted, 1201);
  std::vector<std::string> pseudonyms = {"p0", "p1", "absent"};
  for (int i = 0; i < 1200; ++i) pseudonyms.push_back(absl::StrCat("q", i));
  ASSERT_OK_AND_ASSIGN(auto stored, (Read<std::map<std::string, pb::Beneficiary>>(
                                        [&](cep::CepTx& tx) { return tx.GetBeneficiaries(pseudonyms); })));
  ASSERT_EQ(stored.size(), 1202u);
  EXPECT_EQ(stored.count("absent"), 0u);
  EXPECT_TRUE(ProtoEqual(stored["p0"], FullBeneficiary("p0", 1970)));  // stored before: kept
  EXPECT_TRUE(ProtoEqual(stored["p1"], FullBeneficiary("p1", 1980)));  // first row of the batch wins
  EXPECT_TRUE(ProtoEqual(stored["q1199"], FullBeneficiary("q1199", 1960 + 1199 % 40)));
  // The same row as the single-row insert.
  ASSERT_OK_AND_ASSIGN(pb::Beneficiary single, GetBeneficiary("q7"));
  EXPECT_TRUE(ProtoEqual(single, stored["q7"]));

  // Contacts: an operator's existing row (details and situation) stays; the others get a row
  // without details and with the situation given (the first one given for a person).
  const pb::Beneficiary p0_at_ft = Situation("p0", "35", "53", pb::EMPLOYMENT_STATUS_JOB_SEEKER, 3);
  ASSERT_OK(Tx([&](cep::CepTx& tx) { return tx.PutContact("p0", "ft", Contact("Zoé Lefèvre"), p0_at_ft, kNow); }));
  const pb::Beneficiary p1_first = Situation("p1", "75", "11", pb::EMPLOYMENT_STATUS_EMPLOYEE, 6);
  const pb::Beneficiary p1_second = Situation("p1", "13", "93", pb::EMPLOYMENT_STATUS_OTHER, 1);
  ASSERT_OK(Tx([&](cep::CepTx& tx) {
    return tx.InsertContactsIfAbsent({Situation("p0", "59", "32", pb::EMPLOYMENT_STATUS_OTHER, 2), p1_first, p1_second},
                                     "ft", kNow);
  }));
  ASSERT_OK_AND_ASSIGN(std::optional<pb::ContactDetails> kept, GetContact("p0", "ft"));
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(kept->display_name(), "Zoé Lefèvre");
  ASSERT_OK_AND_ASSIGN(std::optional<pb::ContactDetails> empty, GetContact("p1", "ft"));
  ASSERT_TRUE(empty.has_value());
  pb::ContactDetails expected;
  expected.set_beneficiary("beneficiaries/p1");
  EXPECT_TRUE(ProtoEqual(*empty, expected));
  ASSERT_OK_AND_ASSIGN(std::optional<pb::ContactDetails> other, GetContact("p1", "apec"));
  EXPECT_FALSE(other.has_value());
  ASSERT_OK_AND_ASSIGN(auto seen, (Read<std::map<std::string, pb::Beneficiary>>([&](cep::CepTx& tx) {
                         return tx.GetBeneficiariesSeenBy("ft", {"p0", "p1"});
                       })));
  ASSERT_EQ(seen.size(), 2u);
  pb::Beneficiary p0_expected = p0_at_ft;
  p0_expected.set_birth_year(1970);  // the shared record's
  EXPECT_TRUE(ProtoEqual(seen["p0"], p0_expected));
  pb::Beneficiary p1_expected = p1_first;
  p1_expected.set_birth_year(1980);
  EXPECT_TRUE(ProtoEqual(seen["p1"], p1_expected));
}

TEST_P(CepRepositoryConformanceTest, RollupsFollowEveryCaseWriteAndRollBackWithIt) {
  pb::Case c = FullCase("c1", "apec", "p1", pb::CASE_STATE_OPEN, "2019/1", Date(2024, 3, 15), "E1");
  c.clear_services();
  c.clear_outcomes();
  c.clear_satisfaction();
  ASSERT_OK(InsertCase(c));
  ASSERT_OK_AND_ASSIGN(cep::indicators::Rollup stored, repo_->ReadRollup());
  cep::indicators::Rollup expected;
  cep::indicators::AddCase(c, kSubject, +1, expected);
  EXPECT_TRUE(stored == expected) << stored.size() << " cells stored, " << expected.size() << " expected";
  // Entries and the start of the follow-up, in each cuboid.
  EXPECT_EQ(stored.size(), 2 * cep::indicators::Cuboids().size());

  // PutCase moves them by the difference; a failed one (stale version) moves nothing.
  ASSERT_OK_AND_ASSIGN(cep::Versioned<pb::Case> read, GetCase("c1"));
  pb::Case closed = WithoutEtag(read.value);
  closed.set_state(pb::CASE_STATE_CLOSED);
  *closed.mutable_closing_date() = Date(2024, 5, 2);
  pb::DeliveredService* s = closed.add_services();
  s->set_kind(pb::SERVICE_KIND_INFORMATION);
  *s->mutable_date() = Date(2024, 4, 1);
  EXPECT_EQ(Tx([&](cep::CepTx& tx) { return tx.PutCase(closed, read.version + 1, kLater); }).code(),
            absl::StatusCode::kAborted);
  ASSERT_OK_AND_ASSIGN(cep::indicators::Rollup unchanged, repo_->ReadRollup());
  EXPECT_TRUE(unchanged == expected);
  ASSERT_OK(Tx([&](cep::CepTx& tx) { return tx.PutCase(closed, read.version, kLater); }));
  ASSERT_OK_AND_ASSIGN(stored, repo_->ReadRollup());
  ASSERT_OK_AND_ASSIGN(cep::indicators::Rollup recomputed, repo_->RecomputeRollup());
  EXPECT_TRUE(stored == recomputed);
  // + the service and its person, + the end in June
  EXPECT_EQ(stored.size(), 5 * cep::indicators::Cuboids().size());

  // A transaction that fails after writing a case leaves the rollups as they were.
  absl::Status st = Tx([&](cep::CepTx& tx) -> absl::Status {
    if (absl::Status s = tx.InsertCase(FullCase("c2", "apec", "p2"), kSubject, kNow); !s.ok()) return s;
    return absl::FailedPreconditionError("refused by the use case");
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_OK_AND_ASSIGN(cep::indicators::Rollup after, repo_->ReadRollup());
  EXPECT_TRUE(after == stored);

  // The query groups and filters in the store: entries in March 2024 by level in the full cuboid.
  cep::indicators::RollupQuery q;
  q.cuboid = 0;
  q.measure = cep::indicators::kEntries;
  q.from_month = 202403;
  q.to_month = 202403;
  q.group = cep::indicators::Bit(cep::indicators::kLevel);
  q.conditions.push_back({cep::indicators::kRegion, true, "53", 0});
  ASSERT_OK_AND_ASSIGN(auto rows, repo_->QueryRollup(q));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].first.level, "2019/1");
  EXPECT_EQ(rows[0].first.month, 202403);
  EXPECT_EQ(rows[0].second, 1);
  q.conditions.push_back({cep::indicators::kRegion, true, "11", 0});
  ASSERT_OK_AND_ASSIGN(rows, repo_->QueryRollup(q));
  EXPECT_TRUE(rows.empty());

  // Rebuilding from the cases gives the same rollups.
  ASSERT_OK(repo_->RebuildRollup());
  ASSERT_OK_AND_ASSIGN(cep::indicators::Rollup rebuilt, repo_->ReadRollup());
  EXPECT_TRUE(rebuilt == stored);
}

TEST_P(CepRepositoryConformanceTest, BulkCasesSkipTakenExternalIdsAndStoreWhatInsertCaseStores) {
  ASSERT_OK(InsertCase(FullCase("c1", "apec", "p1", pb::CASE_STATE_OPEN, "2019/1", Date(2024, 3, 15), "E1")));
  std::vector<pb::Case> rows = {
      FullCase("c10", "apec", "p1", pb::CASE_STATE_OPEN, "2019/1", Date(2024, 3, 15), "E1"),   // stored before
      FullCase("c11", "apec", "p2", pb::CASE_STATE_CLOSED, "2019/2", Date(2024, 3, 16), "E2"),
      FullCase("c12", "apec", "p3", pb::CASE_STATE_OPEN, "2019/2", Date(2024, 3, 17), "E2"),   // earlier row
      FullCase("c13", "ft", "p1", pb::CASE_STATE_OPEN, "2019/2", Date(2024, 3, 18), "E1"),     // other operator
  };
  for (int i = 0; i < 1100; ++i) {
    rows.push_back(FullCase(absl::StrCat("m", i), "apec", "p9", pb::CASE_STATE_OPEN, "2019/1", Date(2024, 1, 2),
                            absl::StrCat("M", i)));
  }
  ASSERT_OK_AND_ASSIGN(std::vector<bool> inserted,
                       Read<std::vector<bool>>([&](cep::CepTx& tx) { return tx.InsertCases(rows, std::vector<cep::indicators::Subject>(rows.size(), kSubject), kLater); }));
  ASSERT_EQ(inserted.size(), rows.size());
  EXPECT_FALSE(inserted[0]);
  EXPECT_TRUE(inserted[1]);
  EXPECT_FALSE(inserted[2]);
  EXPECT_TRUE(inserted[3]);
  EXPECT_EQ(std::count(inserted.begin(), inserted.end(), true), 1102);
  EXPECT_EQ(GetCase("c10").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(GetCase("c12").status().code(), absl::StatusCode::kNotFound);

  // The stored case is the one InsertCase stores.
  ASSERT_OK(InsertCase(FullCase("s11", "apec", "p2", pb::CASE_STATE_CLOSED, "2019/2", Date(2024, 3, 16), "S2"),
                       kLater));
  ASSERT_OK_AND_ASSIGN(cep::Versioned<pb::Case> bulk, GetCase("c11"));
  ASSERT_OK_AND_ASSIGN(cep::Versioned<pb::Case> single, GetCase("s11"));
  EXPECT_EQ(bulk.version, 1);
  EXPECT_TRUE(ProtoEqual(rows[1], WithoutEtag(bulk.value)));
  single.value.set_name("cases/c11");
  single.value.set_external_id("E2");
  EXPECT_TRUE(ProtoEqual(single.value, bulk.value));
  ASSERT_OK_AND_ASSIGN(cep::Versioned<pb::Case> last, GetCase("m1099"));
  EXPECT_TRUE(ProtoEqual(rows.back(), WithoutEtag(last.value)));

  ASSERT_OK_AND_ASSIGN(auto found, (Read<std::map<std::string, std::string>>([&](cep::CepTx& tx) {
                         return tx.FindCasesByExternalIds("apec", {"E1", "E2", "E9", "M1099"});
                       })));
  EXPECT_EQ(found, (std::map<std::string, std::string>{{"E1", "cases/c1"}, {"E2", "cases/c11"}, {"M1099", "cases/m1099"}}));
  ASSERT_OK_AND_ASSIGN(auto at_ft, (Read<std::map<std::string, std::string>>([&](cep::CepTx& tx) {
                         return tx.FindCasesByExternalIds("ft", {"E1", "E2"});
                       })));
  EXPECT_EQ(at_ft, (std::map<std::string, std::string>{{"E1", "cases/c13"}}));

  // Everything taken: nothing inserted, no error (the transaction goes on).
  ASSERT_OK_AND_ASSIGN(inserted, Read<std::vector<bool>>([&](cep::CepTx& tx) {
                         return tx.InsertCases({FullCase("c20", "apec", "p1", pb::CASE_STATE_OPEN, "2019/1",
                                                         Date(2024, 3, 15), "M5")},
                                               {kSubject}, kLater);
                       }));
  EXPECT_EQ(inserted, std::vector<bool>{false});
}

TEST_P(CepRepositoryConformanceTest, BulkActivityIsAppendedInOrderWithTheRowsOfSingleAppends) {
  ASSERT_OK_AND_ASSIGN(int64_t before, Append(Event("apec", "a0", pb::ACTIVITY_KIND_CASE_OPENED), kNow));
  std::vector<pb::ActivityEvent> events;
  for (int i = 0; i < 1200; ++i) {
    events.push_back(Event(i % 2 == 0 ? "apec" : "ft", absl::StrCat("b", i),
                           i == 1 ? pb::ACTIVITY_KIND_ANONYMISED : pb::ACTIVITY_KIND_CASE_OPENED));
  }
  ASSERT_OK(Tx([&](cep::CepTx& tx) { return tx.AppendActivities(events, kLater); }));
  ASSERT_OK(Tx([&](cep::CepTx& tx) { return tx.AppendActivities({}, kLater); }));
  ASSERT_OK_AND_ASSIGN(int64_t after, Append(Event("apec", "z", pb::ACTIVITY_KIND_CASE_CLOSED), kLater));
  std::vector<pb::ActivityEvent> all = ReadAll();
  ASSERT_EQ(all.size(), 1202u);
  EXPECT_EQ(CursorOf(all[0]), before);
  EXPECT_EQ(CursorOf(all[1201]), after);
  for (int i = 0; i < 1200; ++i) {
    const pb::ActivityEvent& got = all[static_cast<size_t>(i) + 1];
    EXPECT_GT(CursorOf(got), CursorOf(all[static_cast<size_t>(i)]));
    EXPECT_EQ(TimeOf(got.time()), kLater);
    pb::ActivityEvent stored = got;
    stored.clear_cursor();
    stored.clear_time();
    EXPECT_TRUE(ProtoEqual(events[static_cast<size_t>(i)], stored)) << i;
  }
  // Each row is the operator's and says whether it is its own activity, as AppendActivity does.
  ASSERT_OK_AND_ASSIGN(std::vector<pb::ActivityEvent> ft, repo_->ReadOperatorActivity("ft", 0, 10000));
  EXPECT_EQ(ft.size(), 600u);
  std::vector<pb::ActivityEvent> platform_only = {Event("x", "x1", pb::ACTIVITY_KIND_ERASED)};
  ASSERT_OK(Tx([&](cep::CepTx& tx) { return tx.AppendActivities(platform_only, kNow); }));
  ASSERT_OK_AND_ASSIGN(auto last, repo_->LastOwnActivity({"apec", "ft", "x"}, absl::ToUnixMicros(kLater) + 1));
  EXPECT_EQ(last.count("x"), 0u);
  EXPECT_EQ(last.count("ft"), 1u);
}

INSTANTIATE_TEST_SUITE_P(Backends, CepRepositoryConformanceTest, ::testing::Values("sqlite", "mysql"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
