// Db layer tests, run on both backends (SQLite file, MariaDB database), plus MariaDB-only pool,
// deadlock and restart tests, and idempotency.
#include "platform/db/db.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "parcours/bench/v1/bench.pb.h"
#include "platform/db/bulk.h"
#include "platform/idempotency.h"
#include "platform/errors.h"
#include "platform/testing/mariadb.h"

namespace parcours::db {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

enum class Backend { kSqlite, kMysql };

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "Sqlite" : "Mariadb";
}

std::string Msg(const absl::Status& st) { return std::string(st.message()); }

absl::StatusOr<std::string> FreshDsn(Backend backend) {
  if (backend == Backend::kSqlite) return parcours::testing::FreshSqliteDatabase();
  return parcours::testing::FreshMysqlDatabase();
}

// A simple barrier for two threads (std::barrier is C++20).
class Latch {
 public:
  explicit Latch(int n) : n_(n) {}
  void ArriveAndWait() {
    std::unique_lock<std::mutex> lock(mu_);
    if (--n_ == 0) {
      cv_.notify_all();
      return;
    }
    cv_.wait(lock, [&] { return n_ <= 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int n_;
};

class DbTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    auto dsn = FreshDsn(GetParam());
    ASSERT_TRUE(dsn.ok()) << dsn.status();
    dsn_ = *dsn;
    auto db = Open(dsn_);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
  }

  bool mysql() const { return GetParam() == Backend::kMysql; }
  std::string BlobType() const { return mysql() ? "LONGBLOB" : "BLOB"; }
  std::string LongTextType() const { return mysql() ? "LONGTEXT" : "TEXT"; }
  std::string AutoId() const {
    return mysql() ? "id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY" : "id INTEGER PRIMARY KEY AUTOINCREMENT";
  }

  int64_t Count(const std::string& table) {
    auto rows = db_->Query("SELECT COUNT(*) FROM " + table);
    EXPECT_TRUE(rows.ok()) << rows.status();
    if (!rows.ok() || rows->empty()) return -1;
    return (*rows)[0].Int(0);
  }

  void CreateKv() {
    ASSERT_TRUE(db_->ExecDdl("CREATE TABLE kv (k VARCHAR(64) NOT NULL PRIMARY KEY, v BIGINT NOT NULL, "
                             "tag VARCHAR(64), UNIQUE (tag))")
                    .ok());
  }

  std::string dsn_;
  std::unique_ptr<Db> db_;
};

TEST_P(DbTest, DialectMatchesDsn) {
  EXPECT_EQ(db_->dialect(), mysql() ? Dialect::kMysql : Dialect::kSqlite);
  EXPECT_EQ(DialectName(db_->dialect()), mysql() ? "mysql" : "sqlite");
}

// An INSERT with UpsertReplacing's tail adds the row, then replaces the named columns of the row
// with the same key (and only those), on both dialects.
TEST_P(DbTest, UpsertReplacingReplacesTheNamedColumnsOfTheRowWithTheSameKey) {
  CreateKv();
  const std::string sql =
      absl::StrCat("INSERT INTO kv (k, v, tag) VALUES (?, ?, ?)", UpsertReplacing(db_->dialect(), "k", {"v"}));
  ASSERT_TRUE(db_->Transact([&](Tx& tx) { return tx.Exec(sql, {"a", int64_t{1}, "first"}).status(); }).ok());
  ASSERT_TRUE(db_->Transact([&](Tx& tx) { return tx.Exec(sql, {"a", int64_t{2}, "second"}).status(); }).ok());
  auto rows = db_->Query("SELECT k, v, tag FROM kv");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].Int(1), 2);
  EXPECT_EQ((*rows)[0].Str(2), "first");  // not named: kept
  EXPECT_EQ(UpsertReplacing(Dialect::kSqlite, "a, b", {"c", "d"}),
            " ON CONFLICT (a, b) DO UPDATE SET c = excluded.c, d = excluded.d");
  EXPECT_EQ(UpsertReplacing(Dialect::kMysql, "a, b", {"c", "d"}), " ON DUPLICATE KEY UPDATE c = VALUES(c), d = VALUES(d)");
}

TEST_P(DbTest, RoundTripsEveryValueType) {
  ASSERT_TRUE(db_->ExecDdl("CREATE TABLE vals (id INTEGER NOT NULL PRIMARY KEY, i BIGINT, d DOUBLE, "
                           "s VARCHAR(255), b " +
                           BlobType() + ")")
                  .ok());
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  const int64_t kMin = std::numeric_limits<int64_t>::min();
  absl::Status st = db_->Transact([&](Tx& tx) -> absl::Status {
    for (const Params& p :
         {Params{int64_t{1}, kMax, 3.25, std::string("texte"), std::string("\x00\x01\xff", 3)},
          Params{int64_t{2}, kMin, -1.5e300, std::string(""), std::string("")},
          Params{int64_t{3}, Null(), Null(), Null(), Null()}}) {
      auto n = tx.Exec("INSERT INTO vals (id, i, d, s, b) VALUES (?, ?, ?, ?, ?)", p);
      if (!n.ok()) return n.status();
      if (*n != 1) return absl::InternalError(absl::StrCat("affected ", *n));
    }
    return absl::OkStatus();
  });
  ASSERT_TRUE(st.ok()) << st;

  auto rows = db_->Query("SELECT id, i, d, s, b FROM vals ORDER BY id");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 3u);
  const Row& r1 = (*rows)[0];
  ASSERT_EQ(r1.size(), 5u);
  EXPECT_EQ(std::get<int64_t>(r1.at(0)), 1);
  EXPECT_EQ(std::get<int64_t>(r1.at(1)), kMax);
  EXPECT_EQ(std::get<double>(r1.at(2)), 3.25);
  EXPECT_EQ(std::get<std::string>(r1.at(3)), "texte");
  EXPECT_EQ(std::get<std::string>(r1.at(4)), std::string("\x00\x01\xff", 3));
  EXPECT_FALSE(r1.IsNull(1));
  EXPECT_EQ(r1.Int(1), kMax);
  EXPECT_EQ(r1.Double(2), 3.25);
  EXPECT_EQ(r1.Str(3), "texte");
  EXPECT_EQ(r1.Str(0), "1");

  const Row& r2 = (*rows)[1];
  EXPECT_EQ(std::get<int64_t>(r2.at(1)), kMin);
  EXPECT_EQ(std::get<double>(r2.at(2)), -1.5e300);
  EXPECT_EQ(std::get<std::string>(r2.at(3)), "");  // empty string is not NULL
  EXPECT_FALSE(r2.IsNull(3));

  const Row& r3 = (*rows)[2];
  for (size_t i = 1; i < 5; ++i) {
    EXPECT_TRUE(r3.IsNull(i)) << i;
    EXPECT_TRUE(std::holds_alternative<std::monostate>(r3.at(i))) << i;
  }
  EXPECT_EQ(r3.Int(1), 0);
  EXPECT_EQ(r3.Double(2), 0.0);
  EXPECT_EQ(r3.Str(3), "");

  // NULL bound as a parameter.
  auto nulls = db_->Query("SELECT COUNT(*) FROM vals WHERE i IS NULL AND ? IS NULL", {Null()});
  ASSERT_TRUE(nulls.ok()) << nulls.status();
  EXPECT_EQ((*nulls)[0].Int(0), 1);
}

TEST_P(DbTest, Utf8FrenchTextAndEmoji) {
  ASSERT_TRUE(db_->ExecDdl("CREATE TABLE t (id INTEGER NOT NULL PRIMARY KEY, s VARCHAR(255) NOT NULL)").ok());
  const std::string text =
      "Élaborer le référentiel… « ça déçoit » — Œuvre ✅ 🎓👩🏽‍🏫";
  auto n = [&] {
    absl::StatusOr<int64_t> out;
    EXPECT_TRUE(db_->Transact([&](Tx& tx) {
                     out = tx.Exec("INSERT INTO t (id, s) VALUES (?, ?)", {int64_t{1}, text});
                     return out.status();
                   })
                    .ok());
    return out;
  }();
  ASSERT_TRUE(n.ok()) << n.status();
  auto rows = db_->Query("SELECT s FROM t WHERE s = ?", {text});
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].Str(0), text);
  // A literal in the SQL text goes through the connection charset too.
  auto lit = db_->Query("SELECT 'Élaborer 🎓'");
  ASSERT_TRUE(lit.ok()) << lit.status();
  EXPECT_EQ((*lit)[0].Str(0), "Élaborer 🎓");
}

TEST_P(DbTest, OneMegabyteValues) {
  ASSERT_TRUE(db_->ExecDdl("CREATE TABLE big (id INTEGER NOT NULL PRIMARY KEY, b " + BlobType() + ", t " +
                           LongTextType() + ")")
                  .ok());
  std::string blob(1 << 20, '\0');
  for (size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<char>((i * 7919) & 0xff);
  std::string text;
  while (text.size() < (1 << 20)) text += "Élaborer 🎓 ";
  absl::Status st = db_->Transact([&](Tx& tx) {
    return tx.Exec("INSERT INTO big (id, b, t) VALUES (?, ?, ?)", {int64_t{1}, blob, text}).status();
  });
  ASSERT_TRUE(st.ok()) << st;
  auto rows = db_->Query("SELECT b, t FROM big WHERE id = ?", {int64_t{1}});
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 1u);
  const std::string got_blob = (*rows)[0].Str(0);
  const std::string got_text = (*rows)[0].Str(1);
  EXPECT_EQ(got_blob.size(), blob.size());
  EXPECT_TRUE(got_blob == blob) << "blob differs";
  EXPECT_EQ(got_text.size(), text.size());
  EXPECT_TRUE(got_text == text) << "text differs";
}

TEST_P(DbTest, AffectedRowCounts) {
  CreateKv();
  absl::Status st = db_->Transact([&](Tx& tx) -> absl::Status {
    for (const char* k : {"a", "b", "c"}) {
      auto n = tx.Exec("INSERT INTO kv (k, v) VALUES (?, ?)", {std::string(k), int64_t{1}});
      if (!n.ok()) return n.status();
      EXPECT_EQ(*n, 1);
    }
    auto upd =
        tx.Exec("UPDATE kv SET v = ? WHERE k IN (?, ?)", {int64_t{5}, std::string("a"), std::string("b")});
    if (!upd.ok()) return upd.status();
    EXPECT_EQ(*upd, 2);
    // Same values again: rows matched, not rows changed, on both backends.
    auto same =
        tx.Exec("UPDATE kv SET v = ? WHERE k IN (?, ?)", {int64_t{5}, std::string("a"), std::string("b")});
    if (!same.ok()) return same.status();
    EXPECT_EQ(*same, 2);
    auto none = tx.Exec("DELETE FROM kv WHERE k = ?", {std::string("zzz")});
    if (!none.ok()) return none.status();
    EXPECT_EQ(*none, 0);
    auto all = tx.Exec("DELETE FROM kv WHERE v = ?", {int64_t{5}});
    if (!all.ok()) return all.status();
    EXPECT_EQ(*all, 2);
    return absl::OkStatus();
  });
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(Count("kv"), 1);
}

// InsertRows and SelectIn cut their rows into chunks (all of them up to 16, then powers of two):
// every row lands once, in order, on either side of each boundary.
TEST_P(DbTest, MultiRowInsertAndSelectInKeepEveryRowAcrossChunks) {
  for (size_t n : {size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{33}, size_t{600}, size_t{1100}}) {
    ASSERT_TRUE(db_->ExecDdl("CREATE TABLE bulk (id BIGINT NOT NULL PRIMARY KEY, k VARCHAR(64) NOT NULL)").ok());
    std::vector<Params> rows;
    std::vector<std::string> keys;
    for (size_t i = 0; i < n; ++i) {
      rows.push_back({static_cast<int64_t>(i), absl::StrCat("key-", i)});
      keys.push_back(absl::StrCat("key-", i));
    }
    keys.push_back("absent");
    std::vector<int64_t> found;
    absl::Status st = db_->Transact([&](Tx& tx) -> absl::Status {
      absl::StatusOr<int64_t> inserted = InsertRows(tx, "INSERT INTO bulk (id, k)", "(?, ?)", rows);
      if (!inserted.ok()) return inserted.status();
      EXPECT_EQ(*inserted, static_cast<int64_t>(n));
      return SelectIn(tx, "SELECT id, k FROM bulk WHERE id >= ? AND k IN", {int64_t{0}}, keys, [&](const Row& row) {
        EXPECT_EQ(row.Str(1), absl::StrCat("key-", row.Int(0)));
        found.push_back(row.Int(0));
      });
    });
    ASSERT_TRUE(st.ok()) << n << ": " << st;
    std::sort(found.begin(), found.end());
    ASSERT_EQ(found.size(), n);
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(found[i], static_cast<int64_t>(i)) << n;
    auto ordered = db_->Query("SELECT id FROM bulk ORDER BY id");
    ASSERT_TRUE(ordered.ok()) << ordered.status();
    EXPECT_EQ(ordered->size(), n);
    ASSERT_TRUE(db_->ExecDdl("DROP TABLE bulk").ok());
  }
}

TEST_P(DbTest, LastInsertId) {
  ASSERT_TRUE(db_->ExecDdl("CREATE TABLE seq (" + AutoId() + ", name VARCHAR(64) NOT NULL)").ok());
  std::vector<int64_t> ids;
  for (int i = 0; i < 3; ++i) {
    absl::Status st = db_->Transact([&](Tx& tx) -> absl::Status {
      auto n = tx.Exec("INSERT INTO seq (name) VALUES (?)", {absl::StrCat("n", i)});
      if (!n.ok()) return n.status();
      auto id = tx.LastInsertId();
      if (!id.ok()) return id.status();
      ids.push_back(*id);
      return absl::OkStatus();
    });
    ASSERT_TRUE(st.ok()) << st;
  }
  EXPECT_EQ(ids, (std::vector<int64_t>{1, 2, 3}));
  auto rows = db_->Query("SELECT name FROM seq WHERE id = ?", {ids[1]});
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].Str(0), "n1");
}

TEST_P(DbTest, FunctionErrorRollsBackAndIsReturnedAsIs) {
  CreateKv();
  absl::Status st = db_->Transact([&](Tx& tx) -> absl::Status {
    auto n = tx.Exec("INSERT INTO kv (k, v) VALUES (?, ?)", {std::string("a"), int64_t{1}});
    EXPECT_TRUE(n.ok()) << n.status();
    return absl::NotFoundError("domain says no");
  });
  EXPECT_EQ(st, absl::NotFoundError("domain says no"));
  EXPECT_EQ(Count("kv"), 0);
  // The connection is usable afterwards and commits normally.
  st = db_->Transact([&](Tx& tx) {
    return tx.Exec("INSERT INTO kv (k, v) VALUES (?, ?)", {std::string("a"), int64_t{1}}).status();
  });
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_EQ(Count("kv"), 1);
}

TEST_P(DbTest, UniqueViolationIsAlreadyExists) {
  CreateKv();
  ASSERT_TRUE(db_->Transact([&](Tx& tx) {
                   return tx
                       .Exec("INSERT INTO kv (k, v, tag) VALUES (?, ?, ?)",
                             {std::string("a"), int64_t{1}, std::string("x")})
                       .status();
                 })
                  .ok());
  // Primary key.
  absl::Status pk = db_->Transact([&](Tx& tx) {
    return tx.Exec("INSERT INTO kv (k, v) VALUES (?, ?)", {std::string("a"), int64_t{2}}).status();
  });
  EXPECT_TRUE(absl::IsAlreadyExists(pk)) << pk;
  EXPECT_THAT(Msg(pk), HasSubstr("INSERT INTO kv"));
  // Secondary unique index.
  absl::Status uq = db_->Transact([&](Tx& tx) {
    return tx
        .Exec("INSERT INTO kv (k, v, tag) VALUES (?, ?, ?)", {std::string("b"), int64_t{2}, std::string("x")})
        .status();
  });
  EXPECT_TRUE(absl::IsAlreadyExists(uq)) << uq;
  EXPECT_EQ(Count("kv"), 1);
}

TEST_P(DbTest, StatementErrorSwallowedByFunctionStillRollsBack) {
  CreateKv();
  ASSERT_TRUE(
      db_->Transact([&](Tx& tx) {
           return tx.Exec("INSERT INTO kv (k, v) VALUES (?, ?)", {std::string("a"), int64_t{1}}).status();
         })
          .ok());
  absl::Status st = db_->Transact([&](Tx& tx) -> absl::Status {
    EXPECT_TRUE(tx.Exec("INSERT INTO kv (k, v) VALUES (?, ?)", {std::string("b"), int64_t{1}}).ok());
    auto dup = tx.Exec("INSERT INTO kv (k, v) VALUES (?, ?)", {std::string("a"), int64_t{1}});
    EXPECT_TRUE(absl::IsAlreadyExists(dup.status())) << dup.status();
    return absl::OkStatus();  // ignores the error
  });
  EXPECT_TRUE(absl::IsAlreadyExists(st)) << st;
  EXPECT_EQ(Count("kv"), 1);  // "b" rolled back
}

TEST_P(DbTest, SyntaxErrorIsInternalWithSqlInMessage) {
  absl::Status st = db_->Transact([&](Tx& tx) { return tx.Query("SELEC 1 FROM nowhere").status(); });
  EXPECT_TRUE(absl::IsInternal(st)) << st;
  EXPECT_THAT(Msg(st), HasSubstr("SELEC 1 FROM nowhere"));
  auto q = db_->Query("SELECT * FROM missing_table");
  EXPECT_TRUE(absl::IsInternal(q.status())) << q.status();
  absl::Status ddl = db_->ExecDdl("CREATE TABLEX oops (a INT)");
  EXPECT_TRUE(absl::IsInternal(ddl)) << ddl;
  // Still usable.
  auto ok = db_->Query("SELECT 1");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)[0].Int(0), 1);
}

TEST_P(DbTest, WrongParameterCountIsAnError) {
  CreateKv();
  absl::Status st = db_->Transact(
      [&](Tx& tx) { return tx.Exec("INSERT INTO kv (k, v) VALUES (?, ?)", {std::string("a")}).status(); });
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(Count("kv"), 0);
}

TEST_P(DbTest, ExecOfAStatementReturningRowsLeavesTheConnectionUsable) {
  absl::Status st = db_->Transact([&](Tx& tx) -> absl::Status {
    auto n = tx.Exec("SELECT ?", {int64_t{1}});
    if (!n.ok()) return n.status();
    auto rows = tx.Query("SELECT ?", {int64_t{2}});
    if (!rows.ok()) return rows.status();
    EXPECT_EQ((*rows)[0].Int(0), 2);
    return absl::OkStatus();
  });
  EXPECT_TRUE(st.ok()) << st;
}

TEST_P(DbTest, ComputedColumnsConvert) {
  CreateKv();
  ASSERT_TRUE(
      db_->Transact([&](Tx& tx) -> absl::Status {
           for (int i = 1; i <= 4; ++i) {
             auto n = tx.Exec("INSERT INTO kv (k, v) VALUES (?, ?)", {absl::StrCat("k", i), int64_t{i}});
             if (!n.ok()) return n.status();
           }
           return absl::OkStatus();
         })
          .ok());
  // SUM of integers is DECIMAL on MySQL: Int() still works.
  auto rows = db_->Query("SELECT SUM(v), COUNT(*), MAX(k), AVG(v) FROM kv");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ((*rows)[0].Int(0), 10);
  EXPECT_EQ((*rows)[0].Int(1), 4);
  EXPECT_EQ((*rows)[0].Str(2), "k4");
  EXPECT_DOUBLE_EQ((*rows)[0].Double(3), 2.5);
}

TEST_P(DbTest, CommittedDataVisibleToOtherConnection) {
  CreateKv();
  auto other = Open(dsn_);
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE(
      db_->Transact([&](Tx& tx) {
           return tx.Exec("INSERT INTO kv (k, v) VALUES (?, ?)", {std::string("a"), int64_t{7}}).status();
         })
          .ok());
  auto rows = (*other)->Query("SELECT v FROM kv WHERE k = ?", {std::string("a")});
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].Int(0), 7);
}

// ---------------------------------------------------------------------------------------------
// Idempotency (both backends).

constexpr char kIdempotencyDdl[] =
    "CREATE TABLE idempotency_keys ("
    "method VARCHAR(128) NOT NULL, request_id VARCHAR(64) NOT NULL, "
    "resource_name VARCHAR(512) NOT NULL, request_hash VARCHAR(64) NOT NULL, "
    "created_at BIGINT NOT NULL, PRIMARY KEY (method, request_id))";

bench::v1::EchoRequest Req(const std::string& payload) {
  bench::v1::EchoRequest r;
  r.set_payload(payload);
  return r;
}

TEST_P(DbTest, IdempotencyLookupRecordHit) {
  ASSERT_TRUE(db_->ExecDdl(kIdempotencyDdl).ok());
  const std::string method = "/parcours.referential.v1.ReferentialService/CreateCertification";
  auto lookup = [&](const std::string& id, const bench::v1::EchoRequest& req) {
    absl::StatusOr<std::optional<IdempotentHit>> out;
    absl::Status st = db_->Transact([&](Tx& tx) {
      out = LookupRequestId(tx, method, id, req);
      return out.status();
    });
    if (!st.ok()) return absl::StatusOr<std::optional<IdempotentHit>>(st);
    return out;
  };

  auto first = lookup("req-1", Req("hello"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->has_value());

  absl::Status rec = db_->Transact([&](Tx& tx) {
    return RecordRequestId(tx, method, "req-1", Req("hello"), "certifications/abc", 1700000000000000);
  });
  ASSERT_TRUE(rec.ok()) << rec;

  auto hit = lookup("req-1", Req("hello"));
  ASSERT_TRUE(hit.ok()) << hit.status();
  ASSERT_TRUE(hit->has_value());
  EXPECT_EQ((*hit)->resource_name, "certifications/abc");

  // Same key, different request: INVALID_ARGUMENT naming request_id.
  auto reused = lookup("req-1", Req("hello!"));
  EXPECT_TRUE(absl::IsInvalidArgument(reused.status())) << reused.status();
  EXPECT_THAT(Msg(reused.status()), HasSubstr("request_id"));

  // Another key, or the same key for another method: independent.
  auto other_key = lookup("req-2", Req("hello"));
  ASSERT_TRUE(other_key.ok());
  EXPECT_FALSE(other_key->has_value());
  absl::StatusOr<std::optional<IdempotentHit>> other_method;
  ASSERT_TRUE(db_->Transact([&](Tx& tx) {
                   other_method = LookupRequestId(tx, "/other/Method", "req-1", Req("zzz"));
                   return other_method.status();
                 })
                  .ok());
  EXPECT_FALSE(other_method->has_value());

  // Recording the same key twice (two concurrent creates): the loser gets ALREADY_EXISTS.
  absl::Status dup = db_->Transact([&](Tx& tx) {
    return RecordRequestId(tx, method, "req-1", Req("hello"), "certifications/def", 1700000000000001);
  });
  EXPECT_TRUE(absl::IsAlreadyExists(dup)) << dup;
}

TEST_P(DbTest, IdempotencyEmptyRequestIdIsIgnored) {
  ASSERT_TRUE(db_->ExecDdl(kIdempotencyDdl).ok());
  absl::Status st = db_->Transact([&](Tx& tx) -> absl::Status {
    auto hit = LookupRequestId(tx, "/m", "", Req("a"));
    if (!hit.ok()) return hit.status();
    EXPECT_FALSE(hit->has_value());
    return RecordRequestId(tx, "/m", "", Req("a"), "things/1", 1);
  });
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(Count("idempotency_keys"), 0);
}

// A caller-scoped key: one per caller, readable for the usual ids, within the column for the
// longest principal id (128 characters): stored and found again on both backends.
TEST_P(DbTest, IdempotencyCallerScopedMethodFitsTheColumn) {
  ASSERT_TRUE(db_->ExecDdl(kIdempotencyDdl).ok());
  const Principal ft{Principal::Kind::kOperator, "ft"};
  const Principal apec{Principal::Kind::kOperator, "apec"};
  const Principal longest{Principal::Kind::kCertifier, std::string(128, 'x')};
  const Principal longest_too{Principal::Kind::kCertifier, std::string(127, 'x') + "y"};
  EXPECT_EQ(CallerScopedMethod("OpenCase", ft), "OpenCase operator:ft");
  EXPECT_NE(CallerScopedMethod("OpenCase", ft), CallerScopedMethod("OpenCase", apec));
  const std::string scoped = CallerScopedMethod("CreateJurySession", longest);
  EXPECT_LE(scoped.size(), 128u) << scoped;
  EXPECT_NE(scoped, CallerScopedMethod("CreateJurySession", longest_too));
  absl::Status st = db_->Transact([&](Tx& tx) -> absl::Status {
    return RecordRequestId(tx, scoped, "r-1", Req("a"), "sessions/1", 1);
  });
  ASSERT_TRUE(st.ok()) << st;
  st = db_->Transact([&](Tx& tx) -> absl::Status {
    auto hit = LookupRequestId(tx, scoped, "r-1", Req("a"));
    if (!hit.ok()) return hit.status();
    EXPECT_TRUE(hit->has_value());
    auto other = LookupRequestId(tx, CallerScopedMethod("CreateJurySession", longest_too), "r-1", Req("b"));
    if (!other.ok()) return other.status();
    EXPECT_FALSE(other->has_value());
    return absl::OkStatus();
  });
  ASSERT_TRUE(st.ok()) << st;
}

TEST_P(DbTest, IdempotencyRecordedInCallersTransaction) {
  ASSERT_TRUE(db_->ExecDdl(kIdempotencyDdl).ok());
  absl::Status st = db_->Transact([&](Tx& tx) -> absl::Status {
    absl::Status rec = RecordRequestId(tx, "/m", "id-1", Req("a"), "things/1", 1);
    if (!rec.ok()) return rec;
    return absl::AbortedError("create failed after recording");
  });
  EXPECT_TRUE(absl::IsAborted(st));
  EXPECT_EQ(Count("idempotency_keys"), 0);  // rolled back with the create
}

INSTANTIATE_TEST_SUITE_P(Backends, DbTest, ::testing::Values(Backend::kSqlite, Backend::kMysql), BackendName);

// ---------------------------------------------------------------------------------------------
// Not backend-specific.

TEST(RowTest, AccessorsConvert) {
  Row r({Value{int64_t{42}}, Value{2.75}, Value{std::string(" 17 ")}, Value{}, Value{std::string("abc")},
         Value{std::string("3.9")}});
  EXPECT_EQ(r.size(), 6u);
  EXPECT_EQ(r.Int(0), 42);
  EXPECT_EQ(r.Double(0), 42.0);
  EXPECT_EQ(r.Str(0), "42");
  EXPECT_EQ(r.Int(1), 2);
  EXPECT_EQ(r.Double(1), 2.75);
  EXPECT_EQ(r.Str(1), "2.75");
  EXPECT_EQ(r.Int(2), 17);
  EXPECT_EQ(r.Double(2), 17.0);
  EXPECT_TRUE(r.IsNull(3));
  EXPECT_FALSE(r.IsNull(0));
  EXPECT_EQ(r.Int(3), 0);
  EXPECT_EQ(r.Double(3), 0.0);
  EXPECT_EQ(r.Str(3), "");
  EXPECT_EQ(r.Int(4), 0);
  EXPECT_EQ(r.Int(5), 3);
  EXPECT_THROW(r.at(6), std::out_of_range);
}

TEST(OpenTest, RejectsBadDsn) {
  for (const char* dsn : {"", "postgres://u@h/db", "sqlite:", "mysql://", "mysql://127.0.0.1:3306/db",
                          "mysql://u@127.0.0.1:notaport/db", "mysql://u@127.0.0.1:70000/db",
                          "mysql://u@:3306/db", "mysql://u@127.0.0.1:3306", "mysql://u:p@h:1/db?ssl=1"}) {
    auto db = Open(dsn);
    EXPECT_TRUE(absl::IsInvalidArgument(db.status())) << dsn << " -> " << db.status();
  }
  Options zero;
  zero.max_connections = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(Open("sqlite::memory:", zero).status()));
}

TEST(OpenTest, UnreachableMysqlIsUnavailableWithoutPassword) {
  // Port 1 on loopback: nothing listens, the connection is refused at once.
  absl::Time start = absl::Now();
  auto db = Open("mysql://someone:s3cr%40t@127.0.0.1:1/db");
  EXPECT_TRUE(absl::IsUnavailable(db.status())) << db.status();
  EXPECT_THAT(Msg(db.status()), Not(HasSubstr("s3cr")));
  EXPECT_THAT(Msg(db.status()), HasSubstr("someone@127.0.0.1:1/db"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST(SqliteTest, MemoryDatabase) {
  auto db = Open("sqlite::memory:");
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ((*db)->dialect(), Dialect::kSqlite);
  ASSERT_TRUE((*db)->ExecDdl("CREATE TABLE t (a INTEGER)").ok());
  ASSERT_TRUE(
      (*db)
          ->Transact([](Tx& tx) { return tx.Exec("INSERT INTO t VALUES (?)", {int64_t{5}}).status(); })
          .ok());
  auto rows = (*db)->Query("SELECT a FROM t");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[0].Int(0), 5);
  PoolStats s = Stats(**db);
  EXPECT_EQ(s.size, 1);
  EXPECT_EQ(s.max_size, 1);
}

TEST(SqliteTest, PragmasAreSet) {
  auto db = Open(parcours::testing::FreshSqliteDatabase());
  ASSERT_TRUE(db.ok()) << db.status();
  auto fk = (*db)->Query("PRAGMA foreign_keys");
  ASSERT_TRUE(fk.ok()) << fk.status();
  EXPECT_EQ((*fk)[0].Int(0), 1);
  auto wal = (*db)->Query("PRAGMA journal_mode");
  ASSERT_TRUE(wal.ok()) << wal.status();
  EXPECT_EQ((*wal)[0].Str(0), "wal");
  // Foreign keys enforced.
  ASSERT_TRUE((*db)->ExecDdl("CREATE TABLE p (id INTEGER PRIMARY KEY)").ok());
  ASSERT_TRUE(
      (*db)->ExecDdl("CREATE TABLE c (id INTEGER PRIMARY KEY, p INTEGER NOT NULL REFERENCES p(id))").ok());
  absl::Status st = (*db)->Transact([](Tx& tx) { return tx.Exec("INSERT INTO c VALUES (1, 99)").status(); });
  EXPECT_TRUE(absl::IsInternal(st)) << st;
}

TEST(SqliteTest, WriterBusyInAnotherConnectionIsAborted) {
  std::string dsn = parcours::testing::FreshSqliteDatabase();
  Options fast;
  fast.checkout_timeout_ms = 100;  // busy_timeout
  auto a = Open(dsn, fast);
  auto b = Open(dsn, fast);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE((*a)->ExecDdl("CREATE TABLE t (a INTEGER)").ok());
  absl::Status inner;
  absl::Status outer = (*a)->Transact([&](Tx& tx) -> absl::Status {
    if (auto n = tx.Exec("INSERT INTO t VALUES (1)"); !n.ok()) return n.status();
    // Another connection (as another process would) cannot take the write lock meanwhile.
    inner = (*b)->Transact([](Tx& tx2) { return tx2.Exec("INSERT INTO t VALUES (2)").status(); });
    return absl::OkStatus();
  });
  EXPECT_TRUE(outer.ok()) << outer;
  EXPECT_TRUE(absl::IsAborted(inner)) << inner;
  auto rows = (*b)->Query("SELECT COUNT(*) FROM t");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ((*rows)[0].Int(0), 1);
}

TEST(SqliteTest, RejectsMultipleStatements) {
  auto db = Open("sqlite::memory:");
  ASSERT_TRUE(db.ok());
  absl::Status st = (*db)->Transact([](Tx& tx) { return tx.Exec("SELECT 1; SELECT 2").status(); });
  EXPECT_TRUE(absl::IsInternal(st)) << st;
  // A trailing semicolon is fine.
  EXPECT_TRUE((*db)->Transact([](Tx& tx) { return tx.Exec("SELECT 1;").status(); }).ok());
}

// ---------------------------------------------------------------------------------------------
// MariaDB only.

class MysqlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dsn = parcours::testing::FreshMysqlDatabase();
    ASSERT_TRUE(dsn.ok()) << dsn.status();
    dsn_ = *dsn;
  }
  std::unique_ptr<Db> OpenOrDie(const Options& options = {}) {
    auto db = Open(dsn_, options);
    EXPECT_TRUE(db.ok()) << db.status();
    return db.ok() ? *std::move(db) : nullptr;
  }
  std::string dsn_;
};

TEST_F(MysqlTest, SessionSettings) {
  auto db = OpenOrDie();
  ASSERT_NE(db, nullptr);
  auto rows = db->Query(
      "SELECT @@session.tx_isolation, @@character_set_connection, @@character_set_client, "
      "@@character_set_results, @@autocommit");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ((*rows)[0].Str(0), "READ-COMMITTED");
  EXPECT_EQ((*rows)[0].Str(1), "utf8mb4");
  EXPECT_EQ((*rows)[0].Str(2), "utf8mb4");
  EXPECT_EQ((*rows)[0].Str(3), "utf8mb4");
  EXPECT_EQ((*rows)[0].Int(4), 0);
}

// A statement is prepared once per connection; a connection's cache that fills up (256 texts) is
// dropped whole, which the pool counts (db_statement_cache_resets_total).
TEST_F(MysqlTest, StatementsArePreparedOnceAndAFullCacheIsCounted) {
  Options options;
  options.max_connections = 1;
  auto db = OpenOrDie(options);
  ASSERT_NE(db, nullptr);
  const PoolStats start = Stats(*db);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(db->Query("SELECT ? + 1", {int64_t{i}}).ok());
  EXPECT_EQ(Stats(*db).statements_prepared - start.statements_prepared, 1);
  EXPECT_EQ(Stats(*db).statement_cache_resets, 0);
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(db->Query(absl::StrCat("SELECT ? + ", i + 2), {int64_t{i}}).ok());
  const PoolStats after = Stats(*db);
  EXPECT_EQ(after.statements_prepared - start.statements_prepared, 301);
  EXPECT_EQ(after.statement_cache_resets, 1);
}

TEST_F(MysqlTest, DeadlockIsAborted) {
  auto db = OpenOrDie();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->ExecDdl("CREATE TABLE acct (id INT PRIMARY KEY, bal INT NOT NULL) ENGINE=InnoDB").ok());
  ASSERT_TRUE(db->Transact([](Tx& tx) {
                  return tx.Exec("INSERT INTO acct VALUES (1, 100), (2, 100)").status();
                }).ok());
  Latch both_locked(2);
  absl::Status results[2];
  auto worker = [&](int idx, int first, int second) {
    results[idx] = db->Transact([&](Tx& tx) -> absl::Status {
      auto a = tx.Exec("UPDATE acct SET bal = bal - 1 WHERE id = ?", {int64_t{first}});
      both_locked.ArriveAndWait();  // each holds one row lock now
      if (!a.ok()) return a.status();
      auto b = tx.Exec("UPDATE acct SET bal = bal + 1 WHERE id = ?", {int64_t{second}});
      return b.status();
    });
  };
  std::thread t1(worker, 0, 1, 2);
  std::thread t2(worker, 1, 2, 1);
  t1.join();
  t2.join();
  int aborted = absl::IsAborted(results[0]) + absl::IsAborted(results[1]);
  int ok = results[0].ok() + results[1].ok();
  EXPECT_EQ(aborted, 1) << results[0] << " / " << results[1];
  EXPECT_EQ(ok, 1) << results[0] << " / " << results[1];
  const absl::Status& loser = absl::IsAborted(results[0]) ? results[0] : results[1];
  EXPECT_THAT(Msg(loser), HasSubstr("1213"));
  // The winner's transfer committed, the loser's was rolled back: the total is unchanged.
  auto rows = db->Query("SELECT SUM(bal) FROM acct");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[0].Int(0), 200);
}

TEST_F(MysqlTest, PoolOfFourServesSixteenThreads) {
  Options options;
  options.max_connections = 4;
  options.checkout_timeout_ms = 20000;
  auto db = OpenOrDie(options);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(
      db->ExecDdl("CREATE TABLE hits (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, th INT NOT NULL)").ok());
  std::atomic<int> max_in_use{0};
  std::atomic<int> max_size{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        absl::Status st = db->Transact([&](Tx& tx) -> absl::Status {
          PoolStats s = Stats(*db);
          int seen = max_in_use.load();
          while (s.in_use > seen && !max_in_use.compare_exchange_weak(seen, s.in_use)) {
          }
          seen = max_size.load();
          while (s.size > seen && !max_size.compare_exchange_weak(seen, s.size)) {
          }
          auto n = tx.Exec("INSERT INTO hits (th) VALUES (?)", {int64_t{t}});
          absl::SleepFor(absl::Milliseconds(10));  // hold the connection a little
          return n.status();
        });
        if (!st.ok()) {
          ++failures;
          ADD_FAILURE() << st;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(max_in_use.load(), 4);
  EXPECT_LE(max_size.load(), 4);
  PoolStats s = Stats(*db);
  EXPECT_EQ(s.max_size, 4);
  EXPECT_EQ(s.in_use, 0);
  EXPECT_EQ(s.size, 4);
  EXPECT_GT(s.waits, 0);
  auto rows = db->Query("SELECT COUNT(*), COUNT(DISTINCT th) FROM hits");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[0].Int(0), 80);
  EXPECT_EQ((*rows)[0].Int(1), 16);
}

TEST_F(MysqlTest, CheckoutTimeoutIsUnavailable) {
  Options options;
  options.max_connections = 1;
  options.checkout_timeout_ms = 100;
  auto db = OpenOrDie(options);
  ASSERT_NE(db, nullptr);
  absl::Status inner;
  absl::Time start;
  absl::Status outer = db->Transact([&](Tx& tx) -> absl::Status {
    start = absl::Now();
    inner = db->Transact([](Tx& tx2) { return tx2.Query("SELECT 1").status(); });  // no free connection
    return tx.Query("SELECT 1").status();
  });
  EXPECT_TRUE(outer.ok()) << outer;
  EXPECT_TRUE(absl::IsUnavailable(inner)) << inner;
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(90));
  EXPECT_EQ(Stats(*db).waits, 1);
}

// Kills the connection `tx` runs on, from `admin`'s.
absl::Status KillThisConnection(Tx& tx, Db& admin) {
  auto id = tx.Query("SELECT CONNECTION_ID()");
  if (!id.ok()) return id.status();
  absl::Status kill = admin.ExecDdl(absl::StrCat("KILL CONNECTION ", (*id)[0].Int(0)));
  EXPECT_TRUE(kill.ok()) << kill;
  return absl::OkStatus();
}

TEST_F(MysqlTest, KilledConnectionIsReplaced) {
  Options options;
  options.max_connections = 1;
  auto db = OpenOrDie(options);
  ASSERT_NE(db, nullptr);
  auto admin = OpenOrDie();
  ASSERT_NE(admin, nullptr);
  auto id = db->Query("SELECT CONNECTION_ID()");
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(admin->ExecDdl(absl::StrCat("KILL CONNECTION ", (*id)[0].Int(0))).ok());
  // The pooled connection is dead; the stale-connection retry (or validation) hides it.
  auto again = db->Query("SELECT CONNECTION_ID()");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_NE((*again)[0].Int(0), (*id)[0].Int(0));
}

TEST_F(MysqlTest, ConnectionLostAfterAStatementIsNotRetried) {
  Options options;
  options.max_connections = 2;
  auto db = OpenOrDie(options);
  ASSERT_NE(db, nullptr);
  auto admin = OpenOrDie();
  ASSERT_NE(admin, nullptr);
  int calls = 0;
  absl::Status st = db->Transact([&](Tx& tx) -> absl::Status {
    ++calls;
    if (absl::Status s = KillThisConnection(tx, *admin); !s.ok()) return s;
    return tx.Query("SELECT 1").status();
  });
  EXPECT_TRUE(absl::IsUnavailable(st)) << st;
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(Stats(*db).size, 0);  // discarded
  auto after = db->Query("SELECT 1");
  EXPECT_TRUE(after.ok()) << after.status();
}

// The connection goes between the transaction's last statement and its COMMIT: the caller cannot
// know whether the server committed, so the answer is UNKNOWN, not UNAVAILABLE ("retry"), and the
// transaction is not run again. (Here the server rolled it back: the row is absent.)
TEST_F(MysqlTest, ConnectionLostAtCommitIsUnknownAndNotRetried) {
  Options options;
  options.max_connections = 2;
  auto db = OpenOrDie(options);
  ASSERT_NE(db, nullptr);
  auto admin = OpenOrDie();
  ASSERT_NE(admin, nullptr);
  ASSERT_TRUE(db->ExecDdl("CREATE TABLE commit_lost (id INT PRIMARY KEY)").ok());
  int calls = 0;
  absl::Status st = db->Transact([&](Tx& tx) -> absl::Status {
    ++calls;
    if (absl::Status s = tx.Exec("INSERT INTO commit_lost (id) VALUES (1)").status(); !s.ok()) return s;
    return KillThisConnection(tx, *admin);  // then COMMIT, on a dead connection
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kUnknown) << st;
  EXPECT_TRUE(IsStorageError(st));
  EXPECT_EQ(calls, 1);
  auto rows = db->Query("SELECT id FROM commit_lost");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_TRUE(rows->empty());
}

TEST(MariaDbRestartTest, PoolRecoversAfterServerRestart) {
  auto server = parcours::testing::MariaDbServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->CreateDatabase("restart_db").ok());
  Options options;
  options.max_connections = 2;
  options.checkout_timeout_ms = 2000;
  auto db = Open((*server)->Dsn("restart_db"), options);
  ASSERT_TRUE(db.ok()) << db.status();
  ASSERT_TRUE((*db)->ExecDdl("CREATE TABLE t (a INT)").ok());
  // Two connections in the pool, both soon stale.
  Latch both(2);
  auto hold = [&] {
    EXPECT_TRUE((*db)
                    ->Transact([&](Tx& tx) {
                      both.ArriveAndWait();
                      return tx.Exec("INSERT INTO t VALUES (1)").status();
                    })
                    .ok());
  };
  std::thread h1(hold), h2(hold);
  h1.join();
  h2.join();
  EXPECT_EQ(Stats(**db).size, 2);

  ASSERT_TRUE((*server)->Restart().ok());
  int calls = 0;
  absl::Status st = (*db)->Transact([&](Tx& tx) {
    ++calls;
    return tx.Exec("INSERT INTO t VALUES (2)").status();
  });
  EXPECT_TRUE(st.ok()) << st;  // no UNAVAILABLE thanks to the stale-connection retry
  EXPECT_GE(calls, 1);
  EXPECT_LE(calls, 2);
  auto rows = (*db)->Query("SELECT COUNT(*) FROM t");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ((*rows)[0].Int(0), 3);

  // Server down: UNAVAILABLE quickly, no hang, no crash.
  ASSERT_TRUE((*server)->Stop().ok());
  absl::Time start = absl::Now();
  absl::Status down = (*db)->Transact([](Tx& tx) { return tx.Query("SELECT 1").status(); });
  EXPECT_TRUE(absl::IsUnavailable(down)) << down;
  EXPECT_TRUE(absl::IsUnavailable((*db)->ExecDdl("CREATE TABLE u (a INT)")));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(Stats(**db).in_use, 0);

  // Back up: works again.
  ASSERT_TRUE((*server)->Restart().ok());
  auto back = (*db)->Query("SELECT COUNT(*) FROM t");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ((*back)[0].Int(0), 3);
}

}  // namespace
}  // namespace parcours::db
