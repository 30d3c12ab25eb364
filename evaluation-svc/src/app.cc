#include "evaluation-svc/src/app.h"

#include <fstream>

#include "platform/db/migrations.h"
#include "platform/tls.h"
#include "evaluation-svc/src/referential_client.h"
#include "evaluation-svc/src/repository.h"
#include "evaluation-svc/src/service.h"

namespace parcours::evaluation {

// Generated from migrations/ by parcours_embed_migrations (build dir).
const std::vector<db::Migration>& SqliteMigrations();
const std::vector<db::Migration>& MysqlMigrations();

namespace {

const std::vector<db::Migration>& MigrationsFor(const db::Db& db) {
  return db::ForDialect(db, SqliteMigrations(), MysqlMigrations());
}


class AppImpl final : public App {
 public:
  AppImpl(std::unique_ptr<db::Db> db, std::shared_ptr<grpc::Channel> channel, ReferentialClientOptions client_options,
          std::string key, EvaluationOptions options, const Clock* clock)
      : clock_(clock != nullptr ? *clock : system_clock_),
        db_(std::move(db)),
        repository_(NewSqlRepository(*db_)),
        referential_(NewGrpcReferentialClient(std::move(channel), clock_, client_options)),
        logic_(*repository_, *referential_, clock_, aip::PageTokenCodec(std::move(key)), options),
        service_(NewGrpcService(logic_)) {}

  std::vector<grpc::Service*> services() override { return {service_.get()}; }
  db::Db& db() override { return *db_; }

 private:
  SystemClock system_clock_;
  const Clock& clock_;
  std::unique_ptr<db::Db> db_;
  std::unique_ptr<EvaluationRepository> repository_;
  std::unique_ptr<ReferentialClient> referential_;
  Evaluation logic_;
  std::unique_ptr<grpc::Service> service_;
};

}  // namespace

absl::StatusOr<int> Migrate(db::Db& db) { return db::Migrate(db, MigrationsFor(db)); }

int ExpectedSchemaVersion() { return SqliteMigrations().back().version; }

absl::StatusOr<std::unique_ptr<App>> App::Create(const Config& config, const Clock* clock) {
  auto db = OpenConfiguredDb(config, kDefaultDsn);
  if (!db.ok()) return db.status();
  if (absl::Status s = db::CheckSchema(**db, MigrationsFor(**db)); !s.ok()) return s;
  auto key = PageTokenKey(config);
  if (!key.ok()) return key.status();
  ReferentialClientOptions client_options;
  auto deadline = config.GetDuration("referential.deadline", client_options.deadline);
  if (!deadline.ok()) return deadline.status();
  client_options.deadline = *deadline;
  auto ttl = config.GetDuration("referential.state_ttl", client_options.state_ttl);
  if (!ttl.ok()) return ttl.status();
  client_options.state_ttl = *ttl;
  EvaluationOptions options;
  auto gap = config.GetInt("deliberation.divergence_gap", options.default_divergence_gap);
  if (!gap.ok()) return gap.status();
  options.default_divergence_gap = static_cast<int>(*gap);
  auto channel = MakeChannel(config, "referential", "127.0.0.1:50051");  // platform/tls.h
  if (!channel.ok()) return channel.status();
  return std::unique_ptr<App>(new AppImpl(*std::move(db), *std::move(channel), client_options, *std::move(key), options, clock));
}

}  // namespace parcours::evaluation
