#include "platform/store.h"

#include "platform/db/bulk.h"
#include "platform/errors.h"
#include "platform/idempotency.h"

namespace parcours {

absl::Status WriteAudit(db::Tx& tx, const AuditEntry& entry) { return WriteAudits(tx, {entry}); }

absl::Status WriteAudits(db::Tx& tx, const std::vector<AuditEntry>& entries) {
  std::vector<db::Params> rows;
  rows.reserve(entries.size());
  for (const AuditEntry& e : entries) {
    rows.push_back({absl::ToUnixMicros(e.time), e.actor, e.action, e.resource, e.detail});
  }
  return db::InsertRows(tx, "INSERT INTO audit_log (time, actor, action, resource, detail)", "(?, ?, ?, ?, ?)", rows)
      .status();
}

absl::StatusOr<std::vector<AuditEntry>> ReadAudit(db::Db& db, const std::string& resource) {
  absl::StatusOr<db::Rows> rows = db.Query(
      "SELECT time, actor, action, resource, detail FROM audit_log WHERE resource = ? ORDER BY id", {resource});
  if (!rows.ok()) return rows.status();
  std::vector<AuditEntry> out;
  out.reserve(rows->size());
  for (const db::Row& row : *rows) {
    out.push_back({absl::FromUnixMicros(row.Int(0)), row.Str(1), row.Str(2), row.Str(3), row.Str(4)});
  }
  return out;
}

absl::StatusOr<std::optional<std::string>> LookupRequestName(db::Tx& tx, const std::string& method,
                                                             const std::string& request_id,
                                                             const google::protobuf::Message& request) {
  absl::StatusOr<std::optional<IdempotentHit>> hit = LookupRequestId(tx, method, request_id, request);
  if (!hit.ok()) return hit.status();
  if (!hit->has_value()) return std::optional<std::string>();
  return std::optional<std::string>((*hit)->resource_name);
}

absl::Status MissedUpdate(db::Tx& tx, const char* exists_sql, const db::Params& key, const std::string& name) {
  absl::StatusOr<db::Rows> rows = tx.Query(exists_sql, key);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return NotFound(name);
  return EtagMismatch(name);
}

}  // namespace parcours
