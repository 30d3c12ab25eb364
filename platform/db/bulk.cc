// Multi-row statements: see bulk.h.
#include "platform/db/bulk.h"

#include <algorithm>
#include <string>
#include <variant>

#include "absl/strings/str_cat.h"

namespace parcours::db {
namespace {

constexpr size_t kMaxRowsPerStatement = 512;
constexpr size_t kMaxPlaceholders = 30000;
constexpr size_t kMaxStatementBytes = 4 << 20;
// A set of this many rows or fewer is one statement of its exact size: a small batch (a few
// OpenCase calls) is one statement, not one per power of two (8 + 4 + 2 + 1 for 15 rows). Larger
// sets keep to powers of two, remainder included, so a bulk import's statement texts stay few
// (the MySQL driver's per-connection cache of prepared statements must hold them all).
constexpr size_t kExactRows = 16;

// The size of the next chunk of a set of `total` rows with `left` still to go: the exact size of
// a small set, else the largest power of two not above `left`.
size_t NextChunk(size_t total, size_t left) {
  if (total <= kExactRows) return left;
  size_t n = kMaxRowsPerStatement;
  while (n > 1 && n > left) n /= 2;
  return n;
}

size_t ValueBytes(const Value& v) {
  if (const std::string* s = std::get_if<std::string>(&v)) return s->size() + 4;
  return 8;
}

// The rows of the next chunk from `first`: NextChunk, halved until within the limits (at least 1).
size_t ChunkRows(const std::vector<Params>& rows, size_t first) {
  const size_t columns = std::max<size_t>(rows[first].size(), 1);
  size_t n = NextChunk(rows.size(), rows.size() - first);
  while (n > 1 && n * columns > kMaxPlaceholders) n /= 2;
  for (;;) {
    size_t bytes = 0;
    for (size_t i = first; i < first + n; ++i) {
      for (const Value& v : rows[i]) bytes += ValueBytes(v);
    }
    if (n == 1 || bytes <= kMaxStatementBytes) return n;
    n /= 2;
  }
}

}  // namespace

absl::StatusOr<int64_t> InsertRows(Tx& tx, const std::string& head, const std::string& row_sql,
                                   const std::vector<Params>& rows, const std::string& tail) {
  int64_t affected = 0;
  size_t i = 0;
  while (i < rows.size()) {
    const size_t n = ChunkRows(rows, i);
    std::string sql = absl::StrCat(head, " VALUES ");
    Params params;
    params.reserve(n * rows[i].size());
    for (size_t k = 0; k < n; ++k, ++i) {
      if (k > 0) sql += ", ";
      sql += row_sql;
      for (const Value& v : rows[i]) params.push_back(v);
    }
    sql += tail;
    absl::StatusOr<int64_t> done = tx.Exec(sql, params);
    if (!done.ok()) return done.status();
    affected += *done;
  }
  return affected;
}

// Chunks of keys as InsertRows' rows.
absl::Status SelectIn(Tx& tx, const std::string& select_head, const Params& fixed,
                      const std::vector<std::string>& keys, const std::function<void(const Row&)>& each,
                      const std::string& tail) {
  size_t i = 0;
  while (i < keys.size()) {
    const size_t n = NextChunk(keys.size(), keys.size() - i);
    std::string sql = absl::StrCat(select_head, " (");
    Params params = fixed;
    for (size_t k = 0; k < n; ++k, ++i) {
      sql += k == 0 ? "?" : ", ?";
      params.push_back(keys[i]);
    }
    sql += ")";
    sql += tail;
    absl::StatusOr<Rows> rows = tx.Query(sql, params);
    if (!rows.ok()) return rows.status();
    for (const Row& row : *rows) each(row);
  }
  return absl::OkStatus();
}

}  // namespace parcours::db
