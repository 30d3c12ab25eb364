// Internal to platform/db: the glue between db.cc, the two drivers and migrations.cc.
// Nothing outside platform/db (and its tests) should include this header.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "platform/db/db.h"

namespace parcours::db::internal {

// path: a file name or ":memory:".
absl::StatusOr<std::unique_ptr<Db>> OpenSqlite(const std::string& path, const Options& options);

struct MysqlConfig {
  std::string user;
  std::string password;  // never logged, never put in a status message
  std::string host;
  int port = 3306;
  std::string database;  // may be empty: no default schema
};
absl::StatusOr<std::unique_ptr<Db>> OpenMysql(const MysqlConfig& config, const Options& options);

// Pool statistics when db is a MySQL Db, nullopt otherwise.
std::optional<PoolStats> MysqlPoolStats(const Db& db);

// Runs fn with a Db whose Transact/ExecDdl all use ONE connection, checked out for the whole
// call (MySQL session state such as GET_LOCK survives between them). If that connection breaks,
// later calls on the pinned Db fail with UNAVAILABLE (no silent reconnect: session state would
// be lost). For SQLite (a single connection anyway) fn gets db itself.
absl::Status WithPinnedConnection(Db& db, const std::function<absl::Status(Db& pinned)>& fn);

}  // namespace parcours::db::internal
