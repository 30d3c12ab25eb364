// cep-svc: serve or migrate (see platform/service_main.h).
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
  return parcours::RunServiceMain(argc, argv, binary);
}
