// Pieces every service's SQL repository shares: versioned aggregates (optimistic concurrency),
// the audit trail table, the request_id lookup, and the diagnosis of an UPDATE that matched no row.
//
// Each service's first migration creates:
//   audit_log (id auto-increment, time BIGINT unix micros, actor, action, resource, detail)
//   idempotency_keys (see platform/idempotency.h)
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "platform/db/db.h"

namespace parcours {

// A stored aggregate and the version it was read at (its etag).
template <typename T>
struct Versioned {
  T value;
  int64_t version = 0;
};

// Who read or changed which resource, when (no personal data in `detail`).
struct AuditEntry {
  absl::Time time;
  std::string actor;     // principal, e.g. "operator:ft"
  std::string action;    // method, e.g. "GetCase"
  std::string resource;  // resource name
  std::string detail;    // short, never personal data
};

// The values of a list read: `from_row` maps one row to absl::StatusOr<Versioned<T>>; the first
// error (a corrupt document) ends the read.
template <typename T, typename FromRow>
absl::StatusOr<std::vector<T>> ValuesOfRows(const db::Rows& rows, FromRow from_row) {
  std::vector<T> out;
  out.reserve(rows.size());
  for (const db::Row& row : rows) {
    absl::StatusOr<Versioned<T>> v = from_row(row);
    if (!v.ok()) return v.status();
    out.push_back(std::move(v->value));
  }
  return out;
}

absl::Status WriteAudit(db::Tx& tx, const AuditEntry& entry);
// Several entries in one statement (per chunk), in order.
absl::Status WriteAudits(db::Tx& tx, const std::vector<AuditEntry>& entries);
// The audit trail of one resource, oldest first.
absl::StatusOr<std::vector<AuditEntry>> ReadAudit(db::Db& db, const std::string& resource);

// The resource name created under (method, request_id), if any (platform/idempotency.h).
absl::StatusOr<std::optional<std::string>> LookupRequestName(db::Tx& tx, const std::string& method,
                                                             const std::string& request_id,
                                                             const google::protobuf::Message& request);

// After an `UPDATE ... WHERE key AND version = ?` matched no row: NOT_FOUND when `exists_sql`
// (SELECT 1 ... WHERE key) finds nothing, else ABORTED (the version moved on).
absl::Status MissedUpdate(db::Tx& tx, const char* exists_sql, const db::Params& key, const std::string& name);

}  // namespace parcours
