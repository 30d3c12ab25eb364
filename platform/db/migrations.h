// Versioned schema migrations embedded in each binary (see cmake/Parcours.cmake,
// parcours_embed_migrations), recorded in a `schema_version` table.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "platform/db/db.h"

namespace parcours::db {

struct Migration {
  int version;       // 1, 2, ... strictly increasing, no gaps
  std::string name;  // file stem, e.g. "0001_init"
  std::string sql;   // statements separated by ';' at end of line
};

// Applies every migration above the database's current version, in order, each recorded in
// schema_version(version, name, applied_at) once applied. Returns the resulting version.
// A database newer than the binary is left alone (returns its version).
absl::StatusOr<int> Migrate(Db& db, const std::vector<Migration>& migrations);

// MySQL/MariaDB: the SQL name of the lock Migrate holds, one per database (GET_LOCK names are
// global to the server, which the three services' databases usually share: one name for all
// made a long migration of one service time out another's init container). At most 64
// characters, whatever the database's name.
inline constexpr char kMigrationLockSql[] = "CONCAT('parcours_migrate:', MD5(COALESCE(DATABASE(), '')))";

// Current schema version, 0 for an empty database.
absl::StatusOr<int> SchemaVersion(Db& db);

// FAILED_PRECONDITION unless the database is at least at the latest migration's version:
// a binary refuses to serve on a schema older than it expects.
absl::Status CheckSchema(Db& db, const std::vector<Migration>& migrations);

// The migration list of the database's dialect.
inline const std::vector<Migration>& ForDialect(const Db& db, const std::vector<Migration>& sqlite,
                                                const std::vector<Migration>& mysql) {
  return db.dialect() == Dialect::kMysql ? mysql : sqlite;
}

// Splits a migration file into statements (';' at end of a line ends one; `--` comments skipped).
std::vector<std::string> SplitStatements(const std::string& sql);

}  // namespace parcours::db
