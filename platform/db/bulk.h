// Multi-row statements on either dialect: one INSERT with many VALUES rows, one SELECT with an
// IN list, cut into chunks that stay well under both dialects' limits (MySQL's 65,535
// placeholders and max_allowed_packet, 16 MB by default; SQLite's 32,766 variables).
//
// A chunk is a power of two of rows (512, 256, ... 1); a set of 16 rows or fewer is one chunk of
// its exact size. The MySQL driver caches prepared statements by SQL text (each keeping its last
// bound values), so a handful of texts per table (ten powers of two, and the small sizes a
// service's small batches use) keeps that cache, and the memory it holds, small whatever the
// batch sizes are, while a small batch is still one statement.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "platform/db/db.h"

namespace parcours::db {

// `head` + " VALUES " + `row_sql` repeated, for `rows` (each row's values for `row_sql`'s
// placeholders), then `tail`, in chunks; returns the affected rows summed.
absl::StatusOr<int64_t> InsertRows(Tx& tx, const std::string& head, const std::string& row_sql,
                                   const std::vector<Params>& rows, const std::string& tail = "");

// Runs `select_head` + " (?, ...)" + `tail` with `fixed` then a chunk of `keys`, for every
// chunk, and calls `each` on every row returned.
absl::Status SelectIn(Tx& tx, const std::string& select_head, const Params& fixed,
                      const std::vector<std::string>& keys, const std::function<void(const Row&)>& each,
                      const std::string& tail = "");

}  // namespace parcours::db
