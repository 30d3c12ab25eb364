// SQLite driver: one connection per Db, guarded by a mutex (SQLite serialises writers anyway).
//
// - WAL journal (readers of other processes do not block the writer), synchronous=NORMAL
//   (a commit survives a crash of the process; the last ones may be lost on a power loss). SQLite
//   is the embedded default for the local run and the tests (docs/architecture.md "Storage");
//   production runs on MariaDB, which flushes its redo log at every commit. FULL was measured:
//   a sync per commit under the single connection's mutex cut the journey bench from 2,908 to
//   1,575 calls/s (p99 108 -> 345 ms) on this machine's disk.
// - foreign_keys=ON, busy_timeout = Options::checkout_timeout_ms.
// - Transact = BEGIN IMMEDIATE ... COMMIT/ROLLBACK: the write lock is taken up front, so two
//   processes on one file never deadlock half-way through a transaction (they wait, then get
//   ABORTED after busy_timeout).
// - Statements are prepared once and cached per SQL text (small cache, cleared when full).
// - Do not call Db::Transact/ExecDdl/Query from inside a Transact function: the mutex is not
//   reentrant (use the Tx you were given).
#include <sqlite3.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "platform/db/db.h"
#include "platform/errors.h"
#include "platform/db/internal.h"

namespace parcours::db {
namespace {

// Debian's Abseil has its own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0).
inline absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::string_view SV(absl::string_view s) { return std::string_view(s.data(), s.size()); }

constexpr size_t kStatementCacheSize = 128;

// Maps an SQLite result code (extended codes enabled) to the status classes of db.h.
absl::Status MapError(sqlite3* conn, int rc, std::string_view sql) {
  int primary = rc & 0xff;
  std::string msg = absl::StrCat("sqlite: ", conn ? sqlite3_errmsg(conn) : sqlite3_errstr(rc), " [", rc, "]");
  if (!sql.empty()) absl::StrAppend(&msg, " in `", AV(sql), "`");
  if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
    return StorageError(absl::StatusCode::kAlreadyExists, msg);
  }
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) return StorageError(absl::StatusCode::kAborted, msg);
  return StorageError(absl::StatusCode::kInternal, msg);
}

class SqliteDb;

class SqliteTx final : public Tx {
 public:
  explicit SqliteTx(SqliteDb* db) : db_(db) {}
  absl::StatusOr<Rows> Query(std::string_view sql, const Params& params) override;
  absl::StatusOr<int64_t> Exec(std::string_view sql, const Params& params) override;
  absl::StatusOr<int64_t> LastInsertId() override;
  Dialect dialect() const override { return Dialect::kSqlite; }

  // First statement error seen in this transaction (the transaction is then rolled back).
  absl::Status first_error;

 private:
  absl::Status Record(absl::Status s) {
    if (!s.ok() && first_error.ok()) first_error = s;
    return s;
  }
  SqliteDb* db_;
};

class SqliteDb final : public Db {
 public:
  SqliteDb(sqlite3* conn, std::string path) : conn_(conn), path_(std::move(path)) {}
  ~SqliteDb() override {
    absl::MutexLock lock(&mu_);
    ClearCacheLocked();
    sqlite3_close_v2(conn_);
  }

  Dialect dialect() const override { return Dialect::kSqlite; }

  absl::Status Transact(const std::function<absl::Status(Tx&)>& fn) override {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = Control("BEGIN IMMEDIATE"); !s.ok()) return s;
    SqliteTx tx(this);
    absl::Status st = fn(tx);
    if (st.ok() && tx.first_error.ok()) {
      st = Control("COMMIT");
      if (st.ok()) return st;
    } else if (st.ok()) {
      // fn swallowed a statement error: the transaction is not trusted, roll it back.
      st = tx.first_error;
    }
    // Fails harmlessly when SQLite already rolled back by itself (e.g. after SQLITE_FULL).
    Control("ROLLBACK").IgnoreError();
    return st;
  }

  absl::Status ExecDdl(std::string_view sql) override {
    absl::MutexLock lock(&mu_);
    std::string text(sql);
    int rc = sqlite3_exec(conn_, text.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return MapError(conn_, rc, sql);
    return absl::OkStatus();
  }

  // --- used by SqliteTx, with mu_ held (inside Transact) ---

  absl::StatusOr<sqlite3_stmt*> Prepare(std::string_view sql, const Params& params)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::string key(sql);
    sqlite3_stmt* stmt = nullptr;
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      stmt = it->second;
    } else {
      const char* tail = nullptr;
      int rc = sqlite3_prepare_v2(conn_, key.data(), static_cast<int>(key.size()), &stmt, &tail);
      if (rc != SQLITE_OK) return MapError(conn_, rc, sql);
      if (stmt == nullptr)
        return StorageError(absl::StatusCode::kInternal, absl::StrCat("sqlite: empty statement `", AV(sql), "`"));
      absl::string_view rest(tail, key.data() + key.size() - tail);
      rest = absl::StripAsciiWhitespace(rest);
      while (!rest.empty() && rest.front() == ';') rest = absl::StripAsciiWhitespace(rest.substr(1));
      if (!rest.empty()) {
        sqlite3_finalize(stmt);
        return StorageError(absl::StatusCode::kInternal, absl::StrCat("sqlite: more than one statement in `", AV(sql), "`"));
      }
      if (cache_.size() >= kStatementCacheSize) ClearCacheLocked();
      cache_.emplace(std::move(key), stmt);
    }
    int expected = sqlite3_bind_parameter_count(stmt);
    if (expected != static_cast<int>(params.size())) {
      return StorageError(absl::StatusCode::kInternal, absl::StrCat("sqlite: statement takes ", expected, " parameters, got ",
                                              params.size(), " in `", AV(sql), "`"));
    }
    for (size_t i = 0; i < params.size(); ++i) {
      int idx = static_cast<int>(i + 1);
      const Value& v = params[i];
      int rc = SQLITE_OK;
      if (std::holds_alternative<std::monostate>(v)) {
        rc = sqlite3_bind_null(stmt, idx);
      } else if (const auto* n = std::get_if<int64_t>(&v)) {
        rc = sqlite3_bind_int64(stmt, idx, *n);
      } else if (const auto* d = std::get_if<double>(&v)) {
        rc = sqlite3_bind_double(stmt, idx, *d);
      } else {
        // TEXT with an explicit length: bytes are stored as given (NUL and non-UTF-8 included)
        // and compare equal to TEXT columns. params outlives the statement's execution.
        const std::string& s = std::get<std::string>(v);
        rc = sqlite3_bind_text64(stmt, idx, s.data(), s.size(), SQLITE_STATIC, SQLITE_UTF8);
      }
      if (rc != SQLITE_OK) {
        Reset(stmt);
        return MapError(conn_, rc, sql);
      }
    }
    return stmt;
  }

  static void Reset(sqlite3_stmt* stmt) {
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
  }

  sqlite3* conn() const { return conn_; }
  absl::Mutex& mu() { return mu_; }

 private:
  void ClearCacheLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    cache_.clear();
  }

  // BEGIN IMMEDIATE, COMMIT, ROLLBACK through the statement cache (sqlite3_exec would parse them
  // on every transaction).
  absl::Status Control(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::StatusOr<sqlite3_stmt*> stmt = Prepare(sql, {});
    if (!stmt.ok()) return stmt.status();
    const int rc = sqlite3_step(*stmt);
    absl::Status st = rc == SQLITE_DONE ? absl::OkStatus() : MapError(conn_, rc, sql);  // before the reset
    Reset(*stmt);
    return st;
  }

  absl::Mutex mu_;
  sqlite3* const conn_;
  const std::string path_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_ ABSL_GUARDED_BY(mu_);
};

Value ColumnValue(sqlite3_stmt* stmt, int i) {
  switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_NULL:
      return Value{};
    case SQLITE_INTEGER:
      return Value{static_cast<int64_t>(sqlite3_column_int64(stmt, i))};
    case SQLITE_FLOAT:
      return Value{sqlite3_column_double(stmt, i)};
    case SQLITE_BLOB: {
      const void* p = sqlite3_column_blob(stmt, i);
      int n = sqlite3_column_bytes(stmt, i);
      return Value{std::string(static_cast<const char*>(p), p ? static_cast<size_t>(n) : 0)};
    }
    default: {  // SQLITE_TEXT
      const unsigned char* p = sqlite3_column_text(stmt, i);
      int n = sqlite3_column_bytes(stmt, i);
      return Value{std::string(reinterpret_cast<const char*>(p), p ? static_cast<size_t>(n) : 0)};
    }
  }
}

absl::StatusOr<Rows> SqliteTx::Query(std::string_view sql, const Params& params) {
  // mu_ is held by Transact, which is the only way to get a SqliteTx.
  db_->mu().AssertHeld();
  auto prepared = db_->Prepare(sql, params);
  if (!prepared.ok()) return Record(prepared.status());
  sqlite3_stmt* stmt = *prepared;
  Rows rows;
  int ncols = sqlite3_column_count(stmt);
  for (;;) {
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      absl::Status err = MapError(db_->conn(), rc, sql);
      SqliteDb::Reset(stmt);
      return Record(err);
    }
    std::vector<Value> cols;
    cols.reserve(ncols);
    for (int i = 0; i < ncols; ++i) cols.push_back(ColumnValue(stmt, i));
    rows.emplace_back(std::move(cols));
  }
  SqliteDb::Reset(stmt);
  return rows;
}

absl::StatusOr<int64_t> SqliteTx::Exec(std::string_view sql, const Params& params) {
  db_->mu().AssertHeld();
  auto prepared = db_->Prepare(sql, params);
  if (!prepared.ok()) return Record(prepared.status());
  sqlite3_stmt* stmt = *prepared;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
  }
  if (rc != SQLITE_DONE) {
    absl::Status err = MapError(db_->conn(), rc, sql);
    SqliteDb::Reset(stmt);
    return Record(err);
  }
  // sqlite3_changes counts rows matched by an UPDATE even when the values did not change (the
  // MySQL driver asks for the same with CLIENT_FOUND_ROWS). Not meaningful for DDL/SELECT.
  int64_t changes = sqlite3_changes64(db_->conn());
  SqliteDb::Reset(stmt);
  return changes;
}

absl::StatusOr<int64_t> SqliteTx::LastInsertId() {
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_->conn()));
}

absl::Status Pragma(sqlite3* conn, const std::string& sql) {
  int rc = sqlite3_exec(conn, sql.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return MapError(conn, rc, sql);
  return absl::OkStatus();
}

}  // namespace

namespace internal {

absl::StatusOr<std::unique_ptr<Db>> OpenSqlite(const std::string& path, const Options& options) {
  sqlite3* conn = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &conn, flags, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status st = StorageError(absl::StatusCode::kUnavailable, 
        absl::StrCat("sqlite: cannot open ", path, ": ", conn ? sqlite3_errmsg(conn) : sqlite3_errstr(rc)));
    sqlite3_close_v2(conn);
    return st;
  }
  sqlite3_extended_result_codes(conn, 1);
  sqlite3_busy_timeout(conn, options.checkout_timeout_ms);
  for (const char* pragma :
       {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON"}) {
    absl::Status st = Pragma(conn, pragma);
    if (!st.ok()) {
      sqlite3_close_v2(conn);
      return StorageError(absl::StatusCode::kUnavailable, absl::StrCat("sqlite: cannot set up ", path, ": ", st.message()));
    }
  }
  return std::unique_ptr<Db>(new SqliteDb(conn, path));
}

}  // namespace internal
}  // namespace parcours::db
