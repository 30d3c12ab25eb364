// Schema migrations.
//
// SQLite: each migration (its statements and its schema_version row) is applied in ONE
// transaction: SQLite DDL is transactional, so a failed migration leaves nothing behind. The
// version is checked again inside that transaction, so two processes migrating one file at once
// apply each migration once.
//
// MySQL/MariaDB: DDL commits implicitly, so each statement runs on its own (ExecDdl) and the
// version is recorded after the last one. A migration that fails midway leaves the statements
// before the failing one applied and the version NOT recorded: fix the database by hand (undo
// or finish the migration), as with any MySQL migration tool, then run migrate again. Two
// processes migrating one database at once are serialised by GET_LOCK (kMigrationLockSql); the whole
// migration runs on one pinned connection because GET_LOCK belongs to the session.
#include "platform/db/migrations.h"

#include <cerrno>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "platform/db/internal.h"

namespace parcours::db {
namespace {

// Debian's Abseil has its own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0).
inline absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::string_view SV(absl::string_view s) { return std::string_view(s.data(), s.size()); }

constexpr char kCreateSchemaVersion[] =
    "CREATE TABLE IF NOT EXISTS schema_version ("
    "version INTEGER PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL)";
constexpr int kLockTimeoutSeconds = 60;

absl::Status Annotate(const absl::Status& st, std::string_view context) {
  return absl::Status(st.code(), absl::StrCat(AV(context), ": ", st.message()));
}

absl::Status ValidateList(const std::vector<Migration>& migrations) {
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int>(i + 1)) {
      return absl::InvalidArgumentError(absl::StrCat("migration ", migrations[i].name, " has version ",
                                                     migrations[i].version, ", expected ", i + 1,
                                                     " (versions start at 1, strictly increasing, no gaps)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> SchemaVersionTableExists(Db& db) {
  std::string sql =
      db.dialect() == Dialect::kSqlite
          ? "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
          : "SELECT COUNT(*) FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_name = 'schema_version'";
  auto rows = db.Query(sql);
  if (!rows.ok()) return rows.status();
  return !rows->empty() && (*rows)[0].Int(0) > 0;
}

absl::StatusOr<int> CurrentVersion(Db& db) {
  auto rows = db.Query("SELECT COALESCE(MAX(version), 0) FROM schema_version");
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return 0;
  return static_cast<int>((*rows)[0].Int(0));
}

absl::Status RecordVersion(Tx& tx, const Migration& m) {
  auto n = tx.Exec("INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                   {int64_t{m.version}, m.name, absl::ToUnixMicros(absl::Now())});
  return n.status();
}

absl::Status Apply(Db& db, const Migration& m) {
  std::vector<std::string> statements = SplitStatements(m.sql);
  if (db.dialect() == Dialect::kSqlite) {
    return db.Transact([&](Tx& tx) -> absl::Status {
      // Another process may have applied it since we read the version (BEGIN IMMEDIATE
      // serialises the migrations themselves): check again under the write lock.
      auto rows = tx.Query("SELECT COALESCE(MAX(version), 0) FROM schema_version");
      if (!rows.ok()) return rows.status();
      if (!rows->empty() && (*rows)[0].Int(0) >= m.version) return absl::OkStatus();
      for (const std::string& stmt : statements) {
        if (auto n = tx.Exec(stmt); !n.ok()) return n.status();
      }
      return RecordVersion(tx, m);
    });
  }
  for (const std::string& stmt : statements) {
    if (absl::Status st = db.ExecDdl(stmt); !st.ok()) {
      return Annotate(st, "(statements before this one are applied: fix the database by hand)");
    }
  }
  return db.Transact([&](Tx& tx) { return RecordVersion(tx, m); });
}

absl::StatusOr<int> MigrateLocked(Db& db, const std::vector<Migration>& migrations) {
  if (absl::Status st = db.ExecDdl(kCreateSchemaVersion); !st.ok()) return st;
  auto current = CurrentVersion(db);
  if (!current.ok()) return current.status();
  int version = *current;
  for (const Migration& m : migrations) {
    if (m.version <= version) continue;
    if (absl::Status st = Apply(db, m); !st.ok()) {
      return Annotate(st, absl::StrCat("migration ", m.version, " (", m.name, ") failed"));
    }
    version = m.version;
  }
  return version;
}

std::string BinaryName() {
  const char* name = program_invocation_short_name;  // glibc
  return name != nullptr && *name != '\0' ? name : "<binary>";
}

}  // namespace

absl::StatusOr<int> Migrate(Db& db, const std::vector<Migration>& migrations) {
  if (absl::Status st = ValidateList(migrations); !st.ok()) return st;
  absl::StatusOr<int> result = 0;
  absl::Status st = internal::WithPinnedConnection(db, [&](Db& pinned) -> absl::Status {
    if (pinned.dialect() != Dialect::kMysql) {
      result = MigrateLocked(pinned, migrations);
      return absl::OkStatus();
    }
    auto got = pinned.Query(absl::StrCat("SELECT GET_LOCK(", kMigrationLockSql, ", ?)"), {int64_t{kLockTimeoutSeconds}});
    if (!got.ok()) return got.status();
    if (got->empty() || (*got)[0].IsNull(0) || (*got)[0].Int(0) != 1) {
      return absl::AbortedError(
          absl::StrCat("another process has been migrating this database for more than ", kLockTimeoutSeconds,
                       " s (its migration lock timed out)"));
    }
    result = MigrateLocked(pinned, migrations);
    // Released with the session anyway if this fails (e.g. connection lost).
    auto released = pinned.Query(absl::StrCat("SELECT RELEASE_LOCK(", kMigrationLockSql, ")"));
    if (!released.ok() && result.ok()) return released.status();
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return result;
}

absl::StatusOr<int> SchemaVersion(Db& db) {
  auto exists = SchemaVersionTableExists(db);
  if (!exists.ok()) return exists.status();
  if (!*exists) return 0;
  return CurrentVersion(db);
}

absl::Status CheckSchema(Db& db, const std::vector<Migration>& migrations) {
  int expected = migrations.empty() ? 0 : migrations.back().version;
  auto current = SchemaVersion(db);
  if (!current.ok()) return current.status();
  if (*current < expected) {
    return absl::FailedPreconditionError(
        absl::StrCat("database schema version ", *current, " is older than the ", expected,
                     " this binary expects: run `", BinaryName(), " migrate`"));
  }
  return absl::OkStatus();
}

std::vector<std::string> SplitStatements(const std::string& sql) {
  std::vector<std::string> out;
  std::string current;
  char quote = 0;  // inside '...', "..." or `...` (may span lines)
  size_t pos = 0;
  while (pos <= sql.size()) {
    size_t eol = sql.find('\n', pos);
    if (eol == std::string::npos) eol = sql.size();
    std::string_view line(sql.data() + pos, eol - pos);
    // Strip a `--` comment that is not inside a quoted string.
    std::string kept;
    for (size_t i = 0; i < line.size(); ++i) {
      char ch = line[i];
      if (quote != 0) {
        if (ch == quote) quote = 0;
        kept.push_back(ch);
        continue;
      }
      if (ch == '-' && i + 1 < line.size() && line[i + 1] == '-') break;
      if (ch == '\'' || ch == '"' || ch == '`') quote = ch;
      kept.push_back(ch);
    }
    // Inside a multi-line string literal the line is kept verbatim.
    absl::string_view trimmed =
        quote != 0 ? absl::string_view(kept) : absl::StripTrailingAsciiWhitespace(kept);
    if (!absl::StripLeadingAsciiWhitespace(trimmed).empty() || quote != 0) {
      if (!current.empty()) current.push_back('\n');
      current.append(trimmed.data(), trimmed.size());
    }
    if (quote == 0 && !trimmed.empty() && trimmed.back() == ';') {
      absl::string_view stmt = absl::StripAsciiWhitespace(current);
      while (!stmt.empty() && stmt.back() == ';')
        stmt = absl::StripTrailingAsciiWhitespace(stmt.substr(0, stmt.size() - 1));
      if (!stmt.empty()) out.emplace_back(stmt);
      current.clear();
    }
    pos = eol + 1;
  }
  absl::string_view rest = absl::StripAsciiWhitespace(current);
  if (!rest.empty()) out.emplace_back(rest);
  return out;
}

}  // namespace parcours::db
