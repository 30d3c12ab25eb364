#include "cep-svc/src/app.h"

#include <atomic>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "platform/clock.h"
#include "platform/db/migrations.h"
#include "platform/log.h"
#include "cep-svc/src/service.h"

namespace parcours::cep {

// Generated from migrations/ by parcours_embed_migrations (build dir).
const std::vector<db::Migration>& SqliteMigrations();
const std::vector<db::Migration>& MysqlMigrations();

namespace {

const std::vector<db::Migration>& MigrationsFor(const db::Db& db) {
  return db::ForDialect(db, SqliteMigrations(), MysqlMigrations());
}

// The pseudonym key: the secret file's content, or the development key (warned once per process).
absl::StatusOr<std::string> PseudonymKey(const Config& config) {
  if (config.GetString("pseudonym_key_file").empty()) {
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true)) {
      log::Warn("pseudonym_key_file is not set: beneficiary pseudonyms use the fixed development key",
                {{"config_key", "pseudonym_key_file"}});
    }
    return std::string(kDevelopmentPseudonymKey);
  }
  auto key = config.ReadSecretFile("pseudonym_key_file");
  if (!key.ok()) return key.status();
  std::string value = *std::move(key);
  absl::StripTrailingAsciiWhitespace(&value);
  if (value.empty()) return absl::InvalidArgumentError("pseudonym_key_file names an empty file");
  return value;
}

struct FeedConfig {
  FeedOptions options;
  absl::Duration write_timeout;
};

absl::StatusOr<FeedConfig> ReadFeedConfig(const Config& config) {
  FeedConfig out;
  auto poll = config.GetDuration("feed.poll_interval", out.options.poll_interval);
  if (!poll.ok()) return poll.status();
  if (*poll <= absl::ZeroDuration()) return absl::InvalidArgumentError("feed.poll_interval: must be positive");
  out.options.poll_interval = *poll;
  auto batch = config.GetInt("feed.batch_size", out.options.batch_size);
  if (!batch.ok()) return batch.status();
  if (*batch < 1 || *batch > 10000) return absl::InvalidArgumentError("feed.batch_size: must be 1..10000");
  out.options.batch_size = static_cast<int>(*batch);
  auto write_timeout = config.GetDuration("feed.write_timeout", absl::Seconds(30));
  if (!write_timeout.ok()) return write_timeout.status();
  if (*write_timeout <= absl::ZeroDuration()) return absl::InvalidArgumentError("feed.write_timeout: must be positive");
  out.write_timeout = *write_timeout;
  return out;
}

absl::StatusOr<ImportOptions> ReadImportOptions(const Config& config) {
  ImportOptions out;
  auto rows = config.GetInt("import.max_batch_rows", out.max_batch_rows);
  if (!rows.ok()) return rows.status();
  if (*rows < 1 || *rows > 100000) return absl::InvalidArgumentError("import.max_batch_rows: must be 1..100000");
  out.max_batch_rows = static_cast<int>(*rows);
  return out;
}

class AppImpl final : public App {
 public:
  AppImpl(std::unique_ptr<db::Db> db, std::string page_key, std::string pseudonym_key, const Clock* clock,
          const FeedConfig& feed, ImportOptions import)
      : db_(std::move(db)),
        repository_(NewSqlRepository(*db_)),
        logic_(*repository_, clock != nullptr ? *clock : system_clock_, aip::PageTokenCodec(std::move(page_key)),
               std::move(pseudonym_key), feed.options, import),
        service_(NewGrpcService(logic_, feed.write_timeout)) {}

  std::vector<grpc::Service*> services() override { return {service_.get()}; }
  db::Db& db() override { return *db_; }
  CepRepository& repository() override { return *repository_; }

 private:
  SystemClock system_clock_;
  std::unique_ptr<db::Db> db_;
  std::unique_ptr<CepRepository> repository_;
  Cep logic_;
  std::unique_ptr<grpc::Service> service_;
};

}  // namespace

absl::StatusOr<int> Migrate(db::Db& db) {
  absl::StatusOr<int> version = db::Migrate(db, MigrationsFor(db));
  if (!version.ok()) return version;
  // The rollups of cases stored before a change of what a case contributes.
  absl::StatusOr<int64_t> counted = BackfillRollups(db);
  if (!counted.ok()) return counted.status();
  if (*counted > 0) log::Info("indicator rollups completed", {{"cases", absl::StrCat(*counted)}});
  return version;
}

int ExpectedSchemaVersion() { return SqliteMigrations().back().version; }

absl::Status CheckSchema(db::Db& db) { return db::CheckSchema(db, MigrationsFor(db)); }

absl::StatusOr<std::unique_ptr<App>> App::Create(const Config& config, const Clock* clock) {
  auto feed = ReadFeedConfig(config);
  if (!feed.ok()) return feed.status();
  auto import = ReadImportOptions(config);
  if (!import.ok()) return import.status();
  auto db = OpenConfiguredDb(config, kDefaultDsn);
  if (!db.ok()) return db.status();
  if (absl::Status s = db::CheckSchema(**db, MigrationsFor(**db)); !s.ok()) return s;
  if (absl::Status s = CheckRollupsComplete(**db); !s.ok()) return s;
  auto page_key = PageTokenKey(config);
  if (!page_key.ok()) return page_key.status();
  auto pseudonym_key = PseudonymKey(config);
  if (!pseudonym_key.ok()) return pseudonym_key.status();
  return std::unique_ptr<App>(
      new AppImpl(*std::move(db), *std::move(page_key), *std::move(pseudonym_key), clock, *feed, *import));
}

}  // namespace parcours::cep
