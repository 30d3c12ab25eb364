// The main() of every service binary, written once:
//   <binary> [serve] [--config FILE] [--set key=value,...]   serve (default sub-command)
//   <binary> migrate [--config FILE]                         apply the embedded migrations
//   <binary> <extra sub-command> [--config FILE] ARGS...      e.g. referential-svc load FILE.json
// serve refuses to start on a schema older than the binary expects (run migrate first).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "platform/config.h"
#include "platform/db/db.h"

namespace parcours {

// What a service library hands to the runner.
class ServiceApp {
 public:
  virtual ~ServiceApp() = default;
  virtual std::vector<grpc::Service*> services() = 0;
  virtual db::Db& db() = 0;
};

struct ServiceBinary {
  std::string name;        // "referential-svc"
  std::string default_dsn; // embedded default, e.g. "sqlite:.parcours/referential.db"
  int expected_schema_version = 0;
  std::function<absl::StatusOr<int>(db::Db&)> migrate;
  std::function<absl::StatusOr<std::unique_ptr<ServiceApp>>(const Config&)> create;
  using Command = std::function<absl::Status(const Config&, const std::vector<std::string>& args)>;
  std::map<std::string, Command> commands;
};

int RunServiceMain(int argc, char** argv, const ServiceBinary& binary);

// A secret key: the content of the file named by config key `file_key`, or 32 random bytes for
// this process when it is unset (what the key protects then dies with the process: fine for one
// replica, not for several).
absl::StatusOr<std::string> SecretKeyOrRandom(const Config& config, std::string_view file_key);

// The page-token signing key (page_token_key_file): page tokens of a random key die with the process.
inline absl::StatusOr<std::string> PageTokenKey(const Config& config) {
  return SecretKeyOrRandom(config, "page_token_key_file");
}

// Opens the database named by config key database.dsn (default `default_dsn`), creating the
// parent directory of a SQLite file.
absl::StatusOr<std::unique_ptr<db::Db>> OpenConfiguredDb(const Config& config, const std::string& default_dsn);

}  // namespace parcours
