// Wiring of referential-svc from its configuration: database, schema check, repository, cache,
// gRPC service. main.cc and the tests build the service through this, nothing else.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "platform/config.h"
#include "platform/db/db.h"
#include "platform/service_main.h"

namespace parcours::referential {

inline constexpr char kDefaultDsn[] = "sqlite:.parcours/referential.db";

class App : public ServiceApp {
 public:
  // Config keys: database.dsn (default sqlite:.parcours/referential.db), database.max_connections,
  // page_token_key_file (random key per process when unset).
  // Fails with FAILED_PRECONDITION when the schema is older than this binary expects.
  static absl::StatusOr<std::unique_ptr<App>> Create(const Config& config);
  virtual ~App() = default;

  std::vector<grpc::Service*> services() override = 0;
  db::Db& db() override = 0;
  // Loads a ReferentialDocument JSON file through the service logic (same validation as the API);
  // idempotent: an existing certification or an identical published version is left as it is.
  virtual absl::Status LoadDocument(const std::string& json_path) = 0;
};

// Applies the embedded migrations; returns the resulting schema version.
absl::StatusOr<int> Migrate(db::Db& db);
// Schema version this binary expects.
int ExpectedSchemaVersion();

}  // namespace parcours::referential
