// Conformance of the evaluation repository contract (evaluation-svc/src/repository.h) on both
// storage backends: the same suite runs on a fresh SQLite file and on a fresh MariaDB database,
// each migrated with the embedded schema.

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "evaluation-svc/src/repository.h"
#include "platform/proto_time.h"
#include "platform/testing/status_macros.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/rpc/error_details.pb.h"
#include "parcours/evaluation/v1/evaluation.pb.h"
#include "platform/aip.h"
#include "platform/db/db.h"
#include "platform/db/migrations.h"
#include "platform/testing/lock_race.h"
#include "platform/testing/mariadb.h"

namespace parcours::evaluation {
const std::vector<db::Migration>& SqliteMigrations();
const std::vector<db::Migration>& MysqlMigrations();
}  // namespace parcours::evaluation

namespace {

namespace db = ::parcours::db;
namespace ev = ::parcours::evaluation;
namespace pb = ::parcours::evaluation::v1;

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;


// The repository never reads a clock: every write gets `now` from the caller.
const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2026, 6, 12, 9, 30, 0), absl::UTCTimeZone()) + absl::Microseconds(123456);
const absl::Time kLater = kNow + absl::Hours(1) + absl::Microseconds(7);

absl::Time TimeOf(const google::protobuf::Timestamp& ts) { return parcours::FromTimestamp(ts); }

void SetTime(google::protobuf::Timestamp* ts, absl::Time t) { *ts = parcours::ToTimestamp(t); }

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

// The fields the repository sets on read from its own columns (not stored from the input).
pb::Candidacy WithoutStorageOutputs(pb::Candidacy c) {
  c.clear_etag();
  c.clear_create_time();
  c.clear_update_time();
  return c;
}

pb::JurySession WithoutStorageOutputs(pb::JurySession s) {
  s.clear_etag();
  s.clear_create_time();
  s.clear_update_time();
  return s;
}

pb::Deliberation WithoutStorageOutputs(pb::Deliberation d) {
  d.clear_etag();
  return d;
}

pb::ScoreSheet WithoutStorageOutputs(pb::ScoreSheet s) {
  s.clear_update_time();
  return s;
}

// Every field of a candidacy, output fields included (the service sets them before storing),
// with French UTF-8 text.
pb::Candidacy FullCandidacy(const std::string& id, const std::string& certifier = "CPNE-IA",
                            const std::string& code = "CQP-TMSA",
                            pb::CandidacyState state = pb::CANDIDACY_STATE_INFORMATION,
                            const std::string& session = "", const std::string& candidate = "cand-1") {
  pb::Candidacy c;
  c.set_name(absl::StrCat("candidacies/", id));
  c.set_candidate_id(candidate);
  c.set_candidate_display_name("Zoé Lefèvre-Ørsted « 🔧 »");
  c.set_referential_version(absl::StrCat("certifications/", code, "/versions/3"));
  c.add_target_blocs("BC1");
  c.add_target_blocs("BC2");
  c.add_target_blocs("BC3");
  c.add_held_blocs("BC3");
  c.add_blocs_to_evaluate("BC1");
  c.add_blocs_to_evaluate("BC2");
  c.set_certifier(certifier);
  c.set_state(state);
  pb::StateChange* change = c.add_history();
  change->set_from(pb::CANDIDACY_STATE_UNSPECIFIED);
  change->set_to(pb::CANDIDACY_STATE_INFORMATION);
  change->set_actor(absl::StrCat("certifier:", certifier));
  SetTime(change->mutable_time(), kNow);
  change->set_reason("Création — dossier reçu");
  c.set_session(session);
  return c;
}

pb::JurySession FullSession(const std::string& id, const std::string& certifier = "CPNE-IA",
                            int year = 2026, int month = 6, int day = 12,
                            pb::SessionState state = pb::SESSION_STATE_PLANNED) {
  pb::JurySession s;
  s.set_name(absl::StrCat("sessions/", id));
  s.set_certifier(certifier);
  s.mutable_date()->set_year(year);
  s.mutable_date()->set_month(month);
  s.mutable_date()->set_day(day);
  s.set_place("Salle Émile-Zola, 3ᵉ étage");
  s.set_remote(true);
  pb::JuryMember* president = s.add_members();
  president->set_member_id("m-employer");
  president->set_display_name("Hélène Dupré");
  president->set_function("Responsable maintenance");
  president->set_college(pb::COLLEGE_EMPLOYER);
  president->set_president(true);
  president->set_qualified(true);
  president->set_gender(pb::GENDER_FEMALE);
  president->set_prepared(true);
  SetTime(president->mutable_prepared_time(), kNow);
  pb::JuryMember* employee = s.add_members();
  employee->set_member_id("m-employee");
  employee->set_display_name("Loïc Bœuf");
  employee->set_college(pb::COLLEGE_EMPLOYEE);
  employee->set_gender(pb::GENDER_MALE);
  pb::SessionSlot* slot = s.add_slots();
  slot->set_candidacy("candidacies/c1");
  SetTime(slot->mutable_start_time(), kNow + absl::Hours(2));
  slot->set_attendance(pb::ATTENDANCE_PRESENT);
  slot->set_presentation_seconds(540);
  slot->set_exchange_seconds(600);
  slot->set_question_count(7);
  s.set_state(state);
  s.set_duration_tolerance_seconds(120);
  s.set_question_count_tolerance(2);
  return s;
}

pb::ScoreSheet Sheet(int percent) {
  pb::ScoreSheet s;
  pb::CompetenceScore* cs = s.add_competence_scores();
  cs->set_competence_code("C1.1");
  cs->set_mark(pb::DOSSIER_MARK_PARTIAL);
  cs->set_percent(percent);
  pb::BlocScore* bs = s.add_bloc_scores();
  bs->set_bloc_code("BC1");
  bs->set_percent(percent);
  bs->set_interview_level(3);
  return s;
}

pb::Deliberation FullDeliberation(pb::DeliberationState state = pb::DELIBERATION_STATE_OPEN) {
  pb::Deliberation d;
  d.set_state(state);
  pb::BlocSpread* spread = d.add_spreads();
  spread->set_bloc_code("BC1");
  spread->set_min_percent(55);
  spread->set_max_percent(80);
  spread->set_mean_percent(67.5);
  spread->set_divergent(true);
  d.set_divergence_gap(20);
  pb::BlocAppreciation* a = d.add_appreciations();
  a->set_bloc_code("BC1");
  a->set_common_percent(68);
  a->set_comment("Maîtrise des procédures — à consolider");
  a->set_justification("Expérience significative démontrée à l’entretien");
  a->set_acquired(true);
  d.set_proposal(pb::PROPOSAL_KIND_PARTIAL);
  d.add_proposed_blocs("BC1");
  d.set_comment("Délibération unanime");
  pb::Signature* sig = d.add_signatures();
  sig->set_member_id("m-employer");
  SetTime(sig->mutable_time(), kNow);
  SetTime(d.mutable_open_time(), kNow);
  return d;
}

ev::LedgerEntry Entry(const std::string& candidate, const std::string& code, const std::string& bloc,
                      const std::string& source, int acquired = 20260612, int expiry = 0) {
  ev::LedgerEntry e;
  e.candidate_id = candidate;
  e.certification_code = code;
  e.bloc_code = bloc;
  e.acquired_yyyymmdd = acquired;
  e.expiry_yyyymmdd = expiry;
  e.source_deliberation = source;
  return e;
}

std::vector<std::string> Ids(const std::vector<pb::Candidacy>& list) {
  std::vector<std::string> out;
  for (const pb::Candidacy& c : list) out.push_back(c.name().substr(c.name().rfind('/') + 1));
  return out;
}

std::vector<std::string> Ids(const std::vector<pb::JurySession>& list) {
  std::vector<std::string> out;
  for (const pb::JurySession& s : list) out.push_back(s.name().substr(s.name().rfind('/') + 1));
  return out;
}

class EvaluationRepositoryConformanceTest : public ::testing::TestWithParam<std::string> {
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
        GetParam() == "sqlite" ? ev::SqliteMigrations() : ev::MysqlMigrations();
    ASSERT_FALSE(migrations.empty());
    absl::StatusOr<int> migrated = db::Migrate(*db_, migrations);
    ASSERT_TRUE(migrated.ok()) << migrated.status();
    ASSERT_EQ(*migrated, migrations.back().version);
    repo_ = ev::NewSqlRepository(*db_);
  }

  absl::Status Tx(const std::function<absl::Status(ev::EvaluationTx&)>& fn) { return repo_->Transact(fn); }

  absl::Status InsertCandidacy(const pb::Candidacy& c, absl::Time now = kNow) {
    return Tx([&](ev::EvaluationTx& tx) { return tx.InsertCandidacy(c, now); });
  }
  absl::Status InsertSession(const pb::JurySession& s, absl::Time now = kNow) {
    return Tx([&](ev::EvaluationTx& tx) { return tx.InsertSession(s, now); });
  }

  absl::StatusOr<ev::Versioned<pb::Candidacy>> GetCandidacy(const std::string& id) {
    absl::StatusOr<ev::Versioned<pb::Candidacy>> out = absl::UnknownError("not run");
    absl::Status st = Tx([&](ev::EvaluationTx& tx) {
      out = tx.GetCandidacy(id);
      return absl::OkStatus();
    });
    if (!st.ok()) return st;
    return out;
  }

  absl::StatusOr<ev::Versioned<pb::JurySession>> GetSession(const std::string& id) {
    absl::StatusOr<ev::Versioned<pb::JurySession>> out = absl::UnknownError("not run");
    absl::Status st = Tx([&](ev::EvaluationTx& tx) {
      out = tx.GetSession(id);
      return absl::OkStatus();
    });
    if (!st.ok()) return st;
    return out;
  }

  absl::StatusOr<ev::Versioned<pb::Deliberation>> GetDeliberation(const std::string& candidacy, int round) {
    absl::StatusOr<ev::Versioned<pb::Deliberation>> out = absl::UnknownError("not run");
    absl::Status st = Tx([&](ev::EvaluationTx& tx) {
      out = tx.GetDeliberation(candidacy, round);
      return absl::OkStatus();
    });
    if (!st.ok()) return st;
    return out;
  }

  int LatestRound(const std::string& candidacy) {
    absl::StatusOr<int> out = absl::UnknownError("not run");
    EXPECT_OK(Tx([&](ev::EvaluationTx& tx) {
      out = tx.LatestDeliberationRound(candidacy);
      return out.status();
    }));
    return out.ok() ? *out : -1;
  }

  std::vector<ev::LedgerEntry> Ledger(const std::string& candidate) {
    absl::StatusOr<std::vector<ev::LedgerEntry>> out = absl::UnknownError("not run");
    EXPECT_OK(Tx([&](ev::EvaluationTx& tx) {
      out = tx.ListLedger(candidate);
      return out.status();
    }));
    return out.ok() ? *out : std::vector<ev::LedgerEntry>{};
  }

  std::vector<std::pair<std::string, pb::ScoreSheet>> Sheets(const std::string& candidacy) {
    absl::StatusOr<std::vector<std::pair<std::string, pb::ScoreSheet>>> out = absl::UnknownError("not run");
    EXPECT_OK(Tx([&](ev::EvaluationTx& tx) {
      out = tx.ListScoreSheets(candidacy);
      return out.status();
    }));
    return out.ok() ? *out : std::vector<std::pair<std::string, pb::ScoreSheet>>{};
  }

  std::vector<std::string> ListCandidacyIds(const ev::CandidacyQuery& query) {
    absl::StatusOr<std::vector<pb::Candidacy>> listed = repo_->ListCandidacies(query);
    EXPECT_TRUE(listed.ok()) << listed.status();
    return listed.ok() ? Ids(*listed) : std::vector<std::string>{"<error>"};
  }

  std::vector<std::string> ListSessionIds(const ev::SessionQuery& query) {
    absl::StatusOr<std::vector<pb::JurySession>> listed = repo_->ListSessions(query);
    EXPECT_TRUE(listed.ok()) << listed.status();
    return listed.ok() ? Ids(*listed) : std::vector<std::string>{"<error>"};
  }

  std::unique_ptr<db::Db> db_;
  std::unique_ptr<ev::EvaluationRepository> repo_;
};

// --- Round trips -------------------------------------------------------------------------------

TEST_P(EvaluationRepositoryConformanceTest, CandidacyRoundTripsEveryField) {
  const pb::Candidacy input = FullCandidacy("c1", "CPNE-IA", "CQP-TMSA", pb::CANDIDACY_STATE_JURY_SCHEDULED,
                                            "sessions/s-2026-06");
  ASSERT_OK(InsertCandidacy(input));
  ASSERT_OK_AND_ASSIGN(ev::Versioned<pb::Candidacy> got, GetCandidacy("c1"));
  EXPECT_EQ(got.version, 1);
  EXPECT_TRUE(ProtoEqual(input, WithoutStorageOutputs(got.value)));
  EXPECT_EQ(got.value.name(), "candidacies/c1");
  EXPECT_EQ(got.value.certifier(), "CPNE-IA");
  EXPECT_EQ(got.value.state(), pb::CANDIDACY_STATE_JURY_SCHEDULED);
  EXPECT_EQ(got.value.session(), "sessions/s-2026-06");
  EXPECT_EQ(got.value.etag(), parcours::aip::Etag(1));
  EXPECT_EQ(TimeOf(got.value.create_time()), kNow);
  EXPECT_EQ(TimeOf(got.value.update_time()), kNow);

  // Put replaces the whole aggregate and moves the version on; create_time stays.
  pb::Candidacy changed = got.value;
  changed.set_state(pb::CANDIDACY_STATE_EVALUATED);
  changed.clear_session();
  changed.set_candidate_display_name("Zoé Lefèvre");
  changed.set_referential_version("certifications/RNCP40344/versions/1");
  pb::StateChange* change = changed.add_history();
  change->set_from(pb::CANDIDACY_STATE_JURY_SCHEDULED);
  change->set_to(pb::CANDIDACY_STATE_EVALUATED);
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) { return tx.PutCandidacy(changed, 1, kLater); }));
  ASSERT_OK_AND_ASSIGN(ev::Versioned<pb::Candidacy> after, GetCandidacy("c1"));
  EXPECT_EQ(after.version, 2);
  EXPECT_TRUE(ProtoEqual(WithoutStorageOutputs(changed), WithoutStorageOutputs(after.value)));
  EXPECT_EQ(after.value.session(), "");
  EXPECT_EQ(after.value.etag(), parcours::aip::Etag(2));
  EXPECT_EQ(TimeOf(after.value.create_time()), kNow);
  EXPECT_EQ(TimeOf(after.value.update_time()), kLater);
}

TEST_P(EvaluationRepositoryConformanceTest, StoredEtagAndTimesAreNotTakenFromTheInput) {
  pb::Candidacy spoofed = FullCandidacy("c1");
  spoofed.set_etag("\"42\"");
  SetTime(spoofed.mutable_create_time(), kLater);
  SetTime(spoofed.mutable_update_time(), kLater);
  ASSERT_OK(InsertCandidacy(spoofed));
  ASSERT_OK_AND_ASSIGN(ev::Versioned<pb::Candidacy> got, GetCandidacy("c1"));
  EXPECT_EQ(got.value.etag(), parcours::aip::Etag(1));
  EXPECT_EQ(TimeOf(got.value.create_time()), kNow);
  EXPECT_EQ(TimeOf(got.value.update_time()), kNow);
}

TEST_P(EvaluationRepositoryConformanceTest, MalformedNamesAreInvalidArgument) {
  pb::Candidacy bad = FullCandidacy("c1");
  bad.set_name("candidates/c1");
  EXPECT_EQ(InsertCandidacy(bad).code(), absl::StatusCode::kInvalidArgument);
  pb::Candidacy bad_version = FullCandidacy("c2");
  bad_version.set_referential_version("CQP-TMSA");
  EXPECT_EQ(InsertCandidacy(bad_version).code(), absl::StatusCode::kInvalidArgument);
  pb::JurySession bad_session = FullSession("s1");
  bad_session.set_name("s1");
  EXPECT_EQ(InsertSession(bad_session).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetCandidacy("c1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(GetCandidacy("c2").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(EvaluationRepositoryConformanceTest, SessionRoundTripsEveryField) {
  const pb::JurySession input = FullSession("s1", "CPNE-IA", 2026, 6, 12, pb::SESSION_STATE_IN_PROGRESS);
  ASSERT_OK(InsertSession(input));
  ASSERT_OK_AND_ASSIGN(ev::Versioned<pb::JurySession> got, GetSession("s1"));
  EXPECT_EQ(got.version, 1);
  EXPECT_TRUE(ProtoEqual(input, WithoutStorageOutputs(got.value)));
  EXPECT_EQ(got.value.name(), "sessions/s1");
  EXPECT_EQ(got.value.certifier(), "CPNE-IA");
  EXPECT_EQ(got.value.state(), pb::SESSION_STATE_IN_PROGRESS);
  EXPECT_EQ(got.value.etag(), parcours::aip::Etag(1));
  EXPECT_EQ(TimeOf(got.value.create_time()), kNow);
  EXPECT_EQ(TimeOf(got.value.update_time()), kNow);

  pb::JurySession changed = got.value;
  changed.mutable_date()->set_day(19);
  changed.set_state(pb::SESSION_STATE_PLANNED);
  changed.mutable_members(1)->set_prepared(true);
  changed.clear_slots();
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) { return tx.PutSession(changed, 1, kLater); }));
  ASSERT_OK_AND_ASSIGN(ev::Versioned<pb::JurySession> after, GetSession("s1"));
  EXPECT_EQ(after.version, 2);
  EXPECT_TRUE(ProtoEqual(WithoutStorageOutputs(changed), WithoutStorageOutputs(after.value)));
  EXPECT_EQ(TimeOf(after.value.create_time()), kNow);
  EXPECT_EQ(TimeOf(after.value.update_time()), kLater);
  // The date column follows the document.
  ev::SessionQuery by_date;
  by_date.certifier = "CPNE-IA";
  by_date.date_yyyymmdd = 20260619;
  EXPECT_THAT(ListSessionIds(by_date), ElementsAre("s1"));
  by_date.date_yyyymmdd = 20260612;
  EXPECT_THAT(ListSessionIds(by_date), IsEmpty());
}

TEST_P(EvaluationRepositoryConformanceTest, DeliberationRoundTripsEveryField) {
  const pb::Deliberation input = FullDeliberation(pb::DELIBERATION_STATE_OPEN);
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) { return tx.InsertDeliberation("c1", 1, input, kNow); }));
  ASSERT_OK_AND_ASSIGN(ev::Versioned<pb::Deliberation> got, GetDeliberation("c1", 1));
  EXPECT_EQ(got.version, 1);
  pb::Deliberation expected = input;
  expected.set_name("candidacies/c1/deliberations/1");
  EXPECT_TRUE(ProtoEqual(expected, WithoutStorageOutputs(got.value)));
  EXPECT_EQ(got.value.etag(), parcours::aip::Etag(1));

  pb::Deliberation sealed = got.value;
  sealed.set_state(pb::DELIBERATION_STATE_SEALED);
  pb::Signature* sig = sealed.add_signatures();
  sig->set_member_id("m-employee");
  SetTime(sig->mutable_time(), kLater);
  SetTime(sealed.mutable_seal_time(), kLater);
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) { return tx.PutDeliberation("c1", 1, sealed, 1, kLater); }));
  ASSERT_OK_AND_ASSIGN(ev::Versioned<pb::Deliberation> after, GetDeliberation("c1", 1));
  EXPECT_EQ(after.version, 2);
  EXPECT_EQ(after.value.state(), pb::DELIBERATION_STATE_SEALED);
  EXPECT_EQ(after.value.etag(), parcours::aip::Etag(2));
  EXPECT_TRUE(ProtoEqual(WithoutStorageOutputs(sealed), WithoutStorageOutputs(after.value)));
}

// --- Errors ------------------------------------------------------------------------------------

TEST_P(EvaluationRepositoryConformanceTest, DuplicateIdsAreAlreadyExistsAndKeepTheFirst) {
  const pb::Candidacy first = FullCandidacy("c1", "CPNE-IA");
  ASSERT_OK(InsertCandidacy(first));
  absl::Status dup = InsertCandidacy(FullCandidacy("c1", "OTHER", "RNCP1"), kLater);
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists) << dup;
  EXPECT_EQ(ResourceInfoName(dup), "candidacies/c1");
  ASSERT_OK_AND_ASSIGN(ev::Versioned<pb::Candidacy> got, GetCandidacy("c1"));
  EXPECT_TRUE(ProtoEqual(first, WithoutStorageOutputs(got.value)));
  EXPECT_EQ(TimeOf(got.value.update_time()), kNow);

  ASSERT_OK(InsertSession(FullSession("s1", "CPNE-IA")));
  dup = InsertSession(FullSession("s1", "OTHER"), kLater);
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists) << dup;
  EXPECT_EQ(ResourceInfoName(dup), "sessions/s1");
  ASSERT_OK_AND_ASSIGN(ev::Versioned<pb::JurySession> session, GetSession("s1"));
  EXPECT_EQ(session.value.certifier(), "CPNE-IA");

  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) { return tx.InsertDeliberation("c1", 1, FullDeliberation(), kNow); }));
  dup = Tx([&](ev::EvaluationTx& tx) {
    return tx.InsertDeliberation("c1", 1, FullDeliberation(pb::DELIBERATION_STATE_REVOKED), kLater);
  });
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists) << dup;
  EXPECT_EQ(ResourceInfoName(dup), "candidacies/c1/deliberations/1");
  ASSERT_OK_AND_ASSIGN(ev::Versioned<pb::Deliberation> delib, GetDeliberation("c1", 1));
  EXPECT_EQ(delib.value.state(), pb::DELIBERATION_STATE_OPEN);

  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) {
    return tx.AddLedgerEntry(Entry("cand-1", "CQP-TMSA", "BC1", "candidacies/c1/deliberations/1"));
  }));
  dup = Tx([&](ev::EvaluationTx& tx) {
    return tx.AddLedgerEntry(Entry("cand-1", "CQP-TMSA", "BC1", "candidacies/c1/deliberations/1", 20270101));
  });
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists) << dup;
  std::vector<ev::LedgerEntry> ledger = Ledger("cand-1");
  ASSERT_EQ(ledger.size(), 1u);
  EXPECT_EQ(ledger[0].acquired_yyyymmdd, 20260612);
}

TEST_P(EvaluationRepositoryConformanceTest, UnknownIdsAreNotFound) {
  absl::Status st = GetCandidacy("nope").status();
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_EQ(ResourceInfoName(st), "candidacies/nope");
  st = GetSession("nope").status();
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_EQ(ResourceInfoName(st), "sessions/nope");
  st = GetDeliberation("nope", 1).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_EQ(ResourceInfoName(st), "candidacies/nope/deliberations/1");

  // Put of a row that does not exist is NOT_FOUND, not an etag mismatch.
  st = Tx([&](ev::EvaluationTx& tx) { return tx.PutCandidacy(FullCandidacy("nope"), 1, kNow); });
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  st = Tx([&](ev::EvaluationTx& tx) { return tx.PutSession(FullSession("nope"), 1, kNow); });
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  st = Tx([&](ev::EvaluationTx& tx) { return tx.PutDeliberation("nope", 1, FullDeliberation(), 1, kNow); });
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;

  // Case and prefix matter.
  ASSERT_OK(InsertCandidacy(FullCandidacy("Cand1")));
  EXPECT_EQ(GetCandidacy("cand1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(GetCandidacy("Cand").status().code(), absl::StatusCode::kNotFound);

  // A missing score sheet is not an error.
  std::optional<pb::ScoreSheet> sheet = Sheet(1);
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) {
    absl::StatusOr<std::optional<pb::ScoreSheet>> got = tx.GetScoreSheet("Cand1", "m1");
    if (!got.ok()) return got.status();
    sheet = *got;
    return absl::OkStatus();
  }));
  EXPECT_FALSE(sheet.has_value());
}

TEST_P(EvaluationRepositoryConformanceTest, PutWithStaleVersionIsAbortedAndChangesNothing) {
  ASSERT_OK(InsertCandidacy(FullCandidacy("c1")));
  ASSERT_OK(InsertSession(FullSession("s1")));
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) { return tx.InsertDeliberation("c1", 1, FullDeliberation(), kNow); }));

  pb::Candidacy c2 = FullCandidacy("c1", "CPNE-IA", "CQP-TMSA", pb::CANDIDACY_STATE_ADMISSIBILITY_REQUESTED);
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) { return tx.PutCandidacy(c2, 1, kLater); }));
  pb::Candidacy stale = FullCandidacy("c1", "CPNE-IA", "RNCP1", pb::CANDIDACY_STATE_WITHDRAWN);
  absl::Status st = Tx([&](ev::EvaluationTx& tx) { return tx.PutCandidacy(stale, 1, kLater + absl::Hours(1)); });
  EXPECT_EQ(st.code(), absl::StatusCode::kAborted) << st;
  EXPECT_EQ(ResourceInfoName(st), "candidacies/c1");
  st = Tx([&](ev::EvaluationTx& tx) { return tx.PutCandidacy(stale, 7, kLater); });
  EXPECT_EQ(st.code(), absl::StatusCode::kAborted) << st;
  ASSERT_OK_AND_ASSIGN(ev::Versioned<pb::Candidacy> got, GetCandidacy("c1"));
  EXPECT_EQ(got.version, 2);
  EXPECT_TRUE(ProtoEqual(c2, WithoutStorageOutputs(got.value)));
  EXPECT_EQ(TimeOf(got.value.update_time()), kLater);
  ev::CandidacyQuery withdrawn;
  withdrawn.certifier = "CPNE-IA";
  withdrawn.state = pb::CANDIDACY_STATE_WITHDRAWN;
  EXPECT_THAT(ListCandidacyIds(withdrawn), IsEmpty());

  pb::JurySession stale_session = FullSession("s1", "CPNE-IA", 2027, 1, 1, pb::SESSION_STATE_IN_PROGRESS);
  st = Tx([&](ev::EvaluationTx& tx) { return tx.PutSession(stale_session, 0, kLater); });
  EXPECT_EQ(st.code(), absl::StatusCode::kAborted) << st;
  EXPECT_EQ(ResourceInfoName(st), "sessions/s1");
  ASSERT_OK_AND_ASSIGN(ev::Versioned<pb::JurySession> session, GetSession("s1"));
  EXPECT_EQ(session.version, 1);
  EXPECT_TRUE(ProtoEqual(FullSession("s1"), WithoutStorageOutputs(session.value)));

  st = Tx([&](ev::EvaluationTx& tx) {
    return tx.PutDeliberation("c1", 1, FullDeliberation(pb::DELIBERATION_STATE_SEALED), 2, kLater);
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kAborted) << st;
  EXPECT_EQ(ResourceInfoName(st), "candidacies/c1/deliberations/1");
  ASSERT_OK_AND_ASSIGN(ev::Versioned<pb::Deliberation> delib, GetDeliberation("c1", 1));
  EXPECT_EQ(delib.version, 1);
  EXPECT_EQ(delib.value.state(), pb::DELIBERATION_STATE_OPEN);
}

TEST_P(EvaluationRepositoryConformanceTest, ErrorFromTheTransactionFunctionRollsBackEverything) {
  ASSERT_OK(InsertCandidacy(FullCandidacy("c0")));
  const absl::Status refused = absl::FailedPreconditionError("refused by the use case");
  absl::Status st = Tx([&](ev::EvaluationTx& tx) -> absl::Status {
    if (absl::Status s = tx.InsertCandidacy(FullCandidacy("c1"), kNow); !s.ok()) return s;
    pb::Candidacy moved = FullCandidacy("c0", "CPNE-IA", "CQP-TMSA", pb::CANDIDACY_STATE_DELIBERATED);
    if (absl::Status s = tx.PutCandidacy(moved, 1, kNow); !s.ok()) return s;
    if (absl::Status s = tx.InsertSession(FullSession("s1"), kNow); !s.ok()) return s;
    if (absl::Status s = tx.PutScoreSheet("c1", "m1", Sheet(70), kNow); !s.ok()) return s;
    if (absl::Status s = tx.InsertDeliberation("c1", 1, FullDeliberation(), kNow); !s.ok()) return s;
    if (absl::Status s = tx.AddLedgerEntry(Entry("cand-1", "CQP-TMSA", "BC1", "candidacies/c1/deliberations/1"));
        !s.ok()) {
      return s;
    }
    if (absl::Status s = tx.Audit({kNow, "certifier:CPNE-IA", "CreateCandidacy", "candidacies/c1", ""}); !s.ok()) {
      return s;
    }
    if (absl::Status s = tx.RecordRequest("CreateCandidacy", "req-1", FullCandidacy("c1"), "candidacies/c1", kNow);
        !s.ok()) {
      return s;
    }
    // Everything is visible inside the transaction...
    absl::StatusOr<ev::Versioned<pb::Candidacy>> inside = tx.GetCandidacy("c1");
    if (!inside.ok()) return inside.status();
    absl::StatusOr<std::vector<ev::LedgerEntry>> ledger = tx.ListLedger("cand-1");
    if (!ledger.ok()) return ledger.status();
    if (ledger->size() != 1) return absl::InternalError("ledger entry not visible in its transaction");
    return refused;
  });
  EXPECT_EQ(st, refused);

  // ... and nothing after the rollback.
  EXPECT_EQ(GetCandidacy("c1").status().code(), absl::StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(ev::Versioned<pb::Candidacy> c0, GetCandidacy("c0"));
  EXPECT_EQ(c0.version, 1);
  EXPECT_EQ(c0.value.state(), pb::CANDIDACY_STATE_INFORMATION);
  EXPECT_EQ(GetSession("s1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Sheets("c1"), IsEmpty());
  EXPECT_EQ(LatestRound("c1"), 0);
  EXPECT_THAT(Ledger("cand-1"), IsEmpty());
  ASSERT_OK_AND_ASSIGN(std::vector<ev::AuditEntry> audit, repo_->ListAudit("candidacies/c1"));
  EXPECT_THAT(audit, IsEmpty());
  std::optional<std::string> hit = "x";
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) {
    absl::StatusOr<std::optional<std::string>> got = tx.LookupRequest("CreateCandidacy", "req-1", FullCandidacy("c1"));
    if (!got.ok()) return got.status();
    hit = *got;
    return absl::OkStatus();
  }));
  EXPECT_FALSE(hit.has_value());

  // A storage error half-way (duplicate id) rolls back the writes before it too.
  st = Tx([&](ev::EvaluationTx& tx) -> absl::Status {
    if (absl::Status s = tx.AddLedgerEntry(Entry("cand-1", "CQP-TMSA", "BC2", "x")); !s.ok()) return s;
    if (absl::Status s = tx.PutCandidacy(FullCandidacy("c0", "CPNE-IA", "CQP-TMSA", pb::CANDIDACY_STATE_WITHDRAWN),
                                         1, kLater);
        !s.ok()) {
      return s;
    }
    return tx.InsertCandidacy(FullCandidacy("c0"), kLater);
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists) << st;
  EXPECT_THAT(Ledger("cand-1"), IsEmpty());
  ASSERT_OK_AND_ASSIGN(c0, GetCandidacy("c0"));
  EXPECT_EQ(c0.version, 1);
  EXPECT_EQ(c0.value.state(), pb::CANDIDACY_STATE_INFORMATION);
}

// --- Score sheets, deliberations, ledger, audit ------------------------------------------------

TEST_P(EvaluationRepositoryConformanceTest, ScoreSheetsAreReplacedWholeAndListedInMemberOrder) {
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) -> absl::Status {
    for (const char* member : {"m3", "m1", "m2"}) {
      if (absl::Status s = tx.PutScoreSheet("c1", member, Sheet(50), kNow); !s.ok()) return s;
    }
    return tx.PutScoreSheet("c2", "m1", Sheet(10), kNow);
  }));
  pb::ScoreSheet replacement;
  pb::BlocScore* bs = replacement.add_bloc_scores();
  bs->set_bloc_code("BC2");
  bs->set_percent(90);
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) { return tx.PutScoreSheet("c1", "m1", replacement, kLater); }));

  std::vector<std::pair<std::string, pb::ScoreSheet>> sheets = Sheets("c1");
  ASSERT_EQ(sheets.size(), 3u);
  EXPECT_EQ(sheets[0].first, "m1");
  EXPECT_EQ(sheets[1].first, "m2");
  EXPECT_EQ(sheets[2].first, "m3");
  // Replaced whole: the old competence scores are gone.
  EXPECT_TRUE(ProtoEqual(replacement, [&] {
    pb::ScoreSheet s = WithoutStorageOutputs(sheets[0].second);
    s.clear_name();
    return s;
  }()));
  EXPECT_EQ(sheets[0].second.name(), "candidacies/c1/scoreSheets/m1");
  EXPECT_EQ(TimeOf(sheets[0].second.update_time()), kLater);
  pb::ScoreSheet expected2 = Sheet(50);
  expected2.set_name("candidacies/c1/scoreSheets/m2");
  EXPECT_TRUE(ProtoEqual(expected2, WithoutStorageOutputs(sheets[1].second)));
  EXPECT_EQ(TimeOf(sheets[1].second.update_time()), kNow);

  std::optional<pb::ScoreSheet> got;
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) {
    absl::StatusOr<std::optional<pb::ScoreSheet>> s = tx.GetScoreSheet("c2", "m1");
    if (!s.ok()) return s.status();
    got = *s;
    return absl::OkStatus();
  }));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->name(), "candidacies/c2/scoreSheets/m1");
  EXPECT_EQ(got->bloc_scores(0).percent(), 10);
  EXPECT_EQ(Sheets("c2").size(), 1u);
  EXPECT_THAT(Sheets("c3"), IsEmpty());
}

TEST_P(EvaluationRepositoryConformanceTest, ScoreSheetsSetAsideAreKeptUnderTheirSessionAndNoLongerListed) {
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) -> absl::Status {
    for (const char* member : {"m2", "m1"}) {
      if (absl::Status s = tx.PutScoreSheet("c1", member, Sheet(50), kNow); !s.ok()) return s;
    }
    return tx.PutScoreSheet("c2", "m1", Sheet(10), kNow);
  }));
  int moved = -1;
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) -> absl::Status {
    absl::StatusOr<int> n = tx.SetAsideScoreSheets("c1", "s1", kLater);
    if (!n.ok()) return n.status();
    moved = *n;
    return absl::OkStatus();
  }));
  EXPECT_EQ(moved, 2);
  EXPECT_THAT(Sheets("c1"), IsEmpty());
  EXPECT_EQ(Sheets("c2").size(), 1u);  // another candidacy's stay
  // The new jury's sheet of the same member is a new one; set aside in turn under its session.
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) { return tx.PutScoreSheet("c1", "m1", Sheet(90), kLater); }));
  ASSERT_EQ(Sheets("c1").size(), 1u);
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) {
    return tx.SetAsideScoreSheets("c1", "s2", kLater + absl::Hours(1)).status();
  }));
  std::vector<ev::PastScoreSheet> past;
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) -> absl::Status {
    auto listed = tx.ListPastScoreSheets("c1");
    if (!listed.ok()) return listed.status();
    past = *std::move(listed);
    return absl::OkStatus();
  }));
  ASSERT_EQ(past.size(), 3u);
  EXPECT_EQ(past[0].session_id, "s1");
  EXPECT_EQ(past[0].member_id, "m1");
  EXPECT_EQ(past[1].session_id, "s1");
  EXPECT_EQ(past[1].member_id, "m2");
  EXPECT_EQ(past[2].session_id, "s2");
  EXPECT_EQ(past[2].member_id, "m1");
  EXPECT_EQ(past[0].set_aside_time, kLater);
  pb::ScoreSheet expected = Sheet(50);
  expected.set_name("candidacies/c1/scoreSheets/m1");
  EXPECT_TRUE(ProtoEqual(expected, WithoutStorageOutputs(past[0].sheet)));
  EXPECT_EQ(TimeOf(past[0].sheet.update_time()), kNow);
  EXPECT_EQ(past[2].sheet.bloc_scores(0).percent(), 90);
  // Nothing to set aside: none moved.
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) -> absl::Status {
    absl::StatusOr<int> n = tx.SetAsideScoreSheets("c3", "s1", kLater);
    if (!n.ok()) return n.status();
    EXPECT_EQ(*n, 0);
    return absl::OkStatus();
  }));
}

TEST_P(EvaluationRepositoryConformanceTest, DeliberationRoundsAndLatestRound) {
  EXPECT_EQ(LatestRound("c1"), 0);
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) { return tx.InsertDeliberation("c1", 1, FullDeliberation(), kNow); }));
  EXPECT_EQ(LatestRound("c1"), 1);
  // Revoke round 1 and open round 2 in one transaction.
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) -> absl::Status {
    absl::StatusOr<ev::Versioned<pb::Deliberation>> d = tx.GetDeliberation("c1", 1);
    if (!d.ok()) return d.status();
    d->value.set_state(pb::DELIBERATION_STATE_REVOKED);
    d->value.set_revocation_reason("Erreur matérielle");
    if (absl::Status s = tx.PutDeliberation("c1", 1, d->value, d->version, kLater); !s.ok()) return s;
    absl::StatusOr<int> latest = tx.LatestDeliberationRound("c1");
    if (!latest.ok()) return latest.status();
    pb::Deliberation next;
    next.set_state(pb::DELIBERATION_STATE_OPEN);
    next.set_divergence_gap(15);
    return tx.InsertDeliberation("c1", *latest + 1, next, kLater);
  }));
  EXPECT_EQ(LatestRound("c1"), 2);
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) { return tx.InsertDeliberation("c1", 10, FullDeliberation(), kNow); }));
  EXPECT_EQ(LatestRound("c1"), 10);  // numeric, not text, order
  EXPECT_EQ(LatestRound("c2"), 0);

  ASSERT_OK_AND_ASSIGN(ev::Versioned<pb::Deliberation> r1, GetDeliberation("c1", 1));
  EXPECT_EQ(r1.value.state(), pb::DELIBERATION_STATE_REVOKED);
  EXPECT_EQ(r1.value.revocation_reason(), "Erreur matérielle");
  EXPECT_EQ(r1.version, 2);
  ASSERT_OK_AND_ASSIGN(ev::Versioned<pb::Deliberation> r2, GetDeliberation("c1", 2));
  EXPECT_EQ(r2.value.name(), "candidacies/c1/deliberations/2");
  EXPECT_EQ(r2.value.state(), pb::DELIBERATION_STATE_OPEN);
  EXPECT_EQ(r2.value.divergence_gap(), 15);
  EXPECT_EQ(r2.version, 1);
  EXPECT_EQ(GetDeliberation("c1", 3).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(EvaluationRepositoryConformanceTest, ListSealedResultsJoinsTheCodeFiltersAndPages) {
  // c1, c2 (CQP-TMSA) and c3 (RNCP40344); c1 has a revoked round 1 and a sealed round 2, c2 a
  // sealed round 1, c3 a sealed round 1, c4 (CQP-TMSA) only an open round, c5 (CQP-TMSA) a sealed
  // round 1 (an absence) and an open round 2 (its next jury's): c5 has no current result.
  ASSERT_OK(InsertCandidacy(FullCandidacy("c1")));
  ASSERT_OK(InsertCandidacy(FullCandidacy("c2")));
  ASSERT_OK(InsertCandidacy(FullCandidacy("c3", "CPNE-IA", "RNCP40344")));
  ASSERT_OK(InsertCandidacy(FullCandidacy("c4")));
  ASSERT_OK(InsertCandidacy(FullCandidacy("c5")));
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) -> absl::Status {
    for (const auto& [id, round, state] :
         std::vector<std::tuple<std::string, int, pb::DeliberationState>>{
             {"c1", 1, pb::DELIBERATION_STATE_REVOKED},
             {"c1", 2, pb::DELIBERATION_STATE_SEALED},
             {"c2", 1, pb::DELIBERATION_STATE_SEALED},
             {"c3", 1, pb::DELIBERATION_STATE_SEALED},
             {"c4", 1, pb::DELIBERATION_STATE_OPEN},
             {"c5", 1, pb::DELIBERATION_STATE_SEALED},
             {"c5", 2, pb::DELIBERATION_STATE_OPEN}}) {
      if (absl::Status s = tx.InsertDeliberation(id, round, FullDeliberation(state), kNow); !s.ok()) return s;
    }
    return absl::OkStatus();
  }));
  auto keys = [](const std::vector<ev::SealedResult>& results) {
    std::vector<std::string> out;
    for (const ev::SealedResult& r : results) {
      out.push_back(absl::StrCat(r.candidacy_id, "/", r.round, "/", r.certification_code));
    }
    return out;
  };
  ev::SealedResultQuery all;
  ASSERT_OK_AND_ASSIGN(std::vector<ev::SealedResult> everything, repo_->ListSealedResults(all));
  EXPECT_THAT(keys(everything), ElementsAre("c1/2/CQP-TMSA", "c2/1/CQP-TMSA", "c3/1/RNCP40344"));
  // The document comes back whole, with its name and state.
  EXPECT_EQ(everything[0].deliberation.name(), "candidacies/c1/deliberations/2");
  EXPECT_EQ(everything[0].deliberation.state(), pb::DELIBERATION_STATE_SEALED);
  EXPECT_EQ(everything[0].deliberation.proposal(), pb::PROPOSAL_KIND_PARTIAL);
  ASSERT_EQ(everything[0].deliberation.appreciations_size(), 1);
  EXPECT_TRUE(everything[0].deliberation.appreciations(0).acquired());

  ev::SealedResultQuery tmsa;
  tmsa.certification_code = "CQP-TMSA";
  ASSERT_OK_AND_ASSIGN(std::vector<ev::SealedResult> filtered, repo_->ListSealedResults(tmsa));
  EXPECT_THAT(keys(filtered), ElementsAre("c1/2/CQP-TMSA", "c2/1/CQP-TMSA"));

  // Keyset pages of one.
  ev::SealedResultQuery page;
  page.limit = 1;
  std::vector<std::string> seen;
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK_AND_ASSIGN(std::vector<ev::SealedResult> one, repo_->ListSealedResults(page));
    if (one.empty()) break;
    seen.push_back(keys(one).front());
    page.after_candidacy_id = one.back().candidacy_id;
    page.after_round = one.back().round;
  }
  EXPECT_THAT(seen, ElementsAre("c1/2/CQP-TMSA", "c2/1/CQP-TMSA", "c3/1/RNCP40344"));
  // Within one candidacy, the cursor's round counts: after (c1, 1) comes (c1, 2).
  ev::SealedResultQuery after_round;
  after_round.after_candidacy_id = "c1";
  after_round.after_round = 1;
  after_round.limit = 1;
  ASSERT_OK_AND_ASSIGN(std::vector<ev::SealedResult> next, repo_->ListSealedResults(after_round));
  EXPECT_THAT(keys(next), ElementsAre("c1/2/CQP-TMSA"));
}

TEST_P(EvaluationRepositoryConformanceTest, LedgerAddRemoveBySourceAndListOrder) {
  const std::string d1 = "candidacies/c1/deliberations/1";
  const std::string d2 = "candidacies/c2/deliberations/1";
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) -> absl::Status {
    for (const ev::LedgerEntry& e : {Entry("cand-1", "RNCP40344", "BC2", d1, 20260612, 20310612),
                                     Entry("cand-1", "CQP-TMSA", "BC3", d2, 20250101),
                                     Entry("cand-1", "RNCP40344", "BC1", d1, 20260612, 20310612),
                                     Entry("cand-1", "CQP-TMSA", "BC1", d2, 20250101),
                                     Entry("cand-2", "CQP-TMSA", "BC1", "candidacies/c3/deliberations/1")}) {
      if (absl::Status s = tx.AddLedgerEntry(e); !s.ok()) return s;
    }
    return absl::OkStatus();
  }));
  std::vector<ev::LedgerEntry> ledger = Ledger("cand-1");
  ASSERT_EQ(ledger.size(), 4u);
  std::vector<std::string> keys;
  for (const ev::LedgerEntry& e : ledger) keys.push_back(absl::StrCat(e.certification_code, "/", e.bloc_code));
  EXPECT_THAT(keys, ElementsAre("CQP-TMSA/BC1", "CQP-TMSA/BC3", "RNCP40344/BC1", "RNCP40344/BC2"));
  EXPECT_EQ(ledger[2].candidate_id, "cand-1");
  EXPECT_EQ(ledger[2].acquired_yyyymmdd, 20260612);
  EXPECT_EQ(ledger[2].expiry_yyyymmdd, 20310612);
  EXPECT_EQ(ledger[2].source_deliberation, d1);
  EXPECT_EQ(ledger[0].expiry_yyyymmdd, 0);

  // Revocation of d1 removes its blocs only.
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) { return tx.RemoveLedgerEntries(d1); }));
  keys.clear();
  for (const ev::LedgerEntry& e : Ledger("cand-1")) keys.push_back(absl::StrCat(e.certification_code, "/", e.bloc_code));
  EXPECT_THAT(keys, ElementsAre("CQP-TMSA/BC1", "CQP-TMSA/BC3"));
  EXPECT_EQ(Ledger("cand-2").size(), 1u);
  // Removing an unknown source is not an error.
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) { return tx.RemoveLedgerEntries("candidacies/zz/deliberations/9"); }));
  // The same bloc may be granted again by another deliberation.
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) {
    return tx.AddLedgerEntry(Entry("cand-1", "CQP-TMSA", "BC1", "candidacies/c1/deliberations/2", 20260701));
  }));
  EXPECT_EQ(Ledger("cand-1").size(), 3u);
  EXPECT_THAT(Ledger("cand-9"), IsEmpty());
}

TEST_P(EvaluationRepositoryConformanceTest, LedgerUsesAreListedPerResultAndPerCandidacyAndRemovedPerResult) {
  const std::string d1 = "candidacies/c1/deliberations/1";
  const std::string d2 = "candidacies/c2/deliberations/1";
  const std::vector<ev::LedgerUse> uses = {{"c9", "BC2", d1}, {"c9", "BC1", d2}, {"c9", "BC1", d1}, {"c8", "BC3", d1}};
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) { return tx.AddLedgerUses(uses); }));
  auto read = [&](const std::function<absl::StatusOr<std::vector<ev::LedgerUse>>(ev::EvaluationTx&)>& fn) {
    std::vector<ev::LedgerUse> out;
    const absl::Status st = Tx([&](ev::EvaluationTx& tx) -> absl::Status {
      auto got = fn(tx);
      if (!got.ok()) return got.status();
      out = *std::move(got);
      return absl::OkStatus();
    });
    EXPECT_TRUE(st.ok()) << st;
    return out;
  };
  EXPECT_THAT(read([&](ev::EvaluationTx& tx) { return tx.ListLedgerUsesOfResult(d1); }),
              ElementsAre(ev::LedgerUse{"c8", "BC3", d1}, ev::LedgerUse{"c9", "BC1", d1}, ev::LedgerUse{"c9", "BC2", d1}));
  EXPECT_THAT(read([&](ev::EvaluationTx& tx) { return tx.ListLedgerUsesByCandidacy("c9"); }),
              ElementsAre(ev::LedgerUse{"c9", "BC1", d1}, ev::LedgerUse{"c9", "BC1", d2}, ev::LedgerUse{"c9", "BC2", d1}));
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) { return tx.RemoveLedgerUsesOfResult(d1); }));
  EXPECT_THAT(read([&](ev::EvaluationTx& tx) { return tx.ListLedgerUsesByCandidacy("c9"); }),
              ElementsAre(ev::LedgerUse{"c9", "BC1", d2}));
  EXPECT_THAT(read([&](ev::EvaluationTx& tx) { return tx.ListLedgerUsesOfResult(d1); }), IsEmpty());
  // A use recorded twice is a bug of the caller (one certificate is issued once).
  EXPECT_FALSE(Tx([&](ev::EvaluationTx& tx) { return tx.AddLedgerUses({{"c9", "BC1", d2}}); }).ok());
}

TEST_P(EvaluationRepositoryConformanceTest, AuditIsListedPerResourceOldestFirst) {
  const std::vector<std::string> actions = {"CreateCandidacy", "RequestAdmissibility", "DecideAdmissibility",
                                            "FileDossier"};
  for (size_t i = 0; i < actions.size(); ++i) {
    ASSERT_OK(Tx([&](ev::EvaluationTx& tx) -> absl::Status {
      if (absl::Status s = tx.Audit({kNow + absl::Microseconds(static_cast<int64_t>(i)), "certifier:CPNE-IA",
                                     actions[i], "candidacies/c1", absl::StrCat("étape ", i + 1)});
          !s.ok()) {
        return s;
      }
      return tx.Audit({kNow, "jury-member:m1", "SubmitScoreSheet", "candidacies/c2", ""});
    }));
  }
  ASSERT_OK_AND_ASSIGN(std::vector<ev::AuditEntry> audit, repo_->ListAudit("candidacies/c1"));
  ASSERT_EQ(audit.size(), actions.size());
  for (size_t i = 0; i < actions.size(); ++i) {
    EXPECT_EQ(audit[i].action, actions[i]);
    EXPECT_EQ(audit[i].time, kNow + absl::Microseconds(static_cast<int64_t>(i)));
    EXPECT_EQ(audit[i].actor, "certifier:CPNE-IA");
    EXPECT_EQ(audit[i].resource, "candidacies/c1");
    EXPECT_EQ(audit[i].detail, absl::StrCat("étape ", i + 1));
  }
  ASSERT_OK_AND_ASSIGN(std::vector<ev::AuditEntry> other, repo_->ListAudit("candidacies/c2"));
  EXPECT_EQ(other.size(), actions.size());
  ASSERT_OK_AND_ASSIGN(std::vector<ev::AuditEntry> none, repo_->ListAudit("candidacies/c"));
  EXPECT_THAT(none, IsEmpty());
}

// --- Lists -------------------------------------------------------------------------------------

TEST_P(EvaluationRepositoryConformanceTest, ListCandidaciesFiltersPagesAndScopesByCertifier) {
  struct Row {
    const char* id;
    const char* certifier;
    const char* code;
    pb::CandidacyState state;
    const char* session;
  };
  const std::vector<Row> rows = {
      {"c07", "A", "CQP-TMSA", pb::CANDIDACY_STATE_DOSSIER_FILED, ""},
      {"c01", "A", "CQP-TMSA", pb::CANDIDACY_STATE_JURY_SCHEDULED, "sessions/s1"},
      {"c03", "B", "CQP-TMSA", pb::CANDIDACY_STATE_JURY_SCHEDULED, "sessions/s1"},
      {"c02", "A", "RNCP40344", pb::CANDIDACY_STATE_DOSSIER_FILED, ""},
      {"c05", "A", "CQP-TMSA", pb::CANDIDACY_STATE_JURY_SCHEDULED, "sessions/s2"},
      {"c04", "B", "RNCP40344", pb::CANDIDACY_STATE_INFORMATION, ""},
      {"c06", "A", "CQP-TMSA", pb::CANDIDACY_STATE_JURY_SCHEDULED, "sessions/s1"},
      {"C00", "A", "CQP-TMSA", pb::CANDIDACY_STATE_INFORMATION, ""},
      {"c08", "AB", "CQP-TMSA", pb::CANDIDACY_STATE_INFORMATION, ""},
  };
  for (const Row& r : rows) ASSERT_OK(InsertCandidacy(FullCandidacy(r.id, r.certifier, r.code, r.state, r.session)));

  ev::CandidacyQuery a;
  a.certifier = "A";
  // Byte order: upper case first on both backends.
  EXPECT_THAT(ListCandidacyIds(a), ElementsAre("C00", "c01", "c02", "c05", "c06", "c07"));
  ev::CandidacyQuery b;
  b.certifier = "B";
  EXPECT_THAT(ListCandidacyIds(b), ElementsAre("c03", "c04"));
  ev::CandidacyQuery lower_a;
  lower_a.certifier = "a";
  EXPECT_THAT(ListCandidacyIds(lower_a), IsEmpty());
  ev::CandidacyQuery nobody;
  EXPECT_THAT(ListCandidacyIds(nobody), IsEmpty());

  ev::CandidacyQuery by_code = a;
  by_code.certification_code = "RNCP40344";
  EXPECT_THAT(ListCandidacyIds(by_code), ElementsAre("c02"));
  ev::CandidacyQuery by_state = a;
  by_state.state = pb::CANDIDACY_STATE_JURY_SCHEDULED;
  EXPECT_THAT(ListCandidacyIds(by_state), ElementsAre("c01", "c05", "c06"));
  ev::CandidacyQuery by_session = a;
  by_session.session = "sessions/s1";
  EXPECT_THAT(ListCandidacyIds(by_session), ElementsAre("c01", "c06"));
  // B's candidacy on the same session is not visible to A, and vice versa.
  ev::CandidacyQuery b_session = b;
  b_session.session = "sessions/s1";
  EXPECT_THAT(ListCandidacyIds(b_session), ElementsAre("c03"));
  ev::CandidacyQuery combined = a;
  combined.certification_code = "CQP-TMSA";
  combined.state = pb::CANDIDACY_STATE_JURY_SCHEDULED;
  combined.session = "sessions/s2";
  EXPECT_THAT(ListCandidacyIds(combined), ElementsAre("c05"));
  combined.session = "sessions/s3";
  EXPECT_THAT(ListCandidacyIds(combined), IsEmpty());

  // Keyset pages of 2 visit every one of A's candidacies once, in order.
  std::vector<std::string> paged;
  ev::CandidacyQuery page = a;
  page.limit = 2;
  for (int i = 0; i < 10; ++i) {
    std::vector<std::string> got = ListCandidacyIds(page);
    EXPECT_LE(got.size(), 2u);
    if (got.empty()) break;
    paged.insert(paged.end(), got.begin(), got.end());
    page.after_id = got.back();
  }
  EXPECT_THAT(paged, ElementsAreArray({"C00", "c01", "c02", "c05", "c06", "c07"}));
  // A cursor need not exist; filters apply with the cursor.
  ev::CandidacyQuery from = by_state;
  from.after_id = "c02";
  EXPECT_THAT(ListCandidacyIds(from), ElementsAre("c05", "c06"));
  from.after_id = "c07";
  EXPECT_THAT(ListCandidacyIds(from), IsEmpty());

  // Listed candidacies are complete.
  absl::StatusOr<std::vector<pb::Candidacy>> listed = repo_->ListCandidacies(by_session);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_TRUE(ProtoEqual(FullCandidacy("c01", "A", "CQP-TMSA", pb::CANDIDACY_STATE_JURY_SCHEDULED, "sessions/s1"),
                         WithoutStorageOutputs((*listed)[0])));
  EXPECT_EQ((*listed)[0].etag(), parcours::aip::Etag(1));
  EXPECT_EQ(TimeOf((*listed)[0].create_time()), kNow);

  // Columns follow a Put: c07 moves to session s2 and the state filter.
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) {
    return tx.PutCandidacy(FullCandidacy("c07", "A", "CQP-TMSA", pb::CANDIDACY_STATE_JURY_SCHEDULED, "sessions/s2"),
                           1, kLater);
  }));
  by_session.session = "sessions/s2";
  EXPECT_THAT(ListCandidacyIds(by_session), ElementsAre("c05", "c07"));
}

TEST_P(EvaluationRepositoryConformanceTest, ListSessionsFiltersPagesAndScopesByCertifier) {
  ASSERT_OK(InsertSession(FullSession("s5", "A", 2026, 6, 12, pb::SESSION_STATE_PLANNED)));
  ASSERT_OK(InsertSession(FullSession("s1", "A", 2026, 6, 12, pb::SESSION_STATE_IN_PROGRESS)));
  ASSERT_OK(InsertSession(FullSession("s3", "B", 2026, 6, 12, pb::SESSION_STATE_PLANNED)));
  ASSERT_OK(InsertSession(FullSession("s2", "A", 2026, 7, 1, pb::SESSION_STATE_PLANNED)));
  ASSERT_OK(InsertSession(FullSession("s4", "A", 2025, 12, 31, pb::SESSION_STATE_PLANNED)));

  ev::SessionQuery a;
  a.certifier = "A";
  EXPECT_THAT(ListSessionIds(a), ElementsAre("s1", "s2", "s4", "s5"));
  ev::SessionQuery b;
  b.certifier = "B";
  EXPECT_THAT(ListSessionIds(b), ElementsAre("s3"));
  EXPECT_THAT(ListSessionIds(ev::SessionQuery{}), IsEmpty());

  ev::SessionQuery by_date = a;
  by_date.date_yyyymmdd = 20260612;
  EXPECT_THAT(ListSessionIds(by_date), ElementsAre("s1", "s5"));
  ev::SessionQuery by_state = a;
  by_state.state = pb::SESSION_STATE_PLANNED;
  EXPECT_THAT(ListSessionIds(by_state), ElementsAre("s2", "s4", "s5"));
  by_state.date_yyyymmdd = 20260612;
  EXPECT_THAT(ListSessionIds(by_state), ElementsAre("s5"));
  ev::SessionQuery b_date = b;
  b_date.date_yyyymmdd = 20260612;
  EXPECT_THAT(ListSessionIds(b_date), ElementsAre("s3"));

  std::vector<std::string> paged;
  ev::SessionQuery page = a;
  page.limit = 3;
  for (int i = 0; i < 10; ++i) {
    std::vector<std::string> got = ListSessionIds(page);
    EXPECT_LE(got.size(), 3u);
    if (got.empty()) break;
    paged.insert(paged.end(), got.begin(), got.end());
    page.after_id = got.back();
  }
  EXPECT_THAT(paged, ElementsAre("s1", "s2", "s4", "s5"));

  absl::StatusOr<std::vector<pb::JurySession>> listed = repo_->ListSessions(b);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_TRUE(ProtoEqual(FullSession("s3", "B", 2026, 6, 12, pb::SESSION_STATE_PLANNED),
                         WithoutStorageOutputs((*listed)[0])));
  EXPECT_EQ((*listed)[0].etag(), parcours::aip::Etag(1));
}

// --- Idempotency -------------------------------------------------------------------------------

TEST_P(EvaluationRepositoryConformanceTest, RequestIdLookupAndRecord) {
  pb::CreateCandidacyRequest request;
  *request.mutable_candidacy() = FullCandidacy("c1");
  request.set_request_id("9f1c2b1e-1111-4a4a-8888-0123456789ab");
  const std::string method = "/parcours.evaluation.v1.EvaluationService/CreateCandidacy";

  auto lookup = [&](const std::string& m, const std::string& id,
                    const google::protobuf::Message& req) -> absl::StatusOr<std::optional<std::string>> {
    absl::StatusOr<std::optional<std::string>> out = absl::UnknownError("not run");
    absl::Status st = Tx([&](ev::EvaluationTx& tx) {
      out = tx.LookupRequest(m, id, req);
      return absl::OkStatus();
    });
    if (!st.ok()) return st;
    return out;
  };

  ASSERT_OK_AND_ASSIGN(std::optional<std::string> miss, lookup(method, request.request_id(), request));
  EXPECT_FALSE(miss.has_value());
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) -> absl::Status {
    if (absl::Status s = tx.InsertCandidacy(request.candidacy(), kNow); !s.ok()) return s;
    return tx.RecordRequest(method, request.request_id(), request, "candidacies/c1", kNow);
  }));
  ASSERT_OK_AND_ASSIGN(std::optional<std::string> hit, lookup(method, request.request_id(), request));
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(*hit, "candidacies/c1");

  // The same key with another body is INVALID_ARGUMENT.
  pb::CreateCandidacyRequest other = request;
  other.mutable_candidacy()->set_candidate_id("cand-2");
  EXPECT_EQ(lookup(method, request.request_id(), other).status().code(), absl::StatusCode::kInvalidArgument);
  // Keys are per method.
  ASSERT_OK_AND_ASSIGN(std::optional<std::string> other_method,
                       lookup("/parcours.evaluation.v1.EvaluationService/CreateJurySession", request.request_id(),
                              request));
  EXPECT_FALSE(other_method.has_value());
  // Recording a key twice fails and rolls back its transaction.
  absl::Status st = Tx([&](ev::EvaluationTx& tx) -> absl::Status {
    if (absl::Status s = tx.InsertCandidacy(FullCandidacy("c2"), kNow); !s.ok()) return s;
    return tx.RecordRequest(method, request.request_id(), request, "candidacies/c2", kNow);
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists) << st;
  EXPECT_EQ(GetCandidacy("c2").status().code(), absl::StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(hit, lookup(method, request.request_id(), request));
  EXPECT_EQ(hit.value_or(""), "candidacies/c1");
  // An empty request id means no idempotency.
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) { return tx.RecordRequest(method, "", request, "candidacies/c1", kNow); }));
  ASSERT_OK_AND_ASSIGN(miss, lookup(method, "", request));
  EXPECT_FALSE(miss.has_value());
}

// --- Concurrency -------------------------------------------------------------------------------

TEST_P(EvaluationRepositoryConformanceTest, ConcurrentPutsAtTheSameVersionExactlyOneWins) {
  ASSERT_OK(InsertCandidacy(FullCandidacy("c1")));
  constexpr int kThreads = 8;
  std::atomic<int> ok{0};
  std::atomic<int> aborted{0};
  std::vector<std::string> unexpected(kThreads);
  absl::Notification go;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      pb::Candidacy mine = FullCandidacy("c1");
      mine.set_candidate_display_name(absl::StrCat("writer ", i));
      go.WaitForNotification();
      absl::Status st = repo_->Transact([&](ev::EvaluationTx& tx) -> absl::Status {
        if (absl::Status s = tx.PutCandidacy(mine, 1, kLater); !s.ok()) return s;
        return tx.Audit({kLater, "certifier:CPNE-IA", "Update", "candidacies/c1", absl::StrCat("writer ", i)});
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

  ASSERT_OK_AND_ASSIGN(ev::Versioned<pb::Candidacy> got, GetCandidacy("c1"));
  EXPECT_EQ(got.version, 2);
  // The winner's document and only the winner's audit entry are stored.
  ASSERT_OK_AND_ASSIGN(std::vector<ev::AuditEntry> audit, repo_->ListAudit("candidacies/c1"));
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].detail, got.value.candidate_display_name());
}

// A transaction that decides from a candidacy's score sheets (OpenDeliberation) and one that
// writes a sheet (SubmitScoreSheet) both lock the candidacy: the second waits for the first to
// end and then reads what it wrote. Without the lock, READ COMMITTED lets the reader see no
// sheet while the writer commits one (platform/testing/lock_race.h).
TEST_P(EvaluationRepositoryConformanceTest, LockCandidacyHoldsTheNextLockerUntilTheFirstEnds) {
  ASSERT_OK(InsertCandidacy(FullCandidacy("c1")));
  size_t sheets_seen = 0;
  ::parcours::testing::LockRaceResult race = ::parcours::testing::RunLockRace(
      [&](const std::function<void()>& hold) {
        return Tx([&](ev::EvaluationTx& tx) -> absl::Status {
          if (absl::Status s = tx.LockCandidacy("c1").status(); !s.ok()) return s;
          hold();
          return tx.PutScoreSheet("c1", "m1", Sheet(70), kNow);
        });
      },
      [&] {
        return Tx([&](ev::EvaluationTx& tx) -> absl::Status {
          if (absl::Status s = tx.LockCandidacy("c1").status(); !s.ok()) return s;
          auto sheets = tx.ListScoreSheets("c1");
          if (!sheets.ok()) return sheets.status();
          sheets_seen = sheets->size();
          return absl::OkStatus();
        });
      });
  ASSERT_OK(race.first);
  ASSERT_OK(race.second);
  EXPECT_EQ(sheets_seen, 1u) << "the second locker read before the first one's sheet was committed";

  absl::Status missing = Tx([&](ev::EvaluationTx& tx) { return tx.LockCandidacy("nope").status(); });
  EXPECT_TRUE(absl::IsNotFound(missing)) << missing;
}

// A method that only writes the candidacy (WithdrawCandidacy: PutCandidacy, no locking read) and
// one that decides from its state and writes another row (RecordDecision, SignDeliberation:
// LockCandidacy, then the deliberation): the locker waits for the writer's commit and reads the
// state it wrote. A plain read would return the state before it (READ COMMITTED) and both commit.
TEST_P(EvaluationRepositoryConformanceTest, LockCandidacyWaitsForAnUncommittedPutAndReadsIt) {
  ASSERT_OK(InsertCandidacy(FullCandidacy("c1", "CPNE-IA", "CQP-TMSA", pb::CANDIDACY_STATE_EVALUATED, "sessions/s1")));
  pb::CandidacyState seen = pb::CANDIDACY_STATE_UNSPECIFIED;
  ::parcours::testing::LockRaceResult race = ::parcours::testing::RunLockRace(
      [&](const std::function<void()>& hold) {
        return Tx([&](ev::EvaluationTx& tx) -> absl::Status {
          pb::Candidacy withdrawn =
              FullCandidacy("c1", "CPNE-IA", "CQP-TMSA", pb::CANDIDACY_STATE_WITHDRAWN, "sessions/s1");
          if (absl::Status s = tx.PutCandidacy(withdrawn, 1, kLater); !s.ok()) return s;
          hold();
          return absl::OkStatus();
        });
      },
      [&] {
        return Tx([&](ev::EvaluationTx& tx) -> absl::Status {
          auto c = tx.LockCandidacy("c1");
          if (!c.ok()) return c.status();
          seen = c->value.state();
          return absl::OkStatus();
        });
      });
  ASSERT_OK(race.first);
  ASSERT_OK(race.second);
  EXPECT_EQ(seen, pb::CANDIDACY_STATE_WITHDRAWN) << "the locker read the state before the uncommitted write";
}

// IssueCertificate reads the ledger locked; a revocation deletes the result's entries, so it waits
// for the issuance and then sees the uses it recorded.
TEST_P(EvaluationRepositoryConformanceTest, LockLedgerHoldsTheDeletionOfItsEntriesUntilTheLockerEnds) {
  const std::string d1 = "candidacies/c1/deliberations/1";
  ASSERT_OK(Tx([&](ev::EvaluationTx& tx) { return tx.AddLedgerEntry(Entry("cand-1", "CQP-TMSA", "BC1", d1, 20250101)); }));
  size_t uses_seen = 0;
  size_t entries_locked = 0;
  ::parcours::testing::LockRaceResult race = ::parcours::testing::RunLockRace(
      [&](const std::function<void()>& hold) {
        return Tx([&](ev::EvaluationTx& tx) -> absl::Status {
          auto ledger = tx.LockLedger("cand-1");
          if (!ledger.ok()) return ledger.status();
          entries_locked = ledger->size();
          hold();
          return tx.AddLedgerUses({{"c2", "BC1", d1}});
        });
      },
      [&] {
        return Tx([&](ev::EvaluationTx& tx) -> absl::Status {
          if (absl::Status s = tx.RemoveLedgerEntries(d1); !s.ok()) return s;
          auto uses = tx.ListLedgerUsesOfResult(d1);
          if (!uses.ok()) return uses.status();
          uses_seen = uses->size();
          return absl::OkStatus();
        });
      });
  ASSERT_OK(race.first);
  ASSERT_OK(race.second);
  EXPECT_EQ(entries_locked, 1u);
  EXPECT_EQ(uses_seen, 1u) << "the deletion went ahead before the locker's uses were committed";
  EXPECT_THAT(Ledger("cand-1"), IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(Backends, EvaluationRepositoryConformanceTest, ::testing::Values("sqlite", "mysql"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
