// Wiring of cep-svc from its configuration: database, schema check, repository, keys, gRPC
// service. main.cc and the tests build the service through this.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "platform/clock.h"
#include "platform/config.h"
#include "platform/db/db.h"
#include "platform/service_main.h"
#include "cep-svc/src/repository.h"

namespace parcours::cep {

inline constexpr char kDefaultDsn[] = "sqlite:.parcours/cep.db";
// Used when pseudonym_key_file is unset (development only: pseudonyms are then not secret).
inline constexpr char kDevelopmentPseudonymKey[] = "parcours-dev-pseudonym-key";

class App : public ServiceApp {
 public:
  // Config keys: database.dsn, database.max_connections, page_token_key_file,
  // pseudonym_key_file (the secret of the beneficiary pseudonyms; trailing whitespace ignored;
  // unset = the fixed development key, with a warning), feed.poll_interval (200ms: how often a
  // following StreamActivity looks for new events), feed.batch_size (500 events per read),
  // feed.write_timeout (30s: a feed client that takes no event for that long is cancelled),
  // import.max_batch_rows (4000: the most rows of an ImportCases transaction, shared among the
  // open import streams).
  // `clock`: the system clock when null (tests pass a FakeClock, which must outlive the app).
  static absl::StatusOr<std::unique_ptr<App>> Create(const Config& config, const Clock* clock = nullptr);
  std::vector<grpc::Service*> services() override = 0;
  db::Db& db() override = 0;
  // The repository behind the service, for tests and operational tools (audit trail, feed).
  virtual CepRepository& repository() = 0;
};

absl::StatusOr<int> Migrate(db::Db& db);
int ExpectedSchemaVersion();
// FAILED_PRECONDITION unless the database is at ExpectedSchemaVersion().
absl::Status CheckSchema(db::Db& db);

}  // namespace parcours::cep
