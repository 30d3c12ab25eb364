// cep-svc: serve, migrate or rebuild-indicators (see platform/service_main.h).
#include "cep-svc/src/app.h"
#include "platform/service_main.h"

int main(int argc, char** argv) {
  using parcours::cep::App;
  parcours::ServiceBinary binary;
  binary.name = "cep-svc";
  binary.default_dsn = parcours::cep::kDefaultDsn;
  binary.expected_schema_version = parcours::cep::ExpectedSchemaVersion();
  binary.migrate = parcours::cep::Migrate;
  binary.create = [](const parcours::Config& config) -> absl::StatusOr<std::unique_ptr<parcours::ServiceApp>> {
    auto app = App::Create(config);
    if (!app.ok()) return app.status();
    return std::unique_ptr<parcours::ServiceApp>(std::move(*app));
  };
  // Recounts the indicator rollups from every stored case (after restoring a backup taken without
  // them, or after a change of what a case contributes).
  binary.commands["rebuild-indicators"] = [](const parcours::Config& config,
                                             const std::vector<std::string>&) -> absl::Status {
    auto db = parcours::OpenConfiguredDb(config, parcours::cep::kDefaultDsn);
    if (!db.ok()) return db.status();
    if (absl::Status s = parcours::cep::CheckSchema(**db); !s.ok()) return s;
    return parcours::cep::NewSqlRepository(**db)->RebuildRollup();
  };
  return parcours::RunServiceMain(argc, argv, binary);
}
