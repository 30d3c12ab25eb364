// gateway: serve (see platform/service_main.h). The only way in from outside: authenticates
// (auth.* keys, gateway/auth/), authorises from one policy table and forwards to the backends
// (backends.* keys; gateway/src/app.h lists them).
#include "gateway/auth/authenticator.h"
#include "gateway/src/app.h"
#include "platform/service_main.h"

int main(int argc, char** argv) {
  static const parcours::SystemClock clock;
  parcours::ServiceBinary binary;
  binary.name = "gateway";
  binary.default_dsn = parcours::gateway::kNoDatabaseDsn;
  binary.expected_schema_version = 0;
  binary.migrate = [](parcours::db::Db&) -> absl::StatusOr<int> { return 0; };  // no database
  binary.create = [](const parcours::Config& config) -> absl::StatusOr<std::unique_ptr<parcours::ServiceApp>> {
    auto auth_config = parcours::gateway::AuthConfig::FromConfig(config);
    if (!auth_config.ok()) return auth_config.status();
    auto authenticator = parcours::gateway::NewAuthenticator(*std::move(auth_config), clock);
    if (!authenticator.ok()) return authenticator.status();
    auto app = parcours::gateway::App::Create(config, *std::move(authenticator));
    if (!app.ok()) return app.status();
    return std::unique_ptr<parcours::ServiceApp>(std::move(*app));
  };
  return parcours::RunServiceMain(argc, argv, binary);
}
