#include "platform/service_main.h"

#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "platform/crypto.h"
#include "platform/db/migrations.h"
#include "platform/log.h"
#include "platform/db_metrics.h"
#include "platform/server.h"

ABSL_FLAG(std::string, config, "", "YAML configuration file");
ABSL_FLAG(std::vector<std::string>, set, {}, "Configuration overrides key=value, comma-separated");

namespace parcours {

absl::StatusOr<std::unique_ptr<db::Db>> OpenConfiguredDb(const Config& config, const std::string& default_dsn) {
  std::string dsn = config.GetString("database.dsn", default_dsn);
  if (absl::StartsWith(dsn, "sqlite:") && dsn != "sqlite::memory:") {
    std::filesystem::path file(dsn.substr(7));
    if (file.has_parent_path()) {
      std::error_code ec;
      std::filesystem::create_directories(file.parent_path(), ec);
    }
  }
  db::Options options;
  auto max_connections = config.GetInt("database.max_connections", options.max_connections);
  if (!max_connections.ok()) return max_connections.status();
  options.max_connections = static_cast<int>(*max_connections);
  return db::Open(dsn, options);
}

absl::StatusOr<std::string> SecretKeyOrRandom(const Config& config, std::string_view file_key) {
  if (config.Has(file_key)) return config.ReadSecretFile(file_key);
  return RandomKey();
}

namespace {

int Fail(const ServiceBinary& binary, const std::string& what, const absl::Status& status) {
  log::Error(absl::StrCat(binary.name, ": ", what), {{"error", status.ToString()}});
  return 1;
}

int Serve(const ServiceBinary& binary, const Config& config) {
  auto options = ServerOptions::FromConfig(config, binary.name);
  if (!options.ok()) return Fail(binary, "bad server configuration", options.status());
  auto app = binary.create(config);
  if (!app.ok()) return Fail(binary, "cannot start", app.status());
  db::Db& db = (*app)->db();
  // Readiness: MariaDB answers. (SQLite is a file: a check would only queue behind a write.)
  // The check has its own connection, with short timeouts: on the pool it would wait behind
  // busy calls (a saturated pod leaving the Service) or, with every connection stuck on a
  // silent host, never be asked; and a silent host would hold it for the pool's 300 s.
  std::unique_ptr<db::Db> readiness_db;
  if (db.dialect() == db::Dialect::kMysql) {
    db::Options probe;
    probe.max_connections = 1;
    probe.checkout_timeout_ms = 1000;
    probe.read_write_timeout_seconds = 2;
    auto opened = db::Open(config.GetString("database.dsn", binary.default_dsn), probe);
    if (!opened.ok()) return Fail(binary, "cannot open the readiness check's connection", opened.status());
    readiness_db = *std::move(opened);
  }
  ServerRunner runner(*options);
  for (grpc::Service* service : (*app)->services()) runner.AddService(service);
  auto schema = db::SchemaVersion(db);
  runner.SetBuildInfo(binary.expected_schema_version, schema.ok() ? *schema : 0,
                      std::string(db::DialectName(db.dialect())));
  ExportDbPoolMetrics(runner, db);
  if (readiness_db) {
    runner.SetReadinessCheck([&probe = *readiness_db] { return probe.Query("SELECT 1").status(); });
  }
  absl::Status status = runner.RunUntilSignal();
  if (!status.ok()) return Fail(binary, "server failed", status);
  return 0;
}

int Migrate(const ServiceBinary& binary, const Config& config) {
  auto db = OpenConfiguredDb(config, binary.default_dsn);
  if (!db.ok()) return Fail(binary, "cannot open database", db.status());
  auto version = binary.migrate(**db);
  if (!version.ok()) return Fail(binary, "migration failed", version.status());
  log::Info("schema migrated", {{"schema_version", absl::StrCat(*version)}});
  return 0;
}

}  // namespace

int RunServiceMain(int argc, char** argv, const ServiceBinary& binary) {
  // The sync gRPC server runs a thread per stream; glibc gives busy threads their own malloc
  // arenas (up to 8 per core), and memory freed in one stays mapped there: a bulk import over a
  // hundred streams held several times its live data. Four arenas keep RSS close to what is in
  // use; MALLOC_ARENA_MAX in the environment still wins.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 4);
  std::string usage = absl::StrCat("Usage: ", binary.name, " [serve|migrate");
  for (const auto& [name, command] : binary.commands) absl::StrAppend(&usage, "|", name);
  absl::StrAppend(&usage, "] [--config FILE] [--set key=value,...] [ARGS...]");
  absl::SetProgramUsageMessage(usage);
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  std::vector<std::string> args(positional.begin() + 1, positional.end());
  std::string command = args.empty() ? "serve" : args.front();
  if (!args.empty()) args.erase(args.begin());

  log::SetServiceName(binary.name);
  auto config = Config::Load(absl::GetFlag(FLAGS_config), absl::GetFlag(FLAGS_set));
  if (!config.ok()) return Fail(binary, "bad configuration", config.status());

  if (command == "serve") return Serve(binary, *config);
  if (command == "migrate") return Migrate(binary, *config);
  auto it = binary.commands.find(command);
  if (it == binary.commands.end()) {
    std::fprintf(stderr, "%s\n", usage.c_str());
    return 2;
  }
  absl::Status status = it->second(*config, args);
  if (!status.ok()) return Fail(binary, command, status);
  return 0;
}

}  // namespace parcours
