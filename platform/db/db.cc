#include "platform/db/db.h"

#include <cerrno>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "platform/db/internal.h"

namespace parcours::db {
namespace {
// Debian's Abseil has its own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0).
inline absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::string_view SV(absl::string_view s) { return std::string_view(s.data(), s.size()); }
}  // namespace

// ---------------------------------------------------------------------------------------------
// Row accessors. Lenient by design: MySQL returns DECIMAL for SUM(int) and strings for some
// computed columns, SQLite returns whatever affinity the value got, so every accessor converts.

bool Row::IsNull(size_t i) const { return std::holds_alternative<std::monostate>(cols_.at(i)); }

int64_t Row::Int(size_t i) const {
  const Value& v = cols_.at(i);
  if (const auto* n = std::get_if<int64_t>(&v)) return *n;
  if (const auto* d = std::get_if<double>(&v)) return static_cast<int64_t>(*d);
  if (const auto* s = std::get_if<std::string>(&v)) {
    int64_t out = 0;
    absl::string_view text = absl::StripAsciiWhitespace(*s);
    if (absl::SimpleAtoi(text, &out)) return out;
    double d = 0;
    if (absl::SimpleAtod(text, &d)) return static_cast<int64_t>(d);
    return 0;
  }
  return 0;
}

double Row::Double(size_t i) const {
  const Value& v = cols_.at(i);
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* n = std::get_if<int64_t>(&v)) return static_cast<double>(*n);
  if (const auto* s = std::get_if<std::string>(&v)) {
    double out = 0;
    if (absl::SimpleAtod(absl::StripAsciiWhitespace(*s), &out)) return out;
    return 0;
  }
  return 0;
}

std::string Row::Str(size_t i) const {
  const Value& v = cols_.at(i);
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* n = std::get_if<int64_t>(&v)) return absl::StrCat(*n);
  if (const auto* d = std::get_if<double>(&v)) return absl::StrFormat("%.17g", *d);
  return "";
}

// ---------------------------------------------------------------------------------------------

absl::StatusOr<Rows> Db::Query(std::string_view sql, const Params& params) {
  Rows out;
  absl::Status st = Transact([&](Tx& tx) -> absl::Status {
    auto rows = tx.Query(sql, params);
    if (!rows.ok()) return rows.status();
    out = *std::move(rows);
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

std::string UpsertReplacing(Dialect d, const std::string& key, const std::vector<std::string>& columns) {
  std::string out = d == Dialect::kSqlite ? absl::StrCat(" ON CONFLICT (", key, ") DO UPDATE SET ")
                                          : std::string(" ON DUPLICATE KEY UPDATE ");
  for (size_t i = 0; i < columns.size(); ++i) {
    const std::string& c = columns[i];
    absl::StrAppend(&out, i > 0 ? ", " : "", c, " = ",
                    d == Dialect::kSqlite ? absl::StrCat("excluded.", c) : absl::StrCat("VALUES(", c, ")"));
  }
  return out;
}

std::string_view DialectName(Dialect d) {
  switch (d) {
    case Dialect::kSqlite:
      return "sqlite";
    case Dialect::kMysql:
      return "mysql";
  }
  return "unknown";
}

namespace {

// Percent-decoding for the user and password parts of a URL (a password may contain '@' or ':'
// written as %40 / %3A).
absl::StatusOr<std::string> PercentDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size() || !absl::ascii_isxdigit(in[i + 1]) || !absl::ascii_isxdigit(in[i + 2])) {
      return absl::InvalidArgumentError("bad percent-encoding in mysql DSN");
    }
    auto hex = [](char c) { return absl::ascii_isdigit(c) ? c - '0' : absl::ascii_tolower(c) - 'a' + 10; };
    out.push_back(static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2])));
    i += 2;
  }
  return out;
}

// mysql://user[:password]@host[:port]/database[?ignored]
// Error messages never repeat the DSN (it may hold a password).
absl::StatusOr<internal::MysqlConfig> ParseMysqlDsn(std::string_view rest) {
  internal::MysqlConfig cfg;
  // Query string: not supported, refuse rather than silently ignore.
  if (rest.find('?') != std::string_view::npos) {
    return absl::InvalidArgumentError("mysql DSN: query parameters are not supported");
  }
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) {
    return absl::InvalidArgumentError(
        "mysql DSN must look like mysql://user[:password]@host[:port]/database");
  }
  std::string_view authority = rest.substr(0, slash);
  cfg.database = std::string(rest.substr(slash + 1));
  if (cfg.database.find('/') != std::string::npos) {
    return absl::InvalidArgumentError("mysql DSN: bad database name");
  }
  size_t at = authority.rfind('@');
  if (at == std::string_view::npos) {
    return absl::InvalidArgumentError("mysql DSN: missing user (mysql://user[:password]@host...)");
  }
  std::string_view userinfo = authority.substr(0, at);
  std::string_view hostport = authority.substr(at + 1);
  size_t colon = userinfo.find(':');
  std::string_view user = userinfo.substr(0, colon);
  std::string_view password = colon == std::string_view::npos ? "" : userinfo.substr(colon + 1);
  auto u = PercentDecode(user);
  if (!u.ok()) return u.status();
  auto p = PercentDecode(password);
  if (!p.ok()) return p.status();
  cfg.user = *std::move(u);
  cfg.password = *std::move(p);
  if (cfg.user.empty()) return absl::InvalidArgumentError("mysql DSN: empty user");

  size_t pc = hostport.rfind(':');
  if (!hostport.empty() && hostport.front() == '[') {  // [::1]:3306
    size_t close = hostport.find(']');
    if (close == std::string_view::npos) return absl::InvalidArgumentError("mysql DSN: bad host");
    cfg.host = std::string(hostport.substr(1, close - 1));
    std::string_view after = hostport.substr(close + 1);
    pc = after.empty() ? std::string_view::npos : close + 1;
    if (!after.empty() && after.front() != ':') return absl::InvalidArgumentError("mysql DSN: bad host");
  } else {
    cfg.host = std::string(hostport.substr(0, pc));
  }
  if (cfg.host.empty()) return absl::InvalidArgumentError("mysql DSN: empty host");
  if (pc != std::string_view::npos) {
    int port = 0;
    if (!absl::SimpleAtoi(AV(hostport.substr(pc + 1)), &port) || port <= 0 || port > 65535) {
      return absl::InvalidArgumentError("mysql DSN: bad port");
    }
    cfg.port = port;
  }
  return cfg;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Db>> Open(std::string_view dsn_in, const Options& options) {
  absl::string_view dsn = AV(dsn_in);
  if (options.max_connections < 1) {
    return absl::InvalidArgumentError("db options: max_connections must be at least 1");
  }
  if (absl::ConsumePrefix(&dsn, "sqlite:")) {
    if (dsn == ":memory:") return internal::OpenSqlite(":memory:", options);
    absl::ConsumePrefix(&dsn, "//");  // sqlite:///abs/path.db
    if (dsn.empty()) return absl::InvalidArgumentError("sqlite DSN: empty path");
    return internal::OpenSqlite(std::string(dsn), options);
  }
  if (absl::ConsumePrefix(&dsn, "mysql://")) {
    auto cfg = ParseMysqlDsn(SV(dsn));
    if (!cfg.ok()) return cfg.status();
    return internal::OpenMysql(*cfg, options);
  }
  return absl::InvalidArgumentError(
      "unknown database DSN scheme (expected sqlite:PATH, sqlite::memory: or mysql://...)");
}

PoolStats Stats(const Db& db) {
  if (auto s = internal::MysqlPoolStats(db)) return *s;
  PoolStats s;
  s.size = 1;
  s.max_size = 1;
  return s;
}

}  // namespace parcours::db
