// The SQL repository of evaluation-svc: the same statements on SQLite and MySQL (platform/db
// dialect subset; the score-sheet upsert is the one statement that branches on the dialect).
//
// Each aggregate is one row: the protobuf document in `doc`, with the fields that live in
// columns (name, certifier, state, session, etag, timestamps) cleared from it so each value is
// stored in one place, plus a `version` counter for optimistic concurrency.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "evaluation-svc/src/repository.h"
#include "platform/aip.h"
#include "platform/db/bulk.h"
#include "platform/errors.h"
#include "platform/idempotency.h"
#include "platform/store.h"
#include "platform/proto_time.h"

namespace parcours::evaluation {
namespace {

using db::Params;
using db::Row;
using db::Tx;

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }

void SetTimestamp(google::protobuf::Timestamp* ts, int64_t micros) { *ts = TimestampFromMicros(micros); }

// --- Resource names ---------------------------------------------------------------------------

std::string CandidacyName(const std::string& id) { return absl::StrCat("candidacies/", id); }
std::string SessionName(const std::string& id) { return absl::StrCat("sessions/", id); }
std::string ScoreSheetName(const std::string& candidacy_id, const std::string& member_id) {
  return absl::StrCat("candidacies/", candidacy_id, "/scoreSheets/", member_id);
}
std::string DeliberationName(const std::string& candidacy_id, int round) {
  return absl::StrCat("candidacies/", candidacy_id, "/deliberations/", round);
}
std::string LedgerEntryName(const LedgerEntry& e) {
  return absl::StrCat("candidates/", e.candidate_id, "/acquiredBlocs/", e.certification_code, "/",
                      e.bloc_code);
}

absl::StatusOr<std::string> CandidacyId(const pb::Candidacy& c) {
  absl::StatusOr<std::vector<std::string>> parts =
      aip::ParseName("candidacies/{candidacy}", c.name(), "candidacy.name");
  if (!parts.ok()) return parts.status();
  return (*parts)[0];
}

absl::StatusOr<std::string> SessionId(const pb::JurySession& s) {
  absl::StatusOr<std::vector<std::string>> parts =
      aip::ParseName("sessions/{session}", s.name(), "session.name");
  if (!parts.ok()) return parts.status();
  return (*parts)[0];
}

// certifications/{code}/versions/{n} -> code.
absl::StatusOr<std::string> CertificationCode(const pb::Candidacy& c) {
  absl::StatusOr<std::vector<std::string>> parts =
      aip::ParseName("certifications/{certification}/versions/{version}", c.referential_version(),
                     "candidacy.referential_version");
  if (!parts.ok()) return parts.status();
  return (*parts)[0];
}

// Last segment of a resource name ("sessions/s1" -> "s1"); "" stays "".
std::string LastSegment(const std::string& name) {
  size_t slash = name.rfind('/');
  return slash == std::string::npos ? name : name.substr(slash + 1);
}

int64_t Yyyymmdd(const google::type::Date& d) {
  return int64_t{d.year()} * 10000 + int64_t{d.month()} * 100 + d.day();
}

// --- Documents --------------------------------------------------------------------------------

std::string CandidacyDoc(pb::Candidacy c) {
  c.clear_name();
  c.clear_certifier();
  c.clear_state();
  c.clear_session();
  c.clear_create_time();
  c.clear_update_time();
  c.clear_etag();
  return c.SerializeAsString();
}

std::string SessionDoc(pb::JurySession s) {
  s.clear_name();
  s.clear_certifier();
  s.clear_state();
  s.clear_create_time();
  s.clear_update_time();
  s.clear_etag();
  return s.SerializeAsString();
}

std::string ScoreSheetDoc(pb::ScoreSheet s) {
  s.clear_name();
  s.clear_update_time();
  return s.SerializeAsString();
}

std::string DeliberationDoc(pb::Deliberation d) {
  d.clear_name();
  d.clear_state();
  d.clear_etag();
  return d.SerializeAsString();
}

// The columns a candidacy's lists filter on, derived from the document.
struct CandidacyColumns {
  std::string id;
  std::string certification_code;
  std::string session_id;
};

absl::StatusOr<CandidacyColumns> ColumnsOf(const pb::Candidacy& c) {
  CandidacyColumns cols;
  absl::StatusOr<std::string> id = CandidacyId(c);
  if (!id.ok()) return id.status();
  cols.id = *std::move(id);
  absl::StatusOr<std::string> code = CertificationCode(c);
  if (!code.ok()) return code.status();
  cols.certification_code = *std::move(code);
  cols.session_id = LastSegment(c.session());
  return cols;
}

constexpr char kCandidacyColumns[] =
    "id, certifier, state, session_id, doc, version, create_time, update_time";

absl::StatusOr<Versioned<pb::Candidacy>> CandidacyFromRow(const Row& row) {
  Versioned<pb::Candidacy> out;
  pb::Candidacy& c = out.value;
  if (!c.ParseFromString(row.Str(4))) {
    return absl::InternalError(absl::StrCat("corrupt candidacy document for ", row.Str(0)));
  }
  c.set_name(CandidacyName(row.Str(0)));
  c.set_certifier(row.Str(1));
  c.set_state(static_cast<pb::CandidacyState>(row.Int(2)));
  if (std::string session_id = row.Str(3); !session_id.empty()) c.set_session(SessionName(session_id));
  out.version = row.Int(5);
  c.set_etag(aip::Etag(out.version));
  SetTimestamp(c.mutable_create_time(), row.Int(6));
  SetTimestamp(c.mutable_update_time(), row.Int(7));
  return out;
}

constexpr char kSessionColumns[] = "id, certifier, state, doc, version, create_time, update_time";

absl::StatusOr<Versioned<pb::JurySession>> SessionFromRow(const Row& row) {
  Versioned<pb::JurySession> out;
  pb::JurySession& s = out.value;
  if (!s.ParseFromString(row.Str(3))) {
    return absl::InternalError(absl::StrCat("corrupt jury session document for ", row.Str(0)));
  }
  s.set_name(SessionName(row.Str(0)));
  s.set_certifier(row.Str(1));
  s.set_state(static_cast<pb::SessionState>(row.Int(2)));
  out.version = row.Int(4);
  s.set_etag(aip::Etag(out.version));
  SetTimestamp(s.mutable_create_time(), row.Int(5));
  SetTimestamp(s.mutable_update_time(), row.Int(6));
  return out;
}

// --- Transaction ------------------------------------------------------------------------------

class SqlTx final : public EvaluationTx {
 public:
  explicit SqlTx(Tx& tx) : tx_(tx) {}

  absl::Status InsertCandidacy(const pb::Candidacy& candidacy, absl::Time now) override {
    absl::StatusOr<CandidacyColumns> cols = ColumnsOf(candidacy);
    if (!cols.ok()) return cols.status();
    absl::StatusOr<int64_t> n = tx_.Exec(
        "INSERT INTO candidacies (id, certifier, certification_code, candidate_id, state, session_id, "
        "doc, version, create_time, update_time) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
        {cols->id, candidacy.certifier(), cols->certification_code, candidacy.candidate_id(),
         int64_t{candidacy.state()}, cols->session_id, CandidacyDoc(candidacy), Micros(now), Micros(now)});
    if (absl::IsAlreadyExists(n.status())) return AlreadyExists(CandidacyName(cols->id));
    return n.status();
  }

  absl::StatusOr<Versioned<pb::Candidacy>> GetCandidacy(const std::string& id) override {
    return ReadCandidacy(id, "");
  }

  absl::StatusOr<Versioned<pb::Candidacy>> LockCandidacy(const std::string& id) override {
    return ReadCandidacy(id, db::ForUpdate(tx_.dialect()));
  }

  absl::Status PutCandidacy(const pb::Candidacy& candidacy, int64_t expected_version,
                            absl::Time now) override {
    absl::StatusOr<CandidacyColumns> cols = ColumnsOf(candidacy);
    if (!cols.ok()) return cols.status();
    absl::StatusOr<int64_t> n = tx_.Exec(
        "UPDATE candidacies SET certifier = ?, certification_code = ?, candidate_id = ?, state = ?, "
        "session_id = ?, doc = ?, version = version + 1, update_time = ? WHERE id = ? AND version = ?",
        {candidacy.certifier(), cols->certification_code, candidacy.candidate_id(),
         int64_t{candidacy.state()}, cols->session_id, CandidacyDoc(candidacy), Micros(now), cols->id,
         expected_version});
    if (!n.ok()) return n.status();
    if (*n == 1) return absl::OkStatus();
    return Missed("SELECT 1 FROM candidacies WHERE id = ?", {cols->id}, CandidacyName(cols->id));
  }

  absl::Status InsertSession(const pb::JurySession& session, absl::Time now) override {
    absl::StatusOr<std::string> id = SessionId(session);
    if (!id.ok()) return id.status();
    absl::StatusOr<int64_t> n = tx_.Exec(
        "INSERT INTO jury_sessions (id, certifier, session_date, state, doc, version, create_time, "
        "update_time) VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
        {*id, session.certifier(), Yyyymmdd(session.date()), int64_t{session.state()}, SessionDoc(session),
         Micros(now), Micros(now)});
    if (absl::IsAlreadyExists(n.status())) return AlreadyExists(SessionName(*id));
    return n.status();
  }

  absl::StatusOr<Versioned<pb::JurySession>> GetSession(const std::string& id) override {
    absl::StatusOr<db::Rows> rows = tx_.Query(
        absl::StrCat("SELECT ", kSessionColumns, " FROM jury_sessions WHERE id = ?"), {id});
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return NotFound(SessionName(id));
    return SessionFromRow(rows->front());
  }

  absl::Status PutSession(const pb::JurySession& session, int64_t expected_version, absl::Time now) override {
    absl::StatusOr<std::string> id = SessionId(session);
    if (!id.ok()) return id.status();
    absl::StatusOr<int64_t> n = tx_.Exec(
        "UPDATE jury_sessions SET certifier = ?, session_date = ?, state = ?, doc = ?, "
        "version = version + 1, update_time = ? WHERE id = ? AND version = ?",
        {session.certifier(), Yyyymmdd(session.date()), int64_t{session.state()}, SessionDoc(session),
         Micros(now), *id, expected_version});
    if (!n.ok()) return n.status();
    if (*n == 1) return absl::OkStatus();
    return Missed("SELECT 1 FROM jury_sessions WHERE id = ?", {*id}, SessionName(*id));
  }

  absl::Status PutScoreSheet(const std::string& candidacy_id, const std::string& member_id,
                             const pb::ScoreSheet& sheet, absl::Time now) override {
    return tx_
        .Exec(absl::StrCat("INSERT INTO score_sheets (candidacy_id, member_id, doc, update_time) VALUES (?, ?, ?, ?)",
                           db::UpsertReplacing(tx_.dialect(), "candidacy_id, member_id", {"doc", "update_time"})),
              {candidacy_id, member_id, ScoreSheetDoc(sheet), Micros(now)})
        .status();
  }

  absl::StatusOr<std::optional<pb::ScoreSheet>> GetScoreSheet(const std::string& candidacy_id,
                                                              const std::string& member_id) override {
    absl::StatusOr<db::Rows> rows = tx_.Query(
        "SELECT candidacy_id, member_id, doc, update_time FROM score_sheets "
        "WHERE candidacy_id = ? AND member_id = ?",
        {candidacy_id, member_id});
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return std::optional<pb::ScoreSheet>();
    absl::StatusOr<pb::ScoreSheet> sheet = ScoreSheetFromRow(rows->front());
    if (!sheet.ok()) return sheet.status();
    return std::optional<pb::ScoreSheet>(*std::move(sheet));
  }

  absl::StatusOr<std::vector<std::pair<std::string, pb::ScoreSheet>>> ListScoreSheets(
      const std::string& candidacy_id) override {
    absl::StatusOr<db::Rows> rows = tx_.Query(
        "SELECT candidacy_id, member_id, doc, update_time FROM score_sheets WHERE candidacy_id = ? "
        "ORDER BY member_id",
        {candidacy_id});
    if (!rows.ok()) return rows.status();
    std::vector<std::pair<std::string, pb::ScoreSheet>> out;
    out.reserve(rows->size());
    for (const Row& row : *rows) {
      absl::StatusOr<pb::ScoreSheet> sheet = ScoreSheetFromRow(row);
      if (!sheet.ok()) return sheet.status();
      out.emplace_back(row.Str(1), *std::move(sheet));
    }
    return out;
  }

  absl::StatusOr<int> SetAsideScoreSheets(const std::string& candidacy_id, const std::string& session_id,
                                          absl::Time now) override {
    absl::StatusOr<int64_t> moved = tx_.Exec(
        "INSERT INTO past_score_sheets (candidacy_id, session_id, member_id, doc, update_time, set_aside_time) "
        "SELECT candidacy_id, ?, member_id, doc, update_time, ? FROM score_sheets WHERE candidacy_id = ?",
        {session_id, Micros(now), candidacy_id});
    if (!moved.ok()) return moved.status();
    absl::StatusOr<int64_t> deleted = tx_.Exec("DELETE FROM score_sheets WHERE candidacy_id = ?", {candidacy_id});
    if (!deleted.ok()) return deleted.status();
    if (*deleted != *moved) {
      return absl::InternalError(absl::StrCat("set aside ", *moved, " score sheets of ", candidacy_id, " but removed ",
                                              *deleted));
    }
    return static_cast<int>(*moved);
  }

  absl::StatusOr<std::vector<PastScoreSheet>> ListPastScoreSheets(const std::string& candidacy_id) override {
    absl::StatusOr<db::Rows> rows = tx_.Query(
        "SELECT candidacy_id, member_id, doc, update_time, session_id, set_aside_time FROM past_score_sheets "
        "WHERE candidacy_id = ? ORDER BY set_aside_time, session_id, member_id",
        {candidacy_id});
    if (!rows.ok()) return rows.status();
    std::vector<PastScoreSheet> out;
    out.reserve(rows->size());
    for (const Row& row : *rows) {
      absl::StatusOr<pb::ScoreSheet> sheet = ScoreSheetFromRow(row);
      if (!sheet.ok()) return sheet.status();
      out.push_back({row.Str(4), row.Str(1), *std::move(sheet), absl::FromUnixMicros(row.Int(5))});
    }
    return out;
  }

  absl::Status InsertDeliberation(const std::string& candidacy_id, int round,
                                  const pb::Deliberation& deliberation, absl::Time now) override {
    absl::StatusOr<int64_t> n = tx_.Exec(
        "INSERT INTO deliberations (candidacy_id, round, state, doc, version, create_time, update_time) "
        "VALUES (?, ?, ?, ?, 1, ?, ?)",
        {candidacy_id, int64_t{round}, int64_t{deliberation.state()}, DeliberationDoc(deliberation),
         Micros(now), Micros(now)});
    if (absl::IsAlreadyExists(n.status())) return AlreadyExists(DeliberationName(candidacy_id, round));
    return n.status();
  }

  absl::StatusOr<Versioned<pb::Deliberation>> GetDeliberation(const std::string& candidacy_id,
                                                              int round) override {
    absl::StatusOr<db::Rows> rows = tx_.Query(
        "SELECT state, doc, version FROM deliberations WHERE candidacy_id = ? AND round = ?",
        {candidacy_id, int64_t{round}});
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return NotFound(DeliberationName(candidacy_id, round));
    const Row& row = rows->front();
    Versioned<pb::Deliberation> out;
    pb::Deliberation& d = out.value;
    if (!d.ParseFromString(row.Str(1))) {
      return absl::InternalError(
          absl::StrCat("corrupt deliberation document for ", DeliberationName(candidacy_id, round)));
    }
    d.set_name(DeliberationName(candidacy_id, round));
    d.set_state(static_cast<pb::DeliberationState>(row.Int(0)));
    out.version = row.Int(2);
    d.set_etag(aip::Etag(out.version));
    return out;
  }

  absl::StatusOr<int> LatestDeliberationRound(const std::string& candidacy_id) override {
    absl::StatusOr<db::Rows> rows = tx_.Query(
        "SELECT COALESCE(MAX(round), 0) FROM deliberations WHERE candidacy_id = ?", {candidacy_id});
    if (!rows.ok()) return rows.status();
    return rows->empty() ? 0 : static_cast<int>(rows->front().Int(0));
  }

  absl::Status PutDeliberation(const std::string& candidacy_id, int round, const pb::Deliberation& deliberation,
                               int64_t expected_version, absl::Time now) override {
    absl::StatusOr<int64_t> n = tx_.Exec(
        "UPDATE deliberations SET state = ?, doc = ?, version = version + 1, update_time = ? "
        "WHERE candidacy_id = ? AND round = ? AND version = ?",
        {int64_t{deliberation.state()}, DeliberationDoc(deliberation), Micros(now), candidacy_id,
         int64_t{round}, expected_version});
    if (!n.ok()) return n.status();
    if (*n == 1) return absl::OkStatus();
    return Missed("SELECT 1 FROM deliberations WHERE candidacy_id = ? AND round = ?",
                  {candidacy_id, int64_t{round}}, DeliberationName(candidacy_id, round));
  }

  absl::Status AddLedgerEntry(const LedgerEntry& entry) override {
    absl::StatusOr<int64_t> n = tx_.Exec(
        "INSERT INTO acquired_blocs (candidate_id, certification_code, bloc_code, acquired_date, "
        "expiry_date, source_deliberation) VALUES (?, ?, ?, ?, ?, ?)",
        {entry.candidate_id, entry.certification_code, entry.bloc_code, int64_t{entry.acquired_yyyymmdd},
         int64_t{entry.expiry_yyyymmdd}, entry.source_deliberation});
    if (absl::IsAlreadyExists(n.status())) return AlreadyExists(LedgerEntryName(entry));
    return n.status();
  }

  absl::Status RemoveLedgerEntries(const std::string& source_deliberation) override {
    return tx_.Exec("DELETE FROM acquired_blocs WHERE source_deliberation = ?", {source_deliberation})
        .status();
  }

  absl::StatusOr<std::vector<LedgerEntry>> ListLedger(const std::string& candidate_id) override {
    return ReadLedger(candidate_id, "");
  }

  absl::StatusOr<std::vector<LedgerEntry>> LockLedger(const std::string& candidate_id) override {
    return ReadLedger(candidate_id, db::ForUpdate(tx_.dialect()));
  }

  absl::Status AddLedgerUses(const std::vector<LedgerUse>& uses) override {
    std::vector<Params> values;
    values.reserve(uses.size());
    for (const LedgerUse& u : uses) values.push_back({u.candidacy_id, u.bloc_code, u.source_deliberation});
    return db::InsertRows(tx_, "INSERT INTO ledger_uses (candidacy_id, bloc_code, source_deliberation)", "(?, ?, ?)",
                          values)
        .status();
  }

  absl::StatusOr<std::vector<LedgerUse>> ListLedgerUsesOfResult(const std::string& source_deliberation) override {
    return ReadLedgerUses("source_deliberation", source_deliberation);
  }

  absl::StatusOr<std::vector<LedgerUse>> ListLedgerUsesByCandidacy(const std::string& candidacy_id) override {
    return ReadLedgerUses("candidacy_id", candidacy_id);
  }

  absl::Status RemoveLedgerUsesOfResult(const std::string& source_deliberation) override {
    return tx_.Exec("DELETE FROM ledger_uses WHERE source_deliberation = ?", {source_deliberation}).status();
  }

  absl::Status Audit(const AuditEntry& entry) override { return WriteAudit(tx_, entry); }

  absl::StatusOr<std::optional<std::string>> LookupRequest(const std::string& method,
                                                           const std::string& request_id,
                                                           const google::protobuf::Message& request) override {
    return LookupRequestName(tx_, method, request_id, request);
  }

  absl::Status RecordRequest(const std::string& method, const std::string& request_id,
                             const google::protobuf::Message& request, const std::string& resource_name,
                             absl::Time now) override {
    return RecordRequestId(tx_, method, request_id, request, resource_name, Micros(now));
  }

 private:
  absl::StatusOr<std::vector<LedgerUse>> ReadLedgerUses(const char* column, const std::string& value) {
    absl::StatusOr<db::Rows> rows =
        tx_.Query(absl::StrCat("SELECT candidacy_id, bloc_code, source_deliberation FROM ledger_uses WHERE ", column,
                               " = ? ORDER BY candidacy_id, bloc_code, source_deliberation"),
                  {value});
    if (!rows.ok()) return rows.status();
    std::vector<LedgerUse> out;
    out.reserve(rows->size());
    for (const Row& row : *rows) out.push_back({row.Str(0), row.Str(1), row.Str(2)});
    return out;
  }

  absl::StatusOr<std::vector<LedgerEntry>> ReadLedger(const std::string& candidate_id, const char* lock) {
    absl::StatusOr<db::Rows> rows = tx_.Query(
        absl::StrCat("SELECT candidate_id, certification_code, bloc_code, acquired_date, expiry_date, "
                     "source_deliberation FROM acquired_blocs WHERE candidate_id = ? "
                     "ORDER BY certification_code, bloc_code, acquired_date, source_deliberation",
                     lock),
        {candidate_id});
    if (!rows.ok()) return rows.status();
    std::vector<LedgerEntry> out;
    out.reserve(rows->size());
    for (const Row& row : *rows) {
      LedgerEntry e;
      e.candidate_id = row.Str(0);
      e.certification_code = row.Str(1);
      e.bloc_code = row.Str(2);
      e.acquired_yyyymmdd = static_cast<int>(row.Int(3));
      e.expiry_yyyymmdd = static_cast<int>(row.Int(4));
      e.source_deliberation = row.Str(5);
      out.push_back(std::move(e));
    }
    return out;
  }

  absl::StatusOr<Versioned<pb::Candidacy>> ReadCandidacy(const std::string& id, const char* suffix) {
    absl::StatusOr<db::Rows> rows = tx_.Query(
        absl::StrCat("SELECT ", kCandidacyColumns, " FROM candidacies WHERE id = ?", suffix), {id});
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return NotFound(CandidacyName(id));
    return CandidacyFromRow(rows->front());
  }

  absl::Status Missed(const char* exists_sql, const Params& key, const std::string& name) {
    return MissedUpdate(tx_, exists_sql, key, name);
  }

  static absl::StatusOr<pb::ScoreSheet> ScoreSheetFromRow(const Row& row) {
    pb::ScoreSheet sheet;
    const std::string name = ScoreSheetName(row.Str(0), row.Str(1));
    if (!sheet.ParseFromString(row.Str(2))) {
      return absl::InternalError(absl::StrCat("corrupt score sheet document for ", name));
    }
    sheet.set_name(name);
    SetTimestamp(sheet.mutable_update_time(), row.Int(3));
    return sheet;
  }

  Tx& tx_;
};

// --- Repository -------------------------------------------------------------------------------

class SqlRepository final : public EvaluationRepository {
 public:
  explicit SqlRepository(db::Db& db) : db_(db) {}

  absl::Status Transact(const std::function<absl::Status(EvaluationTx&)>& fn) override {
    return db_.Transact([&](Tx& tx) -> absl::Status {
      SqlTx etx(tx);
      return fn(etx);
    });
  }

  absl::StatusOr<std::vector<pb::Candidacy>> ListCandidacies(const CandidacyQuery& query) override {
    // The certifier scope is always applied: an empty certifier sees nothing.
    std::string sql =
        absl::StrCat("SELECT ", kCandidacyColumns, " FROM candidacies WHERE certifier = ? AND id > ?");
    Params params = {query.certifier, query.after_id};
    if (!query.certification_code.empty()) {
      sql += " AND certification_code = ?";
      params.push_back(query.certification_code);
    }
    if (!query.candidate_id.empty()) {
      sql += " AND candidate_id = ?";
      params.push_back(query.candidate_id);
    }
    if (query.state.has_value()) {
      sql += " AND state = ?";
      params.push_back(int64_t{*query.state});
    }
    if (!query.session.empty()) {
      sql += " AND session_id = ?";
      params.push_back(LastSegment(query.session));
    }
    sql += " ORDER BY id LIMIT ?";
    params.push_back(int64_t{std::max(query.limit, 0)});
    absl::StatusOr<db::Rows> rows = db_.Query(sql, params);
    if (!rows.ok()) return rows.status();
    return ValuesOfRows<pb::Candidacy>(*rows, CandidacyFromRow);
  }

  absl::StatusOr<std::vector<pb::JurySession>> ListSessions(const SessionQuery& query) override {
    std::string sql =
        absl::StrCat("SELECT ", kSessionColumns, " FROM jury_sessions WHERE certifier = ? AND id > ?");
    Params params = {query.certifier, query.after_id};
    if (query.date_yyyymmdd != 0) {
      sql += " AND session_date = ?";
      params.push_back(int64_t{query.date_yyyymmdd});
    }
    if (query.state.has_value()) {
      sql += " AND state = ?";
      params.push_back(int64_t{*query.state});
    }
    sql += " ORDER BY id LIMIT ?";
    params.push_back(int64_t{std::max(query.limit, 0)});
    absl::StatusOr<db::Rows> rows = db_.Query(sql, params);
    if (!rows.ok()) return rows.status();
    return ValuesOfRows<pb::JurySession>(*rows, SessionFromRow);
  }

  absl::StatusOr<std::vector<SealedResult>> ListSealedResults(const SealedResultQuery& query) override {
    // One indexed range of the deliberations' primary key, joined to the candidacy for its code.
    std::string sql =
        "SELECT d.candidacy_id, d.round, c.certification_code, d.state, d.doc FROM deliberations d "
        "JOIN candidacies c ON c.id = d.candidacy_id "
        "WHERE d.state = ? AND (d.candidacy_id > ? OR (d.candidacy_id = ? AND d.round > ?)) "
        // A candidacy's result is its latest round: an earlier sealed round (an absence before a
        // later session) is not, whatever the latest round's state.
        "AND d.round = (SELECT MAX(l.round) FROM deliberations l WHERE l.candidacy_id = d.candidacy_id)";
    Params params = {int64_t{pb::DELIBERATION_STATE_SEALED}, query.after_candidacy_id, query.after_candidacy_id,
                     int64_t{query.after_round}};
    if (!query.certification_code.empty()) {
      sql += " AND c.certification_code = ?";
      params.push_back(query.certification_code);
    }
    sql += " ORDER BY d.candidacy_id, d.round LIMIT ?";
    params.push_back(int64_t{std::max(query.limit, 0)});
    absl::StatusOr<db::Rows> rows = db_.Query(sql, params);
    if (!rows.ok()) return rows.status();
    std::vector<SealedResult> out;
    out.reserve(rows->size());
    for (const Row& row : *rows) {
      SealedResult r;
      r.candidacy_id = row.Str(0);
      r.round = static_cast<int>(row.Int(1));
      r.certification_code = row.Str(2);
      const std::string name = DeliberationName(r.candidacy_id, r.round);
      if (!r.deliberation.ParseFromString(row.Str(4))) {
        return absl::InternalError(absl::StrCat("corrupt deliberation document for ", name));
      }
      r.deliberation.set_name(name);
      r.deliberation.set_state(static_cast<pb::DeliberationState>(row.Int(3)));
      out.push_back(std::move(r));
    }
    return out;
  }

  absl::StatusOr<std::vector<AuditEntry>> ListAudit(const std::string& resource) override {
    return ReadAudit(db_, resource);
  }

 private:
  db::Db& db_;
};

}  // namespace

std::unique_ptr<EvaluationRepository> NewSqlRepository(db::Db& db) {
  return std::make_unique<SqlRepository>(db);
}

}  // namespace parcours::evaluation
