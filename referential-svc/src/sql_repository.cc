// The SQL repository: the same statements on SQLite and MySQL (platform/db dialect subset).
#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "platform/aip.h"
#include "platform/errors.h"
#include "platform/idempotency.h"
#include "platform/proto_time.h"
#include "referential-svc/src/repository.h"

namespace parcours::referential {
namespace {

using db::Params;
using db::Row;
using db::Tx;

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }

void SetTimestamp(google::protobuf::Timestamp* ts, int64_t micros) { *ts = TimestampFromMicros(micros); }

// The fields kept in columns are cleared from the stored document so each lives in one place.
std::string CertificationDoc(pb::Certification c) {
  ClearOutputFields(c);
  return c.SerializeAsString();
}

std::string VersionDoc(pb::Version v) {
  ClearOutputFields(v);
  return v.SerializeAsString();
}

constexpr char kCertificationColumns[] =
    "code, doc, current_version, version, create_time, update_time";

absl::StatusOr<pb::Certification> CertificationFromRow(const Row& row) {
  pb::Certification c;
  if (!c.ParseFromString(row.Str(1))) {
    return absl::InternalError(absl::StrCat("corrupt certification document for ", row.Str(0)));
  }
  c.set_name(CertificationName(row.Str(0)));
  c.set_code(row.Str(0));
  if (int current = static_cast<int>(row.Int(2)); current > 0) {
    c.set_current_version(VersionName(row.Str(0), current));
  }
  c.set_etag(aip::Etag(row.Int(3)));
  SetTimestamp(c.mutable_create_time(), row.Int(4));
  SetTimestamp(c.mutable_update_time(), row.Int(5));
  return c;
}

constexpr char kVersionColumns[] =
    "code, number, state, doc, version, create_time, update_time, publish_time";

absl::StatusOr<pb::Version> VersionFromRow(const Row& row, bool with_tree) {
  pb::Version v;
  if (!v.ParseFromString(row.Str(3))) {
    return absl::InternalError(
        absl::StrCat("corrupt version document for ", row.Str(0), "/", row.Int(1)));
  }
  if (!with_tree) {
    v.clear_blocs();
    v.clear_scales();
    v.clear_correspondences();
  }
  v.set_name(VersionName(row.Str(0), static_cast<int>(row.Int(1))));
  v.set_state(static_cast<pb::VersionState>(row.Int(2)));
  v.set_etag(aip::Etag(row.Int(4)));
  SetTimestamp(v.mutable_create_time(), row.Int(5));
  SetTimestamp(v.mutable_update_time(), row.Int(6));
  if (row.Int(7) > 0) SetTimestamp(v.mutable_publish_time(), row.Int(7));
  return v;
}

absl::Status CheckExpected(std::optional<int64_t> expected, int64_t actual, absl::string_view name) {
  if (expected.has_value() && *expected != actual) return EtagMismatch(std::string(name));
  return absl::OkStatus();
}

class SqlRepository final : public Repository {
 public:
  explicit SqlRepository(db::Db& db) : db_(db) {}

  absl::StatusOr<pb::Certification> CreateCertification(const pb::Certification& certification,
                                                         const IdempotencyKey& key,
                                                         absl::Time now) override {
    std::string code = certification.code();
    absl::Status st = db_.Transact([&](Tx& tx) -> absl::Status {
      if (!key.request_id.empty()) {
        auto hit = LookupRequestId(tx, key.method, key.request_id, *key.request);
        if (!hit.ok()) return hit.status();
        if (hit->has_value()) {
          code = std::string(aip::ParseName("certifications/{c}", (*hit)->resource_name, "name")
                                 .value_or(std::vector<std::string>{""})[0]);
          return absl::OkStatus();
        }
      }
      absl::StatusOr<int64_t> inserted = tx.Exec(
          "INSERT INTO certifications (code, kind, level, active, title, search_text, doc, "
          "current_version, last_version_number, version, create_time, update_time) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, 1, ?, ?)",
          {certification.code(), int64_t{certification.kind()}, int64_t{certification.level()},
           int64_t{certification.active() ? 1 : 0}, certification.title(),
           FoldForSearch(certification.title()), CertificationDoc(certification), Micros(now),
           Micros(now)});
      if (absl::IsAlreadyExists(inserted.status())) {
        return AlreadyExists(CertificationName(certification.code()));
      }
      if (!inserted.ok()) return inserted.status();
      if (absl::Status s = WriteCertifiers(tx, certification); !s.ok()) return s;
      if (!key.request_id.empty()) {
        return RecordRequestId(tx, key.method, key.request_id, *key.request,
                               CertificationName(certification.code()), Micros(now));
      }
      return absl::OkStatus();
    });
    if (!st.ok()) return st;
    return GetCertification(code);
  }

  absl::StatusOr<pb::Certification> GetCertification(absl::string_view code) override {
    absl::StatusOr<db::Rows> rows = db_.Query(
        absl::StrCat("SELECT ", kCertificationColumns, " FROM certifications WHERE code = ?"),
        {std::string(code)});
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return NotFound(CertificationName(code));
    return CertificationFromRow(rows->front());
  }

  absl::StatusOr<std::vector<pb::Certification>> ListCertifications(
      const CertificationQuery& query) override {
    std::string sql = absl::StrCat("SELECT ", kCertificationColumns, " FROM certifications WHERE code > ?");
    Params params = {query.after_code};
    if (query.kind) {
      sql += " AND kind = ?";
      params.push_back(int64_t{*query.kind});
    }
    if (query.level) {
      sql += " AND level = ?";
      params.push_back(int64_t{*query.level});
    }
    if (query.active) {
      sql += " AND active = ?";
      params.push_back(int64_t{*query.active ? 1 : 0});
    }
    if (!query.certifier.empty()) {
      sql += " AND code IN (SELECT code FROM certification_certifiers WHERE certifier = ?)";
      params.push_back(query.certifier);
    }
    if (!query.title_contains.empty()) {
      sql += " AND search_text LIKE ? ESCAPE '!'";
      params.push_back(absl::StrCat("%", EscapeLike(FoldForSearch(query.title_contains)), "%"));
    }
    sql += " ORDER BY code LIMIT ?";
    params.push_back(int64_t{query.limit});
    absl::StatusOr<db::Rows> rows = db_.Query(sql, params);
    if (!rows.ok()) return rows.status();
    std::vector<pb::Certification> out;
    out.reserve(rows->size());
    for (const Row& row : *rows) {
      absl::StatusOr<pb::Certification> c = CertificationFromRow(row);
      if (!c.ok()) return c.status();
      out.push_back(*std::move(c));
    }
    return out;
  }

  absl::StatusOr<pb::Certification> UpdateCertification(absl::string_view code,
                                                         std::optional<int64_t> expected_version,
                                                         const CertificationMutation& mutate,
                                                         absl::Time now) override {
    absl::Status st = db_.Transact([&](Tx& tx) -> absl::Status {
      absl::StatusOr<db::Rows> rows = tx.Query(
          absl::StrCat("SELECT ", kCertificationColumns, " FROM certifications WHERE code = ?"),
          {std::string(code)});
      if (!rows.ok()) return rows.status();
      if (rows->empty()) return NotFound(CertificationName(code));
      int64_t version = rows->front().Int(3);
      if (absl::Status s = CheckExpected(expected_version, version, CertificationName(code)); !s.ok()) {
        return s;
      }
      absl::StatusOr<pb::Certification> c = CertificationFromRow(rows->front());
      if (!c.ok()) return c.status();
      if (absl::Status s = mutate(*c); !s.ok()) return s;
      absl::StatusOr<int64_t> n = tx.Exec(
          "UPDATE certifications SET level = ?, active = ?, title = ?, search_text = ?, doc = ?, "
          "version = version + 1, update_time = ? WHERE code = ? AND version = ?",
          {int64_t{c->level()}, int64_t{c->active() ? 1 : 0}, c->title(), FoldForSearch(c->title()),
           CertificationDoc(*c), Micros(now), std::string(code), version});
      if (!n.ok()) return n.status();
      if (*n != 1) return EtagMismatch(CertificationName(code));
      if (absl::Status s = tx.Exec("DELETE FROM certification_certifiers WHERE code = ?",
                                   {std::string(code)}).status();
          !s.ok()) {
        return s;
      }
      return WriteCertifiers(tx, *c);
    });
    if (!st.ok()) return st;
    return GetCertification(code);
  }

  absl::Status DeleteCertification(absl::string_view code,
                                   std::optional<int64_t> expected_version) override {
    return db_.Transact([&](Tx& tx) -> absl::Status {
      absl::StatusOr<db::Rows> rows = tx.Query(
          absl::StrCat("SELECT version FROM certifications WHERE code = ?", db::ForUpdate(tx.dialect())),
          {std::string(code)});
      if (!rows.ok()) return rows.status();
      if (rows->empty()) return NotFound(CertificationName(code));
      if (absl::Status s = CheckExpected(expected_version, rows->front().Int(0), CertificationName(code));
          !s.ok()) {
        return s;
      }
      absl::StatusOr<db::Rows> published = tx.Query(
          "SELECT COUNT(*) FROM versions WHERE code = ? AND state <> ?",
          {std::string(code), int64_t{pb::VERSION_STATE_DRAFT}});
      if (!published.ok()) return published.status();
      if (published->front().Int(0) > 0) {
        return FailedPrecondition("CERTIFICATION_HAS_PUBLISHED_VERSIONS", CertificationName(code),
                                  "a certification with a published version cannot be deleted; "
                                  "retire its versions instead");
      }
      // Only drafts go, whatever committed since the count (READ COMMITTED): a version published
      // meanwhile stays, and so does the certification.
      if (absl::Status s = tx.Exec("DELETE FROM versions WHERE code = ? AND state = ?",
                                   {std::string(code), int64_t{pb::VERSION_STATE_DRAFT}})
                               .status();
          !s.ok()) {
        return s;
      }
      absl::StatusOr<db::Rows> left = tx.Query("SELECT COUNT(*) FROM versions WHERE code = ?", {std::string(code)});
      if (!left.ok()) return left.status();
      if (left->front().Int(0) > 0) {
        return FailedPrecondition("CERTIFICATION_HAS_PUBLISHED_VERSIONS", CertificationName(code),
                                  "a version was published meanwhile; retire its versions instead");
      }
      for (const char* sql : {"DELETE FROM certification_certifiers WHERE code = ?",
                              "DELETE FROM certifications WHERE code = ?"}) {
        if (absl::Status s = tx.Exec(sql, {std::string(code)}).status(); !s.ok()) return s;
      }
      return absl::OkStatus();
    });
  }

  absl::StatusOr<pb::Version> CreateVersion(absl::string_view code, const pb::Version& version,
                                            const IdempotencyKey& key, absl::Time now) override {
    int number = 0;
    absl::Status st = db_.Transact([&](Tx& tx) -> absl::Status {
      if (!key.request_id.empty()) {
        auto hit = LookupRequestId(tx, key.method, key.request_id, *key.request);
        if (!hit.ok()) return hit.status();
        if (hit->has_value()) {
          auto parts = aip::ParseName("certifications/{c}/versions/{v}", (*hit)->resource_name, "name");
          if (!parts.ok()) return parts.status();
          number = std::stoi((*parts)[1]);
          return absl::OkStatus();
        }
      }
      // Claim the next number on the certification row: concurrent creates serialise here.
      absl::StatusOr<int64_t> bumped = tx.Exec(
          "UPDATE certifications SET last_version_number = last_version_number + 1 WHERE code = ?",
          {std::string(code)});
      if (!bumped.ok()) return bumped.status();
      if (*bumped == 0) return NotFound(CertificationName(code));
      absl::StatusOr<db::Rows> rows = tx.Query(
          "SELECT last_version_number FROM certifications WHERE code = ?", {std::string(code)});
      if (!rows.ok()) return rows.status();
      number = static_cast<int>(rows->front().Int(0));
      absl::Status ins = tx.Exec(
          "INSERT INTO versions (code, number, state, doc, version, create_time, update_time, "
          "publish_time) VALUES (?, ?, ?, ?, 1, ?, ?, 0)",
          {std::string(code), int64_t{number}, int64_t{pb::VERSION_STATE_DRAFT}, VersionDoc(version),
           Micros(now), Micros(now)}).status();
      if (!ins.ok()) return ins;
      if (!key.request_id.empty()) {
        return RecordRequestId(tx, key.method, key.request_id, *key.request, VersionName(code, number),
                               Micros(now));
      }
      return absl::OkStatus();
    });
    if (!st.ok()) return st;
    return GetVersion(code, number);
  }

  absl::StatusOr<pb::Version> GetVersion(absl::string_view code, int number) override {
    absl::StatusOr<db::Rows> rows = db_.Query(
        absl::StrCat("SELECT ", kVersionColumns, " FROM versions WHERE code = ? AND number = ?"),
        {std::string(code), int64_t{number}});
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return NotFound(VersionName(code, number));
    return VersionFromRow(rows->front(), /*with_tree=*/true);
  }

  absl::StatusOr<std::pair<pb::VersionState, std::string>> GetVersionState(absl::string_view code,
                                                                            int number) override {
    absl::StatusOr<db::Rows> rows = db_.Query(
        "SELECT state, version FROM versions WHERE code = ? AND number = ?",
        {std::string(code), int64_t{number}});
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return NotFound(VersionName(code, number));
    return std::make_pair(static_cast<pb::VersionState>(rows->front().Int(0)),
                          aip::Etag(rows->front().Int(1)));
  }

  absl::StatusOr<std::vector<pb::Version>> ListVersions(absl::string_view code, int before_number,
                                                        int limit, bool with_tree) override {
    absl::StatusOr<db::Rows> exists =
        db_.Query("SELECT 1 FROM certifications WHERE code = ?", {std::string(code)});
    if (!exists.ok()) return exists.status();
    if (exists->empty()) return NotFound(CertificationName(code));
    absl::StatusOr<db::Rows> rows = db_.Query(
        absl::StrCat("SELECT ", kVersionColumns,
                     " FROM versions WHERE code = ? AND number < ? ORDER BY number DESC LIMIT ?"),
        {std::string(code), int64_t{before_number > 0 ? before_number : INT32_MAX}, int64_t{limit}});
    if (!rows.ok()) return rows.status();
    std::vector<pb::Version> out;
    for (const Row& row : *rows) {
      absl::StatusOr<pb::Version> v = VersionFromRow(row, with_tree);
      if (!v.ok()) return v.status();
      out.push_back(*std::move(v));
    }
    return out;
  }

  absl::StatusOr<pb::Version> UpdateVersion(absl::string_view code, int number,
                                            std::optional<int64_t> expected_version,
                                            const VersionMutation& mutate, absl::Time now) override {
    absl::Status st = db_.Transact([&](Tx& tx) -> absl::Status {
      absl::StatusOr<db::Rows> rows = tx.Query(
          absl::StrCat("SELECT ", kVersionColumns, " FROM versions WHERE code = ? AND number = ?"),
          {std::string(code), int64_t{number}});
      if (!rows.ok()) return rows.status();
      if (rows->empty()) return NotFound(VersionName(code, number));
      const Row& row = rows->front();
      int64_t version = row.Int(4);
      if (absl::Status s = CheckExpected(expected_version, version, VersionName(code, number)); !s.ok()) {
        return s;
      }
      absl::StatusOr<pb::Version> v = VersionFromRow(row, /*with_tree=*/true);
      if (!v.ok()) return v.status();
      pb::VersionState before = v->state();
      if (absl::Status s = mutate(*v); !s.ok()) return s;
      int64_t publish_time = row.Int(7);
      if (before != pb::VERSION_STATE_PUBLISHED && v->state() == pb::VERSION_STATE_PUBLISHED) {
        publish_time = Micros(now);
      }
      absl::StatusOr<int64_t> n = tx.Exec(
          "UPDATE versions SET state = ?, doc = ?, version = version + 1, update_time = ?, "
          "publish_time = ? WHERE code = ? AND number = ? AND version = ?",
          {int64_t{v->state()}, VersionDoc(*v), Micros(now), publish_time, std::string(code),
           int64_t{number}, version});
      if (!n.ok()) return n.status();
      if (*n != 1) return EtagMismatch(VersionName(code, number));
      if (before != v->state()) {
        // The certification points at its newest published version.
        return tx.Exec(
            "UPDATE certifications SET current_version = COALESCE((SELECT MAX(number) FROM versions "
            "WHERE code = ? AND state = ?), 0), version = version + 1, update_time = ? WHERE code = ?",
            {std::string(code), int64_t{pb::VERSION_STATE_PUBLISHED}, Micros(now), std::string(code)})
            .status();
      }
      return absl::OkStatus();
    });
    if (!st.ok()) return st;
    return GetVersion(code, number);
  }

  absl::Status DeleteVersion(absl::string_view code, int number,
                             std::optional<int64_t> expected_version) override {
    return db_.Transact([&](Tx& tx) -> absl::Status {
      absl::StatusOr<db::Rows> rows = tx.Query(
          "SELECT state, version FROM versions WHERE code = ? AND number = ?",
          {std::string(code), int64_t{number}});
      if (!rows.ok()) return rows.status();
      if (rows->empty()) return NotFound(VersionName(code, number));
      if (absl::Status s = CheckExpected(expected_version, rows->front().Int(1), VersionName(code, number));
          !s.ok()) {
        return s;
      }
      if (rows->front().Int(0) != pb::VERSION_STATE_DRAFT) {
        return FailedPrecondition("VERSION_NOT_DRAFT", VersionName(code, number),
                                  "only a DRAFT version can be deleted");
      }
      // Guarded by what was read: a publication committed since the read (READ COMMITTED took
      // no lock) is not deleted with the draft it was.
      absl::StatusOr<int64_t> n =
          tx.Exec("DELETE FROM versions WHERE code = ? AND number = ? AND state = ? AND version = ?",
                  {std::string(code), int64_t{number}, int64_t{pb::VERSION_STATE_DRAFT}, rows->front().Int(1)});
      if (!n.ok()) return n.status();
      if (*n != 1) return EtagMismatch(VersionName(code, number));
      return absl::OkStatus();
    });
  }

 private:
  static absl::Status WriteCertifiers(Tx& tx, const pb::Certification& c) {
    std::vector<std::string> seen;
    for (const pb::Certifier& certifier : c.certifiers()) {
      if (std::find(seen.begin(), seen.end(), certifier.name()) != seen.end()) continue;
      seen.push_back(certifier.name());
      absl::Status s = tx.Exec("INSERT INTO certification_certifiers (code, certifier) VALUES (?, ?)",
                               {c.code(), certifier.name()})
                           .status();
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  static std::string EscapeLike(absl::string_view s) {
    std::string out;
    for (char ch : s) {
      if (ch == '%' || ch == '_' || ch == '!') out.push_back('!');
      out.push_back(ch);
    }
    return out;
  }

  db::Db& db_;
};

}  // namespace

std::unique_ptr<Repository> NewSqlRepository(db::Db& db) { return std::make_unique<SqlRepository>(db); }

}  // namespace parcours::referential
