// The SQL repository of cep-svc: the same statements on SQLite and MySQL (platform/db dialect
// subset; the contact upsert and the insert-if-absent statements — beneficiary, and the bulk
// import's beneficiaries, contacts and cases — are the statements that branch on the dialect).
//
// Bulk import and batched case openings: multi-row statements (platform/db/bulk.h), so one batch
// of 1,000 rows is a few statements whatever the backend.
//
// Aggregates (operators, cases, transfers) are one row each: the protobuf document in `doc`, with
// the fields that live in columns (name, operator, state, level, dates, external id, etag...)
// cleared from it so each value is stored in one place, plus a `version` counter for optimistic
// concurrency. Beneficiaries are columns only; contact details are one document per
// (pseudonym, operator). Designations and levels are plain rows.
//
// The activity log is append-only; `seq` (AUTO_INCREMENT) is the feed's cursor. Every append
// first locks the single `activity_lock` row until its transaction ends, so appends commit in seq
// order and a reader resuming after a cursor never skips a smaller seq committed later. Each row
// also says whether it is the operator's own activity (`own_activity`), so compliance finds an
// operator's last shared activity before a date with one lookup on (operator_id, own_activity, time).
//
// Retention: `cases.notice_date` (0 = none) is set by MarkNoticed under the version read, and
// PutCase resets it whenever it moves last_activity (in the same UPDATE, before last_activity is
// assigned, so both dialects compare with the stored value).
#include <algorithm>
#include <functional>
#include <set>
#include <variant>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cep-svc/src/repository.h"
#include "platform/aip.h"
#include "platform/db/bulk.h"
#include "platform/errors.h"
#include "platform/idempotency.h"
#include "platform/store.h"
#include "platform/proto_time.h"

namespace parcours::cep {
namespace {

using db::InsertRows;
using db::Params;
using db::SelectIn;
using db::Row;
using db::Tx;

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }

void SetTimestamp(google::protobuf::Timestamp* ts, int64_t micros) { *ts = TimestampFromMicros(micros); }

int64_t MicrosOf(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1000000 + ts.nanos() / 1000;
}

// --- Resource names ---------------------------------------------------------------------------

std::string OperatorName(const std::string& id) { return absl::StrCat("operators/", id); }
std::string BeneficiaryName(const std::string& pseudonym) { return absl::StrCat("beneficiaries/", pseudonym); }
std::string CaseName(const std::string& id) { return absl::StrCat("cases/", id); }
std::string TransferName(const std::string& id) { return absl::StrCat("transfers/", id); }

// The single variable segment of `name` under `pattern` ("operators/{operator}").
absl::StatusOr<std::string> IdOf(const char* pattern, const std::string& name, const char* field) {
  absl::StatusOr<std::vector<std::string>> parts = aip::ParseName(pattern, name, field);
  if (!parts.ok()) return parts.status();
  return (*parts)[0];
}

// Last segment of a resource name ("operators/ft" -> "ft"); "" stays "".
std::string LastSegment(const std::string& name) {
  size_t slash = name.rfind('/');
  return slash == std::string::npos ? name : name.substr(slash + 1);
}

// --- Dates ------------------------------------------------------------------------------------

int64_t DateKey(const google::type::Date& d) {
  return int64_t{d.year()} * 10000 + int64_t{d.month()} * 100 + d.day();
}

google::type::Date DateFromKey(int64_t key) {
  google::type::Date d;
  d.set_year(static_cast<int32_t>(key / 10000));
  d.set_month(static_cast<int32_t>(key / 100 % 100));
  d.set_day(static_cast<int32_t>(key % 100));
  return d;
}

// --- Operators --------------------------------------------------------------------------------

std::string OperatorDoc(pb::Operator op) {
  op.clear_name();
  op.clear_kind();
  op.clear_designations();
  op.clear_etag();
  return op.SerializeAsString();
}

constexpr char kOperatorColumns[] = "id, kind, doc, version";

absl::StatusOr<Versioned<pb::Operator>> OperatorFromRow(const Row& row) {
  Versioned<pb::Operator> out;
  pb::Operator& op = out.value;
  if (!op.ParseFromString(row.Str(2))) {
    return absl::InternalError(absl::StrCat("corrupt operator document for ", row.Str(0)));
  }
  op.set_name(OperatorName(row.Str(0)));
  op.set_kind(static_cast<pb::OperatorKind>(row.Int(1)));
  out.version = row.Int(3);
  op.set_etag(aip::Etag(out.version));
  return out;
}

constexpr char kDesignationColumns[] = "operator_id, region, start_date, end_date";

Designation DesignationFromRow(const Row& row) {
  Designation d;
  d.operator_id = row.Str(0);
  d.region = row.Str(1);
  d.start_yyyymmdd = static_cast<int>(row.Int(2));
  d.end_yyyymmdd = static_cast<int>(row.Int(3));
  return d;
}

void AddPeriod(const Designation& d, pb::Operator& op) {
  pb::DesignationPeriod* period = op.add_designations();
  period->set_region(d.region);
  if (d.start_yyyymmdd != 0) *period->mutable_start_date() = DateFromKey(d.start_yyyymmdd);
  if (d.end_yyyymmdd != 0) *period->mutable_end_date() = DateFromKey(d.end_yyyymmdd);
}

// Designations of the given operators, chronological per operator.
absl::StatusOr<std::map<std::string, std::vector<Designation>>> DesignationsOf(
    Tx& tx, const std::vector<std::string>& operator_ids) {
  std::map<std::string, std::vector<Designation>> out;
  if (operator_ids.empty()) return out;
  std::string sql = absl::StrCat("SELECT ", kDesignationColumns, " FROM designations WHERE operator_id IN (");
  Params params;
  for (size_t i = 0; i < operator_ids.size(); ++i) {
    sql += i == 0 ? "?" : ", ?";
    params.push_back(operator_ids[i]);
  }
  sql += ") ORDER BY operator_id, start_date, region";
  absl::StatusOr<db::Rows> rows = tx.Query(sql, params);
  if (!rows.ok()) return rows.status();
  for (const Row& row : *rows) {
    Designation d = DesignationFromRow(row);
    out[d.operator_id].push_back(std::move(d));
  }
  return out;
}

// --- Beneficiaries and contacts ---------------------------------------------------------------

constexpr char kBeneficiaryColumns[] =
    "pseudonym, birth_year, sex, department, region, status, qualification_level, anonymised";

pb::Beneficiary BeneficiaryFromRow(const Row& row) {
  pb::Beneficiary b;
  b.set_name(BeneficiaryName(row.Str(0)));
  b.set_birth_year(static_cast<int32_t>(row.Int(1)));
  b.set_sex(static_cast<pb::Sex>(row.Int(2)));
  b.set_department(row.Str(3));
  b.set_region(row.Str(4));
  b.set_status(static_cast<pb::EmploymentStatus>(row.Int(5)));
  b.set_qualification_level(static_cast<int32_t>(row.Int(6)));
  b.set_anonymised(row.Int(7) != 0);
  return b;
}

std::string ContactDoc(pb::ContactDetails c) {
  c.clear_beneficiary();
  return c.SerializeAsString();
}

// A contact row: the operator's contact details (doc) and its record of the person's situation.
constexpr char kContactColumns[] =
    "pseudonym, operator_id, doc, department, region, status, qualification_level, last_activity, notice_date";

// The situation columns of a contact row (department, region, status, qualification_level).
Params SituationParams(const pb::Beneficiary& b) {
  return {b.department(), b.region(), int64_t{b.status()}, int64_t{b.qualification_level()}};
}

// --- Cases ------------------------------------------------------------------------------------

std::string CaseDoc(pb::Case c) {
  c.clear_name();
  c.clear_operator_();
  c.clear_beneficiary();
  c.clear_state();
  c.clear_level();
  c.clear_opening_date();
  c.clear_closing_date();
  c.clear_external_id();
  c.clear_last_activity_time();
  c.clear_etag();
  return c.SerializeAsString();
}

// The columns of a case, derived from the document.
struct CaseColumns {
  std::string id;
  std::string operator_id;
  std::string pseudonym;
  db::Value external_id;  // NULL when empty: several NULLs are allowed by the unique index
  int64_t last_activity = 0;
};

absl::StatusOr<CaseColumns> ColumnsOf(const pb::Case& c, absl::Time now) {
  CaseColumns cols;
  absl::StatusOr<std::string> id = IdOf("cases/{case}", c.name(), "case.name");
  if (!id.ok()) return id.status();
  cols.id = *std::move(id);
  absl::StatusOr<std::string> op = IdOf("operators/{operator}", c.operator_(), "case.operator");
  if (!op.ok()) return op.status();
  cols.operator_id = *std::move(op);
  absl::StatusOr<std::string> pseudonym =
      IdOf("beneficiaries/{beneficiary}", c.beneficiary(), "case.beneficiary");
  if (!pseudonym.ok()) return pseudonym.status();
  cols.pseudonym = *std::move(pseudonym);
  if (!c.external_id().empty()) cols.external_id = c.external_id();
  cols.last_activity = c.has_last_activity_time() ? MicrosOf(c.last_activity_time()) : Micros(now);
  return cols;
}

constexpr char kCaseColumns[] =
    "id, operator_id, pseudonym, state, level, opening_date, closing_date, external_id, doc, version, "
    "last_activity";

absl::StatusOr<Versioned<pb::Case>> CaseFromRow(const Row& row) {
  Versioned<pb::Case> out;
  pb::Case& c = out.value;
  if (!c.ParseFromString(row.Str(8))) {
    return absl::InternalError(absl::StrCat("corrupt case document for ", row.Str(0)));
  }
  c.set_name(CaseName(row.Str(0)));
  c.set_operator_(OperatorName(row.Str(1)));
  c.set_beneficiary(BeneficiaryName(row.Str(2)));
  c.set_state(static_cast<pb::CaseState>(row.Int(3)));
  c.set_level(row.Str(4));
  if (int64_t opening = row.Int(5); opening != 0) *c.mutable_opening_date() = DateFromKey(opening);
  if (int64_t closing = row.Int(6); closing != 0) *c.mutable_closing_date() = DateFromKey(closing);
  if (!row.IsNull(7)) c.set_external_id(row.Str(7));
  out.version = row.Int(9);
  c.set_etag(aip::Etag(out.version));
  SetTimestamp(c.mutable_last_activity_time(), row.Int(10));
  return out;
}

absl::StatusOr<std::vector<pb::Case>> CasesFromRows(const db::Rows& rows) {
  return ValuesOfRows<pb::Case>(rows, CaseFromRow);
}

// --- Transfers --------------------------------------------------------------------------------

std::string TransferDoc(pb::Transfer t) {
  t.clear_name();
  t.clear_case_();
  t.clear_from_operator();
  t.clear_to_operator();
  t.clear_state();
  t.clear_create_time();
  return t.SerializeAsString();
}

struct TransferColumns {
  std::string id;
  std::string case_id;
  std::string from_operator;
  std::string to_operator;
};

absl::StatusOr<TransferColumns> ColumnsOf(const pb::Transfer& t) {
  TransferColumns cols;
  absl::StatusOr<std::string> id = IdOf("transfers/{transfer}", t.name(), "transfer.name");
  if (!id.ok()) return id.status();
  cols.id = *std::move(id);
  absl::StatusOr<std::string> case_id = IdOf("cases/{case}", t.case_(), "transfer.case");
  if (!case_id.ok()) return case_id.status();
  cols.case_id = *std::move(case_id);
  absl::StatusOr<std::string> from = IdOf("operators/{operator}", t.from_operator(), "transfer.from_operator");
  if (!from.ok()) return from.status();
  cols.from_operator = *std::move(from);
  absl::StatusOr<std::string> to = IdOf("operators/{operator}", t.to_operator(), "transfer.to_operator");
  if (!to.ok()) return to.status();
  cols.to_operator = *std::move(to);
  return cols;
}

constexpr char kTransferColumns[] = "id, case_id, from_operator, to_operator, state, doc, version, create_time";

absl::StatusOr<Versioned<pb::Transfer>> TransferFromRow(const Row& row) {
  Versioned<pb::Transfer> out;
  pb::Transfer& t = out.value;
  if (!t.ParseFromString(row.Str(5))) {
    return absl::InternalError(absl::StrCat("corrupt transfer document for ", row.Str(0)));
  }
  t.set_name(TransferName(row.Str(0)));
  t.set_case_(CaseName(row.Str(1)));
  t.set_from_operator(OperatorName(row.Str(2)));
  t.set_to_operator(OperatorName(row.Str(3)));
  t.set_state(static_cast<pb::TransferState>(row.Int(4)));
  out.version = row.Int(6);
  SetTimestamp(t.mutable_create_time(), row.Int(7));
  return out;
}

// --- Activity ---------------------------------------------------------------------------------

std::string ActivityDoc(pb::ActivityEvent e) {
  e.clear_cursor();
  e.clear_time();
  return e.SerializeAsString();
}

// --- Indicator rollups ---------------------------------------------------------------------------

constexpr char kRollupKeyColumns[] =
    "cuboid, measure, month, operator_id, region, sex, age_band, status, qualification, level, demands, detail";
constexpr char kSubjectColumns[] = "b_region, b_sex, b_birth_year, b_status, b_qualification";

indicators::Subject SubjectFromRow(const Row& row, size_t first) {
  return indicators::Subject{row.Str(first), static_cast<int>(row.Int(first + 1)),
                             static_cast<int>(row.Int(first + 2)), static_cast<int>(row.Int(first + 3)),
                             static_cast<int>(row.Int(first + 4))};
}

Params SubjectParams(const indicators::Subject& s) {
  return {s.region, int64_t{s.sex}, int64_t{s.birth_year}, int64_t{s.status}, int64_t{s.qualification}};
}

// Adds the deltas to the stored rollups: one multi-row upsert per chunk, rows in key order so
// concurrent writers lock shared rows in one order.
absl::Status ApplyRollup(Tx& tx, const indicators::Rollup& deltas) {
  std::vector<Params> rows;
  rows.reserve(deltas.size());
  for (const auto& [c, delta] : deltas) {
    if (delta == 0) continue;
    rows.push_back({int64_t{c.cuboid}, int64_t{c.measure}, int64_t{c.month}, c.operator_id, c.region, int64_t{c.sex},
                    int64_t{c.age_band}, int64_t{c.status}, int64_t{c.qualification}, c.level, int64_t{c.demands},
                    int64_t{c.detail}, delta});
  }
  if (rows.empty()) return absl::OkStatus();
  const bool sqlite = tx.dialect() == db::Dialect::kSqlite;
  const std::string tail = sqlite ? absl::StrCat(" ON CONFLICT (", kRollupKeyColumns,
                                                 ") DO UPDATE SET value = value + excluded.value")
                                  : " ON DUPLICATE KEY UPDATE value = value + VALUES(value)";
  return InsertRows(tx, absl::StrCat("INSERT INTO indicator_rollup (", kRollupKeyColumns, ", value)"),
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows, tail)
      .status();
}

// Calls fn with each case after `after` in id order (at most `limit`) and the subject it is
// counted under; `after` moves to the last one. Returns how many there were.
template <typename Source>  // db::Db or db::Tx
absl::StatusOr<size_t> ForCasesAfter(Source& source, std::string& after, int limit,
                                     const std::function<void(const pb::Case&, const indicators::Subject&)>& fn) {
  absl::StatusOr<db::Rows> rows = source.Query(
      absl::StrCat("SELECT ", kCaseColumns, ", ", kSubjectColumns, " FROM cases WHERE id > ? ORDER BY id LIMIT ", limit),
      {after});
  if (!rows.ok()) return rows.status();
  for (const Row& row : *rows) {
    absl::StatusOr<Versioned<pb::Case>> c = CaseFromRow(row);
    if (!c.ok()) return c.status();
    fn(c->value, SubjectFromRow(row, 11));
    after = row.Str(0);
  }
  return rows->size();
}

bool IsTextDim(int d) { return d == indicators::kOperator || d == indicators::kRegion || d == indicators::kLevel; }

// Sets dimension `d` of `c` from column `i` of `row`.
void SetDim(indicators::Cell& c, int d, const Row& row, int i) {
  switch (d) {
    case indicators::kOperator: c.operator_id = row.Str(i); break;
    case indicators::kRegion: c.region = row.Str(i); break;
    case indicators::kSex: c.sex = static_cast<int>(row.Int(i)); break;
    case indicators::kAgeBand: c.age_band = static_cast<int>(row.Int(i)); break;
    case indicators::kStatus: c.status = static_cast<int>(row.Int(i)); break;
    case indicators::kQualification: c.qualification = static_cast<int>(row.Int(i)); break;
    case indicators::kLevel: c.level = row.Str(i); break;
    case indicators::kDemands: c.demands = static_cast<int>(row.Int(i)); break;
    default: break;
  }
}

indicators::Cell CellFromRow(const Row& row) {
  indicators::Cell c;
  c.cuboid = static_cast<int>(row.Int(0));
  c.measure = static_cast<int>(row.Int(1));
  c.month = static_cast<int>(row.Int(2));
  c.operator_id = row.Str(3);
  c.region = row.Str(4);
  c.sex = static_cast<int>(row.Int(5));
  c.age_band = static_cast<int>(row.Int(6));
  c.status = static_cast<int>(row.Int(7));
  c.qualification = static_cast<int>(row.Int(8));
  c.level = row.Str(9);
  c.demands = static_cast<int>(row.Int(10));
  c.detail = static_cast<int>(row.Int(11));
  return c;
}

// --- Transaction ------------------------------------------------------------------------------

// Rollup deltas are gathered in the transaction and written once, just before the activity lock
// is taken (or at the end): every transaction then locks rollup rows (in key order) before the
// activity lock, and holds those shared rows only for its last statements and the commit.
class SqlTx final : public CepTx {
 public:
  explicit SqlTx(Tx& tx) : tx_(tx) {}

  absl::Status FlushRollup() {
    if (pending_rollup_.empty()) return absl::OkStatus();
    absl::Status st = ApplyRollup(tx_, pending_rollup_);
    pending_rollup_.clear();
    return st;
  }

  // --- Operators ---

  absl::Status InsertOperator(const pb::Operator& op) override {
    absl::StatusOr<std::string> id = IdOf("operators/{operator}", op.name(), "operator.name");
    if (!id.ok()) return id.status();
    absl::StatusOr<int64_t> n = tx_.Exec("INSERT INTO operators (id, kind, doc, version) VALUES (?, ?, ?, 1)",
                                         {*id, int64_t{op.kind()}, OperatorDoc(op)});
    if (absl::IsAlreadyExists(n.status())) return AlreadyExists(OperatorName(*id));
    return n.status();
  }

  absl::StatusOr<Versioned<pb::Operator>> GetOperator(const std::string& id) override {
    absl::StatusOr<Versioned<pb::Operator>> op = OperatorRow(id);
    if (!op.ok()) return op.status();
    absl::StatusOr<std::map<std::string, std::vector<Designation>>> designations = DesignationsOf(tx_, {id});
    if (!designations.ok()) return designations.status();
    for (const Designation& d : (*designations)[id]) AddPeriod(d, op->value);
    return op;
  }

  absl::Status PutOperator(const pb::Operator& op, int64_t expected_version) override {
    absl::StatusOr<std::string> id = IdOf("operators/{operator}", op.name(), "operator.name");
    if (!id.ok()) return id.status();
    absl::StatusOr<int64_t> n = tx_.Exec("UPDATE operators SET doc = ?, version = version + 1 WHERE id = ? AND version = ?",
                                         {OperatorDoc(op), *id, expected_version});
    if (!n.ok()) return n.status();
    if (*n == 1) return absl::OkStatus();
    return Missed("SELECT 1 FROM operators WHERE id = ?", {*id}, OperatorName(*id));
  }

  absl::StatusOr<pb::Operator> FindOperator(const std::string& id) override {
    absl::StatusOr<Versioned<pb::Operator>> op = OperatorRow(id);
    if (!op.ok()) return op.status();
    return std::move(op->value);
  }

  // The designations are part of the operator resource: adding one moves its version (etag) on,
  // and locks the operator row until the end of the transaction.
  absl::Status AddDesignation(const Designation& d, int64_t expected_version) override {
    absl::StatusOr<int64_t> n = tx_.Exec("UPDATE operators SET version = version + 1 WHERE id = ? AND version = ?",
                                         {d.operator_id, expected_version});
    if (!n.ok()) return n.status();
    if (*n != 1) return Missed("SELECT 1 FROM operators WHERE id = ?", {d.operator_id}, OperatorName(d.operator_id));
    n = tx_.Exec("INSERT INTO designations (operator_id, region, start_date, end_date) VALUES (?, ?, ?, ?)",
                 {d.operator_id, d.region, int64_t{d.start_yyyymmdd}, int64_t{d.end_yyyymmdd}});
    if (absl::IsAlreadyExists(n.status())) return AlreadyExists(OperatorName(d.operator_id));
    return n.status();
  }

  absl::Status LockDesignations(const std::string& region) override {
    // On MySQL the upsert takes the row's exclusive lock whether it inserts or finds it (a plain
    // INSERT IGNORE would take a shared one, and two writers would deadlock upgrading it).
    const char* sql = tx_.dialect() == db::Dialect::kSqlite
                          ? "INSERT INTO designation_locks (region) VALUES (?) ON CONFLICT (region) DO NOTHING"
                          : "INSERT INTO designation_locks (region) VALUES (?) ON DUPLICATE KEY UPDATE region = region";
    return tx_.Exec(sql, {region}).status();
  }

  absl::StatusOr<std::optional<int64_t>> LastOwnActivityLocked(const std::string& operator_id,
                                                               int64_t before) override {
    absl::StatusOr<db::Rows> locked = tx_.Query(
        absl::StrCat("SELECT appended FROM activity_lock WHERE id = 1", db::ForUpdate(tx_.dialect())));
    if (!locked.ok()) return locked.status();
    absl::StatusOr<db::Rows> rows = tx_.Query(
        "SELECT MAX(time) FROM activity WHERE operator_id = ? AND own_activity = 1 AND time < ?", {operator_id, before});
    if (!rows.ok()) return rows.status();
    if (rows->empty() || rows->front().IsNull(0)) return std::optional<int64_t>();
    return std::optional<int64_t>(rows->front().Int(0));
  }

  // Designations of a region (every region when empty), chronological.
  absl::StatusOr<std::vector<Designation>> ListDesignations(const std::string& region) override {
    absl::StatusOr<db::Rows> rows =
        region.empty()
            ? tx_.Query(absl::StrCat("SELECT ", kDesignationColumns,
                                     " FROM designations ORDER BY region, start_date, operator_id"))
            : tx_.Query(absl::StrCat("SELECT ", kDesignationColumns,
                                     " FROM designations WHERE region = ? ORDER BY start_date, operator_id"),
                        {region});
    if (!rows.ok()) return rows.status();
    std::vector<Designation> out;
    out.reserve(rows->size());
    for (const Row& row : *rows) out.push_back(DesignationFromRow(row));
    return out;
  }

  absl::StatusOr<std::vector<pb::LevelCatalogue>> ListLevelCatalogues() override {
    absl::StatusOr<db::Rows> rows = tx_.Query(
        "SELECT id, catalogue, catalogue_label, level_rank, label FROM levels ORDER BY catalogue, level_rank");
    if (!rows.ok()) return rows.status();
    std::vector<pb::LevelCatalogue> out;
    for (const Row& row : *rows) {
      const std::string catalogue = row.Str(1);
      if (out.empty() || out.back().id() != catalogue) {
        out.emplace_back();
        out.back().set_id(catalogue);
        out.back().set_label(row.Str(2));
      }
      pb::Level* level = out.back().add_levels();
      level->set_id(row.Str(0));
      level->set_catalogue(catalogue);
      level->set_rank(static_cast<int32_t>(row.Int(3)));
      level->set_label(row.Str(4));
    }
    return out;
  }

  // --- Beneficiaries ---

  absl::StatusOr<bool> InsertBeneficiaryIfAbsent(const pb::Beneficiary& b, absl::Time now) override {
    absl::StatusOr<std::string> pseudonym = IdOf("beneficiaries/{beneficiary}", b.name(), "beneficiary.name");
    if (!pseudonym.ok()) return pseudonym.status();
    // A unique violation would roll the whole transaction back (db.h), so the "already there"
    // case must not be an error: the insert ignores the duplicate key and reports 0 rows.
    const char* verb = tx_.dialect() == db::Dialect::kSqlite ? "INSERT OR IGNORE" : "INSERT IGNORE";
    absl::StatusOr<int64_t> n = tx_.Exec(
        absl::StrCat(verb,
                     " INTO beneficiaries (pseudonym, birth_year, sex, department, region, status, "
                     "qualification_level, anonymised, create_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        {*pseudonym, int64_t{b.birth_year()}, int64_t{b.sex()}, b.department(), b.region(), int64_t{b.status()},
         int64_t{b.qualification_level()}, int64_t{b.anonymised() ? 1 : 0}, Micros(now)});
    if (!n.ok()) return n.status();
    return *n == 1;
  }

  absl::StatusOr<pb::Beneficiary> GetBeneficiary(const std::string& pseudonym) override {
    absl::StatusOr<db::Rows> rows = tx_.Query(
        absl::StrCat("SELECT ", kBeneficiaryColumns, " FROM beneficiaries WHERE pseudonym = ?"), {pseudonym});
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return NotFound(BeneficiaryName(pseudonym));
    return BeneficiaryFromRow(rows->front());
  }

  absl::Status PutContact(const std::string& pseudonym, const std::string& operator_id,
                          const pb::ContactDetails& contact, const pb::Beneficiary& situation,
                          absl::Time now) override {
    Params params = {pseudonym, operator_id, ContactDoc(contact)};
    for (db::Value& v : SituationParams(situation)) params.push_back(std::move(v));
    params.push_back(Micros(now));
    params.push_back(int64_t{0});
    return tx_
        .Exec(absl::StrCat("INSERT INTO contacts (", kContactColumns, ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           db::UpsertReplacing(tx_.dialect(), "pseudonym, operator_id",
                                               {"doc", "department", "region", "status", "qualification_level",
                                                "last_activity", "notice_date"})),
              params)
        .status();
  }

  absl::StatusOr<std::optional<ContactRetention>> GetContactRetention(const std::string& pseudonym,
                                                                      const std::string& operator_id) override {
    absl::StatusOr<db::Rows> rows =
        tx_.Query("SELECT COALESCE(last_activity, 0), notice_date FROM contacts WHERE pseudonym = ? AND operator_id = ?",
                  {pseudonym, operator_id});
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return std::optional<ContactRetention>();
    return std::optional<ContactRetention>(
        ContactRetention{rows->front().Int(0), static_cast<int>(rows->front().Int(1))});
  }

  absl::StatusOr<bool> MarkContactNoticed(const std::string& pseudonym, const std::string& operator_id,
                                          int notice_yyyymmdd, int64_t expected_last_activity) override {
    absl::StatusOr<int64_t> n = tx_.Exec(
        "UPDATE contacts SET notice_date = ? WHERE pseudonym = ? AND operator_id = ? AND last_activity = ?",
        {int64_t{notice_yyyymmdd}, pseudonym, operator_id, expected_last_activity});
    if (!n.ok()) return n.status();
    return *n > 0;
  }

  absl::StatusOr<std::optional<pb::ContactDetails>> GetContact(const std::string& pseudonym,
                                                               const std::string& operator_id) override {
    absl::StatusOr<db::Rows> rows =
        tx_.Query("SELECT doc FROM contacts WHERE pseudonym = ? AND operator_id = ?", {pseudonym, operator_id});
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return std::optional<pb::ContactDetails>();
    pb::ContactDetails contact;
    if (!contact.ParseFromString(rows->front().Str(0))) {
      return absl::InternalError(
          absl::StrCat("corrupt contact document for ", BeneficiaryName(pseudonym), " at ", operator_id));
    }
    contact.set_beneficiary(BeneficiaryName(pseudonym));
    return std::optional<pb::ContactDetails>(std::move(contact));
  }

  absl::Status DeleteContact(const std::string& pseudonym, const std::string& operator_id) override {
    return tx_.Exec("DELETE FROM contacts WHERE pseudonym = ? AND operator_id = ?", {pseudonym, operator_id}).status();
  }

  absl::StatusOr<bool> AnyContact(const std::string& pseudonym) override {
    absl::StatusOr<db::Rows> rows = tx_.Query("SELECT 1 FROM contacts WHERE pseudonym = ? LIMIT 1", {pseudonym});
    if (!rows.ok()) return rows.status();
    return !rows->empty();
  }

  absl::StatusOr<std::vector<std::string>> ContactOperators(const std::string& pseudonym) override {
    absl::StatusOr<db::Rows> rows =
        tx_.Query("SELECT operator_id FROM contacts WHERE pseudonym = ? ORDER BY operator_id", {pseudonym});
    if (!rows.ok()) return rows.status();
    std::vector<std::string> out;
    for (const db::Row& row : *rows) out.push_back(row.Str(0));
    return out;
  }

  absl::Status DeleteContacts(const std::string& pseudonym) override {
    return tx_.Exec("DELETE FROM contacts WHERE pseudonym = ?", {pseudonym}).status();
  }

  absl::Status MarkBeneficiaryAnonymised(const std::string& pseudonym) override {
    absl::StatusOr<int64_t> n = tx_.Exec("UPDATE beneficiaries SET anonymised = 1 WHERE pseudonym = ?", {pseudonym});
    if (!n.ok()) return n.status();
    if (*n == 0) return NotFound(BeneficiaryName(pseudonym));  // matched rows (CLIENT_FOUND_ROWS on MySQL)
    return absl::OkStatus();
  }

  absl::StatusOr<bool> ReviveBeneficiary(const pb::Beneficiary& b) override {
    absl::StatusOr<std::string> pseudonym = IdOf("beneficiaries/{beneficiary}", b.name(), "beneficiary.name");
    if (!pseudonym.ok()) return pseudonym.status();
    absl::StatusOr<int64_t> n = tx_.Exec(
        "UPDATE beneficiaries SET birth_year = ?, sex = ?, department = ?, region = ?, status = ?, "
        "qualification_level = ?, anonymised = 0 WHERE pseudonym = ? AND anonymised = 1",
        {int64_t{b.birth_year()}, int64_t{b.sex()}, b.department(), b.region(), int64_t{b.status()},
         int64_t{b.qualification_level()}, *pseudonym});
    if (!n.ok()) return n.status();
    return *n == 1;
  }

  // --- Cases ---

  absl::Status InsertCase(const pb::Case& c, const indicators::Subject& subject, absl::Time now) override {
    absl::StatusOr<CaseColumns> cols = ColumnsOf(c, now);
    if (!cols.ok()) return cols.status();
    // The external id is checked first so the error names the case that holds it (a unique
    // violation would only tell "some key").
    if (!c.external_id().empty()) {
      absl::StatusOr<std::optional<std::string>> holder = FindCaseByExternalId(cols->operator_id, c.external_id());
      if (!holder.ok()) return holder.status();
      if (holder->has_value()) return AlreadyExists(**holder);
    }
    Params params = {cols->id, cols->operator_id, cols->pseudonym, int64_t{c.state()}, c.level(),
                     DateKey(c.opening_date()), DateKey(c.closing_date()), cols->external_id, CaseDoc(c),
                     cols->last_activity, Micros(now), Micros(now)};
    for (db::Value& v : SubjectParams(subject)) params.push_back(std::move(v));
    absl::StatusOr<int64_t> n = tx_.Exec(
        absl::StrCat("INSERT INTO cases (id, operator_id, pseudonym, state, level, opening_date, closing_date, "
                     "external_id, doc, version, last_activity, create_time, update_time, ",
                     kSubjectColumns, ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)"),
        params);
    if (absl::IsAlreadyExists(n.status())) return AlreadyExists(CaseName(cols->id));
    if (!n.ok()) return n.status();
    indicators::AddCase(c, subject, +1, pending_rollup_);
    return absl::OkStatus();
  }

  // Also remembers the case for this transaction's PutCase (its rollup difference needs it).
  absl::StatusOr<Versioned<pb::Case>> GetCase(const std::string& id) override {
    absl::StatusOr<db::Rows> rows = tx_.Query(
        absl::StrCat("SELECT ", kCaseColumns, ", ", kSubjectColumns, " FROM cases WHERE id = ?"), {id});
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return NotFound(CaseName(id));
    absl::StatusOr<Versioned<pb::Case>> c = CaseFromRow(rows->front());
    if (!c.ok()) return c.status();
    read_cases_[id] = ReadCase{c->version, c->value, SubjectFromRow(rows->front(), 11)};
    return c;
  }

  absl::StatusOr<indicators::Subject> GetCaseSubject(const std::string& id) override {
    if (auto it = read_cases_.find(id); it != read_cases_.end()) return it->second.subject;
    absl::StatusOr<db::Rows> rows =
        tx_.Query(absl::StrCat("SELECT ", kSubjectColumns, " FROM cases WHERE id = ?"), {id});
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return NotFound(CaseName(id));
    return SubjectFromRow(rows->front(), 0);
  }

  // Returns the case's resource name ("cases/{id}"), nullopt when none; an empty external id
  // finds nothing.
  absl::StatusOr<std::optional<std::string>> FindCaseByExternalId(const std::string& operator_id,
                                                                  const std::string& external_id) override {
    if (external_id.empty()) return std::optional<std::string>();
    absl::StatusOr<db::Rows> rows =
        tx_.Query("SELECT id FROM cases WHERE operator_id = ? AND external_id = ?", {operator_id, external_id});
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return std::optional<std::string>();
    return std::optional<std::string>(CaseName(rows->front().Str(0)));
  }

  // The stored case at `expected_version` is read first: the rollups move by the difference
  // between what it counted and what `c` counts.
  absl::Status PutCase(const pb::Case& c, int64_t expected_version, absl::Time now) override {
    absl::StatusOr<CaseColumns> cols = ColumnsOf(c, now);
    if (!cols.ok()) return cols.status();
    // The stored case at the expected version: as this transaction read it, else read now.
    auto read = read_cases_.find(cols->id);
    if (read == read_cases_.end() || read->second.version != expected_version) {
      absl::StatusOr<db::Rows> stored = tx_.Query(
          absl::StrCat("SELECT ", kCaseColumns, ", ", kSubjectColumns, " FROM cases WHERE id = ? AND version = ?"),
          {cols->id, expected_version});
      if (!stored.ok()) return stored.status();
      if (stored->empty()) return Missed("SELECT 1 FROM cases WHERE id = ?", {cols->id}, CaseName(cols->id));
      absl::StatusOr<Versioned<pb::Case>> c = CaseFromRow(stored->front());
      if (!c.ok()) return c.status();
      read = read_cases_.insert_or_assign(cols->id, ReadCase{c->version, c->value, SubjectFromRow(stored->front(), 11)})
                 .first;
    }
    // notice_date comes first: MySQL evaluates SET assignments left to right, SQLite against the
    // old row; placed before last_activity's assignment, both compare with the stored value.
    absl::StatusOr<int64_t> n = tx_.Exec(
        "UPDATE cases SET notice_date = CASE WHEN last_activity = ? THEN notice_date ELSE 0 END, "
        "operator_id = ?, pseudonym = ?, state = ?, level = ?, opening_date = ?, "
        "closing_date = ?, external_id = ?, doc = ?, version = version + 1, last_activity = ?, update_time = ? "
        "WHERE id = ? AND version = ?",
        {cols->last_activity, cols->operator_id, cols->pseudonym, int64_t{c.state()}, c.level(),
         DateKey(c.opening_date()), DateKey(c.closing_date()), cols->external_id, CaseDoc(c), cols->last_activity,
         Micros(now), cols->id, expected_version});
    if (!n.ok()) return n.status();
    if (*n != 1) return Missed("SELECT 1 FROM cases WHERE id = ?", {cols->id}, CaseName(cols->id));
    ReadCase& stored = read->second;
    indicators::AddCase(stored.value, stored.subject, -1, pending_rollup_);
    indicators::AddCase(c, stored.subject, +1, pending_rollup_);
    stored.version = expected_version + 1;
    stored.value = c;
    return absl::OkStatus();
  }

  absl::StatusOr<int> GetNoticeDate(const std::string& case_id) override {
    absl::StatusOr<db::Rows> rows = tx_.Query("SELECT notice_date FROM cases WHERE id = ?", {case_id});
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return NotFound(CaseName(case_id));
    return static_cast<int>(rows->front().Int(0));
  }

  absl::Status MarkNoticed(const std::string& case_id, int notice_yyyymmdd, int64_t expected_version) override {
    absl::StatusOr<int64_t> n = tx_.Exec("UPDATE cases SET notice_date = ? WHERE id = ? AND version = ?",
                                         {int64_t{notice_yyyymmdd}, case_id, expected_version});
    if (!n.ok()) return n.status();
    if (*n == 1) return absl::OkStatus();
    return Missed("SELECT 1 FROM cases WHERE id = ?", {case_id}, CaseName(case_id));
  }

  absl::StatusOr<std::set<std::string>> BeneficiariesSeenBy(const std::string& operator_id,
                                                            const std::vector<std::string>& pseudonyms) override {
    // One statement of the rule, GetBeneficiariesSeenBy's: the service stores a beneficiary before
    // any contact or case of it and never deletes one, so a row backs every pseudonym seen.
    auto visible = GetBeneficiariesSeenBy(operator_id, pseudonyms);
    if (!visible.ok()) return visible.status();
    std::set<std::string> seen;
    for (const auto& [pseudonym, b] : *visible) seen.insert(pseudonym);
    return seen;
  }

  absl::StatusOr<std::vector<pb::Case>> CasesOfBeneficiary(const std::string& pseudonym) override {
    absl::StatusOr<db::Rows> rows =
        tx_.Query(absl::StrCat("SELECT ", kCaseColumns, " FROM cases WHERE pseudonym = ? ORDER BY id"), {pseudonym});
    if (!rows.ok()) return rows.status();
    return CasesFromRows(*rows);
  }

  // --- Transfers ---

  absl::Status InsertTransfer(const pb::Transfer& t, absl::Time now) override {
    absl::StatusOr<TransferColumns> cols = ColumnsOf(t);
    if (!cols.ok()) return cols.status();
    absl::StatusOr<int64_t> n = tx_.Exec(
        "INSERT INTO transfers (id, case_id, from_operator, to_operator, state, doc, version, create_time) "
        "VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
        {cols->id, cols->case_id, cols->from_operator, cols->to_operator, int64_t{t.state()}, TransferDoc(t),
         Micros(now)});
    if (absl::IsAlreadyExists(n.status())) return AlreadyExists(TransferName(cols->id));
    return n.status();
  }

  absl::StatusOr<Versioned<pb::Transfer>> GetTransfer(const std::string& id) override {
    absl::StatusOr<db::Rows> rows =
        tx_.Query(absl::StrCat("SELECT ", kTransferColumns, " FROM transfers WHERE id = ?"), {id});
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return NotFound(TransferName(id));
    return TransferFromRow(rows->front());
  }

  absl::Status PutTransfer(const pb::Transfer& t, int64_t expected_version) override {
    absl::StatusOr<TransferColumns> cols = ColumnsOf(t);
    if (!cols.ok()) return cols.status();
    absl::StatusOr<int64_t> n = tx_.Exec(
        "UPDATE transfers SET case_id = ?, from_operator = ?, to_operator = ?, state = ?, doc = ?, "
        "version = version + 1 WHERE id = ? AND version = ?",
        {cols->case_id, cols->from_operator, cols->to_operator, int64_t{t.state()}, TransferDoc(t), cols->id,
         expected_version});
    if (!n.ok()) return n.status();
    if (*n == 1) return absl::OkStatus();
    return Missed("SELECT 1 FROM transfers WHERE id = ?", {cols->id}, TransferName(cols->id));
  }

  absl::StatusOr<std::vector<Versioned<pb::Transfer>>> TransfersOfCase(const std::string& case_id) override {
    absl::StatusOr<db::Rows> rows = tx_.Query(
        absl::StrCat("SELECT ", kTransferColumns, " FROM transfers WHERE case_id = ? ORDER BY id"), {case_id});
    if (!rows.ok()) return rows.status();
    std::vector<Versioned<pb::Transfer>> out;
    out.reserve(rows->size());
    for (const Row& row : *rows) {
      absl::StatusOr<Versioned<pb::Transfer>> t = TransferFromRow(row);
      if (!t.ok()) return t.status();
      out.push_back(*std::move(t));
    }
    return out;
  }

  // --- Audit, activity, idempotency ---

  absl::Status Audit(const AuditEntry& entry) override { return WriteAudit(tx_, entry); }
  absl::Status Audits(const std::vector<AuditEntry>& entries) override { return WriteAudits(tx_, entries); }

  absl::StatusOr<int64_t> AppendActivity(const pb::ActivityEvent& event, absl::Time now) override {
    if (absl::Status st = FlushRollup(); !st.ok()) return st;
    // Serialise appends until commit (see the file comment and the schema).
    absl::StatusOr<int64_t> n = tx_.Exec("UPDATE activity_lock SET appended = appended + 1 WHERE id = 1");
    if (!n.ok()) return n.status();
    if (*n != 1) return absl::InternalError("activity_lock row missing (schema not migrated?)");
    n = tx_.Exec("INSERT INTO activity (time, operator_id, own_activity, doc) VALUES (?, ?, ?, ?)",
                 {Micros(now), LastSegment(event.operator_()), int64_t{IsOwnActivity(event.kind()) ? 1 : 0},
                  ActivityDoc(event)});
    if (!n.ok()) return n.status();
    return tx_.LastInsertId();
  }

  // --- Bulk import ---

  absl::Status LockBeneficiaries(std::vector<std::string> pseudonyms) override {
    if (!db::NeedsRowLocks(tx_.dialect())) return absl::OkStatus();
    std::sort(pseudonyms.begin(), pseudonyms.end());  // one lock order for every transaction
    pseudonyms.erase(std::unique(pseudonyms.begin(), pseudonyms.end()), pseudonyms.end());
    return SelectIn(tx_, "SELECT pseudonym FROM beneficiaries WHERE pseudonym IN", {}, pseudonyms,
                    [](const Row&) {}, absl::StrCat(" ORDER BY pseudonym", db::ForUpdate(tx_.dialect())));
  }

  absl::StatusOr<std::map<std::string, pb::Beneficiary>> GetBeneficiaries(
      const std::vector<std::string>& pseudonyms) override {
    std::map<std::string, pb::Beneficiary> out;
    absl::Status st = SelectIn(tx_, absl::StrCat("SELECT ", kBeneficiaryColumns, " FROM beneficiaries WHERE pseudonym IN"),
                               {}, pseudonyms, [&](const Row& row) { out[row.Str(0)] = BeneficiaryFromRow(row); });
    if (!st.ok()) return st;
    return out;
  }

  absl::StatusOr<std::map<std::string, pb::Beneficiary>> GetBeneficiariesSeenBy(
      const std::string& operator_id, const std::vector<std::string>& pseudonyms) override {
    std::map<std::string, pb::Beneficiary> out;
    absl::Status st = SelectIn(
        tx_,
        "SELECT b.pseudonym, b.birth_year, b.sex, COALESCE(c.department, b.department), "
        "COALESCE(c.region, b.region), COALESCE(c.status, b.status), "
        "COALESCE(c.qualification_level, b.qualification_level), b.anonymised "
        "FROM beneficiaries b LEFT JOIN contacts c ON c.pseudonym = b.pseudonym AND c.operator_id = ? "
        "WHERE (c.pseudonym IS NOT NULL OR EXISTS (SELECT 1 FROM cases k WHERE k.operator_id = ? AND "
        "k.state IN (?, ?) AND k.pseudonym = b.pseudonym)) AND b.pseudonym IN",
        {operator_id, operator_id, int64_t{pb::CASE_STATE_OPEN}, int64_t{pb::CASE_STATE_CLOSED}}, pseudonyms,
        [&](const Row& row) { out[row.Str(0)] = BeneficiaryFromRow(row); });
    if (!st.ok()) return st;
    return out;
  }

  absl::StatusOr<int64_t> InsertBeneficiariesIfAbsent(const std::vector<pb::Beneficiary>& rows,
                                                      absl::Time now) override {
    std::vector<Params> values;
    values.reserve(rows.size());
    for (const pb::Beneficiary& b : rows) {
      absl::StatusOr<std::string> pseudonym = IdOf("beneficiaries/{beneficiary}", b.name(), "beneficiary.name");
      if (!pseudonym.ok()) return pseudonym.status();
      values.push_back({*pseudonym, int64_t{b.birth_year()}, int64_t{b.sex()}, b.department(), b.region(),
                        int64_t{b.status()}, int64_t{b.qualification_level()}, int64_t{b.anonymised() ? 1 : 0},
                        Micros(now)});
    }
    const char* verb = tx_.dialect() == db::Dialect::kSqlite ? "INSERT OR IGNORE" : "INSERT IGNORE";
    return InsertRows(tx_,
                      absl::StrCat(verb,
                                   " INTO beneficiaries (pseudonym, birth_year, sex, department, region, status, "
                                   "qualification_level, anonymised, create_time)"),
                      "(?, ?, ?, ?, ?, ?, ?, ?, ?)", values);
  }

  absl::Status InsertContactsIfAbsent(const std::vector<pb::Beneficiary>& situations,
                                      const std::string& operator_id, absl::Time now) override {
    std::vector<Params> values;
    values.reserve(situations.size());
    const std::string empty_doc = ContactDoc(pb::ContactDetails());
    for (const pb::Beneficiary& b : situations) {
      absl::StatusOr<std::string> pseudonym = IdOf("beneficiaries/{beneficiary}", b.name(), "beneficiary.name");
      if (!pseudonym.ok()) return pseudonym.status();
      Params& row = values.emplace_back(Params{*pseudonym, operator_id, empty_doc});
      for (db::Value& v : SituationParams(b)) row.push_back(std::move(v));
      row.push_back(Micros(now));
      row.push_back(int64_t{0});
    }
    const char* verb = tx_.dialect() == db::Dialect::kSqlite ? "INSERT OR IGNORE" : "INSERT IGNORE";
    return InsertRows(tx_, absl::StrCat(verb, " INTO contacts (", kContactColumns, ")"),
                      "(?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
        .status();
  }

  absl::StatusOr<std::map<std::string, std::string>> FindCasesByExternalIds(
      const std::string& operator_id, const std::vector<std::string>& external_ids) override {
    std::map<std::string, std::string> out;
    absl::Status st =
        SelectIn(tx_, "SELECT external_id, id FROM cases WHERE operator_id = ? AND external_id IN", {operator_id},
                 external_ids, [&](const Row& row) { out[row.Str(0)] = CaseName(row.Str(1)); });
    if (!st.ok()) return st;
    return out;
  }

  absl::Status RememberErasedExternalId(const std::string& operator_id, const std::string& hash) override {
    const char* verb = tx_.dialect() == db::Dialect::kSqlite ? "INSERT OR IGNORE" : "INSERT IGNORE";
    return tx_.Exec(absl::StrCat(verb, " INTO erased_external_ids (operator_id, external_id_hash) VALUES (?, ?)"),
                    {operator_id, hash})
        .status();
  }

  absl::StatusOr<std::set<std::string>> FindErasedExternalIds(const std::string& operator_id,
                                                              const std::vector<std::string>& hashes) override {
    std::set<std::string> out;
    absl::Status st = SelectIn(
        tx_, "SELECT external_id_hash FROM erased_external_ids WHERE operator_id = ? AND external_id_hash IN",
        {operator_id}, hashes, [&](const Row& row) { out.insert(row.Str(0)); });
    if (!st.ok()) return st;
    return out;
  }

  // INSERT IGNORE skips a taken (operator, external_id); when fewer rows went in than were sent
  // (a duplicate, or a concurrent import of the same id), the stored ids tell which.
  absl::StatusOr<std::vector<bool>> InsertCases(const std::vector<pb::Case>& rows,
                                                const std::vector<indicators::Subject>& subjects,
                                                absl::Time now) override {
    if (subjects.size() != rows.size()) return absl::InternalError("InsertCases: one subject per row");
    std::vector<bool> inserted(rows.size(), false);
    std::vector<Params> values;
    std::vector<size_t> sent;  // indexes of rows in `values`
    std::set<std::pair<std::string, std::string>> taken;
    for (size_t i = 0; i < rows.size(); ++i) {
      const pb::Case& c = rows[i];
      absl::StatusOr<CaseColumns> cols = ColumnsOf(c, now);
      if (!cols.ok()) return cols.status();
      if (!c.external_id().empty() && !taken.insert({cols->operator_id, c.external_id()}).second) continue;
      values.push_back({cols->id, cols->operator_id, cols->pseudonym, int64_t{c.state()}, c.level(),
                        DateKey(c.opening_date()), DateKey(c.closing_date()), cols->external_id, CaseDoc(c),
                        cols->last_activity, Micros(now), Micros(now)});
      for (db::Value& v : SubjectParams(subjects[i])) values.back().push_back(std::move(v));
      sent.push_back(i);
    }
    const char* verb = tx_.dialect() == db::Dialect::kSqlite ? "INSERT OR IGNORE" : "INSERT IGNORE";
    absl::StatusOr<int64_t> n = InsertRows(
        tx_,
        absl::StrCat(verb,
                     " INTO cases (id, operator_id, pseudonym, state, level, opening_date, closing_date, "
                     "external_id, doc, version, last_activity, create_time, update_time, ",
                     kSubjectColumns, ")"),
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)", values);
    if (!n.ok()) return n.status();
    // The rollups count the rows that went in, aggregated over the batch: one upsert per cell.
    auto count_inserted = [&]() -> absl::StatusOr<std::vector<bool>> {
      for (size_t i = 0; i < rows.size(); ++i) {
        if (inserted[i]) indicators::AddCase(rows[i], subjects[i], +1, pending_rollup_);
      }
      return inserted;
    };
    if (*n == static_cast<int64_t>(sent.size())) {
      for (size_t i : sent) inserted[i] = true;
      return count_inserted();
    }
    std::vector<std::string> ids;
    ids.reserve(sent.size());
    for (const Params& v : values) ids.push_back(std::get<std::string>(v[0]));
    std::set<std::string> ours;
    absl::Status st = SelectIn(tx_, "SELECT id, create_time FROM cases WHERE id IN", {}, ids, [&](const Row& row) {
      if (row.Int(1) == Micros(now)) ours.insert(row.Str(0));
    });
    if (!st.ok()) return st;
    for (size_t k = 0; k < sent.size(); ++k) inserted[sent[k]] = ours.count(ids[k]) > 0;
    return count_inserted();
  }

  absl::Status AppendActivities(const std::vector<pb::ActivityEvent>& events, absl::Time now) override {
    if (absl::Status st = FlushRollup(); !st.ok()) return st;
    if (events.empty()) return absl::OkStatus();
    // One lock for the whole batch (the file comment): the rows get consecutive cursors in order.
    absl::StatusOr<int64_t> n = tx_.Exec("UPDATE activity_lock SET appended = appended + ? WHERE id = 1",
                                         {static_cast<int64_t>(events.size())});
    if (!n.ok()) return n.status();
    if (*n != 1) return absl::InternalError("activity_lock row missing (schema not migrated?)");
    std::vector<Params> values;
    values.reserve(events.size());
    for (const pb::ActivityEvent& e : events) {
      values.push_back({Micros(now), LastSegment(e.operator_()), int64_t{IsOwnActivity(e.kind()) ? 1 : 0},
                        ActivityDoc(e)});
    }
    return InsertRows(tx_, "INSERT INTO activity (time, operator_id, own_activity, doc)", "(?, ?, ?, ?)", values)
        .status();
  }

  absl::StatusOr<std::optional<std::string>> LookupRequest(const std::string& method, const std::string& request_id,
                                                           const google::protobuf::Message& request) override {
    return LookupRequestName(tx_, method, request_id, request);
  }

  absl::Status RecordRequest(const std::string& method, const std::string& request_id,
                             const google::protobuf::Message& request, const std::string& resource_name,
                             absl::Time now) override {
    return RecordRequestId(tx_, method, request_id, request, resource_name, Micros(now));
  }

  absl::StatusOr<std::vector<absl::StatusOr<std::optional<std::string>>>> LookupRequests(
      const std::string& method, const std::vector<RequestKey>& keys) override {
    auto hits = LookupRequestIds(tx_, method, keys);
    if (!hits.ok()) return hits.status();
    std::vector<absl::StatusOr<std::optional<std::string>>> out;
    out.reserve(hits->size());
    for (auto& hit : *hits) {
      if (!hit.ok()) {
        out.push_back(hit.status());
      } else if (hit->has_value()) {
        out.push_back(std::optional<std::string>((*hit)->resource_name));
      } else {
        out.push_back(std::optional<std::string>());
      }
    }
    return out;
  }

  absl::Status RecordRequests(const std::string& method, const std::vector<RequestKey>& keys,
                              const std::vector<std::string>& resource_names, absl::Time now) override {
    return RecordRequestIds(tx_, method, keys, resource_names, Micros(now));
  }

 private:
  absl::Status Missed(const char* exists_sql, const Params& key, const std::string& name) {
    return MissedUpdate(tx_, exists_sql, key, name);
  }

  // The operators row alone (no designations); NOT_FOUND.
  absl::StatusOr<Versioned<pb::Operator>> OperatorRow(const std::string& id) {
    absl::StatusOr<db::Rows> rows =
        tx_.Query(absl::StrCat("SELECT ", kOperatorColumns, " FROM operators WHERE id = ?"), {id});
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return NotFound(OperatorName(id));
    return OperatorFromRow(rows->front());
  }

  Tx& tx_;
  indicators::Rollup pending_rollup_;
  // Cases read or written in this transaction, by id: what PutCase counts the difference from.
  struct ReadCase {
    int64_t version;
    pb::Case value;
    indicators::Subject subject;
  };
  std::map<std::string, ReadCase> read_cases_;
};

// --- Repository -------------------------------------------------------------------------------

class SqlRepository final : public CepRepository {
 public:
  explicit SqlRepository(db::Db& db) : db_(db) {}

  absl::Status Transact(const std::function<absl::Status(CepTx&)>& fn) override {
    return db_.Transact([&](Tx& tx) -> absl::Status {
      SqlTx ctx(tx);
      if (absl::Status st = fn(ctx); !st.ok()) return st;
      return ctx.FlushRollup();
    });
  }

  absl::StatusOr<std::vector<pb::Case>> ListCases(const CaseQuery& query) override {
    // The operator scope is always applied: an empty operator sees nothing.
    std::string sql = absl::StrCat("SELECT ", kCaseColumns, " FROM cases WHERE operator_id = ? AND id > ?");
    Params params = {query.operator_id, query.after_id};
    if (query.state.has_value()) {
      sql += " AND state = ?";
      params.push_back(int64_t{*query.state});
    }
    if (!query.level.empty()) {
      sql += " AND level = ?";
      params.push_back(query.level);
    }
    if (query.opened_from_yyyymmdd != 0) {
      sql += " AND opening_date >= ?";
      params.push_back(int64_t{query.opened_from_yyyymmdd});
    }
    sql += " ORDER BY id LIMIT ?";
    params.push_back(int64_t{std::max(query.limit, 0)});
    absl::StatusOr<db::Rows> rows = db_.Query(sql, params);
    if (!rows.ok()) return rows.status();
    return CasesFromRows(*rows);
  }

  absl::StatusOr<std::vector<pb::Transfer>> ListTransfers(const TransferQuery& query) override {
    // Sent or received by the operator (always applied: an empty operator sees nothing).
    std::string sql = absl::StrCat("SELECT ", kTransferColumns,
                                   " FROM transfers WHERE (from_operator = ? OR to_operator = ?) AND id > ?");
    Params params = {query.operator_id, query.operator_id, query.after_id};
    if (query.state.has_value()) {
      sql += " AND state = ?";
      params.push_back(int64_t{*query.state});
    }
    sql += " ORDER BY id LIMIT ?";
    params.push_back(int64_t{std::max(query.limit, 0)});
    absl::StatusOr<db::Rows> rows = db_.Query(sql, params);
    if (!rows.ok()) return rows.status();
    return ValuesOfRows<pb::Transfer>(*rows, TransferFromRow);
  }

  // Operators with their designations. `region` matches an operator serving the region (in its
  // `regions`) or designated for it; the region lives in the document, so rows are scanned in id
  // order in batches and filtered here (the directory holds a few hundred operators).
  absl::StatusOr<std::vector<pb::Operator>> ListOperators(const OperatorQuery& query) override {
    const size_t limit = static_cast<size_t>(std::max(query.limit, 0));
    std::vector<pb::Operator> out;
    if (limit == 0) return out;
    absl::Status st = db_.Transact([&](Tx& tx) -> absl::Status {
      std::string after = query.after_id;
      const int64_t batch = query.region.empty() ? static_cast<int64_t>(limit) : std::max<int64_t>(limit, 200);
      while (out.size() < limit) {
        std::string sql = absl::StrCat("SELECT ", kOperatorColumns, " FROM operators WHERE id > ?");
        Params params = {after};
        if (query.kind.has_value()) {
          sql += " AND kind = ?";
          params.push_back(int64_t{*query.kind});
        }
        sql += " ORDER BY id LIMIT ?";
        params.push_back(batch);
        absl::StatusOr<db::Rows> rows = tx.Query(sql, params);
        if (!rows.ok()) return rows.status();
        if (rows->empty()) break;
        std::vector<Versioned<pb::Operator>> ops;
        std::vector<std::string> ids;
        for (const Row& row : *rows) {
          absl::StatusOr<Versioned<pb::Operator>> op = OperatorFromRow(row);
          if (!op.ok()) return op.status();
          ids.push_back(row.Str(0));
          ops.push_back(*std::move(op));
        }
        absl::StatusOr<std::map<std::string, std::vector<Designation>>> designations = DesignationsOf(tx, ids);
        if (!designations.ok()) return designations.status();
        for (size_t i = 0; i < ops.size() && out.size() < limit; ++i) {
          pb::Operator& op = ops[i].value;
          bool match = query.region.empty() ||
                       std::find(op.regions().begin(), op.regions().end(), query.region) != op.regions().end();
          for (const Designation& d : (*designations)[ids[i]]) {
            AddPeriod(d, op);
            if (d.region == query.region) match = true;
          }
          if (match) out.push_back(std::move(op));
        }
        if (static_cast<int64_t>(rows->size()) < batch) break;
        after = ids.back();
      }
      return absl::OkStatus();
    });
    if (!st.ok()) return st;
    return out;
  }

  absl::StatusOr<std::vector<AuditEntry>> ListAudit(const std::string& resource) override {
    return ReadAudit(db_, resource);
  }

  absl::StatusOr<std::vector<pb::ActivityEvent>> ReadActivity(int64_t after, int limit) override {
    return EventsFromRows(db_.Query("SELECT seq, time, doc FROM activity WHERE seq > ? ORDER BY seq LIMIT ?",
                                    {after, int64_t{std::max(limit, 0)}}));
  }

  absl::StatusOr<std::vector<pb::ActivityEvent>> ReadOperatorActivity(const std::string& operator_id, int64_t after,
                                                                      int limit) override {
    return EventsFromRows(
        db_.Query("SELECT seq, time, doc FROM activity WHERE operator_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                  {operator_id, after, int64_t{std::max(limit, 0)}}));
  }

  // One MAX per operator, each answered from the (operator_id, own_activity, time) index.
  absl::StatusOr<std::map<std::string, int64_t>> LastOwnActivity(const std::vector<std::string>& operator_ids,
                                                                 int64_t before) override {
    std::map<std::string, int64_t> out;
    absl::Status st = db_.Transact([&](Tx& tx) -> absl::Status {
      for (const std::string& id : operator_ids) {
        absl::StatusOr<db::Rows> rows = tx.Query(
            "SELECT MAX(time) FROM activity WHERE operator_id = ? AND own_activity = 1 AND time < ?", {id, before});
        if (!rows.ok()) return rows.status();
        if (!rows->empty() && !rows->front().IsNull(0)) out[id] = rows->front().Int(0);
      }
      return absl::OkStatus();
    });
    if (!st.ok()) return st;
    return out;
  }

  absl::StatusOr<std::vector<std::pair<indicators::Cell, int64_t>>> QueryRollup(
      const indicators::RollupQuery& q) override {
    static constexpr const char* kDimColumns[indicators::kDimCount] = {
        "operator_id", "region", "sex", "age_band", "status", "qualification", "level", "demands"};
    // Only the grouped columns are read (a Cell's other fields keep their neutral values), then
    // the sum as an integer (SUM of a BIGINT is a DECIMAL in MySQL, slower to read).
    std::string select = "SELECT ";
    std::string group = "";
    auto grouped = [&](const std::string& col) {
      select += col;
      select += ", ";
      if (!group.empty()) group += ", ";
      group += col;
    };
    if (!q.sum_months) grouped("month");
    std::vector<int> dims;  // grouped dimensions, in column order
    for (int d = 0; d < indicators::kDimCount; ++d) {
      if (q.group & (1u << d)) {
        grouped(kDimColumns[d]);
        dims.push_back(d);
      }
    }
    if (q.group_detail) grouped("detail");
    const bool stored_rows = indicators::ReadsStoredRows(q);  // no GROUP BY: a plain range scan
    select += stored_rows ? "value" : "CAST(SUM(value) AS SIGNED)";
    select += " FROM indicator_rollup WHERE cuboid = ? AND measure = ? AND month >= ? AND month <= ?";
    Params params = {int64_t{q.cuboid}, int64_t{q.measure}, int64_t{q.from_month}, int64_t{q.to_month}};
    for (const indicators::Condition& c : q.conditions) {
      if (c.dim == indicators::kDemands) {
        select += c.equal ? " AND (demands & ?) <> 0" : " AND (demands & ?) = 0";
        params.push_back(int64_t{1} << c.number);
        continue;
      }
      const char* col = c.dim == indicators::kDimCount ? "detail" : kDimColumns[c.dim];
      select += absl::StrCat(" AND ", col, c.equal ? " = ?" : " <> ?");
      if (IsTextDim(c.dim)) {
        params.push_back(c.text);
      } else {
        params.push_back(int64_t{c.number});
      }
    }
    if (!group.empty() && !stored_rows) select += absl::StrCat(" GROUP BY ", group);
    absl::StatusOr<db::Rows> rows = db_.Query(select, params);
    if (!rows.ok()) return rows.status();
    std::vector<std::pair<indicators::Cell, int64_t>> out;
    out.reserve(rows->size());
    for (const Row& row : *rows) {
      indicators::Cell c;
      c.cuboid = q.cuboid;
      c.measure = q.measure;
      int i = 0;
      if (!q.sum_months) c.month = static_cast<int>(row.Int(i++));
      for (int d : dims) SetDim(c, d, row, i++);
      if (q.group_detail) c.detail = static_cast<int>(row.Int(i++));
      out.emplace_back(std::move(c), row.Int(i));
    }
    return out;
  }

  absl::StatusOr<indicators::Rollup> ReadRollup() override {
    absl::StatusOr<db::Rows> rows =
        db_.Query(absl::StrCat("SELECT ", kRollupKeyColumns, ", value FROM indicator_rollup WHERE value <> 0"));
    if (!rows.ok()) return rows.status();
    indicators::Rollup out;
    for (const Row& row : *rows) out[CellFromRow(row)] = row.Int(12);
    return out;
  }

  // Every case, in id order by pages, each counted as AddCase counts it.
  absl::StatusOr<indicators::Rollup> RecomputeRollup() override {
    indicators::Rollup out;
    std::string after;
    for (;;) {
      absl::StatusOr<size_t> n = ForCasesAfter(db_, after, 2000, [&](const pb::Case& c, const indicators::Subject& s) {
        indicators::AddCase(c, s, +1, out);
      });
      if (!n.ok()) return n.status();
      if (*n == 0) break;
    }
    indicators::Compact(out);
    return out;
  }

  // Also ends the backfills a migration left (the recount includes what they would add).
  absl::Status RebuildRollup() override {
    absl::StatusOr<indicators::Rollup> all = RecomputeRollup();
    if (!all.ok()) return all.status();
    return db_.Transact([&](Tx& tx) -> absl::Status {
      if (absl::StatusOr<int64_t> n = tx.Exec("DELETE FROM indicator_rollup"); !n.ok()) return n.status();
      if (absl::StatusOr<int64_t> n = tx.Exec("DELETE FROM indicator_backfill"); !n.ok()) return n.status();
      return ApplyRollup(tx, *all);
    });
  }

  absl::Status DateUndatedContacts(int64_t now_micros) override {
    return db_.Transact([&](Tx& tx) {
      return tx.Exec("UPDATE contacts SET last_activity = ? WHERE last_activity IS NULL", {now_micros}).status();
    });
  }

  absl::StatusOr<std::vector<InactiveRegistration>> ListInactiveRegistrations(
      const InactiveRegistrationQuery& query) override {
    // Rows of an operator holding an open or closed case of the person follow that case's
    // retention, which deletes them with the file (Cep::ExpireCase).
    absl::StatusOr<db::Rows> rows = db_.Query(
        "SELECT c.pseudonym, c.operator_id, c.last_activity, c.notice_date FROM contacts c "
        "WHERE c.last_activity < ? AND (c.last_activity > ? OR (c.last_activity = ? AND (c.pseudonym > ? OR "
        "(c.pseudonym = ? AND c.operator_id > ?)))) AND NOT EXISTS (SELECT 1 FROM cases k WHERE "
        "k.pseudonym = c.pseudonym AND k.operator_id = c.operator_id AND k.state IN (?, ?)) "
        "ORDER BY c.last_activity, c.pseudonym, c.operator_id LIMIT ?",
        {query.inactive_before, query.after_last_activity, query.after_last_activity, query.after_pseudonym,
         query.after_pseudonym, query.after_operator, int64_t{pb::CASE_STATE_OPEN}, int64_t{pb::CASE_STATE_CLOSED},
         int64_t{std::max(query.limit, 0)}});
    if (!rows.ok()) return rows.status();
    std::vector<InactiveRegistration> out;
    out.reserve(rows->size());
    for (const Row& row : *rows) {
      out.push_back({row.Str(0), row.Str(1), row.Int(2), static_cast<int>(row.Int(3))});
    }
    return out;
  }

  absl::StatusOr<std::vector<InactiveCase>> ListInactiveCases(const InactiveCaseQuery& query) override {
    absl::StatusOr<db::Rows> rows = db_.Query(
        "SELECT id, last_activity, notice_date FROM cases WHERE state = ? AND last_activity < ? "
        "AND (last_activity > ? OR (last_activity = ? AND id > ?)) ORDER BY last_activity, id LIMIT ?",
        {int64_t{query.state}, query.inactive_before, query.after_last_activity, query.after_last_activity,
         query.after_id, int64_t{std::max(query.limit, 0)}});
    if (!rows.ok()) return rows.status();
    std::vector<InactiveCase> out;
    out.reserve(rows->size());
    for (const Row& row : *rows) {
      out.push_back({row.Str(0), row.Int(1), static_cast<int>(row.Int(2))});
    }
    return out;
  }

 private:
  static absl::StatusOr<std::vector<pb::ActivityEvent>> EventsFromRows(absl::StatusOr<db::Rows> rows) {
    if (!rows.ok()) return rows.status();
    std::vector<pb::ActivityEvent> out;
    out.reserve(rows->size());
    for (const Row& row : *rows) {
      pb::ActivityEvent e;
      if (!e.ParseFromString(row.Str(2))) {
        return absl::InternalError(absl::StrCat("corrupt activity event ", row.Int(0)));
      }
      e.set_cursor(absl::StrCat(row.Int(0)));
      SetTimestamp(e.mutable_time(), row.Int(1));
      out.push_back(std::move(e));
    }
    return out;
  }

  db::Db& db_;
};

}  // namespace

std::unique_ptr<CepRepository> NewSqlRepository(db::Db& db) { return std::make_unique<SqlRepository>(db); }

absl::Status CheckRollupsComplete(db::Db& db) {
  absl::StatusOr<db::Rows> pending = db.Query("SELECT COUNT(*) FROM indicator_backfill");
  if (!pending.ok()) return pending.status();
  if (!pending->empty() && pending->front().Int(0) > 0) {
    return absl::FailedPreconditionError(
        "the indicator rollups are still being completed for cases stored before schema 9: run `cep-svc migrate` "
        "to its end before serving");
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> BackfillRollups(db::Db& db) {
  static constexpr char kName[] = "people_and_restarts";  // migration 0009
  constexpr int kChunk = 1000;   // cases per transaction
  constexpr int kAttempts = 5;   // per chunk, when it collides with a case write (deadlock)
  int64_t counted = 0;
  for (bool done = false; !done;) {
    int64_t in_chunk = 0;
    absl::Status st;
    for (int attempt = 1; attempt <= kAttempts; ++attempt) {
      st = db.Transact([&](Tx& tx) -> absl::Status {
        in_chunk = 0;
        // Locked: another process migrating at the same time waits, then takes the next chunk.
        absl::StatusOr<db::Rows> progress = tx.Query(
            absl::StrCat("SELECT after_case FROM indicator_backfill WHERE name = ?", db::ForUpdate(tx.dialect())),
            {std::string(kName)});
        if (!progress.ok()) return progress.status();
        if (progress->empty()) {
          done = true;
          return absl::OkStatus();
        }
        std::string after = progress->front().Str(0);
        indicators::Rollup added;
        absl::StatusOr<size_t> n = ForCasesAfter(tx, after, kChunk, [&](const pb::Case& c, const indicators::Subject& s) {
          indicators::Rollup contribution;
          indicators::AddCase(c, s, +1, contribution);
          indicators::AddPeopleAndRestarts(contribution, added);
        });
        if (!n.ok()) return n.status();
        if (*n == 0) {
          done = true;
          return tx.Exec("DELETE FROM indicator_backfill WHERE name = ?", {std::string(kName)}).status();
        }
        in_chunk = static_cast<int64_t>(*n);
        if (absl::Status s = ApplyRollup(tx, added); !s.ok()) return s;
        return tx.Exec("UPDATE indicator_backfill SET after_case = ? WHERE name = ?", {after, std::string(kName)})
            .status();
      });
      if (!absl::IsAborted(st)) break;
      done = false;
    }
    if (!st.ok()) return st;
    counted += in_chunk;
  }
  return counted;
}

}  // namespace parcours::cep
