// Service configuration: one YAML file, overridden by environment variables, overridden by
// command-line flags. Keys are flat, dotted for nesting ("database.dsn" reads
//   database:
//     dsn: ...
// in YAML, PARCOURS_DATABASE_DSN in the environment, --set=database.dsn=... on the command line).
// Secrets are never inline: a key ending in "_file" names a file whose content is the secret.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace parcours {

class Config {
 public:
  Config() = default;
  // yaml_path may be empty (defaults + env + overrides only). overrides are "key=value" strings.
  // env is read through getenv for every key of the form PARCOURS_<KEY> (upper case, '.' -> '_').
  static absl::StatusOr<Config> Load(const std::string& yaml_path,
                                     const std::vector<std::string>& overrides = {});
  // Only for tests and embedding: a config from a map.
  static Config FromMap(std::map<std::string, std::string> values);

  bool Has(std::string_view key) const;
  std::string GetString(std::string_view key, std::string_view default_value = "") const;
  // INVALID_ARGUMENT naming the key if the value does not parse.
  absl::StatusOr<int64_t> GetInt(std::string_view key, int64_t default_value) const;
  absl::StatusOr<bool> GetBool(std::string_view key, bool default_value) const;
  // Durations in absl syntax: "500ms", "20s", "2m".
  absl::StatusOr<absl::Duration> GetDuration(std::string_view key, absl::Duration default_value) const;
  // Reads the file named by `key` (e.g. "page_token_key_file"); NOT_FOUND if unset.
  absl::StatusOr<std::string> ReadSecretFile(std::string_view key) const;
  // Like a command-line override: wins over the environment.
  void Set(std::string key, std::string value) {
    pinned_.insert(key);
    values_[std::move(key)] = std::move(value);
  }
  // The YAML keys (with env applied) and the overrides; env-only keys are not listed.
  const std::map<std::string, std::string>& values() const { return values_; }

 private:
  // Precedence: overrides/Set > PARCOURS_<KEY> (read at lookup time, Load only) > YAML.
  std::optional<std::string> Lookup(std::string_view key) const;

  std::map<std::string, std::string> values_;
  std::set<std::string, std::less<>> pinned_;  // keys from overrides or Set(): env not consulted
  bool read_env_ = false;                      // true for Load(), false for FromMap()
};

}  // namespace parcours
