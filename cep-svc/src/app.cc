#include "cep-svc/src/app.h"

#include <atomic>

#include "absl/strings/ascii.h"
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

class AppImpl final : public App {
 public:
  AppImpl(std::unique_ptr<db::Db> db, std::string page_key, std::string pseudonym_key)
      : db_(std::move(db)),
        repository_(NewSqlRepository(*db_)),
        logic_(*repository_, clock_, aip::PageTokenCodec(std::move(page_key)), std::move(pseudonym_key)),
        service_(NewGrpcService(logic_)) {}

  std::vector<grpc::Service*> services() override { return {service_.get()}; }
  db::Db& db() override { return *db_; }
  CepRepository& repository() override { return *repository_; }

 private:
  SystemClock clock_;
  std::unique_ptr<db::Db> db_;
  std::unique_ptr<CepRepository> repository_;
  Cep logic_;
  std::unique_ptr<grpc::Service> service_;
};

}  // namespace

absl::StatusOr<int> Migrate(db::Db& db) { return db::Migrate(db, MigrationsFor(db)); }

int ExpectedSchemaVersion() { return SqliteMigrations().back().version; }

absl::StatusOr<std::unique_ptr<App>> App::Create(const Config& config) {
  auto db = OpenConfiguredDb(config, kDefaultDsn);
  if (!db.ok()) return db.status();
  if (absl::Status s = db::CheckSchema(**db, MigrationsFor(**db)); !s.ok()) return s;
  auto page_key = PageTokenKey(config);
  if (!page_key.ok()) return page_key.status();
  auto pseudonym_key = PseudonymKey(config);
  if (!pseudonym_key.ok()) return pseudonym_key.status();
  return std::unique_ptr<App>(new AppImpl(*std::move(db), *std::move(page_key), *std::move(pseudonym_key)));
}

}  // namespace parcours::cep
