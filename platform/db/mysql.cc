// MySQL / MariaDB driver on MySQL Connector/C++ 1.1 (JDBC-like API), with our own pool.
//
// Connections
// - Properties: utf8mb4 (OPT_CHARSET_NAME + characterSetResults), CLIENT_FOUND_ROWS (an UPDATE
//   reports the rows it matched, not only those it changed: same as SQLite's changes()),
//   no auto-reconnect (a silent reconnect would lose session state mid-transaction), connect
//   timeout 5 s, read/write timeouts 300 s (Options::read_write_timeout_seconds; a dead peer that sends no RST is detected; longer
//   than innodb_lock_wait_timeout and than any sane query: a longer one fails with 2013).
// - Session: READ COMMITTED, autocommit off (permanently: every Transact ends with COMMIT or
//   ROLLBACK, ExecDdl commits after its statement).
// - Statements are server-side prepared (sql::PreparedStatement) and cached per connection by
//   SQL text; ExecDdl bumps a generation so every connection drops its cache before its next
//   use (a schema change may change a cached statement's result columns).
//
// Pool
// - Up to Options::max_connections connections, opened lazily (one at Open to fail fast on a
//   bad DSN/credentials), LIFO reuse, checkout waits up to checkout_timeout_ms, then UNAVAILABLE.
// - Validity: an idle connection is pinged (isValid) before reuse when it has been idle for more
//   than kValidateAfterIdle or when another connection was found broken since it was returned
//   (the pool's "epoch": a broken connection usually means a server restart, so every idle one is
//   suspect). A connection that fails the ping, or on which a client/connection error happens,
//   is discarded; the next checkout opens a new one.
// - Stale-connection retry: when a transaction fails with UNAVAILABLE because the connection was
//   lost before any statement of it succeeded (typically the first statement on a connection
//   that died while idle), and the connection came from the pool, Transact runs fn once more on
//   another (validated or new) connection. fn may therefore run twice: keep side effects
//   outside the database out of transaction functions (the usual rule for retryable
//   transactions). A loss after a statement succeeded is never retried (UNAVAILABLE returned).
#include <cppconn/connection.h>
#include <cppconn/datatype.h>
#include <cppconn/driver.h>
#include <cppconn/exception.h>
#include <cppconn/parameter_metadata.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/resultset_metadata.h>
#include <cppconn/statement.h>

#include <atomic>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "platform/db/db.h"
#include "platform/errors.h"
#include "platform/db/internal.h"

namespace parcours::db {
namespace {

// Debian's Abseil has its own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0).
inline absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::string_view SV(absl::string_view s) { return std::string_view(s.data(), s.size()); }

constexpr absl::Duration kValidateAfterIdle = absl::Seconds(1);
// Multi-row statements come in up to ten sizes each (powers of two of rows; platform/db/bulk.h),
// plus exact sizes up to 16 for small sets: a bulk import alone uses about 80 texts, and a full
// cache is dropped whole, so it must hold them all.
constexpr size_t kStatementCacheSize = 256;
constexpr int kConnectTimeoutSeconds = 5;

// get_driver_instance() is not thread-safe: call it once.
sql::Driver* MysqlDriver() {
  static std::once_flag once;
  static sql::Driver* driver = nullptr;
  std::call_once(once, [] { driver = get_driver_instance(); });
  return driver;
}

// Client-side error codes (libmysqlclient / MariaDB Connector/C, 2000-2999) plus the server
// codes that mean the session is gone.
bool IsConnectionError(int code) {
  switch (code) {
    case 2002:  // CR_CONNECTION_ERROR (socket)
    case 2003:  // CR_CONN_HOST_ERROR
    case 2005:  // CR_UNKNOWN_HOST
    case 2006:  // CR_SERVER_GONE_ERROR
    case 2013:  // CR_SERVER_LOST
    case 2055:  // CR_SERVER_LOST_EXTENDED
    case 1053:  // ER_SERVER_SHUTDOWN
    case 1927:  // ER_CONNECTION_KILLED (MariaDB)
    case 4031:  // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8)
      return true;
    default:
      return false;
  }
}

// The statement-level classes of db.h. `broken` tells whether the connection must be discarded.
struct Mapped {
  absl::Status status;
  bool broken = false;
  bool lost = false;  // connection lost (UNAVAILABLE)
};

Mapped MapException(const sql::SQLException& e, std::string_view sql) {
  int code = e.getErrorCode();
  std::string msg = absl::StrCat("mysql: ", e.what(), " (error ", code, ", SQLSTATE ", e.getSQLState(), ")");
  if (!sql.empty()) absl::StrAppend(&msg, " in `", AV(sql), "`");
  Mapped m;
  std::string_view what = e.what();
  // Connector/C++ reports a closed connection with code 0 and no server round trip.
  bool closed = code == 0 && what.find("onnection") != std::string_view::npos &&
                what.find("closed") != std::string_view::npos;
  if (IsConnectionError(code) || closed) {
    m.status = StorageError(absl::StatusCode::kUnavailable, msg);
    m.broken = m.lost = true;
    return m;
  }
  if (code == 1062) {  // ER_DUP_ENTRY
    m.status = StorageError(absl::StatusCode::kAlreadyExists, msg);
  } else if (code == 1213 || code == 1205) {  // ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT
    m.status = StorageError(absl::StatusCode::kAborted, msg);
  } else {
    m.status = StorageError(absl::StatusCode::kInternal, msg);
  }
  // Other client-side errors (commands out of sync, ...) leave the connection in an unknown
  // state: do not reuse it.
  m.broken = code >= 2000 && code < 3000;
  return m;
}

Mapped MapStdException(const std::exception& e, std::string_view sql) {
  Mapped m;
  m.status = StorageError(absl::StatusCode::kInternal, absl::StrCat("mysql: ", e.what(), " in `", AV(sql), "`"));
  m.broken = true;
  return m;
}

void Bind(sql::PreparedStatement* ps, const Params& params) {
  for (size_t i = 0; i < params.size(); ++i) {
    unsigned int idx = static_cast<unsigned int>(i + 1);
    const Value& v = params[i];
    if (std::holds_alternative<std::monostate>(v)) {
      ps->setNull(idx, sql::DataType::SQLNULL);
    } else if (const auto* n = std::get_if<int64_t>(&v)) {
      ps->setInt64(idx, *n);
    } else if (const auto* d = std::get_if<double>(&v)) {
      ps->setDouble(idx, *d);
    } else {
      // setString keeps the connection's utf8mb4 collation for comparisons (setBlob would turn
      // `WHERE name = ?` into a binary comparison). It is length-based, hence NUL-safe, and
      // Connector/C++ streams values over 256 KiB as long data by itself.
      ps->setString(idx, std::get<std::string>(v));
    }
  }
}

// Per pool, across its connections: statements prepared, and statement caches dropped whole.
struct StatementCounters {
  std::atomic<int64_t> prepared{0};
  std::atomic<int64_t> cache_resets{0};
};

// One pooled connection and its prepared statements.
struct Conn {
  StatementCounters* counters = nullptr;  // the pool's
  std::unique_ptr<sql::Connection> conn;
  struct Prepared {
    std::unique_ptr<sql::PreparedStatement> ps;
    int param_count = 0;
  };
  std::unordered_map<std::string, Prepared> stmts;
  absl::Time returned_at;
  uint64_t epoch = 0;           // pool epoch when returned
  uint64_t ddl_generation = 0;  // pool DDL generation the statement cache is valid for
  bool reused = false;          // came from the idle list (may be stale)
  bool broken = false;          // discard on return

  ~Conn() {
    // Statements first (they reference the connection). Destructors do not throw.
    stmts.clear();
    conn.reset();
  }

  // Throws sql::SQLException like the driver.
  sql::PreparedStatement* Prepare(std::string_view sql, const Params& params) {
    std::string key(sql);
    auto it = stmts.find(key);
    if (it == stmts.end()) {
      if (stmts.size() >= kStatementCacheSize) {
        stmts.clear();
        counters->cache_resets.fetch_add(1, std::memory_order_relaxed);
      }
      counters->prepared.fetch_add(1, std::memory_order_relaxed);
      Prepared p;
      p.ps.reset(conn->prepareStatement(key));
      // Owned by the statement in Connector/C++ 1.1.
      p.param_count = p.ps->getParameterMetaData()->getParameterCount();
      it = stmts.emplace(std::move(key), std::move(p)).first;
    }
    // A cached statement keeps its previous bindings: a short params list would silently reuse
    // them, so insist on an exact count.
    if (it->second.param_count != static_cast<int>(params.size())) {
      throw sql::SQLException(
          absl::StrCat("statement takes ", it->second.param_count, " parameters, got ", params.size()),
          "HY000", 0);
    }
    Bind(it->second.ps.get(), params);
    return it->second.ps.get();
  }
};

// How a column's values are read, decided once per result set: the driver's metadata calls
// cost more than reading the value itself.
enum class ColumnKind { kInt, kUnsignedBigInt, kDouble, kString };

std::vector<ColumnKind> ColumnKinds(sql::ResultSetMetaData& meta, unsigned int ncols) {
  std::vector<ColumnKind> kinds(ncols + 1);  // 1-based like the driver
  for (unsigned int i = 1; i <= ncols; ++i) {
    switch (meta.getColumnType(i)) {
      case sql::DataType::BIT:
      case sql::DataType::TINYINT:
      case sql::DataType::SMALLINT:
      case sql::DataType::MEDIUMINT:
      case sql::DataType::INTEGER:
      case sql::DataType::YEAR:
        kinds[i] = ColumnKind::kInt;
        break;
      case sql::DataType::BIGINT:
        kinds[i] = meta.isSigned(i) ? ColumnKind::kInt : ColumnKind::kUnsignedBigInt;
        break;
      case sql::DataType::REAL:
      case sql::DataType::DOUBLE:
      case sql::DataType::DECIMAL:
      case sql::DataType::NUMERIC:
        kinds[i] = ColumnKind::kDouble;
        break;
      default:
        kinds[i] = ColumnKind::kString;
    }
  }
  return kinds;
}

Value ColumnValue(sql::ResultSet& rs, ColumnKind kind, unsigned int i) {
  if (rs.isNull(i)) return Value{};
  switch (kind) {
    case ColumnKind::kInt:
      return Value{static_cast<int64_t>(rs.getInt64(i))};
    case ColumnKind::kUnsignedBigInt:
      return Value{static_cast<int64_t>(rs.getUInt64(i))};
    case ColumnKind::kDouble:
      return Value{static_cast<double>(rs.getDouble(i))};
    case ColumnKind::kString:
      break;
  }
  return Value{rs.getString(i).asStdString()};
}

// COMMIT / ROLLBACK as statements: Connector/C++ 1.1's Connection::commit() and rollback()
// ignore the server's answer (measured: a COMMIT on a killed connection returned normally while
// the server had rolled the transaction back, so the write was acknowledged and lost). A
// statement throws on any error. Throws sql::SQLException like the driver.
void EndTransaction(sql::Connection& conn, const char* verb) {
  std::unique_ptr<sql::Statement> stmt(conn.createStatement());
  stmt->execute(verb);
}

// A Tx on one checked-out connection.
class MysqlTx final : public Tx {
 public:
  explicit MysqlTx(Conn* c) : c_(c) {}

  absl::StatusOr<Rows> Query(std::string_view sql, const Params& params) override {
    if (absl::Status st = Usable(sql); !st.ok()) return st;
    try {
      sql::PreparedStatement* ps = c_->Prepare(sql, params);
      std::unique_ptr<sql::ResultSet> rs(ps->executeQuery());
      sql::ResultSetMetaData* meta = rs->getMetaData();
      unsigned int ncols = meta->getColumnCount();
      const std::vector<ColumnKind> kinds = ColumnKinds(*meta, ncols);
      Rows rows;
      rows.reserve(rs->rowsCount());
      while (rs->next()) {
        std::vector<Value> cols;
        cols.reserve(ncols);
        for (unsigned int i = 1; i <= ncols; ++i) cols.push_back(ColumnValue(*rs, kinds[i], i));
        rows.emplace_back(std::move(cols));
      }
      succeeded_ = true;
      return rows;
    } catch (const sql::SQLException& e) {
      return Fail(MapException(e, sql));
    } catch (const std::exception& e) {
      return Fail(MapStdException(e, sql));
    }
  }

  absl::StatusOr<int64_t> Exec(std::string_view sql, const Params& params) override {
    if (absl::Status st = Usable(sql); !st.ok()) return st;
    try {
      sql::PreparedStatement* ps = c_->Prepare(sql, params);
      int n = ps->executeUpdate();
      succeeded_ = true;
      return static_cast<int64_t>(n);
    } catch (const sql::SQLException& e) {
      return Fail(MapException(e, sql));
    } catch (const std::exception& e) {
      return Fail(MapStdException(e, sql));
    }
  }

  absl::StatusOr<int64_t> LastInsertId() override {
    auto rows = Query("SELECT LAST_INSERT_ID()", {});
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return StorageError(absl::StatusCode::kInternal, "mysql: SELECT LAST_INSERT_ID() returned no row");
    return (*rows)[0].Int(0);
  }

  Dialect dialect() const override { return Dialect::kMysql; }

  // Called by Transact after fn.
  absl::Status Finish(absl::Status st) {
    if (st.ok() && first_error_.ok() && !c_->broken) {
      try {
        EndTransaction(*c_->conn, "COMMIT");
        return absl::OkStatus();
      } catch (const sql::SQLException& e) {
        st = Fail(MapException(e, "COMMIT"));
      } catch (const std::exception& e) {
        st = Fail(MapStdException(e, "COMMIT"));
      }
      if (absl::IsUnavailable(st)) {
        // The server may have committed before the connection went: neither "retry" (it would
        // apply the change twice) nor "failed" is true.
        return StorageError(absl::StatusCode::kUnknown,
                            absl::StrCat("mysql: connection lost during COMMIT, outcome unknown: ", st.message()));
      }
    } else if (st.ok()) {
      // fn went on after a statement error: the transaction is not trusted (after a deadlock
      // the server already rolled it back and later statements ran in a new one).
      st = first_error_;
    }
    if (!c_->broken) {
      try {
        EndTransaction(*c_->conn, "ROLLBACK");
      } catch (...) {
        c_->broken = true;  // cannot tell the session's state: discard it
      }
    }
    return st;
  }

  bool lost_before_success() const { return lost_before_success_; }

 private:
  absl::Status Usable(std::string_view sql) {
    if (!c_->broken) return absl::OkStatus();
    // An earlier statement broke the connection; keep the first error.
    return StorageError(absl::StatusCode::kUnavailable, 
        absl::StrCat("mysql: connection lost earlier in this transaction; `", AV(sql), "` not run"));
  }

  absl::Status Fail(Mapped m) {
    if (m.broken) c_->broken = true;
    if (m.lost && !succeeded_) lost_before_success_ = true;
    if (first_error_.ok()) first_error_ = m.status;
    return m.status;
  }

  Conn* c_;
  bool succeeded_ = false;
  bool lost_before_success_ = false;
  absl::Status first_error_;
};

absl::Status RunDdl(Conn& c, std::string_view sql) {
  try {
    std::unique_ptr<sql::Statement> stmt(c.conn->createStatement());
    std::string text(sql);
    if (stmt->execute(text)) {
      std::unique_ptr<sql::ResultSet> discard(stmt->getResultSet());
    }
    EndTransaction(*c.conn, "COMMIT");  // autocommit is off: a non-DDL statement (seed INSERT) needs it
    c.stmts.clear();
    return absl::OkStatus();
  } catch (const sql::SQLException& e) {
    Mapped m = MapException(e, sql);
    if (m.broken) c.broken = true;
    return m.status;
  } catch (const std::exception& e) {
    c.broken = true;
    return MapStdException(e, sql).status;
  }
}

class Pool {
 public:
  Pool(internal::MysqlConfig config, const Options& options)
      : config_(std::move(config)),
        max_size_(options.max_connections),
        checkout_timeout_(absl::Milliseconds(options.checkout_timeout_ms)),
        read_write_timeout_seconds_(options.read_write_timeout_seconds) {}

  ~Pool() {
    absl::MutexLock lock(&mu_);
    idle_.clear();
  }

  // A connection for exclusive use until Return. `validate` forces a ping of an idle one.
  absl::StatusOr<std::unique_ptr<Conn>> Checkout(bool validate = false) {
    absl::Time deadline = absl::Now() + checkout_timeout_;
    bool waited = false;
    for (;;) {
      std::unique_ptr<Conn> c;
      bool open_new = false;
      uint64_t ddl_generation = 0;
      {
        absl::MutexLock lock(&mu_);
        for (;;) {
          if (!idle_.empty()) {
            c = std::move(idle_.back());
            idle_.pop_back();
            ++in_use_;
            break;
          }
          if (size_ < max_size_) {
            ++size_;
            ++in_use_;
            open_new = true;
            break;
          }
          if (!waited) {
            ++waits_;
            waited = true;
          }
          if (cv_.WaitWithDeadline(&mu_, deadline) && idle_.empty() && size_ >= max_size_) {
            return StorageError(absl::StatusCode::kUnavailable, absl::StrCat("mysql: no free connection in the pool (", max_size_,
                                                       " in use) after ",
                                                       absl::FormatDuration(checkout_timeout_)));
          }
        }
        if (c != nullptr &&
            (validate || c->epoch != epoch_ || absl::Now() - c->returned_at > kValidateAfterIdle)) {
          validate = true;
        } else {
          validate = false;
        }
        ddl_generation = ddl_generation_;
      }
      if (open_new) {
        auto fresh = Connect();
        if (!fresh.ok()) {
          Release(nullptr, /*broken=*/true, /*lost=*/false);
          return fresh.status();
        }
        (*fresh)->ddl_generation = ddl_generation;
        return fresh;
      }
      if (validate && !Valid(*c)) {
        Release(std::move(c), /*broken=*/true, /*lost=*/true);
        continue;  // try another idle connection or open a new one
      }
      if (c->ddl_generation != ddl_generation) {
        c->stmts.clear();
        c->ddl_generation = ddl_generation;
      }
      c->reused = true;
      return c;
    }
  }

  void Return(std::unique_ptr<Conn> c, bool lost = false) {
    bool broken = c->broken;
    Release(std::move(c), broken, lost);
  }

  void BumpDdlGeneration() {
    absl::MutexLock lock(&mu_);
    ++ddl_generation_;
  }

  PoolStats Stats() const {
    absl::MutexLock lock(&mu_);
    PoolStats s;
    s.size = size_;
    s.in_use = in_use_;
    s.max_size = max_size_;
    s.waits = waits_;
    s.statements_prepared = statements_.prepared.load(std::memory_order_relaxed);
    s.statement_cache_resets = statements_.cache_resets.load(std::memory_order_relaxed);
    return s;
  }

  const internal::MysqlConfig& config() const { return config_; }

 private:
  static bool Valid(Conn& c) {
    try {
      return c.conn != nullptr && c.conn->isValid();
    } catch (...) {
      return false;
    }
  }

  // Gives a checked-out slot back: to the idle list, or closes it (c may be null for a slot
  // whose connect failed).
  void Release(std::unique_ptr<Conn> c, bool broken, bool lost) {
    {
      absl::MutexLock lock(&mu_);
      --in_use_;
      if (!broken && c != nullptr) {
        c->returned_at = absl::Now();
        c->epoch = epoch_;
        c->reused = false;
        idle_.push_back(std::move(c));
      } else {
        --size_;
        if (lost) ++epoch_;  // the server may have restarted: validate the idle ones
      }
      cv_.Signal();
    }
    c.reset();  // close outside the lock (may touch the network)
  }

  absl::StatusOr<std::unique_ptr<Conn>> Connect() {
    const internal::MysqlConfig& cfg = config_;
    std::string where = absl::StrCat(cfg.user, "@", cfg.host, ":", cfg.port, "/", cfg.database);
    try {
      sql::ConnectOptionsMap props;
      props["hostName"] = sql::SQLString(cfg.host);
      props["port"] = cfg.port;
      props["userName"] = sql::SQLString(cfg.user);
      props["password"] = sql::SQLString(cfg.password);
      if (!cfg.database.empty()) props["schema"] = sql::SQLString(cfg.database);
      props["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
      props["characterSetResults"] = sql::SQLString("utf8mb4");
      props["OPT_CONNECT_TIMEOUT"] = kConnectTimeoutSeconds;
      props["OPT_READ_TIMEOUT"] = read_write_timeout_seconds_;
      props["OPT_WRITE_TIMEOUT"] = read_write_timeout_seconds_;
      props["OPT_RECONNECT"] = false;
      props["CLIENT_FOUND_ROWS"] = true;
      auto c = std::make_unique<Conn>();
      c->counters = &statements_;
      c->conn.reset(MysqlDriver()->connect(props));
      {
        std::unique_ptr<sql::Statement> stmt(c->conn->createStatement());
        stmt->execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
      }
      c->conn->setAutoCommit(false);
      return c;
    } catch (const sql::SQLException& e) {
      // e.what() never contains the password (server/client messages only).
      return StorageError(absl::StatusCode::kUnavailable, absl::StrCat("mysql: cannot connect to ", where, ": ", e.what(),
                                                 " (error ", e.getErrorCode(), ")"));
    } catch (const std::exception& e) {
      return StorageError(absl::StatusCode::kUnavailable, absl::StrCat("mysql: cannot connect to ", where, ": ", e.what()));
    }
  }

  const internal::MysqlConfig config_;
  const int max_size_;
  const absl::Duration checkout_timeout_;
  const int read_write_timeout_seconds_;

  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  std::vector<std::unique_ptr<Conn>> idle_ ABSL_GUARDED_BY(mu_);
  int size_ ABSL_GUARDED_BY(mu_) = 0;
  int in_use_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t waits_ ABSL_GUARDED_BY(mu_) = 0;
  StatementCounters statements_;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t ddl_generation_ ABSL_GUARDED_BY(mu_) = 0;
};

// Runs fn in one transaction on c. Sets *retryable when the connection was lost before any
// statement succeeded.
absl::Status RunTransaction(Conn& c, const std::function<absl::Status(Tx&)>& fn, bool* retryable) {
  MysqlTx tx(&c);
  absl::Status st;
  try {
    st = fn(tx);
  } catch (...) {
    // Do not leave an open transaction on a pooled connection if fn throws.
    st = tx.Finish(StorageError(absl::StatusCode::kInternal, "transaction function threw"));
    throw;
  }
  st = tx.Finish(std::move(st));
  *retryable = tx.lost_before_success() && absl::IsUnavailable(st);
  return st;
}

class MysqlDb final : public Db {
 public:
  MysqlDb(internal::MysqlConfig config, const Options& options) : pool_(std::move(config), options) {}

  Dialect dialect() const override { return Dialect::kMysql; }

  absl::Status Transact(const std::function<absl::Status(Tx&)>& fn) override {
    for (int attempt = 0;; ++attempt) {
      auto c = pool_.Checkout(/*validate=*/attempt > 0);
      if (!c.ok()) return c.status();
      bool reused = (*c)->reused;
      bool retryable = false;
      absl::Status st;
      try {
        st = RunTransaction(**c, fn, &retryable);
      } catch (...) {
        pool_.Return(*std::move(c));
        throw;
      }
      // UNKNOWN is a connection lost at COMMIT: as telling of a server restart as any other loss.
      pool_.Return(*std::move(c), /*lost=*/retryable || absl::IsUnavailable(st) || absl::IsUnknown(st));
      if (retryable && reused && attempt == 0) continue;
      return st;
    }
  }

  absl::Status ExecDdl(std::string_view sql) override {
    // DDL commits implicitly, so it is never retried: validate the connection first instead.
    auto c = pool_.Checkout(/*validate=*/true);
    if (!c.ok()) return c.status();
    absl::Status st = RunDdl(**c, sql);
    pool_.Return(*std::move(c), absl::IsUnavailable(st));
    pool_.BumpDdlGeneration();
    return st;
  }

  Pool& pool() { return pool_; }
  const Pool& pool() const { return pool_; }

 private:
  Pool pool_;
};

// A Db view on one connection checked out of a MysqlDb's pool (see WithPinnedConnection).
class PinnedMysqlDb final : public Db {
 public:
  explicit PinnedMysqlDb(Conn* c) : c_(c) {}
  Dialect dialect() const override { return Dialect::kMysql; }

  absl::Status Transact(const std::function<absl::Status(Tx&)>& fn) override {
    if (c_->broken) return StorageError(absl::StatusCode::kUnavailable, "mysql: pinned connection lost");
    bool retryable = false;
    return RunTransaction(*c_, fn, &retryable);
  }

  absl::Status ExecDdl(std::string_view sql) override {
    if (c_->broken) return StorageError(absl::StatusCode::kUnavailable, "mysql: pinned connection lost");
    return RunDdl(*c_, sql);
  }

 private:
  Conn* c_;
};

}  // namespace

namespace internal {

absl::StatusOr<std::unique_ptr<Db>> OpenMysql(const MysqlConfig& config, const Options& options) {
  auto db = std::make_unique<MysqlDb>(config, options);
  // Fail fast on an unreachable server or bad credentials; the connection stays in the pool.
  auto c = db->pool().Checkout();
  if (!c.ok()) return c.status();
  db->pool().Return(*std::move(c));
  return std::unique_ptr<Db>(std::move(db));
}

std::optional<PoolStats> MysqlPoolStats(const Db& db) {
  if (const auto* m = dynamic_cast<const MysqlDb*>(&db)) return m->pool().Stats();
  return std::nullopt;
}

absl::Status WithPinnedConnection(Db& db, const std::function<absl::Status(Db& pinned)>& fn) {
  auto* m = dynamic_cast<MysqlDb*>(&db);
  if (m == nullptr) return fn(db);
  auto c = m->pool().Checkout(/*validate=*/true);
  if (!c.ok()) return c.status();
  PinnedMysqlDb pinned(c->get());
  absl::Status st;
  try {
    st = fn(pinned);
  } catch (...) {
    m->pool().Return(*std::move(c));
    throw;
  }
  bool lost = (*c)->broken;
  m->pool().Return(*std::move(c), lost);
  m->pool().BumpDdlGeneration();  // fn may have run DDL on this connection
  return st;
}

}  // namespace internal
}  // namespace parcours::db
