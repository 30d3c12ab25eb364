// Wiring of evaluation-svc from its configuration: database, schema check, repository,
// referential-svc client, gRPC service. main.cc and the tests build the service through this.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "platform/clock.h"
#include "platform/config.h"
#include "platform/db/db.h"
#include "platform/service_main.h"

namespace parcours::evaluation {

inline constexpr char kDefaultDsn[] = "sqlite:.parcours/evaluation.db";

class App : public ServiceApp {
 public:
  // Config keys: database.dsn, database.max_connections, page_token_key_file,
  // referential.address (default 127.0.0.1:50051), referential.deadline (2s),
  // referential.state_ttl (30s), deliberation.divergence_gap (20).
  // `clock`: the system clock when null (tests pass a FakeClock, which must outlive the app).
  static absl::StatusOr<std::unique_ptr<App>> Create(const Config& config, const Clock* clock = nullptr);
  std::vector<grpc::Service*> services() override = 0;
  db::Db& db() override = 0;
};

absl::StatusOr<int> Migrate(db::Db& db);
int ExpectedSchemaVersion();

}  // namespace parcours::evaluation
