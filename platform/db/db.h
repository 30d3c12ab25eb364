// One database interface for every service, with two drivers: MySQL/MariaDB through
// MySQL Connector/C++ (production) and SQLite (embedded default, fast tests).
//
// SQL is written once with `?` placeholders in the subset both dialects accept; where they
// differ (upserts, DDL) callers branch on dialect(). Every statement is prepared; values are
// always bound, never spliced into SQL text.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace parcours::db {

enum class Dialect { kSqlite, kMysql };
std::string_view DialectName(Dialect d);

// A bound parameter or a column value. std::string carries TEXT and BLOB alike.
using Value = std::variant<std::monostate, int64_t, double, std::string>;
inline Value Null() { return Value{}; }

class Row {
 public:
  explicit Row(std::vector<Value> cols) : cols_(std::move(cols)) {}
  size_t size() const { return cols_.size(); }
  bool IsNull(size_t i) const;
  int64_t Int(size_t i) const;          // 0 when NULL; parses TEXT holding digits
  double Double(size_t i) const;        // 0 when NULL
  std::string Str(size_t i) const;      // "" when NULL; integers rendered in base 10
  const Value& at(size_t i) const { return cols_.at(i); }

 private:
  std::vector<Value> cols_;
};

using Rows = std::vector<Row>;
using Params = std::vector<Value>;

// Statement execution on one connection. Obtained only inside Db::Transact, so a statement
// always runs in a transaction of known isolation (READ COMMITTED on MySQL).
class Tx {
 public:
  virtual ~Tx() = default;
  virtual absl::StatusOr<Rows> Query(std::string_view sql, const Params& params = {}) = 0;
  // Returns the number of affected rows.
  virtual absl::StatusOr<int64_t> Exec(std::string_view sql, const Params& params = {}) = 0;
  // Auto-increment id of the last INSERT on this connection.
  virtual absl::StatusOr<int64_t> LastInsertId() = 0;
  virtual Dialect dialect() const = 0;
};

// Row locks, for a transaction whose decision rests on rows another one may write at the same
// time (write skew, which READ COMMITTED allows). Needed on MySQL only: SQLite's transactions
// (BEGIN IMMEDIATE) already run one at a time.
inline bool NeedsRowLocks(Dialect d) { return d == Dialect::kMysql; }
// The suffix that makes a SELECT lock the rows it reads until the transaction ends.
inline const char* ForUpdate(Dialect d) { return NeedsRowLocks(d) ? " FOR UPDATE" : ""; }

// The tail of an INSERT that, when a row with the same `key` (its comma-separated columns) is
// there, replaces its `columns` with the inserted values instead: " ON CONFLICT (key) DO UPDATE
// SET c = excluded.c, ..." on SQLite, " ON DUPLICATE KEY UPDATE c = VALUES(c), ..." on MySQL.
std::string UpsertReplacing(Dialect d, const std::string& key, const std::vector<std::string>& columns);

// Error mapping done by both drivers (callers rely on it):
//   unique-key violation                 -> ALREADY_EXISTS
//   deadlock / lock wait timeout / busy  -> ABORTED (the caller may retry the whole transaction)
//   connection lost / server unreachable -> UNAVAILABLE (nothing was committed)
//   connection lost during COMMIT        -> UNKNOWN (the change may or may not be committed:
//                                           callers must not run it again as if it had failed)
//   anything else                        -> INTERNAL
// The SQL text and driver message stay in the status message for logs; platform/errors.h
// sends a client a fixed message for each of these codes instead.
class Db {
 public:
  virtual ~Db() = default;
  virtual Dialect dialect() const = 0;
  // Runs fn in one transaction: commit when it returns OK, rollback otherwise (and on any
  // statement error). A commit failure is returned as the mapped status. A broken connection is
  // discarded and the next call gets a fresh one (reconnect after a server restart).
  virtual absl::Status Transact(const std::function<absl::Status(Tx&)>& fn) = 0;
  // DDL outside a transaction (MySQL commits DDL implicitly). Used by migrations.
  virtual absl::Status ExecDdl(std::string_view sql) = 0;

  // Convenience: one read in its own transaction.
  absl::StatusOr<Rows> Query(std::string_view sql, const Params& params = {});
};

struct PoolStats {
  int size = 0;       // connections open
  int in_use = 0;     // checked out now
  int max_size = 0;
  int64_t waits = 0;  // checkouts that had to wait for a free connection
  // MySQL: server-side prepares, and per-connection statement caches dropped whole because they
  // were full (each costs every cached statement a new prepare: it should stay 0).
  int64_t statements_prepared = 0;
  int64_t statement_cache_resets = 0;
};

struct Options {
  // Maximum connections of the MySQL pool; SQLite uses one connection guarded by a mutex.
  int max_connections = 8;
  // How long a checkout waits for a free connection before RESOURCE_EXHAUSTED... as UNAVAILABLE.
  int checkout_timeout_ms = 5000;
  // MySQL: how long a read or write on a connection may block before the driver gives up
  // (error 2013): long, so that no sane query is cut; short for a probe's own connection.
  int read_write_timeout_seconds = 300;
};

// dsn:
//   sqlite:/path/to/file.db   sqlite::memory:
//   mysql://user:password@127.0.0.1:3306/database
absl::StatusOr<std::unique_ptr<Db>> Open(std::string_view dsn, const Options& options = {});

// Pool statistics for metrics (MySQL); for SQLite size = max_size = 1.
PoolStats Stats(const Db& db);

}  // namespace parcours::db
