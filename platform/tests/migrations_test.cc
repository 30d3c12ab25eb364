#include "platform/db/migrations.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "platform/db/db.h"
#include "platform/db/internal.h"
#include "platform/testing/mariadb.h"

namespace parcours::db {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

enum class Backend { kSqlite, kMysql };

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "Sqlite" : "Mariadb";
}

const Migration kV1{1, "0001_init", R"sql(
-- Certifications.
CREATE TABLE certification (
  id VARCHAR(64) NOT NULL PRIMARY KEY,  -- resource id
  title VARCHAR(255) NOT NULL
);
INSERT INTO certification (id, title) VALUES ('seed', 'Élaborer; -- pas un commentaire');
)sql"};

const Migration kV2{2, "0002_blocks", R"sql(
CREATE TABLE block (
  id VARCHAR(64) NOT NULL PRIMARY KEY,
  certification_id VARCHAR(64) NOT NULL
);
CREATE INDEX block_by_certification ON block (certification_id);
)sql"};

class MigrationsTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kSqlite) {
      dsn_ = parcours::testing::FreshSqliteDatabase();
    } else {
      auto dsn = parcours::testing::FreshMysqlDatabase();
      ASSERT_TRUE(dsn.ok()) << dsn.status();
      dsn_ = *dsn;
    }
    auto db = Open(dsn_);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
  }

  int64_t Count(const std::string& table) {
    auto rows = db_->Query("SELECT COUNT(*) FROM " + table);
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() && !rows->empty() ? (*rows)[0].Int(0) : -1;
  }

  bool TableExists(const std::string& table) { return db_->Query("SELECT COUNT(*) FROM " + table).ok(); }

  std::string dsn_;
  std::unique_ptr<Db> db_;
};

TEST_P(MigrationsTest, EmptyDatabaseIsVersionZero) {
  auto v = SchemaVersion(*db_);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 0);
}

TEST_P(MigrationsTest, ApplyFromEmpty) {
  auto v = Migrate(*db_, {kV1, kV2});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 2);
  auto sv = SchemaVersion(*db_);
  ASSERT_TRUE(sv.ok()) << sv.status();
  EXPECT_EQ(*sv, 2);
  EXPECT_EQ(Count("certification"), 1);
  EXPECT_EQ(Count("block"), 0);
  auto rows = db_->Query("SELECT version, name, applied_at FROM schema_version ORDER BY version");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].Int(0), 1);
  EXPECT_EQ((*rows)[0].Str(1), "0001_init");
  EXPECT_GT((*rows)[0].Int(2), 1600000000000000);  // unix micros
  EXPECT_EQ((*rows)[1].Str(1), "0002_blocks");
  // The seed row kept its ';' and '--' inside the string literal.
  auto seed = db_->Query("SELECT title FROM certification WHERE id = 'seed'");
  ASSERT_TRUE(seed.ok()) << seed.status();
  EXPECT_EQ((*seed)[0].Str(0), "Élaborer; -- pas un commentaire");
}

TEST_P(MigrationsTest, ReapplyIsNoop) {
  ASSERT_TRUE(Migrate(*db_, {kV1, kV2}).ok());
  auto v = Migrate(*db_, {kV1, kV2});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 2);
  EXPECT_EQ(Count("schema_version"), 2);
  EXPECT_EQ(Count("certification"), 1);  // seed not inserted twice
}

TEST_P(MigrationsTest, NewMigrationAppliesOnlyIt) {
  auto v1 = Migrate(*db_, {kV1});
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(*v1, 1);
  EXPECT_FALSE(TableExists("block"));
  auto v2 = Migrate(*db_, {kV1, kV2});
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(*v2, 2);
  EXPECT_TRUE(TableExists("block"));
  EXPECT_EQ(Count("certification"), 1);  // v1 (and its seed) not re-run
  EXPECT_EQ(Count("schema_version"), 2);
}

TEST_P(MigrationsTest, CheckSchema) {
  absl::Status empty = CheckSchema(*db_, {kV1, kV2});
  EXPECT_TRUE(absl::IsFailedPrecondition(empty)) << empty;
  ASSERT_TRUE(Migrate(*db_, {kV1}).ok());
  absl::Status older = CheckSchema(*db_, {kV1, kV2});
  EXPECT_TRUE(absl::IsFailedPrecondition(older)) << older;
  EXPECT_THAT(std::string(older.message()),
              HasSubstr("database schema version 1 is older than the 2 this binary expects: run `"));
  EXPECT_THAT(std::string(older.message()), HasSubstr(" migrate`"));
  EXPECT_TRUE(CheckSchema(*db_, {kV1}).ok());
  ASSERT_TRUE(Migrate(*db_, {kV1, kV2}).ok());
  EXPECT_TRUE(CheckSchema(*db_, {kV1, kV2}).ok());
  // A binary older than the database still runs (additive migrations), and does not migrate down.
  EXPECT_TRUE(CheckSchema(*db_, {kV1}).ok());
  auto v = Migrate(*db_, {kV1});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 2);
  EXPECT_TRUE(CheckSchema(*db_, {}).ok());
}

TEST_P(MigrationsTest, FailedMigration) {
  ASSERT_TRUE(Migrate(*db_, {kV1}).ok());
  const Migration bad{2, "0002_bad", "CREATE TABLE half (a INT);\nCREATE TABLE broken (;\n"};
  auto v = Migrate(*db_, {kV1, bad});
  EXPECT_FALSE(v.ok());
  EXPECT_THAT(std::string(v.status().message()), HasSubstr("0002_bad"));
  auto sv = SchemaVersion(*db_);
  ASSERT_TRUE(sv.ok());
  EXPECT_EQ(*sv, 1);  // not recorded
  if (GetParam() == Backend::kSqlite) {
    EXPECT_FALSE(TableExists("half"));  // transactional DDL: all or nothing
  } else {
    EXPECT_TRUE(TableExists("half"));  // MySQL DDL auto-commits: fix by hand (documented)
  }
}

TEST_P(MigrationsTest, RejectsBadVersionList) {
  Migration v3 = kV2;
  v3.version = 3;
  EXPECT_TRUE(absl::IsInvalidArgument(Migrate(*db_, {kV1, v3}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(Migrate(*db_, {kV2}).status()));
  auto sv = SchemaVersion(*db_);
  ASSERT_TRUE(sv.ok());
  EXPECT_EQ(*sv, 0);
}

TEST_P(MigrationsTest, ConcurrentMigrationsApplyEachOnce) {
  // Two "processes" (separate Db objects) migrating the same database at once.
  std::vector<Migration> many = {kV1, kV2};
  for (int v = 3; v <= 8; ++v) {
    many.push_back(Migration{v, "000" + std::to_string(v) + "_t",
                             "CREATE TABLE t" + std::to_string(v) +
                                 " (a INT);\nINSERT INTO certification (id, title) "
                                 "VALUES ('c" +
                                 std::to_string(v) + "', 'x');"});
  }
  auto other = Open(dsn_);
  ASSERT_TRUE(other.ok()) << other.status();
  absl::StatusOr<int> r1, r2;
  std::thread a([&] { r1 = Migrate(*db_, many); });
  std::thread b([&] { r2 = Migrate(**other, many); });
  a.join();
  b.join();
  ASSERT_TRUE(r1.ok()) << r1.status();
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(*r1, 8);
  EXPECT_EQ(*r2, 8);
  EXPECT_EQ(Count("schema_version"), 8);
  EXPECT_EQ(Count("certification"), 7);  // seed + c3..c8, each once
}

// Another database of the same server being migrated (its lock held) does not hold this one's
// migration: GET_LOCK names are global to the server.
TEST_P(MigrationsTest, AnotherDatabasesMigrationDoesNotWaitForThisOne) {
  if (GetParam() != Backend::kMysql) GTEST_SKIP() << "GET_LOCK is MySQL's";
  auto other_dsn = parcours::testing::FreshMysqlDatabase();
  ASSERT_TRUE(other_dsn.ok()) << other_dsn.status();
  auto other = Open(*other_dsn);
  ASSERT_TRUE(other.ok()) << other.status();
  absl::Status held = internal::WithPinnedConnection(**other, [&](Db& pinned) -> absl::Status {
    auto got = pinned.Query(absl::StrCat("SELECT GET_LOCK(", kMigrationLockSql, ", 0)"));
    if (!got.ok()) return got.status();
    EXPECT_EQ((*got)[0].Int(0), 1);
    const auto start = std::chrono::steady_clock::now();
    auto migrated = Migrate(*db_, {kV1, kV2});
    EXPECT_TRUE(migrated.ok()) << migrated.status();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
    return pinned.Query(absl::StrCat("SELECT RELEASE_LOCK(", kMigrationLockSql, ")")).status();
  });
  EXPECT_TRUE(held.ok()) << held;
}

// ...while a migration of this database waits for the one in progress (its lock held).
TEST_P(MigrationsTest, AMigrationWaitsForTheOneInProgressOnItsDatabase) {
  if (GetParam() != Backend::kMysql) GTEST_SKIP() << "GET_LOCK is MySQL's";
  auto holder = Open(dsn_);
  ASSERT_TRUE(holder.ok()) << holder.status();
  absl::Status held = internal::WithPinnedConnection(**holder, [&](Db& pinned) -> absl::Status {
    auto got = pinned.Query(absl::StrCat("SELECT GET_LOCK(", kMigrationLockSql, ", 0)"));
    if (!got.ok()) return got.status();
    EXPECT_EQ((*got)[0].Int(0), 1);
    std::atomic<bool> done{false};
    absl::StatusOr<int> migrated = 0;
    std::thread migration([&] {
      migrated = Migrate(*db_, {kV1, kV2});
      done = true;
    });
    std::this_thread::sleep_for(std::chrono::seconds(1));
    EXPECT_FALSE(done.load()) << "the migration did not wait for the lock";
    auto released = pinned.Query(absl::StrCat("SELECT RELEASE_LOCK(", kMigrationLockSql, ")"));
    migration.join();
    EXPECT_TRUE(migrated.ok()) << migrated.status();
    return released.status();
  });
  EXPECT_TRUE(held.ok()) << held;
}

INSTANTIATE_TEST_SUITE_P(Backends, MigrationsTest, ::testing::Values(Backend::kSqlite, Backend::kMysql),
                         BackendName);

TEST(SplitStatementsTest, Basics) {
  EXPECT_THAT(SplitStatements(""), ElementsAre());
  EXPECT_THAT(SplitStatements("\n  -- only a comment\n\n"), ElementsAre());
  EXPECT_THAT(SplitStatements("SELECT 1;"), ElementsAre("SELECT 1"));
  EXPECT_THAT(SplitStatements("SELECT 1;\nSELECT 2;\n"), ElementsAre("SELECT 1", "SELECT 2"));
  // No ';' at the end of the last statement.
  EXPECT_THAT(SplitStatements("SELECT 1;\nSELECT 2"), ElementsAre("SELECT 1", "SELECT 2"));
}

TEST(SplitStatementsTest, MultiLineStatementsAndComments) {
  const std::string sql =
      "-- header comment\n"
      "CREATE TABLE a (\n"
      "  id INT,  -- trailing comment; with a semicolon\n"
      "  -- a whole-line comment;\n"
      "  name TEXT\n"
      ");\r\n"
      "\n"
      "CREATE INDEX a_name ON a (name);  -- after the end\n";
  EXPECT_THAT(SplitStatements(sql),
              ElementsAre("CREATE TABLE a (\n  id INT,\n  name TEXT\n)", "CREATE INDEX a_name ON a (name)"));
}

TEST(SplitStatementsTest, SemicolonOnlyEndsAStatementAtEndOfLine) {
  EXPECT_THAT(SplitStatements("SELECT 1; SELECT 2;\n"), ElementsAre("SELECT 1; SELECT 2"));
}

TEST(SplitStatementsTest, QuotesProtectSemicolonsAndDashes) {
  EXPECT_THAT(SplitStatements("INSERT INTO t VALUES ('a;\n-- not a comment;\nb');\nSELECT 2;"),
              ElementsAre("INSERT INTO t VALUES ('a;\n-- not a comment;\nb')", "SELECT 2"));
  EXPECT_THAT(SplitStatements("INSERT INTO t VALUES ('it''s -- fine;');\n"),
              ElementsAre("INSERT INTO t VALUES ('it''s -- fine;')"));
  EXPECT_THAT(SplitStatements("CREATE TABLE `x--y` (a INT);\n"), ElementsAre("CREATE TABLE `x--y` (a INT)"));
}

}  // namespace
}  // namespace parcours::db
